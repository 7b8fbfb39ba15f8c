"""Numba kernels of :mod:`fortmap.detect.roads_from_image`, each exact against its reference.

Split out to keep that module short. Every kernel gives the same numbers as the plain
numpy/scipy/networkx code it replaces (tests compare them); all work in pixel units.
"""

from __future__ import annotations

import math
from heapq import heappop, heappush
from itertools import count

import numba as nb
import numpy as np
from scipy import ndimage as ndi


@nb.njit(cache=True, nogil=True)
def _median3_insertion(x: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """3x3 median by insertion into a sorted prefix (the reference; handles NaN like before)."""
    h, w = x.shape
    out = np.empty_like(x)
    v = np.empty(9, x.dtype)
    for r in range(h):
        for c in range(w):
            k = 0
            for dr in range(-1, 2):
                rr = min(max(r + dr, 0), h - 1)
                for dc in range(-1, 2):
                    cc = min(max(c + dc, 0), w - 1)
                    val = x[rr, cc]
                    j = k
                    while j > 0 and v[j - 1] > val:
                        v[j] = v[j - 1]
                        j -= 1
                    v[j] = val
                    k += 1
            out[r, c] = v[4]
    return out


@nb.njit(cache=True, nogil=True, inline="always")
def _med(a, b, c):  # pragma: no cover - compiled
    return max(min(a, b), min(max(a, b), c))


@nb.njit(cache=True, nogil=True)
def _median3_columns(x: np.ndarray, out: np.ndarray) -> np.ndarray:  # pragma: no cover
    """3x3 median from sorted column triples, edges mirrored.

    With each column of the 3x3 neighbourhood sorted (lo <= mid <= hi), the median of the nine
    is the median of (max of the los, median of the mids, min of the his): exact for any
    ordered values, and each column triple is sorted once for the three pixels that share it.
    """
    h, w = x.shape
    lo = np.empty(w, x.dtype)
    mi = np.empty(w, x.dtype)
    hi = np.empty(w, x.dtype)
    for r in range(h):
        ru, rd = max(r - 1, 0), min(r + 1, h - 1)
        # the compare-exchanges as selects on the same comparisons (no branches, so the
        # loop vectorises): the same values, signed zeros included
        for c in range(w):
            a, b, d = x[ru, c], x[r, c], x[rd, c]
            sw = a > b
            a, b = (b if sw else a), (a if sw else b)
            sw = b > d
            b, d = (d if sw else b), (b if sw else d)
            sw = a > b
            lo[c], mi[c], hi[c] = (b if sw else a), (a if sw else b), d
        for c in range(w):
            cl, cr = max(c - 1, 0), min(c + 1, w - 1)
            m_lo = max(lo[cl], max(lo[c], lo[cr]))
            m_hi = min(hi[cl], min(hi[c], hi[cr]))
            m_mi = _med(mi[cl], mi[c], mi[cr])
            out[r, c] = _med(m_lo, m_mi, m_hi)
    return out


def median3(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """3x3 median of a float32 image, edges mirrored (same as scipy's ``median_filter(x, 3)``).

    Args:
        x: float32 (rows, cols).
        out: float32 (rows, cols) to write the result into (e.g. a band of a stack).

    Example:
        >>> x = np.zeros((5, 5), np.float32); x[2, 2] = 9.0
        >>> float(median3(x).max())
        0.0
    """
    x = np.ascontiguousarray(x)
    if out is None:
        out = np.empty_like(x)
    if x.size and np.isnan(x).any():
        # NaN has no order: keep the reference kernel's behaviour there
        out[...] = _median3_insertion(x)
        return out
    return _median3_columns(x, out)


@nb.njit(cache=True, nogil=True, inline="always")
def _line_on(mask, o, slope, t, across, x_major):  # pragma: no cover - compiled
    """Is the pixel at step ``t`` of line ``o`` (see :func:`open_along`) in ``mask``?"""
    m = int(math.floor(o + slope * t + 0.5))
    if 0 <= m < across:
        return mask[m, t] if x_major else mask[t, m]
    return False


@nb.njit(cache=True, nogil=True)
def open_along(  # pragma: no cover - compiled
    mask: np.ndarray, out: np.ndarray, n: int, slope: float, x_major: bool
) -> None:
    """OR into ``out`` the pixels of ``mask`` in runs of >= ``n`` along one family of lines.

    The lines are digital: along the major axis ``t`` the minor coordinate is
    ``round(o + slope * t)`` for every integer offset ``o``, so each pixel lies on exactly one
    line of the family, and a run is counted in steps of the major axis.

    A run of ``n`` starting anywhere in ``t .. t + n - 1`` covers step ``t + n - 1``, so where
    that step is off the walk jumps ``n`` steps at once; a run is only walked step by step
    once all its first ``n`` steps are known to be on. Most of a sparse mask is skipped.
    """
    h, w = mask.shape
    length, across = (w, h) if x_major else (h, w)
    lo = min(0, int(math.floor(-slope * (length - 1)))) - 1
    hi = across + max(0, int(math.ceil(-slope * (length - 1)))) + 1
    n = max(n, 1)
    for o in range(lo, hi):
        # the line is inside the image over one interval of t (m is monotonic in t); the
        # interval is widened by a pixel and each t still checked, so no pixel is missed
        if slope > 0:
            ta, tb = (-0.5 - o) / slope, (across - 0.5 - o) / slope
        elif slope < 0:
            ta, tb = (across - 0.5 - o) / slope, (-0.5 - o) / slope
        else:
            ta, tb = (0.0, float(length)) if 0 <= o < across else (1.0, 0.0)
        # clamped in floats first: a near-zero slope puts the ends out of int64's range
        t0 = int(math.floor(min(max(ta, -2.0), length + 2.0))) - 1
        t1 = int(math.ceil(min(max(tb, -2.0), length + 2.0))) + 2
        t0, t1 = max(0, t0), min(length, t1)
        # invariant: step t - 1 is off (or outside the walk); steps known + 1 .. up to the
        # last checked end are known to be on
        t = t0
        known = t - 1
        while t + n - 1 < t1:
            e = t + n - 1
            stop = max(known + 1, t)
            p = e
            while p >= stop and _line_on(mask, o, slope, p, across, x_major):
                p -= 1
            if p >= stop:
                # step p is off: no run of n starts at t .. p
                t = p + 1
                known = e
                continue
            # steps t .. e are all on: a run starts at t; walk to its end
            u = e + 1
            while u < t1 and _line_on(mask, o, slope, u, across, x_major):
                u += 1
            for v in range(t, u):
                m = int(math.floor(o + slope * v + 0.5))
                if x_major:
                    out[m, v] = True
                else:
                    out[v, m] = True
            t = u + 1
            known = t - 1


@nb.njit(cache=True, nogil=True)
def _flush(out, o, slope, bit, t0, t1):  # pragma: no cover - compiled
    for u in range(t0, t1):
        out[u, int(math.floor(o + slope * u + 0.5))] |= bit


#: de Bruijn table: the index of a 32-bit word's one set bit from one multiply and a lookup
_DEBRUIJN = np.array(
    [0, 1, 28, 2, 29, 14, 24, 3, 30, 22, 20, 15, 25, 17, 4, 8]
    + [31, 27, 13, 23, 21, 19, 16, 7, 26, 12, 18, 6, 11, 5, 10, 9],
    np.int64,
)


@nb.njit(cache=True, nogil=True, inline="always")
def _bit_index(b):  # pragma: no cover - compiled
    """Index of the one set bit of ``b`` (a power of two under 2**32)."""
    return _DEBRUIJN[((b * 0x077CB531) & 0xFFFFFFFF) >> 27]


@nb.njit(cache=True, nogil=True)
def open_packed(  # pragma: no cover - compiled
    a: np.ndarray, out: np.ndarray, n: int, slope: float
) -> None:
    """OR into ``out`` the bits of ``a`` in runs of >= ``n`` along one family of lines.

    ``a`` holds up to 32 masks as bits of uint32, laid out (major axis ``t``, minor axis
    ``m``); the line of offset ``o`` is ``m = round(o + slope * t)`` (the same expression as
    :func:`open_along`, so the same pixels). Rows of ``a`` are swept in order, every line
    crossing a row visited in turn, so memory is read contiguously, and a run is opened or
    closed only where a line's bits change: all masks cost about what one does.
    """
    length, across = a.shape
    o_min = int(math.floor(-max(slope, 0.0) * (length - 1))) - 3
    o_max = across + int(math.ceil(max(-slope, 0.0) * (length - 1))) + 3
    no = o_max - o_min + 1
    prev = np.zeros(no, np.int64)
    last = np.full(no, -2, np.int64)
    start = np.zeros((32, no), np.int64)  # (bit, line): a sweep reads it along rows
    # The rows a line crosses are consecutive (both ends of a row's range of lines move
    # monotonically with t), so a line's runs can only end where its bits change or where it
    # leaves the range: the row it left on is noted then, not on every visit.
    pa, pb = 1, 0  # the previous row's range of lines (none)
    for t in range(length):
        base = slope * t
        oa = max(o_min, int(math.floor(-base - 0.5)) - 2)
        ob = min(o_max, int(math.ceil(across - 0.5 - base)) + 2)
        for o in range(pa, min(pb, oa - 1) + 1):
            last[o - o_min] = t - 1
        for o in range(max(pa, ob + 1), pb + 1):
            last[o - o_min] = t - 1
        pa, pb = oa, ob
        # round(o + base) is o + round(base) unless base + 0.5 lies within rounding error of
        # an integer (errors here are below 1e-10 px): then each line's own float sum decides
        sh = base + 0.5
        shift = math.floor(sh)
        exact = 1e-6 < sh - shift < 1.0 - 1e-6
        ishift = int(shift)
        for o in range(oa, ob + 1):
            m = o + ishift if exact else int(math.floor(o + slope * t + 0.5))
            cur = np.int64(a[t, m]) if 0 <= m < across else np.int64(0)
            i = o - o_min
            p = prev[i]
            if cur != p:
                x = p & ~cur
                while x:
                    b = x & -x
                    k = _bit_index(b)
                    if t - start[k, i] >= n:
                        _flush(out, o, slope, np.uint32(b), start[k, i], t)
                    x ^= b
                x = cur & ~p
                while x:
                    b = x & -x
                    start[_bit_index(b), i] = t
                    x ^= b
                prev[i] = cur
    for o in range(pa, pb + 1):
        last[o - o_min] = length - 1
    for i in range(no):
        x = prev[i]
        while x:
            b = x & -x
            k = _bit_index(b)
            if last[i] + 1 - start[k, i] >= n:
                _flush(out, i + o_min, slope, np.uint32(b), start[k, i], last[i] + 1)
            x ^= b


@nb.njit(cache=True, nogil=True)
def _cross(x: np.ndarray, dilate: bool) -> np.ndarray:  # pragma: no cover - compiled
    """One dilation (OR) or erosion (AND) by the 3x3 cross, outside the array counting 0."""
    h, w = x.shape
    out = np.empty_like(x)
    for r in range(h):
        for c in range(w):
            up = x[r - 1, c] if r > 0 else 0
            dn = x[r + 1, c] if r < h - 1 else 0
            lf = x[r, c - 1] if c > 0 else 0
            rt = x[r, c + 1] if c < w - 1 else 0
            if dilate:
                out[r, c] = x[r, c] | up | dn | lf | rt
            else:
                out[r, c] = x[r, c] & up & dn & lf & rt
    return out


@nb.njit(cache=True, nogil=True)
def close_cross(x: np.ndarray, iterations: int) -> np.ndarray:  # pragma: no cover - compiled
    """Closing by the 3x3 cross: ``scipy.ndimage.binary_closing(x, iterations=...)``.

    Works bitwise, so an unsigned array closes every bit plane (one mask each) at once, and a
    bool array viewed as uint8 is one mask. Like scipy, both steps count the outside as 0, so
    the closing is False on the outermost ``iterations`` rows and columns.
    """
    d = x
    for _ in range(iterations):
        d = _cross(d, True)
    for _ in range(iterations):
        d = _cross(d, False)
    return d


@nb.njit(cache=True, nogil=True)
def nearest_centre(x: np.ndarray, cent: np.ndarray) -> np.ndarray:  # pragma: no cover
    """Index of the nearest centre of each row of ``x`` (float32 (n, 3) or (n, 1)).

    Squared differences summed in band order in float32, first minimum on ties: the same
    numbers as ``((x[:, None] - cent[None]) ** 2).sum(-1).argmin(1)`` in numpy. A pixel's
    distances to all centres are built band by band in a small buffer (loops the compiler
    vectorises across centres), then scanned for the first minimum.
    """
    n, nb_ = x.shape
    k = cent.shape[0]
    ct = np.ascontiguousarray(cent.T)
    lab = np.empty(n, np.int16)
    s = np.empty(k, np.float32)
    for i in range(n):
        x0 = x[i, 0]
        for j in range(k):
            d = x0 - ct[0, j]
            s[j] = d * d
        for q in range(1, nb_):
            xq = x[i, q]
            for j in range(k):
                d = xq - ct[q, j]
                s[j] = s[j] + d * d
        best = np.float32(np.inf)
        bi = 0
        for j in range(k):
            if s[j] < best:
                best = s[j]
                bi = j
        lab[i] = bi
    return lab


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
    t = max(0, math.floor(r * r) - 2)
    while not np.sqrt(np.float64(t)) > r:
        t += 1
    # int32 halves the memory traffic, which is most of the cost; any distance of t or more
    # is capped at t, so it holds every value whenever t does
    small = t + m.shape[1] ** 2 < 2**31 - 1  # every sum the row pass forms fits in int32
    g = np.empty(m.shape, np.int32 if small else np.int64)
    return _sq_edt_capped(m, t, g) >= t


@nb.njit(cache=True, nogil=True)
def simple_branches(body: np.ndarray, n: int):  # pragma: no cover - compiled
    """Order the pixels of every branch of a labelled skeleton that is a simple path.

    A branch (label 1..n, 8-connected) whose pixels all have at most two neighbours in it and
    exactly two of them one is a path: :func:`order_branch` gives the walk from its second end
    (in row-major order) to its first, which is what is returned here without a graph.

    Returns:
        (start (n + 1,) offsets into ``order`` per label, ``order`` (pixels, 2) row/col,
        ``simple`` bool (n,)); labels that are not simple paths get their pixels in
        row-major order, to be ordered by :func:`order_branch`.
    """
    h, w = body.shape
    count = np.zeros(n + 1, np.int64)
    for r in range(h):
        for c in range(w):
            count[body[r, c]] += 1
    start = np.zeros(n + 2, np.int64)
    for k in range(1, n + 1):
        start[k + 1] = start[k] + count[k]
    pix = np.empty((start[n + 1], 2), np.int64)
    deg = np.empty(start[n + 1], np.int64)
    fill = start.copy()
    ends = np.full((n + 1, 2), -1, np.int64)
    simple = np.ones(n + 1, np.bool_)
    nends = np.zeros(n + 1, np.int64)
    for r in range(h):
        for c in range(w):
            k = body[r, c]
            if k == 0:
                continue
            d = 0
            for a in range(-1, 2):
                for b in range(-1, 2):
                    if (a or b) and 0 <= r + a < h and 0 <= c + b < w and body[r + a, c + b] == k:
                        d += 1
            i = fill[k]
            fill[k] += 1
            pix[i, 0], pix[i, 1] = r, c
            deg[i] = d
            if d > 2 or d == 0:
                simple[k] = False
            elif d == 1:
                if nends[k] < 2:
                    ends[k, nends[k]] = i
                nends[k] += 1
    order = pix.copy()
    for k in range(1, n + 1):
        if count[k] == 1:
            simple[k] = True
            continue
        if not simple[k] or nends[k] != 2:
            simple[k] = False
            continue
        # walk from the second end; each pixel has one way on that is not the way back
        pr, pc = -1, -1
        r, c = pix[ends[k, 1], 0], pix[ends[k, 1], 1]
        for j in range(start[k], start[k + 1]):
            order[j, 0], order[j, 1] = r, c
            nr, nc = -1, -1
            for a in range(-1, 2):
                for b in range(-1, 2):
                    rr, cc = r + a, c + b
                    if (a or b) and 0 <= rr < h and 0 <= cc < w and body[rr, cc] == k:
                        if not (rr == pr and cc == pc):
                            nr, nc = rr, cc
            pr, pc, r, c = r, c, nr, nc
    return start[1:], order, simple[1:]


_NB8 = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]
_W = [math.hypot(a, b) for a, b in _NB8]


def _dijkstra(adj: dict, source) -> tuple[dict, dict]:
    """Distances (in order of settling) and predecessors from ``source``.

    The same heap keys, tie-breaking counter and neighbour order as networkx's
    ``_dijkstra_multisource``, so equal-length paths resolve as they did with networkx.
    """
    dist: dict = {}
    seen = {source: 0}
    pred: dict = {}
    c = count()
    fringe = [(0, next(c), source)]
    while fringe:
        d, _, v = heappop(fringe)
        if v in dist:
            continue
        dist[v] = d
        for u, cost in adj[v].items():
            vu = d + cost
            if u in dist:
                continue
            if u not in seen or vu < seen[u]:
                seen[u] = vu
                heappush(fringe, (vu, next(c), u))
                pred[u] = v
    return dist, pred


def _path(pred: dict, target) -> list:
    p = [target]
    while p[-1] in pred:
        p.append(pred[p[-1]])
    p.reverse()
    return p


def order_branch(pix: np.ndarray) -> list[tuple[int, int]]:
    """The pixels of one skeleton branch in order from one end to the other.

    Staircase corners give some pixels three neighbours, so a plain walk can stop early; the
    branch is instead the shortest 8-connected path between its two farthest-apart ends
    (the same path, ties included, as the networkx graph this replaces).
    """
    pts = [(int(r), int(c)) for r, c in pix]
    if len(pts) == 1:
        return pts
    pset = set(pts)
    # adjacency in networkx's insertion order: an edge enters both lists when the first of
    # its two pixels is visited
    adj: dict = {}
    for p in pts:
        ap = adj.setdefault(p, {})
        for (a, b), wt in zip(_NB8, _W, strict=True):
            q = (p[0] + a, p[1] + b)
            if q in pset:
                ap[q] = wt
                adj.setdefault(q, {})[p] = wt
    ends = [p for p in pts if len(adj[p]) == 1]
    if not ends:
        # a closed loop: open it between two neighbours and go the long way round
        p = pts[0]
        q = next(iter(adj[p]))
        del adj[p][q]
        del adj[q][p]
        dist, pred = _dijkstra(adj, p)
        return _path(pred, q)
    d, _ = _dijkstra(adj, ends[0])
    far = max(d, key=d.get)
    d2, pred = _dijkstra(adj, far)
    return _path(pred, max(d2, key=d2.get))
