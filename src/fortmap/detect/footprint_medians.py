"""Per-footprint medians of the footprint scorer, by a branch-free selection.

The medians of :func:`fortmap.detect.pixel_kernels.lit_interior_medians` (texture before and
after, spectral angle over each footprint's sunlit interior) are order statistics of a few
hundred values per footprint. Hoare's selection mispredicts about every other comparison on
such data; :func:`select_pair` partitions into a scratch buffer with branch-free stores
instead. An order statistic does not depend on how it is found, so the medians are the same
numbers (only 0.0 and -0.0 could differ, and these values hold no -0.0).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from fortmap.detect.pixel_kernels import _angle_median, lit_interior_values
from fortmap.detect.selection_kernels import _segment_median

#: Ranges this short are finished by insertion sort.
_SMALL = 16


@numba.njit(cache=True, nogil=True)
def select_pair(a: np.ndarray, buf: np.ndarray, k: int) -> tuple[float, float]:  # pragma: no cover
    """The k-th and (k - 1)-th smallest values of NaN-free float64 ``a`` (0-based; the second
    is -inf for k = 0); ``a`` is reordered and ``buf`` (at least as long) overwritten.

    Three-way partitions around a median-of-three pivot (a value of the range, so each round
    removes at least it), less-than values packed from the front of the other buffer and
    greater-than values from its back, both stores made for every value and the counts
    advanced by the comparisons.
    """
    src, dst = a, buf
    n = a.shape[0]
    below = -np.inf  # largest value of those discarded as smaller than the range
    while n > _SMALL:
        x, y, z = src[0], src[n // 2], src[n - 1]
        p = max(min(x, y), min(max(x, y), z))
        nl = 0
        nh = 0
        lomax = -np.inf
        for i in range(n):
            v = src[i]
            dst[nl] = v
            dst[n - 1 - nh] = v
            lt = v < p
            nl += lt
            nh += v > p
            lomax = max(lomax, v if lt else -np.inf)
        ne = n - nl - nh
        if k < nl:
            n = nl
        elif k < nl + ne:
            if k > nl:
                return p, p
            return p, (lomax if nl > 0 else below)
        else:
            k -= nl + ne
            below = p
            # the greater-than values sit at the back of dst: bring them to the front
            for i in range(nh):
                src[i] = dst[n - nh + i]
            n = nh
            continue
        src, dst = dst, src
    # insertion sort of the short remainder
    for i in range(1, n):
        v = src[i]
        j = i - 1
        while j >= 0 and src[j] > v:
            src[j + 1] = src[j]
            j -= 1
        src[j + 1] = v
    return src[k], (src[k - 1] if k > 0 else below)


@numba.njit(cache=True, nogil=True)
def _has_nan(seg: np.ndarray) -> bool:  # pragma: no cover - compiled
    bad = False
    for v in seg:
        bad |= v != v
    return bad


@numba.njit(cache=True, nogil=True)
def segment_median(seg: np.ndarray, buf: np.ndarray) -> float:  # pragma: no cover - compiled
    """``np.median`` of a non-empty float64 segment (reordered; ``buf`` scratch as long)."""
    if _has_nan(seg):
        return _segment_median(seg)
    m = seg.shape[0]
    hi, lo = select_pair(seg, buf, m // 2)
    if m % 2:
        lo = hi
    return 0.5 * (lo + hi)


@numba.njit(cache=True, nogil=True)
def angle_median(cs: np.ndarray, buf: np.ndarray) -> float:  # pragma: no cover - compiled
    """:func:`fortmap.detect.pixel_kernels._angle_median` (degrees from cosines), with
    :func:`select_pair`: the angles of the same middle cosines, added in the same order."""
    if _has_nan(cs):
        return _angle_median(cs)
    m = cs.shape[0]
    c_mid, c_lo = select_pair(cs, buf, m // 2)
    if m % 2:
        a = math.degrees(math.acos(c_mid))
        return 0.5 * (a + a)
    return 0.5 * (math.degrees(math.acos(c_mid)) + math.degrees(math.acos(c_lo)))


@numba.njit(cache=True, nogil=True)
def group_medians(vb, va, vg, start, angles):  # pragma: no cover - compiled
    """:func:`fortmap.detect.pixel_kernels._group_medians` with the selections above."""
    n = start.shape[0] - 1
    med = np.full((3, n), np.nan)
    longest = 0
    for k in range(n):
        longest = max(longest, start[k + 1] - start[k])
    buf = np.empty(longest, np.float64)
    for k in range(n):
        a, b = start[k], start[k + 1]
        if b == a:
            continue
        med[0, k] = segment_median(vb[a:b], buf)
        med[1, k] = segment_median(va[a:b], buf)
        if angles:
            med[2, k] = angle_median(vg[a:b], buf)
    return med


@numba.njit(cache=True, nogil=True)
def lit_interior_medians(
    lab, valid, grey_b, grey_a, thr_b, thr_a, mag_b, mag_a, before, after, counts, eps, angles
):  # pragma: no cover - compiled  # fmt: skip
    """:func:`fortmap.detect.pixel_kernels.lit_interior_medians` (same arguments, same
    numbers), its medians by :func:`group_medians`."""
    vb, va, vg, start = lit_interior_values(
        lab, valid, grey_b, grey_a, thr_b, thr_a, mag_b, mag_a, before, after, counts, eps, angles
    )
    return group_medians(vb, va, vg, start, angles)
