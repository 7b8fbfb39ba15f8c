"""The simulated city laid on a real OpenStreetMap street and building layout.

The scene is a square centred on the extract's road network, in the extract's UTM zone. Real
roads (class, name, width from :func:`fortmap.io.roads.read_roads`) and real building
footprints are kept; the blocks between streets that OSM leaves (nearly) empty are filled with
generated buildings oriented to their block. Trees, fields and bare patches are generated as
for the generated city; there is no river or airfield. Everything in the returned
:class:`~fortmap.simulate.layout.City` is in local metres from the scene's south-west corner.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyproj
import shapely
from rasterio.crs import CRS
from shapely.geometry import LineString, Point, Polygon

from fortmap.errors import InputError
from fortmap.io.osm import is_osm_path, read_osm_highways
from fortmap.io.roads import parse_width_m, read_roads
from fortmap.simulate.layout import (
    CORE_RADIUS_FRACTION,
    ROOF_P,
    ROOF_PALETTE,
    City,
    _buildings,
)
from fortmap.simulate.shapes import _polys
from fortmap.simulate.vegetation import vegetation

#: Storey height (m) used for ``building:levels`` and generated buildings alike.
STOREY_M = 3.1
#: A block is filled with generated buildings when OSM footprints cover less than this
#: fraction of it: a mapped block is left as mapped, an unmapped one is built up.
FILL_BELOW_COVER = 0.05


@dataclass
class OsmSite:
    """Real layout of a scene, read from an OSM extract (local metres, see module doc).

    Attributes:
        path: the extract.
        crs: the scene's UTM CRS.
        origin_en: (easting, northing) of the scene's south-west corner (m).
        size_m: side of the square scene (m).
        centre_lonlat: the scene's centre (WGS84 degrees).
        roads: dicts with ``geometry``, ``class``, ``name``, ``width_m`` (m), ``highway``.
        b_geom: building footprints (object array of Polygons).
        b_height: height per footprint (m) from ``height``/``building:levels``; NaN untagged.
    """

    path: Path
    crs: CRS
    origin_en: tuple[float, float]
    size_m: float
    centre_lonlat: tuple[float, float]
    roads: list[dict]
    b_geom: np.ndarray
    b_height: np.ndarray

    def meta(self) -> dict:
        """JSON-serialisable description for ``scene.json``."""
        return {
            "file": str(self.path),
            "centre_lonlat": [round(v, 7) for v in self.centre_lonlat],
            "osm_roads": len(self.roads),
            "osm_buildings": int(self.b_geom.size),
        }


def read_osm_buildings(
    path: Path, bbox_lonlat: tuple[float, float, float, float] | None = None
) -> gpd.GeoDataFrame:
    """Building footprints (closed ways and multipolygons) of an OSM extract, in WGS84.

    Args:
        path: ``.osm.pbf``/``.osm``/... file.
        bbox_lonlat: optional (west, south, east, north) degrees; footprints missing it skipped.

    Returns:
        GeoDataFrame (EPSG:4326) with ``height_m`` (metres from ``height``, else
        ``building:levels`` x 3.1 m, else NaN) and Polygon geometry. May be empty.

    Raises:
        InputError: unreadable file.
    """
    import osmium  # deferred: only needed for OSM input

    polys, heights = [], []
    try:
        fp = (
            osmium.FileProcessor(str(path))
            .with_areas(osmium.filter.KeyFilter("building"))
            .with_filter(osmium.filter.EntityFilter(osmium.osm.AREA))
        )
        for a in fp:
            if "building" not in a.tags:
                continue
            h = parse_width_m(a.tags.get("height", ""))
            if not h > 0:
                lv = parse_width_m(a.tags.get("building:levels", ""))
                h = lv * STOREY_M + 1.0 if lv > 0 else math.nan
            for outer in a.outer_rings():
                shell = [(p.lon, p.lat) for p in outer]
                holes = [[(p.lon, p.lat) for p in r] for r in a.inner_rings(outer)]
                if len(shell) < 4:
                    continue
                poly = shapely.make_valid(Polygon(shell, holes))
                for part in _polys(poly):
                    polys.append(part)
                    heights.append(h)
    except RuntimeError as exc:
        raise InputError(
            f"{path}: cannot read OpenStreetMap file: {str(exc).splitlines()[0]}"
        ) from None
    gdf = gpd.GeoDataFrame(
        {"height_m": np.asarray(heights, float)},
        geometry=gpd.GeoSeries(polys, crs="EPSG:4326"),
        crs="EPSG:4326",
    )
    if bbox_lonlat is not None and len(gdf):
        gdf = gdf[shapely.intersects(gdf.geometry.values, shapely.box(*bbox_lonlat))]
    return gdf.reset_index(drop=True)


def utm_crs(lon: float, lat: float) -> CRS:
    """The WGS84 UTM zone CRS holding (lon, lat) degrees."""
    zone = int((lon + 180.0) // 6.0) % 60 + 1
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def load_osm_site(path: Path, size_m: float, gsd: float) -> OsmSite:
    """Read the scene's roads and buildings from an OSM extract.

    Args:
        path: the extract.
        size_m: wanted side of the scene (m); cut to the extract's road extent when larger.
        gsd: ground sample distance (m per pixel); the side is a whole number of pixels.

    Raises:
        InputError: not an OSM file, unreadable, no roads, or an extent under 200 m.
    """
    if not is_osm_path(path):
        raise InputError(f"{path}: --osm needs an OpenStreetMap extract (.osm.pbf, .osm, ...)")
    hw = read_osm_highways(path)
    if hw.empty:
        raise InputError(f"{path}: OpenStreetMap file holds no highway ways")
    w, s, e, n = hw.total_bounds
    lon, lat = (w + e) / 2, (s + n) / 2
    crs = utm_crs(lon, lat)
    tr = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    x0, y0, x1, y1 = tr.transform_bounds(w, s, e, n, densify_pts=21)
    cx, cy = tr.transform(lon, lat)
    side = math.floor(min(x1 - x0, y1 - y0) / gsd) * gsd
    if side < 200.0:
        raise InputError(f"{path}: the extract's roads span only {side:.0f} m; need 200 m")
    if size_m > side:
        warnings.warn(
            f"{path}: the extract's roads span {side:.0f} m; scene cut from {size_m:.0f} m",
            stacklevel=3,
        )
        size_m = side
    size_m = round(size_m / gsd) * gsd
    ox, oy = float(round(cx - size_m / 2)), float(round(cy - size_m / 2))
    bounds = (ox, oy, ox + size_m, oy + size_m)
    scene = shapely.box(*bounds)
    rd = read_roads(path, crs, bounds)
    rd = rd.assign(geometry=shapely.intersection(rd.geometry.values, scene))
    rd = rd.explode(index_parts=False)
    rd = rd[(rd.geom_type == "LineString") & (rd.length > 1.0)].reset_index(drop=True)
    if rd.empty:
        raise InputError(f"{path}: no road inside the scene {bounds}")
    local = shapely.transform(rd.geometry.values, lambda xy: xy - np.array([ox, oy]))
    roads = [
        {
            "geometry": g,
            "class": str(c),
            "name": str(nm),
            "width_m": round(float(wd), 1),
            "highway": str(h),
        }
        for g, c, nm, wd, h in zip(
            local, rd["road_class"], rd["name"], rd["width_m"], rd["highway"], strict=True
        )
    ]
    bld = read_osm_buildings(path, (w, s, e, n)).to_crs(crs)
    inside = shapely.within(shapely.centroid(bld.geometry.values), scene)
    bld = bld[inside]
    geoms = shapely.transform(
        shapely.intersection(bld.geometry.values, scene), lambda xy: xy - np.array([ox, oy])
    )
    ok = (shapely.get_type_id(geoms) == 3) & (shapely.area(geoms) > 10.0)
    return OsmSite(
        path=path,
        crs=crs,
        origin_en=(ox, oy),
        size_m=float(size_m),
        centre_lonlat=(float(lon), float(lat)),
        roads=roads,
        b_geom=np.asarray(geoms[ok], dtype=object),
        b_height=bld["height_m"].to_numpy(float)[ok],
    )


def _frames(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre, (long, short) size (m) and angle (rad) of each footprint's oriented envelope."""
    env = shapely.oriented_envelope(geoms)
    c = shapely.get_coordinates(shapely.centroid(env))
    size = np.zeros((len(geoms), 2))
    ang = np.zeros(len(geoms))
    for i, g in enumerate(env):
        xy = shapely.get_coordinates(g)
        if len(xy) < 4:
            continue
        e1, e2 = xy[1] - xy[0], xy[2] - xy[1]
        l1, l2 = np.hypot(*e1), np.hypot(*e2)
        long_e = e1 if l1 >= l2 else e2
        size[i] = max(l1, l2), min(l1, l2)
        ang[i] = math.atan2(long_e[1], long_e[0])
    return c, size, ang


