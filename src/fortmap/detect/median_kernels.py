"""3x3 median filter of road derivation (numba), exact against scipy's ``median_filter``, and
the byte (uint8) path of images whose values are all whole numbers 0..255.

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


@nb.njit(cache=True, nogil=True, inline="always")
def _med9(lo, mi, hi, a, b, c):  # pragma: no cover - compiled
    """Median of the nine values of sorted column triples ``a``, ``b`` and ``c``."""
    m_lo = max(lo[a], max(lo[b], lo[c]))
    m_hi = min(hi[a], min(hi[b], hi[c]))
    return _med(m_lo, _med(mi[a], mi[b], mi[c]), m_hi)


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
        xu, xm, xd = x[max(r - 1, 0)], x[r], x[min(r + 1, h - 1)]
        # the compare-exchanges as selects on the same comparisons (no branches, so the
        # loop vectorises): the same values, signed zeros included
        for c in range(w):
            a, b, d = xu[c], xm[c], xd[c]
            sw = a > b
            a, b = (b if sw else a), (a if sw else b)
            sw = b > d
            b, d = (d if sw else b), (b if sw else d)
            sw = a > b
            lo[c], mi[c], hi[c] = (b if sw else a), (a if sw else b), d
        o = out[r]
        # the first and last columns apart: the interior loop has no clamped indexes, so it
        # vectorises (a third of the time in float32, a twentieth in bytes)
        o[0] = _med9(lo, mi, hi, 0, 0, min(1, w - 1))
        for c in range(1, w - 1):
            # written out: through _med9's index arguments the loop does not vectorise
            m_lo = max(lo[c - 1], max(lo[c], lo[c + 1]))
            m_hi = min(hi[c - 1], min(hi[c], hi[c + 1]))
            p, q, s = mi[c - 1], mi[c], mi[c + 1]
            m_mi = max(min(p, q), min(max(p, q), s))
            o[c] = max(min(m_lo, m_mi), min(max(m_lo, m_mi), m_hi))
        if w > 1:
            o[w - 1] = _med9(lo, mi, hi, w - 2, w - 1, w - 1)
    return out


def median3(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """3x3 median of a float32 or uint8 image, edges mirrored (same as scipy's
    ``median_filter(x, 3)``).

    Args:
        x: float32 or uint8 (rows, cols).
        out: (rows, cols) of ``x``'s dtype to write the result into (e.g. a band of a stack).

    Example:
        >>> x = np.zeros((5, 5), np.float32); x[2, 2] = 9.0
        >>> float(median3(x).max())
        0.0
    """
    x = np.ascontiguousarray(x)
    if out is None:
        out = np.empty_like(x)
    if x.dtype != np.uint8 and x.size and np.isnan(x).any():
        # NaN has no order: keep the reference kernel's behaviour there
        out[...] = _median3_insertion(x)
        return out
    return _median3_columns(x, out)


@nb.njit(cache=True, nogil=True)
def to_bytes(x: np.ndarray, out: np.ndarray) -> bool:  # pragma: no cover - compiled
    """Copy float32 (bands, rows, cols) ``x`` into uint8 ``out`` of the same shape; False (and
    ``out`` partly written) unless every value is a whole number 0..255, NaN not being one.

    An overview averaged from a byte image holds bytes only; as bytes its filters read and
    write a quarter of the memory, and the values convert back to float32 exactly.
    """
    nb_, h, w = x.shape
    for b in range(nb_):
        for r in range(h):
            bad = False
            for c in range(w):
                v = x[b, r, c]
                # NaN fails both comparisons
                ok = v >= 0.0 and v <= 255.0
                u = np.uint8(v) if ok else np.uint8(0)
                bad |= not ok or np.float32(u) != v
                out[b, r, c] = u
            if bad:
                return False
    return True


@nb.njit(cache=True, nogil=True)
def abs_diff_medians_u8(img: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """Per band, the median of ``|img[:, :, 1:] - img[:, :, :-1]|`` of a uint8 (bands, rows,
    cols) stack, float32 (bands,): :func:`fortmap.detect.selection_kernels.abs_diff_medians` of
    the same values as float32, from a histogram of the 256 possible differences. NaN (as
    numpy's median of nothing) where a row has under two pixels."""
    nb_, h, w = img.shape
    out = np.full(nb_, np.nan, np.float32)
    n = h * (w - 1)
    if n <= 0:
        return out
    hist = np.zeros(256, np.int64)
    # four histograms, filled in turn: consecutive equal differences (the common case)
    # would otherwise wait on each other's increments
    part = np.zeros((4, 256), np.int64)
    for b in range(nb_):
        part[:] = 0
        for r in range(h):
            row = img[b, r]
            c = 0
            while c + 4 < w:
                for k in range(4):
                    p, q = row[c + k + 1], row[c + k]
                    part[k, (p - q) if p >= q else (q - p)] += 1
                c += 4
            while c < w - 1:
                p, q = row[c + 1], row[c]
                part[0, (p - q) if p >= q else (q - p)] += 1
                c += 1
        for v in range(256):
            hist[v] = part[0, v] + part[1, v] + part[2, v] + part[3, v]
        # the (n - 1) // 2-th and n // 2-th smallest differences
        lo = hi = -1
        acc = 0
        for v in range(256):
            acc += hist[v]
            if lo < 0 and acc > (n - 1) // 2:
                lo = v
            if acc > n // 2:
                hi = v
                break
        # as numpy: the mean of the two middle values, in float32 (exact for whole numbers)
        out[b] = (np.float32(lo) + np.float32(hi)) / np.float32(2.0)
    return out
