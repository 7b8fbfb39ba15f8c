"""Ordering the pixels of skeleton branches (numba and plain Python, in pixels), the same
orders as the networkx graph code they replaced."""

from __future__ import annotations

import math
from heapq import heappop, heappush
from itertools import count

import numba as nb
import numpy as np

from fortmap.detect.fort_kernels import true_pixels
from fortmap.detect.label_kernels import find_root

#: Zhang-Suen's removal classes of the 256 neighbourhoods (bit 0 top-left, clockwise: top,
#: top-right, right, bottom-right, bottom, bottom-left, left): 1 is removed in the first
#: sub-iteration, 2 in the second, 3 in both (scikit-image's table, so the same skeleton).
_ZS_LUT = np.frombuffer(
    b"0001001300311013000000002020303300000000300000000000000020003022"
    b"0000000000000000000000000000000020000000200020003000000030003020"
    b"0031001300000001000000000000000131000000000000002000000000000000"
    b"2313001300000001000000000000000023010001000000003301000022002000",
    np.uint8,
) - ord("0")


@nb.njit(cache=True, nogil=True, inline="always")
def _zs_code(sk, p, ws):  # pragma: no cover - compiled
    return (
        sk[p - ws - 1]
        + 2 * sk[p - ws]
        + 4 * sk[p - ws + 1]
        + 8 * sk[p + 1]
        + 16 * sk[p + ws + 1]
        + 32 * sk[p + ws]
        + 64 * sk[p + ws - 1]
        + 128 * sk[p - 1]
    )


