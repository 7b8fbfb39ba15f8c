"""Read roads (``--roads``): GeoJSON/GPKG lines in any CRS, or an OpenStreetMap extract.

Roads are kept when cars or people on foot can travel them in force, since the route analysis
asks whether a barricade or berm closes a way into a district:

* ``major``: motorway, trunk, primary, secondary, tertiary and their ``*_link``;
* ``minor``: residential, unclassified, service, living_street, track, pedestrian, road,
  busway.

Footways, paths, steps, cycleways, bridleways, corridors, platforms, elevators and roads under
construction or proposed are dropped: they are narrower than a vehicle, rarely visible from
above at 0.3-1 m, and a barricade is built against vehicles.

Width (``width_m``, metres) comes from OSM ``width`` (metres, or feet written ``12'``/``12 ft``),
else ``lanes`` x 3.0 m (the narrow end of 2.75-3.75 m design lane widths), else a per-class
default from typical carriageway widths. Widths outside 2-60 m are taken as tagging errors.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from rasterio.crs import CRS

from fortmap.errors import InputError
from fortmap.io.osm import is_osm_path, read_osm_highways
from fortmap.io.vector import read_vector

MAJOR_HIGHWAYS: frozenset[str] = frozenset(
    {"motorway", "trunk", "primary", "secondary", "tertiary"}
    | {f"{k}_link" for k in ("motorway", "trunk", "primary", "secondary", "tertiary")}
)
MINOR_HIGHWAYS: frozenset[str] = frozenset(
    {
        "residential",
        "unclassified",
        "service",
        "living_street",
        "track",
        "pedestrian",
        "road",
        "busway",
    }
)

#: Carriageway width (m) assumed when neither ``width`` nor ``lanes`` is tagged.
DEFAULT_WIDTH_M: dict[str, float] = {
    "motorway": 14.0,
    "trunk": 12.0,
    "primary": 10.0,
    "secondary": 8.0,
    "tertiary": 7.0,
    "motorway_link": 5.0,
    "trunk_link": 5.0,
    "primary_link": 5.0,
    "secondary_link": 5.0,
    "tertiary_link": 5.0,
    "residential": 6.0,
    "unclassified": 6.0,
    "living_street": 5.0,
    "pedestrian": 5.0,
    "road": 6.0,
    "busway": 6.0,
    "service": 4.0,
    "track": 3.0,
    "major": 8.0,
    "minor": 5.0,
}
LANE_WIDTH_M = 3.0
_MIN_WIDTH_M, _MAX_WIDTH_M = 2.0, 60.0

ROAD_COLUMNS: tuple[str, ...] = ("road_class", "highway", "name", "width_m")

_NUM = r"(\d+(?:[.,]\d+)?)"
_FEET_INCH = re.compile(rf"^{_NUM}\s*'\s*(?:(\d+(?:\.\d+)?)\s*\")?$")


def road_class(highway: str) -> str | None:
    """``major``, ``minor`` or None (not a road fortmap keeps) for an OSM ``highway`` value."""
    if highway in MAJOR_HIGHWAYS:
        return "major"
    if highway in MINOR_HIGHWAYS:
        return "minor"
    return None


def parse_width_m(value: object) -> float:
    """An OSM ``width`` value in metres (NaN when absent or not understood).

    Example:
        >>> parse_width_m("7.5"), parse_width_m("3,5 m"), round(parse_width_m("10'"), 3)
        (7.5, 3.5, 3.048)
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.nan
    if isinstance(value, int | float):
        return float(value)
    s = str(value).strip().lower()
    if not s:
        return math.nan
    m = _FEET_INCH.match(s)
    if m:
        return float(m.group(1).replace(",", ".")) * 0.3048 + float(m.group(2) or 0) * 0.0254
    m = re.match(rf"^{_NUM}\s*(m|metres?|meters?|ft|feet)?$", s)
    if not m:
        return math.nan
    v = float(m.group(1).replace(",", "."))
    return v * 0.3048 if m.group(2) in ("ft", "feet") else v


def _widths(df: pd.DataFrame, highway: pd.Series, cls: pd.Series) -> np.ndarray:
    """Width per road (m): ``width_m``/``width`` column, else lanes x 3 m, else class default."""
    n = len(df)
    w = np.full(n, np.nan)
    for col in ("width_m", "width"):
        if col in df.columns:
            w = np.where(np.isnan(w), [parse_width_m(v) for v in df[col]], w)
    if "lanes" in df.columns:
        lanes = pd.to_numeric(df["lanes"], errors="coerce").to_numpy(dtype=float)
        w = np.where(np.isnan(w), lanes * LANE_WIDTH_M, w)
    w = np.where((w >= _MIN_WIDTH_M) & (w <= _MAX_WIDTH_M), w, np.nan)
    default = [
        DEFAULT_WIDTH_M.get(h, DEFAULT_WIDTH_M[c]) for h, c in zip(highway, cls, strict=True)
    ]
    return np.where(np.isnan(w), default, w)


