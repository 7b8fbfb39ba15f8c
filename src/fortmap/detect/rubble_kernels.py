"""Per-pixel measures of the rubble detector, evaluated at chosen pixels only: compiled
kernels and the two road-relative roughness measures built on them."""

from __future__ import annotations

import threading

import numpy as np
from numba import njit
from scipy import ndimage as ndi

from fortmap.detect import fort_kernels as K
from fortmap.detect.fort_kernels import _reflect
from fortmap.detect.order_stats import median_f32, median_sigma
from fortmap.detect.road_pixels import RoadWindow


@njit(cache=True, nogil=True)
def _box(g, r, c, h, w, k):  # pragma: no cover - compiled
    a = 0.0
    s1 = k // 2
    for dr in range(-s1, k - s1):
        y = _reflect(r + dr, h)
        for dc in range(-s1, k - s1):
            a += np.float64(g[y, _reflect(c + dc, w)])
    return a / (k * k)


@njit(cache=True, nogil=True)
def _residual_inside(g, r, c, k, lo, patch):  # pragma: no cover - compiled
    # ``residual_level``'s two values at a pixel whose boxes all lie inside ``g``. The box
    # sums are taken five boxes of a row at a time in scalars, each over its own terms in
    # the order ``_box`` adds them (rows, then columns): the same float64 sums, but five
    # independent chains the processor overlaps, not one chain of k**4 additions.
    s1 = k // 2
    m = patch.shape[0]
    for i in range(m):
        for j in range(m):
            patch[i, j] = np.float64(g[r - lo + i, c - lo + j])
    kk = np.float64(k * k)
    b0 = lo - 2 * s1  # patch offset of the first box's first row and column
    a = 0.0
    for by in range(k):
        cy = b0 + s1 + by
        for bx in range(0, k, 5):
            a0 = a1 = a2 = a3 = a4 = 0.0
            for i in range(k):
                y = b0 + by + i
                for j in range(k):
                    # columns past the last box read the patch's zero padding
                    x = b0 + bx + j
                    a0 += patch[y, x]
                    a1 += patch[y, x + 1]
                    a2 += patch[y, x + 2]
                    a3 += patch[y, x + 3]
                    a4 += patch[y, x + 4]
            cx = b0 + s1 + bx
            a += abs(patch[cy, cx] - a0 / kk)
            if bx + 1 < k:
                a += abs(patch[cy, cx + 1] - a1 / kk)
            if bx + 2 < k:
                a += abs(patch[cy, cx + 2] - a2 / kk)
            if bx + 3 < k:
                a += abs(patch[cy, cx + 3] - a3 / kk)
            if bx + 4 < k:
                a += abs(patch[cy, cx + 4] - a4 / kk)
    t1 = (k + 2) // 2
    v = 0.0
    for dr in range(-t1, k + 2 - t1):
        for dc in range(-t1, k + 2 - t1):
            v += patch[lo + dr, lo + dc]
    return a / kk, v / ((k + 2) * (k + 2))


@njit(cache=True, nogil=True)
def _residual_inside5(g, r, c, patch):  # pragma: no cover - compiled
    # ``_residual_inside`` for k = 5 (the 2.5 m boxes at 0.5 m), with constant loop bounds
    # the compiler unrolls: the same sums in the same order, a third of the time again
    for i in range(9):
        for j in range(9):
            patch[i, j] = np.float64(g[r - 4 + i, c - 4 + j])
    a = 0.0
    for by in range(5):
        a0 = a1 = a2 = a3 = a4 = 0.0
        for i in range(5):
            y = by + i
            for j in range(5):
                a0 += patch[y, j]
                a1 += patch[y, j + 1]
                a2 += patch[y, j + 2]
                a3 += patch[y, j + 3]
                a4 += patch[y, j + 4]
        cy = by + 2
        a += abs(patch[cy, 2] - a0 / 25.0)
        a += abs(patch[cy, 3] - a1 / 25.0)
        a += abs(patch[cy, 4] - a2 / 25.0)
        a += abs(patch[cy, 5] - a3 / 25.0)
        a += abs(patch[cy, 6] - a4 / 25.0)
    v = 0.0
    for i in range(1, 8):
        for j in range(1, 8):
            v += patch[i, j]
    return a / 25.0, v / 49.0


