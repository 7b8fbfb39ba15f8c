"""Numba kernels of the road-window contrasts (``road_window``) and of block rows.

Each road pixel is compared with the road a few metres ahead and behind it along an angle.
The sample positions depend only on the pixel, the angle and the sampling mask, never on the
image, so the after and the before images are sampled in one pass (``sides_ab``): the
positions, the trigonometry and the mask tests are shared, and the arithmetic of each image's
medians is the one of a pass per image, so the values are the same bit for bit. The same pass
tells which samples fall on the kerbside (road off the carriageway).

``seeded_labels`` and ``label_pixels`` give ``barricade_rows.hysteresis`` and
``road_components`` their labels and pixel lists in passes over the labelled pixels, not
the window. ``uniform_reflect`` is ``scipy.ndimage.uniform_filter`` (mode reflect) of a whole window with
scipy's own arithmetic, a few times faster.

Coordinates are pixels of the window (row, column); ``offs_px`` are distances in pixels.
All kernels are cached on disk (``cache=True``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from fortmap.detect.fort_kernels import _reflect, true_pixels


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
def sides_ab(sm_a, sm_b, samp, side, rows, cols, angle, offs_px):  # pragma: no cover - compiled
    """Per pixel (rows, cols), for each of the float32 (rows, cols) levels ``sm_a`` and
    ``sm_b``, the brighter of the median levels sampled ``offs_px`` ahead and behind along
    ``angle`` (radians) on the bool mask ``samp``; NaN where no sample falls on it. Also
    whether a sample on ``samp`` fell on the bool mask ``side``.

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
    # a road's pixels come in runs of one segment's angle: the steps behind (first m) and
    # ahead once per run. ``(-o) * cos`` is ``-(o * cos)`` exactly, so each sample lands
    # where ``col + 0.5 + sgn * o * cos`` puts it.
    dx = np.empty(2 * m, np.float64)
    dy = np.empty(2 * m, np.float64)
    prev = np.nan
    for i in range(n):
        if angle[i] != prev:
            prev = angle[i]
            ca, sa = math.cos(prev), math.sin(prev)
            for j in range(m):
                dx[j], dy[j] = -offs_px[j] * ca, -offs_px[j] * sa
                dx[m + j], dy[m + j] = offs_px[j] * ca, offs_px[j] * sa
        c5 = cols[i] + 0.5
        r5 = rows[i] + 0.5
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
    id only is answered without sampling (no sample can leave those tiles)."""
    h, w = on.shape
    n = rows.size
    m = offs_px.size
    out = np.zeros(n, np.bool_)
    reach = 0.0
    for j in range(m):
        reach = max(reach, abs(offs_px[j]))
    t = int(math.ceil(reach)) + 2
    th, tw = (h + t - 1) // t, (w + t - 1) // t
    # per tile: the one road id on it (0: no road, -1: several)
    tile = np.zeros((th, tw), np.int64)
    for y in range(h):
        for x in range(w):
            if on[y, x]:
                v = road_id[y, x]
                q = tile[y // t, x // t]
                if q == 0:
                    tile[y // t, x // t] = v
                elif q != v:
                    tile[y // t, x // t] = -1
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
    prev = np.nan
    for i in range(n):
        own = road_id[rows[i], cols[i]]
        s = sole[rows[i] // t, cols[i] // t]
        if s == 0 or s == own:
            continue  # no road of another id within reach
        if angle[i] != prev:
            prev = angle[i]
            ca, sa = math.cos(prev), math.sin(prev)
            for j in range(m):
                dx[j], dy[j] = -offs_px[j] * ca, -offs_px[j] * sa
                dx[m + j], dy[m + j] = offs_px[j] * ca, offs_px[j] * sa
        c5 = cols[i] + 0.5
        r5 = rows[i] + 0.5
        for j in range(2 * m):
            x = int(math.floor(c5 + dx[j]))
            y = int(math.floor(r5 + dy[j]))
            if 0 <= x < w and 0 <= y < h and on[y, x] and road_id[y, x] != own:
                out[i] = True
                break
    return out


@njit(cache=True, nogil=True)
def uniform_reflect(g, k):  # pragma: no cover - compiled
    """``scipy.ndimage.uniform_filter(g, k)`` (mode reflect, origin 0) of float32 2-D ``g``,
    bit for bit: scipy's own arithmetic (``NI_UniformFilter1D``), axis 0 then axis 1. Along
    each line a float64 running sum starts as the sum of the first box and moves on by the
    entering less the leaving value; each output is that sum over ``k`` rounded to float32
    (a direct sum per pixel can differ from it in the last bit).

    Axis 0 keeps one running sum per column and walks the rows (contiguous reads, where
    scipy copies out strided column lines); each row of its output is then run along axis 1
    at once, so the intermediate image is never allocated.

    Returns:
        float32 (rows, cols).
    """
    if k <= 1:
        return g.copy()  # scipy filters no axis of size 1
    h, w = g.shape
    s1 = k // 2
    out = np.empty((h, w), np.float32)
    acc = np.zeros(w, np.float64)
    for j in range(k):
        y = _reflect(j - s1, h)
        for c in range(w):
            acc[c] += np.float64(g[y, c])
    buf = np.empty(w + k, np.float64)
    for r in range(h):
        if r > 0:
            yi = _reflect(r + k - 1 - s1, h)
            yo = _reflect(r - 1 - s1, h)
            for c in range(w):
                acc[c] += np.float64(g[yi, c]) - np.float64(g[yo, c])
        # the axis-0 output row (rounded to float32, as scipy stores it), reflected at the ends
        for c in range(w):
            buf[s1 + c] = np.float64(np.float32(acc[c] / k))
        for j in range(s1):
            buf[j] = buf[s1 + _reflect(j - s1, w)]
        for j in range(k - s1 - 1):
            buf[s1 + w + j] = buf[s1 + _reflect(w + j, w)]
        t = 0.0
        for j in range(k):
            t += buf[j]
        out[r, 0] = np.float32(t / k)
        for c in range(1, w):
            t += buf[c + k - 1] - buf[c - 1]
            out[r, c] = np.float32(t / k)
    return out


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


@njit(cache=True, nogil=True)
def band_mean(img):  # pragma: no cover - compiled
    """``img.mean(axis=0)`` of a float32 (bands, rows, cols) image, bit for bit: the bands
    added in order to 0.0 in float32 (numpy's reduction over the first axis; the 0.0 start
    makes an all -0.0 pixel +0.0), then divided by their count (a float32 quotient,
    correctly rounded whichever way numpy promotes it).

    Returns:
        float32 (rows, cols).
    """
    nb, h, w = img.shape
    out = np.empty((h, w), np.float32)
    for r in range(h):
        for c in range(w):
            out[r, c] = np.float32(0.0) + img[0, r, c]
        for b in range(1, nb):
            for c in range(w):
                out[r, c] += img[b, r, c]
        for c in range(w):
            out[r, c] = np.float32(np.float64(out[r, c]) / nb)
    return out


@njit(cache=True, nogil=True)
def masked_box_ab(ga, gb, m, k, rows, cols):  # pragma: no cover - compiled
    """``fort_kernels.masked_box_at`` of the float32 (rows, cols) levels ``ga`` and ``gb``
    (box mean over the bool mask ``m`` only, NaN where the box holds almost none of it) at
    the pixels (rows, cols), both in one pass (the mask tests are shared, each image's
    arithmetic is that kernel's), written into (rows, cols) arrays NaN elsewhere.

    Returns:
        (float32 (rows, cols), float32 (rows, cols)) for ``ga`` and ``gb``.
    """
    h, w = ga.shape
    out_a = np.full((h, w), np.nan, np.float32)
    out_b = np.full((h, w), np.nan, np.float32)
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
        pr, pc = r, c
    return out_a, out_b
