"""Numba kernels of the footprint scorer: per-footprint gradient patches and region sums.

Split from :mod:`fortmap.detect.footprints` to keep modules short; see there for the method.
Everything is in pixel units of the tile the arrays come from.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numba
import numpy as np
import shapely
from numba.core import types as nb_types
from numba.extending import intrinsic
from skimage.filters import threshold_otsu

from fortmap.detect.footprint_gradients import (  # noqa: F401  (re-exported: tests, callers)
    _gradient_fields_numpy,
    gradient_fields,
    gradients,
)
from fortmap.detect.footprint_medians import lit_interior_medians
from fortmap.detect.pixel_kernels import (  # noqa: F401  (_label_medians: tests)
    _interior_medians,
    _label_medians,
    abs_laplacian_every_other,
    abs_laplacian_numpy,
    lit_counts,
    lit_labels,
)
from fortmap.detect.selection_kernels import median_inplace
from fortmap.io.polygon_fill import burn_polygons

#: Added to every band before the spectral angle, reflectance units: keeps the angle of
#: near-black pixels (deep shadow, water) from being pure noise.
ANGLE_EPS = 0.01
#: Smallest interior texture reported, grey units per pixel of :func:`gradients`: one 8-bit
#: grey level.
TEXTURE_FLOOR = 1.0 / 255.0


def shadow_threshold(grey: np.ndarray, valid: np.ndarray) -> float:
    """Grey level below which a pixel is taken as cast shadow (unsupervised, in-scene).

    Cast shadows are lit by the sky alone, several times darker than the same surface in sun,
    so they form the dark mode of log-brightness; Otsu's threshold on log grey splits it off.
    Returns 0 (no shadow) when the image has too few valid pixels or no spread.
    """
    g = grey[::4, ::4][valid[::4, ::4]]
    g = g[np.isfinite(g)]
    if g.size < 64:
        return 0.0
    lg = np.log(np.clip(g, 1e-3, None))
    if float(lg.max() - lg.min()) < 1e-6:
        return 0.0
    return float(np.exp(threshold_otsu(lg)))


def interior_colour(
    before: np.ndarray,
    after: np.ndarray,
    valid: np.ndarray,
    grey_b: np.ndarray,
    grey_a: np.ndarray,
    footprints: Sequence[shapely.Geometry],
    offset: tuple[int, int],
    erode_px: float,
    shadow_thresholds: tuple[float, float] | None = None,
    smooth_px: float = 0.7,
    magnitudes: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Median after-vs-before spectral angle and texture inside each footprint, sunlit pixels.

    The footprint is shrunk by ``erode_px`` so walls, misregistration and blur stay out; pixels
    in cast shadow on either date (below :func:`shadow_threshold`) are left out, because a
    shadow that moved with the sun changes a roof's colour (sky light is bluish) without
    anything happening to it. The median ignores roof details and a stray shadow edge.

    Texture is the median gradient magnitude (Gaussian ``smooth_px`` then Sobel, grey units per
    pixel) over the same pixels, on each date: a roof is a uniform surface, rubble a clutter
    of lumps at the pixel scale, so razing raises it several times while a shadow edge or a
    roof fixture, a minority of the pixels, leaves the median alone.

    Args:
        before, after: (bands, H, W) arrays of the sub-window, same grid.
        valid: bool (H, W).
        grey_b, grey_a: band means of ``before`` and ``after``.
        footprints: polygons in tile pixel coordinates.
        offset: (col, row) of the sub-window's top-left pixel in tile pixel coordinates.
        erode_px: inward buffer, pixels.
        shadow_thresholds: grey levels of cast shadow in ``grey_b`` and ``grey_a``
            (default: :func:`shadow_threshold` of each).
        smooth_px: Gaussian sigma before the texture gradient, pixels.
        magnitudes: gradient magnitudes of ``grey_b`` and ``grey_a`` if already computed
            (:func:`gradient_fields`).

    Returns:
        (n, 4) array: colour angle in degrees (NaN with fewer than 3 bands or no sunlit
        interior pixel), the share of the interior lit on both dates (0..1), and the before
        and after texture (NaN without a sunlit interior pixel).
    """
    n = len(footprints)
    out = np.full((n, 4), np.nan)
    out[:, 1] = 0.0
    h, w = valid.shape
    if n == 0 or h == 0 or w == 0:
        return out
    geoms = np.asarray(footprints, dtype=object)
    ok = shapely.is_geometry(geoms) & ~shapely.is_empty(geoms)
    if not ok.any():
        return out
    shift = np.array(offset, np.float64)
    geoms = shapely.transform(geoms[ok], lambda c: c - shift)
    small = shapely.buffer(geoms, -erode_px, quad_segs=1)
    # Small or thin footprints would vanish: keep at least their own outline.
    keep = shapely.area(small) >= 4.0
    chosen = np.where(keep, small, geoms)
    # GDAL's centre-of-pixel rule, compiled (rasterio's own for anything but plain polygons)
    lab = burn_polygons(chosen, np.flatnonzero(ok) + 1, (h, w), "int32")
    if shadow_thresholds is None:
        shadow_thresholds = (shadow_threshold(grey_b, valid), shadow_threshold(grey_a, valid))
    valid = np.ascontiguousarray(valid, np.bool_)
    tb, ta = shadow_thresholds
    # float32 greys against Python floats: the lit test in the kernels, in float32 as numpy
    # compares them, with no lit mask or label image of the whole sub-window
    fused = (
        grey_b.dtype == np.float32 and grey_a.dtype == np.float32 and type(tb) is type(ta) is float
    )
    if fused:
        tb, ta = np.float32(tb), np.float32(ta)
        n_in, n_lit = lit_counts(lab, valid, grey_b, grey_a, tb, ta, n)
    else:
        lit = (grey_b > tb) & (grey_a > ta)
        n_in, lab_lit, n_lit = lit_labels(lab, valid, lit, n)
    out[:, 1] = np.where(n_in > 0, n_lit / np.maximum(n_in, 1), 0.0)
    has = n_lit > 0
    if not has.any():
        return out
    counts = n_lit.astype(np.int64)
    if magnitudes is None:
        magnitudes = (gradients(grey_b, smooth_px)[0], gradients(grey_a, smooth_px)[0])
    angles = before.shape[0] >= 3
    mb, ma, b3, a3 = magnitudes[0], magnitudes[1], before[:3], after[:3]
    # the three medians from one grouping pass over the labels (no full-size angle image),
    # by a branch-free selection (footprint_medians)
    if fused:
        med = lit_interior_medians(
            lab, valid, grey_b, grey_a, tb, ta, mb, ma, b3, a3, counts, ANGLE_EPS, angles
        )
    else:
        med = _interior_medians(lab_lit, mb, ma, b3, a3, counts, ANGLE_EPS, angles)
    for col in (2, 3):
        # A flawless roof in a noiseless image has no texture at all; one grey level of an
        # 8-bit image per pixel is the least an image can show, and keeps ratios finite.
        out[has, col] = np.maximum(med[col - 2][has], TEXTURE_FLOOR)
    if angles:
        out[has, 0] = med[2][has]
    return out


