"""Parse ``--core``: the district whose ways in the route analysis counts.

Three forms are accepted:

* a polygon file (GeoJSON/GPKG/Shapefile, any CRS; all its polygons are merged);
* ``lon,lat,radius_m``: a circle of ``radius_m`` metres around a WGS84 point;
* the name of a place in ``--places`` (named points, lines or polygons, column ``name``),
  optionally followed by ``,radius_m``; a polygon without a radius is the core itself; a point
  (or a line, or a polygon given a radius, by its representative point) gets a circle of the
  radius, else of its ``radius_m`` column, else of :data:`DEFAULT_PLACE_RADIUS_M`.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pyproj
import shapely
from rasterio.crs import CRS
from shapely.ops import transform as shp_transform

from fortmap.errors import InputError
from fortmap.io.vector import read_vector

#: Radius (m) of the core around a point place when neither the spec nor the file gives one:
#: about a city quarter, a few blocks each way.
DEFAULT_PLACE_RADIUS_M = 500.0

_FLOAT = r"[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?"
_LONLATR = re.compile(rf"^\s*({_FLOAT})\s*,\s*({_FLOAT})\s*,\s*({_FLOAT})\s*(?:m)?\s*$")


def parse_core(
    spec: str,
    crs: CRS | str,
    bounds: tuple[float, float, float, float],
    places: Path | str | None = None,
) -> shapely.Polygon:
    """The core polygon in ``crs``, clipped to the analysed area.

    Args:
        spec: a polygon file path, ``lon,lat,radius_m`` (degrees, degrees, metres), or a place
            name from ``places`` (optionally ``name,radius_m``).
        crs: the analysis CRS (projected, metres).
        bounds: (left, bottom, right, top) of the analysed area in ``crs`` metres.
        places: GeoJSON/GPKG of named places (column ``name``), any CRS.

    Returns:
        A Polygon in ``crs``; the part outside the area is cut off (with a warning).

    Raises:
        InputError: unreadable file, not a polygon, outside the area, covering the whole
            area, unknown place name, or a bad ``lon,lat,radius_m``.
    """
    target = pyproj.CRS.from_user_input(crs)
    area = shapely.box(*bounds)
    m = _LONLATR.match(spec)
    if m:
        where = f"--core {spec.strip()}"
        core = _circle(float(m.group(1)), float(m.group(2)), float(m.group(3)), target, where)
    elif Path(spec).exists():
        where = str(spec)
        core = _polygon_file(Path(spec), target)
    elif places is not None:
        where = str(places)
        core = _place(spec, Path(places), target)
    else:
        raise InputError(
            f"--core {spec}: not a file, not lon,lat,radius_m, and no --places file to look it up in"
        )
    return _clip(core, area, where)


def _circle(lon: float, lat: float, radius: float, crs: pyproj.CRS, where: str) -> shapely.Polygon:
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise InputError(f"{where}: lon,lat must be WGS84 degrees, got {lon}, {lat}")
    if not radius > 0:
        raise InputError(f"{where}: radius must be a positive number of metres, got {radius}")
    x, y = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    # a projected CRS's scale error over a district is < 0.1 % (UTM), well inside the radius's
    # own precision, so the circle is buffered in the analysis CRS directly
    return shapely.Point(x, y).buffer(radius, quad_segs=32)


def _to_crs(geom: shapely.Geometry, src: pyproj.CRS, dst: pyproj.CRS) -> shapely.Geometry:
    if src == dst:
        return geom
    tr = pyproj.Transformer.from_crs(src, dst, always_xy=True)
    return shp_transform(tr.transform, geom)


def _as_polygon(geom: shapely.Geometry, where: str) -> shapely.Polygon:
    geom = shapely.make_valid(geom)
    if geom.geom_type == "MultiPolygon":
        parts = list(geom.geoms)
        raise InputError(f"{where}: core must be one polygon, found {len(parts)} separate parts")
    if geom.geom_type != "Polygon":
        raise InputError(f"{where}: core must be a polygon, found {geom.geom_type}")
    return geom


def _polygon_file(path: Path, crs: pyproj.CRS) -> shapely.Polygon:
    gdf = read_vector(path, "core")
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    if gdf.empty:
        raise InputError(f"{path}: core file holds no features")
    types = sorted(set(gdf.geometry.geom_type))
    if not set(types) <= {"Polygon", "MultiPolygon"}:
        raise InputError(f"{path}: core must be a polygon, found {types}")
    gdf = gdf.to_crs(crs)
    return _as_polygon(shapely.union_all(shapely.make_valid(gdf.geometry.values)), str(path))


def _place(spec: str, path: Path, crs: pyproj.CRS) -> shapely.Polygon:
    gdf = read_vector(path, "places")
    if "name" not in gdf.columns:
        raise InputError(f"{path}: places file has no 'name' column")
    names = gdf["name"].fillna("").astype(str)
    key = names.str.strip().str.casefold()
    name, radius = spec.strip(), None
    hit = gdf[key == name.casefold()]
    if hit.empty and "," in name:
        head, tail = name.rsplit(",", 1)
        try:
            radius = float(tail.strip().removesuffix("m"))
        except ValueError:
            radius = None
        if radius is not None:
            name = head.strip()
            hit = gdf[key == name.casefold()]
    if hit.empty:
        held = sorted(set(names) - {""})
        shown = ", ".join(held[:20]) + (f", ... ({len(held)} in all)" if len(held) > 20 else "")
        raise InputError(f"{path}: no place named '{name}'; it holds: {shown or 'no names'}")
    if len(hit) > 1:
        warnings.warn(
            f"{path}: {len(hit)} places are named '{name}'; using the first", stacklevel=3
        )
    row = hit.iloc[0]
    geom = _to_crs(row.geometry, pyproj.CRS.from_user_input(gdf.crs), crs)
    if geom.geom_type in ("Polygon", "MultiPolygon") and radius is None:
        return _as_polygon(geom, str(path))
    if geom.geom_type != "Point":
        # a line's or ring's centroid can lie off it (a river's bend, a U-shaped district);
        # the representative point is always on or in the feature
        geom = geom.representative_point()
    if radius is None:
        r = row.get("radius_m") if "radius_m" in gdf.columns else None
        radius = float(r) if r is not None and r == r else DEFAULT_PLACE_RADIUS_M
    if not radius > 0:
        raise InputError(f"{path}: place '{name}': radius must be positive, got {radius}")
    return geom.buffer(radius, quad_segs=32)


def _clip(core: shapely.Polygon, area: shapely.Polygon, where: str) -> shapely.Polygon:
    inter = core.intersection(area)
    if inter.is_empty or inter.area <= 0:
        raise InputError(f"{where}: core lies outside the analysed area")
    if inter.area >= area.area * (1 - 1e-9):
        raise InputError(f"{where}: core covers the whole analysed area; nothing is outside it")
    if inter.area < core.area * (1 - 1e-6):
        warnings.warn(
            f"{where}: {100 * (1 - inter.area / core.area):.0f}% of the core lies outside "
            "the images and was cut off",
            stacklevel=3,
        )
    if inter.geom_type != "Polygon":
        polys = [g for g in getattr(inter, "geoms", [inter]) if g.geom_type == "Polygon"]
        inter = max(polys, key=lambda g: g.area)
    return inter
