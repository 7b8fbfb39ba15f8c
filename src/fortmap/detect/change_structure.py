"""Per-pixel inputs of the structure cue (:mod:`fortmap.detect.change`), fused.

At the structure resolution each date needs its brightest band with shade filled by the
scene's ground level (what the top-hats see) and a built-material weight; the dark and bright
top-hats are then weighted into the two channels compared between dates. Each kernel does in
one pass what was a chain of numpy operations on float32 arrays, with the same float32
operations in the same order, so the values are bit for bit the same. Pixels of any grid.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def structure_inputs(x, filled, ground, sat_ref, veg_ref, veg_step):  # pragma: no cover
    """Top-hat input and built-material weight of one date, float32 (H, W) each.

    Args:
        x: float32 (bands, H, W) block means.
        filled: bool (H, W), shade to fill with ``ground``.
        ground: float32 ground level.
        sat_ref: float32 scene saturation scale (``max(sat_ref, 1e-3)``).
        veg_ref: float32 excess-green level at which the weight starts to fall.
        veg_step: float32 excess-green span over which it falls to 0.

    Returns:
        (``where(filled, ground, max over bands)``, ``change.ChangeModel._structure_weight``).
    """
    nb, h, w = x.shape
    lum = np.empty((h, w), np.float32)
    wt = np.empty((h, w), np.float32)
    zero = np.float32(0.0)
    one = np.float32(1.0)
    for y in range(h):
        for i in range(w):
            mx = x[0, y, i]
            mn = mx
            for k in range(1, nb):
                mx = max(mx, x[k, y, i])
                mn = min(mn, x[k, y, i])
            lum[y, i] = ground if filled[y, i] else mx
            if nb < 2:
                # saturation is zero for one band
                sat = zero
            else:
                sat = (mx - mn) / (mx + np.float32(0.02))
            g = np.float32(1.5) - sat / sat_ref
            g = min(max(g, zero), one)
            if nb < 3:
                wt[y, i] = g
                continue
            x0, x1, x2 = x[0, y, i], x[1, y, i], x[2, y, i]
            e = (np.float32(2.0) * x1 - x0 - x2) / (x0 + x1 + x2 + np.float32(0.03))
            nv = (veg_ref - e) / veg_step
            nv = min(max(nv, zero), one)
            wt[y, i] = g * nv
    return lum, wt


@njit(cache=True, nogil=True)
def weighted_pair(white, black, weight, dark_weight):  # pragma: no cover - compiled
    """``stack([white * weight, dark_weight * black * weight])``, float32 (2, H, W)."""
    h, w = white.shape
    out = np.empty((2, h, w), np.float32)
    for y in range(h):
        for i in range(w):
            out[0, y, i] = white[y, i] * weight[y, i]
            out[1, y, i] = (dark_weight * black[y, i]) * weight[y, i]
    return out
