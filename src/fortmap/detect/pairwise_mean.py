"""numpy's float64 ``sum`` and ``mean`` of a 1-D run of values, bit for bit, inside numba.

numpy adds a contiguous float64 array pairwise (``pairwise_sum`` of its ``add`` reduction,
from 0.0): under 8 values one by one; up to 128 in eight interleaved partial sums combined as
((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)), then the remainder one by one; above
that the halves (the first a multiple of 8 long) summed apart and added. A compiled loop that
sums left to right differs from it in the last bits, which a threshold or an argmax can turn
into another result; these kernels give numpy's values without a Python call per mean.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _block_sum(a, lo, n):  # pragma: no cover - compiled
    # numpy's sum of at most 128 values (a leaf of its recursion)
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    m = n - n % 8
    i = 8
    while i < m:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@numba.njit(cache=True, nogil=True)
def pairwise_sum(a: np.ndarray, lo: int, n: int) -> float:  # pragma: no cover - compiled
    """``a[lo:lo + n].sum()`` of float64 ``a`` as numpy computes it."""
    if n <= 128:
        return _block_sum(a, lo, n)
    # numpy's recursion, unrolled on a stack (numba's cached recursive functions are
    # fragile): a node is split once (stage 0), then adds its two halves' sums (stage 1)
    depth = 2 * 64
    st_lo = np.empty(depth, np.int64)
    st_n = np.empty(depth, np.int64)
    st_stage = np.empty(depth, np.int64)
    sums = np.empty(depth, np.float64)
    top = 0
    nv = 0
    st_lo[0], st_n[0], st_stage[0] = lo, n, 0
    top = 1
    while top:
        top -= 1
        nlo, nn, stage = st_lo[top], st_n[top], st_stage[top]
        if nn <= 128:
            sums[nv] = _block_sum(a, nlo, nn)
            nv += 1
        elif stage == 0:
            n2 = nn // 2
            n2 -= n2 % 8
            st_lo[top], st_n[top], st_stage[top] = nlo, nn, 1
            st_lo[top + 1], st_n[top + 1], st_stage[top + 1] = nlo + n2, nn - n2, 0
            st_lo[top + 2], st_n[top + 2], st_stage[top + 2] = nlo, n2, 0
            top += 3
        else:
            nv -= 1
            sums[nv - 1] = sums[nv - 1] + sums[nv]
    return sums[0]


@numba.njit(cache=True, nogil=True)
def run_mean(a: np.ndarray, lo: int, hi: int) -> float:  # pragma: no cover - compiled
    """``a[lo:hi].mean()`` of float64 ``a`` (``hi > lo``) as numpy computes it."""
    return pairwise_sum(a, lo, hi - lo) / (hi - lo)
