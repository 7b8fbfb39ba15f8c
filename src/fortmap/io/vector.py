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


def read_vector(
    path: str | Path,
    role: str,
    layer: str | None = None,
    skip_features: int = 0,
    max_features: int | None = None,
) -> gpd.GeoDataFrame:
    """Read a GeoJSON/GeoPackage/Shapefile with pyogrio (optionally a run of its features).

    Args:
        path: the file.
        role: what it is, for messages ("building footprints").
        layer: the layer to read (default: the first).
        skip_features, max_features: read only features ``skip_features`` to
            ``skip_features + max_features`` (in file order).

    Raises:
        InputError: missing, unreadable, or without a CRS.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: {role} not found")
    if p.is_file() and p.stat().st_size == 0:
        raise InputError(f"{p}: {role} file is empty")
    kw = (
        {}
        if max_features is None
        else {"skip_features": skip_features, "max_features": max_features}
    )
    try:
        gdf = gpd.read_file(p, layer=layer, engine="pyogrio", **kw)
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
    return footprints_inside(read_vector(path, "building footprints"), crs, bounds, path)


def footprints_inside(
    gdf: gpd.GeoDataFrame, crs: CRS, bounds: tuple[float, float, float, float], path: str | Path
) -> gpd.GeoDataFrame:
    """:func:`footprint_parts` of a whole file's footprints as read, with the warning for the
    parts outside the image.

    Raises:
        InputError: no footprint in the file, not polygons, or none inside ``bounds``.
    """
    if gdf.empty:
        raise InputError(f"{path}: building footprints file holds no features")
    gdf, n_out = footprint_parts(gdf, crs, bounds, path)
    warn_outside(path, n_out)
    if gdf.empty:
        raise InputError(f"{path}: no building footprint lies inside the image")
    return gdf


def footprint_parts(
    gdf: gpd.GeoDataFrame,
    crs: CRS,
    bounds: tuple[float, float, float, float],
    path: str | Path,
    fid0: int = 0,
) -> tuple[gpd.GeoDataFrame, int]:
    """The polygon parts of a run of footprints, in ``crs``, that lie mostly inside ``bounds``.

    Args:
        gdf: footprints as read (any CRS), one run of the file.
        crs: the analysis CRS.
        bounds: (left, bottom, right, top) of the analysed area in ``crs`` units.
        path: the file, for messages.
        fid0: ``fid`` of the run's first non-empty footprint (the ones before it in the file).

    Returns:
        The parts (index 0..n-1, with ``fid``) and how many parts lay outside.

    Raises:
        InputError: not polygons.
    """
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty].copy()
    types = set(gdf.geometry.geom_type)
    if not types <= {"Polygon", "MultiPolygon"}:
        raise InputError(f"{path}: building footprints must be polygons, found {sorted(types)}")
    gdf["fid"] = range(fid0, fid0 + len(gdf))
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
    return gdf.reset_index(drop=True), n_out


def warn_outside(path: str | Path, n_out: int) -> None:
    """Warn that ``n_out`` footprint parts outside the image were ignored (none: silent)."""
    if n_out:
        warnings.warn(
            f"{path}: {n_out} footprint part(s) outside the image (or mostly outside) were ignored",
            stacklevel=3,
        )
