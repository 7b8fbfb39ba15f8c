"""Grids and windows of an analysis: the UTM grid for a geographic or Web Mercator image, the
windows a scene is cut into, the full-resolution sample scene-wide models are fitted on, and
moves between pixel and CRS coordinates."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import shapely
import shapely.affinity
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from fortmap.errors import InputError
from fortmap.io.raster import GridReader, RasterInfo
from fortmap.types import Grid

#: A projected CRS whose point scale factor at the scene centre differs from 1 by more than this
#: is not used as the analysis grid: UTM's is within 0.1 % across its zone, Web Mercator's is
#: 1/cos(latitude) (27 % at 38 degrees), which every length, area and size rule in metres would
#: inherit.
SCALE_TOLERANCE = 0.01


def point_scale(crs: CRS, x: float, y: float) -> float | None:
    """Map metres per ground metre of a projected ``crs`` at the point (x, y), in ``crs`` units.

    Returns:
        The meridional or parallel scale factor, whichever is farther from 1 (they differ on
        projections that are not conformal); ``None`` for a CRS that is not projected or a
        point pyproj cannot place.
    """
    from pyproj import CRS as PCRS
    from pyproj import Proj, Transformer

    if crs is None or not crs.is_projected:
        return None
    try:
        pcrs = PCRS.from_wkt(crs.to_wkt())
        lon, lat = Transformer.from_crs(pcrs, pcrs.geodetic_crs, always_xy=True).transform(x, y)
        f = Proj(pcrs).get_factors(lon, lat)
        scales = (float(f.meridional_scale), float(f.parallel_scale))
    except Exception:  # noqa: BLE001 - pyproj raises several types for points off the projection
        return None
    if not all(np.isfinite(scales)):
        return None
    return max(scales, key=lambda v: abs(v - 1))


def grid_scale(grid: Grid) -> float | None:
    """:func:`point_scale` of ``grid``'s CRS at the grid's centre."""
    left, bottom, right, top = grid.bounds
    return point_scale(grid.crs, (left + right) / 2, (bottom + top) / 2)


def analysis_grid(info: RasterInfo) -> Grid:
    """The grid an analysis runs on: the before image's own when its CRS units are ground metres,
    else the scene's UTM grid.

    A geographic image (degrees) and a projected one whose point scale factor at the scene
    centre is off 1 by more than :data:`SCALE_TOLERANCE` (Web Mercator: 1/cos(latitude)) are
    both put onto the UTM zone of the scene, at the resolution GDAL picks to keep the pixel
    count (Web Mercator's 0.597 map metres become about 0.473 ground metres at 37.7 degrees).
    Findings are written back in the image's own CRS (see ``fortmap.analysis``).

    Raises:
        InputError: no UTM zone can be found for the image's extent.
    """
    crs = info.grid.crs
    if crs.is_geographic:
        return _utm_grid(info)
    if crs.is_projected:
        scale = grid_scale(info.grid)
        if scale is not None and abs(scale - 1.0) > SCALE_TOLERANCE:
            return _utm_grid(info)
    return info.grid


def _utm_grid(info: RasterInfo) -> Grid:
    from pyproj import CRS as PCRS
    from pyproj.aoi import AreaOfInterest
    from pyproj.database import query_utm_crs_info
    from rasterio.warp import calculate_default_transform, transform_bounds

    left, bottom, right, top = info.grid.bounds
    try:
        lon0, lat0, lon1, lat1 = transform_bounds(
            info.grid.crs, "EPSG:4326", left, bottom, right, top, densify_pts=21
        )
    except Exception as exc:  # noqa: BLE001 - pyproj/GDAL raise several types
        raise InputError(f"{info.path}: cannot place its extent on the globe: {exc}") from None
    utm = query_utm_crs_info(
        datum_name="WGS 84",
        area_of_interest=AreaOfInterest(lon0, lat0, lon1, lat1),
    )
    if not utm:
        raise InputError(f"{info.path}: cannot find a UTM zone for its extent")
    # query_utm_crs_info lists every zone the extent touches; the one holding the centre
    # has the smallest scale error over the scene
    zone = int(np.floor(((lon0 + lon1) / 2 + 180) / 6)) % 60 + 1
    code = 32600 + zone if (lat0 + lat1) / 2 >= 0 else 32700 + zone
    codes = [int(u.code) for u in utm]
    crs = CRS.from_wkt(PCRS.from_epsg(code if code in codes else codes[0]).to_wkt())
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


def mosaic_tiles(grid: Grid, side: int, tile: int = 256) -> list[list[Window]]:
    """The windows of :func:`sample_mosaic`'s tiles on ``grid``, row by row (pixels).

    One window covering the whole grid when it fits in ``side`` x ``side`` pixels; else
    ``side // tile`` rows of as many ``tile``-pixel windows, spread evenly over the scene.
    """
    if grid.width <= side and grid.height <= side:
        return [[Window(0, 0, grid.width, grid.height)]]
    n = max(1, side // tile)
    tw, th = min(tile, grid.width), min(tile, grid.height)
    cols = np.linspace(0, grid.width - tw, n).astype(int) // 4 * 4
    rows = np.linspace(0, grid.height - th, n).astype(int) // 4 * 4
    return [[Window(int(c), int(r), tw, th) for c in cols] for r in rows]


def sample_mosaic(
    before: GridReader, after: GridReader, grid: Grid, side: int, tile: int = 256
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full-resolution tiles spread over the scene, side by side in one mosaic.

    Scene-wide models (radiometric maps, change noise scales) are fitted on it: full resolution
    keeps texture statistics true, and spreading the tiles keeps them representative, while the
    memory stays bounded by ``side``**2 pixels whatever the scene's size. The tiles are
    :func:`mosaic_tiles`'s.
    """
    layout = mosaic_tiles(grid, side, tile)
    if len(layout) == 1 and len(layout[0]) == 1:
        w = layout[0][0]
        return before.read_raw(w), after.read_raw(w), before.read_valid(w) & after.read_valid(w)
    bs, as_, vs = [], [], []
    for row in layout:
        rb, ra, rv = [], [], []
        for w in row:
            rb.append(before.read_raw(w))
            ra.append(after.read_raw(w))
            rv.append(before.read_valid(w) & after.read_valid(w))
        bs.append(np.concatenate(rb, axis=2))
        as_.append(np.concatenate(ra, axis=2))
        vs.append(np.concatenate(rv, axis=1))
    return np.concatenate(bs, axis=1), np.concatenate(as_, axis=1), np.concatenate(vs, axis=0)


def mosaic_mask(
    grid: Grid, side: int, geoms: Iterable[shapely.Geometry], tile: int = 256
) -> np.ndarray:
    """bool mask of ``geoms`` (polygons in ``grid``'s CRS) on :func:`sample_mosaic`'s mosaic.

    Each tile is burnt on its own with GDAL's centre-of-pixel rule, so the mask lines up with
    the mosaic pixel for pixel and never needs a whole-scene array.

    Example:
        >>> from affine import Affine
        >>> g = Grid(crs=CRS.from_epsg(32637), transform=Affine(0.5, 0, 0, 0, -0.5, 100),
        ...          width=100, height=100)
        >>> int(mosaic_mask(g, 1024, [shapely.box(0, 90, 5, 100)]).sum())
        200
    """
    from rasterio.features import rasterize
    from rasterio.windows import transform as window_transform

    arr = np.asarray(list(geoms), dtype=object)
    tree = shapely.STRtree(arr) if arr.size else None
    rows = []
    for row in mosaic_tiles(grid, side, tile):
        parts = []
        for w in row:
            shape = (int(w.height), int(w.width))
            t = window_transform(w, grid.transform)
            hit = [] if tree is None else tree.query(shapely.box(*_window_bounds(t, shape)))
            if len(hit):
                m = rasterize(rasterize_shapes(arr[hit], [1] * len(hit)), out_shape=shape,
                              transform=t, dtype=np.uint8)  # fmt: skip
            else:
                m = np.zeros(shape, np.uint8)
            parts.append(m.astype(bool))
        rows.append(np.concatenate(parts, axis=1))
    return np.concatenate(rows, axis=0)


def _window_bounds(t: Affine, shape: tuple[int, int]) -> tuple[float, float, float, float]:
    """(left, bottom, right, top) in CRS units of a ``shape`` (rows, cols) array at ``t``."""
    xs = [t.c, t.c + t.a * shape[1] + t.b * shape[0]]
    ys = [t.f, t.f + t.d * shape[1] + t.e * shape[0]]
    return min(xs), min(ys), max(xs), max(ys)


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


def rasterize_shapes(geoms: np.ndarray, values: Iterable[int]) -> list[tuple[object, int]]:
    """``(geometry, value)`` pairs for ``rasterio.features.rasterize``, cheap to convert.

    Polygons (with their holes) become GeoJSON-like mappings whose rings are lists of
    coordinate lists, read in one vectorised pass: the same coordinates
    ``__geo_interface__`` gives, but rasterio walks Python lists several times faster than
    numpy rows, and no per-geometry Python call of shapely is made. Any other geometry
    (multi-polygons, empty ones, ``None``) is passed as it is.

    Args:
        geoms: shapely geometries (object array), in whatever pixel or CRS coordinates the
            rasterisation's transform expects.
        values: burn value of each geometry.
    """
    arr = np.asarray(geoms, dtype=object).ravel()
    out = list(arr)
    poly = np.flatnonzero((shapely.get_type_id(arr) == 3) & ~shapely.is_empty(arr))
    if len(poly):
        rings, owner = shapely.get_rings(arr[poly], return_index=True)
        xy, ring_of = shapely.get_coordinates(rings, return_index=True)
        ends = np.cumsum(np.bincount(ring_of, minlength=len(rings))).tolist()
        pts = xy.tolist()
        ring_xy = [pts[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]
        first = np.searchsorted(owner, np.arange(len(poly) + 1)).tolist()
        for j, g in enumerate(poly.tolist()):
            out[g] = {"type": "Polygon", "coordinates": ring_xy[first[j] : first[j + 1]]}
    return list(zip(out, values, strict=True))
