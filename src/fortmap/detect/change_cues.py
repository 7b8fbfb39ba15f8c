"""Fast kernels and per-date cues behind the pixel change mask (:mod:`fortmap.detect.change`).

Everything here works on plain arrays in pixels of whatever grid it is given; the caller picks
the resolution. Hot loops are numba-compiled (cached on disk) so a window costs a few passes
over memory.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from fortmap.detect.change_finish import upsample_masked
from fortmap.detect.change_rank import tophat_sums

# the scene statistics live apart; importers of this module still find them here
from fortmap.detect.change_stats import (  # noqa: F401
    colour_bins,
    fit_colour_shift,
    interp_sorted,
    mad_sigma,
    median,
    median_np,
    otsu,
    percentiles,
)


@njit(cache=True)
def _block_mean3(x: np.ndarray, f: int) -> np.ndarray:  # pragma: no cover
    nb, h, w = x.shape
    h2 = (h + f - 1) // f
    w2 = (w + f - 1) // f
    out = np.zeros((nb, h2, w2), np.float32)
    for k in range(nb):
        for yo in range(h2):
            y0 = yo * f
            y1 = min(h, y0 + f)
            for xo in range(w2):
                x0 = xo * f
                x1 = min(w, x0 + f)
                acc = np.float32(0.0)
                for y in range(y0, y1):
                    for xx in range(x0, x1):
                        acc += x[k, y, xx]
                out[k, yo, xo] = acc / np.float32((y1 - y0) * (x1 - x0))
    return out


@njit(cache=True)
def _block_mean2(x: np.ndarray) -> np.ndarray:  # pragma: no cover
    nb, h, w = x.shape
    h2 = h // 2
    w2 = w // 2
    out = np.empty((nb, h2, w2), np.float32)
    for k in range(nb):
        for yo in range(h2):
            for xo in range(w2):
                out[k, yo, xo] = np.float32(0.25) * (
                    x[k, 2 * yo, 2 * xo]
                    + x[k, 2 * yo, 2 * xo + 1]
                    + x[k, 2 * yo + 1, 2 * xo]
                    + x[k, 2 * yo + 1, 2 * xo + 1]
                )
    return out


def block_mean(x: np.ndarray, f: int) -> np.ndarray:
    """Mean over f x f blocks of the last two axes (partial edge blocks average what they hold)."""
    if f == 1:
        return x.astype(np.float32, copy=False)
    h, w = x.shape[-2:]
    if f == 2 and h % 2 == 0 and w % 2 == 0:
        x3 = np.ascontiguousarray(x.reshape((-1,) + x.shape[-2:]), dtype=np.float32)
        y = _block_mean2(x3)
        return y.reshape(x.shape[:-2] + y.shape[-2:])
    if h % f == 0 and w % f == 0:
        # Whole blocks: f*f strided adds are several times faster than a per-pixel loop.
        acc = np.zeros(x.shape[:-2] + (h // f, w // f), np.float32)
        for i in range(f):
            for j in range(f):
                acc += x[..., i::f, j::f]
        acc *= np.float32(1.0 / (f * f))
        return acc
    x3 = np.ascontiguousarray(x.reshape((-1,) + x.shape[-2:]), dtype=np.float32)
    y = _block_mean3(x3, f)
    return y.reshape(x.shape[:-2] + y.shape[-2:])


def upsample(x: np.ndarray, f: int, shape: tuple[int, int]) -> np.ndarray:
    """Upsample a block-mean image by ``f`` to ``shape`` (bilinear, so no staircase edges)."""
    if f == 1:
        return x.astype(np.float32, copy=False)
    everywhere = np.ones(shape, bool)
    return upsample_masked(np.ascontiguousarray(x, np.float32), f, shape[0], shape[1], everywhere)


#: Entries of the lookup tables that replace per-pixel searches in the histogram maps.
LUT_SIZE = 4096


def map_luts(src_q: np.ndarray, dst_q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Uniform lookup tables equivalent to np.interp through each band's quantile pairs.

    Returns:
        (lo, step, table): per-band start and spacing of the table, and the table (bands, N).
    """
    nb = src_q.shape[0]
    lo = src_q[:, 0].astype(np.float32)
    hi = np.maximum(src_q[:, -1], lo + 1e-6).astype(np.float32)
    step = ((hi - lo) / (LUT_SIZE - 1)).astype(np.float32)
    table = np.empty((nb, LUT_SIZE), np.float32)
    for k in range(nb):
        grid = lo[k] + step[k] * np.arange(LUT_SIZE, dtype=np.float64)
        table[k] = np.interp(grid, src_q[k], dst_q[k])
    return lo, step, table


