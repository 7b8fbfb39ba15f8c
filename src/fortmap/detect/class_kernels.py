"""Numba kernels of the illumination classes of a window's road pixels (``road_window``).

Road pixels are split into a dark and a bright class by Otsu's threshold of their smoothed
grey levels (its histogram: ``uniform_counts``); dark pixels beside bright ones are taken as
penumbra (``penumbra_to_bright``), and each class's pixels are gathered per road in one pass
(``class_groups``, ``masked_by_road``, ``values_on_roads``) instead of numpy's chain of masks
and gathers, with the same values in the same order. Coordinates are pixels of the window
(row, column). All kernels are cached on disk (``cache=True``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from fortmap.detect.fort_kernels import near


@njit(cache=True, nogil=True)
def penumbra_to_bright(dark, ref, rows, cols, h, w, rad):  # pragma: no cover - compiled
    """``illumination_anomaly``'s classes: per road pixel (rows, cols) of a (h, w) window,
    ``dark`` (bool per pixel) less the dark pixels within ``rad`` pixels (a square of side
    2 rad + 1) of a bright ``ref`` pixel, which are compared with the bright level.

    The same as painting the bright ``ref`` pixels on a (h, w) mask and testing it with
    ``fort_kernels.any_near_at`` at the dark pixels, without the numpy passes between.
    """
    n = dark.size
    seen = np.zeros((h, w), np.bool_)
    for i in range(n):
        if ref[i] and not dark[i]:
            seen[rows[i], cols[i]] = True
    out = dark.copy()
    for i in range(n):
        if dark[i]:
            out[i] = not near(seen, rad, rows[i], cols[i])
    return out


@njit(cache=True, nogil=True)
def class_groups(dark, ref, rid, g, rows, cols, h, w, n, rad):  # pragma: no cover - compiled
    """``road_window.illumination_anomaly``'s classes of the road pixels (rows, cols) of a
    (h, w) window in one pass: the dark class (bool per pixel) must be under half of the
    ``ref`` pixels and neither all nor none of them; its pixels near a bright ``ref`` one
    join the bright class (``penumbra_to_bright``, ``rad`` pixels).

    Returns:
        (whether the split holds; per pixel its group, road id ``rid`` (dark) or ``rid + n``
        (bright), int64; the levels ``g`` and groups of the ``ref`` pixels in order; the
        ``ref`` pixels per group, int64 (2 n,)). The arrays are empty where it does not hold.
    """
    size = dark.size
    nref = 0
    ndark = 0
    for i in range(size):
        if ref[i]:
            nref += 1
            ndark += dark[i]
    # ``lo.all() or not lo.any() or lo.mean() >= 0.5`` of the reference pixels' classes: a
    # count over a size is at least a half exactly when twice it is at least the size
    if ndark == nref or ndark == 0 or 2 * ndark >= nref:
        e = np.empty(0, np.int64)
        return False, e, np.empty(0, g.dtype), e, e
    d = penumbra_to_bright(dark, ref, rows, cols, h, w, rad)
    grp = np.empty(size, np.int64)
    g_ref = np.empty(nref, g.dtype)
    sel = np.empty(nref, np.int64)
    cnt = np.zeros(2 * n, np.int64)
    j = 0
    for i in range(size):
        q = np.int64(rid[i]) + (0 if d[i] else n)
        grp[i] = q
        if ref[i]:
            g_ref[j] = g[i]
            sel[j] = q
            cnt[q] += 1
            j += 1
    return True, grp, g_ref, sel, cnt


@njit(cache=True, nogil=True)
def less_at(g, m, idx):  # pragma: no cover - compiled
    """``g - m[idx]`` (1-D arrays of one float dtype; ``idx`` int), in one pass."""
    out = np.empty(g.size, g.dtype)
    for i in range(g.size):
        out[i] = g[i] - m[idx[i]]
    return out


@njit(cache=True, nogil=True)
def uniform_counts(x, first, last, edges):  # pragma: no cover - compiled
    """``np.histogram(x, bins=edges.size - 1, range=(first, last))[0]`` of 1-D ``x`` whose
    equal-width bin edges ``edges`` numpy gave (``np.histogram_bin_edges``), bit for bit:
    numpy's index estimate in the dtype of ``x``, then its one-step corrections against the
    edges, in one pass instead of numpy's blocks of array passes.

    Returns:
        int64 (bins,) counts.
    """
    nb = edges.size - 1
    counts = np.zeros(nb, np.int64)
    denom = last - first
    # the index estimates first, in a pass of their own where the divisions vectorise (in
    # the counting loop each was a scalar division); float64 holds the expression's value
    # whatever the dtype of ``x`` (float32 times the int64 bin count is float64 already)
    est = np.empty(x.size, np.float64)
    for i in range(x.size):
        est[i] = (x[i] - first) / denom * nb
    for i in range(x.size):
        v = x[i]
        if not (v >= first and v <= last):
            continue
        k = int(est[i])
        if k == nb:
            k -= 1
        if v < edges[k]:
            k -= 1
        if v >= edges[k + 1] and k != nb - 1:
            k += 1
        counts[k] += 1
    return counts


@njit(cache=True, nogil=True)
def masked_by_road(mask, rid, g, n):  # pragma: no cover - compiled
    """``g[mask]``, ``rid[mask]`` and ``np.bincount(rid[mask], minlength=n)`` of 1-D per-pixel
    arrays (road ids 0..n-1), in one pass."""
    size = 0
    for i in range(mask.size):
        size += mask[i]
    gv = np.empty(size, g.dtype)
    rv = np.empty(size, rid.dtype)
    cnt = np.zeros(n, np.int64)
    j = 0
    for i in range(mask.size):
        if mask[i]:
            gv[j] = g[i]
            rv[j] = rid[i]
            cnt[rid[i]] += 1
            j += 1
    return gv, rv, cnt


@njit(cache=True, nogil=True)
def values_on_roads(mask, rid, keep, g):  # pragma: no cover - compiled
    """``g[mask & keep[rid]]`` of 1-D per-pixel arrays (``keep``: bool per road id), in one
    pass."""
    size = 0
    for i in range(mask.size):
        size += mask[i] and keep[rid[i]]
    out = np.empty(size, g.dtype)
    j = 0
    for i in range(mask.size):
        if mask[i] and keep[rid[i]]:
            out[j] = g[i]
            j += 1
    return out
