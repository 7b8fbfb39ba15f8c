"""Scene-wide fortification layers: a razed building's spill is not rubble on a road."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import rasterio.features
import shapely
import shapely.affinity
from rasterio.crs import CRS
from rasterio.windows import Window

from fortmap.fortifications import (
    RAZED_SPILL_M,
    FortContext,
    FortFindings,
    _footprint_labels,
    drop_razed_spill,
    fortification_layers,
)
from fortmap.io.grids import rasterize_shapes

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


def _dark_window(pile: shapely.Polygon | None, rough: bool):
    """A road in deep shade on both dates; the pile (if any) is no brighter than the road."""
    from rasterio.features import rasterize

    from fortmap.detect.roadmask import roads_in_window

    rng = np.random.default_rng(7)
    shape = (200, 200)
    road = gpd.GeoDataFrame(
        {"name": ["Side St"], "road_class": ["minor"], "width_px": [16.0]},  # 8 m road
        geometry=[shapely.LineString([(0, 100), (200, 100)])],
    )
    rr = roads_in_window(road, shape, 2.0)
    base = np.where(rr.carriageway, 0.08, 0.5).astype(np.float32)
    before = base + rng.normal(0, 0.004, shape).astype(np.float32)
    after = base + rng.normal(0, 0.004, shape).astype(np.float32)
    dsm_b = np.zeros(shape, np.float32)
    dsm_a = dsm_b.copy()
    if pile is not None:
        m = rasterize([(pile, 1)], out_shape=shape).astype(bool)
        dsm_a[m] = 0.8
        if rough:  # broken material in shade: dark lumps and small shadows, no brightening
            lumps = rng.choice([0.03, 0.08, 0.13], m.sum()).astype(np.float32)
            after[m] = lumps
    return before[None], after[None], np.ones(shape, bool), rr, dsm_b, dsm_a


def test_dsm_sees_a_shaded_pile_the_image_cannot():
    from fortmap.detect.road_window import RoadWindow
    from fortmap.detect.rubble import find_rubble
    from fortmap.fortifications import find_dsm_rubble

    pile = shapely.box(70, 94, 100, 106)  # 15 m along, 6 m across the 8 m road
    b, a, v, rr, db, da = _dark_window(pile, rough=True)
    road = gpd.GeoDataFrame(geometry=[shapely.LineString([(0, 100), (200, 100)])])
    core = (0, 0, 200, 200)
    assert find_rubble(b, a, v, rr, road, 0.5, core) == []  # no brightening: the image misses it
    rw = RoadWindow.build(b, a, v, rr)
    out = find_dsm_rubble(db, da, rr, rw, 0.5, core, [])
    assert len(out) == 1
    poly, _, attrs = out[0]
    assert poly.intersection(pile).area / poly.union(pile).area > 0.7
    assert attrs["evidence"]["source"] == "dsm" and attrs["road_name"] == "Side St"
    assert 1.0 <= attrs["passable_width_m"] <= 3.0
    # already found in the image, or on a block row / berm body: not reported again
    assert find_dsm_rubble(db, da, rr, rw, 0.5, core, [pile.buffer(2)]) == []
    # centroid outside the core: another window reports it
    assert find_dsm_rubble(db, da, rr, rw, 0.5, (120, 0, 200, 200), []) == []


def test_dsm_rise_the_image_calls_smooth_or_too_high_is_no_pile():
    from fortmap.detect.road_window import RoadWindow
    from fortmap.fortifications import find_dsm_rubble

    pile = shapely.box(70, 94, 100, 106)
    core = (0, 0, 200, 200)
    b, a, v, rr, db, da = _dark_window(pile, rough=False)  # smooth: a soil bank or paving
    assert find_dsm_rubble(db, da, rr, RoadWindow.build(b, a, v, rr), 0.5, core, []) == []
    b, a, v, rr, db, da = _dark_window(pile, rough=True)
    rw = RoadWindow.build(b, a, v, rr)
    assert find_dsm_rubble(db, da * 4, rr, rw, 0.5, core, []) == []  # 3.2 m: a berm
    row = shapely.box(95, 92, 100, 108)  # 2.5 m along the road, across it: a block row
    b, a, v, rr, db, da = _dark_window(row, rough=True)
    assert find_dsm_rubble(db, da, rr, RoadWindow.build(b, a, v, rr), 0.5, core, []) == []
    # a razed building's spill: mostly within 3 m of a storey-high fall, judged as a whole
    b, a, v, rr, db, da = _dark_window(shapely.box(70, 94, 100, 100), rough=True)
    db[84:94, 70:100] = 6.0
    rw = RoadWindow.build(b, a, v, rr)
    assert find_dsm_rubble(db, da, rr, rw, 0.5, core, []) == []
    db[84:94, 70:100] = 0.0
    db[84:94, 70:74] = 6.0  # a third of it near the fall: a pile, kept whole
    (poly, _, _), *rest = find_dsm_rubble(db, da, rr, rw, 0.5, core, [])
    assert not rest and poly.bounds[0] <= 71


def test_dsm_piles_join_findings_within_the_merge_gap():
    from fortmap.fortifications import merge_dsm_piles

    image = _finding(shapely.box(0, 0, 10, 4))
    dsm = {"road_name": "Main St", "passable_width_m": 1.0, "blocks_road": True, "area_m2": 40.0,
           "evidence": {"source": "dsm"}}  # fmt: skip
    part = (shapely.box(14, 0, 24, 4), 0.4, dsm)  # 4 m on: the pile's shaded part
    other = (shapely.box(60, 0, 70, 4), 0.4, dict(dsm))  # 50 m on: another pile
    out = merge_dsm_piles([image, part, other])
    assert len(out) == 2
    (g, score, at), (g2, _, _) = out
    assert g.contains(shapely.box(1, 1, 23, 3)) and g2.equals(other[0])
    assert score == 0.8 and at["blocks_road"] and at["passable_width_m"] == 1.0
    assert at["evidence"]["merged_dsm_piles"] == 1
    assert merge_dsm_piles([image]) == [image]


def test_dsm_findings_carry_the_dsm_quality_in_their_evidence():
    from fortmap.detect.dsm_noise import DsmNoise
    from fortmap.fortifications import tag_dsm_evidence

    noise = DsmNoise((0.5, 0, 0), 0.5, 0.2, 90.0, 0.3, ((1.0, 0.25),), 0.01, 100)
    seen = {"evidence": {"source": "dsm"}}
    both = {"source": "both", "evidence": {}}
    image = {"source": "image", "evidence": {}}
    for at in (seen, both, image):
        tag_dsm_evidence(at, noise)
    assert seen["evidence"]["dsm_quality"] == {
        "offset_m": 0.5,
        "tilt_m_per_km": 0.2,
        "sigma_1m2_m": 0.25,
    }
    assert "dsm_quality" in both["evidence"] and "dsm_quality" not in image["evidence"]


def test_footprints_are_rasterised_on_the_window_read():
    fps = np.asarray(
        [shapely.box(110, 210, 120, 220), shapely.box(500, 500, 510, 510)], dtype=object
    )
    fc = FortContext(roads=None, sun_azimuth=None, footprints=fps)
    lab = _footprint_labels(fc, Window(100, 200, 50, 40))
    assert lab is not None and lab.shape == (40, 50)
    # window pixel (row 15, col 15) is grid pixel (215, 115), inside the first footprint
    assert lab[15, 15] == 1 and lab[35, 45] == 0 and lab.max() == 1
    assert _footprint_labels(fc, Window(0, 0, 50, 50)) is None
    assert _footprint_labels(FortContext(roads=None, sun_azimuth=None), Window(0, 0, 9, 9)) is None


def test_footprint_labels_match_rasterising_each_footprint_shifted():
    rng = np.random.default_rng(3)
    polys = []
    for _ in range(60):
        x, y = rng.uniform(90, 170), rng.uniform(196, 276)
        polys.append(shapely.Polygon(np.c_[x, y] + rng.uniform(-6, 6, (5, 2))).convex_hull)
    ring = shapely.box(120.25, 230.5, 140.5, 250.75).difference(shapely.box(125, 235, 130, 240))
    multi = shapely.MultiPolygon(
        [shapely.box(95.5, 205.5, 99.5, 209.5), shapely.box(150, 260, 153, 262)]
    )
    polys += [ring, multi, shapely.box(100.5, 200.5, 104.5, 204.5)]
    fps = np.asarray(polys, dtype=object)
    read = Window(97, 203, 70, 66)
    lab = _footprint_labels(FortContext(roads=None, sun_azimuth=None, footprints=fps), read)
    # the straightforward way: each overlapping footprint translated and rasterised in order
    box = shapely.box(97, 203, 167, 269)
    sel = [g for g in polys if g.intersects(box)]
    ref = rasterio.features.rasterize(
        [(shapely.affinity.translate(g, -97, -203), i + 1) for i, g in enumerate(sel)],
        out_shape=(66, 70), fill=0, dtype="int32",
    )  # fmt: skip
    assert len(sel) > 20 and np.array_equal(lab, ref)
    # the mappings are the geometries' own interfaces, holes and parts included
    for g, (m, _) in zip(fps, rasterize_shapes(fps, range(len(fps))), strict=True):
        assert shapely.geometry.shape(m).equals_exact(g, 0)


def test_spill_share_around_a_pile_equals_the_whole_window_reach():
    from fortmap.detect.dsm_rubble import _near_fall, _spill_share

    rng = np.random.default_rng(11)
    for gsd in (0.5, 0.3):
        db = np.full((90, 120), 10.0)
        da = db.copy()
        for _ in range(4):  # razed buildings: the surface fell by a storey or more
            r, c = rng.integers(0, 80), rng.integers(0, 110)
            da[r : r + 8, c : c + 10] = 10.0 - rng.uniform(2.0, 9.0)
        da[rng.random(db.shape) < 0.01] = np.nan  # DSM holes
        whole = _near_fall(db, da, gsd)
        assert whole.any() and not whole.all()
        for _ in range(30):
            r, c = rng.integers(0, 85), rng.integers(0, 110)
            rr, cc = np.nonzero(rng.random((5, 10)) < 0.6)
            rr, cc = rr + r, cc + c
            assert _spill_share(db, da, rr, cc, gsd) == whole[rr, cc].mean()
