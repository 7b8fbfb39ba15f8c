"""Road graph, core parsing and route analysis on small hand-made networks with known answers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from shapely import LineString, Point, box

from fortmap.analyze.core import parse_core
from fortmap.analyze.road_graph import build_road_graph
from fortmap.analyze.routes import analyse_routes
from fortmap.errors import InputError

CRS = "EPSG:32637"
AREA = box(0, 0, 1000, 1000)
CORE = box(400, 400, 600, 600)


def star(extra: list[tuple[str, LineString]] | None = None) -> gpd.GeoDataFrame:
    """Three roads from the area's edge (W, N, E) meeting at the core's centre (500, 500)."""
    items = [
        ("West", LineString([(0, 500), (500, 500)])),
        ("North", LineString([(500, 1000), (500, 500)])),
        ("East", LineString([(1000, 500), (500, 500)])),
        *(extra or []),
    ]
    return gpd.GeoDataFrame(
        {
            "name": [n for n, _ in items],
            "road_class": ["major"] + ["minor"] * (len(items) - 1),
            "highway": ["primary"] + ["residential"] * (len(items) - 1),
            "width_m": [8.0] + [6.0] * (len(items) - 1),
        },
        geometry=[g for _, g in items],
        crs=CRS,
    )


def lines(*coords: tuple[tuple[float, float], tuple[float, float]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(geometry=[LineString(c) for c in coords], crs=CRS)


def entry(result, name: str):  # noqa: ANN001, ANN201
    e = result.entry_points
    return e[e["name"] == name].iloc[0]


# --- road graph -------------------------------------------------------------------------------


def test_graph_splits_at_shared_vertices_and_clips_to_area() -> None:
    roads = star([("Cross", LineString([(300, 300), (300, 500), (300, 700)]))])
    roads.loc[0, "geometry"] = LineString([(0, 500), (300, 500), (500, 500)])
    g = build_road_graph(roads, box(100, 100, 900, 900))
    # West and Cross share the vertex (300, 500): both are split there
    assert len(g.edges) == 6
    assert g.edges.length_m.sum() == pytest.approx(400 + 400 + 400 + 400)
    assert g.outside.sum() == 3  # the three clipped ends on the area's edge
    assert g.graph.number_of_edges() == len(g.edges)


def test_graph_snaps_a_dangling_end_onto_a_road() -> None:
    # a T-junction drawn 0.4 m short of the road, without a shared vertex
    roads = star([("Stub", LineString([(250, 100), (250, 499.6)]))])
    g = build_road_graph(roads, AREA)
    assert len(g.edges) == 5  # West split at x=250
    assert build_road_graph(roads, AREA, snap_m=0).edges.shape[0] == 4


def test_graph_no_road_in_area() -> None:
    with pytest.raises(InputError, match="no road"):
        build_road_graph(star(), box(2000, 2000, 3000, 3000))


# --- routes -----------------------------------------------------------------------------------


def test_no_features_three_open_entries() -> None:
    r = analyse_routes(build_road_graph(star(), AREA), CORE, AREA)
    s = r.summary
    assert (s["entries_before"], s["entries_after"], s["sealed"]) == (3, 3, False)
    assert s["shortest_route_before_m"] == pytest.approx(400)
    assert set(r.routes.status) == {"open"}
    assert r.routes.in_core.sum() == 3
    json.dumps(s)


def test_barricade_cuts_one_of_three_entries() -> None:
    bar = lines(((200, 490), (200, 510)))
    r = analyse_routes(build_road_graph(star(), AREA), CORE, AREA, barricades=bar)
    s = r.summary
    assert (s["entries_before"], s["entries_after"], s["entries_cut"]) == (3, 2, 1)
    assert s["cut_entries"] == [{"entry_id": 0, "name": "West", "cut_by": "barricade:0"}]
    assert not s["sealed"]
    west = entry(r, "West")
    assert west.status == "cut" and math.isnan(west.route_after_m)
    assert entry(r, "North").status == "open"
    assert (r.routes.status == "cut").sum() == 1
    assert list(r.entry_points.kind.unique()) == ["entry_point"]
    assert list(r.routes.kind.unique()) == ["route"]


def test_barricade_short_of_centreline_does_not_cut() -> None:
    bar = lines(((200, 490), (200, 498)))
    r = analyse_routes(build_road_graph(star(), AREA), CORE, AREA, barricades=bar)
    assert r.summary["entries_after"] == 3


def test_barricade_with_detour_leaves_entry_open_but_longer() -> None:
    # a side road from West at x=300 to the north edge gives a way round a barricade at x=200
    roads = star([("Side", LineString([(300, 500), (300, 1000)]))])
    roads.loc[0, "geometry"] = LineString([(0, 500), (300, 500), (500, 500)])
    bar = lines(((200, 490), (200, 510)))
    r = analyse_routes(build_road_graph(roads, AREA), CORE, AREA, barricades=bar)
    west = entry(r, "West")
    assert west.status == "open"
    assert west.route_before_m == pytest.approx(400)
    assert west.route_after_m == pytest.approx(500 + 100)
    assert r.summary["entries_after"] == 3


def test_barricade_at_the_gate_inside_the_core() -> None:
    bar = lines(((450, 490), (450, 510)))
    r = analyse_routes(build_road_graph(star(), AREA), CORE, AREA, barricades=bar)
    west = entry(r, "West")
    assert west.status == "cut" and west.cut_by == "barricade:0"
    assert r.summary["entries_after"] == 2


@pytest.mark.parametrize(("passable", "status"), [(4.0, "open"), (2.0, "cut")])
def test_rubble_narrowing(passable: float, status: str) -> None:
    rub = gpd.GeoDataFrame(
        {"passable_width_m": [passable]}, geometry=[box(250, 497, 262, 503)], crs=CRS
    )
    r = analyse_routes(build_road_graph(star(), AREA), CORE, AREA, rubble=rub)
    west = entry(r, "West")
    assert west.status == status
    if status == "cut":
        assert west.cut_by == "rubble:0"
    piece = r.routes[(r.routes["name"] == "West") & ~r.routes.in_core].iloc[0]
    assert piece.passable_m == pytest.approx(passable)


def test_rubble_without_measured_width_is_estimated_from_geometry() -> None:
    # covers 6.5 of the West road's 8 m over a 10 m stretch: 1.5 m left, cut
    rub = gpd.GeoDataFrame(geometry=[box(250, 495.5, 260, 506)], crs=CRS)
    r = analyse_routes(build_road_graph(star(), AREA), CORE, AREA, rubble=rub)
    assert entry(r, "West").status == "cut"
    # covers 2 m of 8: 6 m left, open
    rub = gpd.GeoDataFrame(geometry=[box(250, 502, 260, 506)], crs=CRS)
    r = analyse_routes(build_road_graph(star(), AREA), CORE, AREA, rubble=rub)
    assert entry(r, "West").status == "open"


def test_fully_sealed_core() -> None:
    bar = lines(((200, 490), (200, 510)), ((490, 800), (510, 800)))
    berm = lines(((800, 480), (800, 520)))
    berm.index = [7]
    r = analyse_routes(build_road_graph(star(), AREA), CORE, AREA, barricades=bar, berms=berm)
    s = r.summary
    assert s["sealed"] and s["entries_after"] == 0 and s["entries_before"] == 3
    assert s["shortest_route_after_m"] is None
    assert s["cuts_by_kind"] == {"barricade": 2, "berm": 1}
    assert entry(r, "East").cut_by == "berm:7"


def test_features_in_another_crs_are_reprojected() -> None:
    bar = lines(((200, 490), (200, 510))).to_crs("EPSG:4326")
    r = analyse_routes(build_road_graph(star(), AREA), CORE, AREA, barricades=bar)
    assert r.summary["entries_after"] == 2


def test_route_errors() -> None:
    g = build_road_graph(star(), AREA)
    with pytest.raises(InputError, match="outside"):
        analyse_routes(g, box(2000, 2000, 2100, 2100), AREA)
    with pytest.raises(InputError, match="polygon"):
        analyse_routes(g, Point(500, 500), AREA)
    inner = build_road_graph(star(), box(-10, -10, 1010, 1010))
    with pytest.raises(InputError, match="edge"):
        analyse_routes(inner, CORE)


# --- core -------------------------------------------------------------------------------------

BOUNDS = (500000.0, 4000000.0, 502000.0, 4002000.0)  # UTM 37N, ~39 E 36.1 N


def test_core_from_lon_lat_radius() -> None:
    core = parse_core("39.0,36.1,300", CRS, (490000, 3990000, 510000, 4010000))
    assert core.area == pytest.approx(math.pi * 300**2, rel=0.01)


def test_core_from_polygon_file(tmp_path: Path) -> None:
    f = tmp_path / "core.geojson"
    gpd.GeoDataFrame(geometry=[box(500500, 4000500, 501000, 4001000)], crs=CRS).to_crs(
        "EPSG:4326"
    ).to_file(f)
    core = parse_core(str(f), CRS, BOUNDS)
    assert core.area == pytest.approx(500 * 500, rel=1e-3)


def test_core_from_place(tmp_path: Path) -> None:
    f = tmp_path / "places.geojson"
    gpd.GeoDataFrame(
        {"name": ["Old Town", "Harbour"]},
        geometry=[Point(501000, 4001000), Point(500400, 4000400)],
        crs=CRS,
    ).to_file(f)
    core = parse_core("old town", CRS, BOUNDS, places=f)
    assert core.area == pytest.approx(math.pi * 500**2, rel=0.01)
    small = parse_core("Harbour,200", CRS, BOUNDS, places=f)
    assert small.area == pytest.approx(math.pi * 200**2, rel=0.01)
    with pytest.raises(
        InputError, match=r"places.geojson: no place named 'Castle'.*Harbour, Old Town"
    ):
        parse_core("Castle", CRS, BOUNDS, places=f)


def test_core_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="outside the analysed area"):
        parse_core("10.0,10.0,300", CRS, BOUNDS)
    with pytest.raises(InputError, match="radius"):
        parse_core("39.0,36.1,-5", CRS, BOUNDS)
    pts = tmp_path / "pts.geojson"
    gpd.GeoDataFrame(geometry=[Point(501000, 4001000)], crs=CRS).to_file(pts)
    with pytest.raises(InputError, match=r"pts.geojson: core must be a polygon"):
        parse_core(str(pts), CRS, BOUNDS)
    two = tmp_path / "two.gpkg"
    gpd.GeoDataFrame(
        geometry=[box(500100, 4000100, 500200, 4000200), box(501100, 4001100, 501200, 4001200)],
        crs=CRS,
    ).to_file(two)
    with pytest.raises(InputError, match="one polygon"):
        parse_core(str(two), CRS, BOUNDS)
    with pytest.raises(InputError, match="no --places"):
        parse_core("Old Town", CRS, BOUNDS)
    with pytest.raises(InputError, match="whole"):
        parse_core(str(_big(tmp_path)), CRS, BOUNDS)


def _big(tmp_path: Path) -> Path:
    f = tmp_path / "big.geojson"
    gpd.GeoDataFrame(geometry=[box(*np.add(BOUNDS, (-10, -10, 10, 10)))], crs=CRS).to_file(f)
    return f


def test_core_partly_outside_is_clipped_with_warning(tmp_path: Path) -> None:
    f = tmp_path / "edge.geojson"
    gpd.GeoDataFrame(geometry=[box(499000, 4000500, 500500, 4001000)], crs=CRS).to_file(f)
    with pytest.warns(UserWarning, match="cut off"):
        core = parse_core(str(f), CRS, BOUNDS)
    assert core.area == pytest.approx(500 * 500)


def test_core_on_area_edge_counts_roads_entering_there() -> None:
    # the core touches the west edge: West enters the core straight from the outside
    core = box(0, 400, 200, 600)
    r = analyse_routes(build_road_graph(star(), AREA), core, AREA)
    assert r.summary["entries_before"] == 2  # at the area's edge (x=0) and at x=200


# --- cross-check against networkx on bigger networks ------------------------------------------


def _nx_open_entries(r, area) -> set[tuple[float, float]]:  # noqa: ANN001
    """Entry points open after, recomputed independently with networkx from the layers."""
    import networkx as nx
    import shapely

    g = nx.MultiGraph()
    outside = set()
    for geom, status, in_core in zip(
        r.routes.geometry, r.routes.status, r.routes.in_core, strict=True
    ):
        a, b = (tuple(np.round(c, 3)) for c in (geom.coords[0], geom.coords[-1]))
        for c in (a, b):
            if shapely.Point(c).distance(area.boundary) < 0.05:
                outside.add(c)
        if status == "open":
            g.add_edge(a, b, in_core=bool(in_core))
    ext = g.edge_subgraph([e for e in g.edges(keys=True) if not g.edges[e]["in_core"]])
    reach = set()
    for comp in nx.connected_components(ext):
        if comp & outside:
            reach |= comp
    out = set()
    for p in r.entry_points.geometry:
        c = tuple(np.round(p.coords[0], 3))
        gate_open = c in g and any(d["in_core"] for *_, d in g.edges(c, data=True))
        if gate_open and (c in reach or c in outside):
            out.add(c)
    return out


def _check_against_networkx(r, area) -> None:  # noqa: ANN001
    ours = {
        tuple(np.round(p.coords[0], 3))
        for p, s in zip(r.entry_points.geometry, r.entry_points.status, strict=True)
        if s == "open"
    }
    assert ours == _nx_open_entries(r, area)
    cut = r.entry_points[r.entry_points.status == "cut"]
    assert (cut.cut_by != "").all() and cut.route_after_m.isna().all()
    opn = r.entry_points[r.entry_points.status == "open"]
    assert (opn.route_after_m >= opn.route_before_m - 1e-6).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_grid_matches_networkx(seed: int) -> None:
    import shapely

    rng = np.random.default_rng(seed)
    n, sp = 21, 50.0
    t = np.arange(n) * sp
    geoms = [shapely.linestrings(np.c_[t, np.full(n, y)]) for y in t]
    geoms += [shapely.linestrings(np.c_[np.full(n, x), t]) for x in t]
    roads = gpd.GeoDataFrame(geometry=geoms, crs=CRS)
    area = box(25, 25, 975, 975)
    core = Point(500, 500).buffer(180)
    k = 120
    i = rng.integers(0, n, k) * sp
    s = (rng.integers(0, n - 1, k) + 0.5) * sp
    vert = rng.random(k) < 0.5
    bar = lines(
        *[
            ((a - 5, b), (a + 5, b)) if v else ((b, a - 5), (b, a + 5))
            for a, b, v in zip(i, s, vert, strict=True)
        ]
    )
    r = analyse_routes(build_road_graph(roads, area), core, area, barricades=bar)
    assert r.summary["entries_before"] > 8
    assert 0 <= r.summary["entries_after"] < r.summary["entries_before"]
    _check_against_networkx(r, area)


@pytest.mark.realdata
def test_helsinki_routes_with_osm_barriers_as_stand_ins() -> None:
    import pyogrio

    from conftest import shared
    from fortmap.io.roads import read_roads

    f = shared("osm", "helsinki.osm.pbf")
    roads = read_roads(f, "EPSG:32635")
    w, s, e, n = roads.total_bounds
    bounds = (w + 100, s + 100, e - 100, n - 100)
    area = box(*bounds)
    core = parse_core("24.9460,60.1720,300", "EPSG:32635", bounds)
    graph = build_road_graph(roads, area)
    before = analyse_routes(graph, core, area)
    assert before.summary["entries_before"] >= 10 and before.summary["entries_cut"] == 0
    # OSM barrier lines (fences, walls, kerbs) stand in for detected barricades
    bar = pyogrio.read_dataframe(f, layer="lines", columns=["barrier"])
    bar = bar[bar.barrier.notna()]
    r = analyse_routes(graph, core, area, barricades=bar)
    assert r.summary["entries_before"] == before.summary["entries_before"]
    assert r.summary["entries_after"] <= r.summary["entries_before"]
    _check_against_networkx(r, area)


def test_core_without_roads_has_no_entries() -> None:
    r = analyse_routes(build_road_graph(star(), AREA), box(100, 100, 200, 200), AREA)
    s = r.summary
    assert (s["entries_before"], s["sealed"], s["shortest_route_before_m"]) == (0, False, None)
    assert r.entry_points.empty and list(r.entry_points.columns)[:7] == [
        "kind",
        "score",
        "date_before",
        "date_after",
        "evidence",
        "area_m2",
        "length_m",
    ]
