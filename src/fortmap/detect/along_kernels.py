"""Numba kernels of the along-road contrast (``road_window.along_anomaly``).

Each road pixel is compared with the road a few metres ahead and behind it along an angle.
The sample positions depend only on the pixel, the angle and the sampling mask, never on the
image, so the after and the before images are sampled in one pass (``sides_ab``): the
positions, the trigonometry and the mask tests are shared, and the arithmetic of each image's
medians is the one of a pass per image, so the values are the same bit for bit. The same pass
tells which samples fall on the kerbside (road off the carriageway).

Coordinates are pixels of the window (row, column); ``offs_px`` are distances in pixels.
All kernels are cached on disk (``cache=True``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from fortmap.detect.fort_kernels import near


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


@njit(cache=True, nogil=True)
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
    for i in range(n):
        ca, sa = math.cos(angle[i]), math.sin(angle[i])
        ba = -np.inf
        bb = -np.inf
        for sgn in (-1.0, 1.0):
            cnt = 0
            for j in range(m):
                x = int(math.floor(cols[i] + 0.5 + sgn * offs_px[j] * ca))
                y = int(math.floor(rows[i] + 0.5 + sgn * offs_px[j] * sa))
                if 0 <= x < w and 0 <= y < h and samp[y, x]:
                    buf_a[cnt] = sm_a[y, x]
                    buf_b[cnt] = sm_b[y, x]
                    cnt += 1
                    if side[y, x]:
                        hit[i] = True
            if cnt:
                ma = _small_median(buf_a, cnt)
                if ma > ba:
                    ba = ma
                mb = _small_median(buf_b, cnt)
                if mb > bb:
                    bb = mb
        if ba > -np.inf:
            best_a[i] = ba
        if bb > -np.inf:
            best_b[i] = bb
    return best_a, best_b, hit


@njit(cache=True, nogil=True)
def other_road(on, road_id, rows, cols, angle, offs_px):  # pragma: no cover - compiled
    """Per pixel, whether a sample ``offs_px`` ahead or behind along ``angle`` falls on the
    road mask ``on`` of another road id than the pixel's own (int ``road_id`` (rows, cols))."""
    h, w = on.shape
    n = rows.size
    out = np.zeros(n, np.bool_)
    for i in range(n):
        own = road_id[rows[i], cols[i]]
        ca, sa = math.cos(angle[i]), math.sin(angle[i])
        for sgn in (-1.0, 1.0):
            for j in range(offs_px.size):
                x = int(math.floor(cols[i] + 0.5 + sgn * offs_px[j] * ca))
                y = int(math.floor(rows[i] + 0.5 + sgn * offs_px[j] * sa))
                if 0 <= x < w and 0 <= y < h and on[y, x] and road_id[y, x] != own:
                    out[i] = True
                    break
            if out[i]:
                break
    return out


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
