"""Numba kernels of the road-window contrasts (``road_window``).

Each road pixel is compared with the road a few metres ahead and behind it along an angle.
The sample positions depend only on the pixel, the angle and the sampling mask, never on the
image, so the after and the before images are sampled in one pass (``sides_ab``): the
positions, the trigonometry and the mask tests are shared, and the arithmetic of each image's
medians is the one of a pass per image, so the values are the same bit for bit. The same pass
tells which samples fall on the kerbside (road off the carriageway).

The labelling kernels (``seeded_labels``, ``label_pixels``) and the whole-window filters
(``uniform_reflect``, ``band_mean``) live in ``label_kernels`` and ``window_filters`` and are
re-exported here. The masked box mean of both dates (``masked_box_ab``) lives in
``masked_box_kernels``.

Coordinates are pixels of the window (row, column); ``offs_px`` are distances in pixels.
All kernels are cached on disk (``cache=True``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from fortmap.detect.label_kernels import label_pixels, seeded_labels  # noqa: F401  (re-exported)
from fortmap.detect.window_filters import band_mean, uniform_reflect  # noqa: F401  (re-exported)

#: Least distance (pixels) of a sample step plus half a pixel from a whole number for the
#: step's pixel offset to be taken once per run of one angle: a pixel's own sum
#: ``col + 0.5 + step`` rounds by under 1e-9 px on any window, so it floors alike.
_EXACT_MARGIN = 1e-6


@njit(cache=True, nogil=True)
def _sorted_median(buf, cnt):  # pragma: no cover - compiled
    # insertion sort in place, no allocation: the reference arithmetic, NaN included
    for u in range(1, cnt):
        v = buf[u]
        q = u
        while q > 0 and buf[q - 1] > v:
            buf[q] = buf[q - 1]
            q -= 1
        buf[q] = v
    if cnt % 2:
        return buf[cnt // 2]
    return np.float32((np.float64(buf[cnt // 2 - 1]) + buf[cnt // 2]) / 2.0)


# inlined into ``sides_ab``: a call per median of four cost as much as the median itself
@njit(cache=True, nogil=True, inline="always")
def _small_median(buf, cnt):  # pragma: no cover - compiled
    """Median of ``buf[:cnt]`` (float32, at most 4 finite values sorted as by an insertion
    sort): the middle value, or the float64 mean of the middle two rounded to float32.

    Min/max selection instead of sorting (no data-dependent branches); the middle values of
    a few finite numbers do not depend on how they are found, and the mean of two is
    symmetric, so the result is the sort's bit for bit. NaN or more samples: the sort."""
    if cnt == 4:
        a, b, c, d = buf[0], buf[1], buf[2], buf[3]
        if a == a and b == b and c == c and d == d:
            lo = max(min(a, b), min(c, d))
            hi = min(max(a, b), max(c, d))
            return np.float32((np.float64(lo) + np.float64(hi)) / 2.0)
    elif cnt == 3:
        a, b, c = buf[0], buf[1], buf[2]
        if a == a and b == b and c == c:
            return max(min(a, b), min(max(a, b), c))
    elif cnt == 2:
        a, b = buf[0], buf[1]
        if a == a and b == b:
            return np.float32((np.float64(a) + np.float64(b)) / 2.0)
    elif cnt == 1:
        return buf[0]
    return _sorted_median(buf, cnt)


@njit(cache=True, nogil=True)
def _run_offsets(dx, dy, w, h, off):  # pragma: no cover - compiled
    """Flat offsets ``off`` of the steps (``dx``, ``dy``) (pixels) from a pixel, where
    ``floor(col + 0.5 + dx)`` is ``col + floor(0.5 + dx)`` for every column of the window
    (and the same for rows): ``0.5 + dx`` lies at least ``_EXACT_MARGIN`` from a whole
    number. Returns whether it does for every step, and the rows ``[r0, r1)`` and columns
    ``[c0, c1)`` of the pixels whose steps all land inside the (h, w) window."""
    r0, r1, c0, c1 = 0, h, 0, w
    for j in range(dx.size):
        fx, fy = 0.5 + dx[j], 0.5 + dy[j]
        ok_x = _EXACT_MARGIN < fx - math.floor(fx) < 1.0 - _EXACT_MARGIN
        ok_y = _EXACT_MARGIN < fy - math.floor(fy) < 1.0 - _EXACT_MARGIN
        # NaN fails the tests; far steps are never taken here (no overflow)
        if not (ok_x and ok_y and abs(fx) < w and abs(fy) < h):
            return False, 0, 0, 0, 0
        jx, jy = int(math.floor(fx)), int(math.floor(fy))
        off[j] = jy * w + jx
        r0, r1 = max(r0, -jy), min(r1, h - jy)
        c0, c1 = max(c0, -jx), min(c1, w - jx)
    return True, r0, r1, c0, c1


