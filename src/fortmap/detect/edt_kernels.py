"""Exact Euclidean distance transforms (numba), in pixels, the same numbers as scipy's
``distance_transform_edt``; with a threshold test that skips the square roots."""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from scipy import ndimage as ndi


@nb.njit(cache=True, nogil=True)
def _sq_edt_capped(fg: np.ndarray, cap: int, g: np.ndarray) -> np.ndarray:  # pragma: no cover
    """Squared distance (pixels^2, ``g``'s integer type) from each pixel to the nearest False
    pixel, exact below ``cap`` and ``cap`` or more elsewhere; ``g`` (rows, cols) is scratch.

    Felzenszwalb and Huttenlocher's lower envelope of parabolas, column pass then row pass;
    integer distances, so the result is exact. A column distance of ``cap`` or more cannot
    bring a pixel under ``cap``, so it is left out of the envelope: a small cap (a threshold
    test) makes the row pass cheap. Needs at least one False pixel.
    """
    h, w = fg.shape
    # column pass swept a row at a time with one running distance per column: the same
    # numbers as column by column, read and written contiguously
    d = np.empty(w, np.int64)
    d[:] = -1
    for r in range(h):
        for c in range(w):
            dc = 0 if not fg[r, c] else (d[c] + 1 if d[c] >= 0 else -1)
            d[c] = dc
            g[r, c] = dc * dc if dc >= 0 and dc * dc < cap else cap
    d[:] = -1
    for r in range(h - 1, -1, -1):
        for c in range(w):
            dc = 0 if not fg[r, c] else (d[c] + 1 if d[c] >= 0 else -1)
            d[c] = dc
            if dc >= 0 and dc * dc < g[r, c]:
                g[r, c] = dc * dc
    out = np.empty_like(g)
    v = np.empty(w, np.int64)
    z = np.empty(w + 1, np.float64)
    for r in range(h):
        k = -1
        s = 0.0
        for q in range(w):
            fq = np.int64(g[r, q])
            if fq >= cap:
                continue
            if k < 0:
                k = 0
                v[0] = q
                z[0] = -np.inf
                z[1] = np.inf
                continue
            while True:
                p = v[k]
                s = ((fq + q * q) - (np.int64(g[r, p]) + p * p)) / (2.0 * (q - p))
                if s <= z[k]:
                    k -= 1
                    if k < 0:
                        break
                else:
                    break
            k += 1
            v[k] = q
            z[k] = s if k > 0 else -np.inf
            z[k + 1] = np.inf
        if k < 0:
            for q in range(w):
                out[r, q] = cap
            continue
        j = 0
        for q in range(w):
            while z[j + 1] < q:
                j += 1
            p = v[j]
            out[r, q] = (q - p) * (q - p) + np.int64(g[r, p])
    return out


