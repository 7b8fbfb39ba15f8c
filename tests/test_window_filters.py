"""Window filters against scipy and numpy, bit for bit."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from fortmap.detect.window_filters import band_mean, uniform_reflect


def test_uniform_reflect_is_scipys_uniform_filter_with_nan_inf_and_mixed_magnitudes() -> None:
    rng = np.random.default_rng(11)
    for t in range(150):
        h, w = (int(v) for v in rng.integers(1, 45, 2))
        k = int(rng.integers(1, 12))
        # wide magnitudes: a direct sum per pixel rounds differently from scipy's running sum
        g = (rng.normal(size=(h, w)) * 10.0 ** rng.integers(-12, 6, (h, w))).astype(np.float32)
        g[rng.random((h, w)) < 0.1] = 0
        g[rng.random((h, w)) < 0.05] = -0.0
        if t % 4 == 0:
            g[rng.random((h, w)) < 0.02] = np.nan
        if t % 7 == 0:
            g[rng.random((h, w)) < 0.02] = np.inf
        ref = ndi.uniform_filter(g, k)
        np.testing.assert_array_equal(uniform_reflect(g, k).view(np.int32), ref.view(np.int32))


def test_uniform_reflect_of_a_window_sized_image() -> None:
    rng = np.random.default_rng(12)
    g = (rng.random((300, 517)) * 2).astype(np.float32)
    for k in (2, 3, 5, 9):
        ref = ndi.uniform_filter(g, k)
        np.testing.assert_array_equal(uniform_reflect(g, k).view(np.int32), ref.view(np.int32))


def test_band_mean_is_numpys_mean() -> None:
    rng = np.random.default_rng(13)
    for nb in (1, 3, 4):
        a = (rng.normal(size=(nb, 20, 33)) * 10.0 ** rng.integers(-8, 8, (nb, 20, 33))).astype(
            np.float32
        )
        a[rng.random(a.shape) < 0.05] = -0.0
        np.testing.assert_array_equal(band_mean(a).view(np.int32), a.mean(axis=0).view(np.int32))
