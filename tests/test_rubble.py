"""Rubble on roads: a synthetic debris field leaving a 2 m lane."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from rasterio.features import rasterize

from fortmap.detect.roadmask import roads_in_window
from fortmap.detect.rubble import find_rubble

GSD = 0.5


def _window(pile: shapely.Polygon | None):
    rng = np.random.default_rng(3)
    shape = (200, 200)
    road = gpd.GeoDataFrame(
        {"name": ["Side St"], "road_class": ["minor"], "width_px": [16.0]},  # 8 m road
        geometry=[shapely.LineString([(0, 100), (200, 100)])],
    )
    rr = roads_in_window(road, shape, 2.0)
    base = np.where(rr.carriageway, 0.3, 0.55).astype(np.float32)
    before = base + rng.normal(0, 0.01, shape).astype(np.float32)
    after = base + rng.normal(0, 0.01, shape).astype(np.float32)
    if pile is not None:
        m = rasterize([(pile, 1)], out_shape=shape).astype(bool)
        # broken concrete: brighter than asphalt and strongly speckled
        after[m] = 0.5 + rng.normal(0, 0.08, m.sum()).astype(np.float32)
    return before[None], after[None], np.ones(shape, bool), rr, road


def test_pile_leaving_two_metres():
    pile = shapely.box(70, 96, 130, 108)  # 30 m along; covers 6 m of the 8 m road (y 92..108)
    b, a, v, rr, road = _window(pile)
    out = find_rubble(b, a, v, rr, road, GSD, (0, 0, 200, 200))
    assert len(out) == 1
    poly, score, attrs = out[0]
    assert attrs["road_name"] == "Side St"
    assert 1.0 <= attrs["passable_width_m"] <= 3.0
    assert not attrs["blocks_road"] or attrs["passable_width_m"] < 2.5
    truth_area = pile.area * GSD * GSD
    assert 0.6 * truth_area <= attrs["area_m2"] <= 1.4 * truth_area
    assert poly.intersection(pile).area / poly.union(pile).area > 0.5


def test_no_change_no_rubble():
    b, a, v, rr, road = _window(None)
    assert find_rubble(b, a, v, rr, road, GSD, (0, 0, 200, 200)) == []