def noise_gradient(grey: np.ndarray, valid: np.ndarray, smooth_px: float) -> float:
    """Mean gradient magnitude that pixel noise alone would give (units of :func:`gradients`).

    Noise sigma from Immerkaer's Laplacian-difference estimator (robust to edges), times the
    mean gradient magnitude that our smoothing + Sobel chain gives on unit white noise.
    """
    h, w = grey.shape
    if h < 3 or w < 3:
        return 0.0
    # Every other pixel is plenty for a median and halves the cost.
    if grey.dtype in (np.float32, np.float64):
        lap = abs_laplacian_every_other(grey, np.ascontiguousarray(valid, np.bool_))
    else:
        lap = abs_laplacian_numpy(grey, valid)
    if lap.size < 16:
        return 0.0
    # The kernel's weights square-sum to 36, so on noise |lap| is half-normal with scale 6 sigma;
    # its median (0.6745 * scale) is set by noise while edges and rubble inflate the mean.
    # (lap is a fresh float64 array: the selection may reorder it.)
    sigma = float(median_inplace(lap)) / (6.0 * 0.6745)
    return sigma * _unit_noise_gradient(smooth_px)


_UNIT_NOISE: dict[float, float] = {}


def _unit_noise_gradient(smooth_px: float) -> float:
    if smooth_px not in _UNIT_NOISE:
        z = np.random.default_rng(0).standard_normal((256, 256)).astype(np.float32)
        mag, _ = gradients(z, smooth_px)
        _UNIT_NOISE[smooth_px] = float(mag[8:-8, 8:-8].mean())
    return _UNIT_NOISE[smooth_px]


