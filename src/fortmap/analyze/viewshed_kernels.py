"""Numba kernels of the viewshed engine; see :mod:`fortmap.analyze.viewshed` for the definitions.

Everything here works in pixel space on one DEM array ``z`` (float32, NaN = nodata) with the
observer at cell centre ``(r0, c0)``; ``dx`` and ``dy`` are the cell sizes in metres and ``curv``
is the earth-curvature coefficient ``(1 - k) / (2 R)`` in 1/m (0 disables curvature), so that the
effective elevation of a cell at ground distance ``d`` metres is ``z - curv * d**2``.

A line of sight is walked in *octant* coordinates: ``i`` cells along its major axis and ``j``
(``0 <= j <= i``) along the minor one; ``major`` is 0 when columns are the major axis, ``sa`` and
``sb`` the signs of the major and minor steps.

The ``fast`` sweep runs each octant line by line (a line: the cells ``i`` steps from the
observer across the major axis). The column-major octants read ``z`` in blocks of columns
gathered row by row, so no transposed copy of the DEM is made, and every octant writes its own
cells of the output directly (nodata and range included), so there is no merge pass.
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


#: Lines gathered per block by the column-major octants: their lines are columns of ``z``, read
#: as short contiguous row segments into a block buffer (a transpose done in cache).
_BLOCK = 32


@nb.njit(cache=True)
def _cells(zr, hz, ol, n, i, imax, a_off, unseen):
    """Cells ``0 .. n - 1`` of line ``i``: 1 where the cell rises to its horizon, else 0 (255 on
    nodata). ``zr`` and ``hz`` hold rises per major step; cell ``j`` lies between rays
    ``j * imax // i`` and the next, at fraction ``rem / i``. ``unseen``: some ray has no sample.
    """
    q = np.uint64(imax // i)
    qr = imax - (imax // i) * i
    inv_i = 1.0 / i
    ma = np.uint64(0)  # unsigned: no negative-index wraparound code in the loop
    rem = 0
    one = np.uint64(1)
    zero = np.uint64(0)
    # the carries are selects, not branches: they follow no pattern a CPU predicts
    if not unseen:
        for j in range(n):
            v = zr[j]
            ha = hz[ma]
            h = ha + (rem * inv_i) * (hz[ma + one] - ha)
            vis = _VISIBLE if v + a_off >= h else _HIDDEN
            ol[j] = 255 if v != v else vis
            rem += qr
            carry = rem >= i
            rem -= i if carry else 0
            ma += q + (one if carry else zero)
        return
    for j in range(n):
        v = zr[j]
        ha = hz[ma]
        hb = hz[ma + one]
        if ha > -np.inf and hb > -np.inf:
            h = ha + (rem * inv_i) * (hb - ha)
        else:  # a ray with no sample yet (first line, nodata) leaves the other one
            h = ha if rem == 0 else max(ha, hb)
        vis = _VISIBLE if v + a_off >= h else _HIDDEN
        ol[j] = 255 if v != v else vis
        rem += qr
        carry = rem >= i
        rem -= i if carry else 0
        ma += q + (one if carry else zero)


@nb.njit(cache=True)
def _rays(zr, hz, m_end, i, imax):
    """Advance rays ``0 .. m_end - 1`` by the samples they take on line ``i``: ray ``m`` at
    minor offset ``m * i / imax``, interpolated in ``zr``; each keeps its largest rise."""
    inv_imax = 1.0 / imax
    j0 = np.uint64(0)
    rem = 0
    one = np.uint64(1)
    zero = np.uint64(0)
    for m in range(m_end):
        va = zr[j0]
        h = va + (rem * inv_imax) * (zr[j0 + one] - va)
        h = va if rem == 0 else h  # a nodata neighbour must not spoil an exact hit
        hm = hz[m]
        hz[m] = h if h > hm else hm  # False for NaN: unknown ground never blocks
        rem += i
        carry = rem >= imax
        rem -= imax if carry else 0
        j0 += one if carry else zero


@nb.njit(cache=True)
def _load(src, c, sb, n, base, inv_i, ccol, zr):
    """``zr[j] = (src[c + sb * j] - base - ccol[j]) / i`` for ``j < n``; True if any is NaN.

    Goes through a contiguous slice so the loop needs no negative-index checks.
    """
    if sb > 0:
        seg = src[c : c + n]
        for j in range(n):
            zr[j] = (np.float64(seg[j]) - base - ccol[j]) * inv_i
    else:
        seg = src[c - n + 1 : c + 1]
        for j in range(n):
            zr[j] = (np.float64(seg[n - 1 - j]) - base - ccol[j]) * inv_i
    nan = False
    for j in range(n):
        nan |= zr[j] != zr[j]
    return nan


@nb.njit(cache=True)
def _store(ol, dst, c, sb, j0, n):
    """``dst[c + sb * j] = ol[j]`` for ``j0 <= j < n``."""
    if n <= j0:
        return
    if sb > 0:
        seg = dst[c + j0 : c + n]
        for j in range(j0, n):
            seg[j - j0] = ol[j]
    else:
        seg = dst[c - n + 1 : c - j0 + 1]
        for j in range(j0, n):
            seg[n - 1 - j] = ol[j]


@nb.njit(cache=True)
def _sweep(z, out, r0, c0, rows_major, sa, sb, dmaj, dmin, eye, target_h, max_d, curv, orow, ocol):
    """Sweep one octant: line ``i`` (1, 2, ...) lies ``i`` cells from the observer across the
    major axis (rows of ``z`` when ``rows_major``, else columns), stepping ``sa`` along it and
    ``sb`` along the minor axis.

    Rays run from the observer to every cell of the octant's far line; ray ``m`` keeps the
    largest rise per major step, ``(h - eye) / i`` in metres per line, of the samples it took
    (a constant multiple of its elevation slope, so its maximum is the horizon). A cell's
    horizon is interpolated between the two rays on either side of it from the lines before
    it. Ray and cell positions are stepped with integer remainders, no division per cell.

    Writes ``out[r - orow, c - ocol]``: 1/0 for valid cells within ``max_d`` metres, 0 beyond,
    255 for nodata, for the cells the octant owns: the row-major octants own the diagonals,
    the octant with ``sb > 0`` owns the axis ``j = 0``. Cells beyond ``max_d`` across either
    axis (lines or minor offsets past ``max_d``) are not visited.
    """
    rows, cols = z.shape
    if rows_major:
        imax = rows - 1 - r0 if sa > 0 else r0
        jmax = cols - 1 - c0 if sb > 0 else c0
    else:
        imax = cols - 1 - c0 if sa > 0 else c0
        jmax = rows - 1 - r0 if sb > 0 else r0
    if max_d / dmaj < imax:
        imax = int(max_d / dmaj)
    if max_d / dmin < jmax:
        jmax = int(max_d / dmin)
    if imax < 1:
        return
    max_d2 = max_d * max_d
    j_first = 0 if sb > 0 else 1
    diag = 0 if rows_major else 1
    hz = np.full(imax + 2, -np.inf)
    hz[imax + 1] = 0.0  # read with weight 0 by the diagonal cell
    unseen = True  # some ray has no sample yet: its horizon is -inf
    ccol = np.empty(jmax + 2)
    for j in range(jmax + 2):
        y = j * dmin
        ccol[j] = curv * (y * y)
    zr = np.empty(jmax + 2)
    nblk = 1 if rows_major else _BLOCK
    zb = np.empty((nblk, jmax + 1), np.float32)
    ob = np.empty((nblk, jmax + 1), np.uint8)
    m_end = imax + 1  # rays at or beyond m_end have left the grid and are never used again
    for ib in range(1, imax + 1, nblk):
        ie = min(imax + 1, ib + nblk)
        nk = ie - ib
        if not rows_major:
            # block gather: zb[k, j] = z[r0 + sb * j, c0 + sa * (ib + k)], row segments at a time
            for j in range(min(ie - 1, jmax) + 1):
                r = r0 + sb * j
                for k in range(nk):
                    zb[k, j] = z[r, c0 + sa * (ib + k)]
        for i in range(ib, ie):
            k = i - ib
            xi = i * dmaj
            fi = float(i)
            inv_i = 1.0 / fi
            # zr: rise per major step from the eye to each cell of the line, the unit of hz
            base = curv * (xi * xi) + eye
            top = min(i, jmax)
            if rows_major:
                has_nan = _load(z[r0 + sa * i], c0, sb, top + 1, base, inv_i, ccol, zr)
            else:
                has_nan = _load(zb[k], 0, 1, top + 1, base, inv_i, ccol, zr)
            # a ray sampling between the last cell and the grid's edge takes the last cell
            zr[top + 1] = zr[top]
            top_w = min(i - diag, jmax)
            jcut = top_w
            rest = max_d2 - xi * xi
            if rest < 0:
                jcut = -1
            elif rest < np.inf:
                jcut = min(top_w, int(math.sqrt(rest) / dmin))
                # settle the rounding with the same expression as the exact mode
                while jcut < top_w and xi * xi + ((jcut + 1) * dmin) ** 2 <= max_d2:
                    jcut += 1
                while jcut >= 0 and xi * xi + (jcut * dmin) ** 2 > max_d2:
                    jcut -= 1
            a_off = (target_h + TOL_M) * inv_i
            ol = ob[k]
            _cells(zr, hz, ol, jcut + 1, i, imax, a_off, unseen)
            for j in range(max(jcut + 1, 0), top_w + 1):
                ol[j] = 255 if zr[j] != zr[j] else _HIDDEN
            if rows_major:
                _store(ol, out[r0 + sa * i - orow], c0 - ocol, sb, j_first, top_w + 1)
            # advance every ray by the sample it takes on line i, at minor offset m * i / imax
            m_lim = ((jmax + 1) * imax + i - 1) // i  # rays past it have left the grid
            if m_lim < m_end:
                m_end = m_lim
            _rays(zr, hz, m_end, i, imax)
            if has_nan or unseen:
                unseen = False
                for m in range(imax + 1):
                    unseen |= hz[m] == -np.inf
        if not rows_major:
            # block scatter: line ib + k holds cells j <= ib + k - 1
            for j in range(j_first, min(ie - 1 - diag, jmax) + 1):
                rr = r0 + sb * j - orow
                for k in range(max(0, j + diag - ib), nk):
                    out[rr, c0 + sa * (ib + k) - ocol] = ob[k, j]


@nb.njit(cache=True)
def _octant(o, z, out, r0, c0, dx, dy, eye, target_h, max_d, curv, orow, ocol):
    sa = 1 if o % 2 == 0 else -1
    sb = 1 if (o // 2) % 2 == 0 else -1
    if o < 4:
        _sweep(z, out, r0, c0, True, sa, sb, dy, dx, eye, target_h, max_d, curv, orow, ocol)
    else:
        _sweep(z, out, r0, c0, False, sa, sb, dx, dy, eye, target_h, max_d, curv, orow, ocol)


@nb.njit(cache=True)
def _clipped(z, r0, c0, dx, dy, max_d):
    """True when ``max_d`` leaves some cells of the grid unvisited by the octant sweeps."""
    rows, cols = z.shape
    return max_d / dy < max(r0, rows - 1 - r0) or max_d / dx < max(c0, cols - 1 - c0)


@nb.njit(cache=True, parallel=True)
def _init_rows(out, z, orow, ocol):
    """``out`` = 255 on nodata, else 0: the cells no octant visits."""
    rows, cols = out.shape
    for rr in nb.prange(rows):
        for cc in range(cols):
            v = z[rr + orow, cc + ocol]
            out[rr, cc] = 255 if v != v else _HIDDEN


@nb.njit(cache=True, parallel=True)
def fast_viewshed(z, r0, c0, dx, dy, eye, target_h, max_d, curv):
    """Ray-sweep viewshed of the whole grid, the eight octants in parallel. Returns uint8 1/0/255."""
    rows, cols = z.shape
    out = np.empty((rows, cols), np.uint8)
    if _clipped(z, r0, c0, dx, dy, max_d):
        _init_rows(out, z, 0, 0)
    for p in nb.prange(8):
        # row- and column-major octants alternate: each thread's static share gets both kinds
        o = (p // 2) + 4 * (p % 2)
        _octant(o, z, out, r0, c0, dx, dy, eye, target_h, max_d, curv, 0, 0)
    out[r0, c0] = _VISIBLE
    return out


@nb.njit(cache=True)
def window_viewshed(z, r0, c0, dx, dy, eye, target_h, max_d, curv, orow, ocol, out):
    """Single-threaded ray-sweep viewshed into the window ``out`` whose corner is (orow, ocol).

    ``out`` must cover every cell within ``max_d`` metres of the observer that lies on the grid.
    """
    rows, cols = out.shape
    if _clipped(z, r0, c0, dx, dy, max_d):
        for rr in range(rows):
            for cc in range(cols):
                v = z[rr + orow, cc + ocol]
                out[rr, cc] = 255 if v != v else _HIDDEN
    for o in range(8):
        _octant(o, z, out, r0, c0, dx, dy, eye, target_h, max_d, curv, orow, ocol)
    out[r0 - orow, c0 - ocol] = _VISIBLE


@nb.njit(cache=True, parallel=True)
def cumulative_counts(z, obs_rc, eyes, dx, dy, target_h, max_d, curv, half_r, half_c, batch):
    """uint32 count of observers seeing each cell; observers' windows are ``half_r`` x ``half_c``.

    Observers run in parallel batches, each into its own window buffer; the buffers are then
    added to the counts in parallel over row blocks, so no two threads write the same cell.
    """
    rows, cols = z.shape
    counts = np.zeros((rows, cols), np.uint32)
    hr = min(rows, 2 * half_r + 1)
    hc = min(cols, 2 * half_c + 1)
    bufs = np.zeros((batch, hr, hc), np.uint8)
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
            window_viewshed(z, r0, c0, dx, dy, eyes[b0 + k], target_h, max_d, curv, ra, ca, out)
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
