"""Rubble on roads: a synthetic debris field leaving a 2 m lane."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from rasterio.features import rasterize
from scipy import ndimage as ndi

from fortmap.detect.road_window import robust_sigma
from fortmap.detect.roadmask import roads_in_window
from fortmap.detect.rubble import find_rubble
from fortmap.detect.rubble_kernels import (
    OffRoadChange,
    RelativeRoughness,
    box_change,
    box_change_at,
    box_change_values,
    relative_roughness,
    residual_level,
    shared_relative_roughness,
)

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
    # a pile too long for a block row skips that test: its measures are still reported
    ev = attrs["evidence"]
    assert ev["blob_along_m"] > 0 and len(ev["outside_changed"]) == 2
    assert all(0 <= x <= 1 for x in ev["outside_changed"])


def test_no_change_no_rubble():
    b, a, v, rr, road = _window(None)
    assert find_rubble(b, a, v, rr, road, GSD, (0, 0, 200, 200)) == []


def test_pile_in_two_patches_is_one_pile():
    # one 24 m field with a 2 m bare strip across it: the patches are measured as one pile
    a, b = shapely.box(70, 96, 110, 108), shapely.box(114, 96, 118, 108)
    b_, a_, v, rr, road = _window(shapely.MultiPolygon([a, b]))
    out = find_rubble(b_, a_, v, rr, road, GSD, (0, 0, 200, 200))
    assert len(out) == 1
    poly = out[0][0]
    truth = shapely.box(70, 96, 118, 108)
    assert poly.intersection(truth).area / poly.union(truth).area > 0.5


def test_short_pile_blocking_the_road():
    # 5 m along, the whole 8 m carriageway: no block row, and no free lane left
    pile = shapely.box(90, 91, 100, 109)
    out = find_rubble(*_window(pile), GSD, (0, 0, 200, 200))
    assert len(out) == 1
    attrs = out[0][2]
    assert attrs["passable_width_m"] < 1.0
    assert attrs["blocks_road"]


def test_block_rows_are_not_rubble():
    # two rows of 1.5 m concrete blocks 0.5 m apart, 3 m between the rows: a barricade
    b, a, v, rr, road = _window(None)
    for x0 in (95, 104):
        for y0 in range(92, 108, 4):
            a[0, y0 : y0 + 3, x0 : x0 + 3] = 0.74
    assert find_rubble(b, a, v, rr, road, GSD, (0, 0, 200, 200)) == []


def test_smooth_mound_across_the_road_is_not_rubble():
    # a berm's end: a bright, smooth soil ridge 10 m wide crossing the road, lit on one flank.
    # It is brighter and (from its slope) more varied than the asphalt, but has no
    # small-scale roughness of its own.
    rng = np.random.default_rng(5)
    b, a, v, rr, road = _window(None)
    xx = np.mgrid[0:200, 0:200][1]
    d = (xx - 100) / 10.0
    m = np.abs(d) < 1
    a[0][m] = (0.5 - 0.24 * d[m] + rng.normal(0, 0.006, m.sum())).astype(np.float32)
    assert find_rubble(b, a, v, rr, road, GSD, (0, 0, 200, 200)) == []


def test_relative_roughness_ignores_slopes_and_light():
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[10:40, 10:40]
    rows, cols = rows.ravel(), cols.ravel()
    yy, xx = np.mgrid[0:50, 0:50].astype(np.float32)
    plane = 0.2 + 0.01 * xx + 0.005 * yy
    # a plane leaves no high-pass residual at all: the measure sits at its floor
    for k in (3, 5):
        assert np.all(relative_roughness(plane, rows, cols, k) < -8)
    asphalt = (0.3 * (1 + 0.05 * rng.normal(size=(50, 50)))).astype(np.float32)
    debris = (0.45 * (1 + 0.3 * rng.normal(size=(50, 50)))).astype(np.float32)
    r_asphalt = np.median(relative_roughness(asphalt, rows, cols))
    r_debris = np.median(relative_roughness(debris, rows, cols))
    assert r_debris - r_asphalt > np.log(3)
    # the same asphalt under a quarter of the light (a shadow) is as rough
    dim = np.median(relative_roughness(asphalt * 0.25, rows, cols))
    assert abs(dim - r_asphalt) < 0.01


def test_road_leaving_shadow_in_shaded_window_is_not_rubble():
    # Low sun: the road is in shade but for a lit stretch at x < 20 m on both dates; a further
    # 20 m stretch is lit only in the after image, its asphalt rough but no brighter than the
    # road's sunlit level. Most of the road being shaded, the shade-aware contrast falls back
    # to one median and reads that stretch as new; the sunlit-level test rejects it (without
    # it, this scene gives a 190 m2 pile).
    b, a, v, rr, road = _window(None)
    rng = np.random.default_rng(5)
    xx = np.mgrid[0:200, 0:200][1]
    lit_b = xx < 40
    lit_a = lit_b | ((xx >= 90) & (xx < 130))
    before = np.where(lit_b, b[0], b[0] * 0.25).astype(np.float32)
    after = np.where(lit_a, a[0], a[0] * 0.25).astype(np.float32)
    seg = rr.carriageway & (xx >= 90) & (xx < 130)
    after[seg] = 0.3 * (1 + rng.normal(0, 0.25, seg.sum()))
    assert find_rubble(before[None], after[None], v, rr, road, GSD, (0, 0, 200, 200)) == []


def test_pile_where_a_shadow_lay_before():
    # A shadow lay across the road at x 30-62 m before (a tenth of the level, with sensor noise
    # of its own, so its relative roughness is mostly noise); after, a debris field lies in
    # sunlight there. Its roughness change reads as a loss of texture (the old test rejected
    # it), but the ground was in shade before and the pile stands above the sunlit level.
    pile = shapely.box(70, 96, 130, 108)
    b, a, v, rr, road = _window(pile)
    rng = np.random.default_rng(7)
    xx = np.mgrid[0:200, 0:200][1]
    shade = (xx >= 60) & (xx < 125) & rr.mask
    b[0][shade] = b[0][shade] * 0.1 + rng.normal(0, 0.01, shade.sum()).astype(np.float32)
    out = find_rubble(b, a, v, rr, road, GSD, (0, 0, 200, 200))
    assert len(out) == 1
    ev = out[0][2]["evidence"]
    assert ev["shaded_before"]
    assert out[0][0].intersection(pile).area / out[0][0].union(pile).area > 0.5


def test_pile_partly_in_a_shadow_before():
    # The shadow covered 47 % of the pile's ground before (not most of it, so the pile does not
    # count as shaded before). Over the whole pile its roughness change reads as a loss (the
    # shaded part's noise, and the old whole-pile test lost this pile); measured where the
    # ground was lit before, it is a gain.
    pile = shapely.box(70, 96, 130, 108)
    b, a, v, rr, road = _window(pile)
    rng = np.random.default_rng(7)
    xx = np.mgrid[0:200, 0:200][1]
    shade = (xx >= 60) & (xx < 98) & rr.mask
    b[0][shade] = b[0][shade] * 0.1 + rng.normal(0, 0.06, shade.sum()).astype(np.float32)
    out = find_rubble(b, a, v, rr, road, GSD, (0, 0, 200, 200))
    assert len(out) == 1
    ev = out[0][2]["evidence"]
    assert not ev["shaded_before"] and ev["relative_roughness_change"] > 0


def test_faint_margin_joins_its_pile():
    # A 20 m pile whose debris thins out over a further 15 m: the thin part stands about 2
    # noise units above the road (under the 3 sigma grow bar, over the 1.5 sigma extension
    # bar); it is measured with the pile, not cut off at the dense part's edge.
    pile = shapely.box(70, 96, 110, 108)
    b, a, v, rr, road = _window(pile)
    yy, xx = np.mgrid[0:200, 0:200]
    a[0][(xx >= 110) & (xx < 140) & (yy >= 96) & (yy < 108)] += 0.045
    out = find_rubble(b, a, v, rr, road, GSD, (0, 0, 200, 200))
    assert len(out) == 1
    whole = shapely.box(70, 96, 140, 108)
    assert out[0][0].bounds[2] >= 135
    assert out[0][0].intersection(whole).area / out[0][0].union(whole).area > 0.6


def test_off_road_change_read_at_pixels_equals_whole_window():
    rng = np.random.default_rng(5)
    diff = rng.normal(0, 0.02, (120, 90)).astype(np.float32)
    diff[40:60, 30:50] += 0.3
    off = rng.random(diff.shape) > 0.3
    # the whole-window formula the point reader replaces
    d = ndi.uniform_filter(diff, 3)
    want = np.abs(d - np.median(d[off])) / robust_sigma(d[off], 1e-3)
    z = OffRoadChange(diff, off, 3)
    rows, cols = np.nonzero(rng.random(diff.shape) > 0.5)
    assert np.array_equal(z[rows, cols], want[rows, cols])
    # the change taken from the two grey levels in the smoothing pass: the same values
    after = rng.random(diff.shape).astype(np.float32)
    before = after - diff
    d = ndi.uniform_filter(after - before, 3)
    want = np.abs(d - np.median(d[off])) / robust_sigma(d[off], 1e-3)
    assert np.array_equal(OffRoadChange(after, off, 3, before)[rows, cols], want[rows, cols])
    # too little ground for the statistic: no change anywhere
    few = np.zeros_like(off)
    few[0, :10] = True
    assert np.all(OffRoadChange(diff, few, 3)[rows, cols] == 0)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_box_change_is_the_uniform_filter_of_the_change(k: int) -> None:
    rng = np.random.default_rng(k)
    ga = rng.random((37, 29)).astype(np.float32)
    gb = (ga * rng.uniform(0.5, 1.5, ga.shape)).astype(np.float32)
    off = rng.random(ga.shape) > 0.4
    d, vals = box_change(ga, gb, off, k)
    want = ndi.uniform_filter(ga - gb, k)  # edges included: mode reflect
    assert d.dtype == np.float32 and np.array_equal(d, want)
    assert np.array_equal(vals, want[off])


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("shape", [(37, 29), (2, 3), (1, 1), (6, 40)])
def test_box_change_values_and_points_match_the_whole_window_pass(k: int, shape) -> None:
    # the gather into a reused buffer and the point reads against ``box_change``, bit for bit,
    # on images smaller than the box (reflected more than once) and at every edge pixel
    rng = np.random.default_rng(k + 7 * shape[0])
    ga = (rng.random(shape) * 10.0 ** rng.integers(-5, 2, shape)).astype(np.float32)
    gb = (ga * rng.uniform(0.5, 1.5, shape)).astype(np.float32)
    off = rng.random(shape) > 0.4
    d, vals = box_change(ga, gb, off, k)
    out = np.full(ga.size + 1, np.nan, np.float32)
    n = box_change_values(ga, gb, off, k, out)
    assert n == off.sum() and np.array_equal(out[:n].view(np.int32), vals.view(np.int32))
    rows, cols = (a.ravel() for a in np.mgrid[0 : shape[0], 0 : shape[1]])
    at = box_change_at(ga, gb, rows, cols, k)
    assert at.dtype == np.float32 and np.array_equal(at.view(np.int32), d.ravel().view(np.int32))
    assert box_change_values(ga, gb, np.zeros(shape, bool), k, out) == 0


def test_off_road_change_reuses_its_buffer_between_windows():
    # a second, smaller window after a larger one reads its own values only
    rng = np.random.default_rng(11)
    big = rng.normal(0, 1.0, (80, 70)).astype(np.float32)
    small = rng.normal(0, 0.02, (30, 20)).astype(np.float32)
    off_big, off_small = np.ones(big.shape, bool), rng.random(small.shape) > 0.2
    OffRoadChange(big, off_big, 3)
    z = OffRoadChange(small, off_small, 3)
    d = ndi.uniform_filter(small, 3)
    assert z.med == np.median(d[off_small])
    assert z.sigma == robust_sigma(d[off_small], 1e-3)
    assert np.array_equal(z.d, d)


@pytest.mark.parametrize("k", [3, 5])
def test_residual_level_is_the_box_formula_at_every_pixel(k: int) -> None:
    g = np.random.default_rng(k).random((17, 14)).astype(np.float32)
    pad = k + 2
    gp = np.pad(g, pad, mode="symmetric")  # scipy's "reflect"

    def box(y: int, x: int, m: int) -> float:
        a = 0.0
        for dy in range(-(m // 2), m - m // 2):
            for dx in range(-(m // 2), m - m // 2):
                a += float(gp[y + dy, x + dx])
        return a / (m * m)

    rows, cols = (a.ravel() for a in np.mgrid[0:17, 0:14])  # edges and interior
    res, lev = residual_level(g, rows, cols, k)
    for i, (r, c) in enumerate(zip(rows + pad, cols + pad, strict=True)):
        a = 0.0
        for dy in range(-(k // 2), k - k // 2):
            for dx in range(-(k // 2), k - k // 2):
                a += abs(float(gp[r + dy, c + dx]) - box(r + dy, c + dx, k))
        assert res[i] == np.float32(a / (k * k)) and lev[i] == np.float32(box(r, c, k + 2))


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6, 7, 11])
def test_residual_level_interior_kernels_match_the_plain_sums(k: int) -> None:
    # the interior kernels (five box sums side by side; k = 5 unrolled) against the plain
    # reflected sums, ``_box``'s order, at every pixel of images with wide dynamic range
    rng = np.random.default_rng(10 + k)
    g = (rng.random((40, 37)) * 10.0 ** rng.integers(-6, 3, (40, 37))).astype(np.float32)
    g[5:9, 5:9] = 0.0
    rows, cols = (a.ravel() for a in np.mgrid[0:40, 0:37])
    res, lev = residual_level(g, rows, cols, k)
    h, w = g.shape

    def refl(i: int, n: int) -> int:
        while i < 0 or i >= n:
            i = -i - 1 if i < 0 else 2 * n - i - 1
        return i

    def box(y: int, x: int, m: int) -> float:
        a = 0.0
        for dy in range(-(m // 2), m - m // 2):
            for dx in range(-(m // 2), m - m // 2):
                a += float(g[refl(y + dy, h), refl(x + dx, w)])
        return a / (m * m)

    for i, (r, c) in enumerate(zip(rows, cols, strict=True)):
        a = 0.0
        for dy in range(-(k // 2), k - k // 2):
            for dx in range(-(k // 2), k - k // 2):
                y, x = refl(r + dy, h), refl(c + dx, w)
                a += abs(float(g[y, x]) - box(y, x, k))
        assert res[i] == np.float32(a / (k * k)) and lev[i] == np.float32(box(r, c, k + 2))
    assert residual_level(g, rows[:0], cols[:0], k)[0].size == 0


def test_merge_by_clusters_groups_as_one_dilation_of_all_pieces() -> None:
    from fortmap.detect import fort_kernels as K
    from fortmap.detect.rubble_pieces import Component, disk, merge

    rng = np.random.default_rng(11)
    for t in range(30):
        shape = (int(rng.integers(40, 200)), int(rng.integers(40, 200)))
        blobs = rng.random(shape) < 0.004 * (1 + t % 4)
        lab, n = ndi.label(ndi.binary_dilation(blobs, iterations=int(rng.integers(0, 3))))
        ps = []
        for i in range(1, n + 1):
            rr, cc = np.nonzero(lab == i)
            ps.append(Component(rr, cc, int(rng.integers(0, 2))))
        gap = float(rng.choice([4.0, 9.0, 16.0]))
        got = [sorted(id(q) for q in g.parts) or [id(g)] for g in merge(ps, shape, gap)]
        # the reference: one dilation and labelling of every piece, over the whole window
        dil, _ = ndi.label(K.dilate(lab > 0, disk(gap)), np.ones((3, 3), bool))
        groups: dict = {}
        for p in ps:
            key = (int(np.bincount(dil[p.rows, p.cols]).argmax()), p.road)
            groups.setdefault(key, []).append(p)
        want = [sorted(id(q) for q in g) for g in groups.values()]
        assert got == want


def test_rubble_and_dsm_piles_share_the_window_relative_roughness():
    from fortmap.detect.road_window import RoadWindow

    pile = shapely.box(70, 96, 130, 108)
    b, a, v, rr, road = _window(pile)
    rw = RoadWindow.build(b, a, v, rr)
    out = find_rubble(b, a, v, rr, road, GSD, (0, 0, 200, 200), rw=rw)
    assert len(out) == 1  # the pile was measured: its road's relative roughness is kept
    kept = rw._cache[("relative_roughness", 5)]  # 2.5 m boxes at 0.5 m
    assert shared_relative_roughness(rw, 5) is kept
    fresh = RelativeRoughness(rw, 5)
    assert fresh is not kept and (fresh.after, fresh.change) == (kept.after, kept.change)
    # the same findings with or without the shared measures
    assert out == find_rubble(b, a, v, rr, road, GSD, (0, 0, 200, 200))


def test_road_change_without_its_window_array_matches_road_change():
    # the masks, sigma and contrast read at pixels against ``barricades.road_change``, on a
    # window with a pile, with invalid road pixels (contrast 0 there) and off-road pixels
    from fortmap.detect.barricades import road_change
    from fortmap.detect.road_pixels import RoadWindow
    from fortmap.detect.rubble import RUBBLE_SEED_SIGMA, _on_mask, _on_values, _road_change

    before, after, valid, rr, _ = _window(shapely.box(80, 95, 120, 105))
    valid = valid.copy()
    valid[96:99, 60:200] = False
    rw = RoadWindow.build(before, after, valid, rr)
    want = road_change(before, after, valid, rr, smooth_px=3, shade_aware=True, rw=rw)
    seed, grow, v, sigma = _road_change(rw, 3)
    # rubble seeds at its own threshold, the barricades' before they moved to the scene noise
    assert seed.any() and np.array_equal(seed, want.contrast > RUBBLE_SEED_SIGMA)
    assert np.array_equal(grow, want.grow) and sigma == want.sigma
    rows, cols = (a.ravel() for a in np.mgrid[0:200, 0:200])
    got = _on_values(rw, v, rows, cols)
    assert got.dtype == np.float32 and np.array_equal(got, want.contrast[rows, cols])
    assert np.array_equal(_on_mask(rw, v > 1.5), want.contrast > 1.5)
    # too few road pixels: no change, as ``road_change``'s empty masks say
    few = np.zeros_like(valid)
    few[100, :10] = True
    assert _road_change(RoadWindow.build(before, after, few, rr), 3) is None
    assert not road_change(before, after, few, rr, smooth_px=3, shade_aware=True).seed.any()
