"""True route status of a simulated scene: entry routes into the core, cut or open.

The simulator knows every barricade, berm and rubble patch exactly, so running the route
analysis (:func:`fortmap.analyze.routes.analyse_routes`) on the written roads with the *truth*
obstacles gives the true status of every way into the core. The obstacles are taken as the
ground they physically cover (a row's blocks, a berm's body where it stands 0.3 m or more
high), so a road piece they cover is cut even where the row's line or the berm's crest misses
its centreline by centimetres. The inputs are read back from
the files the simulator wrote (``roads.geojson``, ``places.geojson``, ``truth.gpkg``) through
the same readers ``fortmap analyze`` uses, so truth and analysis see the same road graph.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely
from rasterio.crs import CRS

from fortmap.analyze.clearance import OBSTACLE_M
from fortmap.analyze.core import parse_core
from fortmap.analyze.routes import routes_in_area
from fortmap.io.roads import read_roads
from fortmap.io.vector import read_vector

#: Name of the core district place the truth routes lead into.
CORE_PLACE = "Old City"
#: Half the side (m) of the smallest concrete block the simulator lays (1.4-1.6 m).
BLOCK_HALF_M = 0.7


def junction_vertices(lines: list[shapely.LineString]) -> list[shapely.LineString]:
    """``lines`` with a shared vertex added wherever two of them cross.

    The generated city draws its avenues, ring and streets as separate polylines crossing at
    grade; the road graph joins roads only at shared vertices (as OpenStreetMap does, where a
    bridge shares none), so the crossings get one. The lines' shapes do not change.

    Args:
        lines: LineStrings in any one metric frame.

    Returns:
        New LineStrings, same order, each holding the exact crossing coordinates.
    """
    geoms = np.asarray(lines, dtype=object)
    if len(geoms) < 2:
        return list(geoms)
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    extra: dict[int, list[np.ndarray]] = {}
    for i, j in zip(a, b, strict=True):
        x = shapely.intersection(geoms[i], geoms[j])
        pts = [g for g in shapely.get_parts(x) if g.geom_type == "Point"]
        if not pts:
            continue
        xy = shapely.get_coordinates(pts)
        extra.setdefault(int(i), []).append(xy)
        extra.setdefault(int(j), []).append(xy)
    out = list(geoms)
    for i, chunks in extra.items():
        out[i] = _insert(geoms[i], np.vstack(chunks))
    return out


def _insert(line: shapely.LineString, xy: np.ndarray) -> shapely.LineString:
    """``line`` with the points ``xy`` (lying on it) inserted as vertices, in order along it."""
    c = shapely.get_coordinates(line)
    seg = np.r_[0.0, np.cumsum(np.hypot(*np.diff(c, axis=0).T))]
    at = shapely.line_locate_point(line, shapely.points(xy))
    # points already a vertex (to 1 mm) are not added twice
    new = np.array([np.min(np.hypot(*(c - p).T)) > 1e-3 for p in xy], bool)
    if not new.any():
        return line
    pos = np.r_[seg, at[new]]
    allc = np.vstack([c, xy[new]])
    order = np.argsort(pos, kind="stable")
    return shapely.linestrings(allc[order])


def block_footprints(rows: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Barricade rows as the ground their blocks cover, not as zero-width lines.

    A row's line runs through its blocks' centres from the outer edge of the first block to
    that of the last; the blocks reach ``BLOCK_HALF_M`` to either side of it (flat ends). At a
    junction a row can cover a merging lane's centreline without its line crossing it, by
    centimetres: the blocks, not the line, stop a vehicle.
    """
    out = rows.copy()
    out["geometry"] = rows.geometry.buffer(BLOCK_HALF_M, cap_style="flat")
    return out


def berm_bodies(berms: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Berms as the ground where they stand ``OBSTACLE_M`` or more high, not as crest lines.

    The simulator's berm has a parabolic cross-section, ``h(d) = H (1 - (2 d / W)^2)`` at a
    distance ``d`` (m) from the crest (height ``H``, base width ``W``), with round ends, so it
    stands at least ``OBSTACLE_M`` high within ``W / 2 * sqrt(1 - OBSTACLE_M / H)`` of the
    crest. A berm ending beside a road covers its carriageway without its crest crossing the
    road's centreline.
    """
    h = berms["height_m"].to_numpy(float)
    w = berms["width_m"].to_numpy(float)
    reach = w / 2 * np.sqrt(np.clip(1 - OBSTACLE_M / np.maximum(h, 1e-6), 0, None))
    out = berms.copy()
    out["geometry"] = shapely.buffer(berms.geometry.to_numpy(), reach)
    return out


def write_true_routes(
    truth_gpkg: Path,
    roads: Path,
    places: Path,
    crs: CRS,
    bounds: tuple[float, float, float, float],
    core: str = CORE_PLACE,
) -> dict:
    """Add layers ``routes`` and ``entry_points`` (true status) to ``truth_gpkg``.

    Args:
        truth_gpkg: the simulator's truth GeoPackage, already holding ``barricades``, ``berms``
            and ``rubble``; the two layers are appended to it.
        roads: the scene's ``roads.geojson``.
        places: the scene's ``places.geojson`` (holding ``core`` with its ``radius_m``).
        crs: the scene's CRS (projected, metres).
        bounds: (left, bottom, right, top) of the scene in ``crs`` metres.
        core: the core's place name.

    Returns:
        The route analysis summary (counts of entries before/after, ``sealed``...).
    """
    road_lines = read_roads(roads, crs, bounds)
    with warnings.catch_warnings():
        # a core reaching past the scene edge is clipped, as in fortmap analyze
        warnings.simplefilter("ignore", UserWarning)
        core_poly = parse_core(core, crs, bounds, places)
    obstacles = {k: read_vector(truth_gpkg, k, layer=k) for k in ("barricades", "berms", "rubble")}
    obstacles["barricades"] = block_footprints(obstacles["barricades"])
    obstacles["berms"] = berm_bodies(obstacles["berms"])
    res = routes_in_area(road_lines, bounds, core_poly, obstacles)
    for name, gdf in (("routes", res.routes), ("entry_points", res.entry_points)):
        pyogrio.write_dataframe(
            gdf,
            truth_gpkg,
            layer=name,
            driver="GPKG",
            geometry_type="LineString" if name == "routes" else "Point",
            append=True,
        )
    return res.summary
