"""Numba whole-window image filters of the road contrasts, bit for bit the numpy/scipy
expressions they replace: ``uniform_reflect`` (``scipy.ndimage.uniform_filter``, mode
reflect) and ``band_mean`` (``img.mean(axis=0)``).

Moved here from ``along_kernels`` (which re-exports them). Coordinates are pixels of the
window (row, column). All kernels are cached on disk (``cache=True``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from fortmap.detect.fort_kernels import _reflect


@njit(cache=True, nogil=True)
def uniform_reflect(g, k):  # pragma: no cover - compiled
    """``scipy.ndimage.uniform_filter(g, k)`` (mode reflect, origin 0) of float32 2-D ``g``,
    bit for bit: scipy's own arithmetic (``NI_UniformFilter1D``), axis 0 then axis 1. Along
    each line a float64 running sum starts as the sum of the first box and moves on by the
    entering less the leaving value; each output is that sum over ``k`` rounded to float32
    (a direct sum per pixel can differ from it in the last bit).

    Axis 0 keeps one running sum per column and walks the rows (contiguous reads, where
    scipy copies out strided column lines); each row of its output is then run along axis 1
    at once, so the intermediate image is never allocated. The running sums of a row are
    kept and divided by ``k`` afterwards (the same divisions, vectorised).

    Returns:
        float32 (rows, cols).
    """
    if k <= 1:
        return g.copy()  # scipy filters no axis of size 1
    h, w = g.shape
    s1 = k // 2
    out = np.empty((h, w), np.float32)
    acc = np.zeros(w, np.float64)
    for j in range(k):
        y = _reflect(j - s1, h)
        for c in range(w):
            acc[c] += np.float64(g[y, c])
    buf = np.empty(w + k, np.float64)
    ts = np.empty(w, np.float64)
    for r in range(h):
        if r > 0:
            yi = _reflect(r + k - 1 - s1, h)
            yo = _reflect(r - 1 - s1, h)
            for c in range(w):
                acc[c] += np.float64(g[yi, c]) - np.float64(g[yo, c])
        # the axis-0 output row (rounded to float32, as scipy stores it), reflected at the ends
        for c in range(w):
            buf[s1 + c] = np.float64(np.float32(acc[c] / k))
        for j in range(s1):
            buf[j] = buf[s1 + _reflect(j - s1, w)]
        for j in range(k - s1 - 1):
            buf[s1 + w + j] = buf[s1 + _reflect(w + j, w)]
        t = 0.0
        for j in range(k):
            t += buf[j]
        ts[0] = t
        for c in range(1, w):
            t += buf[c + k - 1] - buf[c - 1]
            ts[c] = t
        # divided in a loop of their own, where they vectorise: inside the running sum's
        # loop each was a scalar division, and those bounded the whole filter
        o = out[r]
        for c in range(w):
            o[c] = np.float32(ts[c] / k)
    return out


@njit(cache=True, nogil=True)
def band_mean(img):  # pragma: no cover - compiled
    """``img.mean(axis=0)`` of a float32 (bands, rows, cols) image, bit for bit: the bands
    added in order to 0.0 in float32 (numpy's reduction over the first axis; the 0.0 start
    makes an all -0.0 pixel +0.0), then divided by their count (a float32 quotient,
    correctly rounded whichever way numpy promotes it).

    Returns:
        float32 (rows, cols).
    """
    nb, h, w = img.shape
    out = np.empty((h, w), np.float32)
    for r in range(h):
        for c in range(w):
            out[r, c] = np.float32(0.0) + img[0, r, c]
        for b in range(1, nb):
            for c in range(w):
                out[r, c] += img[b, r, c]
        for c in range(w):
            out[r, c] = np.float32(np.float64(out[r, c]) / nb)
    return out
