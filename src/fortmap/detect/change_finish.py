"""Last steps of the per-window change evidence (:mod:`fortmap.detect.change`): 3 x 3 smoothing
of the cues, their noise-scaled combination, and the bilinear upsampling to full resolution.

Every kernel works row by row with whole-row loops that have no branches, so they vectorise,
and does the same float32/float64 operations per pixel as the numpy/scipy formulation it
replaced (``uniform3`` is ``scipy.ndimage.uniform_filter(x, 3, mode="nearest")``), so results
are bit for bit the same. Everything is in pixels of whatever grid it is given.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _uniform3_rows(x, out):  # pragma: no cover - compiled
    """scipy.ndimage.uniform_filter1d(size=3, mode="nearest") along axis 1, same arithmetic
    (the three values summed left to right in float64, then divided by 3)."""
    h, w = x.shape
    for y in range(h):
        for i in range(w):
            left = np.float64(x[y, max(i - 1, 0)])
            right = np.float64(x[y, min(i + 1, w - 1)])
            out[y, i] = (left + np.float64(x[y, i]) + right) / 3.0


@njit(cache=True, nogil=True)
def _uniform3_cols(x, out):  # pragma: no cover - compiled
    """As :func:`_uniform3_rows` along axis 0."""
    h, w = x.shape
    for i in range(h):
        i0 = max(i - 1, 0)
        i1 = min(i + 1, h - 1)
        for c in range(w):
            out[i, c] = (np.float64(x[i0, c]) + np.float64(x[i, c]) + np.float64(x[i1, c])) / 3.0


@njit(cache=True, nogil=True)
def uniform3(x):  # pragma: no cover - compiled
    """scipy.ndimage.uniform_filter(x, 3, mode="nearest") of float32 (H, W), bit for bit."""
    tmp = np.empty_like(x)
    out = np.empty_like(x)
    _uniform3_cols(x, tmp)
    _uniform3_rows(tmp, out)
    return out


@njit(cache=True, nogil=True)
def _uniform3_row(x, y, tmp, out):  # pragma: no cover - compiled
    """Row ``y`` of :func:`uniform3` into ``out`` (float32, W); ``tmp`` is scratch (float32,
    W): the column pass's row, rounded to float32 as scipy stores it, then the row pass."""
    h, w = x.shape
    r0, r1, r2 = x[max(y - 1, 0)], x[y], x[min(y + 1, h - 1)]
    for c in range(w):
        tmp[c] = (np.float64(r0[c]) + np.float64(r1[c]) + np.float64(r2[c])) / 3.0
    if w == 1:
        out[0] = (np.float64(tmp[0]) + np.float64(tmp[0]) + np.float64(tmp[0])) / 3.0
        return
    out[0] = (np.float64(tmp[0]) + np.float64(tmp[0]) + np.float64(tmp[1])) / 3.0
    for i in range(1, w - 1):
        out[i] = (np.float64(tmp[i - 1]) + np.float64(tmp[i]) + np.float64(tmp[i + 1])) / 3.0
    out[w - 1] = (np.float64(tmp[w - 2]) + np.float64(tmp[w - 1]) + np.float64(tmp[w - 1])) / 3.0


@njit(cache=True, nogil=True)
def finish_evidence(
    col, st, b, a, c_loc, c_sig, s_loc, s_sig, z0, dz, veg_thr
):  # pragma: no cover - compiled
    """Evidence 0..1 at working resolution from the colour and structure cues (H, W).

    Smooths both cues 3 x 3, turns them into noise-scaled z-scores, maps each to 0..1 between
    z0 and z0 + dz and combines them; pixels vegetated on both dates give none. Thresholds and
    scales are float32, as numpy applies Python floats to float32 arrays. Each row is smoothed
    as needed, so no smoothed image is stored.
    """
    h, w = col.shape
    nb = b.shape[0]
    out = np.empty((h, w), np.float32)
    tmp = np.empty(w, np.float32)
    zc = np.empty(w, np.float32)
    zs = np.empty(w, np.float32)
    half = np.float32(0.5)
    zero = np.float32(0.0)
    one = np.float32(1.0)
    two = np.float32(2.0)
    soft = np.float32(0.03)
    for y in range(h):
        _uniform3_row(col, y, tmp, zc)
        _uniform3_row(st, y, tmp, zs)
        o = out[y]
        for x in range(w):
            ec = (((zc[x] - c_loc) / c_sig) - z0) / dz
            ec = min(max(ec, zero), one)
            es = (((zs[x] - s_loc) / s_sig) - z0) / dz
            es = min(max(es, zero), one)
            o[x] = max(es * (half + half * ec), ec * ec * np.float32(0.75))
        if nb >= 3:
            b0, b1, b2, a0, a1, a2 = b[0, y], b[1, y], b[2, y], a[0, y], a[1, y], a[2, y]
            for x in range(w):
                eb = (two * b1[x] - b0[x] - b2[x]) / (b0[x] + b1[x] + b2[x] + soft)
                ea = (two * a1[x] - a0[x] - a2[x]) / (a0[x] + a1[x] + a2[x] + soft)
                o[x] = zero if (eb > veg_thr) & (ea > veg_thr) else o[x]
        elif veg_thr < 0:
            # exg is zero without three bands: vegetated only if the threshold is negative
            o[:] = zero
    return out


@njit(cache=True, nogil=True)
def _lerp_row(src, xa, xb, txs, out):  # pragma: no cover - compiled
    """One source row interpolated along x to the output columns (float64)."""
    for xx in range(out.size):
        tx = txs[xx]
        out[xx] = src[xa[xx]] * (1 - tx) + src[xb[xx]] * tx


@njit(cache=True, nogil=True)
def upsample_masked(x, f, h, w, valid):  # pragma: no cover - compiled
    """Bilinear upsampling by ``f`` (block centres at (i + 0.5) f - 0.5) to (h, w), 0 where
    ``valid`` is False (``change_cues.upsample`` is this with every pixel valid).

    A source row's interpolation along x is the same for every output row that reads it, so
    it is done once per source row (kept while output rows still need it) rather than once
    per output row; each value is the same float64 expression as before.
    """
    hs, ws = x.shape
    out = np.empty((h, w), np.float32)
    inv = np.float32(1.0 / f)
    xa = np.empty(w, np.int64)
    xb = np.empty(w, np.int64)
    txs = np.empty(w, np.float64)
    for xx in range(w):
        fx = (xx + np.float32(0.5)) * inv - np.float32(0.5)
        x0 = int(np.floor(fx))
        txs[xx] = fx - x0
        xa[xx] = min(max(x0, 0), ws - 1)
        xb[xx] = min(max(x0 + 1, 0), ws - 1)
    top = np.empty(w, np.float64)
    bot = np.empty(w, np.float64)
    row_top = -1
    row_bot = -1
    for y in range(h):
        fy = (y + np.float32(0.5)) * inv - np.float32(0.5)
        y0 = int(np.floor(fy))
        ty = fy - y0
        ya = min(max(y0, 0), hs - 1)
        yb = min(max(y0 + 1, 0), hs - 1)
        if ya != row_top:
            if ya == row_bot:
                top, bot = bot, top
                row_top, row_bot = row_bot, -1
            else:
                _lerp_row(x[ya], xa, xb, txs, top)
                row_top = ya
        if yb != row_bot:
            if yb == row_top:
                bot[:] = top
            else:
                _lerp_row(x[yb], xa, xb, txs, bot)
            row_bot = yb
        v = valid[y]
        o = out[y]
        for xx in range(w):
            o[xx] = top[xx] * (1 - ty) + bot[xx] * ty if v[xx] else 0.0
    return out
