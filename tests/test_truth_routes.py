"""Truth obstacles as the ground they cover: block rows and berm bodies."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from fortmap.analyze.clearance import OBSTACLE_M
from fortmap.analyze.routes import routes_in_area
from fortmap.simulate.truth_routes import BLOCK_HALF_M, berm_bodies, block_footprints

CRS = "EPSG:32637"


def _road():
    # one 6 m road from the area's edge (x = 0) into a core centred at x = 300
    return gpd.GeoDataFrame(
        {"class": ["major"], "name": ["Main"], "width_m": [6.0]},
        geometry=[shapely.LineString([(0, 100), (400, 100)])],
        crs=CRS,
    )


def _status(berms=None, barricades=None) -> str:
    core = shapely.Point(300, 100).buffer(50)
    obstacles = {"berms": berms, "barricades": barricades, "rubble": None}
    res = routes_in_area(_road(), (0, 0, 400, 200), core, obstacles)
    return str(res.entry_points["status"].iloc[0])


def test_berm_body_reach_follows_the_parabolic_profile():
    berm = gpd.GeoDataFrame(
        {"height_m": [3.0], "width_m": [10.0]},
        geometry=[shapely.LineString([(0, 0), (100, 0)])],
        crs=CRS,
    )
    body = berm_bodies(berm).geometry.iloc[0]
    reach = 5.0 * np.sqrt(1 - OBSTACLE_M / 3.0)
    # 3 m * (1 - (2 d / 10)^2) = 0.3 m at d = reach
    assert abs(3.0 * (1 - (2 * reach / 10.0) ** 2) - OBSTACLE_M) < 1e-9
    assert body.contains(shapely.Point(50, reach - 0.05))
    assert not body.contains(shapely.Point(50, reach + 0.05))


def test_a_berm_ending_beside_the_road_cuts_it_when_its_body_covers_the_centreline():
    # crest ends 3 m short of the road's centreline: the line misses, the body does not
    crest = shapely.LineString([(150, 20), (150, 97)])
    berm = gpd.GeoDataFrame({"height_m": [3.5], "width_m": [11.0]}, geometry=[crest], crs=CRS)
    assert _status(berms=berm) == "open"
    assert _status(berms=berm_bodies(berm)) == "cut"
    # a low, narrow berm whose body stops short of the centreline leaves the road open
    low = gpd.GeoDataFrame({"height_m": [1.0], "width_m": [4.0]}, geometry=[crest], crs=CRS)
    assert _status(berms=berm_bodies(low)) == "open"


def test_a_row_whose_blocks_cover_the_centreline_cuts_even_if_its_line_misses_it():
    # at a junction a row across the crossing street runs along this road, its line 0.4 m
    # beside this road's centreline: the line misses it, the blocks (0.7 m each side) do not
    row = gpd.GeoDataFrame(
        {"n_blocks": [3], "width_m": [4.5]},
        geometry=[shapely.LineString([(148, 100.4), (152.5, 100.4)])],
        crs=CRS,
    )
    assert _status(barricades=row) == "open"
    assert _status(barricades=block_footprints(row)) == "cut"
    far = row.copy()
    far["geometry"] = [shapely.LineString([(148, 101.0), (152.5, 101.0)])]
    assert _status(barricades=block_footprints(far)) == "open"
    # the row's ends are its blocks' outer edges: no reach past them
    end = block_footprints(row).geometry.iloc[0]
    assert end.bounds[0] == 148 and end.bounds[2] == 152.5
    assert BLOCK_HALF_M < 1.0
