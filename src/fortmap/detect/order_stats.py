"""Exact order statistics by selection instead of sorting: the same values, bit for bit, as
``np.median``, ``road_window.robust_sigma`` and ``fort_kernels.road_medians``, in O(n).

The road contrasts of barricades and rubble take medians over every road pixel of a window
(hundreds of thousands) several times per window; sorting or partitioning copies of them was
a third of the rubble detector's CPU time. A median is an order statistic, so selecting it
(on the floats' bit patterns: bracketed by a sample, then by a histogram of the values between
the brackets, with radix selection as the fallback; or a partition per road: numpy's
vectorised one for long roads) gives exactly the value sorting would.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from fortmap.detect.selection_kernels import _select_keys, hist_bracket, select_inplace


def _np_robust_sigma(x: np.ndarray, floor: float) -> float:
    # ``road_window.robust_sigma`` itself (not imported: road_window may come to use this module)
    return max(float(np.median(np.abs(x - np.median(x)))) * 1.4826, floor)


#: Values drawn (at an even stride) to bracket an order statistic before the one pass that
#: keeps the values between the brackets; below ``4 * _SAMPLE`` values all are kept.
_SAMPLE = 4096
#: Half-width (sample ranks) of the bracket: four standard deviations of a sample quantile
#: near the median (sqrt(4096) / 2 = 32), so a bracket rarely misses and the pass keeps about
#: 1/16 of the values.
_REACH = 128
#: Values per block of keys made before they are filtered (a few kB: they stay in cache).
_BLOCK = 1024


@njit(cache=True, nogil=True)
def _keys_of(x, dev, med, out):  # pragma: no cover - compiled
    # uint32 keys ordered as the floats: of ``x`` (negatives reversed below the positives),
    # or with ``dev`` of ``|x - med|`` (non-negative floats order as their bit patterns);
    # whether ``x`` holds a NaN (told without ``dev`` only)
    if dev:
        d = out.view(np.float32)
        for i in range(x.size):
            d[i] = abs(x[i] - med)
        return False
    bits = x.view(np.uint32)
    nan = False
    for i in range(x.size):
        v = bits[i]
        nan |= (v & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
        out[i] = ~v if v & np.uint32(0x80000000) else v | np.uint32(0x80000000)
    return nan


@njit(cache=True, nogil=True)
def _pick(vals, r1, r2):  # pragma: no cover - compiled
    # the r1-th and r2-th smallest (r2 = r1 or r1 + 1) of ``vals``, reordered in place
    v1 = select_inplace(vals, r1)
    return v1, (v1 if r2 == r1 else vals[r1 + 1 :].min())


@njit(cache=True, nogil=True)
def _sample_bracket(samp, i_lo, i_hi):  # pragma: no cover - compiled
    """The ``i_lo``-th and ``i_hi``-th smallest of uint32 ``samp`` (0 below rank 0, 0xFFFFFFFF
    past the last rank), ``samp`` reordered in place: as ``np.sort(samp)[[i_lo, i_hi]]``."""
    n = samp.size
    hi = np.uint32(0xFFFFFFFF)
    lo = np.uint32(0)
    below = samp
    if i_hi < n:
        hi = select_inplace(samp, i_hi)
        # ``samp[:i_hi]`` now holds the i_hi smallest: the i_lo-th of them is the i_lo-th of all
        below = samp[:i_hi]
    if i_lo >= 0:
        lo = select_inplace(below, i_lo)
    return lo, hi


@njit(cache=True, nogil=True)
def _kth_keys(x, dev, med, k1, k2):  # pragma: no cover - compiled
    """The k1-th and k2-th smallest (0-based, k2 = k1 or k1 + 1) keys of ``x`` (``_keys_of``)
    and whether ``x`` holds a NaN (without ``dev``).

    Brackets them by a sorted sample, keeps in one pass the keys between the brackets
    (counting those below), brackets again by a histogram of those, and selects among the
    few left: the same order statistics as ``_select_keys``'s two radix passes over all the
    keys, which it falls back to when a bracket misses."""
    n = x.size
    if n < 4 * _SAMPLE:
        keys = np.empty(n, np.uint32)
        nan = _keys_of(x, dev, med, keys)
        v1, v2 = _pick(keys, k1, k2)
        return v1, v2, nan
    stride = n // _SAMPLE
    samp = np.empty(_SAMPLE, np.uint32)
    _keys_of(x[stride // 2 :: stride][:_SAMPLE].copy(), dev, med, samp)
    p = (k1 * _SAMPLE) // n
    # the two bracketing ranks of the sample by selection, not a sort of it (sorting the
    # sample was most of a call's time); the lower is selected among the values below the upper
    lo, hi = _sample_bracket(samp, p - _REACH, p + _REACH)
    width = np.uint32(hi - lo)
    buf = np.empty(n, np.uint32)
    blk = np.empty(_BLOCK, np.uint32)
    m = 0
    below = 0
    nan = False
    for s0 in range(0, n, _BLOCK):
        s1 = min(s0 + _BLOCK, n)
        kb = blk[: s1 - s0]
        nan |= _keys_of(x[s0:s1], dev, med, kb)
        for v in kb:
            # branch-free: the slot is overwritten unless the key is in the bracket
            buf[m] = v
            m += np.uint32(v - lo) <= width
            below += v < lo
    r1, r2 = k1 - below, k2 - below
    if r1 < 0 or r2 >= m:
        keys = np.empty(n, np.uint32)
        _keys_of(x, dev, med, keys)
        v1, v2 = _select_keys(keys, k1, k2)
        return np.uint32(v1), np.uint32(v2), nan
    # 4096 bins over the bracket: the bins of the two ranks hold a few of its keys (all
    # in uint32: mixed with signed integers numba's arithmetic goes through float64)
    shift = np.uint32(0)
    while (width >> shift) >= np.uint32(4096):
        shift += np.uint32(1)
    hist = np.zeros(4096, np.int64)
    for i in range(m):
        hist[np.uint32(buf[i] - lo) >> shift] += 1
    b1, acc, b2, acc2 = hist_bracket(hist, r1, r2)
    few = np.empty(acc2 - acc, np.uint32)
    j = 0
    u1, u2 = np.uint32(b1), np.uint32(b2)
    for i in range(m):
        b = np.uint32(buf[i] - lo) >> shift
        if u1 <= b and b <= u2:
            few[j] = buf[i]
            j += 1
    v1, v2 = _pick(few, r1 - acc, r2 - acc)
    return v1, v2, nan


@njit(cache=True, nogil=True)
def _median_mad(x):  # pragma: no cover - compiled
    """float32 median of ``x`` and of ``|x - median|`` as ``np.median`` computes them (the
    mean of the two middle values, in float32, for an even count), by selection (O(n),
    where ``np.median`` partitions a copy twice); ``ok`` False when ``x`` holds a NaN.
    """
    n = x.size
    k1, k2, nan = _kth_keys(x, False, np.float32(0), (n - 1) // 2, n // 2)
    if nan:
        return np.float32(0), np.float32(0), False
    two = np.empty(2, np.uint32)
    for t, k in enumerate((k1, k2)):
        two[t] = k ^ np.uint32(0x80000000) if k & np.uint32(0x80000000) else ~k
    f = two.view(np.float32)
    med = f[0] if n % 2 else np.float32(np.float32(f[0] + f[1]) / np.float32(2))
    k1, k2, _ = _kth_keys(x, True, med, (n - 1) // 2, n // 2)
    two[0], two[1] = k1, k2
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
    ks = np.flatnonzero(left)
    if ks.size:
        # Python ints index faster than numpy scalars over ~10,000 roads a 2 km run
        st = start.tolist()
        got = []
        for k in ks.tolist():
            a, b = st[k], st[k + 1]
            seg = buf[a:b]
            kth = (b - a - 1) // 2
            seg.partition(kth)  # in place: ``buf`` is this call's own copy
            got.append(seg[kth])
        out[ks] = got
    return out
