"""Road centre lines of a road-surface mask: skeleton, graph, spur pruning, widths
(see :mod:`fortmap.detect.roads_from_image`, step 3).

Works on the overview grid (pixels) and returns lines in the grid's CRS units (metres).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from affine import Affine

from fortmap.detect.edt_kernels import edt_at
from fortmap.detect.line_kernels import points_at_steps
from fortmap.detect.road_corridors import fill_small_holes
from fortmap.detect.selection_kernels import segment_medians
from fortmap.detect.skeleton_kernels import order_branch, skeleton_branches, skeletonize_zhang

#: Dead-end branches shorter than this are skeleton spurs (a junction's corners, a driveway).
MIN_SPUR_M = 20.0


_NB8 = np.array([(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)])


def _skeleton_graph(skel: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut a skeleton at its junctions and ends: pixel paths (row, col) between nodes.

    Returns (the paths' pixels int64 (pixels, 2) one path after another, each path's length,
    node labels); each path starts and ends at a node pixel when it has one.
    """
    start, flat, simple, nodes = skeleton_branches(np.ascontiguousarray(skel, bool))
    nbody = len(simple)
    lens = np.diff(start)
    if not simple.all():
        paths = [flat[start[i] : start[i + 1]] for i in range(nbody)]
        for i in np.flatnonzero(~simple):
            # staircase corners: the shortest path between the branch's far ends
            paths[i] = np.array(order_branch(paths[i]), np.int64).reshape(-1, 2)
        flat, lens = np.concatenate(paths), _lens(paths)
    if not nbody:
        return np.zeros((0, 2), np.int64), lens, nodes
    h, w = skel.shape
    first = np.cumsum(lens) - lens
    found, at = [], []
    for ends in (flat[first], flat[first + lens - 1]):
        # the first node pixel among each end's 8 neighbours, in _NB8's order
        q = ends[:, None, :] + _NB8[None]
        inside = (q[..., 0] >= 0) & (q[..., 0] < h) & (q[..., 1] >= 0) & (q[..., 1] < w)
        lab = np.where(inside, nodes[q[..., 0].clip(0, h - 1), q[..., 1].clip(0, w - 1)], 0)
        hit = lab > 0
        found.append(hit.any(1))
        at.append(q[np.arange(len(q)), hit.argmax(1)])
    (has0, has1), (n0, n1) = found, at
    # as list.insert(0, n0) then list.insert(len before either insert, n1): with both, n1
    # lands before the last pixel
    new_lens = lens + has0 + has1
    new_first = np.cumsum(new_lens) - new_lens
    out = np.empty((int(new_lens.sum()), 2), np.int64)
    k = np.arange(len(flat)) - np.repeat(first, lens)
    last = k == np.repeat(lens - 1, lens)
    shift = np.repeat(has0.astype(np.int64), lens) + (last & np.repeat(has0 & has1, lens))
    out[np.repeat(new_first, lens) + k + shift] = flat
    out[new_first[has0]] = n0[has0]
    out[(new_first + lens)[has1]] = n1[has1]
    return out, new_lens, nodes


