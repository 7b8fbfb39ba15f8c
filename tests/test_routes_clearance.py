"""Passable width measured from two DSMs, and the route cuts it adds, on hand-made surfaces."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from affine import Affine
from shapely import LineString, box

from fortmap.analyze.clearance import obstacle_mask, obstacles_on_grid, passable_widths
from fortmap.analyze.road_graph import build_road_graph
from fortmap.analyze.route_cuts import DSM_KIND
from fortmap.analyze.routes import analyse_routes

AREA = box(0, 0, 1000, 1000)
CORE = box(400, 400, 600, 600)

PX = 0.5
# a 0.5 m grid over the whole 1 km test area, origin at its top-left corner
T = Affine(PX, 0, 0, 0, -PX, 1000)


def surfaces(*heaps: tuple[shapely.Polygon, float]) -> tuple[np.ndarray, np.ndarray]:
    """Flat before surface at 100 m; after with each (polygon, rise m) added."""
    before = np.full((2000, 2000), 100.0, np.float32)
    after = before.copy()
    rows, cols = np.mgrid[0:2000, 0:2000]
    for poly, rise in heaps:
        x0, y0, x1, y1 = poly.bounds
        c0, c1 = int(x0 / PX), int(np.ceil(x1 / PX))
        r0, r1 = int((1000 - y1) / PX), int(np.ceil((1000 - y0) / PX))
        rr, cc = rows[r0:r1, c0:c1], cols[r0:r1, c0:c1]
        xs, ys = T.c + (cc + 0.5) * PX, T.f - (rr + 0.5) * PX
        on = shapely.contains_xy(poly, xs, ys)
        after[rr[on], cc[on]] += rise
    return before, after


def star() -> gpd.GeoDataFrame:
    """Roads from the area's edge (W 8 m, N and E 6 m wide) meeting at the core's centre."""
    return gpd.GeoDataFrame(
        {"name": ["West", "North", "East"], "width_m": [8.0, 6.0, 6.0]},
        geometry=[
            LineString([(0, 500), (500, 500)]),
            LineString([(500, 1000), (500, 500)]),
            LineString([(1000, 500), (500, 500)]),
        ],
        crs="EPSG:32637",
    )


def entry(result, name: str):  # noqa: ANN001, ANN201
    e = result.entry_points
    return e[e["name"] == name].iloc[0]


def test_obstacle_height_size_and_gaps() -> None:
    before, after = surfaces(
        (box(100, 100, 104, 104), 0.6),  # a debris heap
        (box(200, 100, 204, 104), 0.2),  # under a car's ground clearance
        (box(300, 100, 300.5, 100.5), 0.8),  # one-pixel spike: matching noise
    )
    after[2000 - 204, 204] = 100.0  # stray low pixel inside the heap: filled
    m = obstacle_mask(before, after, PX)
    assert m[int((1000 - 102) / PX), int(102 / PX)]
    assert not m[int((1000 - 102) / PX), int(202 / PX)]
    assert not m[int((1000 - 100.25) / PX), int(300.25 / PX)]
    assert m.sum() == pytest.approx(8 * 8, abs=4)


def test_debris_within_reach_of_a_razed_building_is_no_obstacle() -> None:
    """Spill up to 3 m from a razed building's fall is its debris; what lies farther counts."""
    before, after = surfaces(
        (box(100, 100, 106, 104), 0.4),  # spill on the road beside the building, 0-6 m out
        (box(200, 100, 204, 104), 0.4),  # a heap standing apart
    )
    # the razed building, west of the spill: its surface fell by two storeys
    before[int((1000 - 110) / PX) : int((1000 - 95) / PX), int(90 / PX) : int(100 / PX)] += 6.0
    m = obstacle_mask(before, after, PX)
    row = int((1000 - 102) / PX)
    for x in (100.25, 101.75, 102.75):
        assert not m[row, int(x / PX)]
    for x in (103.25, 105.75, 202.0):
        assert m[row, int(x / PX)]