@nb.njit(cache=True, nogil=True)
def skeletonize_zhang(image: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """Zhang-Suen thinning of a bool (rows, cols) image: ``skimage.morphology.skeletonize``.

    The same parallel sub-iterations, removal table and stopping rule as scikit-image, so the
    same skeleton; but each sub-iteration tests only the pixels that can be removed (set
    pixels with a background neighbour: the table never removes a pixel whose eight
    neighbours are all set) instead of the whole image, so the cost follows the border.
    """
    h, w = image.shape
    ws = w + 2
    # a one-pixel frame of background, as scikit-image pads
    sk = np.zeros((h + 2) * ws, np.uint8)
    # bools are the bytes 0 and 1: rows copied as bytes, without a test a pixel
    img8 = np.ascontiguousarray(image).view(np.uint8)
    for r in range(h):
        sk[(r + 1) * ws + 1 : (r + 1) * ws + 1 + w] = img8[r]
    queued = np.zeros((h + 2) * ws, np.uint8)
    cand = np.empty(h * w + 1, np.int64)
    nc = 0
    # the set pixels in raster order (the frame is background), eight at a time: most
    # words of a road mask are all background
    n8 = sk.size // 8
    words = sk[: n8 * 8].view(np.uint64)
    for q in range(n8 + 1):
        if q < n8 and words[q] == 0:
            continue
        for p in range(q * 8, min(q * 8 + 8, sk.size)):
            if sk[p] and _zs_code(sk, p, ws) != 255:
                cand[nc] = p
                nc += 1
                queued[p] = 1
    rem = np.empty(h * w + 1, np.int64)
    removed = True
    while removed:
        removed = False
        for pass_num in range(2):
            # removals are decided on the state at the start of the sub-iteration; a pixel
            # the table never removes in its present neighbourhood leaves the candidates
            # until a neighbour is removed
            nr = 0
            k = 0
            for i in range(nc):
                p = cand[i]
                v = _ZS_LUT[_zs_code(sk, p, ws)]
                if v == 3 or (v == 1 and pass_num == 0) or (v == 2 and pass_num == 1):
                    rem[nr] = p
                    nr += 1
                    queued[p] = 0
                elif v != 0:
                    cand[k] = p
                    k += 1
                else:
                    queued[p] = 0
            nc = k
            if nr == 0:
                continue
            removed = True
            for i in range(nr):
                sk[rem[i]] = 0
            for i in range(nr):
                p = rem[i]
                for q in (
                    p - ws - 1,
                    p - ws,
                    p - ws + 1,
                    p - 1,
                    p + 1,
                    p + ws - 1,
                    p + ws,
                    p + ws + 1,
                ):
                    if sk[q] and not queued[q]:
                        queued[q] = 1
                        cand[nc] = q
                        nc += 1
    out = np.empty((h, w), np.uint8)
    for r in range(h):
        out[r] = sk[(r + 1) * ws + 1 : (r + 1) * ws + 1 + w]  # 0 or 1, as the bool bytes
    return out.view(np.bool_)


@nb.njit(cache=True, nogil=True)
def _order_branches(body, n, start, pix):  # pragma: no cover - compiled
    """:func:`simple_branches` given each label's pixels in row-major order, grouped by label
    (``pix[start[k]:start[k + 1]]`` for label k)."""
    h, w = body.shape
    deg = np.empty(pix.shape[0], np.int64)
    ends = np.full((n + 1, 2), -1, np.int64)
    simple = np.ones(n + 1, np.bool_)
    nends = np.zeros(n + 1, np.int64)
    for k in range(1, n + 1):
        for i in range(start[k], start[k + 1]):
            r, c = pix[i, 0], pix[i, 1]
            d = 0
            for a in range(-1, 2):
                for b in range(-1, 2):
                    if (a or b) and 0 <= r + a < h and 0 <= c + b < w and body[r + a, c + b] == k:
                        d += 1
            deg[i] = d
            if d > 2 or d == 0:
                simple[k] = False
            elif d == 1:
                if nends[k] < 2:
                    ends[k, nends[k]] = i
                nends[k] += 1
    order = pix.copy()
    for k in range(1, n + 1):
        if start[k + 1] - start[k] == 1:
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
    fill = start.copy()
    for r in range(h):
        for c in range(w):
            k = body[r, c]
            if k:
                pix[fill[k], 0], pix[fill[k], 1] = r, c
                fill[k] += 1
    return _order_branches(body, n, start, pix)


@nb.njit(cache=True, nogil=True)
def skeleton_branches(skel: np.ndarray):  # pragma: no cover - compiled
    """Node labels and ordered body branches of a skeleton (bool (rows, cols)), in one go.

    A skeleton pixel is a node (an end or a junction) unless exactly two of its eight
    neighbours are skeleton, outside the image counting as background; the rest is body. The
    same as ``ndi.label`` of the nodes and of the body (8-connected) and
    :func:`simple_branches` of the body labels, but only the skeleton's pixels are visited
    after one scan: provisional labels are joined through a union-find in row-major order,
    and the smallest provisional label of a component belongs to its first pixel in that
    order, so numbering the roots in order numbers the components as scipy does.

    Returns:
        (start, order, simple) as :func:`simple_branches` gives them, and the node labels
        (int32 (rows, cols)).
    """
    h, w = skel.shape
    # the skeleton's pixels in raster order, found eight at a time (a skeleton is sparse)
    idx = true_pixels(skel)
    n = idx.shape[0]
    prov = np.zeros((h, w), np.int32)
    parent = np.arange(n + 1)
    is_node = np.zeros(n + 1, np.bool_)
    rows = np.empty(n, np.int64)
    cols = np.empty(n, np.int64)
    k = 0
    nl = 0
    for i in range(n):
        r, c = idx[i] // w, idx[i] % w
        nb_ = -1
        for a in range(max(r - 1, 0), min(r + 2, h)):
            for b in range(max(c - 1, 0), min(c + 2, w)):
                nb_ += skel[a, b]
        node = nb_ != 2
        lab = 0
        # the neighbours already visited: the row above and the pixel to the left
        for a, b in ((r - 1, c - 1), (r - 1, c), (r - 1, c + 1), (r, c - 1)):
            if a >= 0 and 0 <= b < w and prov[a, b] > 0 and is_node[prov[a, b]] == node:
                q = find_root(parent, prov[a, b])
                if lab == 0:
                    lab = q
                elif q != lab:
                    parent[max(q, lab)] = min(q, lab)
                    lab = min(q, lab)
        if lab == 0:
            nl += 1
            lab = nl
            is_node[lab] = node
        prov[r, c] = lab
        rows[k], cols[k] = r, c
        k += 1
    final = np.zeros(nl + 1, np.int32)
    n_node = 0
    n_body = 0
    for i in range(1, nl + 1):
        if parent[i] == i:
            if is_node[i]:
                n_node += 1
                final[i] = n_node
            else:
                n_body += 1
                final[i] = n_body
    nodes = np.zeros((h, w), np.int32)
    count = np.zeros(n_body + 2, np.int64)
    for i in range(n):
        r, c = rows[i], cols[i]
        q = find_root(parent, prov[r, c])
        if is_node[q]:
            nodes[r, c] = final[q]
            prov[r, c] = 0
        else:
            prov[r, c] = final[q]
            count[final[q]] += 1
    body = prov
    start = np.zeros(n_body + 2, np.int64)
    for j in range(1, n_body + 1):
        start[j + 1] = start[j] + count[j]
    pix = np.empty((start[n_body + 1], 2), np.int64)
    fill = start.copy()
    for i in range(n):
        j = body[rows[i], cols[i]]
        if j:
            pix[fill[j], 0], pix[fill[j], 1] = rows[i], cols[i]
            fill[j] += 1
    st, order, simple = _order_branches(body, n_body, start, pix)
    return st, order, simple, nodes


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