def _keep(flat: np.ndarray, lens: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The paths (pixels one after another, lengths) where ``keep`` is True."""
    return flat[np.repeat(keep, lens)], lens[keep]


def _prune(
    flat: np.ndarray, lens: np.ndarray, nodes: np.ndarray, min_px: float
) -> tuple[np.ndarray, np.ndarray]:
    """Drop dead-end paths shorter than ``min_px`` (twice: spurs on spurs)."""
    for _ in range(2):
        if not len(lens):
            break
        first = np.cumsum(lens) - lens
        a = nodes[flat[first, 0], flat[first, 1]].astype(np.int64)
        b = nodes[flat[first + lens - 1, 0], flat[first + lens - 1, 1]].astype(np.int64)
        # a node's degree counts every path end on it (a loop's two ends count twice)
        deg = np.bincount(np.concatenate([a, b]))
        dead = (a == 0) | (deg[a] == 1) | (b == 0) | (deg[b] == 1)
        drop = dead & (lens < min_px)
        if not drop.any():
            break
        flat, lens = _keep(flat, lens, ~drop)
    return flat, lens


def centrelines(mask: np.ndarray, transform: Affine, pixel_m: float) -> gpd.GeoDataFrame:
    """Road centre lines of a road-surface mask, with widths.

    Args:
        mask: bool (rows, cols) road surface.
        transform: affine of the mask's grid (pixel -> CRS metres).
        pixel_m: metres per pixel.

    Returns:
        Frame with ``width_m`` (metres) and LineString geometry in the transform's CRS units
        (no CRS set).
    """
    if not mask.any():
        return gpd.GeoDataFrame({"width_m": []}, geometry=[])
    mask = fill_small_holes(mask, pixel_m)
    skel = skeletonize_zhang(np.ascontiguousarray(mask, bool))
    flat, lens, nodes = _skeleton_graph(skel)
    flat, lens = _prune(flat, lens, nodes, MIN_SPUR_M / pixel_m)
    flat, lens = _keep(flat, lens, lens >= 2)
    merged = None
    if len(lens):
        # pixel centres (col + 0.5, row + 0.5)
        xy = flat[:, ::-1] + 0.5
        lines = shapely.linestrings(xy, indices=np.repeat(np.arange(len(lens)), lens))
        # one call: what MultiLineString(list(lines)) builds (no line is empty: 2+ points)
        merged = shapely.line_merge(shapely.multilinestrings(lines))
    parts = list(getattr(merged, "geoms", [merged])) if merged is not None else []
    parts = np.array(parts, dtype=object)
    if len(parts):
        parts = parts[~shapely.is_empty(parts) & ~(shapely.length(parts) * pixel_m < MIN_SPUR_M)]
    if not len(parts):
        return gpd.GeoDataFrame({"width_m": []}, geometry=[])
    parts = shapely.simplify(parts, 1.0)
    # the distance transform at points 1 pixel apart along each line (one walk per line)
    n_steps = _n_steps(shapely.length(parts))
    xy, which = shapely.get_coordinates(parts, return_index=True)
    at = points_at_steps(xy, np.cumsum(np.bincount(which, minlength=len(parts))), n_steps)
    rr = np.clip(at[:, 1].astype(np.int64), 0, mask.shape[0] - 1)
    cc = np.clip(at[:, 0].astype(np.int64), 0, mask.shape[1] - 1)
    med = segment_medians(edt_at(mask, rr, cc), np.cumsum(n_steps))
    # the distance transform at the axis is half the width plus half a pixel
    widths = [max(pixel_m, (2 * float(m) - 1) * pixel_m) for m in med.tolist()]
    out = _to_border_all(parts, mask.shape, [max(w / pixel_m, 5.0 / pixel_m) for w in widths])
    a, b, d, e, xoff, yoff = _affine6(transform)

    def _affine(c: np.ndarray) -> np.ndarray:
        # shapely.affinity.affine_transform's own arithmetic, for all lines at once
        x, y = c.T
        return np.stack([a * x + b * y + xoff, d * x + e * y + yoff]).T

    out = shapely.transform(np.array(out, dtype=object), _affine)
    return gpd.GeoDataFrame({"width_m": np.round(widths, 1)}, geometry=list(out))


def _lens(seqs: list) -> np.ndarray:
    return np.array([len(s) for s in seqs], np.int64)


def _n_steps(lengths: np.ndarray) -> np.ndarray:
    """``len(np.arange(0, ln + 1e-9, 1.0))`` for each line length (pixels): numpy sizes a
    range as the ceiling of (stop - start) / step, here taken for all lines at once."""
    return np.maximum(np.ceil(np.asarray(lengths, np.float64) + 1e-9), 0).astype(np.int64)


def _to_border(ln: shapely.LineString, shape: tuple[int, int], tol: float) -> shapely.LineString:
    """Extend an end lying within ``tol`` pixels of the image's edge onto the edge.

    The skeleton stops about half a road's width inside the image, but a road corridor cut by
    the edge goes on beyond it (and route analysis counts roads that reach the edge).
    """
    h, w = shape
    xy = list(ln.coords)
    for i in (0, -1):
        x, y = xy[i]
        d = {"l": x, "r": w - x, "t": y, "b": h - y}
        side = min(d, key=d.get)
        if d[side] > tol:
            continue
        p = {"l": (0.0, y), "r": (float(w), y), "t": (x, 0.0), "b": (x, float(h))}[side]
        if i == 0:
            xy.insert(0, p)
        else:
            xy.append(p)
    return shapely.LineString(xy)


def _to_border_all(
    lines: np.ndarray, shape: tuple[int, int], tols: list[float]
) -> list[shapely.LineString]:
    """:func:`_to_border` of every line (tolerances ``tols``, pixels), in one vectorised pass:
    the same end points, chosen by the same rule (nearest edge, the first of left, right, top,
    bottom on ties)."""
    h, w = shape
    xy, which = shapely.get_coordinates(lines, return_index=True)
    n = np.bincount(which, minlength=len(lines))
    last = np.cumsum(n) - 1
    ends = []
    for at in (last - n + 1, last):
        x, y = xy[at, 0], xy[at, 1]
        d = np.stack([x, w - x, y, h - y])
        side = np.argmin(d, axis=0)
        go = np.take_along_axis(d, side[None], 0)[0] <= np.asarray(tols)
        px = np.choose(side, [np.zeros_like(x), np.full_like(x, float(w)), x, x])
        py = np.choose(side, [y, y, np.zeros_like(y), np.full_like(y, float(h))])
        ends.append((go, np.stack([px, py], axis=1)))
    (g0, p0), (g1, p1) = ends
    # each line's coordinates with its new first and last points around them
    k = g0.astype(np.int64) + n + g1
    stop = np.cumsum(k)
    start = stop - k
    out = np.empty((int(stop[-1]) if len(k) else 0, 2))
    body = np.repeat(start + g0, n) + (np.arange(len(xy)) - np.repeat(last - n + 1, n))
    out[body] = xy
    out[start[g0]] = p0[g0]
    out[stop[g1] - 1] = p1[g1]
    return list(shapely.linestrings(out, indices=np.repeat(np.arange(len(k)), k)))


def _affine6(t: Affine) -> list[float]:
    return [t.a, t.b, t.d, t.e, t.c, t.f]
