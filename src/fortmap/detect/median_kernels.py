"""3x3 median filter of road derivation (numba), exact against scipy's ``median_filter``.

Works in pixels of whatever grid it is given.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True)
def _median3_insertion(x: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """3x3 median by insertion into a sorted prefix (the reference; handles NaN like before)."""
    h, w = x.shape
    out = np.empty_like(x)
    v = np.empty(9, x.dtype)
    for r in range(h):
        for c in range(w):
            k = 0
            for dr in range(-1, 2):
                rr = min(max(r + dr, 0), h - 1)
                for dc in range(-1, 2):
                    cc = min(max(c + dc, 0), w - 1)
                    val = x[rr, cc]
                    j = k
                    while j > 0 and v[j - 1] > val:
                        v[j] = v[j - 1]
                        j -= 1
                    v[j] = val
                    k += 1
            out[r, c] = v[4]
    return out


@nb.njit(cache=True, nogil=True, inline="always")
def _med(a, b, c):  # pragma: no cover - compiled
    return max(min(a, b), min(max(a, b), c))


@nb.njit(cache=True, nogil=True)
def _median3_columns(x: np.ndarray, out: np.ndarray) -> np.ndarray:  # pragma: no cover
    """3x3 median from sorted column triples, edges mirrored.

    With each column of the 3x3 neighbourhood sorted (lo <= mid <= hi), the median of the nine
    is the median of (max of the los, median of the mids, min of the his): exact for any
    ordered values, and each column triple is sorted once for the three pixels that share it.
    """
    h, w = x.shape
    lo = np.empty(w, x.dtype)
    mi = np.empty(w, x.dtype)
    hi = np.empty(w, x.dtype)
    for r in range(h):
        ru, rd = max(r - 1, 0), min(r + 1, h - 1)
        # the compare-exchanges as selects on the same comparisons (no branches, so the
        # loop vectorises): the same values, signed zeros included
        for c in range(w):
            a, b, d = x[ru, c], x[r, c], x[rd, c]
            sw = a > b
            a, b = (b if sw else a), (a if sw else b)
            sw = b > d
            b, d = (d if sw else b), (b if sw else d)
            sw = a > b
            lo[c], mi[c], hi[c] = (b if sw else a), (a if sw else b), d
        for c in range(w):
            cl, cr = max(c - 1, 0), min(c + 1, w - 1)
            m_lo = max(lo[cl], max(lo[c], lo[cr]))
            m_hi = min(hi[cl], min(hi[c], hi[cr]))
            m_mi = _med(mi[cl], mi[c], mi[cr])
            out[r, c] = _med(m_lo, m_mi, m_hi)
    return out


def median3(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """3x3 median of a float32 image, edges mirrored (same as scipy's ``median_filter(x, 3)``).

    Args:
        x: float32 (rows, cols).
        out: float32 (rows, cols) to write the result into (e.g. a band of a stack).

    Example:
        >>> x = np.zeros((5, 5), np.float32); x[2, 2] = 9.0
        >>> float(median3(x).max())
        0.0
    """
    x = np.ascontiguousarray(x)
    if out is None:
        out = np.empty_like(x)
    if x.size and np.isnan(x).any():
        # NaN has no order: keep the reference kernel's behaviour there
        out[...] = _median3_insertion(x)
        return out
    return _median3_columns(x, out)
