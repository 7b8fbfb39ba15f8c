"""The colour-class kernels (nearest centre, k-means iterations, merging and counting
classes) equal the numpy and scipy steps they replace."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.cluster.vq import kmeans2

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


def test_nearest_centre_of_bytes_equals_the_float_path():
    from fortmap.detect.colour_class_kernels import nearest_centre

    rng = np.random.default_rng(7)
    x = rng.integers(0, 256, (3, 5003)).astype(np.uint8)  # not a whole number of blocks
    c = (rng.random((16, 3)) * 255).astype(np.float32)
    c[5] = c[2]  # a tie: the first centre keeps it
    ref = ((x.T.astype(np.float32)[:, None] - c[None]) ** 2).sum(-1).argmin(1)
    assert np.array_equal(nearest_centre(x.T, c), ref)
    # one band (grey)
    ref1 = ((x[0].astype(np.float32)[:, None] - c[None, :, 0]) ** 2).argmin(1)
    assert np.array_equal(nearest_centre(x[:1].T, c[:, :1]), ref1)


@pytest.mark.parametrize("bands", [3, 1, 4])
def test_lloyd_equals_scipy_kmeans2_iterations(bands):
    from fortmap.detect.colour_class_kernels import lloyd

    rng = np.random.default_rng(bands)
    for data in (
        rng.random((3001, bands)) * 255,
        np.round(rng.random((2000, bands)) * 8) * 16,  # equal points and ties
    ):
        init = data[rng.choice(len(data), 16, replace=False)].copy()
        init[3] = [1e6] * bands  # far from every point: empty from the first iteration
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            ref = kmeans2(data, init, minit="matrix")[0]
        got, empty = lloyd(data, init, 10)
        assert np.array_equal(got.view(np.uint64), ref.view(np.uint64))
        assert empty == len(w) >= 1


def test_label_table_and_clear_where_not_equal_numpy():
    from fortmap.detect.colour_class_kernels import clear_where_not, label_table

    rng = np.random.default_rng(8)
    lab = rng.integers(-1, 16, (46, 38)).astype(np.int16)
    for table in (np.arange(17, dtype=np.uint16) * 3, (rng.random(17) < 0.5).astype(np.uint8)):
        for view in (lab, lab[::2, ::2], lab[:0]):  # strided, empty
            got = label_table(view, table)
            assert got.dtype == table.dtype
            assert np.array_equal(got, table[view + 1])
            keep = rng.random(view.shape) < 0.6
            ref = got.copy()
            ref[~keep] = 0
            assert np.array_equal(clear_where_not(got, keep), ref)


def test_nearest_merged_equals_nearest_centre_then_merge_count():
    from fortmap.detect.colour_class_kernels import nearest_centre, nearest_merged

    rng = np.random.default_rng(9)
    root = np.array([0, 0, 2, 3, 3, 5, 6, 0, 8, 9, 2, 11, 12, 13, 14, 15])
    c = (rng.random((16, 3)) * 255).astype(np.float32)
    for n in (0, 1, 1023, 5003):
        x = rng.integers(0, 256, (3, n)).astype(np.uint8).T  # the transposed view
        for valid in (rng.random(n) < 0.8, np.zeros(n, bool)):
            ref, ref_counts = merge_count(nearest_centre(x, c)[None], root, valid[None])
            got, counts = nearest_merged(x, c, root, valid)
            assert got.dtype == np.int16
            assert np.array_equal(got, ref[0]) and np.array_equal(counts, ref_counts)


@pytest.mark.parametrize("word", [np.uint8, np.uint16, np.uint32])
def test_class_bit_count_in_every_word_and_layout_equals_numpy(word):
    # road_mask counts on a contiguous copy of the 2 m labels, bits in its narrowest word
    from fortmap.detect.colour_class_kernels import class_bit_count

    rng = np.random.default_rng(int(np.iinfo(word).bits))
    nbits = np.iinfo(word).bits
    bits = rng.integers(0, 2**nbits, (37, 70), dtype=np.uint64).astype(word)
    full = rng.integers(-1, 16, (74, 140)).astype(np.int16)
    keep = rng.random(bits.shape) < 0.6
    for lab in (full[::2, ::2], np.ascontiguousarray(full[::2, ::2])):
        for j in (0, nbits // 2, nbits - 1):
            plane = ((bits >> word(j)) & word(1)) == 1
            for k in (-1, 0, 15):
                ref = int(((lab == k) & plane & keep).sum())
                assert class_bit_count(lab, k, bits, j, keep) == ref
    empty = np.zeros((0, 5), np.int16)
    assert class_bit_count(empty, 0, np.zeros((0, 5), word), 0, np.zeros((0, 5), bool)) == 0
