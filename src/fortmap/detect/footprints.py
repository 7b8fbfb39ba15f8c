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
recoloured roof alone calls a building destroyed. Two more cues of a razed building then move
that product by at most a factor 2 either way (the width of the ``damaged`` band): its roof's
texture (rubble is lumpy at the pixel scale where a roof is uniform; the median gradient over
the sunlit interior, after over before, against the scene's typical ratio) and its own cast
shadow (the dark share of a 3 m ring beyond the outline, as a first circular harmonic projected
on each date's shadow direction, which the footprints themselves give; a razed building casts
none). Without usable colour (grey bands, or a scene whose roofs do not sit on their footprints,
e.g. far off-nadir) the structure-only rule below applies, without these cues either.

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
    gradient_fields,
    interior_colour,
    noise_gradient,
    region_stats_all,
    shadow_threshold,
)
from fortmap.detect.pixel_kernels import band_mean_f32
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
#: Interior lit share below which the colour angle is weighted down in proportion (a median
#: over less than half the roof is mostly what happened to the rest of it, e.g. a shadow edge).
MIN_LIT_FRACTION = 0.5
#: Largest factor by which interior texture or lost shadow may move the structure-and-colour
#: change: CHANGE_DESTROYED / CHANGE_DAMAGED, the width of the damaged band.
CUE_LIMIT = 2.0
#: Two hypotheses per cue, and the evidence is centred between them. Shadow: a standing
#: building keeps its own shadow (loss 0), a razed one loses a typical building's (loss 1).
SHADOW_MIDPOINT = 0.5
#: Texture, in log2 of the after/before ratio over the scene's typical ratio: a standing roof
#: keeps it (0); rubble, lumps at the pixel scale, at least doubles it (1).
TEXTURE_MIDPOINT = 0.5
#: Smallest typical own-shadow harmonic (dark share of the ring, projected on the shadow
#: direction) at which shadows are used: a few per cent of a ring of 100-300 pixels is the
#: level of one footprint's sampling noise.
MIN_SHADOW_CONTRAST = 0.02
#: Fewest usable footprints for a scene median of the texture or shadow cue.
MIN_CUE_FOOTPRINTS = 20
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
    "tex_before",
    "tex_after",
    "shadow_x_before",
    "shadow_y_before",
    "shadow_x_after",
    "shadow_y_after",
)
#: Outer radius of the ring beyond a footprint's outline where its own cast shadow is looked
#: for, metres: a 3 m wall casts at least 1.7 m of shadow for sun elevations below 60 degrees,
#: and the ring stays clear of most neighbours across a street.
SHADOW_RING_M = 3.0


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
    if img.dtype == np.float32 and img.ndim == 3:
        return band_mean_f32(img, np.float32(1.0 / img.shape[0]))
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


