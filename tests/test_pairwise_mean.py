"""``pairwise_mean``: numpy's float64 sums and means, bit for bit, in compiled code."""

from __future__ import annotations

import numpy as np
import pytest

from fortmap.detect.pairwise_mean import pairwise_sum, run_mean


@pytest.mark.parametrize("seed", range(4))
def test_sums_and_means_equal_numpy_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    for n in [*range(0, 140), 255, 256, 257, 700, 1031, 5000]:
        x = rng.standard_normal(n + 9) * rng.choice([1e-3, 1.0, 1e6])
        lo = int(rng.integers(0, 9))
        run = x[lo : lo + n]
        assert pairwise_sum(x, lo, n) == run.sum()
        if n:
            got = run_mean(x, lo, lo + n)
            assert got == run.mean()
            # a left-to-right sum, which the kernels must not be, differs somewhere
    x = rng.standard_normal(1000)
    seq = 0.0
    for v in x:
        seq += v
    assert seq != x.sum() or pairwise_sum(x, 0, 1000) == x.sum()


def test_nan_and_inf_propagate_as_in_numpy():
    x = np.array([1.0, np.nan, 2.0, 3.0] * 5)
    assert np.isnan(run_mean(x, 0, x.size)) and np.isnan(x.mean())
    y = np.array([np.inf, 1.0, -2.0])
    assert run_mean(y, 0, 3) == y.mean()
