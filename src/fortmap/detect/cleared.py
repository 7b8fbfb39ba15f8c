"""Cleared land: wide areas graded to bare ground between the two dates.

Clearing at a city's edge removes trees, fields, fences and small buildings over hectares and
leaves smooth bare soil. Per window we summarise both images over blocks of about 2 m (so the
scene-wide stage holds 1/16 of the pixels or less); the scene-wide stage then keeps blocks that
changed *and* lost texture, closes and opens them at the scale of a swath, and keeps the
connected areas above a minimum size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from affine import Affine
from numba import njit
from rasterio import features
from scipy import ndimage as ndi

from fortmap.detect.change_stats import median_np
from fortmap.detect.cleared_morph import binary_dilation, binary_erosion, disk, fill_holes

#: Block statistics computed per window, in this order along axis 0.
BLOCK_FIELDS = ("valid", "changed", "dcolor", "tex_before", "tex_after")
#: Structures narrower than this, metres (roads, single buildings), are not clearings.
SWATH_M = 12.0


def block_px_for(gsd: float, block_m: float = 2.0) -> int:
    """Block side in pixels for a ground sample distance ``gsd`` (metres per pixel)."""
    return max(1, int(round(block_m / gsd)))


@njit(cache=True, nogil=True)
def _block_kernel(before, after, valid, change, block):  # pragma: no cover - compiled
    if before.shape[0] == 3:
        return _block_kernel3(before, after, valid, change, block)
    return _block_kernel_any(before, after, valid, change, block)


@njit(cache=True, nogil=True)
def _grey_row(x, i, g):  # pragma: no cover - compiled
    """Grey level (band sum, float64, summed from 0.0 in band order) of row ``i`` into ``g``."""
    for j in range(x.shape[2]):
        g[j] = ((0.0 + x[0, i, j]) + x[1, i, j]) + x[2, i, j]


@njit(cache=True, nogil=True)
def _texture_rows(x, r0, r1, g, right, down):  # pragma: no cover - compiled
    """Texture terms of rows r0..r1-1: |grey(right) - grey| / 3 and |grey(below) - grey| / 3.

    ``g`` holds rows r0..r1 of grey levels (the last only when below the image); row r0 is
    reused from the previous call. Each term is the division of :func:`_block_kernel_any`,
    done once per pixel and in whole rows (vectorised) instead of per block. A term with no
    neighbour is 0.0, which leaves a sum that started at +0.0 unchanged when added.
    """
    h, w = x.shape[1], x.shape[2]
    for i in range(r0, r1):
        k = i - r0
        if i + 1 < h:
            _grey_row(x, i + 1, g[k + 1])
            for j in range(w):
                down[k, j] = abs(g[k + 1, j] - g[k, j]) / 3
        else:
            down[k, :] = 0.0
        for j in range(w - 1):
            right[k, j] = abs(g[k, j + 1] - g[k, j]) / 3
        right[k, w - 1] = 0.0
    # the last grey row becomes the first of the next block row
    g[0, :] = g[r1 - r0, :]


@njit(cache=True, nogil=True)
def _block_kernel3(before, after, valid, change, block):  # pragma: no cover - compiled
    """:func:`_block_kernel_any` for three bands, the usual case, bit for bit.

    Grey levels and their neighbour differences are computed once per pixel, a block row at
    a time, in whole rows (the per-block loop recomputed each grey level three times and
    divided inside its branches); the per-block sums then add the same float64 terms in the
    same order (rows, then columns; right before down), so every sum is unchanged. A term
    with no neighbour is 0.0, which leaves a sum that started at +0.0 unchanged.
    """
    nb, h, w = before.shape
    bh, bw = h // block, w // block
    out = np.zeros((5, bh, bw), np.float32)
    gb = np.empty((block + 1, w))
    ga = np.empty((block + 1, w))
    rb = np.empty((block, w))
    db = np.empty((block, w))
    ra = np.empty((block, w))
    da = np.empty((block, w))
    if bh > 0:
        _grey_row(before, 0, gb[0])
        _grey_row(after, 0, ga[0])
    for bi in range(bh):
        r0 = bi * block
        _texture_rows(before, r0, r0 + block, gb, rb, db)
        _texture_rows(after, r0, r0 + block, ga, ra, da)
        for bj in range(bw):
            n = chg = tb = ta = 0.0
            b0 = b1 = b2 = a0 = a1 = a2 = 0.0
            for k in range(block):
                i = r0 + k
                for j in range(bj * block, (bj + 1) * block):
                    if not valid[i, j]:
                        continue
                    n += 1.0
                    chg += change[i, j]
                    b0 += before[0, i, j]
                    b1 += before[1, i, j]
                    b2 += before[2, i, j]
                    a0 += after[0, i, j]
                    a1 += after[1, i, j]
                    a2 += after[2, i, j]
                    tb += rb[k, j]
                    tb += db[k, j]
                    ta += ra[k, j]
                    ta += da[k, j]
            out[0, bi, bj] = n / (block * block)
            if n < 0.5 * block * block:
                continue
            # 0.0 + a square is the square: the sum of _block_kernel_any
            d = (a0 / n - b0 / n) ** 2
            d += (a1 / n - b1 / n) ** 2
            d += (a2 / n - b2 / n) ** 2
            out[1, bi, bj] = chg / n
            out[2, bi, bj] = np.sqrt(d)
            out[3, bi, bj] = tb / n
            out[4, bi, bj] = ta / n
    return out


@njit(cache=True, nogil=True)
def _block_kernel_any(before, after, valid, change, block):  # pragma: no cover - compiled
    """The statistics of :func:`block_stats` for any number of bands."""
    nb, h, w = before.shape
    bh, bw = h // block, w // block
    out = np.zeros((5, bh, bw), np.float32)
    # per-block band sums, reused: an allocation per block cost more than the block's work
    sb = np.zeros(nb)
    sa = np.zeros(nb)
    for bi in range(bh):
        for bj in range(bw):
            n = 0.0
            chg = 0.0
            tb = 0.0
            ta = 0.0
            sb[:] = 0.0
            sa[:] = 0.0
            for i in range(bi * block, (bi + 1) * block):
                for j in range(bj * block, (bj + 1) * block):
                    if not valid[i, j]:
                        continue
                    n += 1.0
                    chg += change[i, j]
                    gb = 0.0
                    ga = 0.0
                    gbr = 0.0
                    gar = 0.0
                    gbd = 0.0
                    gad = 0.0
                    for k in range(nb):
                        sb[k] += before[k, i, j]
                        sa[k] += after[k, i, j]
                        gb += before[k, i, j]
                        ga += after[k, i, j]
                        if j + 1 < w:
                            gbr += before[k, i, j + 1]
                            gar += after[k, i, j + 1]
                        if i + 1 < h:
                            gbd += before[k, i + 1, j]
                            gad += after[k, i + 1, j]
                    # mean absolute difference to the right and lower neighbours, grey level
                    if j + 1 < w:
                        tb += abs(gbr - gb) / nb
                        ta += abs(gar - ga) / nb
                    if i + 1 < h:
                        tb += abs(gbd - gb) / nb
                        ta += abs(gad - ga) / nb
            out[0, bi, bj] = n / (block * block)
            if n < 0.5 * block * block:
                continue
            d = 0.0
            for k in range(nb):
                d += (sa[k] / n - sb[k] / n) ** 2
            out[1, bi, bj] = chg / n
            out[2, bi, bj] = np.sqrt(d)
            out[3, bi, bj] = tb / n
            out[4, bi, bj] = ta / n
    return out


def block_stats(
    before: np.ndarray, after: np.ndarray, valid: np.ndarray, change: np.ndarray, block: int
) -> np.ndarray:
    """Per-block summary of a window's core.

    Fields (``BLOCK_FIELDS``): valid fraction; changed fraction; colour difference of the
    block means; texture (mean absolute difference between neighbouring grey levels: high over
    foliage, crops, roofs and edges, low on graded soil) before and after.

    Args:
        before, after: normalised float32 (bands, rows, cols); a remainder of rows or cols
            beyond a multiple of ``block`` (the scene's right/bottom edge) is dropped.
        valid: bool (rows, cols), both images have data.
        change: uint8 (rows, cols) change mask.
        block: block side in pixels.

    Returns:
        float32 (len(BLOCK_FIELDS), rows // block, cols // block); blocks less than half valid
        hold zeros but for their valid fraction.
    """
    # Strided views of the window's core are read in place: copying them cost as much as the
    # statistics themselves.
    return _block_kernel(
        before if before.dtype == np.float32 else before.astype(np.float32),
        after if after.dtype == np.float32 else after.astype(np.float32),
        valid if valid.dtype == np.bool_ else valid.astype(bool),
        change if change.dtype == np.uint8 else change.astype(np.uint8),
        int(block),
    )


@dataclass(frozen=True)
class ClearedLevels:
    """The scene's levels that cleared land is judged against (block statistics' units).

    Attributes:
        dcolor_median: median colour difference of the valid blocks.
        dcolor_mad: its robust scale (MAD x 1.4826, plus 1e-6).
        texture_after: median texture of the after image's valid blocks, plus 1e-6.
    """

    dcolor_median: float
    dcolor_mad: float
    texture_after: float

    @classmethod
    def from_values(cls, dcolor: np.ndarray, tex_after: np.ndarray) -> ClearedLevels:
        """From the valid blocks' colour differences and after textures (float32)."""
        med = float(median_np(dcolor))
        mad = float(median_np(np.abs(dcolor - med)) * 1.4826) + 1e-6
        return cls(med, mad, float(median_np(tex_after)) + 1e-6)


def swath_radii(block_m: float, swath_m: float = SWATH_M) -> tuple[int, int]:
    """Radii (blocks) of the closing and of the opening that keeps swath-wide areas."""
    return max(1, int(round(4.0 / block_m))), max(1, int(round(swath_m / 2 / block_m)))


def swath_mask(
    stats: np.ndarray, levels: ClearedLevels, block_m: float, swath_m: float = SWATH_M
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blocks that changed and lost texture, closed and opened at a swath's scale.

    The grid's edges are its border (nothing set beyond): a tile read with a halo of
    ``2 * sum(swath_radii(...))`` blocks gives its core's blocks as the whole grid would.

    Args:
        stats: float32 (len(BLOCK_FIELDS), rows, cols) block statistics.
        levels: the scene's levels.
        block_m: block side in metres.
        swath_m: structures narrower than this (roads, single buildings) are not clearings.

    Returns:
        (mask before hole filling, valid blocks, colour change in scene sigmas), each
        (rows, cols).
    """
    valid, changed, dcolor, tex_b, tex_a = stats
    ok = valid >= 0.5
    # Noise scale of the colour difference over the scene: most of it did not change.
    dz = (dcolor - levels.dcolor_median) / levels.dcolor_mad
    # Texture lost: graded soil is smoother than what it replaced, and smooth in absolute terms.
    smooth_after = tex_a < 0.8 * levels.texture_after
    lost = tex_a < 0.7 * tex_b
    chg = (changed >= 0.5) | (dz > 4.0)
    cand = ok & chg & smooth_after & (lost | (dz > 6.0))
    r_close, r_open = swath_radii(block_m, swath_m)
    # closing and opening (border_value=0), as scipy.ndimage's, compiled
    dc, do = disk(r_close), disk(r_open)
    m = binary_erosion(binary_dilation(cand, dc), dc)
    m = binary_dilation(binary_erosion(m, do), do)
    return m, ok, dz


def keep_clearing(area_m2: float, mean_chg: float, mean_dz: float, min_area_ha: float) -> bool:
    """Whether a connected area is reported: large enough, and over the whole area both cues
    agree: the change mask (which ignores seasonal vegetation) and a clear colour change
    (graded soil is not what stood there)."""
    return area_m2 >= min_area_ha * 1e4 and mean_chg >= 0.3 and mean_dz >= 3.0


def clearing_finding(
    geom: dict, mean_chg: float, mean_dz: float, block_m: float
) -> tuple[shapely.Geometry, float, dict] | None:
    """(polygon, score 0..1, evidence) of a kept area from its traced outline (GeoJSON-like
    mapping in the CRS), or None if it simplifies away."""
    poly = shapely.make_valid(shapely.geometry.shape(geom)).simplify(block_m * 0.5)
    if poly.is_empty:
        return None
    s = float(np.clip(0.5 * mean_chg + 0.5 * min(mean_dz / 8.0, 1.0), 0, 1))
    ev = {
        "mean_colour_change_sigma": round(float(mean_dz), 2),
        "changed_fraction": round(float(mean_chg), 3),
    }
    return poly, s, ev


def extract_cleared(
    stats: np.ndarray,
    transform: Affine,
    block_m: float,
    min_area_ha: float = 0.5,
    swath_m: float = SWATH_M,
) -> tuple[list[shapely.Polygon], list[float], list[dict]]:
    """Polygons of cleared land from the scene's block statistics, all in memory.

    :func:`fortmap.detect.cleared_tiles.cleared_from_grid` finds the same areas tile by tile.

    Args:
        stats: float32 (len(BLOCK_FIELDS), rows, cols) for the whole scene, block grid.
        transform: affine of the block grid (block pixel -> CRS metres).
        block_m: block side in metres.
        min_area_ha: smallest area reported, hectares.
        swath_m: structures narrower than this (roads, single buildings) are not clearings.

    Returns:
        (polygons in the CRS, scores 0..1, evidence dicts).
    """
    valid, changed, dcolor, tex_b, tex_a = stats
    ok = valid >= 0.5
    if not ok.any():
        return [], [], []
    levels = ClearedLevels.from_values(dcolor[ok], tex_a[ok])
    m, ok, dz = swath_mask(stats, levels, block_m, swath_m)
    m = fill_holes(m)
    m &= ok
    lab, n = ndi.label(m)
    if n == 0:
        return [], [], []
    # ndimage's sum and mean by label are these bincounts (the same sums in the same order),
    # after checks and remapping that cost more than the counting
    flat = lab.ravel()
    count = np.bincount(flat, minlength=n + 1)[1:].astype(np.float64)
    areas = count * block_m**2
    mean_dz = np.bincount(flat, np.clip(dz, 0, 20).ravel(), n + 1)[1:] / count
    mean_chg = np.bincount(flat, changed.ravel(), n + 1)[1:] / count
    polys, scores, ev = [], [], []
    for geom, value in features.shapes(lab.astype(np.int32), mask=lab > 0, transform=transform):
        i = int(value) - 1
        if not keep_clearing(areas[i], mean_chg[i], mean_dz[i], min_area_ha):
            continue
        found = clearing_finding(geom, mean_chg[i], mean_dz[i], block_m)
        if found is not None:
            polys.append(found[0])
            scores.append(found[1])
            ev.append(found[2])
    return polys, scores, ev
