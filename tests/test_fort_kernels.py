"""The road-detector kernels against the numpy/scipy expressions they replace (bit for bit)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from fortmap.detect import fort_kernels as K
from fortmap.detect.barricade_rows import masked_box


def _img(seed: int, shape=(61, 47)) -> np.ndarray:
    return (np.random.default_rng(seed).random(shape) * 0.9).astype(np.float32)


def _mask(seed: int, p: float, shape=(61, 47)) -> np.ndarray:
    return np.random.default_rng(seed).random(shape) < p


@pytest.mark.parametrize("k", [3, 5])
def test_box_at_matches_uniform_filter(k: int) -> None:
    g = _img(0)
    rows, cols = np.nonzero(_mask(1, 0.5))  # border pixels included: reflect mode
    assert np.array_equal(K.box_at(g, k, rows, cols), ndi.uniform_filter(g, k)[rows, cols])


@pytest.mark.parametrize("k", [3, 5])
def test_masked_box_at_matches_masked_box(k: int) -> None:
    g, m = _img(2), _mask(3, 0.3)
    rows, cols = np.nonzero(np.ones(g.shape, bool))
    got = K.masked_box_at(g, m, k, rows, cols)
    assert np.array_equal(got, masked_box(g, m, k)[rows, cols], equal_nan=True)
    assert np.isnan(got).any()  # sparse mask: some boxes hold none of it


def test_any_near_at_matches_square_dilation() -> None:
    m = _mask(4, 0.03)
    rows, cols = np.nonzero(np.ones(m.shape, bool))
    ref = ndi.binary_dilation(m, np.ones((5, 5), bool))[rows, cols]
    assert np.array_equal(K.any_near_at(m, 2, rows, cols), ref)


@pytest.mark.parametrize("k", [3, 7])
def test_morphology_matches_scipy(k: int) -> None:
    disk = np.hypot(*np.mgrid[-(k // 2) : k // 2 + 1, -(k // 2) : k // 2 + 1]) <= k / 2
    for p in (0.2, 0.6):
        m = _mask(5, p)
        m[0, :] = True  # objects touching the edge: border_value 0
        assert np.array_equal(K.dilate(m, disk), ndi.binary_dilation(m, disk))
        assert np.array_equal(K.erode(m, disk), ndi.binary_erosion(m, disk))
        assert np.array_equal(K.opening(m, disk), ndi.binary_opening(m, disk))
        assert np.array_equal(K.closing(m, disk), ndi.binary_closing(m, disk))


def test_road_medians_is_the_lower_median_per_road() -> None:
    rng = np.random.default_rng(6)
    vals = rng.random(500).astype(np.float32)
    rid = rng.integers(0, 5, 500).astype(np.int32)
    rid[rid == 3] = 1  # road 3 has no pixel: 0
    got = K.road_medians(vals, rid, 5)
    for k in range(5):
        x = np.sort(vals[rid == k])
        assert got[k] == (x[(x.size - 1) // 2] if x.size else 0.0)


def test_local_spread_ratio_matches_the_array_expression() -> None:
    ga, gb = _img(7), _img(8)
    rows, cols = np.nonzero(_mask(9, 0.4))
    sd = []
    for g in (gb, ga):
        m = ndi.uniform_filter(g, 3)
        v = ndi.uniform_filter(g * g, 3) - m * m
        sd.append(np.sqrt(np.clip(v, 1e-6, None)))
    ref = (sd[1] / sd[0])[rows, cols]
    assert np.array_equal(K.local_spread_ratio(ga, gb, rows, cols, 3), ref)


@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_square_closing_in_matches_binary_closing(k: int) -> None:
    keep = _mask(20 + k, 0.4)
    for p in (0.2, 0.5, 0.8):
        m = _mask(30 + k, p)
        want = ndi.binary_closing(m, np.ones((k, k), bool), border_value=0) & keep
        assert np.array_equal(K.square_closing_in(m, k, keep), want)


@pytest.mark.parametrize("p", [0.3, 0.55])
def test_components_touching_matches_labelling_every_component(p: float) -> None:
    m = _mask(50, p, (67, 59))
    lab = ndi.label(m, np.ones((3, 3), bool))[0]
    rng = np.random.default_rng(51)
    for n in (0, 1, 5, 40):
        rows, cols = rng.integers(0, 67, n), rng.integers(0, 59, n)
        ids = np.unique(lab[rows, cols])
        want = np.flatnonzero(np.isin(lab, ids[ids > 0]))
        assert np.array_equal(K.components_touching(m, rows, cols), want)


def test_box_at_reuses_columns_along_a_row_bit_for_bit() -> None:
    # values over twelve orders of magnitude, where a sum in another order could differ: the
    # columns shared by neighbours along a row are the sums a pixel alone would make
    rng = np.random.default_rng(60)
    g = (rng.random((33, 41)) * 10.0 ** rng.integers(-6, 6, (33, 41))).astype(np.float32)
    rows, cols = np.nonzero(_mask(61, 0.7, g.shape))
    order = rng.permutation(rows.size)  # shuffled: no two neighbours in a row
    for k in (3, 5):
        runs = K.box_at(g, k, rows, cols)
        alone = np.empty_like(runs)
        alone[order] = K.box_at(g, k, rows[order], cols[order])
        np.testing.assert_array_equal(runs.view(np.int32), alone.view(np.int32))
        ga = g[::-1].copy()
        runs = K.local_spread_ratio(g, ga, rows, cols, k)
        alone[order] = K.local_spread_ratio(g, ga, rows[order], cols[order], k)
        np.testing.assert_array_equal(runs.view(np.int32), alone.view(np.int32))


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (8, 8), (13, 29), (64, 3)])
def test_true_pixels_is_flatnonzero(shape: tuple[int, int]) -> None:
    for p in (0.0, 0.05, 0.5, 1.0):
        m = _mask(70, p, shape)
        assert np.array_equal(K.true_pixels(m), np.flatnonzero(m))
        t = np.ascontiguousarray(m.T)
        assert np.array_equal(K.true_pixels(m.T), np.flatnonzero(t))


def _special(seed: int, shape=(37, 29)) -> np.ndarray:
    """Levels over twelve orders of magnitude with zeros of both signs, NaN and infinities."""
    rng = np.random.default_rng(seed)
    g = (rng.normal(size=shape) * 10.0 ** rng.integers(-6, 6, shape)).astype(np.float32)
    g[rng.random(shape) < 0.1] = -0.0
    g[rng.random(shape) < 0.05] = 0.0
    g[5:9, 3:8] = -0.0  # whole boxes of -0.0: the sums start from +0.0
    g[rng.random(shape) < 0.01] = np.nan
    g[rng.random(shape) < 0.01] = np.inf
    g[rng.random(shape) < 0.01] = -np.inf
    return g


@pytest.mark.parametrize("shape", [(1, 1), (2, 7), (3, 3), (37, 29)])
def test_3x3_paths_match_the_general_kernels(shape: tuple[int, int]) -> None:
    # ``box_at`` and ``local_spread_ratio`` at k = 3 (flat indices, scalars along a row)
    # against their general kernels, bit for bit, edge pixels and special values included
    g, h = _special(80, shape), _special(81, shape)
    rows, cols = np.nonzero(_mask(82, 0.7, shape))
    for r, c in ((rows, cols), (rows[::-1].copy(), cols[::-1].copy())):
        want = K._box_any_at(g, 3, r, c)
        np.testing.assert_array_equal(K.box_at(g, 3, r, c).view(np.int32), want.view(np.int32))
        want = K._spread_ratio_any(g, h, r, c, 3)
        got = K.local_spread_ratio(g, h, r, c, 3)
        np.testing.assert_array_equal(got.view(np.int32), want.view(np.int32))
    e = np.zeros(0, np.int64)
    assert K.box_at(g, 3, e, e).size == K.local_spread_ratio(g, h, e, e, 3).size == 0