@nb.njit(cache=True, nogil=True)
def _sq_edt(fg: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """Squared distance (pixels^2, int64) from each pixel to the nearest False pixel; 2**60
    on a row no distance reaches (no False pixel at all). Needs at least one False pixel."""
    return _sq_edt_capped(fg, np.int64(1) << 60, np.empty(fg.shape, np.int64))


def edt(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance (pixels, float64) from each True pixel to the nearest False one.

    The same numbers as ``scipy.ndimage.distance_transform_edt(mask)`` (both are exact and take
    the square root of an integer sum in float64), several times faster.
    """
    m = np.ascontiguousarray(mask, dtype=bool)
    if m.size == 0 or m.all():
        # no background: keep scipy's own answer for that corner case
        return ndi.distance_transform_edt(m)
    return np.sqrt(_sq_edt(m).astype(np.float64))


def edt_above(mask: np.ndarray, r: float) -> np.ndarray:
    """``edt(mask) > r`` (bool) without the square roots: the squared integer distances are
    compared with the least integer whose float64 square root exceeds ``r``."""
    m = np.ascontiguousarray(mask, dtype=bool)
    if m.size == 0 or m.all() or not math.isfinite(r):
        return edt(m) > r
    t = _least_above(r)
    # most pixels of a thin mask are nearer than r to an edge of their own column: only the
    # others need a search along their row, and when they are few that beats the row pass
    cap = math.isqrt(t - 1) + 1 if t > 0 else 0  # the least integer whose square is t or more
    g = np.empty(m.shape, np.uint8 if cap < 255 else np.int64)
    out, done = _above_by_search(m, t, m.size // 16, g)
    if done:
        return out
    # int32 halves the memory traffic, which is most of the cost; any distance of t or more
    # is capped at t, so it holds every value whenever t does
    small = t + m.shape[1] ** 2 < 2**31 - 1  # every sum the row pass forms fits in int32
    g = np.empty(m.shape, np.int32 if small else np.int64)
    return _sq_edt_capped(m, t, g) >= t


@nb.njit(cache=True, nogil=True)
def _column_dist(fg: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """Distance (pixels, int32) from each pixel to the nearest False pixel of its own column;
    -1 in a column without one. Swept a row at a time, read and written contiguously."""
    h, w = fg.shape
    g = np.empty((h, w), np.int32)
    d = np.full(w, -1, np.int64)
    for r in range(h):
        for c in range(w):
            d[c] = 0 if not fg[r, c] else (d[c] + 1 if d[c] >= 0 else -1)
            g[r, c] = d[c]
    d[:] = -1
    for r in range(h - 1, -1, -1):
        for c in range(w):
            d[c] = 0 if not fg[r, c] else (d[c] + 1 if d[c] >= 0 else -1)
            if d[c] >= 0 and (g[r, c] < 0 or d[c] < g[r, c]):
                g[r, c] = d[c]
    return g


@nb.njit(cache=True, nogil=True)
def _sq_edt_at(g: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:  # pragma: no cover
    """Squared distance (int64) at each (row, col) from :func:`_column_dist`'s ``g``: the least
    ``(q - col)**2 + g[row, q]**2`` over columns ``q``, searched outwards from ``col`` until the
    horizontal offset alone is no smaller than the best found. Needs a False pixel somewhere."""
    w = g.shape[1]
    out = np.empty(rows.shape[0], np.int64)
    for i in range(rows.shape[0]):
        r, c = rows[i], cols[i]
        best = np.int64(1) << 62
        v = np.int64(g[r, c])
        if v >= 0:
            best = v * v
        dq = 1
        while dq * dq < best and (c - dq >= 0 or c + dq < w):
            for q in (c - dq, c + dq):
                if 0 <= q < w:
                    v = np.int64(g[r, q])
                    if v >= 0 and dq * dq + v * v < best:
                        best = dq * dq + v * v
            dq += 1
        out[i] = best
    return out


def edt_at(mask: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``edt(mask)[rows, cols]`` (pixels, float64, the same numbers) computed at those pixels
    only: the column pass over the whole mask, the row search at the points alone.

    Args:
        mask: bool (rows, cols).
        rows, cols: int pixel indices inside ``mask``, same length.
    """
    m = np.ascontiguousarray(mask, dtype=bool)
    rows = np.asarray(rows, np.int64)
    cols = np.asarray(cols, np.int64)
    if m.size == 0 or m.all():
        return edt(m)[rows, cols]
    return np.sqrt(_sq_edt_at(_column_dist(m), rows, cols).astype(np.float64))


def _least_above(r: float) -> int:
    """The least integer whose float64 square root exceeds ``r`` (finite ``r``)."""
    t = max(0, math.floor(r * r) - 2)
    while not np.sqrt(np.float64(t)) > r:
        t += 1
    return t


@nb.njit(cache=True, nogil=True)
def _above_by_search(  # pragma: no cover - compiled
    fg: np.ndarray, t: int, budget: int, g: np.ndarray
):
    """Is the squared distance from each pixel to the nearest False pixel ``t`` or more?

    A pixel's squared distance is the least ``(q - col)**2 + g[row, q]**2`` over columns ``q``
    (``g`` the column distances), so a pixel whose own column distance is under the threshold
    is settled at once, and any other is settled by a search outwards along its row that stops
    at the first term under ``t`` or once the offset alone reaches it. Column distances whose
    square reaches ``t`` cannot settle anything, so they are held capped in the scratch
    array ``g`` (rows, cols; uint8 where the cap allows: a quarter of the memory traffic).

    Returns:
        (bool (rows, cols), done): done is False, and the answer incomplete, when more than
        ``budget`` pixels needed a search.
    """
    h, w = fg.shape
    g = _column_dist_capped(fg, t, g)
    out = np.zeros((h, w), np.bool_)
    n = 0
    for r in range(h):
        for c in range(w):
            v = np.int64(g[r, c])
            if v * v < t:
                continue
            n += 1
            if n > budget:
                return out, False
            far = True
            dq = 1
            while far and dq * dq < t:
                for q in (c - dq, c + dq):
                    if 0 <= q < w:
                        u = np.int64(g[r, q])
                        if dq * dq + u * u < t:
                            far = False
                dq += 1
            out[r, c] = far
    return out, True


@nb.njit(cache=True, nogil=True)
def _paint_near(seed: np.ndarray, t: int, budget: int):  # pragma: no cover - compiled
    """False within squared distance under ``t`` of a True pixel of ``seed``, else True.

    The nearest seed pixel of any other pixel has a 4-neighbour outside the seed (a step from
    a seed pixel towards the other pixel along its larger offset is nearer), so only those
    edge pixels paint their disks.

    Returns:
        (bool (rows, cols), done): done is False, and nothing painted, when the disks would
        cost more than ``budget`` pixel writes.
    """
    h, w = seed.shape
    out = np.ones((h, w), np.bool_)
    rad = 0
    while (rad + 1) * (rad + 1) < t:
        rad += 1
    span = np.empty(2 * rad + 1, np.int64)
    area = 0
    for dy in range(-rad, rad + 1):
        s = -1
        while (s + 1) * (s + 1) + dy * dy < t:
            s += 1
        span[dy + rad] = s
        area += 2 * s + 1
    n_edge = 0
    for r in range(h):
        for c in range(w):
            if seed[r, c] and (
                (r > 0 and not seed[r - 1, c])
                or (r < h - 1 and not seed[r + 1, c])
                or (c > 0 and not seed[r, c - 1])
                or (c < w - 1 and not seed[r, c + 1])
            ):
                n_edge += 1
    if n_edge * area > budget:
        return out, False
    for r in range(h):
        for c in range(w):
            if not seed[r, c]:
                continue
            out[r, c] = False
            if not (
                (r > 0 and not seed[r - 1, c])
                or (r < h - 1 and not seed[r + 1, c])
                or (c > 0 and not seed[r, c - 1])
                or (c < w - 1 and not seed[r, c + 1])
            ):
                continue
            for dy in range(-rad, rad + 1):
                rr = r + dy
                s = span[dy + rad]
                if rr < 0 or rr >= h or s < 0:
                    continue
                for cc in range(max(c - s, 0), min(c + s + 1, w)):
                    out[rr, cc] = False
    return out, True


def far_from(seed: np.ndarray, r: float) -> np.ndarray:
    """``edt_above(~seed, r)`` (bool): pixels farther than ``r`` pixels from every True pixel
    of ``seed``; painted around the seed's edge when that is cheaper than a transform."""
    s = np.ascontiguousarray(seed, dtype=bool)
    if s.any() and math.isfinite(r) and r >= 0:
        out, done = _paint_near(s, _least_above(r), 4 * s.size)
        if done:
            return out
    return edt_above(~s, r)


@nb.njit(cache=True, nogil=True)
def _column_dist_capped(fg: np.ndarray, t: int, g: np.ndarray) -> np.ndarray:  # pragma: no cover
    """Distance to the nearest False pixel of the same column, written into ``g`` capped at
    ``cap``, the least integer whose square is ``t`` or more (also where the column has no
    False pixel). Swept a row at a time, read and written contiguously."""
    h, w = fg.shape
    cap = 0
    while cap * cap < t:
        cap += 1
    d = np.full(w, cap, np.int64)
    for r in range(h):
        for c in range(w):
            d[c] = 0 if not fg[r, c] else min(d[c] + 1, cap)
            g[r, c] = d[c]
    d[:] = cap
    for r in range(h - 1, -1, -1):
        for c in range(w):
            d[c] = 0 if not fg[r, c] else min(d[c] + 1, cap)
            if d[c] < g[r, c]:
                g[r, c] = d[c]
    return g
