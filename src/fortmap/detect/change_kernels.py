"""Fused numba kernels of the per-window change evidence and mask (:mod:`fortmap.detect.change`).

Each kernel does in one or two passes over memory what was a chain of numpy/scipy calls, with
the same float32 operations in the same order wherever the result feeds a threshold, so the
change mask stays the same (a few pixels can flip where a value sits within one float32 rounding
of a threshold). Everything works in pixels of whatever grid it is given. All kernels are cached
on disk (``cache=True``) so a new process loads rather than compiles them.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# the evidence's last steps live apart; importers of this module still find them here
from fortmap.detect.change_finish import finish_evidence, uniform3, upsample_masked  # noqa: F401
from fortmap.detect.label_kernels import find_root


@njit(cache=True, nogil=True, fastmath=True)
def _lut(v, lo, inv, table, k, n):  # pragma: no cover - compiled
    """One value through band k's lookup table: ``change_cues._apply_luts``, same flags."""
    t = (v - lo) * inv
    if t <= 0:
        return table[k, 0]
    if t >= n - 1:
        return table[k, n - 1]
    i = int(t)
    fr = t - i
    return np.float32(table[k, i] * (1 - fr) + table[k, i + 1] * fr)


@njit(cache=True, nogil=True)
def colour_prep(
    b, a_raw, lo, step, table, slo, sfac, slut, nbins, has_shift, dark, blue_thr
):  # pragma: no cover - compiled
    """Mapped after image, brightness, colour channels and shade flags at working resolution.

    Args:
        b, a_raw: float32 (bands, H, W) block means of the before and (scaled, unmapped) after.
        lo, step, table: histogram-matching lookup tables (``change_cues.map_luts``).
        slo, sfac: float32 per-band start and cells-per-unit of the colour-shift cube.
        slut: float32 (bands, nbins**bands) expected after - before per cube cell.
        has_shift: whether to subtract the colour shift.
        dark: float32 shade threshold on brightness.
        blue_thr: float32 blue fraction above which shade is sky-lit.

    Returns:
        (after mapped (bands, H, W), colour channels before, after (C, H, W), shade before,
        shade after, sky-lit shade before, after), the last four bool (H, W).
    """
    # three bands, the common case, go through change_colour.colour_cue instead (fused with
    # the tolerant difference); this general loop stays as its reference, bit for bit
    return _colour_prep_any(
        b, a_raw, lo, step, table, slo, sfac, slut, nbins, has_shift, dark, blue_thr
    )


@njit(cache=True, nogil=True)
def _colour_prep_any(
    b, a_raw, lo, step, table, slo, sfac, slut, nbins, has_shift, dark, blue_thr
):  # pragma: no cover - compiled
    """:func:`colour_prep` for any number of bands."""
    nb, h, w = b.shape
    n = table.shape[1]
    nc = 1 + nb if nb > 1 else 1
    a = np.empty_like(a_raw)
    cb = np.empty((nc, h, w), np.float32)
    ca = np.empty((nc, h, w), np.float32)
    shb = np.empty((h, w), np.bool_)
    sha = np.empty((h, w), np.bool_)
    skb = np.empty((h, w), np.bool_)
    ska = np.empty((h, w), np.bool_)
    third = np.float32(nb)
    eps = np.float32(1e-3)
    inv = np.empty(nb, np.float32)
    for k in range(nb):
        inv[k] = np.float32(1.0) / step[k]
    # row by row: a row's lookups (band by band, then the colour-cube cell) are read back by
    # the pixel pass while still in cache; each value is computed as before
    idx = np.zeros(w, np.int32)  # nbins**bands cells: a few thousand
    for y in range(h):
        idx[:] = 0
        for k in range(nb):
            ik, lok, so, sf = inv[k], lo[k], slo[k], sfac[k]
            for x in range(w):
                a[k, y, x] = _lut(a_raw[k, y, x], lok, ik, table, k, n)
                qi = int((b[k, y, x] - so) * sf)
                idx[x] = idx[x] * nbins + min(max(qi, 0), nbins - 1)
        for x in range(w):
            sb = np.float32(0.0)
            sa = np.float32(0.0)
            c = idx[x]
            for k in range(nb):
                v = a[k, y, x]
                if has_shift:
                    v = v - slut[k, c]
                    a[k, y, x] = v
                sb += b[k, y, x]
                sa += v
            lb = sb / third
            la = sa / third
            cb[0, y, x] = lb
            ca[0, y, x] = la
            shb[y, x] = lb < dark
            sha[y, x] = la < dark
            if nb > 1:
                m = min(la, lb)
                rb = m / (lb + eps)
                ra = m / (la + eps)
                for k in range(nb):
                    cb[k + 1, y, x] = b[k, y, x] * rb
                    ca[k + 1, y, x] = a[k, y, x] * ra
            if nb >= 3:
                skb[y, x] = b[2, y, x] / (sb + eps) > blue_thr
                ska[y, x] = a[2, y, x] / (sa + eps) > blue_thr
            else:
                skb[y, x] = True
                ska[y, x] = True
    return a, cb, ca, shb, sha, skb, ska


