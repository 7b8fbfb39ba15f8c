"""Inputs of the before/after visibility analysis: the surfaces and the defended edge.

A *surface* is a float32 array of heights in metres (terrain plus whatever stands on it) on a
north-up grid in a projected CRS; NaN marks unknown cells. It is a DSM when one is given, else a
DEM (or flat ground) with building footprints raised to their height.

The *edge* is the line the defenders look out from: a line or polygon in the analysis CRS
(metres). :func:`edge_from` picks it from ``--edge``, a ring of barricades and berms around the
core, or the core's boundary.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from affine import Affine
from rasterio import features
from rasterio.crs import CRS
from rasterio.warp import Resampling, reproject
from shapely.geometry.base import BaseGeometry

from fortmap.errors import InputError
from fortmap.io.vector import read_vector
from fortmap.types import Grid

#: Storey height (m) for buildings without a height: 3 m floor to floor is the usual figure
#: for residential buildings (2.5-2.7 m clear height plus the slab).
DEFAULT_STOREY_M = 3.0
#: Storeys assumed for a building with neither a height nor a storey count.
DEFAULT_STOREYS = 2
#: Height (m) of the debris a razed building leaves on its footprint when nothing better is
#: known: a masonry building is about a quarter solid, so a 2-storey (6 m) one collapses to
#: roughly 1.5 m of rubble, less where it was bulldozed or carted off; 1 m is a middle figure.
DEFAULT_DEBRIS_M = 1.0
#: Crest height (m) of a berm whose height is not known (berms for cover are 2-4 m high).
DEFAULT_BERM_HEIGHT_M = 2.5
#: Base width (m) of a berm: an earth bank 2-4 m high at its angle of repose is 8-15 m wide.
DEFAULT_BERM_WIDTH_M = 10.0
#: Columns that may hold a storey count (OSM's ``building:levels`` and common variants).
LEVEL_COLUMNS = ("building:levels", "levels", "storeys", "stories", "floors")

_LINEAR = ("LineString", "MultiLineString", "LinearRing", "Polygon", "MultiPolygon")


def check_heights(path: str | Path, role: str = "DEM", grid: Grid | None = None) -> Path:
    """Refuse a raster that cannot be a height model, or that misses the analysis grid.

    A DEM or DSM is one band of heights in metres; an image (RGB, several bands) given by
    mistake would be read as heights of 0-255 m without a word.

    Args:
        path: the raster.
        role: what it is for the messages ("DEM", "before DSM").
        grid: the analysis grid (its CRS units); None: the overlap is not checked.

    Returns:
        ``path`` as a Path.

    Raises:
        InputError: missing, unreadable, not georeferenced, or more than one band.
        NoOverlapError: its extent does not overlap ``grid``'s.
    """
    from rasterio.warp import transform_bounds

    from fortmap.errors import NoOverlapError
    from fortmap.io.raster import open_info

    info = open_info(path, role)
    if info.count > 1:
        raise InputError(
            f"{info.path}: {role} has {info.count} bands; a {role} is one band of heights in "
            "metres (is this an image?)"
        )
    if info.dtype == "uint8":
        # an 8-bit DEM holds whole metres from 0 to 255; a grey photo looks exactly like one
        warnings.warn(
            f"{info.path}: {role} holds 8-bit integers (heights 0-255 m in 1 m steps); "
            "if it is an image, give a DEM of heights in metres instead",
            stacklevel=2,
        )
    if grid is None:
        return info.path
    try:
        b = transform_bounds(info.grid.crs, grid.crs, *info.grid.bounds, densify_pts=21)
    except Exception:  # noqa: BLE001 - pyproj/GDAL raise several types off a projection
        b = (math.nan,) * 4
    g = grid.bounds
    if not (min(b[2], g[2]) > max(b[0], g[0]) and min(b[3], g[3]) > max(b[1], g[1])):
        # NaN compares False: a raster that cannot be placed in the grid's CRS misses it too
        raise NoOverlapError(f"{info.path}: {role} does not overlap the images")
    return info.path


def warp_to_grid(
    data: np.ndarray,
    transform: object,
    crs: CRS | str,
    grid: Grid,
    *,
    resampling: Resampling = Resampling.bilinear,
    nodata: float | None = None,
) -> np.ndarray:
    """Resample a height raster onto ``grid`` (float32, NaN where unknown or outside).

    Args:
        data: 2-D heights in metres on the grid given by ``transform`` and ``crs``.
        transform: its affine transform (pixel -> CRS units).
        crs: its CRS.
        grid: the target grid.
        resampling: bilinear for a DEM; ``max`` for a surface whose thin obstacles must keep
            blocking sight on a coarser grid.
        nodata: value marking unknown cells besides NaN.
    """
    src = np.asarray(data, dtype=np.float32)
    if nodata is not None and not math.isnan(nodata):
        src = np.where(src == np.float32(nodata), np.float32(np.nan), src)
    out = np.full((grid.height, grid.width), np.nan, np.float32)
    reproject(
        src,
        out,
        src_transform=transform,
        src_crs=crs,
        src_nodata=np.nan,
        dst_transform=grid.transform,
        dst_crs=grid.crs,
        dst_nodata=np.nan,
        resampling=resampling,
    )
    return out


def _heights(fp: gpd.GeoDataFrame, height_column: str, storey_m: float, storeys: int) -> np.ndarray:
    """Height (m) of each footprint: its height, else storeys x storey height, else the default."""
    h = np.full(len(fp), storeys * storey_m, dtype=float)
    for col in reversed(LEVEL_COLUMNS):
        if col in fp.columns:
            lv = pd.to_numeric(fp[col], errors="coerce").to_numpy(float)
            ok = np.isfinite(lv) & (lv > 0)
            h[ok] = lv[ok] * storey_m
    if height_column in fp.columns:
        hv = pd.to_numeric(fp[height_column], errors="coerce").to_numpy(float)
        ok = np.isfinite(hv) & (hv > 0)
        h[ok] = hv[ok]
    return h


def build_surface(
    grid: Grid,
    footprints: gpd.GeoDataFrame | None,
    *,
    dem: np.ndarray | None = None,
    razed_ids: Iterable[object] | None = None,
    id_column: str = "id",
    height_column: str = "height",
    default_storey_m: float = DEFAULT_STOREY_M,
    default_storeys: int = DEFAULT_STOREYS,
    razed_debris_m: float = 0.0,
    canopy: np.ndarray | None = None,
    relief: np.ndarray | None = None,
    all_touched: bool = False,
    supersample: int = 1,
    bare: BaseGeometry | None = None,
) -> np.ndarray:
    """A surface (m) on ``grid``: the DEM with every standing footprint raised to its height.

    A footprint's height is its ``height_column`` (metres above ground) when positive, else its
    storey count (``building:levels``, ``levels``, ...) times ``default_storey_m``, else
    ``default_storeys`` storeys. Roofs are flat at ground + height, cell by cell; where
    footprints overlap the taller one wins. Like a DSM, the result is ground + the higher of
    buildings and canopy + relief (berms, debris).

    Args:
        grid: the grid of the result (projected CRS, metres).
        footprints: building polygons in any CRS (reprojected to ``grid.crs``); None: none.
        dem: terrain heights (m) already on ``grid``, NaN for unknown; None: flat ground at 0 m.
        razed_ids: values of ``id_column`` of the buildings to leave out (razed ones).
        id_column: column matched against ``razed_ids``.
        height_column: column of heights above ground, metres.
        default_storey_m: metres per storey.
        default_storeys: storeys of a building with neither height nor storey count.
        razed_debris_m: height (m) of the debris left on the razed footprints (see
            :data:`DEFAULT_DEBRIS_M`); 0: bare ground.
        canopy: tree canopy heights (m above ground) on ``grid``; None: no trees.
        relief: berms and the like (m above ground, added on top) on ``grid``; None: none.
        all_touched: raise every cell a footprint touches, not only those whose centre it
            covers.
        supersample: burn the footprints on cells this many times finer (centre rule) and
            keep each cell's highest: what resampling a fine DSM with the maximum gives (as
            :func:`fortmap.analyze.visibility.visibility_change` does), so that walls keep
            blocking sight without the whole-cell growth of ``all_touched`` (on a 2 m grid
            that adds about 7 % to the built cells).
        bare: ground graded bare (cleared areas, ``grid.crs``): the razed footprints get
            no debris there, since clearing scrapes the ground and carts the rubble off.

    Returns:
        float32 (grid.height, grid.width) heights in metres.

    Raises:
        InputError: ``dem``, ``canopy`` or ``relief`` shaped unlike ``grid``, ``razed_ids``
            given without ``id_column``.
    """
    shape = (grid.height, grid.width)
    if dem is None:
        z = np.zeros(shape, np.float32)
    else:
        z = np.asarray(dem, dtype=np.float32)
        if z.shape != shape:
            raise InputError(f"DEM: shape {z.shape} is not the analysis grid's {shape}")
        z = z.copy()
    above = np.zeros(shape, np.float32)
    if canopy is not None:
        above = np.maximum(above, _on_grid(canopy, shape, "canopy"))
    if relief is not None:
        z += _on_grid(relief, shape, "relief")
    if footprints is None or footprints.empty:
        return z + above
    fp = footprints[footprints.geometry.notna() & ~footprints.geometry.is_empty]
    if fp.crs is not None and CRS.from_user_input(fp.crs) != grid.crs:
        fp = fp.to_crs(grid.crs)
    fp = fp[fp.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    if razed_ids is not None:
        ids = set(razed_ids)
        if ids:
            if id_column not in fp.columns:
                raise InputError(f"footprints: no '{id_column}' column to match razed buildings")
            gone = fp[id_column].isin(ids)
            if razed_debris_m > 0 and gone.any():
                g = fp.geometry[gone].to_numpy()
                if bare is not None and not bare.is_empty:
                    g = shapely.difference(g, bare)
                    g = g[~shapely.is_empty(g)]
                if g.size:
                    z += _burn_max(
                        g, np.full(g.size, razed_debris_m), grid, supersample, all_touched
                    )
            fp = fp[~gone]
    if fp.empty:
        return z + above
    h = _heights(fp, height_column, default_storey_m, default_storeys)
    order = np.argsort(h, kind="stable")  # burned last wins: the taller of overlapping ones
    geoms = fp.geometry.to_numpy()[order]
    raised = _burn_max(geoms, h[order], grid, supersample, all_touched)
    return z + np.maximum(raised, above)


def _burn_max(
    geoms: np.ndarray, values: np.ndarray, grid: Grid, supersample: int, all_touched: bool
) -> np.ndarray:
    """``values`` burned on ``grid`` (the last burned wins), each cell the highest of its
    ``supersample`` x ``supersample`` sub-cells; worked in strips so memory stays bounded."""
    shape = (grid.height, grid.width)
    s = max(1, int(supersample))
    if s == 1:
        return features.rasterize(
            zip(geoms, values, strict=True), out_shape=shape, transform=grid.transform,
            fill=0.0, dtype="float32", all_touched=all_touched,
        )  # fmt: skip
    out = np.zeros(shape, np.float32)
    tree = shapely.STRtree(geoms)
    step = max(1, (1 << 22) // (grid.width * s * s))  # about 16 MB of fine cells a strip
    fine = grid.transform @ Affine.scale(1.0 / s)
    for r0 in range(0, grid.height, step):
        r1 = min(grid.height, r0 + step)
        (xa, ya), (xb, yb) = grid.transform @ (0, r0), grid.transform @ (grid.width, r1)
        idx = np.sort(tree.query(shapely.box(min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb))))
        if idx.size == 0:
            continue
        burnt = features.rasterize(
            zip(geoms[idx], values[idx], strict=True), out_shape=((r1 - r0) * s, grid.width * s),
            transform=fine @ Affine.translation(0, r0 * s), fill=0.0, dtype="float32",
            all_touched=all_touched,
        )  # fmt: skip
        out[r0:r1] = burnt.reshape(r1 - r0, s, grid.width, s).max(axis=(1, 3))
    return out


def _on_grid(a: np.ndarray, shape: tuple[int, int], name: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    if a.shape != shape:
        raise InputError(f"{name}: shape {a.shape} is not the analysis grid's {shape}")
    return np.nan_to_num(a, nan=0.0)


def berm_relief(
    grid: Grid,
    berms: gpd.GeoDataFrame | None,
    *,
    default_height_m: float = DEFAULT_BERM_HEIGHT_M,
    width_m: float = DEFAULT_BERM_WIDTH_M,
) -> np.ndarray:
    """Heights (m above ground) of berms on ``grid``: a parabolic bank around each crest.

    The profile is ``height * (1 - (2 d / width)**2)`` at distance ``d`` (m) from the crest,
    as a bank of earth at rest. Rows whose ``kind`` is ``ditch`` are left out (a ditch lowers
    the ground: it never blocks sight).

    Args:
        grid: the grid of the result (projected CRS, metres).
        berms: crest lines (the ``berms`` layer of ``analyze``), any CRS; ``height_m`` (m)
            where known.
        default_height_m: crest height where ``height_m`` is missing or not positive.
        width_m: base width of the bank, metres.

    Returns:
        float32 (grid.height, grid.width) heights in metres, 0 off the berms.
    """
    shape = (grid.height, grid.width)
    out = np.zeros(shape, np.float32)
    if berms is None or berms.empty:
        return out
    b = berms[berms.geometry.notna() & ~berms.geometry.is_empty]
    if "kind" in b.columns:
        b = b[b["kind"] != "ditch"]
    if b.crs is not None and CRS.from_user_input(b.crs) != grid.crs:
        b = b.to_crs(grid.crs)
    if b.empty:
        return out
    h = np.full(len(b), default_height_m, float)
    if "height_m" in b.columns:
        hv = pd.to_numeric(b["height_m"], errors="coerce").to_numpy(float)
        ok = np.isfinite(hv) & (hv > 0)
        h[ok] = hv[ok]
    for geom, hk in zip(b.geometry, h, strict=True):
        x0, y0, x1, y1 = geom.buffer(width_m / 2).bounds
        c0, r0 = ~grid.transform @ (x0, y1)
        c1, r1 = ~grid.transform @ (x1, y0)
        c0, r0 = max(0, int(math.floor(c0))), max(0, int(math.floor(r0)))
        c1, r1 = min(grid.width, int(math.ceil(c1))), min(grid.height, int(math.ceil(r1)))
        if c1 <= c0 or r1 <= r0:
            continue
        rows, cols = np.mgrid[r0:r1, c0:c1]
        x, y = grid.transform @ (cols + 0.5, rows + 0.5)
        d = shapely.distance(shapely.points(x.ravel(), y.ravel()), geom).reshape(rows.shape)
        prof = hk * np.clip(1.0 - (2.0 * d / width_m) ** 2, 0.0, None)
        out[r0:r1, c0:c1] = np.maximum(out[r0:r1, c0:c1], prof.astype(np.float32))
    return out


def destroyed_ids(buildings: gpd.GeoDataFrame, id_column: str = "id") -> set[object]:
    """Ids of the footprints ``analyze`` classed ``destroyed`` (its ``buildings`` layer).

    Raises:
        InputError: the layer has no ``damage`` or no ``id_column`` column.
    """
    for col in ("damage", id_column):
        if col not in buildings.columns:
            raise InputError(f"buildings layer: no '{col}' column")
    return set(buildings.loc[buildings["damage"] == "destroyed", id_column].tolist())


def as_edge(geometry: BaseGeometry | None, source: str = "edge") -> BaseGeometry:
    """The line and polygon parts of ``geometry`` (points are dropped), merged.

    Raises:
        InputError: empty, or no line or polygon in it.
    """
    if geometry is None or geometry.is_empty:
        raise InputError(f"{source}: edge geometry is empty")
    parts = [p for p in shapely.get_parts(geometry) if p.geom_type in _LINEAR and not p.is_empty]
    if not parts:
        raise InputError(f"{source}: edge has no line or polygon (found {geometry.geom_type})")
    return parts[0] if len(parts) == 1 else shapely.GeometryCollection(parts)


def _max_gap_deg(points: np.ndarray, centre: tuple[float, float]) -> float:
    az = np.sort(np.degrees(np.arctan2(points[:, 0] - centre[0], points[:, 1] - centre[1])) % 360)
    gaps = np.diff(np.concatenate([az, az[:1] + 360.0]))
    return float(gaps.max())


def fortification_ring(
    layers: Sequence[gpd.GeoDataFrame | None], centre: tuple[float, float] | None = None
) -> shapely.Polygon | None:
    """The convex hull of barricades and berms when they surround ``centre``, else None.

    They surround it when it lies inside the hull of their vertices, i.e. when no angular gap
    between them, seen from the centre, reaches 180 degrees (a geometric criterion, nothing
    fitted). Without a centre, any three or more non-collinear features form a ring.

    Args:
        layers: findings layers (lines or polygons) in the analysis CRS, metres.
        centre: (x, y) of the defended place (the core's centroid), metres.
    """
    geoms = [g for lay in layers if lay is not None for g in lay.geometry if g is not None]
    geoms = [g for g in geoms if not g.is_empty]
    if len(geoms) < 3:
        return None
    hull = shapely.convex_hull(shapely.GeometryCollection(geoms))
    if hull.geom_type != "Polygon" or hull.area <= 0:
        return None
    if centre is not None:
        pts = np.asarray([shapely.get_coordinates(g).mean(axis=0) for g in geoms])
        if _max_gap_deg(pts, centre) >= 180.0 or not hull.contains(shapely.Point(centre)):
            return None
    return hull


def edge_from(
    crs: CRS | str,
    edge_file: str | Path | None = None,
    core: BaseGeometry | None = None,
    fortifications: Sequence[gpd.GeoDataFrame | None] = (),
) -> tuple[BaseGeometry, str]:
    """The defended edge in ``crs`` (metres) and where it came from.

    Order: ``edge_file`` (its lines and polygons, merged); else the ring of the barricades and
    berms within one equivalent radius (``sqrt(area / pi)``) of the core when they surround its
    centroid (see :func:`fortification_ring`); else the
    core polygon; else a ring of barricades and berms without a core.

    Args:
        crs: the analysis CRS (projected, metres).
        edge_file: GeoJSON/GPKG of lines or polygons, any CRS.
        core: the core polygon in ``crs`` (from :func:`fortmap.analyze.core.parse_core`).
        fortifications: barricade and berm findings layers in ``crs``.

    Returns:
        (edge, source) with source one of ``edge_file``, ``fortification_ring``, ``core``.

    Raises:
        InputError: the file is unreadable or holds no line or polygon; nothing to build an
            edge from.
    """
    if edge_file is not None:
        gdf = read_vector(edge_file, "edge")
        gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
        if gdf.empty:
            raise InputError(f"{edge_file}: edge file holds no features")
        gdf = gdf.to_crs(crs)
        return as_edge(shapely.union_all(gdf.geometry.to_numpy()), str(edge_file)), "edge_file"
    centre = None
    if core is not None and not core.is_empty:
        c = core.centroid
        centre = (c.x, c.y)
    near = list(fortifications)
    if centre is not None:
        # only works around this core: within one equivalent radius of it (scale, not fitted),
        # so a stray detection across the city cannot stretch the ring
        reach = core.buffer(math.sqrt(core.area / math.pi)) if core.area > 0 else core
        near = [lay[lay.intersects(reach)] if lay is not None else None for lay in near]
    ring = fortification_ring(near, centre)
    if ring is not None:
        return ring, "fortification_ring"
    if core is not None and not core.is_empty:
        return as_edge(core, "core"), "core"
    if any(lay is not None and not lay.empty for lay in fortifications):
        warnings.warn(
            "visibility: barricades and berms do not form a ring and no core was given",
            stacklevel=2,
        )
    raise InputError("visibility: no edge: give --edge, or --core to use its boundary")


def open_dsms(dsm_before: str | Path | None, dsm_after: str | Path | None, grid: Grid) -> tuple:
    """Open the two dates' DSMs on the analysis grid and measure them once for the scene.

    Heights are read in metres on ``grid`` (warped there, with a warning, when a DSM has a
    grid of its own); nodata reads as NaN, and the after DSM's offset and tilt against the
    before one are removed before any rule compares the two
    (:func:`fortmap.detect.dsm_noise.measure_dsms`).

    Args:
        dsm_before, dsm_after: the DSM files (any CRS), or both None.
        grid: the analysis grid.

    Returns:
        (the two readers or None, the noise or None, the DSM rules, the summary entry
        ``dsm_quality`` or None). A rule the DSMs cannot resolve is off, with a warning.

    Raises:
        InputError: only one of the two DSMs given, or one unreadable.
    """
    from fortmap.detect.dsm_noise import dsm_rules, measure_dsms
    from fortmap.io.raster import GridReader, open_info

    if (dsm_before is None) != (dsm_after is None):
        raise InputError("give both --dsm-before and --dsm-after, or neither")
    if dsm_before is None:
        return None, None, dsm_rules(None), None
    infos = [
        open_info(p, role) for p, role in ((dsm_before, "before DSM"), (dsm_after, "after DSM"))
    ]
    for p, info in zip((dsm_before, dsm_after), infos, strict=True):
        if info.grid != grid:
            warnings.warn(f"{p}: DSM is not on the before image's grid; reprojected", stacklevel=3)
    raw = tuple(GridReader(info.path, grid, [1]) for info in infos)
    dsms, noise, rules, entry = measure_dsms(*raw, grid)
    if "warning" in entry:
        warnings.warn(entry["warning"], stacklevel=3)
    return dsms, noise, rules, entry