@numba.njit(cache=True, nogil=True)
def _is_ring_end(ring_start: np.ndarray, i: int) -> bool:
    """True when vertex i is the last of its ring (the segment i -> i+1 would jump rings)."""
    for k in range(1, ring_start.shape[0]):
        if i == ring_start[k] - 1:
            return True
    return False


@intrinsic
def _fma(typingctx, a, b, c):  # pragma: no cover - compiled
    """``a * b + c`` rounded once (LLVM's ``fma``), float64."""
    sig = nb_types.float64(nb_types.float64, nb_types.float64, nb_types.float64)

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return sig, codegen


@numba.njit(cache=True, nogil=True, fastmath=False)
def _row_distances(c0, py, sx, ns, best, bxs, bys):  # pragma: no cover - compiled
    """Squared distance (pixels^2) from the centres of pixels ``c0 .. c0 + len(best) - 1`` of
    the row at ``py`` to the nearest of the ``ns`` segments ``sx`` (x1, y1, dx, dy, dx^2 + dy^2
    by columns) into ``best``, and the offset from that segment's nearest point into ``bxs``,
    ``bys`` (the first segment on ties).

    Segment by segment over the whole row, so the loop vectorises. The roundings are those
    LLVM gave the per-pixel loop of :func:`region_stats` under ``fastmath`` (contracted to
    fused multiply-adds, a true division by the length), written out with explicit ``fma``
    and compiled without ``fastmath`` (explicitly: a callee inherits it otherwise), where
    the row loop would take the reciprocal of the loop-invariant length instead.
    """
    nc = best.shape[0]
    for j in range(nc):
        best[j] = np.inf
        bxs[j] = 0.0
        bys[j] = 0.0
    for q in range(ns):
        x1, y1, dx, dy, ll = sx[0, q], sx[1, q], sx[2, q], sx[3, q], sx[4, q]
        oy = py - y1
        if ll > 0:
            for j in range(nc):
                px = (c0 + j) + 0.5
                t = min(1.0, max(0.0, _fma(oy, dy, (px - x1) * dx) / ll))
                ex, ey = px - _fma(t, dx, x1), py - _fma(t, dy, y1)
                d2 = _fma(ex, ex, ey * ey)
                if d2 < best[j]:
                    best[j], bxs[j], bys[j] = d2, ex, ey
        else:
            for j in range(nc):
                px = (c0 + j) + 0.5
                ex, ey = px - x1, oy
                d2 = _fma(ex, ex, ey * ey)
                if d2 < best[j]:
                    best[j], bxs[j], bys[j] = d2, ex, ey


