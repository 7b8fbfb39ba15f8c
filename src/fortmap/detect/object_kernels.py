"""Compiled steps of the change objects (:mod:`fortmap.detect.razed`), exact equivalents of
the scipy.ndimage calls they replace. Pixels of the window as read.

``grow_within`` is ``binary_dilation(seed, iterations=reach, mask=allowed)`` with the
4-connected cross: a breadth-first search that stops ``reach`` steps out, instead of
``reach`` passes over the whole window. ``label_sums`` gives, in one pass, the per-label
sums that ``ndimage.sum``, ``center_of_mass`` and ``mean`` each take in a pass of their own
(``numpy.bincount`` over full-size weight arrays); it adds the same float64 values in the
same (row-major) order, so the results are the same to the bit.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def grow_within(seed, allowed, reach):  # pragma: no cover - compiled
    """Pixels of ``allowed`` reached from ``seed`` in at most ``reach`` 4-connected steps
    through ``allowed`` pixels, plus ``seed`` itself: bool (H, W).

    Example (``scipy.ndimage.binary_dilation(seed, iterations=reach, mask=allowed | seed)``):
        >>> s = np.zeros((1, 6), bool); s[0, 0] = True
        >>> grow_within(s, np.ones((1, 6), bool), 2).astype(int).tolist()
        [[1, 1, 1, 0, 0, 0]]
    """
    h, w = seed.shape
    out = seed.copy()
    q = np.empty(h * w, np.int64)
    n = 0
    for y in range(h):
        for x in range(w):
            if seed[y, x]:
                q[n] = y * w + x
                n += 1
    lo = 0
    for _ in range(reach):
        hi = n
        if lo == hi:
            break
        for k in range(lo, hi):
            p = q[k]
            y, x = p // w, p % w
            if y > 0 and not out[y - 1, x] and allowed[y - 1, x]:
                out[y - 1, x] = True
                q[n] = p - w
                n += 1
            if y < h - 1 and not out[y + 1, x] and allowed[y + 1, x]:
                out[y + 1, x] = True
                q[n] = p + w
                n += 1
            if x > 0 and not out[y, x - 1] and allowed[y, x - 1]:
                out[y, x - 1] = True
                q[n] = p - 1
                n += 1
            if x < w - 1 and not out[y, x + 1] and allowed[y, x + 1]:
                out[y, x + 1] = True
                q[n] = p + 1
                n += 1
        lo = hi
    return out


@njit(cache=True, nogil=True)
def label_sums(lab, n, values):  # pragma: no cover - compiled
    """Per label 0..n: pixel count, sum of rows, sum of columns and sum of ``values``, each
    float64 (n + 1,), added in row-major order.

    Example:
        >>> lab = np.array([[0, 1], [1, 2]], np.int32)
        >>> c, sy, sx, sv = label_sums(lab, 2, np.array([[9, 1], [2, 4]], np.float32))
        >>> c.tolist(), sy.tolist(), sx.tolist(), sv.tolist()
        ([1.0, 2.0, 1.0], [0.0, 1.0, 1.0], [0.0, 1.0, 1.0], [9.0, 3.0, 4.0])
    """
    h, w = lab.shape
    c = np.zeros(n + 1, np.float64)
    sy = np.zeros(n + 1, np.float64)
    sx = np.zeros(n + 1, np.float64)
    sv = np.zeros(n + 1, np.float64)
    for y in range(h):
        fy = np.float64(y)
        for x in range(w):
            i = lab[y, x]
            c[i] += 1.0
            sy[i] += fy
            sx[i] += np.float64(x)
            sv[i] += np.float64(values[y, x])
    return c, sy, sx, sv