def plan_osm_city(rng: np.random.Generator, site: OsmSite) -> City:
    """Lay the simulated city on ``site``'s real streets and buildings (local metres)."""
    S = site.size_m
    c0 = (S / 2, S / 2)
    core = np.array(c0)
    r_city = 0.42 * S
    th = np.linspace(0, 2 * np.pi, 73)[:-1]
    rr = r_city * (
        1 + sum(rng.uniform(0.03, 0.1) * np.sin(k * th + rng.uniform(0, 6.3)) for k in (2, 3, 5))
    )
    city_poly = Polygon(np.c_[core[0] + rr * np.cos(th), core[1] + rr * np.sin(th)])
    city_poly = city_poly.intersection(shapely.box(0, 0, S, S))
    roads = site.roads
    tmp = City.__new__(City)
    tmp.roads = roads
    road_all = tmp.road_polygons(extra_m=1.5)

    # Fill the blocks OSM leaves empty; generated footprints keep clear of mapped ones.
    osm_g = site.b_geom
    osm_u = shapely.union_all(osm_g) if osm_g.size else Polygon()
    blocks = [p for p in _polys(city_poly.difference(road_all)) if p.area > 150]
    gen_g, gen_h = [], []
    for blk in blocks:
        if osm_u.intersection(blk).area >= FILL_BELOW_COVER * blk.area:
            continue
        _, _, ang = _frames(np.array([blk], dtype=object))
        g, h, *_ = _buildings(rng, [blk], float(ang[0]), core, r_city)
        gen_g.append(g)
        gen_h.append(h)
    gen_g = np.concatenate(gen_g) if gen_g else np.empty(0, object)
    gen_h = np.concatenate(gen_h) if gen_h else np.empty(0, np.float32)
    if osm_g.size and gen_g.size:
        clash = shapely.intersects(gen_g, osm_u.buffer(1.0))
        gen_g, gen_h = gen_g[~clash], gen_h[~clash]

    # Untagged OSM buildings get the generated city's storeys-by-distance-from-core rule.
    o_h = site.b_height.astype(float).copy()
    miss = ~np.isfinite(o_h)
    if miss.any():
        oc = shapely.get_coordinates(shapely.centroid(osm_g[miss]))
        r = np.clip(np.hypot(*(oc - core).T) / r_city, 0, 1)
        floors = 1 + rng.poisson(np.clip(0.6 + 5.5 * (1 - r) ** 2, 0.1, None))
        o_h[miss] = floors * STOREY_M + rng.uniform(0.0, 1.0, r.size)
    b_geom = np.concatenate([osm_g, gen_g]).astype(object)
    b_height = np.clip(np.r_[o_h, gen_h], 3.0, 30.0).astype(np.float32)
    n_b = b_geom.size
    choice = rng.choice(len(ROOF_PALETTE), n_b, p=ROOF_P)
    b_colour = np.clip(ROOF_PALETTE[choice] * rng.uniform(0.88, 1.12, (n_b, 1)), 0, 1)
    b_colour = b_colour.astype(np.float32)

    # Rooftop details in each footprint's own frame; those not on the roof are dropped.
    centre, size, ang = _frames(b_geom) if n_b else (np.zeros((0, 2)),) * 2 + (np.zeros(0),)
    n_det = np.where(size[:, 1] > 8, rng.integers(0, 4, n_b), 0) if n_b else np.zeros(0, int)
    d_b = np.repeat(np.arange(n_b), n_det)
    dsz = rng.uniform(1.0, 3.0, (d_b.size, 2))
    room = np.maximum(size[d_b] / 2 - dsz / 2 - 1.0, 0.0)
    off = rng.uniform(-1, 1, (d_b.size, 2)) * room
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float) / 2
    uv = off[:, None, :] + corners[None, :, :] * dsz[:, None, :]
    ca, sa = np.cos(ang[d_b])[:, None], np.sin(ang[d_b])[:, None]
    wx = centre[d_b, 0][:, None] + ca * uv[..., 0] - sa * uv[..., 1]
    wy = centre[d_b, 1][:, None] + sa * uv[..., 0] + ca * uv[..., 1]
    d_geom = shapely.polygons(np.stack([wx, wy], -1)) if d_b.size else np.empty(0, dtype=object)
    on_roof = shapely.within(d_geom, b_geom[d_b]) if d_b.size else np.zeros(0, bool)
    d_geom, d_b = np.asarray(d_geom, dtype=object)[on_roof], d_b[on_roof]
    d_height = rng.uniform(0.8, 2.5, d_b.size).astype(np.float32)
    d_colour = np.clip(b_colour[d_b] * rng.uniform(0.7, 1.35, (d_b.size, 1)), 0, 1)
    d_colour = d_colour.astype(np.float32)

    obstacles = list(b_geom) + [road_all]
    keep_off = shapely.union_all(
        [tmp.road_polygons(extra_m=4.0), shapely.union_all(shapely.buffer(b_geom, 3.0))]
    )
    veg = vegetation(
        rng, S, c0, 0.0, city_poly, LineString(), 0.0, 0.0, Polygon(), obstacles, keep_off,
        None, None,
    )  # fmt: skip
    places = [
        {
            "name": "Old City",
            "kind": "district",
            "geometry": Point(c0),
            "radius_m": round(CORE_RADIUS_FRACTION * S, 1),
        }
    ]
    return City(
        size_m=S, core=c0, city_poly=city_poly, grid_angle=0.0, river_line=LineString(),
        river_poly=Polygon(), bank_poly=Polygon(), river_width_m=0.0, river_name="",
        roads=roads, plaza=Polygon(), b_geom=b_geom, b_height=b_height, b_colour=b_colour,
        d_geom=d_geom, d_height=d_height, d_building=d_b, d_colour=d_colour, **veg,
        runway=None, places=places, core_radius_m=CORE_RADIUS_FRACTION * S,
    )  # fmt: skip


__all__ = ["OsmSite", "load_osm_site", "plan_osm_city", "read_osm_buildings", "utm_crs"]
