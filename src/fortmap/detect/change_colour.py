"""The colour cue of the per-window change evidence (:mod:`fortmap.detect.change`), fused.

For three bands, :func:`colour_cue` does in one pass over the rows what
``change_kernels.colour_prep``, ``dilate3_or``, ``tolerant_stack`` and the masking of shade
did in four: the colour channels of both dates (four planes each) live only in a ring of three
rows, which is all the +-1 pixel tolerant difference reads. Allocating and first touching those
eight planes cost more than the arithmetic on them. Every value is computed by the same float32
operations in the same order as there (the row bodies are those kernels' loops), so the results
are bit for bit the same. Pixels of whatever grid it is given (the working resolution).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from fortmap.detect.change_kernels import _col3, _dilated_row, _lut, _tol_sq


@njit(cache=True, nogil=True)
def _colour_row(
    b, a_raw, a, y, lo, inv, table, slo, sfac, slut, nbins, has_shift, dark, blue_thr,
    idx, cb, ca, shb, sha, skb, ska,
):  # pragma: no cover - compiled  # fmt: skip
    """Row ``y`` of ``change_kernels.colour_prep`` for three bands: the mapped after row into ``a[:, y]``,
    the colour channels into ``cb``, ``ca`` (4, W) and the shade flags into row ``y``."""
    w = b.shape[2]
    n = table.shape[1]
    third = np.float32(3.0)
    eps = np.float32(1e-3)
    zero = np.float32(0.0)
    idx[:] = 0
    for k in range(3):
        ik, lok, so, sf = inv[k], lo[k], slo[k], sfac[k]
        ak, bk, rk = a[k, y], b[k, y], a_raw[k, y]
        for x in range(w):
            ak[x] = _lut(rk[x], lok, ik, table, k, n)
            qi = int((bk[x] - so) * sf)
            idx[x] = idx[x] * nbins + min(max(qi, 0), nbins - 1)
    a0, a1, a2 = a[0, y], a[1, y], a[2, y]
    if has_shift:
        for x in range(w):
            c = idx[x]
            a0[x] = a0[x] - slut[0, c]
            a1[x] = a1[x] - slut[1, c]
            a2[x] = a2[x] - slut[2, c]
    b0, b1, b2 = b[0, y], b[1, y], b[2, y]
    cb0, cb1, cb2, cb3 = cb[0], cb[1], cb[2], cb[3]
    ca0, ca1, ca2, ca3 = ca[0], ca[1], ca[2], ca[3]
    shby, shay, skby, skay = shb[y], sha[y], skb[y], ska[y]
    for x in range(w):
        sb = ((zero + b0[x]) + b1[x]) + b2[x]
        sa = ((zero + a0[x]) + a1[x]) + a2[x]
        lb = sb / third
        la = sa / third
        cb0[x] = lb
        ca0[x] = la
        shby[x] = lb < dark
        shay[x] = la < dark
        m = min(la, lb)
        rb = m / (lb + eps)
        ra = m / (la + eps)
        cb1[x] = b0[x] * rb
        cb2[x] = b1[x] * rb
        cb3[x] = b2[x] * rb
        ca1[x] = a0[x] * ra
        ca2[x] = a1[x] * ra
        ca3[x] = a2[x] * ra
        skby[x] = b2[x] / (sb + eps) > blue_thr
        skay[x] = a2[x] / (sa + eps) > blue_thr


@njit(cache=True, nogil=True, fastmath=True)
def _tolerant_row(
    b_lo, b_mid, b_hi, a_lo, a_mid, a_hi, interior, acc, amin, amax, bmin, bmax, out
):  # pragma: no cover - compiled
    """One row of ``change_kernels.tolerant_stack`` into ``out`` (float32, W).

    ``*_lo``, ``*_mid``, ``*_hi`` are the rows above, at and below (C, W); ``interior`` says
    whether they are three different rows, as there (an edge row is read twice instead).
    """
    nc, w = b_mid.shape
    acc[:] = 0.0
    for c in range(nc):
        if interior:
            _col3(a_lo[c], a_mid[c], a_hi[c], amin, amax)
            _col3(b_lo[c], b_mid[c], b_hi[c], bmin, bmax)
        else:
            _col3(a_lo[c], a_lo[c], a_hi[c], amin, amax)
            _col3(b_lo[c], b_lo[c], b_hi[c], bmin, bmax)
        for e in range(min(w, 2)):
            x = 0 if e == 0 else w - 1
            x0 = max(0, x - 1)
            x1 = min(w - 1, x + 1)
            alo = amin[x0]
            ahi = amax[x0]
            blo = bmin[x0]
            bhi = bmax[x0]
            for k in range(x0 + 1, x1 + 1):
                alo = min(alo, amin[k])
                ahi = max(ahi, amax[k])
                blo = min(blo, bmin[k])
                bhi = max(bhi, bmax[k])
            acc[x] += _tol_sq(b_mid[c, x], a_mid[c, x], alo, ahi, blo, bhi)
        for x in range(1, w - 1):
            alo = min(min(amin[x - 1], amin[x]), amin[x + 1])
            ahi = max(max(amax[x - 1], amax[x]), amax[x + 1])
            blo = min(min(bmin[x - 1], bmin[x]), bmin[x + 1])
            bhi = max(max(bmax[x - 1], bmax[x]), bmax[x + 1])
            acc[x] += _tol_sq(b_mid[c, x], a_mid[c, x], alo, ahi, blo, bhi)
    for x in range(w):
        out[x] = np.sqrt(acc[x])


@njit(cache=True, nogil=True)
def colour_cue(
    b, a_raw, a, lo, step, table, slo, sfac, slut, nbins, has_shift, dark, blue_thr
):  # pragma: no cover - compiled
    """Colour cue and shade flags of a window, three bands, at working resolution.

    Args:
        b, a_raw: float32 (3, H, W) block means of the before and (scaled, unmapped) after.
        a: float32 (3, H, W) receives the mapped after image; may be ``a_raw`` itself (each
            value is read before it is written).
        lo, step, table, slo, sfac, slut, nbins, has_shift, dark, blue_thr: as
            ``change_kernels.colour_prep``.

    Returns:
        (colour cue float32 (H, W), 0 where ``unlit``; unlit: the 3 x 3 dilation of shade on
        either date; shade before, after; sky-lit shade before, after), the flags bool (H, W).
        The same values as ``colour_prep``, ``dilate3_or`` and ``tolerant_stack`` in turn.
    """
    nb, h, w = b.shape
    col = np.empty((h, w), np.float32)
    unlit = np.empty((h, w), np.bool_)
    shb = np.empty((h, w), np.bool_)
    sha = np.empty((h, w), np.bool_)
    skb = np.empty((h, w), np.bool_)
    ska = np.empty((h, w), np.bool_)
    # colour channels of rows y - 1, y, y + 1: row r in slot r % 3
    cb = np.empty((3, 4, w), np.float32)
    ca = np.empty((3, 4, w), np.float32)
    inv = np.empty(3, np.float32)
    for k in range(3):
        inv[k] = np.float32(1.0) / step[k]
    idx = np.zeros(w, np.int32)  # nbins**3 cells: a few thousand
    acc = np.empty(w, np.float32)
    amin = np.empty(w, np.float32)
    amax = np.empty(w, np.float32)
    bmin = np.empty(w, np.float32)
    bmax = np.empty(w, np.float32)
    drow = np.empty(w, np.bool_)
    args = (lo, inv, table, slo, sfac, slut, nbins, has_shift, dark, blue_thr, idx)
    if h > 0:
        _colour_row(b, a_raw, a, 0, *args, cb[0], ca[0], shb, sha, skb, ska)
    for y in range(h):
        if y + 1 < h:
            s = (y + 1) % 3
            _colour_row(b, a_raw, a, y + 1, *args, cb[s], ca[s], shb, sha, skb, ska)
        y0 = max(0, y - 1)
        y1 = min(h - 1, y + 1)
        s0, s, s1 = y0 % 3, y % 3, y1 % 3
        cy = col[y]
        _tolerant_row(
            cb[s0], cb[s], cb[s1], ca[s0], ca[s], ca[s1], y0 < y and y < y1,
            acc, amin, amax, bmin, bmax, cy,
        )  # fmt: skip
        uy = unlit[y]
        _dilated_row(shb, sha, y, False, drow, uy)
        for x in range(w):
            if uy[x]:
                cy[x] = 0.0
    return col, unlit, shb, sha, skb, ska
