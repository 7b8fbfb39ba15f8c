"""Numba kernels of the masked box mean of both dates at once (``road_window``'s smoothed
levels): ``masked_box_ab``, the mean over a sampling mask of a box around each road pixel of
the after and the before image in one pass, the same numbers bit for bit as
``fort_kernels.masked_box_at`` applied to each image.

Coordinates are pixels of the window (row, column); box sides are in pixels.
All kernels are cached on disk (``cache=True``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from fortmap.detect.fort_kernels import _reflect


@njit(cache=True, nogil=True)
def _column3_ab(fa, fb, fm, p, w):  # pragma: no cover - compiled
    """One column of a 3x3 box (flat index ``p`` its middle pixel, all inside the window):
    its means over the rows axis of the flat levels ``fa``, ``fb`` and the flat mask ``fm``,
    each rounded to float32 as the general kernel's column; the mask's as its count (0-3),
    which ``masked_box_ab`` reads its mean from a table by."""
    u, v, d = np.uintp(p - w), np.uintp(p), np.uintp(p + w)
    mu, mv, md = fm[u], fm[v], fm[d]
    # the masked values added in row order from 0.0; a select adds 0.0 for the others, which
    # leaves the sum as it is (it never is -0.0, being a sum from +0.0)
    ca = 0.0 + (np.float64(fa[u]) if mu else 0.0)
    ca += np.float64(fa[v]) if mv else 0.0
    ca += np.float64(fa[d]) if md else 0.0
    cb = 0.0 + (np.float64(fb[u]) if mu else 0.0)
    cb += np.float64(fb[v]) if mv else 0.0
    cb += np.float64(fb[d]) if md else 0.0
    return (
        np.float64(np.float32(ca / 3)),
        np.float64(np.float32(cb / 3)),
        np.int64(mu) + np.int64(mv) + np.int64(md),
    )


@njit(cache=True, nogil=True)
def _box3_weights():  # pragma: no cover - compiled
    """Per three column counts (c0 * 16 + c1 * 4 + c2, each 0-3), the 3x3 box's mean of the
    mask as ``_masked_box_ab_into`` computes it: 64 values, so a pixel reads its weight
    instead of dividing twice (the same float operations, done once per call)."""
    col = np.empty(4, np.float64)
    for c in range(4):
        col[c] = np.float64(np.float32((0.0 + np.float64(c)) / 3))
    out = np.empty(64, np.float32)
    for c0 in range(4):
        for c1 in range(4):
            for c2 in range(4):
                out[c0 * 16 + c1 * 4 + c2] = np.float32((0.0 + col[c0] + col[c1] + col[c2]) / 3)
    return out


@njit(cache=True, nogil=True)
def masked_box_ab(ga, gb, m, k, rows, cols, fill=np.nan):  # pragma: no cover - compiled
    """``fort_kernels.masked_box_at`` of the float32 (rows, cols) levels ``ga`` and ``gb``
    (box mean over the bool mask ``m`` only, NaN where the box holds almost none of it) at
    the pixels (rows, cols), both in one pass (the mask tests are shared, each image's
    arithmetic is that kernel's), written into (rows, cols) arrays NaN elsewhere.

    The 3 x 3 box (``road_window``'s) of a pixel off the window's edge reads flat indices
    and selects rather than branches on the mask; the values are the general kernel's.

    ``fill``: the value off the pixels (rows, cols) (NaN; +inf for ``sides_ab``'s
    ``inf_off``); where the box holds almost none of the mask the value is NaN regardless.

    Returns:
        (float32 (rows, cols), float32 (rows, cols)) for ``ga`` and ``gb``.
    """
    h, w = ga.shape
    out_a = np.full((h, w), fill, np.float32)
    out_b = np.full((h, w), fill, np.float32)
    if k != 3:
        _masked_box_ab_into(ga, gb, m, k, rows, cols, out_a, out_b)
        return out_a, out_b
    fa, fb, fm = ga.ravel(), gb.ravel(), m.ravel()
    oa, ob = out_a.ravel(), out_b.ravel()
    # the pixels on the window's edge take the general kernel (a small array: a large one
    # costs its first writes' page faults)
    n_edge = 0
    for i in range(rows.size):
        n_edge += not (1 <= rows[i] < h - 1 and 1 <= cols[i] < w - 1)
    edge = np.empty(n_edge, np.int64)
    n_edge = 0
    a0 = a1 = a2 = b0 = b1 = b2 = 0.0
    d0 = d1 = d2 = 0
    weight = _box3_weights()
    pr, pc = -1, -1
    for i in range(rows.size):
        r, c = rows[i], cols[i]
        if not (1 <= r < h - 1 and 1 <= c < w - 1):
            edge[n_edge] = i
            n_edge += 1
            pr = -1
            continue
        p = r * w + c
        if r == pr and c == pc + 1:
            # raster order: the pixel to the left shares all columns but the new right one
            a0, a1, b0, b1, d0, d1 = a1, a2, b1, b2, d1, d2
            a2, b2, d2 = _column3_ab(fa, fb, fm, p + 1, w)
        else:
            a0, b0, d0 = _column3_ab(fa, fb, fm, p - 1, w)
            a1, b1, d1 = _column3_ab(fa, fb, fm, p, w)
            a2, b2, d2 = _column3_ab(fa, fb, fm, p + 1, w)
        fna = np.float32((0.0 + a0 + a1 + a2) / 3)
        fnb = np.float32((0.0 + b0 + b1 + b2) / 3)
        fd = weight[d0 * 16 + d1 * 4 + d2]
        if fd > np.float32(1e-3):
            oa[np.uintp(p)] = fna / fd
            ob[np.uintp(p)] = fnb / fd
        else:
            oa[np.uintp(p)] = np.nan
            ob[np.uintp(p)] = np.nan
        pr, pc = r, c
    if n_edge:
        e = edge[:n_edge]
        _masked_box_ab_into(ga, gb, m, 3, rows[e], cols[e], out_a, out_b)
    return out_a, out_b


@njit(cache=True, nogil=True)
def _masked_box_ab_into(ga, gb, m, k, rows, cols, out_a, out_b):  # pragma: no cover - compiled
    # ``masked_box_ab`` of any box side, reflected indices, into ``out_a`` and ``out_b``
    h, w = ga.shape
    s1 = k // 2
    s2 = k - s1 - 1
    # per column of the box: its means over the rows axis (rounded to float32, as that
    # axis' pass stores them), of ``ga``, ``gb`` and the mask
    qa = np.empty(k, np.float64)
    qb = np.empty(k, np.float64)
    qd = np.empty(k, np.float64)
    pr, pc = -1, -1
    for i in range(rows.size):
        r, c = rows[i], cols[i]
        if r == pr and c == pc + 1 and pc >= s1 and c + s2 < w:
            # raster order: the pixel to the left shares all columns but the new right one
            for j in range(k - 1):
                qa[j], qb[j], qd[j] = qa[j + 1], qb[j + 1], qd[j + 1]
            j0 = k - 1
        else:
            j0 = 0
        for j in range(j0, k):
            x = _reflect(c + j - s1, w)
            ca = 0.0
            cb = 0.0
            cd = 0.0
            for dr in range(-s1, s2 + 1):
                y = _reflect(r + dr, h)
                if m[y, x]:
                    ca += np.float64(ga[y, x])
                    cb += np.float64(gb[y, x])
                    cd += 1.0
            qa[j] = np.float64(np.float32(ca / k))
            qb[j] = np.float64(np.float32(cb / k))
            qd[j] = np.float64(np.float32(cd / k))
        num_a = 0.0
        num_b = 0.0
        den = 0.0
        for j in range(k):
            num_a += qa[j]
            num_b += qb[j]
            den += qd[j]
        fa = np.float32(num_a / k)
        fb = np.float32(num_b / k)
        fd = np.float32(den / k)
        if fd > np.float32(1e-3):
            out_a[r, c] = fa / fd
            out_b[r, c] = fb / fd
        else:
            out_a[r, c] = np.nan
            out_b[r, c] = np.nan
        pr, pc = r, c
