"""footprint_medians: branch-free selections against numpy and the originals in pixel_kernels
and selection_kernels."""

import numpy as np
import pytest

from fortmap.detect import pixel_kernels as pk
from fortmap.detect import selection_kernels as sk
from fortmap.detect.footprint_medians import (
    angle_median,
    group_medians,
    lit_interior_medians,
    segment_median,
    select_pair,
)


def _cases(rng):
    yield np.array([0.5])
    yield np.array([2.0, 1.0])
    yield np.zeros(40)  # all equal
    yield np.repeat(rng.random(5), 30)  # many ties
    for m in (3, 15, 16, 17, 33, 100, 257, 1000):
        yield rng.random(m)
        yield np.round(rng.random(m) * 7) / 7  # few distinct values
        yield np.sort(rng.random(m))  # sorted input
        yield np.sort(rng.random(m))[::-1].copy()


def test_select_pair_gives_the_order_statistics():
    rng = np.random.default_rng(1)
    for a in _cases(rng):
        s = np.sort(a)
        for k in {0, 1, len(a) // 2, len(a) - 1}:
            if k >= len(a):
                continue
            hi, lo = select_pair(a.copy(), np.empty(len(a)), k)
            assert hi == s[k]
            assert lo == (s[k - 1] if k > 0 else -np.inf)


def test_medians_match_numpy_and_the_originals():
    rng = np.random.default_rng(2)
    for a in _cases(rng):
        buf = np.empty(len(a))
        assert segment_median(a.copy(), buf) == np.median(a)
        assert segment_median(a.copy(), buf) == sk._segment_median(a.copy())
        cs = np.clip(a * 2 - 1, -1.0, 1.0)
        got = angle_median(cs.copy(), buf)
        assert got == pk._angle_median(cs.copy())
        assert got == pytest.approx(np.median(np.degrees(np.arccos(cs))), abs=1e-12)
    # with a NaN, the original's sorting path (NaN sorted last)
    for a in (np.array([0.1, np.nan, 0.3]), np.array([np.nan, 0.2, 0.1, 0.4])):
        assert segment_median(a.copy(), np.empty(len(a))) == sk._segment_median(a.copy())
        cs = a - 0.5
        assert angle_median(cs.copy(), np.empty(len(a))) == pk._angle_median(cs.copy())


def test_group_and_lit_interior_medians_are_bit_identical_to_pixel_kernels():
    rng = np.random.default_rng(3)
    h, w, n = 60, 70, 9
    lab = rng.integers(0, n + 1, (h, w)).astype(np.int32)
    lab[:, :5] = 0
    lab[lab == 4] = 0  # a label without pixels
    valid = rng.random((h, w)) > 0.1
    gb = rng.random((h, w)).astype(np.float32)
    ga = rng.random((h, w)).astype(np.float32)
    mb = rng.random((h, w)).astype(np.float32)
    ma = np.round(rng.random((h, w)) * 5).astype(np.float32)  # ties
    before = rng.random((3, h, w)).astype(np.float32)
    after = rng.random((3, h, w)).astype(np.float32)
    before[0, 3, 7] = np.nan
    tb, ta = np.float32(0.2), np.float32(0.3)
    _, counts = pk.lit_counts(lab, valid, gb, ga, tb, ta, n)
    counts = counts.astype(np.int64)
    for angles in (True, False):
        args = (lab, valid, gb, ga, tb, ta, mb, ma, before, after, counts, 0.01, angles)
        want = pk.lit_interior_medians(*args)
        got = lit_interior_medians(*args)
        assert np.array_equal(want.view(np.uint64), got.view(np.uint64))
        assert np.isnan(got[:, 3]).all()
    start = np.array([0, 5, 5, 12], np.int64)
    v = rng.random(12)
    want = pk._group_medians(v.copy(), v[::-1].copy(), v.copy(), start, True)
    got = group_medians(v.copy(), v[::-1].copy(), v.copy(), start, True)
    assert np.array_equal(want, got, equal_nan=True)