def _classify(gdf: gpd.GeoDataFrame, path: Path) -> gpd.GeoDataFrame:
    """Add ``road_class``/``highway``/``name``/``width_m``; drop ways fortmap does not keep."""
    if "road_class" not in gdf.columns and "class" in gdf.columns:
        # fortmap's own road files (and the simulator's) name the column ``class``
        gdf = gdf.rename(columns={"class": "road_class"})
    if "highway" in gdf.columns:
        highway = gdf["highway"].fillna("").astype(str)
        cls = highway.map(road_class)
        if "road_class" in gdf.columns:
            # an explicit class on a feature without a known highway tag is kept as given
            given = gdf["road_class"].where(gdf["road_class"].isin(("major", "minor")))
            cls = cls.where(cls.notna(), given)
    elif "road_class" in gdf.columns:
        cls = gdf["road_class"].astype(str).str.lower()
        bad = sorted(set(cls) - {"major", "minor"})
        if bad:
            raise InputError(f"{path}: road_class must be major or minor, found {bad[:5]}")
        highway = pd.Series([""] * len(gdf), index=gdf.index)
    else:
        # plain lines with no tags: roads of unknown class, treated as minor
        cls = pd.Series(["minor"] * len(gdf), index=gdf.index)
        highway = pd.Series([""] * len(gdf), index=gdf.index)
    keep = cls.notna().to_numpy()
    gdf, highway, cls = gdf[keep], highway[keep], cls[keep]
    name = gdf["name"].fillna("").astype(str) if "name" in gdf.columns else [""] * len(gdf)
    out = gpd.GeoDataFrame(
        {
            "road_class": cls.astype(str).to_numpy(),
            "highway": highway.to_numpy(),
            "name": np.asarray(name, dtype=object),
            "width_m": _widths(gdf, highway, cls),
        },
        geometry=gdf.geometry.to_numpy(),
        crs=gdf.crs,
    )
    if "osm_id" in gdf.columns:
        out["osm_id"] = gdf["osm_id"].to_numpy()
    return out


def _fmt(bounds: tuple[float, float, float, float]) -> str:
    return "(" + ", ".join(f"{b:.0f}" for b in bounds) + ")"


def read_roads(
    path: str | Path,
    crs: CRS | str,
    bounds: tuple[float, float, float, float] | None = None,
) -> gpd.GeoDataFrame:
    """Roads as LineStrings in ``crs`` with their class, OSM highway tag, name and width.

    Args:
        path: GeoJSON/GPKG/Shapefile lines in any CRS (optional columns ``highway``,
            ``road_class``, ``name``, ``width_m`` or ``width``, ``lanes``), or an OpenStreetMap
            extract (``.osm.pbf``, ``.osm``, ``.osm.bz2``, ``.osm.gz``).
        crs: the analysis CRS (projected, metres), e.g. the before image's.
        bounds: optional (left, bottom, right, top) of the analysed area in ``crs`` metres;
            roads that do not touch it are dropped (not clipped).

    Returns:
        GeoDataFrame with columns ``road_class`` (major|minor), ``highway``, ``name``,
        ``width_m`` (metres) and LineString geometry in ``crs``; multi-lines are split.

    Raises:
        InputError: unreadable file, not lines, no roads, geographic ``crs``, or no road
            inside ``bounds``.
    """
    p = Path(path)
    target = pyproj.CRS.from_user_input(crs)
    if not target.is_projected:
        raise InputError(f"{p}: roads need a projected analysis CRS in metres, got {target.name}")
    if is_osm_path(p):
        bbox = None
        if bounds is not None:
            tr = pyproj.Transformer.from_crs(target, "EPSG:4326", always_xy=True)
            # pad by ~100 m so a way with only one node inside still reaches the area
            w, s, e, n = tr.transform_bounds(*bounds, densify_pts=21)
            pad = 0.001
            bbox = (w - pad, s - pad, e + pad, n + pad)
        gdf = read_osm_highways(p, bbox)
        if gdf.empty and (bbox is None or read_osm_highways(p).empty):
            raise InputError(f"{p}: OpenStreetMap file holds no highway ways")
        if gdf.empty:
            raise InputError(f"{p}: no road overlaps the images' area {_fmt(bounds)}")
    else:
        gdf = read_vector(p, "roads")
        if gdf.empty:
            raise InputError(f"{p}: roads file holds no features")
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    types = set(gdf.geometry.geom_type)
    if not types <= {"LineString", "MultiLineString"}:
        raise InputError(f"{p}: roads must be lines, found {sorted(types)}")
    gdf = gdf.explode(index_parts=False).reset_index(drop=True)
    gdf = _classify(gdf, p)
    if gdf.empty:
        kept = "motorway..tertiary, residential, unclassified, service, track, pedestrian..."
        raise InputError(f"{p}: no roads of the classes fortmap reads ({kept})")
    gdf = gdf.to_crs(target)
    if bounds is not None:
        gdf = gdf[shapely.intersects(gdf.geometry.values, shapely.box(*bounds))]
        if gdf.empty:
            raise InputError(f"{p}: no road overlaps the images' area {_fmt(bounds)}")
    return gdf.reset_index(drop=True)
