"""Distances at chosen pixels equal the full distance transform there."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from fortmap.detect.edt_kernels import edt_at


def test_edt_at_points_equals_scipy_at_those_points():
    rng = np.random.default_rng(21)
    for shape, p in [
        ((1, 1), 0.5),
        ((1, 30), 0.9),
        ((30, 1), 0.9),
        ((57, 83), 0.6),
        ((64, 64), 0.995),
    ]:
        for _ in range(5):
            m = rng.random(shape) < p
            m[:, rng.integers(0, shape[1])] = True  # a column without background
            r = rng.integers(0, shape[0], 200)
            c = rng.integers(0, shape[1], 200)
            assert np.array_equal(edt_at(m, r, c), ndi.distance_transform_edt(m)[r, c])


def test_edt_at_with_one_background_pixel_and_without_any():
    m = np.ones((40, 70), bool)
    m[39, 0] = False
    r, c = np.nonzero(m)
    assert np.array_equal(edt_at(m, r, c), ndi.distance_transform_edt(m)[r, c])
    full = np.ones((5, 6), bool)
    assert np.array_equal(
        edt_at(full, [0, 4], [5, 2]), ndi.distance_transform_edt(full)[[0, 4], [5, 2]]
    )


def test_far_from_equals_the_threshold_transform_of_the_complement():
    from fortmap.detect.edt_kernels import edt, far_from

    rng = np.random.default_rng(8)
    for shape in [(1, 1), (1, 40), (33, 1), (61, 47)]:
        for p in (0.0005, 0.01, 0.2, 0.9, 1.0):
            seed = rng.random(shape) < p
            for r in (0.0, 1.0, 2**0.5, 3.7, 9.5, 17.0):
                assert np.array_equal(far_from(seed, r), edt(~seed) > r)


def test_edt_above_searches_thin_masks_and_transforms_wide_ones():
    from fortmap.detect.edt_kernels import _above_by_search, edt, edt_above

    m = np.zeros((300, 300), bool)
    m[10:18, :] = True  # a road along the rows
    m[20:290, 40:47] = True  # one along the columns: long column runs, short row runs
    m[160:190, 80:110] = True  # a small plaza
    for r in (2.0, 3.5, 7.5, 15.0):
        t = int(np.floor(r * r)) + 1
        _, searched = _above_by_search(m, t, m.size // 16, np.empty(m.shape, np.uint8))
        assert searched
        assert np.array_equal(edt_above(m, r), edt(m) > r)
    wide = np.ones((50, 60), bool)
    wide[0, 0] = False
    assert np.array_equal(edt_above(wide, 5.0), edt(wide) > 5.0)
