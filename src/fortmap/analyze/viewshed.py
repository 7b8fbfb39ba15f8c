"""Viewshed: which cells of a DEM an observer can see.

Definitions (all distances in metres, the DEM in a projected CRS):

* The observer stands at the centre of the DEM cell holding its (x, y); the eye is
  ``observer_height`` metres above that cell. A target is the centre of a cell, raised
  ``target_height`` metres.
* Earth curvature and refraction lower every cell at ground distance ``d`` from the observer by
  ``d**2 * (1 - k) / (2 R)`` (``k`` = refraction coefficient, ``R`` = 6,371,000 m), as
  ``gdal_viewshed -cc`` does with ``cc = 1 - k``.
* ``exact`` (R3): a target is visible when no point of the straight line from the eye, sampled
  where it crosses each line of cell centres across its major axis (rows for steep lines,
  columns for flat ones) and interpolated linearly between the two nearest cell centres, rises
  above the sight line. The observer's cell and its eight neighbours are always visible.
* ``fast``: a sweep that casts rays from the observer to every cell of the far edge of each
  octant and carries the largest elevation angle each has met; a cell's horizon is
  interpolated between the two rays on either side of it. O(cells), measured against
  ``exact`` on real DEMs (see ``benchmarks/bench_viewshed.py``): 99.98-99.997 % of cells agree.
* Nodata cells are unknown: never visible (255 in the output) and never blocking (a sample that
  needs a nodata cell is skipped). Cells farther than ``max_distance`` are 0.

Output rasters are uint8: 1 visible, 0 not visible, 255 nodata.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

from fortmap.errors import InputError, OutputExistsError
from fortmap.io.cog import BLOCKSIZE, overview_count
from fortmap.io.raster import open_info
from fortmap.types import Grid

#: Default atmospheric refraction coefficient (standard atmosphere, visible light).
DEFAULT_REFRACTION = 0.13
#: Mean earth radius, metres.
EARTH_RADIUS_M = 6_371_000.0
#: Output codes.
VISIBLE, HIDDEN, NODATA = 1, 0, 255
MODES = ("fast", "exact")


def curvature_coefficient(refraction: float = DEFAULT_REFRACTION, curvature: bool = True) -> float:
    """Drop of the ground per squared metre of distance, ``(1 - k) / (2 R)`` in 1/m (0 if off)."""
    return (1.0 - refraction) / (2.0 * EARTH_RADIUS_M) if curvature else 0.0


def check_projected(crs: object, source: str = "DEM") -> None:
    """Refuse a DEM without a metric projected CRS (distances must be metres).

    Raises:
        InputError: geographic CRS, or a projected CRS whose unit is not the metre.
    """
    if crs is None:
        raise InputError(f"{source}: has no CRS; assign a projected one in metres (e.g. UTM)")
    if crs.is_geographic:
        raise InputError(
            f"{source}: is in a geographic CRS ({crs.to_string()}); reproject it to a metric CRS "
            "first, e.g. `gdalwarp -t_srs EPSG:32614 dem.tif dem_utm.tif` (pick your UTM zone)"
        )
    units = crs.linear_units_factor if crs.is_projected else ("unknown", 0.0)
    if not math.isclose(units[1], 1.0):
        raise InputError(
            f"{source}: CRS unit is {units[0]!r}, not metre; reproject it to a metric CRS (UTM)"
        )


def read_dem(path: str | Path) -> tuple[np.ndarray, Grid]:
    """Read band 1 of a DEM as float32 metres with NaN for nodata, and its grid.

    Raises:
        InputError: unreadable, geographic or non-metric CRS, rotated grid.
    """
    from fortmap.analyze.surface import check_heights  # surface imports this module

    check_heights(path, "DEM")
    info = open_info(path, "DEM")
    check_projected(info.grid.crs, str(info.path))
    t = info.grid.transform
    if t.b != 0 or t.d != 0:
        raise InputError(f"{info.path}: DEM grid is rotated; warp it north-up with gdalwarp first")
    # an uncompressed GeoTIFF is then read through a memory map, not GDAL's block cache: a
    # third of the CPU time on a 4000-square DEM (others are read as before)
    with rasterio.Env(GTIFF_VIRTUAL_MEM_IO="IF_ENOUGH_RAM"), rasterio.open(info.path) as ds:
        z = ds.read(1, out_dtype=np.float32)
    return _as_dem(z, info.nodata), info.grid


def observer_cell(
    dem: np.ndarray, transform: Affine, x: float, y: float, source: str = "DEM"
) -> tuple[int, int]:
    """(row, col) of the cell holding the observer at (x, y), in the DEM's CRS units.

    Raises:
        InputError: the point is outside the DEM or on a nodata cell.
    """
    col, row = ~transform @ (x, y)
    r, c = int(math.floor(row)), int(math.floor(col))
    if not (0 <= r < dem.shape[0] and 0 <= c < dem.shape[1]):
        raise InputError(f"{source}: observer ({x:g}, {y:g}) is outside the DEM")
    if not np.isfinite(dem[r, c]):
        raise InputError(f"{source}: observer ({x:g}, {y:g}) is on a nodata cell")
    return r, c


def check_params(max_distance: float | None, mode: str = "fast", source: str = "DEM") -> float:
    """Validate shared arguments; returns the maximum distance in metres (inf when None)."""
    if mode not in MODES:
        raise InputError(f"{source}: mode must be one of {', '.join(MODES)}, not {mode!r}")
    if max_distance is None:
        return math.inf
    if not max_distance > 0:
        raise InputError(f"{source}: maximum distance must be > 0 m, got {max_distance:g}")
    return float(max_distance)


def _as_dem(dem: np.ndarray, nodata: float | None) -> np.ndarray:
    z = np.ascontiguousarray(dem, dtype=np.float32)
    if nodata is not None and not np.isnan(nodata):
        z = np.where(z == np.float32(nodata), np.float32(np.nan), z)
    return z


def viewshed(
    dem: np.ndarray,
    transform: Affine,
    observer_xy: tuple[float, float],
    *,
    observer_height: float = 2.0,
    target_height: float = 0.0,
    max_distance: float | None = None,
    mode: str = "fast",
    refraction: float = DEFAULT_REFRACTION,
    curvature: bool = True,
    nodata: float | None = None,
    source: str = "DEM",
    map_scale: float = 1.0,
) -> np.ndarray:
    """Viewshed of one observer over a DEM array.

    Args:
        dem: 2-D elevations in metres; NaN (or ``nodata``) marks unknown cells.
        transform: north-up affine transform of ``dem`` in a projected CRS (metres).
        observer_xy: observer position (x, y) in the DEM's CRS, metres.
        observer_height: eye height above the ground, metres.
        target_height: height of the targets above the ground, metres.
        max_distance: cells farther than this (metres, from cell centre to cell centre) are 0;
            None for no limit.
        mode: ``fast`` (ray sweep) or ``exact`` (R3 line of sight to every cell).
        refraction: refraction coefficient k.
        curvature: apply earth curvature and refraction.
        nodata: value marking unknown cells besides NaN.
        source: name of the input, for error messages.
        map_scale: map metres per ground metre of the DEM's CRS around the observer (1 on UTM;
            1/cos(latitude) on Web Mercator); cell sizes are divided by it so that distances,
            ``max_distance`` and the earth's curvature are in ground metres.

    Returns:
        uint8 array shaped like ``dem``: 1 visible, 0 not visible, 255 nodata.

    Raises:
        InputError: observer outside the DEM or on nodata, ``max_distance <= 0``, bad mode.

    Example:
        >>> import numpy as np
        >>> from affine import Affine
        >>> z = np.zeros((5, 9), np.float32); z[:, 5] = 50.0  # a wall east of the observer
        >>> v = viewshed(z, Affine(10, 0, 0, 0, -10, 50), (25.0, 25.0), curvature=False)
        >>> v[2].tolist()
        [1, 1, 1, 1, 1, 1, 0, 0, 0]
    """
    from fortmap.analyze import viewshed_kernels as k

    max_d = check_params(max_distance, mode, source)
    if transform.b != 0 or transform.d != 0:
        raise InputError(f"{source}: DEM grid is rotated; warp it north-up first")
    z = _as_dem(dem, nodata)
    r0, c0 = observer_cell(z, transform, *observer_xy, source=source)
    if not map_scale > 0:
        raise InputError(f"{source}: map scale factor must be positive, got {map_scale}")
    dx, dy = abs(transform.a) / map_scale, abs(transform.e) / map_scale
    eye = float(z[r0, c0]) + float(observer_height)
    curv = curvature_coefficient(refraction, curvature)
    if mode == "exact":
        return k.exact_viewshed(z, r0, c0, dx, dy, eye, float(target_height), max_d, curv)
    return k.fast_viewshed(z, r0, c0, dx, dy, eye, float(target_height), max_d, curv)


def write_mask(out: Path, data: np.ndarray, grid: Grid, tags: dict | None = None) -> None:
    """Write a uint8 single-band raster as a COG (tiled, deflate, overviews, nodata 255).

    The array goes into an in-memory dataset with its overviews (nearest, factors 2, 4, ...
    down to one 512-pixel tile, at least one: :func:`fortmap.io.cog.overview_count`), which GDAL's COG driver then copies in
    one pass, single-threaded: on 2 cores ``NUM_THREADS=ALL_CPUS`` tripled the CPU time and
    did not shorten the wall time, and overviews built by the COG driver itself cost 20 % more
    (``benchmarks/bench_viewshed.py``). Written to a temporary file beside ``out`` and
    renamed, so ``out`` is never half-written.
    """
    from rasterio.enums import Resampling
    from rasterio.io import MemoryFile
    from rasterio.shutil import copy as gdal_copy

    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp.tif", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    profile = {
        "driver": "MEM",
        "width": grid.width,
        "height": grid.height,
        "count": 1,
        "dtype": "uint8",
        "crs": grid.crs,
        "transform": grid.transform,
        "nodata": NODATA,
    }
    try:
        with MemoryFile() as mem, mem.open(**profile) as src:
            src.write(data.astype(np.uint8, copy=False), 1)
            if tags:
                src.update_tags(**{k: str(v) for k, v in tags.items()})
            levels = overview_count(grid.width, grid.height)
            if levels:  # nearest keeps the overviews to 0/1/255
                src.build_overviews([2**k for k in range(1, levels + 1)], Resampling.nearest)
            gdal_copy(
                src,
                tmp,
                driver="COG",
                COMPRESS="DEFLATE",
                LEVEL=1,  # a 0/1 mask compresses well even at the fastest level
                BLOCKSIZE=BLOCKSIZE,
                OVERVIEWS="FORCE_USE_EXISTING" if levels else "NONE",
            )
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def viewshed_file(
    dem_path: str | Path,
    observer_xy: tuple[float, float],
    out_path: str | Path,
    *,
    observer_height: float = 2.0,
    target_height: float = 0.0,
    max_distance: float | None = None,
    mode: str = "fast",
    refraction: float = DEFAULT_REFRACTION,
    curvature: bool = True,
    force: bool = False,
) -> Path:
    """Compute a viewshed from a DEM file and write it as a uint8 COG (1/0/255).

    ``observer_xy`` is in the DEM's CRS (metres); the other arguments are those of
    :func:`viewshed`. Nothing is written when an argument or input is bad. A CRS whose map
    metres are not ground metres at the observer (Web Mercator: 1/cos(latitude)) is measured
    in ground metres through its scale factor there, like ``gdal_viewshed`` on a UTM copy;
    the mask stays on the DEM's own grid.

    Raises:
        InputError: bad DEM or arguments. OutputExistsError: ``out_path`` exists, no ``force``.
    """
    out = Path(out_path)
    if out.exists() and not force:
        raise OutputExistsError(f"{out}: output exists; use --force to replace it")
    if out.is_dir():
        raise OutputExistsError(f"{out}: is a directory, expected a file name")
    check_params(max_distance, mode, str(dem_path))
    z, grid = read_dem(dem_path)
    scale = _map_scale(grid, observer_xy)
    vis = viewshed(
        z,
        grid.transform,
        observer_xy,
        observer_height=observer_height,
        target_height=target_height,
        max_distance=max_distance,
        mode=mode,
        refraction=refraction,
        curvature=curvature,
        source=str(dem_path),
        map_scale=scale,
    )
    tags = {
        "OBSERVER_X": observer_xy[0],
        "OBSERVER_Y": observer_xy[1],
        "OBSERVER_HEIGHT_M": observer_height,
        "TARGET_HEIGHT_M": target_height,
        "MAX_DISTANCE_M": "none" if max_distance is None else max_distance,
        "MODE": mode,
        "REFRACTION": refraction,
        "CURVATURE": curvature,
        "MAP_METRES_PER_GROUND_METRE": round(scale, 6),
    }
    write_mask(out, vis, grid, tags)
    return out


def _map_scale(grid: Grid, observer_xy: tuple[float, float]) -> float:
    """Map metres per ground metre at the observer; 1 where the CRS is off by 1 % or less."""
    from fortmap.io.grids import SCALE_TOLERANCE, point_scale

    scale = point_scale(grid.crs, float(observer_xy[0]), float(observer_xy[1]))
    if scale is None or abs(scale - 1.0) <= SCALE_TOLERANCE:
        return 1.0
    return float(scale)