@njit(cache=True, nogil=True, fastmath=True, inline="always")
def _tol_sq(vb, va, alo, ahi, blo, bhi):  # pragma: no cover - compiled
    """Squared tolerant difference of one pixel from the neighbourhood ranges."""
    zero = np.float32(0.0)
    d1 = max(vb - ahi, alo - vb, zero)
    d2 = max(va - bhi, blo - va, zero)
    d = max(d1, d2)
    return d * d


@njit(cache=True, nogil=True, fastmath=True)
def _col3(r0, r1, r2, lo, hi):  # pragma: no cover - compiled
    """Elementwise min and max of three rows into ``lo`` and ``hi`` (exact, any order)."""
    for x in range(r0.size):
        u, v, t = r0[x], r1[x], r2[x]
        lo[x] = min(min(u, v), t)
        hi[x] = max(max(u, v), t)


@njit(cache=True, nogil=True, fastmath=True)
def tolerant_stack(b, a):  # pragma: no cover - compiled
    """sqrt(sum over channels of squared +-1 px tolerant differences), row by row.

    For each channel the difference is the larger of the distances of b(p) to the range of a
    over the 3 x 3 neighbours of p (clipped at the edges), and of a(p) to that of b. The ranges
    are built from three-row column extremes kept in row buffers, so the data is read once;
    the first and last columns are done apart, so the loops over the others have no branch
    and vectorise.
    """
    nc, h, w = b.shape
    out = np.empty((h, w), np.float32)
    acc = np.empty(w, np.float32)
    amin = np.empty(w, np.float32)
    amax = np.empty(w, np.float32)
    bmin = np.empty(w, np.float32)
    bmax = np.empty(w, np.float32)
    for y in range(h):
        y0 = max(0, y - 1)
        y1 = min(h - 1, y + 1)
        acc[:] = 0.0
        for c in range(nc):
            if y0 < y and y < y1:
                # interior rows: three rows at once, a loop with no inner loop vectorises
                _col3(a[c, y0], a[c, y], a[c, y1], amin, amax)
                _col3(b[c, y0], b[c, y], b[c, y1], bmin, bmax)
            else:
                _col3(a[c, y0], a[c, y0], a[c, y1], amin, amax)
                _col3(b[c, y0], b[c, y0], b[c, y1], bmin, bmax)
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
                acc[x] += _tol_sq(b[c, y, x], a[c, y, x], alo, ahi, blo, bhi)
            for x in range(1, w - 1):
                alo = min(min(amin[x - 1], amin[x]), amin[x + 1])
                ahi = max(max(amax[x - 1], amax[x]), amax[x + 1])
                blo = min(min(bmin[x - 1], bmin[x]), bmin[x + 1])
                bhi = max(max(bmax[x - 1], bmax[x]), bmax[x + 1])
                acc[x] += _tol_sq(b[c, y, x], a[c, y, x], alo, ahi, blo, bhi)
        for x in range(w):
            out[y, x] = np.sqrt(acc[x])
    return out


@njit(cache=True, nogil=True)
def _or3_rows(p0, q0, p1, q1, p2, q2, both, row):  # pragma: no cover - compiled
    """Per column: any of three rows of ``p | q`` (or ``p & q`` with ``both``) into ``row``."""
    if both:
        for x in range(row.size):
            row[x] = (p0[x] and q0[x]) or (p1[x] and q1[x]) or (p2[x] and q2[x])
    else:
        for x in range(row.size):
            row[x] = p0[x] or q0[x] or p1[x] or q1[x] or p2[x] or q2[x]


@njit(cache=True, nogil=True)
def _dilated_row(m1, m2, y, both, row, out):  # pragma: no cover - compiled
    """Row ``y`` of the 3 x 3 dilation (edges clipped) of ``m1 | m2`` (``m1 & m2`` with
    ``both``) into ``out``; ``row`` is scratch. Whole-row loops without branches vectorise."""
    h, w = m1.shape
    y0 = max(0, y - 1)
    y1 = min(h - 1, y + 1)
    _or3_rows(m1[y0], m2[y0], m1[y], m2[y], m1[y1], m2[y1], both, row)
    if w == 1:
        out[0] = row[0]
        return
    out[0] = row[0] or row[1]
    for x in range(1, w - 1):
        out[x] = row[x - 1] or row[x] or row[x + 1]
    out[w - 1] = row[w - 2] or row[w - 1]


