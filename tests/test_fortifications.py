"""Scene-wide fortification layers: a razed building's spill is not rubble on a road."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from rasterio.crs import CRS

from fortmap.fortifications import (
    RAZED_SPILL_M,
    FortFindings,
    drop_razed_spill,
    fortification_layers,
)

CRS_M = CRS.from_epsg(32635)
DATES = {"date_before": "2024-01-01", "date_after": "2024-06-01"}


def _finding(g: shapely.Polygon) -> tuple:
    return (g, 0.8, {"road_name": "Main St", "road_class": "minor", "passable_width_m": 2.0,
                     "blocks_road": False, "evidence": {}})  # fmt: skip


def test_spill_beside_razed_footprint_is_dropped():
    razed = gpd.GeoSeries([shapely.box(0, 0, 20, 20)], crs=CRS_M)
    spill = _finding(shapely.box(20.5, 2, 22.5, 12))  # 2 m strip along the wall, 0.5 m out
    pile = _finding(shapely.box(30, 0, 40, 6))  # in the road, 10 m from the footprint
    edge = _finding(shapely.box(20 + RAZED_SPILL_M - 1, 0, 20 + RAZED_SPILL_M + 9, 6))
    out = drop_razed_spill([spill, pile, edge], razed)
    assert [f[0] for f in out] == [pile[0], edge[0]]  # a tenth within reach: kept
    assert drop_razed_spill([spill], None) == [spill]
    assert drop_razed_spill([spill], razed.iloc[:0]) == [spill]


def test_layers_leave_spill_to_razed_layer():
    found = FortFindings(rubble=[_finding(shapely.box(20.5, 2, 22.5, 12))])
    razed = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 20, 20)], crs=CRS_M)
    kept = fortification_layers(found, CRS_M, DATES, roads_given=True)
    assert len(kept["rubble"]) == 1
    dropped = fortification_layers(found, CRS_M, DATES, roads_given=True, razed=razed)
    assert len(dropped["rubble"]) == 0


def test_rubble_the_dsms_see_no_rise_under_is_no_obstacle():
    from fortmap.fortifications import _stands_on_dsm

    before = np.zeros((40, 40), np.float32)
    pile = shapely.box(10, 10, 30, 20)  # window pixels (col, row), 0.5 m: 50 m²
    flat = {}
    assert not _stands_on_dsm(pile, flat, before, before.copy(), 0.5)
    assert flat["evidence"]["dsm_rise_m2"] == 0.0
    after = before.copy()
    after[12:14, 12:14] = 0.5  # 1 m² of debris 0.5 m high
    assert _stands_on_dsm(pile, {}, before, after, 0.5)
    low = before.copy()
    low[12:18, 12:28] = 0.2  # a wide rise below what stops a car
    assert not _stands_on_dsm(pile, {}, before, low, 0.5)
    # no DSM value over the finding: the image decides
    assert _stands_on_dsm(pile, {}, before, np.full_like(before, np.nan), 0.5)