@njit(cache=True, fastmath=True)
def _apply_luts(
    x: np.ndarray, lo: np.ndarray, step: np.ndarray, table: np.ndarray
) -> np.ndarray:  # pragma: no cover
    nb, h, w = x.shape
    n = table.shape[1]
    out = np.empty_like(x)
    for k in range(nb):
        inv = np.float32(1.0) / step[k]
        for y in range(h):
            for xx in range(w):
                t = (x[k, y, xx] - lo[k]) * inv
                if t <= 0:
                    out[k, y, xx] = table[k, 0]
                elif t >= n - 1:
                    out[k, y, xx] = table[k, n - 1]
                else:
                    i = int(t)
                    fr = t - i
                    out[k, y, xx] = table[k, i] * (1 - fr) + table[k, i + 1] * fr
    return out


def apply_maps(x: np.ndarray, luts: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """Map each band of ``x`` (bands, H, W) through its lookup table from :func:`map_luts`."""
    lo, step, table = luts
    return _apply_luts(np.ascontiguousarray(x, np.float32), lo, step, table)


@njit(cache=True, fastmath=True)
def _range3(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
    """Min and max over each pixel's 3 x 3 neighbourhood (clipped at the edges)."""
    h, w = x.shape
    rmin = np.empty((h, w), np.float32)
    rmax = np.empty((h, w), np.float32)
    for y in range(h):
        for xx in range(w):
            x0 = max(0, xx - 1)
            x1 = min(w - 1, xx + 1)
            lo = x[y, x0]
            hi = lo
            for k in range(x0 + 1, x1 + 1):
                v = x[y, k]
                lo = min(lo, v)
                hi = max(hi, v)
            rmin[y, xx] = lo
            rmax[y, xx] = hi
    cmin = np.empty((h, w), np.float32)
    cmax = np.empty((h, w), np.float32)
    for y in range(h):
        y0 = max(0, y - 1)
        y1 = min(h - 1, y + 1)
        for xx in range(w):
            lo = rmin[y0, xx]
            hi = rmax[y0, xx]
            for k in range(y0 + 1, y1 + 1):
                lo = min(lo, rmin[k, xx])
                hi = max(hi, rmax[k, xx])
            cmin[y, xx] = lo
            cmax[y, xx] = hi
    return cmin, cmax


@njit(cache=True, fastmath=True)
def _tolerant_stack(b: np.ndarray, a: np.ndarray) -> np.ndarray:  # pragma: no cover
    """sqrt(sum over channels of squared +-1 px tolerant differences).

    For each channel the difference is the larger of the distances of b(p) to the range of a
    over the 3 x 3 neighbours of p, and of a(p) to that of b: a shift of up to one pixel in
    either image (including sub-pixel shifts, which blend neighbours) costs nothing while a real
    change does.
    """
    nc, h, w = b.shape
    acc = np.zeros((h, w), np.float32)
    zero = np.float32(0.0)
    for c in range(nc):
        amin, amax = _range3(a[c])
        bmin, bmax = _range3(b[c])
        for y in range(h):
            for x in range(w):
                vb = b[c, y, x]
                va = a[c, y, x]
                d1 = max(vb - amax[y, x], amin[y, x] - vb, zero)
                d2 = max(va - bmax[y, x], bmin[y, x] - va, zero)
                d = max(d1, d2)
                acc[y, x] += d * d
    return np.sqrt(acc)


def dilate3(mask: np.ndarray) -> np.ndarray:
    """Binary dilation by the 3 x 3 square (edges not padded with True)."""
    return _range3(mask.astype(np.float32))[1] > 0.5


def tolerant_diff(b: list[np.ndarray], a: list[np.ndarray]) -> np.ndarray:
    """Shift-tolerant (+-1 px) Euclidean difference of two lists of same-shape channels."""
    return _tolerant_stack(
        np.ascontiguousarray(np.stack(b), np.float32),
        np.ascontiguousarray(np.stack(a), np.float32),
    )


@njit(cache=True, nogil=True, fastmath=True)
def _rank3(x: np.ndarray, r: int, is_max: bool) -> np.ndarray:  # pragma: no cover
    """Running min or max over the (2r + 1) square around each pixel, edges replicated.

    Separable, each pass a short loop of whole-row vector operations (rows are padded with
    their edge values, columns clipped, which is the same for a min or a max), so no transpose
    is needed; min and max are exact, so the result equals any other algorithm's.
    """
    h, w = x.shape
    tmp = np.empty((h, w), np.float32)
    out = np.empty((h, w), np.float32)
    pad = np.empty(w + 2 * r, np.float32)
    acc = np.empty(w, np.float32)
    for y in range(h):
        for i in range(w + 2 * r):
            pad[i] = x[y, min(max(i - r, 0), w - 1)]
        acc[:] = pad[:w]
        for k in range(1, 2 * r + 1):
            if is_max:
                for i in range(w):
                    acc[i] = max(acc[i], pad[i + k])
            else:
                for i in range(w):
                    acc[i] = min(acc[i], pad[i + k])
        tmp[y, :] = acc
    for y in range(h):
        y0 = max(y - r, 0)
        y1 = min(y + r, h - 1)
        acc[:] = tmp[y0, :]
        for k in range(y0 + 1, y1 + 1):
            if is_max:
                for i in range(w):
                    acc[i] = max(acc[i], tmp[k, i])
            else:
                for i in range(w):
                    acc[i] = min(acc[i], tmp[k, i])
        out[y, :] = acc
    return out


def _minmax2d(x: np.ndarray, r: int, is_max: bool) -> np.ndarray:
    return _rank3(np.ascontiguousarray(x, np.float32), r, is_max)


def tophats(lum: np.ndarray, sizes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Mean white and black top-hats of ``lum`` over square structuring elements (pixels).

    Args:
        lum: float32 (H, W).
        sizes: odd side lengths of the square elements, pixels.
    """
    lum = np.ascontiguousarray(lum, np.float32)
    radii = np.array([s // 2 for s in sizes], np.int64)
    # the doubling kernels equal the running loops but for NaN, where grouping decides
    sums = _tophat_sums if np.isnan(lum).any() else tophat_sums
    white, black = sums(lum, radii)
    return white / len(sizes), black / len(sizes)


@njit(cache=True, nogil=True)
def _tophat_sums(
    lum: np.ndarray, radii: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
    """Sums over the radii (pixels) of the white and black top-hats, float32 (H, W) each.

    One compiled call instead of four filters and four array operations per scale. With
    radii increasing, each scale's erosion and dilation grow the previous scale's by the
    difference (a clipped square window of radius r2 is one of radius r1 grown by r2 - r1;
    min and max are exact, so the values are the same); the sums add the same float32 terms
    in the same order as the numpy loop did.
    """
    white = np.zeros_like(lum)
    black = np.zeros_like(lum)
    ero = lum
    dil = lum
    prev = 0
    for r in radii:
        if r < prev:
            ero = _rank3(lum, r, False)
            dil = _rank3(lum, r, True)
        elif r > prev:
            ero = _rank3(ero, r - prev, False)
            dil = _rank3(dil, r - prev, True)
        prev = r
        opened = _rank3(ero, r, True)
        closed = _rank3(dil, r, False)
        for y in range(lum.shape[0]):
            for x in range(lum.shape[1]):
                white[y, x] += lum[y, x] - opened[y, x]
                black[y, x] += closed[y, x] - lum[y, x]
    return white, black


def exg(x: np.ndarray) -> np.ndarray:
    """Excess-green index (2G - R - B) / (R + G + B); zeros for fewer than 3 bands."""
    if x.shape[0] < 3:
        return np.zeros(x.shape[1:], np.float32)
    return (2 * x[1] - x[0] - x[2]) / (x[0] + x[1] + x[2] + 0.03)


def saturation(x: np.ndarray) -> np.ndarray:
    """HSV-like saturation (max - min) / max over bands; zeros for a single band."""
    if x.shape[0] < 2:
        return np.zeros(x.shape[1:], np.float32)
    mx = x.max(axis=0)
    return (mx - x.min(axis=0)) / (mx + 0.02)