# inlined (numba IR): as calls, the two helpers below cost a third more than the pass
@njit(cache=True, nogil=True, inline="always")
def _present_median4(a, b, c, d, cnt):  # pragma: no cover - compiled
    """``_small_median`` of the ``cnt`` finite values among float32 ``a, b, c, d`` that are
    present, the absent ones being +inf (they sort last): a sorting network, no branches.

    Returns:
        (the median, -inf where ``cnt`` is 0; whether the pass may keep it: the middle
        values are non-zero, as a zero's sign can depend on how it is found, and their mean
        is not NaN (-inf and +inf), which the general path's comparisons skip).
    """
    a, b = min(a, b), max(a, b)
    c, d = min(c, d), max(c, d)
    a, c = min(a, c), max(a, c)
    b, d = min(b, d), max(b, d)
    b, c = min(b, c), max(b, c)
    x = b if cnt >= 3 else a
    y = c if cnt == 4 else (b if cnt >= 2 else a)
    v = np.float32((np.float64(x) + np.float64(y)) / 2.0)
    return (v if cnt > 0 else np.float32(-np.inf)), (x != 0) & (y != 0) & (v == v)


@njit(cache=True, nogil=True, inline="always")
def _side4(fa, fb, fs, fd, base, o0, o1, o2, o3):  # pragma: no cover - compiled
    """One side's four samples (flat offsets ``o0..o3`` from flat index ``base``, all inside
    the window) of the flat levels ``fa``, ``fb`` on the flat mask ``fs``.

    Returns:
        (after median, before median (-inf: no sample), whether a sample fell on ``fd``,
        whether the medians are ``_small_median``'s: no NaN, no zero in the middle).
    """
    inf = np.float32(np.inf)
    # unsigned indices: no wrap-around test per load (all lie inside the window)
    p0, p1 = np.uintp(base + o0), np.uintp(base + o1)
    p2, p3 = np.uintp(base + o2), np.uintp(base + o3)
    s0, s1, s2, s3 = fs[p0], fs[p1], fs[p2], fs[p3]
    hit = (s0 & fd[p0]) | (s1 & fd[p1]) | (s2 & fd[p2]) | (s3 & fd[p3])
    cnt = np.int64(s0) + np.int64(s1) + np.int64(s2) + np.int64(s3)
    # loaded whatever the mask, then selected: no branch on the mask
    a0, a1, a2, a3 = fa[p0], fa[p1], fa[p2], fa[p3]
    b0, b1, b2, b3 = fb[p0], fb[p1], fb[p2], fb[p3]
    a0 = a0 if s0 else inf
    a1 = a1 if s1 else inf
    a2 = a2 if s2 else inf
    a3 = a3 if s3 else inf
    b0 = b0 if s0 else inf
    b1 = b1 if s1 else inf
    b2 = b2 if s2 else inf
    b3 = b3 if s3 else inf
    finite = (a0 == a0) & (a1 == a1) & (a2 == a2) & (a3 == a3)
    finite &= (b0 == b0) & (b1 == b1) & (b2 == b2) & (b3 == b3)
    ma, ok_a = _present_median4(a0, a1, a2, a3, cnt)
    mb, ok_b = _present_median4(b0, b1, b2, b3, cnt)
    return ma, mb, hit, finite & ok_a & ok_b


@njit(cache=True, nogil=True, inline="always")
def _side4_inf(fa, fb, fd, base, o0, o1, o2, o3):  # pragma: no cover - compiled
    """``_side4`` where the levels are +inf exactly off the sampling mask and ``fd`` lies
    within it: presence is read from the levels, with no load of the mask."""
    p0, p1 = np.uintp(base + o0), np.uintp(base + o1)
    p2, p3 = np.uintp(base + o2), np.uintp(base + o3)
    hit = fd[p0] | fd[p1] | fd[p2] | fd[p3]
    a0, a1, a2, a3 = fa[p0], fa[p1], fa[p2], fa[p3]
    b0, b1, b2, b3 = fb[p0], fb[p1], fb[p2], fb[p3]
    inf = np.float32(np.inf)
    cnt = np.int64(a0 != inf) + np.int64(a1 != inf) + np.int64(a2 != inf) + np.int64(a3 != inf)
    finite = (a0 == a0) & (a1 == a1) & (a2 == a2) & (a3 == a3)
    finite &= (b0 == b0) & (b1 == b1) & (b2 == b2) & (b3 == b3)
    ma, ok_a = _present_median4(a0, a1, a2, a3, cnt)
    mb, ok_b = _present_median4(b0, b1, b2, b3, cnt)
    return ma, mb, hit, finite & ok_a & ok_b


