from __future__ import annotations

import numpy as np

from fortmap.detect.pixel_kernels import (
    abs_laplacian_every_other,
    abs_laplacian_numpy,
    band_mean_f32,
    lit_labels,
)
from fortmap.detect.selection_kernels import abs_diff_medians


def test_laplacian_every_other_equals_numpy():
    rng = np.random.default_rng(11)
    for h, w in [(3, 3), (4, 9), (37, 52), (2, 9), (9, 2), (1, 1)]:
        g = rng.random((h, w)).astype(np.float32)
        for v in (rng.random((h, w)) > 0.2, np.zeros((h, w), bool), np.ones((h, w), bool)):
            got, ref = abs_laplacian_every_other(g, v), abs_laplacian_numpy(g, v)
            assert got.dtype == ref.dtype and np.array_equal(got, ref)
    g = rng.normal(0, 1e30, (21, 17))  # float64 in, large values of either sign
    v = rng.random((21, 17)) > 0.5
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


def test_band_mean_edge_values_bit_for_bit():
    # overflow to +-inf in the sum, -0.0, NaN and single rows/columns, 1 to 4 bands
    rng = np.random.default_rng(14)
    big = np.finfo(np.float32).max
    for nb, h, w in [(1, 1, 1), (2, 1, 9), (3, 7, 1), (4, 11, 13), (3, 0, 5), (3, 17, 70)]:
        img = rng.normal(0, 2, (nb, h, w)).astype(np.float32)
        if h * w > 4:
            img[:, 0, 0] = big
            img[:, -1, -1] = -big
            img[:, 0, -1] = -0.0
            img[0, -1, 0] = np.nan
        ref = img[0].copy()
        with np.errstate(invalid="ignore", over="ignore"):
            for b in img[1:]:
                ref += b
            ref = np.nan_to_num(ref * np.float32(1 / nb))
        got = band_mean_f32(img, np.float32(1 / nb))
        assert got.dtype == np.float32
        assert np.array_equal(got.view(np.uint32), ref.view(np.uint32))


def test_band_mean_of_a_window_view_bit_for_bit():
    # three bands take their own one-pass loop; the footprint scorer gives it a sub-window view
    rng = np.random.default_rng(15)
    img = rng.normal(0, 1, (3, 40, 50)).astype(np.float32)
    img[1, 10:12, 20:23] = np.nan
    img[2, 30, 5] = np.finfo(np.float32).max
    img[1, 30, 5] = np.finfo(np.float32).max
    view = img[:, 5:37, 3:44]
    ref = view[0].copy()
    with np.errstate(invalid="ignore", over="ignore"):
        ref += view[1]
        ref += view[2]
        ref = np.nan_to_num(ref * np.float32(1 / 3))
    got = band_mean_f32(view, np.float32(1 / 3))
    assert np.array_equal(got.view(np.uint32), ref.view(np.uint32))


def test_median_inplace_equals_numpy_median():
    from fortmap.detect.selection_kernels import median_inplace

    rng = np.random.default_rng(15)
    cases = [np.abs(rng.normal(0, s, n)) for n in (1, 2, 3, 16, 1001, 20000) for s in (1e-3, 5)]
    cases += [np.zeros(10), np.full(7, 3.5), rng.integers(0, 5, 999).astype(np.float64)]
    cases += [np.array([0.0, 1e-310, 2e-310, 1e300]), np.array([1.0, 1.0 + 2**-50])]
    cases += [np.array([1.0] * 5 + [2.0] * 5)]  # the middle pair in two bins
    # the plain selection: a set sign bit (negatives, -0.0) or inf
    cases += [rng.normal(0, 1, 501), np.array([-0.0, 0.0, 1.0, 2.0]), np.array([1.0, np.inf])]
    for x in cases:
        got = median_inplace(x.copy())
        assert got == np.median(x), (x.size, got, np.median(x))
    assert np.isnan(median_inplace(np.zeros(0)))
    x = rng.random(50)
    x[7] = np.nan
    assert np.isnan(median_inplace(x.copy()))
    x = np.abs(rng.normal(0, 1, 100))
    a = x.copy()
    median_inplace(a)
    assert np.array_equal(np.sort(a), np.sort(x))  # only reordered


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


def test_select_inplace_equals_numpy_partition():
    from fortmap.detect.selection_kernels import select_inplace

    rng = np.random.default_rng(13)
    cases = [rng.random(n) for n in (1, 2, 3, 7, 64, 301)]
    cases += [np.arange(50.0), np.arange(50.0)[::-1].copy(), np.full(9, 2.5)]
    cases += [rng.integers(0, 4, 40).astype(np.float64)]  # many ties
    for x in cases:
        for k in {0, (x.size - 1) // 2, x.size // 2, x.size - 1}:
            a = x.copy()
            v = select_inplace(a, k)
            assert v == np.partition(x, k)[k] == a[k]
            assert (a[:k] <= v).all() and (a[k + 1 :] >= v).all()
            assert np.array_equal(np.sort(a), np.sort(x))  # a reordering


def test_angle_median_equals_the_median_of_the_angles():
    import math

    from fortmap.detect.pixel_kernels import _angle_median

    rng = np.random.default_rng(14)
    for n in (1, 2, 5, 6, 101, 200):
        cs = np.clip(rng.normal(0.99, 0.02, n), -1.0, 1.0)
        cs[: n // 3] = cs[0]  # ties
        ang = np.array([math.degrees(math.acos(c)) for c in cs])
        assert _angle_median(cs.copy()) == np.median(ang)


def test_lit_medians_in_the_pass_equal_lit_labels_then_medians():
    from fortmap.detect.pixel_kernels import (
        _interior_medians,
        lit_counts,
        lit_interior_medians,
    )

    rng = np.random.default_rng(15)
    h, w, n = 30, 40, 9
    lab = rng.integers(0, n + 1, (h, w)).astype(np.int32)
    valid = rng.random((h, w)) > 0.2
    gb = rng.random((h, w)).astype(np.float32)
    ga = rng.random((h, w)).astype(np.float32)
    tb, ta = 0.3, 0.1  # Python floats: numpy compares float32 arrays with them in float32
    gb[0, :8] = np.float32(tb)  # on the threshold as float32, above it as float64
    mb, ma = rng.random((h, w)).astype(np.float32), rng.random((h, w)).astype(np.float32)
    before, after = (
        rng.random((3, h, w)).astype(np.float32),
        rng.random((3, h, w)).astype(np.float32),
    )
    lit = (gb > tb) & (ga > ta)
    n_in, lab_lit, n_lit = lit_labels(lab, valid, lit, n)
    got_in, got_lit = lit_counts(lab, valid, gb, ga, np.float32(tb), np.float32(ta), n)
    assert np.array_equal(got_in, n_in) and np.array_equal(got_lit, n_lit)
    for angles in (True, False):
        ref = _interior_medians(lab_lit, mb, ma, before, after, n_lit, 0.01, angles)
        got = lit_interior_medians(
            lab, valid, gb, ga, np.float32(tb), np.float32(ta), mb, ma, before, after, n_lit,
            0.01, angles,
        )  # fmt: skip
        assert np.array_equal(got, ref, equal_nan=True)
