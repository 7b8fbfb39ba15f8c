"""Running min and max over squares, by doubling, for the top-hats of the change evidence.

The maximum over a window of k values is the maximum of two overlapping windows of the
largest power of two below k, each built by doubling (windows of 1, 2, 4, ... values), so a
window of 11 costs 4 comparisons per pixel instead of 10. Minimum and maximum pick one of the
values whatever the grouping, so for inputs without NaN (where grouping would decide which
NaN-or-number comparison wins) the result equals ``change_cues._rank3``'s bit for bit: the
callers check for NaN and keep that kernel otherwise. Edges are replicated, as there.
Pixels of whatever grid it is given.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _pick_rows(a, b, n, is_max, out):  # pragma: no cover - compiled
    """``out[i]`` = max (``is_max``) or min of ``a[i]`` and ``b[i]`` for i < n; the branch
    is outside the loops, so each vectorises. ``out`` may be ``a``."""
    if is_max:
        for i in range(n):
            out[i] = max(a[i], b[i])
    else:
        for i in range(n):
            out[i] = min(a[i], b[i])


@njit(cache=True, nogil=True)
def _window_1d(m, m2, n, k, is_max, out):  # pragma: no cover - compiled
    """``out[i]`` = extreme of ``m[i : i + k]`` for i < n; ``m`` (length n + k - 1) and the
    scratch ``m2`` (as long) are overwritten. Each doubling writes the other buffer: an
    output that overlapped its input would keep the loop from vectorising."""
    span = 1
    size = m.size
    while 2 * span <= k:
        _pick_rows(m, m[span:], size - span, is_max, m2)
        m, m2 = m2, m
        size -= span
        span *= 2
    off = k - span
    _pick_rows(m, m[off:], n, is_max, out)


@njit(cache=True, nogil=True)
def rank_square(x, r, is_max):  # pragma: no cover - compiled
    """Running max (``is_max``) or min over the (2r + 1) square around each pixel of float32
    (H, W), edges replicated; the values of ``change_cues._rank3`` for inputs without NaN."""
    h, w = x.shape
    k = 2 * r + 1
    out = np.empty((h, w), np.float32)
    if r == 0:
        out[:] = x
        return out
    pad = np.empty(w + 2 * r, np.float32)
    pad2 = np.empty(w + 2 * r, np.float32)
    # rows padded with their edge rows above and below, for the column pass
    tmp = np.empty((h + 2 * r, w), np.float32)
    for y in range(h):
        xy = x[y]
        pad[r : r + w] = xy
        pad[:r] = xy[0]
        pad[r + w :] = xy[w - 1]
        _window_1d(pad, pad2, w, k, is_max, tmp[y + r])
    for y in range(r):
        tmp[y] = tmp[r]
        tmp[h + r + y] = tmp[h + r - 1]
    span = 1
    size = h + 2 * r
    while 2 * span <= k:
        for y in range(size - span):
            _pick_rows(tmp[y], tmp[y + span], w, is_max, tmp[y])
        size -= span
        span *= 2
    off = k - span
    for y in range(h):
        _pick_rows(tmp[y], tmp[y + off], w, is_max, out[y])
    return out


@njit(cache=True, nogil=True)
def tophat_sums(lum, radii):  # pragma: no cover - compiled
    """``change_cues._tophat_sums`` with :func:`rank_square`: the same values for ``lum``
    without NaN (float32 (H, W); radii in pixels)."""
    white = np.zeros_like(lum)
    black = np.zeros_like(lum)
    ero = lum
    dil = lum
    prev = 0
    for r in radii:
        if r < prev:
            ero = rank_square(lum, r, False)
            dil = rank_square(lum, r, True)
        elif r > prev:
            ero = rank_square(ero, r - prev, False)
            dil = rank_square(dil, r - prev, True)
        prev = r
        opened = rank_square(ero, r, True)
        closed = rank_square(dil, r, False)
        for y in range(lum.shape[0]):
            for x in range(lum.shape[1]):
                white[y, x] += lum[y, x] - opened[y, x]
                black[y, x] += closed[y, x] - lum[y, x]
    return white, black
