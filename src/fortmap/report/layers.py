"""Findings as GeoPackage layers, one per kind, all in one schema (see fortmap.types)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from rasterio.crs import CRS

from fortmap.io.output import FAST_SQLITE, sqlite_options
from fortmap.types import FINDING_COLUMNS, LAYER_KINDS

#: shapely type ids whose ``geom_type`` ends with "Polygon" / "LineString".
_POLYGONAL, _LINEAL = (3, 6), (1, 5)


def findings_frame(
    layer: str,
    geometries: Sequence[shapely.Geometry],
    scores: Sequence[float],
    crs: CRS,
    *,
    date_before: str = "",
    date_after: str = "",
    evidence: Sequence[dict | str] | None = None,
    extra: dict[str, Sequence] | None = None,
) -> gpd.GeoDataFrame:
    """Build a findings layer in the common schema.

    Args:
        layer: layer name, a key of ``fortmap.types.LAYER_KINDS``.
        geometries: shapely geometries in ``crs`` (metres).
        scores: confidence 0..1 per finding (clipped).
        crs: the before image's CRS.
        date_before, date_after: ISO dates of the two images.
        evidence: per finding, a dict (serialised to JSON) or a JSON string.
        extra: extra columns (measures in metres, names, classes).

    Example:
        >>> from shapely import box
        >>> f = findings_frame("cleared_areas", [box(0, 0, 100, 100)], [0.9], "EPSG:32637")
        >>> float(f.area_m2[0]), f.kind[0]
        (10000.0, 'cleared_area')
    """
    n = len(geometries)
    geoms = np.asarray(geometries, dtype=object)
    ev = evidence if evidence is not None else [{}] * n
    ev = [e if isinstance(e, str) else json.dumps(e, separators=(",", ":")) for e in ev]
    # one vectorised call per measure (the same doubles as per geometry); Python floats in
    # lists, as the columns were always built
    kind = shapely.get_type_id(geoms) if n else np.zeros(0, int)
    area = np.where(np.isin(kind, _POLYGONAL), shapely.area(geoms), math.nan).tolist()
    length = np.where(np.isin(kind, _LINEAL), shapely.length(geoms), math.nan).tolist()
    data = {
        "kind": [LAYER_KINDS[layer]] * n,
        "score": np.clip(np.asarray(scores, dtype=float), 0.0, 1.0) if n else [],
        "date_before": [date_before] * n,
        "date_after": [date_after] * n,
        "evidence": ev,
        "area_m2": area,
        "length_m": length,
    }
    for k, v in (extra or {}).items():
        data[k] = list(v)
    df = pd.DataFrame(data, columns=[*FINDING_COLUMNS, *(extra or {})])
    return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(list(geoms), crs=crs), crs=crs)


_GEOM_TYPES = {
    "razed_buildings": "Polygon",
    "cleared_areas": "Polygon",
    "buildings": "Polygon",
    "barricades": "LineString",
    "berms": "LineString",
    "rubble": "Polygon",
    "routes": "LineString",
    "entry_points": "Point",
    "visibility": "Polygon",
}


def write_layers(path: str | Path, layers: dict[str, gpd.GeoDataFrame]) -> None:
    """Write each layer into the GeoPackage ``path`` (empty layers keep their schema), without
    SQLite's fsyncs (``io.output.FAST_SQLITE``): callers write into a temporary folder.

    Args:
        path: the GeoPackage (created, or layers added to it).
        layers: layer name -> frame.
    """
    with sqlite_options(FAST_SQLITE):
        for name, gdf in layers.items():
            kw = _key_options(gdf)
            if gdf.empty:
                kw["geometry_type"] = _GEOM_TYPES.get(name, "Unknown")
            gdf.to_file(path, layer=name, driver="GPKG", engine="pyogrio", **kw)


def append_layer(path: str | Path, name: str, gdf: gpd.GeoDataFrame) -> None:
    """Add the rows of ``gdf`` to the layer ``name`` of the GeoPackage ``path`` (made if
    missing), without SQLite's fsyncs; the layer's fields are those of its first rows."""
    p = Path(path)
    exists = p.exists() and name in {n for n, _ in pyogrio.list_layers(p)}
    with sqlite_options(FAST_SQLITE):
        gdf.to_file(
            p, layer=name, driver="GPKG", engine="pyogrio", append=exists, **_key_options(gdf)
        )


#: The GeoPackage's own row key of a layer that has a ``fid`` column. GDAL would take ``fid``
#: itself as the key, and the parts of a multi-polygon footprint share their input's ``fid``.
ROW_KEY = "fm_id"


def _key_options(gdf: gpd.GeoDataFrame) -> dict:
    """Layer options of a frame: a key of its own when it has a ``fid`` column."""
    return {"layer_options": {"FID": ROW_KEY}} if "fid" in gdf.columns else {}


def write_geojson(layers: dict[str, gpd.GeoDataFrame], out_dir: str | Path) -> list[Path]:
    """One RFC 7946 GeoJSON (WGS84 lon/lat) per layer in ``out_dir`` (made if needed)."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for name, gdf in layers.items():
        p = d / f"{name}.geojson"
        if p.exists():
            p.unlink()
        gdf.to_crs("EPSG:4326").to_file(
            p, driver="GeoJSON", engine="pyogrio", layer_options={"RFC7946": "YES"}
        )
        out.append(p)
    return out
