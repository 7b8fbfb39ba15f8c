"""The along-road kernels' fast paths against the plain computations they stand for.

``sides_ab`` and ``other_road`` take their samples at flat offsets fixed once per run of one
angle, and ``masked_box_ab`` its 3 x 3 boxes by flat indices and selects: each must give the
values of sampling every pixel alone (the Python references of ``test_road_window``), on runs
of one angle as a road gives them, at the window's edge, and on NaN, infinities and zeros of
either sign.
"""

from __future__ import annotations

import numpy as np
import pytest

from fortmap.detect import along_kernels as AK
from fortmap.detect import fort_kernels as K
from fortmap.detect import masked_box_kernels as MB
from fortmap.detect.barricade_rows import masked_box
from test_road_window import _median_ref, _other_road_ref, _sides_ref

#: Samples a side of the along-road reference (2.5..4 m at 0.5 m): the unrolled path.
OFFS = np.array([2.5, 3.0, 3.5, 4.0]) / 0.5
#: Angles whose steps land within rounding of a pixel edge (cos 60 deg * 5 px = 2.5 px, and
#: the axis-aligned ones), where the run's offsets must not be used, and generic ones.
ANGLES = np.array([0.0, np.pi / 2, np.pi, -np.pi / 2, np.pi / 3, -2 * np.pi / 3, 0.3, 1.1, -2.0])


def _kernel_median(vals: list[np.float32]) -> np.float32:
    """``along_kernels._small_median`` in plain Python: the sort's values, and where the
    middle values are zeros of both signs, the sign its min/max selection gives (Python's
    ``min``/``max`` keep the first of equal values, as numba's do)."""
    if any(v != v for v in vals):
        return _median_ref(vals)
    if len(vals) == 4:
        a, b, c, d = vals
        lo, hi = max(min(a, b), min(c, d)), min(max(a, b), max(c, d))
        return np.float32((np.float64(lo) + np.float64(hi)) / 2.0)
    if len(vals) == 3:
        a, b, c = vals
        return max(min(a, b), min(max(a, b), c))
    return _median_ref(vals)


def _runs(rng: np.random.Generator, n: int) -> np.ndarray:
    """Per pixel an angle, in runs of one angle (a road's segments), as ``road_window``
    hands them."""
    ang = np.empty(n)
    i = 0
    while i < n:
        k = int(rng.integers(1, 40))
        ang[i : i + k] = rng.choice(ANGLES) if rng.random() < 0.5 else rng.uniform(-4, 4)
        i += k
    return ang


def _levels(rng: np.random.Generator, shape: tuple[int, int], special: bool) -> np.ndarray:
    # quantised: ties, zeros of both signs where the sign of the median's zero matters
    g = (rng.integers(-3, 4, shape) / 4).astype(np.float32)
    g[rng.random(shape) < 0.1] = -0.0
    if special:
        g[rng.random(shape) < 0.02] = np.nan
        g[rng.random(shape) < 0.02] = np.inf
        g[rng.random(shape) < 0.02] = -np.inf
    return g


@pytest.mark.parametrize("seed", range(6))
def test_sides_ab_runs_match_sampling_every_pixel(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(20, 60)), int(rng.integers(20, 60)))
    samp = rng.random(shape) < rng.uniform(0.5, 1.0)  # dense: whole sides as on a road
    side = samp & (rng.random(shape) < 0.1)
    sm_a = _levels(rng, shape, special=seed % 2 == 1)
    sm_b = _levels(rng, shape, special=seed % 3 == 2)
    rows, cols = np.nonzero(samp)  # raster order, edge pixels included
    angle = _runs(rng, rows.size)
    got_a, got_b, hit = AK.sides_ab(sm_a, sm_b, samp, side, rows, cols, angle, OFFS)
    ref_a, ref_hit = _sides_ref(sm_a, samp, side, rows, cols, angle, OFFS, _kernel_median)
    ref_b, _ = _sides_ref(sm_b, samp, side, rows, cols, angle, OFFS, _kernel_median)
    np.testing.assert_array_equal(got_a.view(np.int32), ref_a.view(np.int32))
    np.testing.assert_array_equal(got_b.view(np.int32), ref_b.view(np.int32))
    assert np.array_equal(hit, ref_hit)