@numba.njit(cache=True, nogil=True, fastmath=True)
def region_stats(
    xy: np.ndarray,
    ring_start: np.ndarray,
    c0: int,
    r0: int,
    c1: int,
    r1: int,
    dil: float,
    theta: float,
    fields_b: tuple,
    fields_a: tuple,
    grey_b: np.ndarray,
    grey_a: np.ndarray,
    valid: np.ndarray,
    floor_b: float,
    floor_a: float,
    dark_b: np.ndarray,
    dark_a: np.ndarray,
    ring: float,
) -> np.ndarray:  # pragma: no cover - compiled
    """Sums over the pixels within ``dil`` px of the polygon (pixel centres), one footprint.

    Pixels outside the polygon within ``ring`` px of it also add their darkness (``dark_b``,
    ``dark_a``: bool, cast shadow) times the unit outward direction from the nearest point of
    the outline: the first circular harmonic of the shadow around the building.

    Each row's outline crossings are worked out once (not once per pixel), the segments of
    the distance search once per footprint and the search itself for a whole row at a time
    (:func:`_row_distances`), with the same roundings as the pixel-by-pixel reference
    (``tests/test_footprints.py``) and every sum in the same order, so the result is the same.
    """
    out = np.zeros(14)
    if r1 <= r0 or c1 <= c0:
        return out
    mag_b, c4_b, s4_b = fields_b
    mag_a, c4_a, s4_a = fields_a
    c4, s4 = math.cos(4.0 * theta), math.sin(4.0 * theta)
    nr = ring_start.shape[0] - 1
    dil2 = dil * dil
    ring2 = min(ring, dil) ** 2
    nv = xy.shape[0]
    # segments of the distance search, in the order region_stats visits them
    sx = np.empty((5, max(nv - 1, 0)))
    ns = 0
    for i in range(nv - 1):
        if not _is_ring_end(ring_start, i):
            x1, y1 = xy[i, 0], xy[i, 1]
            dx, dy = xy[i + 1, 0] - x1, xy[i + 1, 1] - y1
            sx[0, ns], sx[1, ns], sx[2, ns], sx[3, ns] = x1, y1, dx, dy
            sx[4, ns] = dx * dx + dy * dy
            ns += 1
    xc = np.empty(max(nv, 1))
    nc = c1 - c0
    best, bxs, bys = np.empty(nc), np.empty(nc), np.empty(nc)
    # the sums of every pixel in registers (an element of ``out`` is stored and reloaded each
    # time), each added to in the same order as before; the shadow sums of the few ring
    # pixels stay in ``out``, where fastmath rounds them as the tests' reference does
    s0 = s1 = s2 = s3 = s4_ = s5 = s6 = s7 = s8 = s9 = 0.0
    for r in range(r0, r1):
        py = r + 0.5
        nx = 0
        for k in range(nr):
            for i in range(ring_start[k], ring_start[k + 1] - 1):
                y1, y2 = xy[i, 1], xy[i + 1, 1]
                if (y1 > py) != (y2 > py):
                    x1, x2 = xy[i, 0], xy[i + 1, 0]
                    xc[nx] = x1 + (py - y1) * (x2 - x1) / (y2 - y1)
                    nx += 1
        _row_distances(c0, py, sx, ns, best, bxs, bys)
        for c in range(c0, c1):
            px = c + 0.5
            inside = False
            for q in range(nx):
                if px < xc[q]:
                    inside = not inside
            if not inside:
                d2 = best[c - c0]
                if d2 > dil2:
                    continue
                if d2 <= ring2 and d2 > 0 and valid[r, c]:
                    inv = 1.0 / math.sqrt(d2)
                    bx, by = bxs[c - c0], bys[c - c0]
                    s9 += 1
                    if dark_b[r, c]:
                        out[10] += bx * inv
                        out[11] += by * inv
                    if dark_a[r, c]:
                        out[12] += bx * inv
                        out[13] += by * inv
            s0 += 1
            if inside:
                s6 += 1
            if not valid[r, c]:
                continue
            s1 += 1
            wb = max(mag_b[r, c] - floor_b, 0.0)
            wa = max(mag_a[r, c] - floor_a, 0.0)
            s2 += wb
            s3 += wb * (c4_b[r, c] * c4 + s4_b[r, c] * s4)
            s4_ += wa
            s5 += wa * (c4_a[r, c] * c4 + s4_a[r, c] * s4)
            if inside:
                s7 += 1
                s8 += abs(grey_a[r, c] - grey_b[r, c])
    out[0], out[1], out[2], out[3], out[4], out[5], out[6] = s0, s1, s2, s3, s4_, s5, s6
    out[7], out[8], out[9] = s7, s8, s9
    return out


@numba.njit(cache=True, nogil=True)
def region_stats_all(
    xy, ring_start, fp_first, fp_last, boxes, thetas, dil, fields_b, fields_a,
    grey_b, grey_a, valid, floor_b, floor_a, dark_b, dark_a, ring,
):  # pragma: no cover - compiled  # fmt: skip
    """:func:`region_stats` of many footprints in one call, (n, 14).

    Footprint i has the rings ``fp_first[i]:fp_last[i]``, whose vertices start at
    ``ring_start`` (into ``xy``), and the pixel box ``boxes[i]`` (c0, r0, c1, r1); one without
    rings gets zeros.
    """
    n = thetas.shape[0]
    out = np.zeros((n, 14))
    for i in range(n):
        a, b = fp_first[i], fp_last[i]
        if a == b:
            continue
        p0, p1 = ring_start[a], ring_start[b]
        out[i] = region_stats(
            xy[p0:p1], ring_start[a : b + 1] - p0, boxes[i, 0], boxes[i, 1], boxes[i, 2],
            boxes[i, 3], dil, thetas[i], fields_b, fields_a, grey_b, grey_a, valid, floor_b,
            floor_a, dark_b, dark_a, ring,
        )  # fmt: skip
    return out
