"""Scene-wide noise of the road-surface contrasts of barricades, the same for every window.

The block tests (``barricades.block_change``) scale two contrasts by their noise: the change
of a road pixel against its road's median (``road_window.road_contrast``) and against the road
a few metres ahead and behind (``road_window.along_contrast``). Taken over a window's road
pixels, that noise depends on where the window's edges fall: a 640 px window over a quarter
of narrow shaded streets measured 0.051 where the whole 1 km scene measured 0.039 (Helsinki
seed 2), and a row 6.9 sigmas bright in one layout fell to 5.4 in another. The noise is that
of the sensor and of the road's texture, a property of the scene: it is measured here once,
on road pixels of tiles spread over the scene on a fixed lattice (so the same whatever the
window layout), and handed to every window. The tiles lie on a lattice anchored to the CRS's
coordinates, not to the image's corner, so that two images of one place cut differently (a
district and the city around it) share the tiles they both hold.

Measuring it more locally instead (the 3 x 3 cells of 16 m around each pixel, within the
halo) was tried and not kept: a 48 m square of a dense quarter holds shadows, lit patches and
the road whose along-road reference a new object sets, and its spread came out 1.2-1.7 times
the scene's at the true rows (dev seeds 1-5 F1 summed 4.19 against 4.75).
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import rasterio.windows
import shapely
from affine import Affine
from rasterio.windows import Window

from fortmap.detect.road_window import (
    MIN_ROAD_PX,
    RoadWindow,
    along_anomaly,
    robust_sigma,
    shaded_change,
)
from fortmap.detect.roadmask import roads_in_window, roads_to_pixels

#: Side (pixels) of a sample tile's core and its halo (the along-road reference reaches 4 m and
#: a crossing's 10 m; the windows' halo is 64 px).
TILE_PX = 256
TILE_HALO_PX = 64
#: Pixels between the tiles' corners on the anchored lattice, at least: the spacing grows by a
#: quarter of this until at most ``MAX_TILES`` tiles fit (so a city costs what a district does).
SPACING_PX = 512
MAX_TILES = 12
#: Tiles across and down in a scene too small for one tile of the lattice.
TILES_ACROSS = 3


@dataclass(frozen=True)
class RoadNoise:
    """Scene-wide robust (MAD) noise of the block contrasts, grey levels (0..1 scale).

    Attributes:
        road: of a road pixel's change against its road's median (after less before).
        along: of its change against the road a few metres ahead and behind.
        n_px: road pixels it was measured on.
        shade: of the change of road in deep shade on both dates against the shaded road
            ahead and behind (``road_window.deep_shade_contrast``), or None where the tiles
            hold too little such road (each window then measures its own).
    """

    road: float
    along: float
    n_px: int
    shade: float | None = None


def noise_samples(
    rw: RoadWindow, gsd: float, core_px: tuple[int, int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """The two block contrasts' changes (grey levels) on the road pixels of a window's core.

    Args:
        rw: the window's road pixels.
        gsd: metres per pixel.
        core_px: (col0, row0, col1, row1) of the core, window pixels.

    Returns:
        (change against the road's median, change against the road ahead and behind; the
        latter finite values only), float32.
    """
    k = _in_core(rw, core_px)
    med_a, med_b = rw.medians("a", 1), rw.medians("b", 1)
    d = (rw.level("a", 1) - med_a[rw.rid]) - (rw.level("b", 1) - med_b[rw.rid])
    al = along_anomaly(rw, "a", gsd, 1, kerb=True) - along_anomaly(rw, "b", gsd, 1, kerb=True)
    al = al[k]
    return d[k].astype(np.float32), al[np.isfinite(al)].astype(np.float32)


def sample_tiles(width: int, height: int, transform: Affine | None = None) -> list[Window]:
    """Cores of the sample tiles of a ``width`` x ``height`` px scene.

    The tiles are the squares of ``TILE_PX`` that lie wholly in the scene on a lattice whose
    lines fall on multiples of its spacing in the CRS's coordinates, counted in pixels of the
    grid ``transform``. The spacing is ``SPACING_PX``, grown until at most ``MAX_TILES`` fit:
    a crop sampled at the same spacing keeps every tile it holds. A scene holding no such tile
    (or without a ``transform``) gets up to ``TILES_ACROSS`` x ``TILES_ACROSS`` tiles spread
    evenly over it, or one tile, the whole scene, when it is smaller than a tile.

    Example:
        >>> from affine import Affine
        >>> # 0.5 m pixels; the CRS's origin 2000 px left of the corner and 4000 px below it
        >>> t = Affine(0.5, 0, 1000.0, 0, -0.5, 2000.0)
        >>> [(w.col_off, w.row_off) for w in sample_tiles(1200, 800, t)]
        [(48, 416), (560, 416)]
    """
    if transform is not None and not (transform.b or transform.d):
        x0, y0 = round(transform.c / transform.a), round(transform.f / transform.e)
        step = SPACING_PX
        while True:
            cols = range((-x0) % step, width - TILE_PX + 1, step)
            rows = range((-y0) % step, height - TILE_PX + 1, step)
            if len(cols) * len(rows) <= MAX_TILES:
                break
            step += SPACING_PX // 4
        if len(cols) and len(rows):
            return [Window(c, r, TILE_PX, TILE_PX) for r in rows for c in cols]
    n = TILES_ACROSS
    tw, th = min(TILE_PX, width), min(TILE_PX, height)
    cols = np.unique(np.linspace(0, width - tw, n).astype(int))
    rows = np.unique(np.linspace(0, height - th, n).astype(int))
    return [Window(int(c), int(r), tw, th) for r in rows for c in cols]


def scene_road_noise(
    before,  # noqa: ANN001  (fortmap.io.raster.GridReader, radiometrically matched)
    after,  # noqa: ANN001
    grid_transform: Affine,
    width: int,
    height: int,
    roads: gpd.GeoDataFrame,
    gsd: float,
    floor: float,
) -> RoadNoise | None:
    """The scene's noise of the block contrasts, from road pixels of sample tiles.

    Args:
        before, after: ``GridReader``s of the two dates on the analysis grid, with the
            radiometric maps the windows are read with.
        grid_transform: affine of the analysis grid (pixel -> CRS metres).
        width, height: the grid's size (pixels).
        roads: road centre lines in the analysis CRS (``read_roads``' frame).
        gsd: metres per pixel.
        floor: least noise (grey levels).

    Returns:
        :class:`RoadNoise`, or None where the tiles hold fewer than ``MIN_ROAD_PX`` road
        pixels (the windows then measure their own).
    """
    ds, als, tiles = [], [], []
    for core in sample_tiles(width, height, grid_transform):
        c0, r0 = max(0, core.col_off - TILE_HALO_PX), max(0, core.row_off - TILE_HALO_PX)
        c1 = min(width, core.col_off + core.width + TILE_HALO_PX)
        r1 = min(height, core.row_off + core.height + TILE_HALO_PX)
        w = Window(c0, r0, c1 - c0, r1 - r0)
        box = shapely.box(*rasterio.windows.bounds(w, grid_transform)).buffer(50)
        sel = roads[roads.intersects(box)]
        if not len(sel):
            continue
        wt = grid_transform @ Affine.translation(c0, r0)
        b, a = before.read(w), after.read(w)
        valid = before.read_valid(w) & after.read_valid(w)
        rr = roads_in_window(roads_to_pixels(sel, wt, gsd), valid.shape, 1.0 / gsd)
        rw = RoadWindow.build(b, a, valid, rr)
        if not rw.enough:
            continue
        cpx = (core.col_off - c0, core.row_off - r0)
        d, al = noise_samples(rw, gsd, (*cpx, cpx[0] + core.width, cpx[1] + core.height))
        ds.append(d)
        als.append(al)
        tiles.append((rw, (*cpx, cpx[0] + core.width, cpx[1] + core.height)))
    if not ds:
        return None
    d, al = np.concatenate(ds), np.concatenate(als)
    if d.size < MIN_ROAD_PX or al.size < MIN_ROAD_PX:
        return None
    road = robust_sigma(d, floor)
    # the shade test sets its bar with the sunlit noise the windows use (``ch.sigma``)
    sh = np.concatenate([shade_samples(rw, gsd, max(road, floor), c) for rw, c in tiles])
    shade = robust_sigma(sh, floor) if sh.size >= MIN_ROAD_PX else None
    return RoadNoise(road, robust_sigma(al, floor), int(d.size), shade)


def shade_samples(
    rw: RoadWindow, gsd: float, lit_sigma: float, core_px: tuple[int, int, int, int]
) -> np.ndarray:
    """The deep-shade contrast's changes (grey levels, finite, float32) on the core's road
    pixels in deep shade on both dates (``road_window.shaded_change``)."""
    k = _in_core(rw, core_px)
    _, d, _, both = shaded_change(rw, gsd, lit_sigma)
    x = d[k & both]
    return x[np.isfinite(x)].astype(np.float32)


def _in_core(rw: RoadWindow, core_px: tuple[int, int, int, int]) -> np.ndarray:
    """bool per ``rw.on`` pixel: inside the core (col0, row0, col1, row1), window pixels."""
    c0, r0, c1, r1 = core_px
    return (rw.rows >= r0) & (rw.rows < r1) & (rw.cols >= c0) & (rw.cols < c1)
