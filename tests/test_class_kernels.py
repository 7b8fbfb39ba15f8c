"""Histogram counts of ``class_kernels.uniform_counts`` against numpy's, bin for bin."""

from __future__ import annotations

import numpy as np
import pytest

from fortmap.detect.class_kernels import uniform_counts


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_uniform_counts_is_numpys_histogram(dtype) -> None:
    rng = np.random.default_rng(21)
    for t in range(60):
        n = int(rng.integers(2, 3000))
        x = (rng.normal(size=n) * 10.0 ** rng.integers(-6, 4)).astype(dtype)
        if t % 3 == 0:
            # values on the bin edges and repeated values
            x = np.round(x * 4) / 4
        bins = int(rng.choice([2, 7, 64, 256]))
        lo, hi = x.min(), x.max()
        if lo == hi:
            continue
        edges = np.histogram_bin_edges(x, bins, range=(lo, hi))
        ref = np.histogram(x, bins=bins, range=(lo, hi))[0]
        if t % 4 == 0:
            # values outside the range (NaN, inf, beyond) are not counted
            x = np.concatenate([x, np.array([np.nan, np.inf, -np.inf, hi * 2 + 1], dtype)])
        np.testing.assert_array_equal(uniform_counts(x, lo, hi, edges), ref)
