"""Per-footprint damage scoring: how much of a building's straight-edge structure survived.

A standing building, seen from above at any sun angle, sensor or off-nadir view, is a set of
straight edges parallel to its walls: roof outline, ridge lines, roof facets, its shadow's
edges, the tarp laid on a damaged roof. Rubble, bare ground, grass and trees have edges in all
directions. So for each footprint we measure, in a region around it, the share of gradient
energy whose direction agrees with the footprint's own axes (an orientation measure folded to
90 degrees, ``cos 4(theta - theta_fp)``): about 0.3 for a typical intact house at 0.5 m, 0 for
isotropic clutter. This is blind to gain, offset and haze (a ratio of gradients), to moderate
misregistration and to roof lean in off-nadir views (the region is the footprint grown by
:data:`LEAN_M`, so no shift search is needed), and insensitive to moved shadows (shadow edges of
a building are parallel to its walls too).

A razed building also loses its roof: inside the footprint (shrunk by :data:`ERODE_M`), over
pixels sunlit on both dates, the median spectral angle between the after and before colours
(:func:`fortmap.detect.footprint_features.interior_colour`) is several times the scene's
typical value. The global step multiplies the two (see :func:`damage_from_features`), so that
neither moved shadows (which take aligned edges away from intact houses in dense rows) nor a
recoloured roof alone calls a building destroyed. Without usable colour (grey bands, or a scene
whose roofs do not sit on their footprints, e.g. far off-nadir) the structure-only rule below
applies.

The structure-only rule divides each after-image alignment by the scene's typical *before* alignment
(the median over all footprints: before the event every building stood), giving the fraction of
structure retained. The class limits are first principles, not fitted to any labels: a
building that kept less than half of the structure of a typical standing building is
``destroyed``; one that kept more than :data:`RETAINED_INTACT` is ``intact``; in between,
``damaged``. Either way it must also have lost some of its *own* before structure
(:data:`MIN_LOSS`), or nothing happened to it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import shapely

from fortmap.detect.footprint_features import (
    gauss_kernel,
    interior_colour,
    noise_gradient,
    region_stats,
)
from fortmap.errors import InputError

#: Roof displacement allowed between footprint and image, metres: lean of a 7 m roof seen 30
#: degrees off nadir (7 * tan 30 = 4.0) plus about 1 px of residual misregistration.
LEAN_M = 4.0
#: Gaussian pre-smoothing of the grey images before the gradient, pixels (suppresses pixel noise
#: and JPEG blocking without removing edges of building scale).
SMOOTH_PX = 0.7
#: Footprints with less valid (cloud/nodata-free) area than this share of their region are not
#: classified: they come out ``intact`` with score 0 and ``"too_little_valid": true`` in evidence.
MIN_VALID_FRACTION = 0.5
#: Retained structure below this share of a typical standing building: destroyed (half gone).
RETAINED_DESTROYED = 0.5
#: Retained structure above this share: intact; between the two limits: damaged.
RETAINED_INTACT = 0.8
#: Width of the score's logistic around :data:`RETAINED_DESTROYED`, in retained-fraction units.
SCORE_WIDTH = 0.1
#: A building must also have lost this much of its *own* before alignment to be called damaged
#: or destroyed, so a footprint with little structure to begin with (under trees, low-contrast
#: roof) is not flagged when nothing changed. 0.03 is the 5-10th percentile of the loss that
#: nuisance alone (2-3 px shift plus gamma 1.4, or haze plus noise) gives on the unchanged
#: Joplin before image used as its own after image: a null control, not the damage labels.
MIN_LOSS = 0.03
#: Width of the score's logistic around :data:`MIN_LOSS`, alignment units.
LOSS_WIDTH = 0.02
#: Before-image alignment assumed for the scene when no footprint gives one (typical value of a
#: standing house in 0.3-0.6 m imagery; only a fallback).
DEFAULT_REFERENCE = 0.3

#: Structure-and-colour change above which a building is ``destroyed``: it lost a typical
#: standing building's worth of aligned structure with a typical nuisance colour change, or
#: half of it with twice the typical colour change. 1.0 is the natural unit of the product;
#: checked (not fitted) on simulator seeds 1-3, whose label-optimal values were 0.7-0.96.
CHANGE_DESTROYED = 1.0
#: Change above which a building is ``damaged`` (half the destroyed limit).
CHANGE_DAMAGED = 0.5
#: Width of the score's logistic in log(change) around :data:`CHANGE_DESTROYED`.
CHANGE_LOG_WIDTH = 0.3
#: Smallest typical interior colour angle, degrees, at which colour is used: about what 8-bit
#: quantisation and sensor noise alone give on mid-grey roofs. Below it the pair has no colour
#: to compare (grey bands, identical images) and structure alone decides.
MIN_ANGLE_REF = 0.5
#: Largest typical interior colour angle, degrees, at which colour is used at all. Band
#: matching leaves a standing roof's sunlit colour within 1-2 degrees in near-nadir pairs
#: (simulator: 0.7-2.1 from easy to hard); a scene median far above that means the roofs
#: do not sit on their footprints in one of the images. Set between the simulator's values and
#: the 5.2 degrees of xBD Joplin (28 deg off-nadir), after seeing both (no labels involved).
MAX_ANGLE_REF = 3.0
#: Footprints are shrunk by this much before their interior colour is compared, metres: keeps
#: residual misregistration (<= 1 px) and the PSF's reach (1-2 px) of the walls out of it.
ERODE_M = 1.0

FEATURE_COLUMNS: tuple[str, ...] = (
    "aln_before",
    "aln_after",
    "edge_before",
    "edge_after",
    "grey_diff",
    "area_px",
    "valid_fraction",
    "colour_angle",
    "lit_fraction",
)


def footprint_halo_px(gsd: float) -> int:
    """Pixels of context needed around a footprint's bounding box.

    Args:
        gsd: ground sample distance, metres per pixel.

    Returns:
        Halo in pixels: the roof-lean allowance :data:`LEAN_M` plus the gradient kernels' reach.
    """
    if not gsd > 0:
        raise InputError(f"footprints: ground sample distance must be positive, got {gsd}")
    return int(math.ceil(LEAN_M / gsd)) + 3


def _grey(img: np.ndarray) -> np.ndarray:
    g = img[0].astype(np.float32, copy=True)
    for b in img[1:]:
        g += b
    g *= np.float32(1.0 / img.shape[0])
    return np.nan_to_num(g, copy=False)


def _axis_angle(poly: shapely.Geometry) -> float:
    """Direction of the longer side of the minimum rotated rectangle, radians (pixel axes)."""
    rect = shapely.minimum_rotated_rectangle(poly)
    c = np.asarray(shapely.get_coordinates(rect))
    if len(c) < 3:
        return 0.0
    e = np.diff(c[:3], axis=0)
    k = int(np.argmax(np.hypot(e[:, 0], e[:, 1])))
    return float(np.arctan2(e[k, 1], e[k, 0]))


def _rings(poly: shapely.Geometry) -> list[np.ndarray]:
    parts = getattr(poly, "geoms", [poly])
    out = []
    for p in parts:
        if p.is_empty or p.geom_type != "Polygon":
            continue
        out.append(np.asarray(p.exterior.coords, np.float64))
        out.extend(np.asarray(r.coords, np.float64) for r in p.interiors)
    return out


def footprint_features(
    before: np.ndarray,
    after: np.ndarray,
    valid: np.ndarray,
    footprints: Sequence[shapely.Polygon],
    gsd: float,
) -> pd.DataFrame:
    """Structure measures of each footprint in the before and after images of one tile.

    Args:
        before, after: float32 (bands, H, W) on the same pixel grid, reflectance-like ~0..1.
        valid: bool (H, W), False on nodata or cloud in either image.
        footprints: polygons in this array's pixel coordinates (x = column, y = row, (0, 0) the
            top-left corner of the top-left pixel); parts outside the array are clipped.
        gsd: metres per pixel.

    Returns:
        One row per footprint, in order: ``aln_before``/``aln_after`` (share of gradient energy
        within :data:`LEAN_M` of the footprint aligned with its axes, -1..1, ~0 for clutter),
        ``edge_before``/``edge_after`` (mean noise-corrected gradient magnitude there, grey
        units per pixel), ``grey_diff`` (mean absolute grey difference inside the footprint),
        ``area_px`` (pixels inside the footprint) and ``valid_fraction`` (0..1 of the region).
    """
    before = np.asarray(before)
    after = np.asarray(after)
    if before.ndim == 2:
        before = before[None]
    if after.ndim == 2:
        after = after[None]
    if before.shape[1:] != after.shape[1:] or valid.shape != before.shape[1:]:
        raise InputError(
            f"footprints: before {before.shape}, after {after.shape} and valid {valid.shape} "
            "are not on one grid"
        )
    halo = footprint_halo_px(gsd)
    if len(footprints) == 0:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in FEATURE_COLUMNS})
    h, w = valid.shape
    bounds = shapely.bounds(np.asarray(footprints, dtype=object))
    # Gradients only on the part of the tile the footprints need (plus kernel margin).
    ok = np.all(np.isfinite(bounds), axis=1)
    if ok.any():
        wc0 = max(int(np.floor(np.nanmin(bounds[ok, 0]))) - halo - 4, 0)
        wr0 = max(int(np.floor(np.nanmin(bounds[ok, 1]))) - halo - 4, 0)
        wc1 = min(int(np.ceil(np.nanmax(bounds[ok, 2]))) + halo + 4, w)
        wr1 = min(int(np.ceil(np.nanmax(bounds[ok, 3]))) + halo + 4, h)
    else:
        wc0 = wr0 = wc1 = wr1 = 0
    wc1, wr1 = max(wc1, wc0), max(wr1, wr0)
    sub = (slice(wr0, wr1), slice(wc0, wc1))
    vb = np.ascontiguousarray(valid[sub], dtype=np.bool_)
    gb, ga = _grey(before[(slice(None), *sub)]), _grey(after[(slice(None), *sub)])
    floor_b = noise_gradient(gb, vb, SMOOTH_PX)
    floor_a = noise_gradient(ga, vb, SMOOTH_PX)
    kern = gauss_kernel(SMOOTH_PX)
    dil = LEAN_M / gsd
    rows = np.zeros((len(footprints), len(FEATURE_COLUMNS)))
    for i, poly in enumerate(footprints):
        rings = _rings(poly) if poly is not None else []
        if not rings or not ok[i]:
            rows[i, :7] = (np.nan, np.nan, np.nan, np.nan, np.nan, 0.0, 0.0)
            continue
        xy = np.concatenate(rings) - np.array([wc0, wr0], np.float64)
        starts = np.cumsum([0] + [len(r) for r in rings]).astype(np.int64)
        x0, y0, x1, y1 = bounds[i]
        c0 = min(max(int(np.floor(x0 - dil)) - wc0, 0), gb.shape[1])
        r0 = min(max(int(np.floor(y0 - dil)) - wr0, 0), gb.shape[0])
        c1 = min(max(int(np.ceil(x1 + dil)) - wc0 + 1, 0), gb.shape[1])
        r1 = min(max(int(np.ceil(y1 + dil)) - wr0 + 1, 0), gb.shape[0])
        s = region_stats(
            xy, starts, c0, r0, c1, r1, dil, _axis_angle(poly), kern,
            gb, ga, vb, floor_b, floor_a,
        )  # fmt: skip
        n_reg, n_val, wb, wbc, wa, wac, n_in, n_in_val, dsum = s
        rows[i, :7] = (
            wbc / wb if wb > 0 else 0.0,
            wac / wa if wa > 0 else 0.0,
            wb / n_val if n_val else np.nan,
            wa / n_val if n_val else np.nan,
            dsum / n_in_val if n_in_val else np.nan,
            n_in,
            n_val / n_reg if n_reg else 0.0,
        )
    rows[:, 7:] = interior_colour(
        before[(slice(None), *sub)], after[(slice(None), *sub)], vb, gb, ga, footprints,
        (wc0, wr0), ERODE_M / gsd,
    )  # fmt: skip
    return pd.DataFrame(rows, columns=list(FEATURE_COLUMNS))


def damage_from_features(features: pd.DataFrame, gsd: float) -> pd.DataFrame:
    """Classify every footprint of the scene from its features (one global step).

    Two in-scene references, both unsupervised medians over the footprints with enough valid
    area: the typical before alignment ``ref`` (before the event the buildings stood) and the
    typical interior colour angle ``angle_ref`` (what nuisance alone does to a roof's colour
    between these two images). A razed building loses its straight edges *and* its roof:

    ``change = max(aln_before - aln_after, 0) / ref * colour_angle / angle_ref``

    that is, the share of a standing building's structure that was lost, times how many times
    more its sunlit interior changed colour than a typical footprint's. Either alone is fooled
    (neighbours' shadows moving with the sun take aligned edges away from an intact house; a
    new shadow or seasonal tint recolours a roof); their product is not. ``destroyed`` above
    :data:`CHANGE_DESTROYED`, ``damaged`` above :data:`CHANGE_DAMAGED`, and a building must
    also have lost :data:`MIN_LOSS` of its own before alignment. Without colour (fewer than 3
    bands) the structure-only rule applies: ``retained = aln_after / ref`` against
    :data:`RETAINED_DESTROYED` and :data:`RETAINED_INTACT`. Footprints with ``valid_fraction``
    below :data:`MIN_VALID_FRACTION` come out ``intact`` with score 0.

    Args:
        features: rows from :func:`footprint_features`, any index (kept).
        gsd: metres per pixel (recorded in the evidence).

    Returns:
        Columns ``score`` (0..1, confidence the building is destroyed), ``damage``
        ("intact", "damaged" or "destroyed") and ``evidence`` (JSON string), same index.
    """
    missing = [c for c in ("aln_before", "aln_after", "valid_fraction") if c not in features]
    if missing:
        raise InputError(f"footprint features: missing columns {missing}")
    f = features
    vf = f["valid_fraction"].to_numpy(float)
    ab = f["aln_before"].to_numpy(float)
    aa = f["aln_after"].to_numpy(float)
    usable = (vf >= MIN_VALID_FRACTION) & np.isfinite(ab) & np.isfinite(aa)
    ref = float(np.median(ab[usable])) if usable.any() else DEFAULT_REFERENCE
    # A scene of featureless footprints would make every ratio explode; keep a sane floor.
    ref = max(ref, 0.05)
    retained = np.where(usable, aa / ref, np.nan)
    loss = np.where(usable, ab - aa, np.nan)
    z2 = np.clip((MIN_LOSS - loss) / LOSS_WIDTH, -50, 50)
    lost = usable & (loss > MIN_LOSS)
    ang = f["colour_angle"].to_numpy(float) if "colour_angle" in f else np.full(len(f), np.nan)
    has_ang = usable & np.isfinite(ang)
    angle_ref = float(np.median(ang[has_ang])) if has_ang.any() else float("nan")
    # A typical footprint whose roof colour moved by more than MAX_ANGLE_REF means the
    # interiors do not compare roof with roof (off-nadir lean, misfit footprints, a scene
    # changed throughout): colour is no evidence there, structure alone decides.
    # Below MIN_ANGLE_REF the images carry no colour to compare (grey in RGB, or identical).
    use_colour = bool(has_ang.any()) and MIN_ANGLE_REF <= angle_ref <= MAX_ANGLE_REF
    if use_colour:
        # No sunlit interior on either date: no colour evidence either way (factor 1).
        ang_n = np.where(has_ang, ang / angle_ref, 1.0)
        change = np.where(usable, np.maximum(loss, 0.0) / ref * ang_n, np.nan)
        z1 = np.clip(
            -np.log(np.maximum(change, 1e-6) / CHANGE_DESTROYED) / CHANGE_LOG_WIDTH, -50, 50
        )
        damage = np.where(
            lost & (change > CHANGE_DESTROYED),
            "destroyed",
            np.where(lost & (change > CHANGE_DAMAGED), "damaged", "intact"),
        )
    else:
        change = np.full(len(f), np.nan)
        z1 = np.clip((retained - RETAINED_DESTROYED) / SCORE_WIDTH, -50, 50)
        damage = np.where(
            lost & (retained < RETAINED_DESTROYED),
            "destroyed",
            np.where(lost & (retained < RETAINED_INTACT), "damaged", "intact"),
        )
    score = np.where(usable, 1.0 / (1.0 + np.exp(z1)) / (1.0 + np.exp(z2)), 0.0)
    damage = np.where(usable, damage, "intact")
    extra = [
        c
        for c in ("edge_before", "edge_after", "grey_diff", "colour_angle", "lit_fraction")
        if c in f
    ]
    # Columns pulled out once as Python floats: per-row pandas look-ups cost seconds per scene.
    extra_cols = {c: f[c].to_numpy(float).tolist() for c in extra}
    scene_ref, angle_r, gsd_r = round(ref, 3), _r(angle_ref), round(float(gsd), 3)
    evidence = []
    for i in range(len(f)):
        ev = {
            "retained": None if not usable[i] else round(float(retained[i]), 3),
            "loss": None if not usable[i] else round(float(loss[i]), 4),
            "change": _r(change[i]),
            "aln_before": _r(ab[i]),
            "aln_after": _r(aa[i]),
            "scene_reference": scene_ref,
            "scene_angle_reference": angle_r,
            "colour_used": use_colour,
            "valid_fraction": _r(vf[i]),
            "gsd_m": gsd_r,
        }
        ev.update({c: _r(v[i]) for c, v in extra_cols.items()})
        if not usable[i]:
            ev["too_little_valid"] = True
        evidence.append(json.dumps(ev, separators=(",", ":")))
    return pd.DataFrame(
        {"score": score.astype(float), "damage": damage, "evidence": evidence}, index=f.index
    )


def _r(v: float) -> float | None:
    v = float(v)
    return round(v, 4) if math.isfinite(v) else None
