"""Read vector inputs (footprints, roads) in any CRS onto the analysis CRS."""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely
from rasterio.crs import CRS

from fortmap.errors import InputError


def _gdal_reason(msg: str) -> str:
    """GDAL's message, first line, without its hint about driver prefixes (noise for a user)."""
    first = msg.splitlines()[0] if msg else "unknown error"
    if "not recognized as being in a supported file format" in first:
        return "not a vector format GDAL reads (GeoJSON, GeoPackage, Shapefile, ...)"
    return first.split("; It might help")[0]


def read_vector(path: str | Path, role: str, layer: str | None = None) -> gpd.GeoDataFrame:
    """Read a GeoJSON/GeoPackage/Shapefile with pyogrio.

    Raises:
        InputError: missing, unreadable, or without a CRS.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: {role} not found")
    if p.is_file() and p.stat().st_size == 0:
        raise InputError(f"{p}: {role} file is empty")
    try:
        gdf = gpd.read_file(p, layer=layer, engine="pyogrio")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError) as exc:
        raise InputError(f"{p}: cannot read {role}: {_gdal_reason(str(exc))}") from None
    if gdf.crs is None:
        if p.suffix.lower() in (".geojson", ".json"):
            gdf = gdf.set_crs("EPSG:4326")  # RFC 7946: GeoJSON without a CRS is WGS84
        else:
            raise InputError(f"{p}: {role} has no CRS")
    return gdf


def read_footprints(
    path: str | Path, crs: CRS, bounds: tuple[float, float, float, float]
) -> gpd.GeoDataFrame:
    """Building footprints reprojected to ``crs`` and kept where they overlap ``bounds``.

    Args:
        path: polygons (GeoJSON/GPKG...) in any CRS.
        crs: the analysis CRS (the before image's).
        bounds: (left, bottom, right, top) of the analysed area in ``crs`` units.

    Returns:
        Polygons (multi-polygons split into parts) with the input's attributes plus
        ``fid`` (the row number in the input). Footprints with less than half their area inside
        the image are dropped with a warning.

    Raises:
        InputError: not polygons, or none inside the area.
    """
    gdf = read_vector(path, "building footprints")
    if gdf.empty:
        raise InputError(f"{path}: building footprints file holds no features")
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty].copy()
    types = set(gdf.geometry.geom_type)
    if not types <= {"Polygon", "MultiPolygon"}:
        raise InputError(f"{path}: building footprints must be polygons, found {sorted(types)}")
    gdf["fid"] = range(len(gdf))
    gdf = gdf.to_crs(crs)
    gdf["geometry"] = shapely.make_valid(gdf.geometry.values)
    gdf = gdf.explode(index_parts=False)
    gdf = gdf[gdf.geom_type == "Polygon"]
    box = shapely.box(*bounds)
    # A footprint cut by the image edge is still analysed on its visible part; one mostly
    # outside is not a building this image can tell anything about.
    geoms = gdf.geometry.values
    b = shapely.bounds(geoms)
    area = shapely.area(geoms)
    # a part whose bounding box lies in the area is wholly inside (its intersection is
    # itself, a fraction of 1 up to rounding): no intersection needed
    inside = (
        (area >= 1e-9)
        & (b[:, 0] >= bounds[0])
        & (b[:, 1] >= bounds[1])
        & (b[:, 2] <= bounds[2])
        & (b[:, 3] <= bounds[3])
    )
    cut = np.flatnonzero(~inside)
    if len(cut):
        frac = shapely.area(shapely.intersection(geoms[cut], box)) / np.clip(area[cut], 1e-9, None)
        inside[cut] = frac >= 0.5
    n_out = int((~inside).sum())
    if n_out:
        gdf = gdf[inside]
        warnings.warn(
            f"{path}: {n_out} footprint part(s) outside the image (or mostly outside) were ignored",
            stacklevel=2,
        )
    if gdf.empty:
        raise InputError(f"{path}: no building footprint lies inside the image")
    return gdf.reset_index(drop=True)
