"""Grids and windows of an analysis: the UTM grid for a geographic image, the windows a scene
is cut into, the full-resolution sample scene-wide models are fitted on, and moves between
pixel and CRS coordinates."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import shapely
import shapely.affinity
from affine import Affine
from rasterio.windows import Window

from fortmap.errors import InputError
from fortmap.io.raster import GridReader, RasterInfo
from fortmap.types import Grid


def analysis_grid(info: RasterInfo) -> Grid:
    """The before image's grid; a geographic one is replaced by its local UTM grid."""
    if not info.grid.crs.is_geographic:
        return info.grid
    from pyproj import CRS as PCRS
    from pyproj.aoi import AreaOfInterest
    from pyproj.database import query_utm_crs_info
    from rasterio.crs import CRS
    from rasterio.warp import calculate_default_transform

    left, bottom, right, top = info.grid.bounds
    utm = query_utm_crs_info(
        datum_name="WGS 84",
        area_of_interest=AreaOfInterest(left, bottom, right, top),
    )
    if not utm:
        raise InputError(f"{info.path}: cannot find a UTM zone for its extent")
    crs = CRS.from_wkt(PCRS.from_epsg(int(utm[0].code)).to_wkt())
    transform, width, height = calculate_default_transform(
        info.grid.crs, crs, info.grid.width, info.grid.height, left, bottom, right, top
    )
    return Grid(crs=crs, transform=transform, width=int(width), height=int(height))


def windows(grid: Grid, size: int) -> list[Window]:
    """Cores of ``size`` pixels tiling ``grid`` (the last row and column may be smaller)."""
    return [
        Window(c, r, min(size, grid.width - c), min(size, grid.height - r))
        for r in range(0, grid.height, size)
        for c in range(0, grid.width, size)
    ]


def sample_mosaic(
    before: GridReader, after: GridReader, grid: Grid, side: int, tile: int = 256
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full-resolution tiles spread over the scene, side by side in one mosaic.

    Scene-wide models (radiometric maps, change noise scales) are fitted on it: full resolution
    keeps texture statistics true, and spreading the tiles keeps them representative, while the
    memory stays bounded by ``side``**2 pixels whatever the scene's size.
    """
    if grid.width <= side and grid.height <= side:
        w = Window(0, 0, grid.width, grid.height)
        return before.read_raw(w), after.read_raw(w), before.read_valid(w) & after.read_valid(w)
    n = max(1, side // tile)
    tw, th = min(tile, grid.width), min(tile, grid.height)
    cols = np.linspace(0, grid.width - tw, n).astype(int) // 4 * 4
    rows = np.linspace(0, grid.height - th, n).astype(int) // 4 * 4
    bs, as_, vs = [], [], []
    for r in rows:
        rb, ra, rv = [], [], []
        for c in cols:
            w = Window(int(c), int(r), tw, th)
            rb.append(before.read_raw(w))
            ra.append(after.read_raw(w))
            rv.append(before.read_valid(w) & after.read_valid(w))
        bs.append(np.concatenate(rb, axis=2))
        as_.append(np.concatenate(ra, axis=2))
        vs.append(np.concatenate(rv, axis=1))
    return np.concatenate(bs, axis=1), np.concatenate(as_, axis=1), np.concatenate(vs, axis=0)


def affine_all(geoms: Iterable[shapely.Geometry], matrix: list[float]) -> list[shapely.Geometry]:
    """``shapely.affinity.affine_transform(g, matrix)`` of every geometry, in one call.

    Same arithmetic as shapely's (``a*x + b*y + xoff``), so the coordinates are identical, but
    thousands of footprints cost one vectorised pass instead of a Python call each.
    """
    arr = np.asarray(list(geoms), dtype=object)
    if arr.size == 0:
        return []
    if shapely.has_z(arr).any():
        return [shapely.affinity.affine_transform(g, matrix) for g in arr]
    a, b, d, e, xoff, yoff = matrix

    def _coords(c: np.ndarray) -> np.ndarray:
        x, y = c.T
        return np.stack([a * x + b * y + xoff, d * x + e * y + yoff]).T

    return list(shapely.transform(arr, _coords))


def to_pixel(geoms: Iterable[shapely.Geometry], transform: Affine) -> list[shapely.Geometry]:
    """Geometries in CRS units to pixel coordinates of the grid with ``transform``."""
    inv = ~transform
    return affine_all(geoms, [inv.a, inv.b, inv.d, inv.e, inv.c, inv.f])


def to_crs(geoms: Iterable[shapely.Geometry], transform: Affine) -> list[shapely.Geometry]:
    """Geometries in pixel coordinates of the grid with ``transform`` to CRS units."""
    t = transform
    return affine_all(geoms, [t.a, t.b, t.d, t.e, t.c, t.f])


class GreyScaled(GridReader):
    """A reader that averages the bands and maps the grey level linearly (mixed band counts)."""

    def __init__(self, inner: GridReader, scale: float, offset: float) -> None:
        self.__dict__.update(inner.__dict__)
        self._gs, self._go = float(scale), float(offset)

    def read(self, window: Window, out_shape: tuple[int, int] | None = None) -> np.ndarray:
        g = self.read_raw(window, out_shape).mean(axis=0, keepdims=True)
        return g * self._gs + self._go
