"""Scene-wide fortification layers: a razed building's spill is not rubble on a road."""

from __future__ import annotations

import geopandas as gpd
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