@pytest.mark.parametrize("seed", range(3))
def test_sides_ab_infinities_and_zeros(seed: int) -> None:
    # sides whose middle values are -inf and +inf (a NaN median, which the general path's
    # comparisons skip) or zeros of both signs (whose sign depends on how they are found)
    rng = np.random.default_rng(40 + seed)
    shape = (40, 40)
    vals = np.array([-np.inf, np.inf, -0.0, 0.0, 0.25], np.float32)
    sm_a = rng.choice(vals, shape)
    sm_b = rng.choice(vals, shape)
    samp = rng.random(shape) < 0.9
    rows, cols = np.nonzero(samp)
    angle = _runs(rng, rows.size)
    got_a, got_b, hit = AK.sides_ab(sm_a, sm_b, samp, samp, rows, cols, angle, OFFS)
    for sm, got in ((sm_a, got_a), (sm_b, got_b)):
        ref, ref_hit = _sides_ref(sm, samp, samp, rows, cols, angle, OFFS, _kernel_median)
        np.testing.assert_array_equal(got.view(np.int32), ref.view(np.int32))
        assert np.array_equal(hit, ref_hit)


@pytest.mark.parametrize("seed", range(8))
def test_sides_ab_inf_off_matches_the_masked_pass(seed: int) -> None:
    """Levels +inf exactly off the sampling mask (``masked_box_ab(..., fill=inf)``): the pass
    that reads presence from the levels gives the masked pass's values, NaN, -inf and
    zeros of both signs on the mask included."""
    rng = np.random.default_rng(90 + seed)
    shape = (int(rng.integers(20, 60)), int(rng.integers(20, 60)))
    samp = rng.random(shape) < rng.uniform(0.3, 1.0)
    side = samp & (rng.random(shape) < 0.1)
    levels = []
    for special in (seed % 2 == 1, seed % 3 == 2):
        sm = _levels(rng, shape, special)
        sm[sm == np.inf] = np.float32(0.5)  # +inf never on the mask (the caller's promise)
        sm[~samp] = np.inf
        levels.append(sm)
    rows, cols = np.nonzero(samp)
    angle = _runs(rng, rows.size)
    for sel in (slice(None), np.flatnonzero(rng.random(rows.size) < 0.3)):
        args = (*levels, samp, side, rows[sel], cols[sel], angle[sel], OFFS)
        got = AK.sides_ab(*args, True)
        want = AK.sides_ab(*args)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g.view(np.uint8), w.view(np.uint8))
        ref_a, ref_hit = _sides_ref(
            levels[0], samp, side, rows[sel], cols[sel], angle[sel], OFFS, _kernel_median
        )
        np.testing.assert_array_equal(got[0].view(np.int32), ref_a.view(np.int32))
        assert np.array_equal(got[2], ref_hit)


def test_sides_ab_empty_and_all_masked() -> None:
    rng = np.random.default_rng(10)
    shape = (30, 30)
    sm = _levels(rng, shape, special=False)
    samp = np.zeros(shape, bool)
    rows, cols = np.nonzero(np.ones(shape, bool))
    angle = _runs(rng, rows.size)
    a, b, hit = AK.sides_ab(sm, sm, samp, samp, rows, cols, angle, OFFS)
    assert np.isnan(a).all() and np.isnan(b).all() and not hit.any()
    e = np.zeros(0, np.int64)
    a, b, hit = AK.sides_ab(sm, sm, samp, samp, e, e, np.zeros(0), OFFS)
    assert a.size == b.size == hit.size == 0


@pytest.mark.parametrize("seed", range(3))
def test_other_road_runs_match_sampling_every_pixel(seed: int) -> None:
    rng = np.random.default_rng(20 + seed)
    shape = (90, 110)
    road_id = rng.integers(1, 4, (9, 11)).repeat(10, 0).repeat(10, 1).astype(np.int32)
    on = rng.random(shape) < 0.8
    rows, cols = np.nonzero(on)
    angle = _runs(rng, rows.size)
    offs = np.array([5.0, 6.0, 7.0, 8.0, 12.0])
    got = AK.other_road(on, road_id, rows, cols, angle, offs)
    assert np.array_equal(got, _other_road_ref(on, road_id, rows, cols, angle, offs))
    assert got.any() and not got.all()