@njit(cache=True, nogil=True)
def dilate3_or(m1, m2):  # pragma: no cover - compiled
    """3 x 3 binary dilation of ``m1 | m2`` (edges clipped), bool (H, W)."""
    h, w = m1.shape
    row = np.empty(w, np.bool_)
    out = np.empty((h, w), np.bool_)
    for y in range(h):
        _dilated_row(m1, m2, y, False, row, out[y])
    return out


@njit(cache=True, nogil=True)
def block_any_dilated(m1, m2, f):  # pragma: no cover - compiled
    """Per f x f block: does the 3 x 3 dilation of ``m1 & m2`` touch it? bool (ceil(H/f), ...)."""
    h, w = m1.shape
    hb = (h + f - 1) // f
    wb = (w + f - 1) // f
    out = np.zeros((hb, wb), np.bool_)
    row = np.empty(w, np.bool_)
    d = np.empty(w, np.bool_)
    for y in range(h):
        _dilated_row(m1, m2, y, True, row, d)
        ob = out[y // f]
        if f == 2:
            # the usual factor, as a loop that vectorises
            for bx in range(w // 2):
                ob[bx] = ob[bx] or d[2 * bx] or d[2 * bx + 1]
            if w % 2:
                ob[wb - 1] = ob[wb - 1] or d[w - 1]
            continue
        for x0 in range(0, w, f):
            v = False
            for x in range(x0, min(x0 + f, w)):
                v = v or d[x]
            ob[x0 // f] = ob[x0 // f] or v
    return out


@njit(cache=True, nogil=True)
def _run_components(fg):  # pragma: no cover - compiled
    """4-connected components of bool (H, W) as runs of pixels along rows.

    Returns:
        (run start column, run end column (exclusive), first run of each row (H + 1),
        component root of each run, number of runs). Union-find works on runs, so a large
        uniform region costs a handful of operations per row rather than one per pixel.
    """
    h, w = fg.shape
    cap = h * ((w + 1) // 2) + 1
    rs = np.empty(cap, np.int32)
    re = np.empty(cap, np.int32)
    first = np.empty(h + 1, np.int64)
    n = 0
    for y in range(h):
        first[y] = n
        x = 0
        while x < w:
            if fg[y, x]:
                s0 = x
                while x < w and fg[y, x]:
                    x += 1
                rs[n] = s0
                re[n] = x
                n += 1
            else:
                x += 1
    first[h] = n
    parent = np.arange(n)
    for y in range(1, h):
        i, i1 = first[y - 1], first[y]
        j, j1 = first[y], first[y + 1]
        while i < i1 and j < j1:
            # runs in neighbouring rows touch when their column ranges overlap
            if re[i] > rs[j] and re[j] > rs[i]:
                ri = find_root(parent, i)
                rj = find_root(parent, j)
                if ri < rj:
                    parent[rj] = ri
                elif rj < ri:
                    parent[ri] = rj
            if re[i] < re[j]:
                i += 1
            else:
                j += 1
    for k in range(n):
        parent[k] = find_root(parent, k)
    return rs, re, first, parent, n


@njit(cache=True, nogil=True)
def hysteresis_mask(ev, valid, low, high, min_px):  # pragma: no cover - compiled
    """Change mask: 4-connected regions of ``ev >= low`` (valid) holding a seed ``ev >= high``
    and at least ``min_px`` pixels, with holes under ``min_px`` pixels filled (valid pixels).

    Same result as labelling with ``scipy.ndimage.label`` twice.
    """
    h, w = ev.shape
    out = np.zeros((h, w), np.uint8)
    grow = np.empty((h, w), np.bool_)
    anyg = False
    for y in range(h):
        for x in range(w):
            g = valid[y, x] and ev[y, x] >= low
            grow[y, x] = g
            anyg = anyg or g
    if not anyg:
        return out
    rs, re, first, root, n = _run_components(grow)
    size = np.zeros(n, np.int64)
    seeded = np.zeros(n, np.bool_)
    for y in range(h):
        for k in range(first[y], first[y + 1]):
            r = root[k]
            size[r] += re[k] - rs[k]
            if not seeded[r]:
                for x in range(rs[k], re[k]):
                    if ev[y, x] >= high:
                        seeded[r] = True
                        break
    holes = np.ones((h, w), np.bool_)
    for y in range(h):
        for k in range(first[y], first[y + 1]):
            r = root[k]
            if seeded[r] and size[r] >= min_px:
                for x in range(rs[k], re[k]):
                    out[y, x] = 1
                    holes[y, x] = False
    rs, re, first, root, n = _run_components(holes)
    size = np.zeros(n, np.int64)
    for k in range(n):
        size[root[k]] += re[k] - rs[k]
    for y in range(h):
        for k in range(first[y], first[y + 1]):
            if size[root[k]] < min_px:
                for x in range(rs[k], re[k]):
                    if valid[y, x]:
                        out[y, x] = 1
    return out
