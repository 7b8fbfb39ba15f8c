"""Exact order statistics by selection instead of sorting: the same values, bit for bit, as
``np.median``, ``road_window.robust_sigma`` and ``fort_kernels.road_medians``, in O(n).

The road contrasts of barricades and rubble take medians over every road pixel of a window
(hundreds of thousands) several times per window; sorting or partitioning copies of them was
a third of the rubble detector's CPU time. A median is an order statistic, so selecting it
(radix selection on the floats' bit patterns, or a partition per road: numpy's vectorised one
for long roads) gives exactly the value sorting would.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from fortmap.detect.pixel_kernels import _select_keys


def _np_robust_sigma(x: np.ndarray, floor: float) -> float:
    # ``road_window.robust_sigma`` itself (not imported: road_window may come to use this module)
    return max(float(np.median(np.abs(x - np.median(x)))) * 1.4826, floor)


@njit(cache=True, nogil=True)
def _median_mad(x):  # pragma: no cover - compiled
    """float32 median of ``x`` and of ``|x - median|`` as ``np.median`` computes them (the
    mean of the two middle values, in float32, for an even count), by radix selection
    (O(n), where ``np.median`` partitions a copy twice); ``ok`` False when ``x`` holds a NaN.
    """
    n = x.size
    keys = np.empty(n, np.uint32)
    bits = x.view(np.uint32)
    for i in range(n):
        if np.isnan(x[i]):
            return np.float32(0), np.float32(0), False
        v = bits[i]
        # ordered as the floats: negatives reversed below the positives
        keys[i] = ~v if v & np.uint32(0x80000000) else v | np.uint32(0x80000000)
    k1, k2 = _select_keys(keys, (n - 1) // 2, n // 2)
    two = np.empty(2, np.uint32)
    for t, k in enumerate((k1, k2)):
        k = np.uint32(k)
        two[t] = k ^ np.uint32(0x80000000) if k & np.uint32(0x80000000) else ~k
    f = two.view(np.float32)
    med = f[0] if n % 2 else np.float32(np.float32(f[0] + f[1]) / np.float32(2))
    dev = np.empty(n, np.float32)
    for i in range(n):
        dev[i] = abs(x[i] - med)
    # non-negative floats order as their bit patterns
    k1, k2 = _select_keys(dev.view(np.uint32), (n - 1) // 2, n // 2)
    two[0], two[1] = np.uint32(k1), np.uint32(k2)
    mad = f[0] if n % 2 else np.float32(np.float32(f[0] + f[1]) / np.float32(2))
    return med, mad, True


def median_f32(x: np.ndarray) -> np.float32:
    """``np.median`` of a 1-D float32 array (same value, bit for bit), in O(n)."""
    if x.size == 0 or x.ndim != 1 or x.dtype != np.float32:
        return np.median(x)
    med, _, ok = _median_mad(np.ascontiguousarray(x))
    # numba hands a float32 back as a Python float: np.median's type is kept
    return np.float32(med) if ok else np.median(x)


def median_sigma(x: np.ndarray, floor: float) -> tuple[np.float32, float]:
    """``np.median(x)`` and ``road_window.robust_sigma(x, floor)`` of a 1-D float32 array (the
    same values, bit for bit: MAD x 1.4826, never below ``floor``, same units as ``x``)."""
    if x.size == 0 or x.ndim != 1 or x.dtype != np.float32:
        return np.median(x), _np_robust_sigma(x, floor)
    med, mad, ok = _median_mad(np.ascontiguousarray(x))
    if not ok:  # NaN: numpy's propagation, as the caller would have seen it
        return np.median(x), _np_robust_sigma(x, floor)
    return np.float32(med), max(float(mad) * 1.4826, floor)


def robust_sigma(x: np.ndarray, floor: float) -> float:
    """``road_window.robust_sigma``: MAD-based standard deviation of ``x`` (same units),
    never below ``floor``; the same value, bit for bit, for a 1-D float32 array."""
    return median_sigma(x, floor)[1]


#: Roads with more pixels than this are handed to numpy's partition (vectorised selection,
#: several times faster than the compiled quickselect on runs of thousands); shorter ones are
#: done in the compiled pass, where a Python call per road costs more than the selection. On
#: the 2 km benchmark's windows 64 and 256 cost the same, 2048 nearly twice as much.
_NUMPY_SELECT = 128


@njit(cache=True, nogil=True)
def _road_buckets(vals, rid, n, big):  # pragma: no cover - compiled
    """``vals`` grouped by road id (counting sort: ``buf[start[k]:start[k + 1]]`` holds road
    k's values in their order), and per road its lower median where it has at most ``big``
    values (0 where none), whether it holds a NaN, and whether it was left for the caller."""
    counts = np.zeros(n + 1, np.int64)
    for i in range(vals.size):
        if 0 <= rid[i] < n:
            counts[rid[i] + 1] += 1
    start = np.cumsum(counts)
    fill = start[:-1].copy()
    buf = np.empty(start[-1], vals.dtype)
    nan = np.zeros(n, np.bool_)
    for i in range(vals.size):
        k = rid[i]
        if 0 <= k < n:
            buf[fill[k]] = vals[i]
            fill[k] += 1
            if np.isnan(vals[i]):
                nan[k] = True
    out = np.zeros(n, np.float32)
    left = np.zeros(n, np.bool_)
    for k in range(n):
        m = start[k + 1] - start[k]
        if m > big and not nan[k]:
            left[k] = True
        elif m > 0:
            seg = buf[start[k] : start[k + 1]]
            if nan[k]:
                out[k] = np.sort(seg)[(m - 1) // 2]
            else:
                out[k] = np.partition(seg, (m - 1) // 2)[(m - 1) // 2]
    return out, buf, start, left


def road_medians(vals: np.ndarray, rid: np.ndarray, n: int) -> np.ndarray:
    """``fort_kernels.road_medians`` by selection: lower median of ``vals`` per road id
    ``rid`` (1-D arrays of the same pixels; index = road id, 0..n-1; 0 where a road has no
    pixel), float32. A road holding a NaN is sorted, as there, so NaN places the same."""
    out, buf, start, left = _road_buckets(vals, rid, n, _NUMPY_SELECT)
    for k in np.flatnonzero(left):
        seg = buf[start[k] : start[k + 1]]
        kth = (seg.size - 1) // 2
        seg.partition(kth)  # in place: ``buf`` is this call's own copy
        out[k] = seg[kth]
    return out
