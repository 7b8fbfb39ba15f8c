"""Numba kernels labelling new-object pixels: ``barricade_rows.hysteresis`` (``seeded_labels``)
and ``road_components`` (``label_pixels``) take their labels and pixel lists from passes over
the labelled pixels, not the window, with ``scipy.ndimage.label``'s numbering (8-connected
components in the order of their first pixel in raster order).

Coordinates are flat (raster) indices of the window's pixels. Moved here from
``along_kernels`` (which re-exports them) to keep that module to the along-road sampling.
All kernels are cached on disk (``cache=True``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from fortmap.detect.fort_kernels import true_pixels


@njit(cache=True, nogil=True)
def find_root(parent: np.ndarray, i: int) -> int:  # pragma: no cover - compiled
    """Root of ``i`` in the union-find forest ``parent``, halving the path on the way."""
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@njit(cache=True, nogil=True)
def seeded_labels(seed, grow):  # pragma: no cover - compiled
    """The 8-connected components of bool ``grow`` that hold a ``seed`` pixel (both bool
    (rows, cols)), labelled 1..n in the order of their first pixel in raster order, as
    ``ndi.label`` numbers components (0 elsewhere): ``barricade_rows.hysteresis``.

    Flood fills from the seed pixels, so the work beyond a scan of the masks is in
    proportion to the components' pixels.

    Returns:
        (int32 (rows, cols) labels, n, and the labels' pixels as ``label_pixels`` gives
        them: int64 flat indices and int64 (n + 2,) starts).
    """
    h, w = grow.shape
    lab = np.zeros((h, w), np.int32)
    ng = 0
    for y in range(h):
        for x in range(w):
            ng += grow[y, x]
    # every buffer sized once (a pixel is pushed once): growing them in the loop costs more
    stack = np.empty(ng + 1, np.int64)
    pix = np.empty(ng + 1, np.int64)
    starts = np.empty(ng + 2, np.int64)
    first = np.empty(ng + 1, np.int64)
    npix = 0
    nc = 0
    # the seed pixels in raster order (a sparse mask: ``true_pixels`` skips its empty words)
    for p0 in true_pixels(seed):
        y0, x0 = p0 // w, p0 % w
        if not grow[y0, x0] or lab[y0, x0]:
            continue
        nc += 1
        starts[nc - 1] = npix
        lab[y0, x0] = nc
        stack[0] = y0 * w + x0
        sp = 1
        lo = y0 * w + x0
        while sp:
            sp -= 1
            p = stack[sp]
            pix[npix] = p
            npix += 1
            lo = min(lo, p)
            y, x = p // w, p % w
            for yy in range(max(y - 1, 0), min(y + 2, h)):
                for xx in range(max(x - 1, 0), min(x + 2, w)):
                    if grow[yy, xx] and not lab[yy, xx]:
                        lab[yy, xx] = nc
                        stack[sp] = yy * w + xx
                        sp += 1
        first[nc - 1] = lo
    starts[nc] = npix
    rank = np.empty(nc, np.int32)
    # mergesort: the first pixels come nearly sorted, which a quicksort handles badly
    order = np.argsort(first[:nc], kind="mergesort")
    for i in range(nc):
        rank[order[i]] = i + 1
    flat = lab.ravel()
    for c in range(nc):
        for i in range(starts[c], starts[c + 1]):
            flat[pix[i]] = rank[c]
    # each label's pixels in raster order, labels in order: ``label_pixels``' answer
    out = np.empty(npix, np.int64)
    at = np.zeros(nc + 2, np.int64)
    pos = 0
    for q in range(nc):
        c = order[q]
        at[q + 1] = pos
        seg = np.sort(pix[starts[c] : starts[c + 1]])
        out[pos : pos + seg.size] = seg
        pos += seg.size
    at[nc + 1] = pos
    return lab, nc, out, at


@njit(cache=True, nogil=True)
def label_pixels(lab, n):  # pragma: no cover - compiled
    """Flat (raster) indices of the pixels of labels 1..n of int ``lab`` (rows, cols),
    grouped by label and in raster order within one, and where each label's run starts.

    Returns:
        (int64 flat indices, int64 (n + 2,) starts: label k's pixels are
        ``flat[starts[k]:starts[k + 1]]``).
    """
    f = lab.ravel()
    cnt = np.zeros(n + 2, np.int64)
    for i in range(f.size):
        v = f[i]
        if 0 < v <= n:
            cnt[v + 1] += 1
    for k in range(1, n + 2):
        cnt[k] += cnt[k - 1]
    starts = cnt.copy()
    out = np.empty(cnt[n + 1], np.int64)
    for i in range(f.size):
        v = f[i]
        if 0 < v <= n:
            out[cnt[v]] = i
            cnt[v] += 1
    return out, starts