@pytest.mark.parametrize(("covered", "free"), [(4.0, 4.0), (6.0, 2.0), (8.0, 0.0)])
def test_passable_width_of_a_road_half_covered(covered: float, free: float) -> None:
    # West road (y = 500, 8 m wide): a heap from its south edge, ``covered`` m across
    before, after = surfaces((box(200, 496, 210, 496 + covered), 0.8))
    road = np.array([LineString([(100, 500), (300, 500)]), LineString([(100, 800), (300, 800)])])
    pw = passable_widths(road, np.array([8.0, 8.0]), obstacle_mask(before, after, PX), T)
    assert pw[0] == pytest.approx(free, abs=PX)
    assert np.isnan(pw[1])  # nothing on the other road


def test_dsm_obstacle_cuts_an_entry_no_feature_was_found_for() -> None:
    g = build_road_graph(star(), AREA)
    # a heap across North (x = 500, 6 m wide) outside the core; one leaving 4 m on East
    before, after = surfaces((box(495, 800, 505, 810), 1.0), (box(800, 501, 810, 504), 1.0))
    r = analyse_routes(g, CORE, obstacles=(obstacle_mask(before, after, PX), T))
    assert entry(r, "North").status == "cut"
    assert entry(r, "North").cut_by.startswith(f"{DSM_KIND}:")
    assert entry(r, "East").status == "open"
    assert entry(r, "West").status == "open"
    assert r.summary["cuts_by_kind"] == {DSM_KIND: 1}
    # without the DSMs the same scene has no cut
    assert analyse_routes(g, CORE).summary["entries_cut"] == 0


def test_unchanged_surface_cuts_nothing() -> None:
    before, _ = surfaces()
    g = build_road_graph(star(), AREA)
    r = analyse_routes(g, CORE, obstacles=(obstacle_mask(before, before, PX), T))
    assert r.summary["entries_cut"] == 0
    assert np.isnan(r.routes["passable_m"].to_numpy(float)).all()


def test_obstacles_on_grid_reads_in_strips_like_one_read(tmp_path) -> None:  # noqa: ANN001
    import rasterio

    from fortmap.io.raster import GridReader
    from fortmap.types import Grid

    before, after = surfaces(
        (box(200, 496, 210, 504), 0.8),
        (box(500, 745, 502, 760), 1.5),
        (box(700, 746, 710, 750.5), 0.4),  # debris just below the strips' seam (row 499)...
    )
    before[490:494, 1400:1420] += 6.0  # ...spilt from a building razed 3 m above it
    paths = []
    for name, a in (("b", before), ("a", after)):
        p = tmp_path / f"{name}.tif"
        with rasterio.open(p, "w", driver="GTiff", width=2000, height=2000, count=1,
                           dtype="float32", crs="EPSG:32637", transform=T) as ds:  # fmt: skip
            ds.write(a, 1)
        paths.append(p)
    grid = Grid(crs=rasterio.crs.CRS.from_epsg(32637), transform=T, width=2000, height=2000)
    readers = [GridReader(p, grid, [1]) for p in paths]
    m, t = obstacles_on_grid(*readers, grid, strip_rows=499)
    assert t == T
    dense = obstacle_mask(before, after, PX)
    assert not dense[499, 1400:1420].any() and dense[500:508, 1400:1420].all()
    assert np.array_equal(np.ravel_multi_index(m.nonzero(), dense.shape), np.flatnonzero(dense))
    # along a road only the obstacles on its carriageway are kept
    road = gpd.GeoDataFrame(
        {"width_m": [6.0]}, geometry=[LineString([(400, 752), (600, 752)])], crs="EPSG:32637"
    )
    m2, _ = obstacles_on_grid(*readers, grid, road, strip_rows=499)
    rows, cols = m2.nonzero()
    assert m2.any() and rows.size < dense.sum()
    assert dense[rows, cols].all()
    xs = T.c + (cols + 0.5) * PX
    assert (xs > 495).all() and (xs < 507).all()


def test_unknown_heights_are_no_obstacle_and_a_raised_threshold_drops_low_rises():
    before = np.zeros((40, 40), np.float32)
    after = before.copy()
    after[5:15, 5:15] = np.nan  # a hole in the after DSM
    before[20:30, 5:15] = np.nan
    after[20:30, 20:30] = 0.5  # a 5 m x 5 m rise of 0.5 m
    m = obstacle_mask(before, after, 0.5)
    assert not m[5:15, 5:15].any() and not m[20:30, 5:15].any()
    assert m[20:30, 20:30].all()
    assert not obstacle_mask(before, after, 0.5, rise_m=0.9).any()
