"""Merging colour classes and counting them in one pass equals the numpy steps."""

from __future__ import annotations

import numpy as np

from fortmap.detect.colour_class_kernels import merge_count


def test_merge_count_equals_gather_and_bincount():
    rng = np.random.default_rng(5)
    lab = rng.integers(0, 16, (37, 53)).astype(np.int16)
    root = np.array([0, 0, 2, 3, 3, 5, 6, 0, 8, 9, 2, 11, 12, 13, 14, 15])
    valid = rng.random(lab.shape) < 0.8
    ref = root[lab]
    ref[~valid] = -1
    got, counts = merge_count(lab, root, valid)
    assert got.dtype == np.int16
    assert np.array_equal(got, ref)
    assert np.array_equal(counts, np.bincount(ref[valid], minlength=16))


def test_bit_plane_and_class_bit_count_equal_numpy():
    from fortmap.detect.colour_class_kernels import bit_plane, class_bit_count

    rng = np.random.default_rng(6)
    bits = rng.integers(0, 2**20, (41, 29)).astype(np.uint32)
    lab = rng.integers(-1, 6, (82, 58)).astype(np.int16)[::2, ::2]  # a strided view
    keep = rng.random(bits.shape) < 0.7
    for j in (0, 5, 19):
        plane = ((bits >> np.uint32(j)) & np.uint32(1)).astype(bool)
        assert np.array_equal(bit_plane(bits, j), plane)
        for k in (0, 3):
            assert class_bit_count(lab, k, bits, j, keep) == ((lab == k) & plane & keep).sum()
