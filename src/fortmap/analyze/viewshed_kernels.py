"""Numba kernels of the viewshed engine; see :mod:`fortmap.analyze.viewshed` for the definitions.

Everything here works in pixel space on one DEM array ``z`` (float32, NaN = nodata) with the
observer at cell centre ``(r0, c0)``; ``dx`` and ``dy`` are the cell sizes in metres and ``curv``
is the earth-curvature coefficient ``(1 - k) / (2 R)`` in 1/m (0 disables curvature), so that the
effective elevation of a cell at ground distance ``d`` metres is ``z - curv * d**2``.

A line of sight is walked in *octant* coordinates: ``i`` cells along its major axis and ``j``
(``0 <= j <= i``) along the minor one; ``major`` is 0 when columns are the major axis, ``sa`` and
``sb`` the signs of the major and minor steps.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

#: Heights (metres) within this of the sight line count as on it: it absorbs float rounding so
#: that ground lying exactly on a sight line (planes, ties) does not hide what is behind it.
TOL_M = 1e-6

_VISIBLE = 1
_HIDDEN = 0


@nb.njit(cache=True, inline="always")
def _cell(r0, c0, major, sa, sb, i, j):
    if major == 0:
        return r0 + sb * j, c0 + sa * i
    return r0 + sa * i, c0 + sb * j


@nb.njit(cache=True, inline="always")
def _zeff(z, r, c, d2, curv):
    return np.float64(z[r, c]) - curv * d2


@nb.njit(cache=True)
def exact_cell(z, r0, c0, major, sa, sb, i, j, dmaj, dmin, eye, zt, curv):
    """True when target (i, j) at effective height ``zt`` is seen from ``eye`` (R3 test).

    Samples are taken where the line crosses each major-axis line of cell centres between the
    observer and the target, interpolated linearly between the two nearest cell centres; a
    sample involving a nodata cell is skipped (unknown ground never blocks).
    """
    for k in range(1, i):
        jk = j * k
        j0 = jk // i
        rem = jk - j0 * i
        ra, ca = _cell(r0, c0, major, sa, sb, k, j0)
        va = z[ra, ca]
        if va != va:
            continue
        xa = k * dmaj
        ya = j0 * dmin
        h = np.float64(va) - curv * (xa * xa + ya * ya)
        if rem != 0:
            rb, cb = _cell(r0, c0, major, sa, sb, k, j0 + 1)
            vb = z[rb, cb]
            if vb != vb:
                continue
            yb = ya + dmin
            hb = np.float64(vb) - curv * (xa * xa + yb * yb)
            f = rem / i
            h = h + f * (hb - h)
        line = eye + (zt - eye) * (k / i)
        if h > line + TOL_M:
            return False
    return True


@nb.njit(cache=True, parallel=True)
def exact_viewshed(z, r0, c0, dx, dy, eye, target_h, max_d, curv):
    """R3 viewshed: every target checked along its own line. Returns uint8 (1/0/255)."""
    rows, cols = z.shape
    out = np.full((rows, cols), 255, np.uint8)
    max_d2 = max_d * max_d
    for r in nb.prange(rows):
        dr = r - r0
        for c in range(cols):
            v = z[r, c]
            if v != v:
                continue
            dc = c - c0
            d2 = (dc * dx) ** 2 + (dr * dy) ** 2
            if d2 > max_d2:
                out[r, c] = _HIDDEN
                continue
            if abs(dc) >= abs(dr):
                major, i, j, dmaj, dmin = 0, abs(dc), abs(dr), dx, dy
                sa, sb = (1 if dc >= 0 else -1), (1 if dr >= 0 else -1)
            else:
                major, i, j, dmaj, dmin = 1, abs(dr), abs(dc), dy, dx
                sa, sb = (1 if dr >= 0 else -1), (1 if dc >= 0 else -1)
            zt = np.float64(v) - curv * d2 + target_h
            ok = exact_cell(z, r0, c0, major, sa, sb, i, j, dmaj, dmin, eye, zt, curv)
            out[r, c] = _VISIBLE if ok else _HIDDEN
    return out


@nb.njit(cache=True)
def _sweep_quadrant(z, out, r0, c0, sa, sb, dmaj, dmin, eye, target_h, max_d, curv, orow, ocol):
    """Sweep the octant of ``z`` whose major axis is its rows, stepping ``sa`` rows, ``sb`` columns.

    Rays run from the observer to every cell of the octant's far row; each keeps the largest
    slope (metres per metre) met so far. A cell's horizon is interpolated between the two rays
    that pass on either side of it, from the samples those rays took on the rows before it.
    ``out[r - orow, c - ocol]`` receives 1 or 0 for valid cells within ``max_d`` metres.
    """
    rows, cols = z.shape
    imax = rows - 1 - r0 if sa > 0 else r0
    jmax = cols - 1 - c0 if sb > 0 else c0
    if max_d / dmaj < imax:
        imax = int(max_d / dmaj)
    if max_d / dmin < jmax:
        jmax = int(max_d / dmin)
    if imax < 1:
        return
    max_d2 = max_d * max_d
    hz = np.full(imax + 1, -np.inf)
    m_end = imax + 1  # rays at or beyond m_end have left the grid and are never used again
    for i in range(1, imax + 1):
        r = r0 + sa * i
        xi = i * dmaj
        top = min(i, jmax)
        for j in range(0, top + 1):
            c = c0 + sb * j
            v = z[r, c]
            if v != v:
                continue
            yj = j * dmin
            d2 = xi * xi + yj * yj
            if d2 > max_d2:
                continue
            num = j * imax
            ma = num // i
            rem = num - ma * i
            ha = hz[ma]
            if rem == 0:
                h = ha
            else:
                hb = hz[ma + 1]
                if ha > -np.inf and hb > -np.inf:
                    h = ha + (rem / i) * (hb - ha)
                else:
                    h = max(ha, hb)
            d = math.sqrt(d2)
            t = (np.float64(v) - curv * d2 + target_h - eye) / d
            out[r - orow, c - ocol] = _VISIBLE if t >= h - TOL_M / d else _HIDDEN
        # advance every ray by the sample it takes on row i
        for m in range(0, m_end):
            num = m * i
            j0 = num // imax
            if j0 > jmax:
                m_end = m
                break
            rem = num - j0 * imax
            ya = j0 * dmin
            va = z[r, c0 + sb * j0]
            h = np.float64(va) - curv * (xi * xi + ya * ya)
            if rem != 0 and j0 < jmax:
                vb = z[r, c0 + sb * (j0 + 1)]
                yb = ya + dmin
                hb = np.float64(vb) - curv * (xi * xi + yb * yb)
                h = h + (rem / imax) * (hb - h)
            if h == h:
                ym = num * dmin / imax
                s = (h - eye) / math.sqrt(xi * xi + ym * ym)
                if s > hz[m]:
                    hz[m] = s


@nb.njit(cache=True)
def _octant(o, z, zt, out, out_t, r0, c0, dx, dy, eye, target_h, max_d, curv, orow, ocol):
    sa = 1 if o % 2 == 0 else -1
    sb = 1 if (o // 2) % 2 == 0 else -1
    if o < 4:
        _sweep_quadrant(z, out, r0, c0, sa, sb, dy, dx, eye, target_h, max_d, curv, orow, ocol)
    else:
        _sweep_quadrant(zt, out_t, c0, r0, sa, sb, dx, dy, eye, target_h, max_d, curv, ocol, orow)


@nb.njit(cache=True)
def _merge_rows(out, out_t, z, r0, c0, dx, dy, max_d, orow, ocol, ra, rb):
    """Finish rows ``ra:rb`` of ``out``: column-major octants from ``out_t``, nodata, range."""
    max_d2 = max_d * max_d
    for rr in range(ra, rb):
        r = rr + orow
        dr = r - r0
        for cc in range(out.shape[1]):
            c = cc + ocol
            dc = c - c0
            if z[r, c] != z[r, c]:
                out[rr, cc] = 255
            elif (dc * dx) ** 2 + (dr * dy) ** 2 > max_d2:
                out[rr, cc] = _HIDDEN
            elif abs(dc) > abs(dr):
                out[rr, cc] = out_t[cc, rr]
    if 0 <= r0 - orow < out.shape[0] and 0 <= c0 - ocol < out.shape[1]:
        if z[r0, c0] == z[r0, c0]:
            out[r0 - orow, c0 - ocol] = _VISIBLE


@nb.njit(cache=True, parallel=True)
def transpose(a):
    """A C-contiguous transposed copy of a 2-D array, in cache-sized blocks."""
    rows, cols = a.shape
    b = np.empty((cols, rows), a.dtype)
    bs = 64
    nbr = (rows + bs - 1) // bs
    for br in nb.prange(nbr):
        r1 = min(rows, (br + 1) * bs)
        for c_start in range(0, cols, bs):
            c1 = min(cols, c_start + bs)
            for r in range(br * bs, r1):
                for c in range(c_start, c1):
                    b[c, r] = a[r, c]
    return b


@nb.njit(cache=True, parallel=True)
def fast_viewshed(z, zt, r0, c0, dx, dy, eye, target_h, max_d, curv):
    """Ray-sweep viewshed of the whole grid. ``zt`` is ``transpose(z)``. Returns uint8 1/0/255."""
    rows, cols = z.shape
    out = np.zeros((rows, cols), np.uint8)
    out_t = np.zeros((cols, rows), np.uint8)
    for o in nb.prange(8):
        _octant(o, z, zt, out, out_t, r0, c0, dx, dy, eye, target_h, max_d, curv, 0, 0)
    nblk = 64
    step = (rows + nblk - 1) // nblk
    for b in nb.prange(nblk):
        _merge_rows(out, out_t, z, r0, c0, dx, dy, max_d, 0, 0, b * step, min(rows, (b + 1) * step))
    return out


@nb.njit(cache=True)
def window_viewshed(z, zt, r0, c0, dx, dy, eye, target_h, max_d, curv, orow, ocol, out, out_t):
    """Single-threaded ray-sweep viewshed into the window ``out`` whose corner is (orow, ocol)."""
    out[:] = 0
    for o in range(8):
        _octant(o, z, zt, out, out_t, r0, c0, dx, dy, eye, target_h, max_d, curv, orow, ocol)
    _merge_rows(out, out_t, z, r0, c0, dx, dy, max_d, orow, ocol, 0, out.shape[0])


@nb.njit(cache=True, parallel=True)
def cumulative_counts(z, zt, obs_rc, eyes, dx, dy, target_h, max_d, curv, half_r, half_c, batch):
    """uint32 count of observers seeing each cell; observers' windows are ``half_r`` x ``half_c``.

    Observers run in parallel batches, each into its own window buffer; the buffers are then
    added to the counts in parallel over row blocks, so no two threads write the same cell.
    """
    rows, cols = z.shape
    counts = np.zeros((rows, cols), np.uint32)
    hr = min(rows, 2 * half_r + 1)
    hc = min(cols, 2 * half_c + 1)
    bufs = np.zeros((batch, hr, hc), np.uint8)
    bufs_t = np.zeros((batch, hc, hr), np.uint8)
    corners = np.zeros((batch, 4), np.int64)
    n = obs_rc.shape[0]
    nblk = max(1, min(rows, 64))
    step = (rows + nblk - 1) // nblk
    for b0 in range(0, n, batch):
        nb_ = min(batch, n - b0)
        for k in nb.prange(nb_):
            r0 = obs_rc[b0 + k, 0]
            c0 = obs_rc[b0 + k, 1]
            ra, rb = max(0, r0 - half_r), min(rows, r0 + half_r + 1)
            ca, cb = max(0, c0 - half_c), min(cols, c0 + half_c + 1)
            corners[k, 0], corners[k, 1], corners[k, 2], corners[k, 3] = ra, rb, ca, cb
            out = bufs[k, : rb - ra, : cb - ca]
            out_t = bufs_t[k, : cb - ca, : rb - ra]
            window_viewshed(
                z, zt, r0, c0, dx, dy, eyes[b0 + k], target_h, max_d, curv, ra, ca, out, out_t
            )
        for blk in nb.prange(nblk):
            r_lo = blk * step
            r_hi = min(rows, r_lo + step)
            for k in range(nb_):
                ra, rb, ca, cb = corners[k, 0], corners[k, 1], corners[k, 2], corners[k, 3]
                for r in range(max(r_lo, ra), min(r_hi, rb)):
                    for c in range(ca, cb):
                        if bufs[k, r - ra, c - ca] == _VISIBLE:
                            counts[r, c] += 1
    return counts
