"""Compiled per-pixel measures of the rubble detector, evaluated at chosen pixels only."""

from __future__ import annotations

import numpy as np
from numba import njit

from fortmap.detect.fort_kernels import _reflect


@njit(cache=True, nogil=True)
def _box(g, r, c, h, w, k):  # pragma: no cover - compiled
    a = 0.0
    s1 = k // 2
    for dr in range(-s1, k - s1):
        y = _reflect(r + dr, h)
        for dc in range(-s1, k - s1):
            a += np.float64(g[y, _reflect(c + dc, w)])
    return a / (k * k)


@njit(cache=True, nogil=True)
def residual_level(g, rows, cols, k=3):  # pragma: no cover - compiled
    """Per pixel (rows, cols) of ``g``: the mean absolute high-pass residual
    ``|g - box_k(g)|`` over the ``k`` x ``k`` box around it, and the mean level of the
    ``k + 2`` box around it (two float32 arrays, grey units).

    The residual of a box mean vanishes on any plane, so a smooth slope (the flank of a
    mound, a gradual shading) leaves none, whereas broken material of mixed albedo leaves much.
    """
    h, w = g.shape
    n = rows.size
    res = np.empty(n, np.float32)
    lev = np.empty(n, np.float32)
    s1 = k // 2
    for i in range(n):
        r, c = rows[i], cols[i]
        a = 0.0
        for dr in range(-s1, k - s1):
            y = _reflect(r + dr, h)
            for dc in range(-s1, k - s1):
                x = _reflect(c + dc, w)
                a += abs(np.float64(g[y, x]) - _box(g, y, x, h, w, k))
        res[i] = a / (k * k)
        lev[i] = _box(g, r, c, h, w, k + 2)
    return res, lev


def relative_roughness(g: np.ndarray, rows: np.ndarray, cols: np.ndarray, k: int = 3) -> np.ndarray:
    """Per pixel (rows, cols) of ``g``, the natural log of ``residual_level``'s residual over
    its level (floored at 1e-3 grey): dividing by the local level makes the measure indifferent
    to how strongly a textured surface is lit (a surface leaving a shadow brightens its texture
    and its level alike)."""
    res, lev = residual_level(g, rows, cols, k)
    return np.log(res / np.maximum(lev, 1e-3) + 1e-4).astype(np.float32)
