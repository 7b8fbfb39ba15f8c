"""Block rows at a crossing: lone blocks grouped in the frame of the road they close."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from scipy import ndimage as ndi

from fortmap.detect.barricade_dsm import dsm_rise_at
from fortmap.detect.barricade_rows import (
    frame_on,
    hysteresis,
    hysteresis_pixels,
    junction_rows,
    pieces,
    road_components,
)
from fortmap.detect.barricades import find_barricades
from fortmap.detect.roadmask import roads_in_window

GSD = 0.5


def _crossing(blocks: list[tuple[float, float]], seed: int = 0):
    """A 200 x 200 px window with two 12 m roads crossing at (100, 100): ``Cross`` (east-west)
    and ``Main`` (north-south, burnt last, so it owns the crossing's pixels); 1.5 m blocks
    centred on ``blocks`` (x, y) burnt bright after."""
    from rasterio.features import rasterize

    rng = np.random.default_rng(seed)
    shape = (200, 200)
    roads = gpd.GeoDataFrame(
        {"name": ["Cross", "Main"], "road_class": ["major", "major"], "width_px": [24.0, 24.0]},
        geometry=[
            shapely.LineString([(0, 100), (200, 100)]),
            shapely.LineString([(100, 0), (100, 200)]),
        ],
    )
    rr = roads_in_window(roads, shape, 2.0)
    base = np.where(rr.carriageway, 0.25, 0.55).astype(np.float32)
    before = base + rng.normal(0, 0.015, shape).astype(np.float32)
    after = base + rng.normal(0, 0.015, shape).astype(np.float32)
    if blocks:
        polys = [shapely.box(x - 1.5, y - 1.5, x + 1.5, y + 1.5) for x, y in blocks]
        after[rasterize([(p, 1) for p in polys], out_shape=shape).astype(bool)] = 0.8
    return before[None], after[None], np.ones(shape, bool), rr, roads


# Two blocks 3 m apart north-south inside the crossing (owned by Main): one behind the other
# along Main, they are a two-block row across Cross's mouth.
ACROSS_THE_MOUTH = [(108.0, 94.0), (108.0, 100.0)]


def test_two_block_row_across_a_junction_mouth_is_found() -> None:
    b, a, v, rr, roads = _crossing(ACROSS_THE_MOUTH)
    assert set(rr.road_id[94, 108:109].tolist()) == {2}  # Main owns the crossing
    out = find_barricades(b, a, v, rr, roads, GSD, (0, 0, 200, 200))
    assert len(out) == 1
    line, _, attrs = out[0]
    # framed by the road it closes: the line runs across Cross, i.e. north-south
    assert attrs["road_name"] == "Cross"
    (x0, y0), (x1, y1) = line.coords
    assert abs(x1 - x0) < 2 and 3.5 <= abs(y1 - y0) * GSD <= 6.5


def test_lone_blocks_far_apart_at_a_junction_are_not_a_row() -> None:
    b, a, v, rr, roads = _crossing([(108.0, 90.0), (108.0, 110.0)])
    assert find_barricades(b, a, v, rr, roads, GSD, (0, 0, 200, 200)) == []


def test_junction_rows_uses_each_piece_once() -> None:
    from scipy import ndimage as ndi

    b, a, v, rr, roads = _crossing(ACROSS_THE_MOUTH)
    lab, n = ndi.label(a[0] > 0.6)
    ps = pieces(lab, n, rr)
    assert len(ps) == 2 and all(p.road == 1 for p in ps)  # both framed by Main
    contrast = np.where(a[0] > 0.6, 10.0, 0.0).astype(np.float32)
    rows = junction_rows(ps, rr, roads, 4.0, GSD, contrast, 6.0)
    assert len(rows) == 1 and len(rows[0]) == 2 and rows[0][0].road == 0
    # measured in Cross's frame, the row lies across it, spanning both blocks
    q = frame_on(ps[0], 0, rr, roads)
    assert abs(np.cos(q.theta)) > 0.99


def test_junction_rows_needs_two_pieces() -> None:
    b, a, v, rr, roads = _crossing(ACROSS_THE_MOUTH[:1])
    from scipy import ndimage as ndi

    lab, n = ndi.label(a[0] > 0.6)
    contrast = np.where(a[0] > 0.6, 10.0, 0.0).astype(np.float32)
    assert junction_rows(pieces(lab, n, rr), rr, roads, 4.0, GSD, contrast, 6.0) == []


def _hysteresis_ref(seed: np.ndarray, grow: np.ndarray) -> tuple[np.ndarray, int]:
    """The former ``hysteresis``: ``ndi.label`` of the whole mask, the seeded labels kept."""
    lab, n = ndi.label(grow, np.ones((3, 3), bool))
    if n == 0:
        return lab, 0
    keep = np.zeros(n + 1, bool)
    keep[np.unique(lab[seed & grow])] = True
    keep[0] = False
    new = np.zeros(n + 1, np.int32)
    new[keep] = np.arange(1, keep.sum() + 1)
    return new[lab], int(keep.sum())


def test_hysteresis_and_components_match_whole_window_labelling() -> None:
    rng = np.random.default_rng(5)
    for t in range(150):
        h, w = (int(v) for v in rng.integers(1, 60, 2))
        grow = rng.random((h, w)) < rng.uniform(0.05, 0.7)
        if t % 2:
            grow = ndi.binary_opening(grow)
        seed = rng.random((h, w)) < rng.uniform(0.0, 0.3)
        ref, n_ref = _hysteresis_ref(seed, grow)
        lab, n = hysteresis(seed & grow, grow)
        assert n == n_ref and lab.dtype == ref.dtype
        np.testing.assert_array_equal(lab, ref)
        # every component's pixels in raster order, as find_objects and a compare gave them
        roads = type("R", (), {"road_id": np.ones((h, w), np.int32)})()
        got = list(road_components(lab, roads))
        want = []
        for k, sl in enumerate(ndi.find_objects(ref), start=1):
            if sl is not None:
                rr, cc = np.nonzero(ref[sl] == k)
                want.append((rr + sl[0].start, cc + sl[1].start))
        # the fill's own pixel lists give the same components
        lab2, n2, px = hysteresis_pixels(seed & grow, grow)
        np.testing.assert_array_equal(lab2, ref)
        got2 = list(road_components(lab2, roads, n2, px))
        assert len(got) == len(want) == len(got2)
        for (rr, cc, _, _), (r2, c2, _, _), (wr, wc) in zip(got, got2, want, strict=True):
            np.testing.assert_array_equal(rr, wr)
            np.testing.assert_array_equal(cc, wc)
            np.testing.assert_array_equal(r2, wr)
            np.testing.assert_array_equal(c2, wc)


def _dsm_rise_ref(rise, rr, cc, gsd, ratio, block_m, mass_m):
    # the whole-window computation ``dsm_rise_at`` stands in for
    near = np.zeros(rise.shape, bool)
    near[rr, cc] = True
    near = ndi.binary_dilation(near, np.ones((3, 3), bool))
    if not np.isfinite(rise[near]).any():
        return None
    with np.errstate(invalid="ignore"):
        block = near & (rise >= block_m)
        if block.sum() * gsd * gsd < 1.0:
            return False
        lab, _ = ndi.label(rise >= mass_m, np.ones((3, 3), bool))
    ids = np.unique(lab[block])
    ids = ids[ids > 0]
    return bool(np.isin(lab, ids).sum() <= ratio * max(len(rr), int(block.sum())))


def test_dsm_rise_at_matches_whole_window_labelling() -> None:
    rng = np.random.default_rng(11)
    seen = set()
    for t in range(300):
        h, w = (int(v) for v in rng.integers(3, 50, 2))
        rise = ndi.uniform_filter(rng.normal(0.3, 0.6, (h, w)), 3).astype(np.float32)
        if t % 3 == 0:
            rise[rng.random((h, w)) < 0.3] = np.nan
        if t % 7 == 0:
            rise[:] = np.nan
        k = int(rng.integers(1, 12))
        rr, cc = rng.integers(0, h, k), rng.integers(0, w, k)  # edges and repeats included
        # the mass threshold on either side of the block one (rules may raise either)
        block_m, mass_m = (0.7, 0.3) if t % 2 else (0.5, 0.8)
        ratio = float(rng.choice([1.5, 3.0, 6.0]))
        want = _dsm_rise_ref(rise, rr, cc, 0.5, ratio, block_m, mass_m)
        assert dsm_rise_at(rise, rr, cc, 0.5, ratio, block_m, mass_m) is want
        seen.add(want)
    assert seen == {None, False, True}


def test_a_mask_seeding_itself_is_labelled_as_ndimage_labels_it() -> None:
    rng = np.random.default_rng(2)
    for _ in range(50):
        m = rng.random((int(rng.integers(1, 40)), int(rng.integers(1, 40)))) < 0.4
        want, n_want = ndi.label(m, np.ones((3, 3), bool))
        lab, n, _ = hysteresis_pixels(m, m)
        assert n == n_want
        np.testing.assert_array_equal(lab, want)
