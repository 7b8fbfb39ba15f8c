"""Scene-wide statistics behind the change model's fit (:mod:`fortmap.detect.change`):
quantiles, medians, robust scales, Otsu splits, histogram-matching interpolation and the
colour-shift table.

Each function gives numpy's value (``np.percentile``, ``np.median``, ``np.interp``) bit for bit,
from cheaper selections or compiled loops; values are in the units of the data given.
"""

from __future__ import annotations

import numpy as np
from numba import njit


def percentiles(x: np.ndarray, qs: np.ndarray | float) -> np.ndarray:
    """``np.percentile(x, qs)`` (linear method, NaN-propagating) from one sort.

    numpy selects every requested quantile with its own partition pass; on the million-pixel
    scene samples one SIMD sort is an order of magnitude cheaper for the same values. Up to
    8 quantiles take one single-pivot partial sort each instead, which finds the same values.
    """
    x = np.asarray(x).ravel()
    q = np.asarray(qs, np.float64)
    if x.size == 0:
        return np.full(q.shape, np.nan)
    h = (x.size - 1) * q / 100.0
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, x.size - 1)
    if q.size <= 8:
        # a few quantiles: one single-pivot partial sort each (numpy's SIMD selection; a
        # partition with several pivots is slower than the whole sort), the next order
        # statistic being the smallest value above the pivot
        a = np.empty(q.shape, x.dtype)
        b = np.empty(q.shape, x.dtype)
        for i, k in enumerate(lo.ravel()):
            part = np.partition(x, k)
            # NaNs sort last: any NaN sits at the pivot or after it
            if i == 0 and np.isnan(part[k:].max()):
                return np.full(q.shape, np.nan)
            a.flat[i] = part[k]
            b.flat[i] = part[k + 1 :].min() if k + 1 < x.size else part[k]
    else:
        s = np.sort(x)
        if np.isnan(s[-1]):
            return np.full(q.shape, np.nan)
        a, b = s[lo], s[hi]
    t = h - lo
    d = b - a
    # numpy's lerp (difference in the input's precision, evaluated from the nearer end)
    return np.where(t >= 0.5, b - d * (1.0 - t), a + d * t).astype(np.float64)


def median(x: np.ndarray) -> float:
    """``np.median`` of all values (NaN if any is NaN), from partial sorts.

    Selecting the middle order statistic (and the largest value below it for an even count)
    gives numpy's value exactly, in a fraction of the time of a full sort.
    """
    s = np.asarray(x).ravel()
    n = s.size
    if n == 0:
        return float("nan")
    k = n // 2
    part = np.partition(s, k)
    if np.isnan(part[-1]) or np.isnan(part[k]):
        # partition puts NaNs last; any NaN makes the median NaN, as in numpy
        if np.isnan(s).any():
            return float("nan")
    if n % 2:
        return float(part[k])
    return 0.5 * (float(part[:k].max()) + float(part[k]))


def median_np(x: np.ndarray) -> np.floating:
    """``np.median`` of all values of a float array: the same value *and* type (a float32
    median stays float32), from one single-order-statistic partial sort.

    numpy's median selects two order statistics (and the NaN check) in one multi-pivot
    partition, several times slower than selecting one and taking the largest value below
    it; the two middle values are then averaged by ``np.mean`` as numpy does.
    """
    s = np.asarray(x).ravel()
    n = s.size
    if n == 0 or not np.issubdtype(s.dtype, np.floating):
        return np.median(s)
    k = n // 2
    part = np.partition(s, k)
    # NaNs sort last, so any NaN lies at k or after it; numpy's median is then NaN
    if np.isnan(part[k:].max()):
        return s.dtype.type(np.nan)
    if n % 2:
        return np.mean(part[k : k + 1])
    return np.mean(np.array([part[:k].max(), part[k]], dtype=s.dtype))


@njit(cache=True, nogil=True, error_model="numpy")
def _interp_sorted(x, xp, fp, nbuckets):  # pragma: no cover - compiled
    n = xp.size
    out = np.empty(x.size, np.float64)
    slopes = np.empty(n - 1, np.float64)
    for i in range(n - 1):
        slopes[i] = (fp[i + 1] - fp[i]) / (xp[i + 1] - xp[i])
    # Bucket index -> a segment at or below it, so each value needs a step or two of search
    # instead of a mispredicted binary search.
    x0 = xp[0]
    span = xp[n - 1] - x0
    scale = nbuckets / span if span > 0 else 0.0
    start = np.empty(nbuckets + 1, np.int64)
    j = 0
    for b in range(nbuckets + 1):
        edge = x0 + b / scale if scale > 0 else x0
        while j < n - 2 and xp[j + 1] <= edge:
            j += 1
        start[b] = j
    for i in range(x.size):
        v = np.float64(x[i])
        if np.isnan(v):
            out[i] = v
        elif v < x0:
            out[i] = fp[0]
        elif v >= xp[n - 1]:
            out[i] = fp[n - 1]
        else:
            b = min(max(int((v - x0) * scale) - 1, 0), nbuckets)
            j = start[b]
            while j > 0 and xp[j] > v:
                j -= 1
            while j < n - 2 and xp[j + 1] <= v:
                j += 1
            if xp[j] == v:
                out[i] = fp[j]
            else:
                r = slopes[j] * (v - xp[j]) + fp[j]
                if np.isnan(r):
                    # numpy's fallbacks for a near-vertical segment
                    r = slopes[j] * (v - xp[j + 1]) + fp[j + 1]
                    if np.isnan(r) and fp[j] == fp[j + 1]:
                        r = fp[j]
                out[i] = r
    return out


