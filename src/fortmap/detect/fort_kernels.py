"""Numba kernels of the road-surface detectors (barricades, rubble).

Each kernel replaces a chain of numpy/scipy passes over a whole window by work on the pixels
that are needed (the road pixels, or the few around a candidate), with the same arithmetic:

* box means follow ``scipy.ndimage.uniform_filter`` (mode ``reflect``): a float64 sum along
  the rows axis divided by the size and rounded to float32, then the same along the columns
  axis. scipy slides a running sum along each line; the sums of a few float32 values are exact
  in float64, so a direct sum gives the same float32 result;
* binary morphology follows ``scipy.ndimage`` with ``border_value=0`` (outside the array is
  False), by painting or testing a structuring element around the True pixels only;
* connected components (8-connected) are filled from the pixels that select them
  (``components_touching``; ``label_kernels.seeded_labels`` for hysteresis).

Coordinates are pixels of the window (row, column). All kernels are cached on disk
(``cache=True``) so a new process loads rather than compiles them.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# exact lower medians per road by selection (was sorting here; same values bit for bit)
from fortmap.detect.order_stats import road_medians  # noqa: F401  (re-exported)


@njit(cache=True, nogil=True)
def _reflect(i, n):  # pragma: no cover - compiled
    # scipy's "reflect" extension: d c b a | a b c d | d c b a
    while i < 0 or i >= n:
        if i < 0:
            i = -i - 1
        if i >= n:
            i = 2 * n - i - 1
    return i


@njit(cache=True, nogil=True)
def _mean3(v0, v1, v2):  # pragma: no cover - compiled
    # a box column's mean as the filters store it: the float64 sum in order, over 3,
    # rounded to float32 (kept in float64 for the next sum). The filters' sum starts from
    # +0.0, which only turns a -0.0 sum into +0.0; the box's sum of the columns starts from
    # +0.0 too, and gives the same either way, so that add is left out here.
    return np.float64(np.float32((np.float64(v0) + np.float64(v1) + np.float64(v2)) / 3))


@njit(cache=True, nogil=True)
def _box3_at(g, rows, cols):  # pragma: no cover - compiled
    """``box_at(g, 3, rows, cols)``: off the window's edge by flat indices (no index to
    reflect or wrap), the columns shared along a row kept in three scalars."""
    h, w = g.shape
    n = rows.size
    out = np.empty(n, np.float32)
    f = g.ravel()
    q0 = q1 = q2 = 0.0
    pr, pc = -1, -1
    for i in range(n):
        r, c = rows[i], cols[i]
        if 1 <= r < h - 1 and 1 <= c < w - 1:
            p = r * w + c
            if r == pr and c == pc + 1:
                # raster order: the pixel to the left shares all columns but the new right one
                q0, q1 = q1, q2
                u = np.uintp(p + 1)
                q2 = _mean3(f[u - w], f[u], f[u + w])
            else:
                u = np.uintp(p - 1)
                q0 = _mean3(f[u - w], f[u], f[u + w])
                u = np.uintp(p)
                q1 = _mean3(f[u - w], f[u], f[u + w])
                u = np.uintp(p + 1)
                q2 = _mean3(f[u - w], f[u], f[u + w])
            pr, pc = r, c
        else:
            y0, y2 = _reflect(r - 1, h), _reflect(r + 1, h)
            x0, x2 = _reflect(c - 1, w), _reflect(c + 1, w)
            q0 = _mean3(g[y0, x0], g[r, x0], g[y2, x0])
            q1 = _mean3(g[y0, c], g[r, c], g[y2, c])
            q2 = _mean3(g[y0, x2], g[r, x2], g[y2, x2])
            pr = -1  # the next pixel starts afresh
        out[i] = np.float32((0.0 + q0 + q1 + q2) / 3)
    return out


@njit(cache=True, nogil=True)
def box_at(g, k, rows, cols):  # pragma: no cover - compiled
    """``uniform_filter(g, k)`` (float32 2-D ``g``, mode reflect) at the pixels (rows, cols).
    The 3 x 3 box (the road windows' 1.5 m smoothing) has its own unrolled path.

    Returns:
        float32 (n,), identical to the full filter's values there.
    """
    if k == 3:
        return _box3_at(g, rows, cols)
    return _box_any_at(g, k, rows, cols)


@njit(cache=True, nogil=True)
def _box_any_at(g, k, rows, cols):  # pragma: no cover - compiled
    # ``box_at`` of any box side
    h, w = g.shape
    n = rows.size
    out = np.empty(n, np.float32)
    s1 = k // 2
    s2 = k - s1 - 1
    # the box's column means (rounded to float32, as the first axis' pass stores them)
    q = np.empty(k, np.float64)
    pr, pc = -1, -1
    for i in range(n):
        r, c = rows[i], cols[i]
        # away from the edges no index needs reflecting (same sums, same order)
        inside = s1 <= r < h - s2 and s1 <= c < w - s2
        if inside and r == pr and c == pc + 1 and pc >= s1:
            # raster order: the pixel to the left shares all columns but the new right one
            for j in range(k - 1):
                q[j] = q[j + 1]
            col = 0.0
            for dr in range(-s1, s2 + 1):
                col += np.float64(g[r + dr, c + s2])
            q[k - 1] = np.float64(np.float32(col / k))
        else:
            for j in range(k):
                x = c + j - s1 if inside else _reflect(c + j - s1, w)
                col = 0.0
                for dr in range(-s1, s2 + 1):
                    col += np.float64(g[r + dr if inside else _reflect(r + dr, h), x])
                q[j] = np.float64(np.float32(col / k))
        acc = 0.0
        for j in range(k):
            acc += q[j]
        out[i] = np.float32(acc / k)
        pr, pc = r, c
    return out


@njit(cache=True, nogil=True)
def masked_box_at(g, m, k, rows, cols):  # pragma: no cover - compiled
    """``barricade_rows.masked_box(g, m, k)`` at the pixels (rows, cols): the box mean of
    ``g`` over the pixels of ``m`` only, NaN where the box holds (almost) none of them.

    Returns:
        float32 (n,), identical to the full computation there.
    """
    h, w = g.shape
    n = rows.size
    out = np.empty(n, np.float32)
    s1 = k // 2
    for i in range(n):
        r, c = rows[i], cols[i]
        num = 0.0
        den = 0.0
        for dc in range(-s1, k - s1):
            x = _reflect(c + dc, w)
            cn = 0.0
            cd = 0.0
            for dr in range(-s1, k - s1):
                y = _reflect(r + dr, h)
                if m[y, x]:
                    cn += np.float64(g[y, x])
                    cd += 1.0
            num += np.float64(np.float32(cn / k))
            den += np.float64(np.float32(cd / k))
        fn = np.float32(num / k)
        fd = np.float32(den / k)
        out[i] = fn / fd if fd > np.float32(1e-3) else np.nan
    return out


@njit(cache=True, nogil=True)
def near(m, rad, r, c):  # pragma: no cover - compiled
    """Whether ``m`` holds a True pixel within ``rad`` pixels (a square) of pixel (r, c)."""
    h, w = m.shape
    for y in range(max(r - rad, 0), min(r + rad + 1, h)):
        for x in range(max(c - rad, 0), min(c + rad + 1, w)):
            if m[y, x]:
                return True
    return False


@njit(cache=True, nogil=True)
def any_near_at(m, rad, rows, cols):  # pragma: no cover - compiled
    """Whether ``m`` holds a True pixel within ``rad`` pixels (a square of side 2 rad + 1) of
    each pixel (rows, cols): ``binary_dilation(m, ones((2 rad + 1,) * 2))`` there."""
    n = rows.size
    out = np.zeros(n, np.bool_)
    for i in range(n):
        out[i] = near(m, rad, rows[i], cols[i])
    return out


@njit(cache=True, nogil=True)
def true_pixels(m):  # pragma: no cover - compiled
    """Flat (raster) indices of the True pixels of bool ``m``, int64, in raster order.

    The masks handed to the morphology kernels are mostly False (new-object pixels on a
    window's roads): the scan reads eight pixels at a time and skips the all-False words, so
    it costs a fraction of a pixel-by-pixel pass."""
    flat = m.ravel()
    n = flat.size
    n8 = n // 8
    words = flat[: n8 * 8].view(np.uint64)
    cnt = 0
    for q in range(n8):
        if words[q] != 0:
            for p in range(q * 8, q * 8 + 8):
                cnt += flat[p]
    for p in range(n8 * 8, n):
        cnt += flat[p]
    out = np.empty(cnt, np.int64)
    k = 0
    for q in range(n8):
        if words[q] != 0:
            for p in range(q * 8, q * 8 + 8):
                if flat[p]:
                    out[k] = p
                    k += 1
    for p in range(n8 * 8, n):
        if flat[p]:
            out[k] = p
            k += 1
    return out


@njit(cache=True, nogil=True)
def dilate(m, se):  # pragma: no cover - compiled
    """``binary_dilation(m, se)`` (odd-sided ``se``, centred), painting ``se`` around each True
    pixel of ``m``: cost in proportion to the True pixels."""
    h, w = m.shape
    kh, kw = se.shape
    ch, cw = kh // 2, kw // 2
    out = np.zeros((h, w), np.bool_)
    for p in true_pixels(m):
        y, x = p // w, p % w
        for dy in range(kh):
            yy = y - (dy - ch)
            if yy < 0 or yy >= h:
                continue
            for dx in range(kw):
                if se[dy, dx]:
                    xx = x - (dx - cw)
                    if 0 <= xx < w:
                        out[yy, xx] = True
    return out


@njit(cache=True, nogil=True)
def erode(m, se):  # pragma: no cover - compiled
    """``binary_erosion(m, se, border_value=0)`` (odd-sided ``se``, centred): only True pixels
    of ``m`` are tested."""
    h, w = m.shape
    kh, kw = se.shape
    ch, cw = kh // 2, kw // 2
    out = np.zeros((h, w), np.bool_)
    for p in true_pixels(m):
        y, x = p // w, p % w
        ok = True
        for dy in range(kh):
            yy = y + dy - ch
            for dx in range(kw):
                if se[dy, dx]:
                    xx = x + dx - cw
                    if yy < 0 or yy >= h or xx < 0 or xx >= w or not m[yy, xx]:
                        ok = False
                        break
            if not ok:
                break
        out[y, x] = ok
    return out


@njit(cache=True, nogil=True)
def square_opening_tl(m, k):  # pragma: no cover - compiled
    """Opening of bool (rows, cols) ``m`` by a k x k square anchored at its top-left pixel:
    the squares wholly inside ``m`` and the window, painted back (``block_change.box_opening``
    for an even side). Only the True pixels of ``m`` can anchor a square."""
    h, w = m.shape
    out = np.zeros((h, w), np.bool_)
    for p in true_pixels(m):
        y, x = p // w, p % w
        if y > h - k or x > w - k:
            continue
        ok = True
        for yy in range(y, y + k):
            for xx in range(x, x + k):
                if not m[yy, xx]:
                    ok = False
                    break
            if not ok:
                break
        if ok:
            for yy in range(y, y + k):
                for xx in range(x, x + k):
                    out[yy, xx] = True
    return out


@njit(cache=True, nogil=True)
def _dilated_at(m, k, y, x):  # pragma: no cover - compiled
    # ``binary_dilation(m, ones((k, k)))`` at (y, x): scipy centres an even square at its
    # lower middle, so the dilation reaches (k - 1) // 2 up and left, k // 2 down and right
    h, w = m.shape
    for yy in range(max(y - (k - 1) // 2, 0), min(y + k // 2 + 1, h)):
        for xx in range(max(x - (k - 1) // 2, 0), min(x + k // 2 + 1, w)):
            if m[yy, xx]:
                return True
    return False


@njit(cache=True, nogil=True)
def square_closing_in(m, k, keep):  # pragma: no cover - compiled
    """``binary_closing(m, ones((k, k)), border_value=0) & keep`` for bool (rows, cols)
    ``m`` and ``keep`` and any side ``k`` (even too), evaluated at the ``keep`` pixels only."""
    h, w = m.shape
    out = np.zeros((h, w), np.bool_)
    lo, hi = k // 2, (k - 1) // 2  # the erosion's reach up/left and down/right
    for y in range(h):
        for x in range(w):
            if not keep[y, x]:
                continue
            if y - lo < 0 or x - lo < 0 or y + hi >= h or x + hi >= w:
                continue  # the square leaves the array: eroded (border 0)
            ok = True
            for yy in range(y - lo, y + hi + 1):
                for xx in range(x - lo, x + hi + 1):
                    if not _dilated_at(m, k, yy, xx):
                        ok = False
                        break
                if not ok:
                    break
            out[y, x] = ok
    return out


@njit(cache=True, nogil=True)
def components_touching(m, rows, cols):  # pragma: no cover - compiled
    """Flat indices (sorted: raster order) of the pixels of the 8-connected components of
    bool (rows, cols) ``m`` that hold one of the pixels (``rows``, ``cols``): what labelling
    every component of ``m`` and keeping those under the pixels gives, filled from them."""
    h, w = m.shape
    seen = np.zeros((h, w), np.bool_)
    stack = np.empty(h * w, np.int64)
    top = 0
    for i in range(rows.size):
        r, c = rows[i], cols[i]
        if m[r, c] and not seen[r, c]:
            seen[r, c] = True
            stack[top] = r * w + c
            top += 1
    i = 0
    while i < top:
        q = stack[i]
        i += 1
        qy, qx = q // w, q % w
        for yy in range(max(qy - 1, 0), min(qy + 2, h)):
            for xx in range(max(qx - 1, 0), min(qx + 2, w)):
                if m[yy, xx] and not seen[yy, xx]:
                    seen[yy, xx] = True
                    stack[top] = yy * w + xx
                    top += 1
    return np.sort(stack[:top])


def opening(m: np.ndarray, se: np.ndarray) -> np.ndarray:
    """``scipy.ndimage.binary_opening(m, se)`` of a bool (rows, cols) mask."""
    return dilate(erode(np.ascontiguousarray(m), se), se)


def closing(m: np.ndarray, se: np.ndarray) -> np.ndarray:
    """``scipy.ndimage.binary_closing(m, se)`` of a bool (rows, cols) mask (border 0, so the
    window's edge erodes what touches it, as scipy's does)."""
    return erode(dilate(np.ascontiguousarray(m), se), se)


@njit(cache=True, nogil=True)
def _moments3(f, u, w):  # pragma: no cover - compiled
    # a 3-pixel column's means of g and g * g (flat index ``u`` its middle, inside the
    # window), as ``local_spread_ratio`` stores them; the square is float32's
    v0, v1, v2 = f[u - w], f[u], f[u + w]
    return _mean3(v0, v1, v2), _mean3(v0 * v0, v1 * v1, v2 * v2)


@njit(cache=True, nogil=True)
def _spread(m1, m2):  # pragma: no cover - compiled
    # sqrt(max(box(g*g) - box(g)**2, 1e-6)) from the sums of the box's column means
    m = np.float32(m1 / 3)
    var = np.float32(m2 / 3) - m * m
    return np.sqrt(max(var, np.float32(1e-6)))


@njit(cache=True, nogil=True)
def _spread3_ratio(ga, gb, rows, cols):  # pragma: no cover - compiled
    """``local_spread_ratio(ga, gb, rows, cols, 3)``: off the window's edge by flat indices,
    the columns shared along a row kept in scalars; on it, the general kernel."""
    h, w = ga.shape
    n = rows.size
    out = np.empty(n, np.float32)
    fa, fb = ga.ravel(), gb.ravel()
    # column means of g and g * g: after (a) and before (b), columns 0, 1, 2
    a10 = a11 = a12 = a20 = a21 = a22 = 0.0
    b10 = b11 = b12 = b20 = b21 = b22 = 0.0
    pr, pc = -1, -1
    for i in range(n):
        r, c = rows[i], cols[i]
        if not (1 <= r < h - 1 and 1 <= c < w - 1):
            out[i] = _spread_ratio_any(ga, gb, rows[i : i + 1], cols[i : i + 1], 3)[0]
            pr = -1  # the next pixel starts afresh
            continue
        p = r * w + c
        if r == pr and c == pc + 1:
            # raster order: the pixel to the left shares all columns but the new right one
            a10, a11, a20, a21 = a11, a12, a21, a22
            b10, b11, b20, b21 = b11, b12, b21, b22
            u = np.uintp(p + 1)
            a12, a22 = _moments3(fa, u, w)
            b12, b22 = _moments3(fb, u, w)
        else:
            u = np.uintp(p - 1)
            a10, a20 = _moments3(fa, u, w)
            b10, b20 = _moments3(fb, u, w)
            u = np.uintp(p)
            a11, a21 = _moments3(fa, u, w)
            b11, b21 = _moments3(fb, u, w)
            u = np.uintp(p + 1)
            a12, a22 = _moments3(fa, u, w)
            b12, b22 = _moments3(fb, u, w)
        sd_a = _spread(0.0 + a10 + a11 + a12, 0.0 + a20 + a21 + a22)
        sd_b = _spread(0.0 + b10 + b11 + b12, 0.0 + b20 + b21 + b22)
        out[i] = sd_a / sd_b
        pr, pc = r, c
    return out


@njit(cache=True, nogil=True)
def local_spread_ratio(ga, gb, rows, cols, k):  # pragma: no cover - compiled
    """Per pixel (rows, cols), the ratio after / before of the local grey-level spread
    ``sqrt(max(box(g*g) - box(g)**2, 1e-6))`` over a ``k`` px box (float32, as
    ``rubble._RoadRoughness`` takes its logarithm)."""
    if k == 3:
        return _spread3_ratio(ga, gb, rows, cols)
    return _spread_ratio_any(ga, gb, rows, cols, k)


@njit(cache=True, nogil=True)
def _spread_ratio_any(ga, gb, rows, cols, k):  # pragma: no cover - compiled
    # ``local_spread_ratio`` of any box side, reflected indices
    h, w = ga.shape
    n = rows.size
    out = np.empty(n, np.float32)
    s1 = k // 2
    s2 = k - s1 - 1
    lo = np.float32(1e-6)
    sd = np.empty(2, np.float32)
    # per image (before, after) and column of the box: its means of g and g * g over the
    # rows axis, rounded to float32 as that axis' pass stores them
    q1 = np.empty((2, k), np.float64)
    q2 = np.empty((2, k), np.float64)
    pr, pc = -1, -1
    for i in range(n):
        r, c = rows[i], cols[i]
        # away from the edges no index needs reflecting (same sums, same order)
        inside = s1 <= r < h - s2 and s1 <= c < w - s2
        j0 = 0
        if inside and r == pr and c == pc + 1 and pc >= s1:
            # raster order: the pixel to the left shares all columns but the new right one
            for q in range(2):
                for j in range(k - 1):
                    q1[q, j], q2[q, j] = q1[q, j + 1], q2[q, j + 1]
            j0 = k - 1
        for q in range(2):
            g = gb if q == 0 else ga
            for j in range(j0, k):
                x = c + j - s1 if inside else _reflect(c + j - s1, w)
                c1 = 0.0
                c2 = 0.0
                for dr in range(-s1, s2 + 1):
                    v = g[r + dr if inside else _reflect(r + dr, h), x]
                    c1 += np.float64(v)
                    c2 += np.float64(v * v)
                q1[q, j] = np.float64(np.float32(c1 / k))
                q2[q, j] = np.float64(np.float32(c2 / k))
            a1 = 0.0
            a2 = 0.0
            for j in range(k):
                a1 += q1[q, j]
                a2 += q2[q, j]
            m = np.float32(a1 / k)
            var = np.float32(a2 / k) - m * m
            sd[q] = np.sqrt(max(var, lo))
        out[i] = sd[1] / sd[0]
        pr, pc = r, c
    return out