@njit(cache=True, nogil=True)
def residual_level(g, rows, cols, k=3):  # pragma: no cover - compiled
    """Per pixel (rows, cols) of ``g``: the mean absolute high-pass residual
    ``|g - box_k(g)|`` over the ``k`` x ``k`` box around it, and the mean level of the
    ``k + 2`` box around it (two float32 arrays, grey units).

    The residual of a box mean vanishes on any plane, so a smooth slope (the flank of a
    mound, a gradual shading) leaves none, whereas broken material of mixed albedo leaves much.
    """
    h, w = g.shape
    n = rows.size
    res = np.empty(n, np.float32)
    lev = np.empty(n, np.float32)
    s1 = k // 2
    # reach of the boxes around the box's pixels, and of the level's box, below and above
    lo = max(2 * s1, (k + 2) // 2)
    hi = max(2 * (k - s1 - 1), k + 1 - (k + 2) // 2)
    # the pixels every box reads, with four columns of padding for the last group of five
    patch = np.zeros((lo + hi + 1, lo + hi + 5), np.float64)
    for i in range(n):
        r, c = rows[i], cols[i]
        if lo <= r < h - hi and lo <= c < w - hi:
            if k == 5:
                a, v = _residual_inside5(g, r, c, patch)
            else:
                a, v = _residual_inside(g, r, c, k, lo, patch)
            res[i] = a
            lev[i] = v
            continue
        a = 0.0
        for dr in range(-s1, k - s1):
            y = _reflect(r + dr, h)
            for dc in range(-s1, k - s1):
                x = _reflect(c + dc, w)
                a += abs(np.float64(g[y, x]) - _box(g, y, x, h, w, k))
        res[i] = a / (k * k)
        lev[i] = _box(g, r, c, h, w, k + 2)
    return res, lev


def relative_roughness(g: np.ndarray, rows: np.ndarray, cols: np.ndarray, k: int = 3) -> np.ndarray:
    """Per pixel (rows, cols) of ``g``, the natural log of ``residual_level``'s residual over
    its level (floored at 1e-3 grey): dividing by the local level makes the measure indifferent
    to how strongly a textured surface is lit (a surface leaving a shadow brightens its texture
    and its level alike)."""
    res, lev = residual_level(g, rows, cols, k)
    return np.log(res / np.maximum(lev, 1e-3) + 1e-4).astype(np.float32)


class RoadRoughness:
    """Log ratio of the local grey-level spread (``size`` px box) after / before, less its
    median over the window's road pixels with data; measured at chosen pixels only.

    Debris is broken material: it is rougher than the asphalt it covers at any illumination,
    whereas a road leaving a shadow or a sun change brightens smoothly. The two dates differ
    in blur and noise, which scales every pixel's spread alike: taking off the road's median
    ratio (an in-scene statistic: most road is unchanged) leaves the change in texture itself.
    """

    def __init__(self, rw: RoadWindow, size: int = 3) -> None:
        self.rw, self.size = rw, size
        r = np.log(K.local_spread_ratio(rw.ga, rw.gb, rw.rows, rw.cols, size))
        self.offset = float(median_f32(r)) if rw.rows.size >= 50 else 0.0

    def at(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        r = np.log(K.local_spread_ratio(self.rw.ga, self.rw.gb, rows, cols, self.size))
        return r - self.offset if self.rw.rows.size >= 50 else r


#: Stride over a window's carriageway pixels for the road's own relative roughness: the median
#: of every 16th (some 15,000 in a 1024 px window) gave the same findings on the dev scenes as
#: every 4th, whose median matched the full one to 0.002.
_REF_STRIDE = 16


class RelativeRoughness:
    """Relative roughness (``relative_roughness`` over ``size`` px boxes: the
    local high-pass residual over the local level, natural log) of a pile against its road's.

    Unlike ``_RoadRoughness`` it ignores illumination, which scales texture and level alike,
    and smooth slopes, which leave no residual: what remains is the surface's own
    small-scale contrast, high for broken debris of mixed albedo with its small shadows. The
    road's level is the median over the window's carriageway pixels (an in-scene statistic:
    most road is unchanged), taken separately in the after image and for the change.
    """

    def __init__(self, rw: RoadWindow, size: int) -> None:
        self.rw, self.size = rw, size
        r, c = rw.rows[rw.ref][::_REF_STRIDE], rw.cols[rw.ref][::_REF_STRIDE]
        ra = relative_roughness(rw.ga, r, c, size)
        rb = relative_roughness(rw.gb, r, c, size)
        ok = r.size >= 50
        self.after = float(np.median(ra)) if ok else 0.0
        self.change = float(np.median(ra - rb)) if ok else 0.0

    def at(
        self, rows: np.ndarray, cols: np.ndarray, change_on: np.ndarray | None = None
    ) -> tuple[float, float]:
        """(after, change) excess of the median over pixels (rows, cols) over the road's; the
        change over the pixels where ``change_on`` (bool per pixel) is True, when given."""
        ra = relative_roughness(self.rw.ga, rows, cols, self.size)
        rb = relative_roughness(self.rw.gb, rows, cols, self.size)
        d = ra - rb if change_on is None else (ra - rb)[change_on]
        return float(np.median(ra)) - self.after, float(np.median(d)) - self.change


def shared_relative_roughness(rw: RoadWindow, size: int) -> RelativeRoughness:
    """``RelativeRoughness(rw, size)``, built once per window and kept in ``rw``: the window's
    rubble detectors (the image's and the DSMs') read the same road level."""
    return rw.cached(("relative_roughness", size), lambda: RelativeRoughness(rw, size))


@njit(cache=True, nogil=True)
def box_change(ga, gb, off, k):  # pragma: no cover - compiled
    """``uniform_filter(ga - gb, k)`` (float32 2-D, mode reflect) over the whole window, and
    its values on the ``off`` pixels in raster order (as ``d[off]``), in one pass.

    The change is taken pixel by pixel in float32, as numpy's subtraction does; the box sums
    follow ``fort_kernels.box_at`` (rows axis, then columns, each rounded to float32). Each
    pass runs along whole rows so that the compiler vectorises it.
    """
    h, w = ga.shape
    s1 = k // 2
    s2 = k - s1 - 1
    d = np.empty((h, w), np.float32)
    vals = np.empty(h * w + 1, np.float32)
    col = np.empty(w, np.float64)
    buf = np.empty(w + k, np.float64)
    n = 0
    for r in range(h):
        col[:] = 0.0
        for dr in range(-s1, s2 + 1):
            y = _reflect(r + dr, h)
            for x in range(w):
                col[x] += np.float64(ga[y, x] - gb[y, x])
        # the row of column means, padded by reflection for the pass along the row
        for x in range(w):
            buf[x + s1] = np.float32(col[x] / k)
        for x in range(s1):
            buf[x] = buf[_reflect(x - s1, w) + s1]
        for x in range(w + s1, w + k - 1):
            buf[x] = buf[_reflect(x - s1, w) + s1]
        col[:] = 0.0
        for dc in range(k):
            for x in range(w):
                col[x] += buf[x + dc]
        for x in range(w):
            d[r, x] = np.float32(col[x] / k)
            # branch-free gather: the slot is overwritten unless the pixel is off road
            vals[n] = d[r, x]
            n += off[r, x]
    return d, vals[:n]


@njit(cache=True, nogil=True)
def box_change_values(ga, gb, off, k, out):  # pragma: no cover - compiled
    """``box_change(ga, gb, off, k)[1]`` written into ``out`` (float32, ``h * w + 1`` long at
    least); returns how many values it holds.

    The same sums in the same order, but no whole-window array is written: each row of the
    change is taken once into a ring of ``k`` rows and the smoothed row into a scratch row,
    so only the caller's (reused) ``out`` is touched. A fresh 5 MB array per window cost
    more in first-touch page faults than the arithmetic itself.
    """
    h, w = ga.shape
    s1 = k // 2
    s2 = k - s1 - 1
    ring = np.empty((k, w), np.float32)
    tag = np.full(k, -1, np.int64)
    col = np.empty(w, np.float64)
    buf = np.empty(w + k, np.float64)
    row = np.empty(w, np.float32)
    n = 0
    for r in range(h):
        # the rows a box reads span k consecutive rows (reflected): distinct slots mod k
        for dr in range(-s1, s2 + 1):
            y = _reflect(r + dr, h)
            s = y % k
            if tag[s] != y:
                tag[s] = y
                a, b, q = ga[y], gb[y], ring[s]
                for x in range(w):
                    q[x] = a[x] - b[x]
        col[:] = 0.0
        for dr in range(-s1, s2 + 1):
            q = ring[_reflect(r + dr, h) % k]
            for x in range(w):
                col[x] += np.float64(q[x])
        for x in range(w):
            buf[x + s1] = np.float32(col[x] / k)
        for x in range(s1):
            buf[x] = buf[_reflect(x - s1, w) + s1]
        for x in range(w + s1, w + k - 1):
            buf[x] = buf[_reflect(x - s1, w) + s1]
        col[:] = 0.0
        for dc in range(k):
            for x in range(w):
                col[x] += buf[x + dc]
        for x in range(w):
            row[x] = np.float32(col[x] / k)
        o = off[r]
        for x in range(w):
            # branch-free gather: the slot is overwritten unless the pixel is off road
            out[n] = row[x]
            n += o[x]
    return n


@njit(cache=True, nogil=True)
def box_change_at(ga, gb, rows, cols, k):  # pragma: no cover - compiled
    """``box_change(ga, gb, off, k)[0]`` at the pixels (rows, cols) only (float32): per
    column of the box its float64 sum over the rows axis rounded to a float32 mean, then
    those means summed along the row, as the whole-window passes take them."""
    h, w = ga.shape
    s1 = k // 2
    s2 = k - s1 - 1
    out = np.empty(rows.size, np.float32)
    for i in range(rows.size):
        r, c = rows[i], cols[i]
        a = 0.0
        for dc in range(-s1, s2 + 1):
            x = _reflect(c + dc, w)
            cs = 0.0
            for dr in range(-s1, s2 + 1):
                y = _reflect(r + dr, h)
                cs += np.float64(ga[y, x] - gb[y, x])
            a += np.float64(np.float32(cs / k))
        out[i] = np.float32(a / k)
    return out


#: Per thread, a float32 buffer the off-road values of a window are gathered into, reused
#: from window to window (its pages stay mapped; see ``box_change_values``).
_SCRATCH = threading.local()


def _scratch(n: int) -> np.ndarray:
    buf = getattr(_SCRATCH, "buf", None)
    if buf is None or buf.size < n:
        buf = np.empty(n, np.float32)
        _SCRATCH.buf = buf
    return buf


class OffRoadChange:
    """Absolute after-minus-before grey change off the road, box-smoothed, in robust standard
    deviations of that change over the window's off-road pixels (an in-scene statistic);
    read at the pixels indexed (``z[rows, cols]``) as the whole-window array
    ``|d - median| / sigma`` would be, 0 everywhere where the window has under 50 off-road
    pixels. Only the ring of ground around a pile is read, so the smoothed change and the
    division are computed there only.

    Args:
        diff: float32 (rows, cols) grey change, after minus before; or, with ``before``, the
            after grey level (the change is then taken in the smoothing pass, the same values).
        off: bool (rows, cols): off-road pixels with data.
        smooth: box side (pixels).
        before: float32 (rows, cols) before grey level, or None.
    """

    def __init__(
        self, diff: np.ndarray, off: np.ndarray, smooth: int, before: np.ndarray | None = None
    ) -> None:
        self._d: np.ndarray | None = None
        self._pair: tuple[np.ndarray, np.ndarray] | None = None
        self.smooth = smooth
        if diff.dtype == np.float32 and (before is None or before.dtype == np.float32):
            before = np.zeros_like(diff) if before is None else before
            ga, gb = np.ascontiguousarray(diff), np.ascontiguousarray(before)
            self._pair = (ga, gb)
            buf = _scratch(ga.size + 1)
            n = box_change_values(ga, gb, np.ascontiguousarray(off), smooth, buf)
            x = buf[:n]
        else:
            self._d = ndi.uniform_filter(diff if before is None else diff - before, smooth)
            x = self._d[off]
        self.med, self.sigma = median_sigma(x, 1e-3) if x.size >= 50 else (None, 1.0)

    @property
    def d(self) -> np.ndarray:
        """The smoothed change over the whole window (float32 (rows, cols)), made on demand."""
        if self._d is None:
            ga, gb = self._pair
            self._d = box_change(ga, gb, np.zeros(ga.shape, np.bool_), self.smooth)[0]
        return self._d

    def __getitem__(self, idx: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        if self._d is not None:
            v = self._d[idx]
        else:
            ys, xs = np.broadcast_arrays(*(np.asarray(i, np.int64) for i in idx))
            v = box_change_at(*self._pair, ys.ravel(), xs.ravel(), self.smooth).reshape(ys.shape)
        return np.zeros_like(v) if self.med is None else np.abs(v - self.med) / self.sigma


def free_width_px(across: np.ndarray, width_px: float) -> int:
    """Widest strip (pixels) of a carriageway ``width_px`` wide that none of ``across`` (the
    signed across-road offsets, pixels, of what lies on it) covers, in 1 px bins."""
    edges = np.arange(np.floor(-width_px / 2), np.ceil(width_px / 2) + 1)
    hit = np.histogram(across, bins=edges)[0] > 0
    free = run = 0
    for h in hit:
        run = 0 if h else run + 1
        free = max(free, run)
    return free
