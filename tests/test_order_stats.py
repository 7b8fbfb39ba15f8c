"""Order statistics by selection: the same values, bit for bit, as numpy's and the sorting
kernels they stand in for."""

from __future__ import annotations

import numpy as np
import pytest

from fortmap.detect import fort_kernels as K
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
