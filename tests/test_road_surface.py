"""The colour classes' seeding equals scipy's k-means++ bit for bit."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.cluster.vq import kmeans2

from fortmap.detect.road_surface import kmeans_pp


@pytest.mark.parametrize("seed", [0, 3])
def test_kmeans_pp_equals_scipy_kmeans2(seed):
    rng = np.random.default_rng(seed)
    for n, bands in [(200, 3), (5000, 3), (3000, 1)]:
        data = np.round(rng.random((n, bands)) * 64) / 4  # many equal points
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # empty clusters warn in both
            ref, _ = kmeans2(data, 16, seed=seed, minit="++")
            got = kmeans_pp(data, 16, seed)
        assert np.array_equal(got.view(np.uint64), ref.view(np.uint64))
