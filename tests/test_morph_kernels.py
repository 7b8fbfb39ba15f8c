"""Hole filling from row runs equals filling scipy's labelled components; the packed line
openings equal the walk."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from fortmap.detect.closing_kernels import fill_holes_upto
from fortmap.detect.pixel_kernels import fill_labelled


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fill_holes_upto_equals_label_and_fill(seed):
    rng = np.random.default_rng(seed)
    for t in range(60):
        h, w = (int(v) for v in rng.integers(1, 60, 2))
        m = rng.random((h, w)) < rng.uniform(0.2, 0.9)
        if t % 2:
            m = ndi.binary_dilation(m)
        holes, n = ndi.label(~m)
        for max_px in (0.0, 1.0, 4.5, 25.0, 1e9):
            ref = fill_labelled(m, holes, int(n), max_px)
            assert np.array_equal(fill_holes_upto(m, max_px), ref)


def test_fill_holes_upto_joins_runs_only_through_shared_columns():
    m = np.ones((5, 6), bool)
    m[1, 1:3] = False  # 2 pixels
    m[2, 3:5] = False  # touches the first run only at a corner: a separate hole
    got = fill_holes_upto(m, 2.0)
    assert got.all()
    m[2, 2] = False  # now one 5-pixel hole
    assert not fill_holes_upto(m, 4.0)[2, 2] and fill_holes_upto(m, 5.0).all()


@pytest.mark.parametrize("slope", [0.0, 0.19891, -0.41421, 0.5, -0.5, 0.66818, 1.0, -1.0])
def test_open_bits_equals_the_walk(slope):
    from fortmap.detect.morph_kernels import open_along, open_bits
    from fortmap.detect.road_corridors import _bit_rows

    rng = np.random.default_rng(12)
    for shape in [(1, 1), (3, 70), (70, 3), (61, 130), (130, 61)]:
        m = rng.random(shape) < 0.8
        for n in (1, 4, 9):
            ref = np.zeros(shape, bool)
            open_along(m, ref, n, slope, False)
            bits = np.zeros_like(_bit_rows(m))
            open_bits(_bit_rows(m), shape[1], bits, n, slope)
            got = np.unpackbits(bits.view(np.uint8), axis=1, bitorder="little")[:, : shape[1]]
            assert np.array_equal(got.view(bool), ref)


def test_bit_rows_of_the_transpose_and_their_union():
    from fortmap.detect.morph_kernels import bit_rows_of_transpose, union_of_bit_rows
    from fortmap.detect.road_corridors import _bit_rows

    rng = np.random.default_rng(13)
    for shape in [(1, 1), (3, 70), (70, 3), (130, 61), (64, 128)]:
        m = rng.random(shape) < 0.5
        assert np.array_equal(bit_rows_of_transpose(m), _bit_rows(np.ascontiguousarray(m.T)))
        a, b = rng.random(shape) < 0.5, rng.random(shape[::-1]) < 0.5
        got = union_of_bit_rows(_bit_rows(a), _bit_rows(b), m)
        assert np.array_equal(got, (a | b.T) & m)


@pytest.mark.parametrize("shape", [(300, 40), (40, 300), (7, 5), (130, 130)])
@pytest.mark.parametrize("word", [np.uint8, np.uint16, np.uint32])
def test_open_packed_sweeps_each_group_of_lines_over_its_steps_only(shape, word):
    # many groups of lines lie partly beside the image at steep slopes; each must still open
    # as the walk opens it, in every word width (128 and 256 lines to a group in the narrow
    # ones)
    from fortmap.detect.morph_kernels import open_along, open_packed

    m = ndi.binary_dilation(np.random.default_rng(shape[0]).random(shape) > 0.9, iterations=2)
    m[shape[0] // 2, :] = m[:, shape[1] // 2] = True
    for slope in (0.0, 0.2, -0.41, 0.67, 1.0, -1.0, 1e-12):
        for n in (1, 3, 9):
            ref = np.zeros(shape, bool)
            open_along(m, ref, n, slope, False)
            got = np.zeros(shape, word)
            open_packed(m.astype(word) << word(np.iinfo(word).bits - 1), got, n, slope)
            assert np.array_equal(got != 0, ref), (slope, n)
