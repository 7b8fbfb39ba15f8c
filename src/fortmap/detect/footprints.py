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

The global step divides each after-image alignment by the scene's typical *before* alignment
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

from fortmap.detect.footprint_features import gauss_kernel, noise_gradient, region_stats
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

FEATURE_COLUMNS: tuple[str, ...] = (
    "aln_before",
    "aln_after",
    "edge_before",
    "edge_after",
    "grey_diff",
    "area_px",
    "valid_fraction",
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
            rows[i] = (np.nan, np.nan, np.nan, np.nan, np.nan, 0.0, 0.0)
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
        rows[i] = (
            wbc / wb if wb > 0 else 0.0,
            wac / wa if wa > 0 else 0.0,
            wb / n_val if n_val else np.nan,
            wa / n_val if n_val else np.nan,
            dsum / n_in_val if n_in_val else np.nan,
            n_in,
            n_val / n_reg if n_reg else 0.0,
        )
    return pd.DataFrame(rows, columns=list(FEATURE_COLUMNS))


def damage_from_features(features: pd.DataFrame, gsd: float) -> pd.DataFrame:
    """Classify every footprint of the scene from its features (one global step).

    The reference is the median ``aln_before`` over the scene's footprints with enough valid
    area (an unsupervised in-scene statistic: before the event the buildings stood);
    ``retained = aln_after / reference``. Limits :data:`RETAINED_DESTROYED` and
    :data:`RETAINED_INTACT` are first-principles shares, not fitted to labels; a building must
    also have lost more than :data:`MIN_LOSS` of its own before alignment (set from null
    controls) to leave ``intact``. ``score`` is the product of the two logistic terms. Footprints with
    ``valid_fraction`` below :data:`MIN_VALID_FRACTION` come out ``intact`` with score 0.

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
    z1 = np.clip((retained - RETAINED_DESTROYED) / SCORE_WIDTH, -50, 50)
    z2 = np.clip((MIN_LOSS - loss) / LOSS_WIDTH, -50, 50)
    score = np.where(usable, 1.0 / (1.0 + np.exp(z1)) / (1.0 + np.exp(z2)), 0.0)
    lost = usable & (loss > MIN_LOSS)
    damage = np.where(
        lost & (retained < RETAINED_DESTROYED),
        "destroyed",
        np.where(lost & (retained < RETAINED_INTACT), "damaged", "intact"),
    )
    extra = [c for c in ("edge_before", "edge_after", "grey_diff") if c in f]
    evidence = []
    for i in range(len(f)):
        ev = {
            "retained": None if not usable[i] else round(float(retained[i]), 3),
            "loss": None if not usable[i] else round(float(loss[i]), 4),
            "aln_before": _r(ab[i]),
            "aln_after": _r(aa[i]),
            "scene_reference": round(ref, 3),
            "valid_fraction": _r(vf[i]),
            "gsd_m": round(float(gsd), 3),
        }
        ev.update({c: _r(f[c].iat[i]) for c in extra})
        if not usable[i]:
            ev["too_little_valid"] = True
        evidence.append(json.dumps(ev, separators=(",", ":")))
    return pd.DataFrame(
        {"score": score.astype(float), "damage": damage, "evidence": evidence}, index=f.index
    )


def _r(v: float) -> float | None:
    v = float(v)
    return round(v, 4) if math.isfinite(v) else None
