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

This module measures the features; the scene-wide classification and its constants are in
:mod:`fortmap.detect.footprint_damage` (:func:`damage_from_features` is re-exported here), the
kernels in :mod:`fortmap.detect.footprint_features` and
:mod:`fortmap.detect.footprint_gradients`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from fortmap.detect.footprint_damage import (  # noqa: F401  (re-exported)
    CHANGE_DAMAGED,
    CHANGE_DESTROYED,
    MIN_LOSS,
    MIN_VALID_FRACTION,
    RETAINED_DESTROYED,
    RETAINED_INTACT,
    damage_from_features,
)
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


@dataclass(frozen=True)
class FootprintScene:
    """The footprint features' two image-wide measures, taken once for the scene.

    Taken over each window's pixels instead, they moved with the window. On a Helsinki-layout
    scene, 216 of 327 footprint scores changed between 512 and 1024 px windows, and one
    destroyed building (0.47) read intact (0.001).

    Attributes:
        floor_b, floor_a: gradient magnitude that pixel noise alone gives in each image
            (:func:`~fortmap.detect.footprint_features.noise_gradient`, grey units per pixel).
        shadow_b, shadow_a: grey level below which a pixel is cast shadow in each image
            (:func:`~fortmap.detect.footprint_features.shadow_threshold`).
    """

    floor_b: float
    floor_a: float
    shadow_b: float
    shadow_a: float


def footprint_scene(before: np.ndarray, after: np.ndarray, valid: np.ndarray) -> FootprintScene:
    """:class:`FootprintScene` from a sample of the scene (``io.grids.sample_mosaic``,
    normalised as the windows are read: float32 (bands, rows, cols) and bool (rows, cols))."""
    vb = np.ascontiguousarray(valid, dtype=np.bool_)
    gb, ga = _grey(np.asarray(before, np.float32)), _grey(np.asarray(after, np.float32))
    return _measures(gb, ga, vb)


def _measures(gb: np.ndarray, ga: np.ndarray, vb: np.ndarray) -> FootprintScene:
    """The noise floors and shadow thresholds of grey levels ``gb``, ``ga`` over ``vb``."""
    return FootprintScene(
        noise_gradient(gb, vb, SMOOTH_PX),
        noise_gradient(ga, vb, SMOOTH_PX),
        shadow_threshold(gb, vb),
        shadow_threshold(ga, vb),
    )


def footprint_features(
    before: np.ndarray,
    after: np.ndarray,
    valid: np.ndarray,
    footprints: Sequence[shapely.Polygon],
    gsd: float,
    scene: FootprintScene | None = None,
) -> pd.DataFrame:
    """Structure measures of each footprint in the before and after images of one tile.

    Args:
        before, after: float32 (bands, H, W) on the same pixel grid, reflectance-like ~0..1.
        valid: bool (H, W), False on nodata or cloud in either image.
        footprints: polygons in this array's pixel coordinates (x = column, y = row, (0, 0) the
            top-left corner of the top-left pixel); parts outside the array are clipped.
        gsd: metres per pixel.
        scene: the noise floors and shadow thresholds of the whole scene
            (:func:`footprint_scene`), or None to take them over the tile.

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
    if scene is None:
        scene = _measures(gb, ga, vb)
    floor_b, floor_a = scene.floor_b, scene.floor_a
    thr = (scene.shadow_b, scene.shadow_a)
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
