"""Order statistics by selection: the same values, bit for bit, as numpy's and the sorting
kernels they stand in for."""

from __future__ import annotations

import numpy as np
import pytest

from fortmap.detect import fort_kernels as K
from fortmap.detect import order_stats as OS
from fortmap.detect.order_stats import median_f32, median_sigma, road_medians, robust_sigma
from fortmap.detect.road_window import robust_sigma as np_robust_sigma


def _samples(n: int, rng: np.random.Generator) -> list[np.ndarray]:
    return [
        v.astype(np.float32)
        for v in (
            rng.normal(0, 1, n),
            rng.integers(-3, 4, n),  # many ties, zero included
            5 + 1e-3 * rng.normal(0, 1, n),  # narrow spread far from zero
            -np.abs(rng.normal(0, 1, n)),
        )
    ]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 51, 1000, 1001, 40000])
def test_median_and_sigma_match_numpy_bit_for_bit(n):
    for x in _samples(n, np.random.default_rng(n)):
        med, sigma = median_sigma(x, 1e-3)
        assert med == np.median(x) and median_f32(x) == np.median(x)
        assert sigma == np_robust_sigma(x, 1e-3) == robust_sigma(x, 1e-3)
        assert np.asarray(med).dtype == np.float32


def test_nan_and_other_dtypes_fall_back_to_numpy():
    x = np.array([1.0, np.nan, 2.0], np.float32)
    assert np.isnan(median_f32(x)) and np.isnan(median_sigma(x, 1e-3)[1])
    y = np.array([3.0, 1.0, 2.0, 10.0])  # float64: numpy's own result
    assert median_f32(y) == 2.5 and robust_sigma(y, 1e-3) == np_robust_sigma(y, 1e-3)
    assert median_sigma(np.array([0.0, 0.0, 0.0], np.float32), 0.25)[1] == 0.25


def test_road_medians_match_sorting_each_road():
    rng = np.random.default_rng(7)
    for t in range(40):
        # up to 40,000 values on 3 to 12 roads: roads on either side of ``_NUMPY_SELECT``
        size = int(rng.integers(1, 40000 if t % 2 else 5000))
        n = int(rng.integers(3, 12))
        vals = _samples(size, rng)[t % 4]
        if t % 5 == 0:
            vals[rng.integers(0, size, 3)] = np.nan
        rid = rng.integers(-1, n + 1, size)  # -1 and n: ids outside 0..n-1 are ignored
        want = np.zeros(n, np.float32)
        for k in range(n):
            x = np.sort(vals[rid == k])  # NaN sorts last
            want[k] = x[(x.size - 1) // 2] if x.size else 0.0
        got = road_medians(vals, rid, n)
        assert np.array_equal(got, want, equal_nan=True)
        assert np.array_equal(K.road_medians(vals, rid, n), got, equal_nan=True)


@pytest.mark.parametrize("n", [16384, 16385, 100_000, 250_001])
def test_bracketed_selection_matches_numpy_on_long_arrays(n):
    # above ``4 * _SAMPLE`` values a sample brackets the median before one pass
    rng = np.random.default_rng(n)
    xs = _samples(n, rng)
    xs.append(np.sort(rng.normal(0, 1, n)).astype(np.float32))  # raster-like trends
    xs.append(np.where(rng.random(n) < 0.5, -0.0, 0.0).astype(np.float32))  # signed zeros
    heavy = rng.standard_cauchy(n).astype(np.float32)  # wide tails: a wide bracket
    xs.append(heavy)
    for x in xs:
        med, sigma = median_sigma(x, 1e-3)
        assert med == np.median(x) and sigma == np_robust_sigma(x, 1e-3)
        # bit for bit the keys of the radix selection over all values (signed zeros too)
        _assert_same_keys(x, med)


def test_bracket_missed_falls_back_to_radix_selection():
    n = 100_000
    x = np.zeros(n, np.float32)
    stride = n // OS._SAMPLE
    x[stride // 2 :: stride] = 1e6  # every sampled value is an outlier: the bracket misses
    x[: n // 3] = np.random.default_rng(0).normal(0, 1, n // 3)
    med, sigma = median_sigma(x, 1e-3)
    assert med == np.median(x) and sigma == np_robust_sigma(x, 1e-3)
    _assert_same_keys(x, med)  # both ways to the same keys


def test_nan_in_a_long_array_falls_back_to_numpy():
    x = np.random.default_rng(1).normal(0, 1, 50_000).astype(np.float32)
    x[31_337] = np.nan
    assert np.isnan(median_f32(x)) and np.isnan(median_sigma(x, 1e-3)[1])


def _assert_same_keys(x: np.ndarray, med: float) -> None:
    """The bracketed selection gives the radix selection's keys, for values and deviations."""
    n = len(x)
    for dev, m in ((False, np.float32(0)), (True, med)):
        keys = np.empty(n, np.uint32)
        OS._keys_of(x, dev, m, keys)
        want = OS._select_keys(keys, (n - 1) // 2, n // 2)
        got = OS._kth_keys(x, dev, m, (n - 1) // 2, n // 2)[:2]
        assert tuple(int(v) for v in got) == tuple(int(v) for v in want)


@pytest.mark.parametrize("n", [1, 2, 7, 300, 4096])
def test_sample_bracket_matches_sorting(n):
    rng = np.random.default_rng(n)
    for keys in (
        rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32),
        rng.integers(0, 3, n).astype(np.uint32),  # many ties
        np.zeros(n, np.uint32),
    ):
        want = np.sort(keys)
        for i_lo, i_hi in [(-5, 3), (0, n - 1), (n // 3, n // 2), (n - 2, n + 4), (-1, n)]:
            if i_lo >= i_hi:
                continue
            lo, hi = OS._sample_bracket(keys.copy(), i_lo, i_hi)
            assert lo == (want[i_lo] if i_lo >= 0 else 0)
            assert hi == (want[i_hi] if i_hi < n else 0xFFFFFFFF)
