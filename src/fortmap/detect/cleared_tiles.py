"""Cleared land found tile by tile from the scene's block statistics on disk.

:func:`fortmap.detect.cleared.extract_cleared` holds the whole scene's block statistics and
their masks at once: 250 MB and more for a 10 km city. Here the statistics stay in a
:class:`fortmap.io.scene_grid.SceneGrid` (a temporary file beyond a district) and are read a
tile at a time, and the same areas come out:

1. **Scene levels.** The medians behind the colour and texture tests come from histograms of
   the stored float16 values: there are only 65536 of them, so the medians are exact.
2. **Swath mask.** Each tile is closed and opened with a halo as wide as the two operations
   reach, so its core is what the whole grid would give; the cores go to a byte grid.
3. **Holes and areas.** Hole filling and the connected areas are global: each tile's
   background, then foreground, is labelled, and labels meeting across a tile's edge are
   joined (a graph's connected components). A hole is a background area that reaches no edge
   of the scene.
4. **Outlines.** Each area large enough is traced on its bounding box alone.

Only the areas' sums (in a different order) differ from the whole-scene path, by rounding.
"""

from __future__ import annotations

import numpy as np
import shapely
from affine import Affine
from numba import njit
from rasterio import features
from scipy import ndimage as ndi

from fortmap.detect.cleared import (
    BLOCK_FIELDS,
    SWATH_M,
    ClearedLevels,
    clearing_finding,
    extract_cleared,
    keep_clearing,
    swath_mask,
    swath_radii,
)
from fortmap.detect.label_kernels import find_root
from fortmap.io.scene_grid import SceneGrid, tiles

#: Side of a tile's core, blocks (2 km at 2 m blocks): a district is one tile.
TILE_BLOCKS = 1024

#: Every float16 bit pattern's value as float32.
_F16_VALUES = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32)

_VALID, _CHANGED, _DCOLOR, _TEX_A = (
    BLOCK_FIELDS.index(k) for k in ("valid", "changed", "dcolor", "tex_after")
)


def median_of_counts(values: np.ndarray, counts: np.ndarray) -> np.floating:
    """``median_np`` of the array holding each of ``values`` (float32) ``counts`` times.

    Example:
        >>> v = np.array([3.0, 1.0, 2.0], np.float32)
        >>> float(median_of_counts(v, np.array([1, 2, 1])))
        1.5
    """
    keep = counts > 0
    v, c = values[keep], counts[keep]
    if v.size == 0 or np.isnan(v).any():
        return np.float32(np.nan)
    order = np.argsort(v, kind="stable")
    v, cum = v[order], np.cumsum(c[order])
    n = int(cum[-1])
    k = n // 2
    at_k = v[np.searchsorted(cum, k, side="right")]
    if n % 2:
        return np.mean(np.array([at_k], np.float32))
    below = v[np.searchsorted(cum, k - 1, side="right")]
    return np.mean(np.array([below, at_k], np.float32))


def levels_from_histograms(dcolor_counts: np.ndarray, tex_counts: np.ndarray) -> ClearedLevels:
    """:meth:`ClearedLevels.from_values` from counts per float16 bit pattern (65536 each) of
    the valid blocks' colour differences and after textures: the same values."""
    med = float(median_of_counts(_F16_VALUES, dcolor_counts))
    with np.errstate(invalid="ignore"):  # the infinities' patterns (none counted)
        dev = np.abs(_F16_VALUES - med)
    mad = float(median_of_counts(dev, dcolor_counts) * 1.4826) + 1e-6
    return ClearedLevels(med, mad, float(median_of_counts(_F16_VALUES, tex_counts)) + 1e-6)


def cleared_from_grid(
    grid: SceneGrid,
    transform: Affine,
    block_m: float,
    min_area_ha: float = 0.5,
    swath_m: float = SWATH_M,
    tile: int | None = None,
) -> tuple[list[shapely.Polygon], list[float], list[dict]]:
    """Polygons of cleared land from float16 block statistics held in ``grid``.

    A grid of one tile or less is handed whole to ``extract_cleared``; a larger one is
    worked tile by tile (module docstring), so memory holds a few tiles' arrays whatever the
    scene's size.

    Args:
        grid: (len(BLOCK_FIELDS), rows, cols) float16 block statistics of the scene.
        transform: affine of the block grid (block pixel -> CRS metres).
        block_m: block side in metres.
        min_area_ha: smallest area reported, hectares.
        swath_m: structures narrower than this (roads, single buildings) are not clearings.
        tile: side of a tile's core, blocks (default ``TILE_BLOCKS``).

    Returns:
        (polygons in the CRS, scores 0..1, evidence dicts), ordered by their bounding boxes'
        top-left corners on the tiled path.
    """
    tile = tile or TILE_BLOCKS
    _, h, w = grid.shape
    if h <= tile and w <= tile:
        return extract_cleared(
            grid.read(0, 0, h, w).astype(np.float32), transform, block_m, min_area_ha, swath_m
        )
    halo = 2 * sum(swath_radii(block_m, swath_m))
    cut = tiles((h, w), tile, halo)
    levels = _levels(grid, cut)
    if levels is None:
        return [], [], []
    folder = grid.path.parent if grid.path is not None else None
    with (
        SceneGrid((1, h, w), np.uint8, folder) as mask,
        SceneGrid((1, h, w), np.int32, folder) as labels,
    ):
        for core, read in cut:
            m = swath_mask(grid.read(*read).astype(np.float32), levels, block_m, swath_m)[0]
            r, c = core[0] - read[0], core[1] - read[1]
            m = m[r : r + core[2] - core[0], c : c + core[3] - core[1]]
            mask.write(core[0], core[1], m[None].view(np.uint8))
        areas = _areas(grid, mask, labels, cut, levels)
        return _outlines(labels, areas, transform, block_m, min_area_ha)