def _all_rings(footprints: Sequence) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rings of :func:`_rings` of every footprint, flat.

    Returns (vertices (m, 2) float64, ring_start (rings + 1,) vertex offsets, fp_ring
    (n + 1,) ring offsets per footprint).
    """
    geoms = np.empty(len(footprints), dtype=object)
    geoms[:] = list(footprints)
    rings = [None] * len(geoms)
    poly = (shapely.get_type_id(geoms) == 3) & ~shapely.is_empty(geoms)
    if len(geoms) and poly.all():
        # only polygons (the usual case): their rings' coordinates are already flat, in order
        rr, owner = shapely.get_rings(geoms, return_index=True)
        xy, which = shapely.get_coordinates(rr, return_index=True)
        lens = np.bincount(which, minlength=len(rr))
        counts = np.bincount(owner, minlength=len(geoms))
        return (
            np.ascontiguousarray(xy, np.float64),
            np.concatenate([[0], np.cumsum(lens)]).astype(np.int64),
            np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        )
    if poly.any():
        rr, owner = shapely.get_rings(geoms[poly], return_index=True)
        xy, which = shapely.get_coordinates(rr, return_index=True)
        parts = np.split(xy, np.cumsum(np.bincount(which, minlength=len(rr)))[:-1])
        cut = np.searchsorted(owner, np.arange(int(poly.sum()) + 1))
        for j, i in enumerate(np.flatnonzero(poly)):
            rings[i] = parts[cut[j] : cut[j + 1]]
    for i in np.flatnonzero(~poly):
        rings[i] = _rings(geoms[i]) if geoms[i] is not None else []
    counts = np.array([len(r) for r in rings], np.int64)
    flat = [x for r in rings for x in r]
    lens = np.array([len(x) for x in flat], np.int64)
    xy = np.concatenate(flat) if flat else np.zeros((0, 2))
    return (
        np.ascontiguousarray(xy, np.float64),
        np.concatenate([[0], np.cumsum(lens)]).astype(np.int64),
        np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
    )


def _axis_angles(footprints: Sequence, use: np.ndarray) -> np.ndarray:
    """:func:`_axis_angle` of the footprints where ``use`` (0 elsewhere), radians."""
    out = np.zeros(len(footprints))
    idx = np.flatnonzero(use)
    if not len(idx):
        return out
    geoms = np.empty(len(idx), dtype=object)
    geoms[:] = [footprints[i] for i in idx]
    c, which = shapely.get_coordinates(shapely.minimum_rotated_rectangle(geoms), return_index=True)
    n = np.bincount(which, minlength=len(idx))
    first = np.concatenate([[0], np.cumsum(n)[:-1]])
    ok = n >= 3
    c3 = c[first[ok][:, None] + np.arange(3)]
    e = np.diff(c3, axis=1)
    k = np.argmax(np.hypot(e[..., 0], e[..., 1]), axis=1)
    ek = e[np.arange(len(k)), k]
    out[idx[ok]] = np.arctan2(ek[:, 1], ek[:, 0])
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
        ``area_px`` (pixels inside the footprint), ``valid_fraction`` (0..1 of the region),
        ``colour_angle`` (degrees) and ``lit_fraction`` (0..1) of
        :func:`~fortmap.detect.footprint_features.interior_colour`, ``tex_before``/
        ``tex_after`` (median gradient over the sunlit interior, grey units per pixel) and
        ``shadow_x_*``/``shadow_y_*`` (mean over the valid pixels within
        :data:`SHADOW_RING_M` outside the outline of darkness, 0 or 1, times the unit
        outward direction in pixel axes, x = column, y = row).
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
    thr = (shadow_threshold(gb, vb), shadow_threshold(ga, vb))
    dark_b, dark_a = gb < thr[0], ga < thr[1]
    fields_b, fields_a = gradient_fields(gb, SMOOTH_PX), gradient_fields(ga, SMOOTH_PX)
    dil = LEAN_M / gsd
    rows = np.zeros((len(footprints), len(FEATURE_COLUMNS)))
    xy, ring_start, fp_ring = _all_rings(footprints)
    has = (fp_ring[1:] > fp_ring[:-1]) & ok
    xy = xy - np.array([wc0, wr0], np.float64)
    with np.errstate(invalid="ignore"):
        boxes = np.stack(
            [
                np.floor(bounds[:, 0] - dil) - wc0,
                np.floor(bounds[:, 1] - dil) - wr0,
                np.ceil(bounds[:, 2] + dil) - wc0 + 1,
                np.ceil(bounds[:, 3] + dil) - wr0 + 1,
            ],
            axis=1,
        )
    boxes[~has] = 0
    boxes = np.clip(boxes, 0, [gb.shape[1], gb.shape[0]] * 2).astype(np.int64)
    s = region_stats_all(
        xy, ring_start, fp_ring[:-1], np.where(has, fp_ring[1:], fp_ring[:-1]), boxes,
        _axis_angles(footprints, has), dil,
        fields_b, fields_a, gb, ga, vb, floor_b, floor_a, dark_b, dark_a, SHADOW_RING_M / gsd,
    )  # fmt: skip
    n_reg, n_val, wb, wbc, wa, wac, n_in, n_in_val, dsum, n_ring = s[:, :10].T
    with np.errstate(invalid="ignore", divide="ignore"):
        rows[:, 0] = np.where(wb > 0, wbc / wb, 0.0)
        rows[:, 1] = np.where(wa > 0, wac / wa, 0.0)
        rows[:, 2] = np.where(n_val > 0, wb / n_val, np.nan)
        rows[:, 3] = np.where(n_val > 0, wa / n_val, np.nan)
        rows[:, 4] = np.where(n_in_val > 0, dsum / n_in_val, np.nan)
        rows[:, 5] = n_in
        rows[:, 6] = np.where(n_reg > 0, n_val / n_reg, 0.0)
        rows[:, 11:] = np.where(n_ring[:, None] > 0, s[:, 10:14] / n_ring[:, None], np.nan)
    rows[~has, :7] = (np.nan, np.nan, np.nan, np.nan, np.nan, 0.0, 0.0)
    rows[~has, 11:] = np.nan
    rows[:, 7:11] = interior_colour(
        before[(slice(None), *sub)], after[(slice(None), *sub)], vb, gb, ga, footprints,
        (wc0, wr0), ERODE_M / gsd, thr, SMOOTH_PX, (fields_b[0], fields_a[0]),
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
    more its sunlit interior changed colour than a typical footprint's (the colour term is
    weighted down where less than :data:`MIN_LIT_FRACTION` of the interior is sunlit). Either
    alone is fooled (neighbours' shadows moving with the sun take aligned edges away from an
    intact house; a new shadow or seasonal tint recolours a roof); their product is not. It is
    then multiplied by ``2 ** mean(e_texture, e_shadow)``, each cue in log2 units centred
    between its two hypotheses (:data:`TEXTURE_MIDPOINT`, :data:`SHADOW_MIDPOINT`) and bounded
    to ``+-log2(CUE_LIMIT)``; an unknown cue counts 0. ``destroyed`` above
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
    tex_n = shadow_loss = np.full(len(f), np.nan)
    if use_colour:
        # No sunlit interior on either date: no colour evidence either way (factor 1). A
        # median over a sliver of lit roof is noise: weight it by the lit share up to half.
        lit = f["lit_fraction"].to_numpy(float) if "lit_fraction" in f else np.ones(len(f))
        w = np.clip(np.nan_to_num(lit) / MIN_LIT_FRACTION, 0.0, 1.0)
        ang_n = np.where(has_ang, 1.0 + (ang / angle_ref - 1.0) * w, 1.0)
        change = np.where(usable, np.maximum(loss, 0.0) / ref * ang_n, np.nan)
        tex_n = _texture_change(f, usable)
        shadow_loss = _shadow_loss(f, usable)
        # Rubble's texture and the lost cast shadow, each in log2 units centred between its
        # two hypotheses and bounded to +-log2(CUE_LIMIT), are averaged: together they can
        # carry a building across the damaged band (CHANGE_DAMAGED..CHANGE_DESTROYED) either
        # way, neither can alone, and where a cue is unknown (NaN) it says nothing (0).
        lim = math.log2(CUE_LIMIT)
        with np.errstate(divide="ignore", invalid="ignore"):
            e_tex = np.log2(tex_n) - TEXTURE_MIDPOINT
        e_tex = np.clip(np.nan_to_num(e_tex, nan=0.0), -lim, lim)
        e_sh = np.clip(np.nan_to_num(shadow_loss - SHADOW_MIDPOINT, nan=0.0), -lim, lim)
        change = change * 2.0 ** (0.5 * (e_tex + e_sh))
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
    # Columns rounded once as Python floats: per-row pandas look-ups and per-value calls cost
    # seconds per scene; one encoder, where ``json.dumps`` builds one per call.
    extra_cols = {c: _r_all(f[c].to_numpy(float)) for c in extra}
    scene_ref, angle_r, gsd_r = round(ref, 3), _r(angle_ref), round(float(gsd), 3)
    ret3 = [round(v, 3) for v in retained.tolist()]
    loss4 = [round(v, 4) for v in loss.tolist()]
    change_r, ab_r, aa_r = _r_all(change), _r_all(ab), _r_all(aa)
    tex_r, sh_r, vf_r = _r_all(tex_n), _r_all(shadow_loss), _r_all(vf)
    enc = json.JSONEncoder(separators=(",", ":"))
    evidence = []
    for i, ok in enumerate(usable.tolist()):
        ev = {
            "retained": ret3[i] if ok else None,
            "loss": loss4[i] if ok else None,
            "change": change_r[i],
            "aln_before": ab_r[i],
            "aln_after": aa_r[i],
            "scene_reference": scene_ref,
            "scene_angle_reference": angle_r,
            "colour_used": use_colour,
            "texture_change": tex_r[i],
            "shadow_loss": sh_r[i],
            "valid_fraction": vf_r[i],
            "gsd_m": gsd_r,
        }
        ev.update({c: v[i] for c, v in extra_cols.items()})
        if not ok:
            ev["too_little_valid"] = True
        evidence.append(enc.encode(ev))
    return pd.DataFrame(
        {"score": score.astype(float), "damage": damage, "evidence": evidence}, index=f.index
    )


def _texture_change(f: pd.DataFrame, usable: np.ndarray) -> np.ndarray:
    """After/before interior texture ratio over the scene's typical ratio (NaN: unknown).

    The scene median absorbs what blur, noise and haze do to every roof between the dates.
    """
    if "tex_before" not in f or "tex_after" not in f:
        return np.full(len(f), np.nan)
    tb, ta = f["tex_before"].to_numpy(float), f["tex_after"].to_numpy(float)
    ok = usable & np.isfinite(tb) & np.isfinite(ta) & (tb > 0)
    r = np.where(ok, ta / np.where(ok, tb, 1.0), np.nan)
    if ok.sum() < MIN_CUE_FOOTPRINTS:
        return np.full(len(f), np.nan)
    typ = float(np.median(r[ok]))
    return r / typ if typ > 0 else np.full(len(f), np.nan)


def _shadow_loss(f: pd.DataFrame, usable: np.ndarray) -> np.ndarray:
    """Share of a typical building's own cast shadow lost between the dates (NaN: unknown).

    Each date's shadow direction is the mean of the footprints' shadow harmonics (before the
    event nearly every building stood, and after it most still do); each footprint's shadow is
    its harmonic projected on that direction, in units of the scene's median. The difference
    before minus after is about 1 for a building that lost its shadow, 0 for one that kept it.
    A date whose typical building shows less than :data:`MIN_SHADOW_CONTRAST` has no usable
    shadows (overcast, sun near zenith, no ring of free ground): NaN.
    """
    cols = [f"shadow_{a}_{d}" for d in ("before", "after") for a in ("x", "y")]
    if any(c not in f for c in cols):
        return np.full(len(f), np.nan)
    own = []
    for d in ("before", "after"):
        x, y = f[f"shadow_x_{d}"].to_numpy(float), f[f"shadow_y_{d}"].to_numpy(float)
        ok = usable & np.isfinite(x) & np.isfinite(y)
        if ok.sum() < MIN_CUE_FOOTPRINTS:
            return np.full(len(f), np.nan)
        phi = math.atan2(float(y[ok].sum()), float(x[ok].sum()))
        proj = np.where(ok, x * math.cos(phi) + y * math.sin(phi), np.nan)
        typ = float(np.median(proj[ok]))
        if typ < MIN_SHADOW_CONTRAST:
            return np.full(len(f), np.nan)
        own.append(proj / typ)
    return own[0] - own[1]


def _r(v: float) -> float | None:
    v = float(v)
    return round(v, 4) if math.isfinite(v) else None


def _r_all(a: np.ndarray) -> list[float | None]:
    """``_r`` of every value of a float array, as a list."""
    isf = math.isfinite
    return [round(v, 4) if isf(v) else None for v in np.asarray(a, float).tolist()]
