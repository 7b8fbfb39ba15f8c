"""The crest of a berm's component: the longest shortest path through its skeleton.

``berm_grid._crest`` walks the skeleton as a graph of 8-connected pixels (edges of 1 and sqrt(2)
pixels): from a node of its largest connected part to the farthest node, then from there to
the farthest again. This module does it with compiled Dijkstra searches that visit, push and
break ties exactly as ``networkx`` (3.x) does on the graph that code built: the neighbours of
a pixel in the order its edges were added, the fringe ordered by (distance, push count), the
first farthest node in the order nodes were settled. So the same path comes back, without
building a Python graph. Pixel coordinates are the component crop's (row, column).
"""

from __future__ import annotations

import numba
import numpy as np

#: Offsets (row, col) to the neighbours a pixel links to, in the order the graph added them.
_FORWARD = np.array([(0, 1), (1, 0), (1, 1), (1, -1)], np.int64)
#: Their lengths, as ``float(np.hypot(dr, dc))`` gave the edge weights.
_LENGTH = np.array([float(np.hypot(dr, dc)) for dr, dc in _FORWARD], np.float64)


@numba.njit(cache=True, nogil=True)
def _adjacency(rr, cc, shape, fwd, length):  # pragma: no cover - compiled
    # CSR adjacency of the skeleton pixels (raster order): a node's neighbours before it in
    # raster order come first (their edges were added earlier), then those after it in the
    # order of ``fwd``: the insertion order of the graph's neighbour dicts.
    n = rr.size
    idx = np.full((shape[0], shape[1]), -1, np.int64)
    for i in range(n):
        idx[rr[i], cc[i]] = i
    deg = np.zeros(n + 1, np.int64)
    for i in range(n):
        for k in range(fwd.shape[0]):
            r, c = rr[i] + fwd[k, 0], cc[i] + fwd[k, 1]
            if 0 <= r < shape[0] and 0 <= c < shape[1] and idx[r, c] >= 0:
                deg[i + 1] += 1
                deg[idx[r, c] + 1] += 1
    for i in range(n):
        deg[i + 1] += deg[i]
    fill = deg[:n].copy()
    nbr = np.empty(deg[n], np.int64)
    wt = np.empty(deg[n], np.float64)
    for i in range(n):
        for k in range(fwd.shape[0]):
            r, c = rr[i] + fwd[k, 0], cc[i] + fwd[k, 1]
            if 0 <= r < shape[0] and 0 <= c < shape[1] and idx[r, c] >= 0:
                j = idx[r, c]
                nbr[fill[i]] = j
                wt[fill[i]] = length[k]
                fill[i] += 1
                nbr[fill[j]] = i
                wt[fill[j]] = length[k]
                fill[j] += 1
    return deg, nbr, wt


@numba.njit(cache=True, nogil=True)
def _largest_part(ptr, nbr):  # pragma: no cover - compiled
    # The first largest connected part (parts found from nodes in index order), as the
    # order its breadth-first search added its nodes (networkx's ``_plain_bfs``).
    n = ptr.size - 1
    seen = np.zeros(n, np.bool_)
    buf = np.empty(n, np.int64)
    best = np.empty(0, np.int64)
    for v in range(n):
        if seen[v]:
            continue
        buf[0] = v
        seen[v] = True
        top, head = 1, 0
        while head < top:
            x = buf[head]
            head += 1
            for e in range(ptr[x], ptr[x + 1]):
                u = nbr[e]
                if not seen[u]:
                    seen[u] = True
                    buf[top] = u
                    top += 1
        if top > best.size:
            best = buf[:top].copy()
    return best


@numba.njit(cache=True, nogil=True)
def _less(d1, c1, d2, c2):  # pragma: no cover - compiled
    return d1 < d2 or (d1 == d2 and c1 < c2)


@numba.njit(cache=True, nogil=True)
def _dijkstra(ptr, nbr, wt, source):  # pragma: no cover - compiled
    # networkx's ``_dijkstra_multisource`` from one source: the fringe is a heap of
    # (distance, push count, node), a node is pushed again only on a strictly shorter
    # distance, and its path is then its parent's plus itself. Returns the nodes in the
    # order they were settled, their distances, and each node's parent (-1 at the source).
    n = ptr.size - 1
    m = nbr.size + 1
    hd = np.empty(m, np.float64)
    hc = np.empty(m, np.int64)
    hv = np.empty(m, np.int64)
    seen = np.full(n, np.inf)
    done = np.zeros(n, np.bool_)
    dist = np.zeros(n, np.float64)
    parent = np.full(n, -1, np.int64)
    settled = np.empty(n, np.int64)
    ns = 0
    size = 0
    count = 0
    seen[source] = 0.0
    hd[0], hc[0], hv[0] = 0.0, count, source
    count += 1
    size = 1
    while size:
        d, v = hd[0], hv[0]
        # pop the root: the last item sifted down from the top
        size -= 1
        if size:
            ld, lc, lv = hd[size], hc[size], hv[size]
            i = 0
            while True:
                k = 2 * i + 1
                if k >= size:
                    break
                if k + 1 < size and _less(hd[k + 1], hc[k + 1], hd[k], hc[k]):
                    k += 1
                if _less(hd[k], hc[k], ld, lc):
                    hd[i], hc[i], hv[i] = hd[k], hc[k], hv[k]
                    i = k
                else:
                    break
            hd[i], hc[i], hv[i] = ld, lc, lv
        if done[v]:
            continue
        done[v] = True
        dist[v] = d
        settled[ns] = v
        ns += 1
        for e in range(ptr[v], ptr[v + 1]):
            u = nbr[e]
            vu = d + wt[e]
            if done[u]:
                continue
            if vu < seen[u]:
                seen[u] = vu
                parent[u] = v
                # push, sifting up
                i = size
                size += 1
                while i > 0:
                    p = (i - 1) // 2
                    if _less(vu, count, hd[p], hc[p]):
                        hd[i], hc[i], hv[i] = hd[p], hc[p], hv[p]
                        i = p
                    else:
                        break
                hd[i], hc[i], hv[i] = vu, count, u
                count += 1
    return settled[:ns], dist, parent


def crest_path(sk: np.ndarray) -> np.ndarray | None:
    """Longest path (rows, cols) through a skeleton, bool (rows, cols), as ``berm_grid._crest``
    found it with ``networkx``; None where the skeleton has under two pixels.

    Returns:
        int (n, 2) array of (row, col) along the path, crop pixels.
    """
    rr, cc = np.nonzero(sk)
    if len(rr) < 2:
        return None
    ptr, nbr, wt = _adjacency(rr, cc, np.array(sk.shape, np.int64), _FORWARD, _LENGTH)
    part = _largest_part(ptr, nbr)
    # the first node of the part as a Python set built in that order iterates it
    start = next(iter(set(part.tolist())))
    settled, dist, _ = _dijkstra(ptr, nbr, wt, start)
    a = int(settled[np.argmax(dist[settled])])
    settled, dist, parent = _dijkstra(ptr, nbr, wt, a)
    b = int(settled[np.argmax(dist[settled])])
    path = [b]
    while path[-1] != a:
        path.append(int(parent[path[-1]]))
    path = np.array(path[::-1], np.int64)
    return np.c_[rr[path], cc[path]]