@njit(cache=True, nogil=True)
def sides_ab(
    sm_a, sm_b, samp, side, rows, cols, angle, offs_px, inf_off=False
):  # pragma: no cover - compiled
    """Per pixel (rows, cols), for each of the float32 (rows, cols) levels ``sm_a`` and
    ``sm_b``, the brighter of the median levels sampled ``offs_px`` ahead and behind along
    ``angle`` (radians) on the bool mask ``samp``; NaN where no sample falls on it. Also
    whether a sample on ``samp`` fell on the bool mask ``side``.

    With four samples a side (``barricade_rows.ALONG_REF_M``), a pixel whose samples all
    lie inside the window takes them at flat offsets fixed once per run of one angle, with
    no branch on the mask; the rest (the window's edge, NaN, zeros, steps too near a pixel
    edge to floor alike) take the general path, which gives the same values.

    ``inf_off``: the caller vouches that ``sm_a`` and ``sm_b`` are +inf exactly off ``samp``
    (+inf nowhere on it) and that ``side`` lies within ``samp``; the unrolled path then tells
    a sample's presence by its level and loads no mask (the same values).

    Returns:
        (float32 (n,), float32 (n,), bool (n,)): the after and the before reference levels,
        and the ``side`` hits.
    """
    h, w = samp.shape
    n = rows.size
    m = offs_px.size
    best_a = np.full(n, np.nan, np.float32)
    best_b = np.full(n, np.nan, np.float32)
    hit = np.zeros(n, np.bool_)
    buf_a = np.empty(m, np.float32)
    buf_b = np.empty(m, np.float32)
    fa, fb, fs, fd = sm_a.ravel(), sm_b.ravel(), samp.ravel(), side.ravel()
    # a road's pixels come in runs of one segment's angle: the steps behind (first m) and
    # ahead once per run. ``(-o) * cos`` is ``-(o * cos)`` exactly, so each sample lands
    # where ``col + 0.5 + sgn * o * cos`` puts it.
    dx = np.empty(2 * m, np.float64)
    dy = np.empty(2 * m, np.float64)
    off = np.zeros(max(2 * m, 8), np.int64)  # 8: the unrolled path reads eight
    fast = False
    r0 = r1 = c0 = c1 = 0
    prev = np.nan
    for i in range(n):
        if angle[i] != prev:
            prev = angle[i]
            ca, sa = math.cos(prev), math.sin(prev)
            for j in range(m):
                dx[j], dy[j] = -offs_px[j] * ca, -offs_px[j] * sa
                dx[m + j], dy[m + j] = offs_px[j] * ca, offs_px[j] * sa
            # offsets fixed for the run (``_run_offsets``); four samples a side are unrolled
            fast, r0, r1, c0, c1 = _run_offsets(dx, dy, w, h, off)
            fast &= m == 4
        r, c = rows[i], cols[i]
        if fast and r0 <= r < r1 and c0 <= c < c1:
            base = r * w + c
            if inf_off:
                ma, mb, h0, ok0 = _side4_inf(fa, fb, fd, base, off[0], off[1], off[2], off[3])
                mc, md, h1, ok1 = _side4_inf(fa, fb, fd, base, off[4], off[5], off[6], off[7])
            else:
                ma, mb, h0, ok0 = _side4(fa, fb, fs, fd, base, off[0], off[1], off[2], off[3])
                mc, md, h1, ok1 = _side4(fa, fb, fs, fd, base, off[4], off[5], off[6], off[7])
            if ok0 and ok1:
                # behind then ahead, the brighter kept as the general path keeps it
                ba = mc if mc > ma else ma
                bb = md if md > mb else mb
                if ba > -np.inf:
                    best_a[i] = ba
                if bb > -np.inf:
                    best_b[i] = bb
                hit[i] = h0 | h1
                continue
        c5 = c + 0.5
        r5 = r + 0.5
        ba = -np.inf
        bb = -np.inf
        on_side = False
        for s in range(2):
            cnt = 0
            for j in range(s * m, s * m + m):
                x = int(math.floor(c5 + dx[j]))
                y = int(math.floor(r5 + dy[j]))
                if 0 <= x < w and 0 <= y < h and samp[y, x]:
                    buf_a[cnt] = sm_a[y, x]
                    buf_b[cnt] = sm_b[y, x]
                    cnt += 1
                    on_side |= side[y, x]
            if cnt:
                ma = _small_median(buf_a, cnt)
                if ma > ba:
                    ba = ma
                mb = _small_median(buf_b, cnt)
                if mb > bb:
                    bb = mb
        hit[i] = on_side
        if ba > -np.inf:
            best_a[i] = ba
        if bb > -np.inf:
            best_b[i] = bb
    return best_a, best_b, hit