def interp_sorted(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """``np.interp(x, xp, fp)`` (float64, bit for bit) for increasing ``xp`` of a few hundred
    points at most, several times faster on million-value arrays."""
    xp = np.ascontiguousarray(xp, np.float64)
    fp = np.ascontiguousarray(fp, np.float64)
    if xp.size < 2:
        return np.interp(x, xp, fp)
    # 64 buckets a knot: quantile knots crowd where the values do, and coarser buckets leave
    # a walk of several mispredicted steps there (twice the time on a scene sample); the walk
    # ends on the same segment from any start, so the values do not change
    x1 = np.ascontiguousarray(x).ravel()
    return _interp_sorted(x1, xp, fp, 64 * xp.size).reshape(np.shape(x))


def mad_sigma(x: np.ndarray) -> float:
    """Robust sigma of a signed difference: 1.4826 x median absolute deviation."""
    x = x.ravel()
    if x.size == 0:
        return 1e-3
    return max(1.4826 * median(np.abs(x - median(x))), 1e-4)


def otsu(x: np.ndarray, bins: int = 256) -> float:
    """Otsu split of values in 0..1."""
    hist, edges = np.histogram(x, bins=bins, range=(0.0, 1.0))
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centers)
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(centers[int(np.argmax(between))])


def colour_bins(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, n: int) -> np.ndarray:
    """Flat index of each pixel's cell in an n**bands grid over [lo, hi] per band."""
    idx = np.zeros(x.shape[1:], np.int64)
    for k in range(x.shape[0]):
        q = ((x[k] - lo[k]) * (n / max(hi[k] - lo[k], 1e-6))).astype(np.int64)
        idx = idx * n + np.clip(q, 0, n - 1)
    return idx


def fit_colour_shift(
    before: np.ndarray, after: np.ndarray, valid: np.ndarray, n: int, min_count: int = 20
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected (after - before) per band as a function of the before colour (a lookup table).

    Per-band histogram matching cannot undo changes that depend on the material: haze lifts
    dark surfaces more than bright ones in relative terms, seasons turn soil and grass another
    colour while roofs stay put. Conditioning on the before colour (a coarse colour-cube
    table, fitted on the scene itself, where most pixels are unchanged) predicts those shifts;
    cells with fewer than ``min_count`` pixels predict no shift.

    Returns:
        (lo, hi, table): per-band range of the cube and the table, (bands, n**bands) float32.
    """
    nb = before.shape[0]
    b = before[:, valid]
    d = after[:, valid] - b
    lo = np.array([percentiles(bk, 0.5) for bk in b], np.float32)
    hi = np.array([percentiles(bk, 99.5) for bk in b], np.float32)
    idx = colour_bins(b[:, :, None], lo, hi, n)[:, 0]
    cells = n**nb
    cnt = np.bincount(idx, minlength=cells)
    table = np.zeros((nb, cells), np.float32)
    # Median per cell (robust to the few changed pixels): sort once by cell, split.
    order = np.argsort(idx, kind="stable")
    starts = np.concatenate([[0], np.cumsum(cnt)])
    cells_kept = np.flatnonzero(cnt >= min_count)
    cell_sorted = idx[order]
    for k in range(nb):
        dk = d[k][order]
        med = _segment_medians32(dk, cell_sorted, starts, cells_kept)
        if med is not None:
            table[k, cells_kept] = med
            continue
        for c in cells_kept:
            table[k, c] = np.median(dk[starts[c] : starts[c + 1]])
    return lo, hi, table


def _segment_medians32(
    x: np.ndarray, cell: np.ndarray, starts: np.ndarray, cells: np.ndarray
) -> np.ndarray | None:
    """``np.median`` of each cell's run ``x[starts[c]:starts[c + 1]]`` (float32, runs in cell
    order, ``cell`` the cell of each value) for the cells ``cells``; None where not float32
    or holding a NaN or a -0.0 (numpy's answer there depends on which equal value it picks).

    One sort of (cell, value) keys replaces a numpy median call per cell, whose overhead
    dominated: float32 bits mapped to unsigned integers of the same order, below the cell.
    Two middle values are averaged as numpy's mean does for float32 (sum rounded to float32,
    halved).
    """
    if x.dtype != np.float32 or np.isnan(x).any() or (np.signbit(x) & (x == 0)).any():
        return None
    u = x.view(np.uint32).astype(np.uint64)
    neg = u >= 0x80000000
    u = np.where(neg, u ^ 0xFFFFFFFF, u | 0x80000000)
    key = np.sort((cell.astype(np.uint64) << np.uint64(32)) | u)
    v = key & np.uint64(0xFFFFFFFF)
    v = np.where(v >= 0x80000000, v ^ 0x80000000, v ^ 0xFFFFFFFF).astype(np.uint32)
    vals = v.view(np.float32)
    n = starts[cells + 1] - starts[cells]
    mid = starts[cells] + n // 2
    hi = vals[mid]
    lo = vals[np.where(n % 2 == 1, mid, mid - 1)]
    even = (lo + hi) / np.float32(2.0)
    return np.where(n % 2 == 1, hi, even).astype(np.float32)
