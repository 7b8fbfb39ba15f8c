"""The byte path of the road overview (uint8 images) gives what the float32 path gives."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import pytest
from scipy import ndimage as ndi

from fortmap.detect.median_kernels import abs_diff_medians_u8, median3, to_bytes
from fortmap.detect.selection_kernels import abs_diff_medians

SHAPES = [(1, 1), (1, 6), (7, 1), (2, 3), (31, 17), (64, 90)]


@pytest.mark.parametrize("shape", SHAPES)
def test_median3_of_bytes_equals_scipy_and_the_float_path(shape):
    rng = np.random.default_rng(sum(shape))
    for hi in (3, 256):  # many ties, then the whole byte range
        x = rng.integers(0, hi, shape).astype(np.uint8)
        got = median3(x)
        assert got.dtype == np.uint8
        assert np.array_equal(got, ndi.median_filter(x, 3, mode="nearest"))
        assert np.array_equal(got.astype(np.float32), median3(x.astype(np.float32)))


def test_to_bytes_takes_whole_numbers_0_to_255_only():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (3, 17, 23)).astype(np.float32)
    out = np.empty(x.shape, np.uint8)
    assert to_bytes(x, out) and np.array_equal(out.astype(np.float32), x)
    for bad in (0.5, -1.0, 256.0, np.nan, np.inf, -0.25):
        y = x.copy()
        y[2, 16, 22] = bad  # the very last value
        assert not to_bytes(y, out), bad
    assert to_bytes(np.zeros((1, 0, 4), np.float32), np.empty((1, 0, 4), np.uint8))


@pytest.mark.parametrize("shape", [(3, 1, 2), (3, 2, 2), (2, 5, 7), (3, 40, 61), (1, 9, 1)])
def test_abs_diff_medians_of_bytes_equal_the_float_path(shape):
    rng = np.random.default_rng(shape[1] * 100 + shape[2])
    for hi in (2, 9, 256):  # small ranges: the two middle differences often differ
        x = rng.integers(0, hi, shape).astype(np.uint8)
        # no differences in a one-column image: numpy's median of nothing warns, NaN
        with pytest.warns(RuntimeWarning) if shape[2] < 2 else nullcontext():
            ref = abs_diff_medians(x.astype(np.float32))
        got = abs_diff_medians_u8(x)
        assert got.dtype == np.float32
        assert np.array_equal(got, ref, equal_nan=True), (hi, got, ref)
