from __future__ import annotations

import numpy as np

from fortmap.detect.pixel_kernels import (
    abs_diff_medians,
    abs_laplacian_every_other,
    abs_laplacian_numpy,
    band_mean_f32,
    lit_labels,
)


def test_laplacian_every_other_equals_numpy():
    rng = np.random.default_rng(11)
    for h, w in [(3, 3), (4, 9), (37, 52)]:
        g = rng.random((h, w)).astype(np.float32)
        v = rng.random((h, w)) > 0.2
        assert np.array_equal(abs_laplacian_every_other(g, v), abs_laplacian_numpy(g, v))


def test_band_mean_equals_the_numpy_loop():
    rng = np.random.default_rng(12)
    img = rng.random((3, 20, 30)).astype(np.float32)
    img[0, 0, 0], img[1, 1, 1], img[2, 2, 2] = np.nan, np.inf, -np.inf
    ref = img[0].copy()
    with np.errstate(invalid="ignore"):
        for b in img[1:]:
            ref += b
    ref = np.nan_to_num(ref * np.float32(1 / 3))
    assert np.array_equal(band_mean_f32(img, np.float32(1 / 3)), ref)


def test_lit_labels_equal_bincounts():
    rng = np.random.default_rng(13)
    lab = rng.integers(0, 8, (40, 50)).astype(np.int32)
    valid, lit = rng.random((40, 50)) > 0.1, rng.random((40, 50)) > 0.3
    n_in, lab_lit, n_lit = lit_labels(lab, valid, lit, 9)
    lab0 = np.where(valid, lab, 0)
    assert np.array_equal(n_in, np.bincount(lab0.ravel(), minlength=10)[1:])
    assert np.array_equal(lab_lit, np.where(lit, lab0, 0))
    assert np.array_equal(n_lit, np.bincount(lab_lit.ravel(), minlength=10)[1:])


def test_abs_diff_medians_equal_numpy():
    rng = np.random.default_rng(6)
    for shape in [(3, 1, 2), (3, 2, 2), (1, 3, 3), (3, 7, 9), (2, 40, 41)]:
        for x in (
            rng.random(shape).astype(np.float32),
            (rng.random(shape) * 255).round().astype(np.float32),  # ties
            np.zeros(shape, np.float32),
        ):
            ref = np.median(np.abs(np.diff(x, axis=2)).reshape(len(x), -1), axis=1)
            got = abs_diff_medians(x)
            assert got.dtype == ref.dtype and np.array_equal(got, ref)
    x = rng.random((3, 9, 9)).astype(np.float32)
    x[1, 2, 2] = np.nan  # numpy's answer (NaN) through the fallback
    ref = np.median(np.abs(np.diff(x, axis=2)).reshape(3, -1), axis=1)
    assert np.array_equal(abs_diff_medians(x), ref, equal_nan=True)