@pytest.mark.parametrize("seed", range(4))
def test_other_road_sparse_roads_near_the_reach(seed: int) -> None:
    """Roads far apart next to small patches of other roads at about a sample's reach: the
    tile prefilter must skip only pixels no sample can take to another road."""
    rng = np.random.default_rng(70 + seed)
    shape = (170, 210)
    road_id = np.zeros(shape, np.int32)
    road_id[60:66, :] = 1
    road_id[:, 100:104] = 2
    for k in range(12):
        y, x = rng.integers(0, shape[0] - 3), rng.integers(0, shape[1] - 3)
        road_id[y : y + 2, x : x + 2] = 3 + k % 2
    on = road_id > 0
    on &= rng.random(shape) < 0.95
    rows, cols = np.nonzero(on)
    angle = _runs(rng, rows.size)
    offs = np.array([5.0, 6.0, 7.0, 8.0, 12.0, 16.0, 20.0 + 0.3 * seed])
    got = AK.other_road(on, road_id, rows, cols, angle, offs)
    assert np.array_equal(got, _other_road_ref(on, road_id, rows, cols, angle, offs))
    assert got.any() and not got.all()


def test_other_road_empty_mask() -> None:
    shape = (40, 40)
    rows, cols = np.nonzero(np.ones(shape, bool))
    angle = np.zeros(rows.size)
    got = AK.other_road(np.zeros(shape, bool), np.ones(shape, np.int32), rows, cols, angle, OFFS)
    assert not got.any()


@pytest.mark.parametrize("seed", range(8))
def test_masked_box_ab_3x3_matches_masked_box(seed: int) -> None:
    rng = np.random.default_rng(30 + seed)
    shape = (int(rng.integers(1, 30)), int(rng.integers(1, 30)))
    ga = _levels(rng, shape, special=True)
    gb = (rng.normal(size=shape) * 10.0 ** rng.integers(-6, 6, shape)).astype(np.float32)
    gb[rng.random(shape) < 0.1] = -0.0
    m = rng.random(shape) < rng.uniform(0.0, 1.0)
    # the pixels asked for: some of the mask's, some off it, edge pixels included
    rows, cols = np.nonzero(rng.random(shape) < 0.7)
    got_a, got_b = MB.masked_box_ab(ga, gb, m, 3, rows, cols)
    for g, got in ((ga, got_a), (gb, got_b)):
        # the per-pixel kernel it replaces (NaN and infinities in the boxes included)
        want = np.full(shape, np.nan, np.float32)
        want[rows, cols] = K.masked_box_at(g, m, 3, rows, cols)
        np.testing.assert_array_equal(got.view(np.int32), want.view(np.int32))
    # and the numpy expression, on levels of one magnitude (its running sums are exact there)
    g = rng.random(shape).astype(np.float32)
    want = np.full(shape, np.nan, np.float32)
    want[rows, cols] = masked_box(g, m, 3)[rows, cols]
    np.testing.assert_array_equal(MB.masked_box_ab(g, g, m, 3, rows, cols)[1], want)


@pytest.mark.parametrize("seed", range(4))
def test_masked_box_ab_fill(seed: int) -> None:
    # +inf off the pixels asked for, the default's values (NaN included) on them
    rng = np.random.default_rng(60 + seed)
    shape = (int(rng.integers(1, 40)), int(rng.integers(1, 40)))
    ga = _levels(rng, shape, special=True)
    gb = rng.random(shape).astype(np.float32)
    m = rng.random(shape) < rng.uniform(0.0, 1.0)
    asked = rng.random(shape) < 0.7
    rows, cols = np.nonzero(asked)
    for k in (3, 5):
        want = MB.masked_box_ab(ga, gb, m, k, rows, cols)
        got = MB.masked_box_ab(ga, gb, m, k, rows, cols, np.inf)
        for g, w in zip(got, want, strict=True):
            assert (g[~asked] == np.inf).all()
            np.testing.assert_array_equal(g[asked].view(np.int32), w[asked].view(np.int32))


def test_masked_box_ab_all_masked_out() -> None:
    g = np.ones((12, 9), np.float32)
    rows, cols = np.nonzero(np.ones(g.shape, bool))
    a, b = MB.masked_box_ab(g, g, np.zeros(g.shape, bool), 3, rows, cols)
    assert np.isnan(a).all() and np.isnan(b).all()


def test_box3_weights_are_the_divided_mask_means() -> None:
    """The table of mask means equals the two divisions it replaces, bit for bit."""
    w = MB._box3_weights()
    for c0 in range(4):
        for c1 in range(4):
            for c2 in range(4):
                col = [np.float64(np.float32((0.0 + c) / 3)) for c in (c0, c1, c2)]
                want = np.float32((0.0 + col[0] + col[1] + col[2]) / 3)
                assert w[c0 * 16 + c1 * 4 + c2].tobytes() == want.tobytes()
