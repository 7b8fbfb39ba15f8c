"""Road centre lines derived from the before image when no ``--roads`` are given.

Roads are long, narrow corridors of one uniform, grey surface. The method works on a
downsampled overview of the before image (about 1 m a pixel, coarser for large scenes) and uses
only in-scene statistics and first principles, no labels:

1. **Surface classes.** The overview (median-filtered against noise) is clustered by colour
   (k-means, 16 classes, seeded). A city has a few road surfaces (asphalt of the main roads,
   lighter asphalt or concrete of side streets), each one colour class.
2. **Which classes are road.** A class is road surface when it is grey (chroma below
   ``MAX_CHROMA``: asphalt and concrete reflect the visible bands about equally, while water,
   vegetation and most soils do not) and when most of its pixels (``MIN_CORRIDOR_SHARE``, a
   majority) lie in corridors: places a ``CORRIDOR_M`` long line fits in some direction
   (line openings) but a disk ``MAX_WIDTH_M`` across does not. Roofs, fields and plazas are
   compact or wide; roads are the one surface that is mostly corridor. For this width test a
   class's holes up to ``SMALL_HOLE_M2`` (tree crowns, cars) are filled: an open field or a
   yard dotted with trees is still wide, though its pixels between the crowns form narrow
   runs (on the Helsinki layout such grey ground passed the test as road).
3. **Centre lines.** The corridors of the road classes are skeletonised; the skeleton is cut into
   a graph at its junctions, spurs shorter than ``MIN_SPUR_M`` are dropped, and the rest is
   merged into LineStrings. Width is twice the distance from the centre line to the road's edge
   (distance transform), the median along each line; a road ``MAJOR_WIDTH_M`` or wider (three
   lanes of ``LANE_WIDTH_M``) is ``major``.

The full-resolution scene is never held in memory: the overview is read in strips with GDAL's
averaging decimation.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import shapely
import shapely.affinity
from affine import Affine
from rasterio.windows import Window
from scipy import ndimage as ndi
from scipy.cluster.vq import kmeans2
from skimage.morphology import skeletonize

from fortmap.detect.pixel_kernels import (
    abs_diff_medians,
    class_bit_counts,
    fill_labelled,
    segment_medians,
)
from fortmap.detect.roads_kernels import (
    close_cross,
    edt,
    edt_above,
    median3,
    nearest_centre,
    open_along,
    open_packed,
    order_branch,
    simple_branches,
)
from fortmap.io.raster import GridReader
from fortmap.io.roads import LANE_WIDTH_M
from fortmap.types import Grid

#: Target pixel size of the overview, metres: a 5 m side street is still 5 pixels across.
OVERVIEW_M = 1.0
#: Largest overview side, pixels (keeps a 4x4 km scene at 2 m and memory near 100 MB).
MAX_OVERVIEW_PX = 2048
#: Colour classes of the surface clustering.
N_CLASSES = 16
#: Largest (max - min) / mean over RGB of a grey surface: asphalt and concrete are near flat
#: in the visible bands; water, vegetation and fresh soil are well above.
MAX_CHROMA = 0.2
#: Length of the straight line that must fit in a corridor, metres (a block is 10-25 m, a
#: road runs on; at 30 m a ring road of 200 m radius bows by half a metre).
CORRIDOR_M = 30.0
#: Widest road, metres (a six-lane avenue with verges); wider uniform areas are plazas, yards,
#: airstrips or fields.
MAX_WIDTH_M = 30.0
#: Share of a colour class lying in corridors for it to be a road surface (a majority).
MIN_CORRIDOR_SHARE = 0.5
#: Dead-end branches shorter than this are skeleton spurs (a junction's corners, a driveway).
MIN_SPUR_M = 20.0
#: Width from which a derived road is ``major`` (three lanes).
MAJOR_WIDTH_M = 3 * LANE_WIDTH_M
#: Largest hole in a surface that is an object on it, not a gap between surfaces, square
#: metres: a 10 m square holds the largest tree crown, a lorry or a kiosk; a city block is larger.
SMALL_HOLE_M2 = 100.0
#: Directions tried by the line openings (a 30 px line at 1/16 of pi apart ends 3 px off).
N_DIRECTIONS = 16


def read_overview(
    reader: GridReader, grid: Grid, pixel_m: float = OVERVIEW_M, max_px: int = MAX_OVERVIEW_PX
) -> tuple[np.ndarray, np.ndarray, Affine]:
    """The image downsampled by an integer factor (block averages), read strip by strip.

    Args:
        reader: reader on the analysis grid (raw values are read; scaling is ignored).
        grid: the analysis grid (metres).
        pixel_m: wanted pixel size, metres (never finer than the grid's).
        max_px: the overview's longest side is kept under this many pixels.

    Returns:
        (image float32 (bands, rows, cols), valid bool (rows, cols), affine of the overview
        in the grid's CRS).
    """
    f = max(1, round(pixel_m / grid.gsd), math.ceil(max(grid.width, grid.height) / max_px))
    w, h = grid.width // f, grid.height // f
    strip = max(1, 256 // f) * f * 4
    parts, valid = [], []
    for r0 in range(0, h * f, strip):
        rows = min(strip, h * f - r0)
        win = Window(0, r0, w * f, rows)
        parts.append(reader.read_raw(win, (rows // f, w)))
        valid.append(reader.read_valid(win, (rows // f, w)))
    return (
        np.concatenate(parts, axis=1),
        np.concatenate(valid, axis=0),
        grid.transform @ Affine.scale(f),
    )


def line_openings(masks: np.ndarray, n: int) -> np.ndarray:
    """Union over ``N_DIRECTIONS`` of openings by an ``n``-pixel line, for a stack of masks.

    A pixel is kept when it lies in a run of at least ``n`` mask pixels, counted along the
    major axis, on a digital straight line in one of the directions (one pass per direction,
    cost independent of ``n``; up to 32 masks share a pass as the bits of one word).

    Args:
        masks: bool (k, rows, cols).
        n: line length, pixels (along the direction's major axis).

    Returns:
        bool (k, rows, cols).

    Example:
        >>> m = np.zeros((1, 9, 40), bool); m[0, 4, 2:38] = True; m[0, 1, 5:10] = True
        >>> int(line_openings(m, 20).sum())
        36
    """
    out = np.zeros(masks.shape, bool)
    if masks.shape[0] == 1:
        # one mask: a walk along each line is cheaper than the packed sweep's bookkeeping
        mk = np.ascontiguousarray(masks[0])
        for deg in np.linspace(0.0, 180.0, N_DIRECTIONS, endpoint=False):
            t = math.radians(float(deg))
            if abs(math.cos(t)) >= abs(math.sin(t)):
                open_along(mk, out[0], n, math.tan(t), True)
            else:
                open_along(mk, out[0], n, 1.0 / math.tan(t), False)
        return out & masks
    for j0 in range(0, masks.shape[0], 32):
        sub = masks[j0 : j0 + 32]
        packed = np.zeros(masks.shape[1:], np.uint32)
        for j, m in enumerate(sub):
            packed |= m.astype(np.uint32) << np.uint32(j)
        res = open_lines_packed(packed, n)
        for j in range(len(sub)):
            out[j0 + j] = (res >> np.uint32(j)) & np.uint32(1)
    return out & masks


def open_lines_packed(packed: np.ndarray, n: int) -> np.ndarray:
    """:func:`line_openings` of the masks held as the bits of a uint32 (rows, cols) array."""
    packed = np.ascontiguousarray(packed, np.uint32)
    # lines running along the columns are swept on the transposed array, so that a sweep
    # always reads along rows
    pt = np.ascontiguousarray(packed.T)
    ox, oy = np.zeros_like(pt), np.zeros_like(packed)
    for deg in np.linspace(0.0, 180.0, N_DIRECTIONS, endpoint=False):
        t = math.radians(float(deg))
        # rows grow downwards: a direction of +deg from the column axis is a negative
        # row step; the sign does not matter over a half-turn of directions
        if abs(math.cos(t)) >= abs(math.sin(t)):
            open_packed(pt, ox, n, math.tan(t))
        else:
            open_packed(packed, oy, n, 1.0 / math.tan(t))
    return (oy | ox.T) & packed


def _not_wide(mask: np.ndarray, pixel_m: float) -> np.ndarray:
    """False within 2 pixels of any disk ``MAX_WIDTH_M`` across that fits inside ``mask``."""
    r = MAX_WIDTH_M / 2 / pixel_m
    # the opening by a disk of radius r is the r-neighbourhood of the centres deeper than r
    centres = edt_above(mask, r)
    if not centres.any():
        return np.ones(mask.shape, bool)
    return edt_above(~centres, r + 2)


def fill_small_holes(mask: np.ndarray, pixel_m: float, max_m2: float = SMALL_HOLE_M2) -> np.ndarray:
    """``mask`` with its holes of at most ``max_m2`` square metres filled (bool, same shape).

    Args:
        mask: bool (rows, cols).
        pixel_m: metres per pixel of ``mask``.
        max_m2: largest hole filled, square metres.
    """
    holes, n = ndi.label(~mask)
    return fill_labelled(mask, holes, int(n), float(max_m2 / pixel_m**2))


def corridors(mask: np.ndarray, pixel_m: float) -> np.ndarray:
    """Pixels of ``mask`` in long, narrow corridors (bool, same shape).

    A pixel is kept when a ``CORRIDOR_M`` line inside ``mask`` covers it in some direction and
    no disk ``MAX_WIDTH_M`` across inside ``mask`` comes within 2 pixels of it.
    """
    n = max(3, int(round(CORRIDOR_M / pixel_m)) | 1)
    return line_openings(mask[None], n)[0] & _not_wide(mask, pixel_m)


def road_mask(
    img: np.ndarray, valid: np.ndarray, pixel_m: float, seed: int = 0
) -> tuple[np.ndarray, dict]:
    """Road surface in an overview image (bool (rows, cols)) and what was measured.

    Args:
        img: float (bands, rows, cols); the first three bands are taken as RGB, one band as grey.
        valid: bool (rows, cols).
        pixel_m: metres per pixel of ``img``.
        seed: seed of the k-means initialisation (results are deterministic).

    Returns:
        (mask, evidence) where evidence lists each colour class's mean, chroma, share of the
        image and share in corridors, and which classes were taken as road.
    """
    rgb = img[:3] if img.shape[0] >= 3 else img[:1]
    sm = np.empty(rgb.shape, np.float32)
    for i, b in enumerate(rgb):
        median3(np.ascontiguousarray(b, np.float32), sm[i])
    x = sm.reshape(len(sm), -1).T
    ok = valid.ravel()
    if ok.sum() < N_CLASSES * 10:
        return np.zeros(valid.shape, bool), {"classes": [], "road_classes": []}
    rng = np.random.default_rng(seed)
    idx = np.flatnonzero(ok)
    sub = x[rng.choice(idx, min(len(idx), 50_000), replace=False)]
    cent, _ = kmeans2(sub.astype(np.float64), N_CLASSES, seed=seed, minit="++")
    lab = _nearest(x, cent.astype(np.float32))
    lab = lab.reshape(valid.shape)
    # k-means splits a large uniform surface into sub-classes that differ by noise only;
    # classes closer than 3 sigmas of the raw image's noise (robust, from neighbour
    # differences) are one surface
    sigma = abs_diff_medians(rgb) / 0.6745 / math.sqrt(2)
    near = np.sqrt((((cent[:, None] - cent[None]) / np.maximum(sigma, 0.5)) ** 2).sum(-1)) < 3
    _, root = _components(near)
    lab = root[lab]
    cent = np.stack([cent[root == root[k]].mean(0) for k in range(N_CLASSES)])
    lab[~valid] = -1
    share = np.bincount(lab[valid].ravel(), minlength=N_CLASSES) / lab.size
    chroma = (cent.max(1) - cent.min(1)) / np.maximum(cent.mean(1), 1e-6)
    test = [k for k in range(N_CLASSES) if share[k] > 0.002 and chroma[k] < MAX_CHROMA]
    cor = np.zeros(N_CLASSES)
    chosen = []
    if test:
        # filling one-pixel holes (cars, markings, noise) before the openings
        # the shares are measured at about 2 m a pixel: four times cheaper, and a 5 m street
        # is still two pixels across
        f = 2 if pixel_m < 1.5 else 1
        lab_s, valid_s, px_s = lab[::f, ::f], valid[::f, ::f], pixel_m * f
        # one bit per tested class (at most N_CLASSES, under 32): every class is closed and
        # opened in the same passes
        bit = np.zeros(N_CLASSES + 1, np.uint32)
        bit[np.asarray(test) + 1] = np.uint32(1) << np.arange(len(test), dtype=np.uint32)
        st = close_cross(bit[lab_s + 1], 1)
        st[~valid_s] = 0
        n = max(3, int(round(CORRIDOR_M / px_s)) | 1)
        long_ = open_lines_packed(st, n)
        # every tested class's pixels, and those of them in long runs, in one pass
        bitpos = np.full(N_CLASSES, -1, np.int64)
        bitpos[test] = np.arange(len(test))
        n_all, n_long = class_bit_counts(lab_s, long_, bitpos)
        for j, k in enumerate(test):
            if n_long[k] < MIN_CORRIDOR_SHARE * n_all[k]:
                cor[k] = n_long[k] / n_all[k]
                continue  # widening the test cannot raise the share
            m = lab_s == k
            lj = ((long_ >> np.uint32(j)) & np.uint32(1)).astype(bool)
            stj = ((st >> np.uint32(j)) & np.uint32(1)).astype(bool)
            # a tree crown or a car does not make a yard or an open field narrow
            cm = lj & _not_wide(fill_small_holes(stj, px_s), px_s)
            cor[k] = (cm & m).sum() / m.sum()
            if cor[k] >= MIN_CORRIDOR_SHARE:
                chosen.append(k)
    classes = [
        {
            "mean": [round(float(v), 1) for v in cent[k]],
            "chroma": round(float(chroma[k]), 3),
            "share": round(float(share[k]), 4),
            "corridor_share": round(float(cor[k]), 3),
        }
        for k in range(N_CLASSES)
    ]
    ev = {"classes": classes, "road_classes": chosen}
    if not chosen:
        return np.zeros(valid.shape, bool), ev
    # a lookup table is np.isin(lab, chosen) in one gather (label -1, invalid, hits the
    # table's last entry, which is False)
    is_road = np.zeros(N_CLASSES + 1, bool)
    is_road[chosen] = True
    road = close_cross(is_road[lab].view(np.uint8), 2).view(bool) & valid
    return corridors(road, pixel_m), ev


def _nearest(x: np.ndarray, c32: np.ndarray) -> np.ndarray:
    """Nearest centre of each row of ``x`` (int16), as numpy's argmin of float32 squares."""
    # a transposed (bands, pixels) view is read as it is: a contiguous copy of a 4 Mpx
    # overview costs more than the search
    x = np.asarray(x, np.float32)
    if np.isnan(x).any():
        lab = np.empty(len(x), np.int16)
        for i in range(0, len(x), 250_000):
            d = ((x[i : i + 250_000, None, :] - c32[None]) ** 2).sum(-1)
            lab[i : i + 250_000] = d.argmin(1)
        return lab
    return nearest_centre(x, np.ascontiguousarray(c32))


def _components(adj: np.ndarray) -> tuple[int, np.ndarray]:
    """Connected components of a symmetric boolean adjacency matrix: (count, root per node)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    n, lab = connected_components(csr_matrix(adj), directed=False)
    # the smallest member stands for its component, so a class keeps its own index when alone
    first = {c: int(np.flatnonzero(lab == c)[0]) for c in range(n)}
    return n, np.array([first[c] for c in lab])


_NB8 = np.array([(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)])


def _skeleton_graph(skel: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Cut a skeleton at its junctions and ends: pixel paths (row, col) between nodes.

    Returns (paths as int (n, 2) arrays, node labels); each path starts and ends at a node
    pixel when it has one.
    """
    nb = ndi.convolve(skel.astype(np.uint8), np.ones((3, 3), np.uint8), mode="constant") - 1
    node = skel & (nb != 2)
    nodes, _ = ndi.label(node, np.ones((3, 3)))
    body, nbody = ndi.label(skel & ~node, np.ones((3, 3)))
    start, order, simple = simple_branches(body, nbody)
    paths = [order[start[i] : start[i + 1]] for i in range(nbody)]
    for i in np.flatnonzero(~simple):
        # staircase corners: the shortest path between the branch's far ends
        paths[i] = np.array(order_branch(paths[i]), np.int64).reshape(-1, 2)
    if not paths:
        return [], nodes
    h, w = skel.shape
    firsts = []
    for ends in (np.array([p[0] for p in paths]), np.array([p[-1] for p in paths])):
        # the first node pixel among each end's 8 neighbours, in _NB8's order
        q = ends[:, None, :] + _NB8[None]
        inside = (q[..., 0] >= 0) & (q[..., 0] < h) & (q[..., 1] >= 0) & (q[..., 1] < w)
        lab = np.where(inside, nodes[q[..., 0].clip(0, h - 1), q[..., 1].clip(0, w - 1)], 0)
        hit = lab > 0
        firsts.append(np.where(hit.any(1), hit.argmax(1), -1))
        firsts[-1] = [q[j, k] if k >= 0 else None for j, k in enumerate(firsts[-1])]
    out = []
    for p, n0, n1 in zip(paths, *firsts, strict=True):
        # as list.insert(0, n0) then list.insert(len before either insert, n1): with both,
        # n1 lands before the last pixel
        if n0 is not None and n1 is not None:
            p = np.concatenate([n0[None], p[:-1], n1[None], p[-1:]])
        elif n0 is not None:
            p = np.concatenate([n0[None], p])
        elif n1 is not None:
            p = np.concatenate([p, n1[None]])
        out.append(p)
    return out, nodes


def _prune(paths: list, nodes: np.ndarray, min_px: float) -> list:
    """Drop dead-end paths shorter than ``min_px`` (twice: spurs on spurs)."""
    for _ in range(2):
        deg: dict[int, int] = {}
        ends = []
        for p in paths:
            e = [int(nodes[p[0, 0], p[0, 1]]), int(nodes[p[-1, 0], p[-1, 1]])]
            ends.append(e)
            for n in e:
                if n:
                    deg[n] = deg.get(n, 0) + 1
        keep = []
        for p, (a, b) in zip(paths, ends, strict=True):
            dead = (a == 0 or deg.get(a, 0) == 1) or (b == 0 or deg.get(b, 0) == 1)
            if dead and len(p) < min_px:
                continue
            keep.append(p)
        if len(keep) == len(paths):
            break
        paths = keep
    return paths


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
    dist = edt(mask)
    skel = skeletonize(mask)
    paths, nodes = _skeleton_graph(skel)
    paths = [p for p in _prune(paths, nodes, MIN_SPUR_M / pixel_m) if len(p) >= 2]
    merged = None
    if paths:
        # pixel centres (col + 0.5, row + 0.5)
        xy = np.concatenate(paths)[:, ::-1] + 0.5
        lines = shapely.linestrings(xy, indices=np.repeat(np.arange(len(paths)), _lens(paths)))
        merged = shapely.line_merge(shapely.MultiLineString(list(lines)))
    parts = list(getattr(merged, "geoms", [merged])) if merged is not None else []
    parts = np.array(parts, dtype=object)
    if len(parts):
        parts = parts[~shapely.is_empty(parts) & ~(shapely.length(parts) * pixel_m < MIN_SPUR_M)]
    if not len(parts):
        return gpd.GeoDataFrame({"width_m": []}, geometry=[])
    parts = shapely.simplify(parts, 1.0)
    # the distance transform at points 1 pixel apart along each line
    steps = [np.arange(0, ln + 1e-9, 1.0) for ln in shapely.length(parts)]
    at = shapely.get_coordinates(
        shapely.line_interpolate_point(np.repeat(parts, _lens(steps)), np.concatenate(steps))
    )
    rr = np.clip(at[:, 1].astype(np.int64), 0, mask.shape[0] - 1)
    cc = np.clip(at[:, 0].astype(np.int64), 0, mask.shape[1] - 1)
    med = segment_medians(dist[rr, cc], np.cumsum(_lens(steps)))
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


def roads_from_image(
    reader: GridReader, grid: Grid, pixel_m: float = OVERVIEW_M
) -> tuple[gpd.GeoDataFrame, dict]:
    """Road centre lines derived from an image (normally the before image).

    Args:
        reader: reader of the image on the analysis grid.
        grid: the analysis grid (projected CRS, metres).
        pixel_m: pixel size of the overview worked on, metres.

    Returns:
        (roads, evidence): roads with the columns of ``fortmap.io.roads.read_roads``
        (``road_class`` major|minor from width, ``highway`` and ``name`` empty, ``width_m`` in
        metres) as LineStrings in ``grid.crs``, possibly empty; evidence holds the overview's
        pixel size and the colour classes measured.
    """
    img, valid, t = read_overview(reader, grid, pixel_m)
    px = float(abs(t.a))
    mask, ev = road_mask(img, valid, px)
    lines = centrelines(mask, t, px)
    w = lines["width_m"].to_numpy(float)
    roads = gpd.GeoDataFrame(
        {
            "road_class": np.where(w >= MAJOR_WIDTH_M, "major", "minor"),
            "highway": [""] * len(lines),
            "name": [""] * len(lines),
            "width_m": w,
        },
        geometry=lines.geometry.values,
        crs=grid.crs,
    )
    ev = {"pixel_m": round(px, 3), "road_share": round(float(mask.mean()), 4), **ev}
    return roads, ev


def length_within(lines: gpd.GeoSeries, other: gpd.GeoSeries, tol_m: float = 5.0) -> float:
    """Share of the length of ``lines`` lying within ``tol_m`` metres of ``other`` (0..1).

    Completeness is ``length_within(truth, derived)``, correctness
    ``length_within(derived, truth)``; both in the same projected CRS.
    """
    total = float(lines.length.sum())
    if total == 0 or len(other) == 0:
        return 0.0
    zone = shapely.union_all(shapely.buffer(other.values, tol_m))
    return float(shapely.length(shapely.intersection(lines.values, zone)).sum() / total)
