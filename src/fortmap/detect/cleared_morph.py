"""Binary morphology of the cleared-land step (:mod:`fortmap.detect.cleared`), compiled.

The block grid of a whole scene is closed and opened with discs and its holes filled. A disc
is a stack of row intervals, so a dilation (erosion) is, per output pixel, whether any (all)
of a few row intervals of the input hold a set pixel (only set pixels); each interval is
counted from a padded prefix sum of its row, in whole-row loops that vectorise. The results
are exactly those of ``scipy.ndimage.binary_dilation`` / ``binary_erosion`` with
``border_value=0`` and ``binary_fill_holes`` (booleans: any correct algorithm agrees).
Pixels of whatever grid it is given.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from fortmap.detect.change_kernels import _run_components


def disk(r: int) -> np.ndarray:
    """Disc of radius ``r`` pixels, bool (2r + 1, 2r + 1)."""
    return np.hypot(*np.mgrid[-r : r + 1, -r : r + 1]) <= r


def _half_widths(structure: np.ndarray) -> np.ndarray:
    """Per row of a centred, symmetric, row-convex structure: half width of its interval
    (-1 for an empty row). Raises ValueError for any other structure."""
    s = np.asarray(structure, bool)
    if s.ndim != 2 or s.shape[0] % 2 == 0 or s.shape[1] % 2 == 0:
        raise ValueError("structure must be 2-D with odd sides")
    c = s.shape[1] // 2
    half = np.full(s.shape[0], -1, np.int64)
    for i, row in enumerate(s):
        if not row.any():
            continue
        hw = c - int(np.argmax(row))
        ref = np.zeros_like(row)
        ref[c - hw : c + hw + 1] = True
        if hw < 0 or not np.array_equal(row, ref):
            raise ValueError("structure rows must be intervals centred on the middle column")
        half[i] = hw
    return half


@njit(cache=True, nogil=True)
def _prefix(m, pad):  # pragma: no cover - compiled
    """Per row, counts of set pixels before each padded column: int32 (H, W + 2 pad + 1),
    the row padded with ``pad`` unset pixels on each side."""
    h, w = m.shape
    p = np.zeros((h, w + 2 * pad + 1), np.int32)
    for y in range(h):
        py = p[y]
        acc = 0
        for x in range(w):
            acc += 1 if m[y, x] else 0
            py[pad + x + 1] = acc
        for x in range(pad + w + 1, w + 2 * pad + 1):
            py[x] = acc
    return p


@njit(cache=True, nogil=True)
def _morph(m, half, erode):  # pragma: no cover - compiled
    """Dilation (``erode`` False) or erosion by the structure of half widths ``half``;
    outside the image counts as unset."""
    h, w = m.shape
    r = (half.size - 1) // 2
    pad = max(0, half.max())
    p = _prefix(m, pad)
    out = np.empty((h, w), np.bool_)
    for y in range(h):
        o = out[y]
        o[:] = erode
        for i in range(half.size):
            hw = half[i]
            if hw < 0:
                continue
            yy = y + i - r
            if yy < 0 or yy >= h:
                if erode:
                    # part of the structure lies outside, where nothing is set
                    o[:] = False
                    break
                continue
            py = p[yy]
            full = 2 * hw + 1
            # a row with too few set pixels decides at once (masks here are sparse)
            if erode and py[w + 2 * pad] < full:
                o[:] = False
                break
            if not erode and py[w + 2 * pad] == 0:
                continue
            lo = pad - hw
            hi = pad + hw + 1
            if erode:
                for x in range(w):
                    o[x] = o[x] & (py[x + hi] - py[x + lo] == full)
            else:
                for x in range(w):
                    o[x] = o[x] | (py[x + hi] - py[x + lo] > 0)
    return out


def binary_dilation(m: np.ndarray, structure: np.ndarray) -> np.ndarray:
    """``scipy.ndimage.binary_dilation(m, structure, border_value=0)`` for a centred,
    symmetric structure whose rows are intervals (a disc, a square), bool (H, W) pixels."""
    return _morph(np.ascontiguousarray(m, bool), _half_widths(structure), False)


def binary_erosion(m: np.ndarray, structure: np.ndarray) -> np.ndarray:
    """``scipy.ndimage.binary_erosion(m, structure, border_value=0)``, same structures as
    :func:`binary_dilation`."""
    return _morph(np.ascontiguousarray(m, bool), _half_widths(structure), True)


@njit(cache=True, nogil=True)
def _fill_holes(m):  # pragma: no cover - compiled
    """Unset pixels 4-connected to the image's edge through unset pixels stay unset; the
    rest is set. The unset pixels' 4-connected components are found as runs along rows
    (union-find on runs), so the wide background costs a few operations a row."""
    h, w = m.shape
    out = np.ones((h, w), np.bool_)
    bg = np.empty((h, w), np.bool_)
    for y in range(h):
        for x in range(w):
            bg[y, x] = not m[y, x]
    rs, re, first, root, n = _run_components(bg)
    edge = np.zeros(n, np.bool_)
    for y in range(h):
        for k in range(first[y], first[y + 1]):
            if y == 0 or y == h - 1 or rs[k] == 0 or re[k] == w:
                edge[root[k]] = True
    for y in range(h):
        for k in range(first[y], first[y + 1]):
            if edge[root[k]]:
                out[y, rs[k] : re[k]] = False
    return out


def fill_holes(m: np.ndarray) -> np.ndarray:
    """``scipy.ndimage.binary_fill_holes(m)`` (4-connected background), bool (H, W)."""
    return _fill_holes(np.ascontiguousarray(m, bool))