def _levels(grid: SceneGrid, cut: list) -> ClearedLevels | None:
    """The scene's levels from histograms of the valid blocks (None: no valid block)."""
    hd = np.zeros(65536, np.int64)
    ht = np.zeros(65536, np.int64)
    for core, _ in cut:
        s = grid.read(*core)
        ok = s[_VALID] >= 0.5
        hd += np.bincount(s[_DCOLOR][ok].view(np.uint16), minlength=65536)
        ht += np.bincount(s[_TEX_A][ok].view(np.uint16), minlength=65536)
    if not hd.any():
        return None
    return levels_from_histograms(hd, ht)


class _Labels:
    """Tile cores' labels numbered across the scene (in the order the tiles are added), and
    the labels that meet across the tiles' edges joined into the scene's connected areas."""

    def __init__(self) -> None:
        self.offsets: list[int] = []
        self.total = 0
        self.edges: dict[tuple[int, int], tuple[np.ndarray, ...]] = {}

    def add(self, lab: np.ndarray, n: int, core: tuple[int, int, int, int]) -> np.ndarray:
        """A tile core's labels (0: none, 1..n) numbered across the scene (int64)."""
        self.offsets.append(self.total)
        glob = np.where(lab > 0, lab.astype(np.int64) + self.total, 0)
        self.total += n
        # copies: views would keep each tile's whole label array alive
        self.edges[core[:2]] = tuple(e.copy() for e in (glob[0], glob[-1], glob[:, 0], glob[:, -1]))
        return glob

    def join(self) -> np.ndarray:
        """Area index per scene label (index 0: label 0, no area)."""
        rows = sorted({k[0] for k in self.edges})
        cols = sorted({k[1] for k in self.edges})
        pairs = []
        for i, r0 in enumerate(rows):
            for j, c0 in enumerate(cols):
                _, bottom, _, right = self.edges[(r0, c0)]
                # 4-connected across a seam: the two pixels facing each other
                for a, b in (
                    (right, self.edges[(r0, cols[j + 1])][2] if j + 1 < len(cols) else None),
                    (bottom, self.edges[(rows[i + 1], c0)][0] if i + 1 < len(rows) else None),
                ):
                    if b is not None:
                        both = (a > 0) & (b > 0)
                        pairs.append(np.stack([a[both], b[both]]))
        ab = np.concatenate(pairs, axis=1) if pairs else np.zeros((2, 0), np.int64)
        return _join(self.total + 1, ab[0], ab[1])


@njit(cache=True, nogil=True)
def _join(n, a, b):  # pragma: no cover - compiled
    """Connected components of ``n`` nodes joined in pairs (``a[k]``, ``b[k]``): a component
    index per node, numbered by first node (union-find; scipy's csgraph, imported for this
    alone, added 50 MB to the process)."""
    parent = np.arange(n)
    for k in range(a.size):
        x, y = find_root(parent, a[k]), find_root(parent, b[k])
        if x != y:
            parent[max(x, y)] = min(x, y)
    out = np.empty(n, np.int64)
    count = 0
    for i in range(n):
        # a root is its component's first node, so ``out`` of a lower root is set
        r = find_root(parent, i)
        if r == i:
            out[i] = count
            count += 1
        else:
            out[i] = out[r]
    return out


def _background(mask: SceneGrid, core: tuple[int, int, int, int]) -> tuple[np.ndarray, ...]:
    """A tile core's mask and its background's labels (4-connected, as ``fill_holes``)."""
    m = mask.read(*core)[0].view(bool)
    lab, n = ndi.label(~m)
    return m, lab, n