@njit(cache=True, nogil=True)
def other_road(on, road_id, rows, cols, angle, offs_px):  # pragma: no cover - compiled
    """Per pixel, whether a sample ``offs_px`` ahead or behind along ``angle`` falls on the
    road mask ``on`` of another road id than the pixel's own (int ``road_id`` (rows, cols)).

    Most road pixels lie far from any other road: the window is cut into tiles at least a
    sample's reach wide, and a pixel whose tile and its eight neighbours hold road of its own
    id only is answered without sampling (no sample can leave those tiles). The others take
    their samples at flat offsets fixed once per run of one angle where every sample lies
    inside the window (as ``sides_ab``)."""
    h, w = on.shape
    n = rows.size
    m = offs_px.size
    out = np.zeros(n, np.bool_)
    reach = 0.0
    for j in range(m):
        reach = max(reach, abs(offs_px[j]))
    t = int(math.ceil(reach)) + 2
    th, tw = (h + t - 1) // t, (w + t - 1) // t
    # each column's and row's tile: one division per column and row, not per pixel
    tx_of = np.arange(w) // t
    ty_of = np.arange(h) // t
    # per tile: the one road id on it (0: no road, -1: several)
    tile = np.zeros((th, tw), np.int64)
    fon, frid = on.ravel(), road_id.ravel()
    # eight mask pixels a word, the all-False words skipped (most of a window is off road);
    # the row followed as the flat index grows (no division per pixel)
    n8 = fon.size // 8
    words = fon[: n8 * 8].view(np.uint64)
    y, row0 = 0, 0
    for k in range(n8 + 1):
        if k < n8 and words[k] == 0:
            continue
        for p in range(k * 8, min(k * 8 + 8, fon.size)):
            if fon[p]:
                while p >= row0 + w:
                    y += 1
                    row0 += w
                v = frid[p]
                ty, tx = ty_of[y], tx_of[p - row0]
                q = tile[ty, tx]
                if q == 0:
                    tile[ty, tx] = v
                elif q != v:
                    tile[ty, tx] = -1
    # per tile: the one road id on it and its eight neighbours (0: none, -1: several)
    sole = np.zeros((th, tw), np.int64)
    for ty in range(th):
        for tx in range(tw):
            s = 0
            for yy in range(max(ty - 1, 0), min(ty + 2, th)):
                for xx in range(max(tx - 1, 0), min(tx + 2, tw)):
                    q = tile[yy, xx]
                    if q == 0 or q == s:
                        continue
                    s = q if s == 0 and q > 0 else -1
            sole[ty, tx] = s
    # the steps along ``angle``, once per run of one angle (as ``sides_ab``)
    dx = np.empty(2 * m, np.float64)
    dy = np.empty(2 * m, np.float64)
    off = np.empty(2 * m, np.int64)
    fast = False
    r0 = r1 = c0 = c1 = 0
    prev = np.nan
    for i in range(n):
        r, c = rows[i], cols[i]
        own = road_id[r, c]
        s = sole[ty_of[r], tx_of[c]]
        if s == 0 or s == own:
            continue  # no road of another id within reach
        if angle[i] != prev:
            prev = angle[i]
            ca, sa = math.cos(prev), math.sin(prev)
            for j in range(m):
                dx[j], dy[j] = -offs_px[j] * ca, -offs_px[j] * sa
                dx[m + j], dy[m + j] = offs_px[j] * ca, offs_px[j] * sa
            fast, r0, r1, c0, c1 = _run_offsets(dx, dy, w, h, off)
        if fast and r0 <= r < r1 and c0 <= c < c1:
            base = r * w + c
            for j in range(2 * m):
                # unsigned: no wrap-around test (inside the window)
                p = np.uintp(base + off[j])
                if fon[p] and frid[p] != own:
                    out[i] = True
                    break
            continue
        c5 = c + 0.5
        r5 = r + 0.5
        for j in range(2 * m):
            x = int(math.floor(c5 + dx[j]))
            y = int(math.floor(r5 + dy[j]))
            if 0 <= x < w and 0 <= y < h and on[y, x] and road_id[y, x] != own:
                out[i] = True
                break
    return out
