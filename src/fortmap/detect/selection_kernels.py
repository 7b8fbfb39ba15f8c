"""Exact medians and order statistics by selection (numba): the same values, bit for bit, as
``np.median`` and ``np.partition``, without their copies and full sorts.

Radix selection on the floats' bit patterns (``_select_keys``, ``median_inplace``), Hoare's
selection in place (``select_inplace``), medians of segments of one array
(``segment_medians``) and of the differences along an image's rows (``abs_diff_medians``).
Shared by the footprint, road and order-statistics kernels; units are whatever the values are.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def hist_bracket(hist, r1, r2):  # pragma: no cover - compiled
    """Histogram bins holding the values of ranks ``r1 <= r2`` (0-based, ascending).

    Returns:
        (b1, below, b2, upto): the bins of ranks r1 and r2, the count in bins before b1, and
        the count in bins up to and including b2.
    """
    b1 = 0
    below = 0
    while below + hist[b1] <= r1:
        below += hist[b1]
        b1 += 1
    b2 = b1
    upto = below + hist[b1]
    while upto <= r2:
        b2 += 1
        upto += hist[b2]
    return b1, below, b2, upto


@numba.njit(cache=True, nogil=True)
def _select_keys(keys: np.ndarray, k1: int, k2: int) -> tuple[int, int]:  # pragma: no cover
    """The k1-th and k2-th smallest of uint32 ``keys`` (0-based): two 16-bit radix passes."""
    hi = np.zeros(65536, np.int64)
    for v in keys:
        hi[v >> 16] += 1
    out = np.empty(2, np.int64)
    bins = np.empty(2, np.int64)
    rank = np.empty(2, np.int64)
    for t in range(2):
        k = k1 if t == 0 else k2
        acc = 0
        b = 0
        while acc + hi[b] <= k:
            acc += hi[b]
            b += 1
        bins[t] = b
        rank[t] = k - acc
    lo = np.zeros((2, 65536), np.int64)
    for v in keys:
        top = v >> 16
        for t in range(2):
            if top == bins[t]:
                lo[t, v & 65535] += 1
    for t in range(2):
        acc = 0
        b = 0
        while acc + lo[t, b] <= rank[t]:
            acc += lo[t, b]
            b += 1
        out[t] = (bins[t] << 16) | b
    return out[0], out[1]


@numba.njit(cache=True, nogil=True)
def _abs_diff_medians(img: np.ndarray):  # pragma: no cover - compiled
    """Per band, float32 median of |img[:, :, 1:] - img[:, :, :-1]| and whether any was NaN."""
    nbands, h, w = img.shape
    out = np.zeros(nbands, np.float32)
    n = h * (w - 1)
    if n == 0:
        return out, True
    buf = np.empty(n, np.float32)
    keys = buf.view(np.uint32)
    for b in range(nbands):
        m = 0
        for r in range(h):
            for c in range(w - 1):
                v = abs(img[b, r, c + 1] - img[b, r, c])
                if np.isnan(v):
                    return out, True
                buf[m] = v
                m += 1
        # non-negative floats order as their bit patterns
        a, z = _select_keys(keys, (n - 1) // 2, n // 2)
        pair = np.array([a, z], np.uint32).view(np.float32)
        out[b] = pair[1] if n % 2 else (pair[0] + pair[1]) / np.float32(2.0)
    return out, False


def abs_diff_medians(img: np.ndarray) -> np.ndarray:
    """``np.median(np.abs(np.diff(img, axis=2)).reshape(len(img), -1), axis=1)`` (float32
    (bands, rows, cols) in, float32 (bands,) out, the same numbers) by radix selection."""
    if img.dtype == np.float32 and img.ndim == 3:
        med, nan = _abs_diff_medians(img)
        if not nan:
            return med
    return np.median(np.abs(np.diff(img, axis=2)).reshape(len(img), -1), axis=1)


@numba.njit(cache=True, nogil=True)
def _segment_median(seg: np.ndarray) -> float:  # pragma: no cover - compiled
    """``np.median`` of a non-empty float64 segment (reordered in place)."""
    m = seg.shape[0]
    if np.isnan(seg).any():
        x = np.sort(seg)
        return 0.5 * (x[(m - 1) // 2] + x[m // 2])
    # the two middle order statistics by selection: the values a full sort puts there
    hi = select_inplace(seg, m // 2)
    lo = hi if m % 2 else seg[: m // 2].max()
    return 0.5 * (lo + hi)


@numba.njit(cache=True, nogil=True)
def median_inplace(a: np.ndarray) -> float:  # pragma: no cover - compiled
    """``np.median`` of a contiguous float64 array (reordered in place; NaN when empty or any
    is NaN), without ``np.median``'s copy and full-size partition.

    Non-negative floats order as their bit patterns: one pass counts the values by their top
    16 bits (sign, exponent, 4 mantissa bits), and only those of the bins holding the two
    middle ranks, a few per cent, go to the selection. Values with the sign bit set (or
    NaN/inf) take the plain selection on the whole array.
    """
    n = a.shape[0]
    if n == 0:
        return np.nan
    keys = a.view(np.uint64)
    hist = np.zeros(65536, np.int64)
    for v in keys:
        hist[v >> np.uint64(48)] += 1
    # 0x7FF0 and up: inf, NaN or a set sign bit
    if hist[0x7FF0:].sum() > 0:
        if np.isnan(a).any():
            return np.nan
        return _segment_median(a)
    k1, k2 = (n - 1) // 2, n // 2
    b1, below, b2, acc = hist_bracket(hist, k1, k2)
    buf = np.empty(acc - below, np.float64)
    m = 0
    lo_key, hi_key = np.uint64(b1) << np.uint64(48), (np.uint64(b2) + np.uint64(1)) << np.uint64(48)
    for i in range(n):
        v = keys[i]
        if v >= lo_key and v < hi_key:
            buf[m] = a[i]
            m += 1
    lo = select_inplace(buf, k1 - below)
    hi = lo if k2 == k1 else select_inplace(buf, k2 - below)
    return 0.5 * (lo + hi)


@numba.njit(cache=True, nogil=True)
def select_inplace(a: np.ndarray, k: int) -> float:  # pragma: no cover - compiled
    """The k-th smallest (0-based) of NaN-free ``a``, reordered in place so that ``a[:k]``
    holds no larger value and ``a[k + 1:]`` no smaller one, as ``np.partition`` leaves it.

    Hoare's selection (Wirth's loop, median-of-three pivot), without the copy and NaN
    handling of ``np.partition``, which cost several times the selection on the few hundred
    values of a footprint. The value is the order statistic, so the same as numpy's (of
    equal values only 0.0 and -0.0 differ in bits; the callers' values have no -0.0).
    """
    lo, hi = 0, a.shape[0] - 1
    while lo < hi:
        x, y, z = a[lo], a[(lo + hi) // 2], a[hi]
        # a value of the range, so each scan below stops inside it
        pivot = max(min(x, y), min(max(x, y), z))
        i, j = lo, hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while pivot < a[j]:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if j < k:
            lo = i
        if k < i:
            hi = j
    return a[k]


@numba.njit(cache=True, nogil=True)
def segment_medians(values: np.ndarray, ends: np.ndarray) -> np.ndarray:  # pragma: no cover
    """``np.median`` of each segment ``values[ends[i - 1]:ends[i]]`` (the first from 0) of a
    float64 array, finite values; NaN for an empty segment. ``values`` is reordered."""
    out = np.full(ends.shape[0], np.nan)
    a = 0
    for i in range(ends.shape[0]):
        b = ends[i]
        if b > a:
            out[i] = _segment_median(values[a:b])
        a = b
    return out