def _areas(
    grid: SceneGrid, mask: SceneGrid, labels: SceneGrid, cut: list, levels: ClearedLevels
) -> dict[str, np.ndarray]:
    """Fill the holes, keep the valid blocks, label the areas over the scene (into
    ``labels``) and sum each area's blocks. Returns per area: ``count``, ``dz`` and
    ``changed`` sums, bounding box (``r0``, ``c0``, ``r1``, ``c1``) and ``of_label`` (area
    per scene label)."""
    h, w = mask.shape[1:]
    bg = _Labels()
    on_edge = []
    for core, _ in cut:
        _, lab, n = _background(mask, core)
        glob = bg.add(lab, n, core)
        r0, c0, r1, c1 = core
        for at_edge, line in ((r0 == 0, glob[0]), (r1 == h, glob[-1]), (c0 == 0, glob[:, 0]),
                              (c1 == w, glob[:, -1])):  # fmt: skip
            if at_edge:
                on_edge.append(line[line > 0])
    bg_area = bg.join()
    reaches_edge = np.zeros(bg_area.max() + 1, bool)
    reaches_edge[bg_area[np.concatenate(on_edge)]] = True

    fg = _Labels()
    parts: dict[str, list[np.ndarray]] = {
        k: [] for k in ("count", "dz", "changed", "r0", "c0", "r1", "c1")
    }
    for k, (core, _) in enumerate(cut):
        m, lab, _ = _background(mask, core)
        bl = np.where(lab > 0, lab + bg.offsets[k], 0)
        m = m | ((lab > 0) & ~reaches_edge[bg_area[bl]])
        s = grid.read(*core).astype(np.float32)
        m &= s[_VALID] >= 0.5
        flab, n = ndi.label(m)
        labels.write(core[0], core[1], fg.add(flab, n, core)[None].astype(np.int32))
        if n == 0:
            continue
        dz = (s[_DCOLOR] - levels.dcolor_median) / levels.dcolor_mad
        flat = flab.ravel()
        parts["count"].append(np.bincount(flat, minlength=n + 1)[1:].astype(np.float64))
        parts["dz"].append(np.bincount(flat, np.clip(dz, 0, 20).ravel(), n + 1)[1:])
        parts["changed"].append(np.bincount(flat, s[_CHANGED].ravel(), n + 1)[1:])
        boxes = ndi.find_objects(flab)
        parts["r0"].append(np.array([b[0].start for b in boxes]) + core[0])
        parts["r1"].append(np.array([b[0].stop for b in boxes]) + core[0])
        parts["c0"].append(np.array([b[1].start for b in boxes]) + core[1])
        parts["c1"].append(np.array([b[1].stop for b in boxes]) + core[1])
    of_label = fg.join()
    if not parts["count"]:
        return {"of_label": of_label, "count": np.zeros(0)}
    ids = of_label[1:]
    n_areas = int(of_label.max()) + 1
    out = {"of_label": of_label}
    for key in ("count", "dz", "changed"):
        out[key] = np.bincount(ids, np.concatenate(parts[key]), n_areas)
    for key, fill, at in (("r0", h, np.minimum), ("c0", w, np.minimum), ("r1", 0, np.maximum),
                          ("c1", 0, np.maximum)):  # fmt: skip
        v = np.full(n_areas, fill, np.int64)
        at.at(v, ids, np.concatenate(parts[key]))
        out[key] = v
    return out


def _outlines(
    labels: SceneGrid, areas: dict, transform: Affine, block_m: float, min_area_ha: float
) -> tuple[list[shapely.Polygon], list[float], list[dict]]:
    """The kept areas traced one by one on their bounding boxes."""
    count = areas["count"]
    of_label = areas["of_label"]
    polys, scores, ev = [], [], []
    if not count.size:
        return polys, scores, ev
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_dz, mean_chg = areas["dz"] / count, areas["changed"] / count
    # area 0 holds label 0 (no area) and any index without blocks
    ids = [a for a in np.flatnonzero(count > 0) if a != of_label[0]]
    ids.sort(key=lambda a: (areas["r0"][a], areas["c0"][a]))
    for a in ids:
        if not keep_clearing(count[a] * block_m**2, mean_chg[a], mean_dz[a], min_area_ha):
            continue
        r0, c0, r1, c1 = (int(areas[k][a]) for k in ("r0", "c0", "r1", "c1"))
        lab = labels.read(r0, c0, r1, c1)[0]
        inside = (lab > 0) & (of_label[lab] == a)
        t = transform @ Affine.translation(c0, r0)
        shapes = [g for g, _ in features.shapes(inside.view(np.uint8), mask=inside, transform=t)]
        found = clearing_finding(shapes[0], mean_chg[a], mean_dz[a], block_m)
        if found is not None:
            polys.append(found[0])
            scores.append(found[1])
            ev.append(found[2])
    return polys, scores, ev
