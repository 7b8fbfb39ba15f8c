"""Opening packed class masks one bit plane at a time gives what the packed sweep gives."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from fortmap.detect.corridor_kernels import or_bit_rows, plane_bit_rows
from fortmap.detect.morph_kernels import bit_rows_of_transpose
from fortmap.detect.road_corridors import _bit_rows, open_lines_packed, open_lines_words

SHAPES = [(1, 1), (1, 70), (66, 1), (63, 65), (130, 70), (64, 128)]
WORDS = [np.uint8, np.uint16, np.uint32]


def _packed(shape, word, seed, density=0.9):
    rng = np.random.default_rng(seed)
    nbits = np.iinfo(word).bits
    out = np.zeros(shape, word)
    for j in range(nbits):
        m = ndi.binary_dilation(rng.random(shape) > density)
        if j % 3 == 1:
            m[:] = False  # a bit no pixel has
        out |= m.astype(word) << word(j)
    return out


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("word", WORDS)
def test_plane_bit_rows_equal_the_bool_packing(shape, word):
    p = _packed(shape, word, sum(shape))
    for b in range(np.iinfo(word).bits):
        m = ((p >> word(b)) & word(1)).astype(bool)
        rows, cols = plane_bit_rows(p, b)
        assert np.array_equal(rows, _bit_rows(m)), b
        assert np.array_equal(cols, bit_rows_of_transpose(m)), b


@pytest.mark.parametrize("shape", SHAPES)
def test_or_bit_rows_sets_one_bit_where_the_rows_are_set(shape):
    rng = np.random.default_rng(len(shape) + shape[0])
    m = rng.random(shape) > 0.5
    out = np.full(shape, 0b1000_0001, np.uint16)
    or_bit_rows(out, _bit_rows(m), 3)
    assert np.array_equal(out, np.where(m, 0b1000_1001, 0b1000_0001))


@pytest.mark.parametrize("shape", [(37, 29), (130, 70), (5, 200)])
@pytest.mark.parametrize("word", WORDS)
@pytest.mark.parametrize("n", [1, 3, 7, 40])
def test_open_lines_packed_equals_the_packed_word_sweep(shape, word, n):
    p = _packed(shape, word, n + shape[0], 0.93)
    p[shape[0] // 2, :] |= word(1) << word(np.iinfo(word).bits - 1)  # a long row in the top bit
    p[:, shape[1] // 3] |= word(1)
    ref = open_lines_words(p, n)
    got = open_lines_packed(p, n)
    assert got.dtype == ref.dtype == word
    assert ref.any() or n > max(shape)  # no line of n fits
    assert np.array_equal(got, ref)


@pytest.mark.parametrize("word", WORDS)
def test_open_lines_packed_of_empty_and_full_masks(word):
    for p in (np.zeros((20, 30), word), np.full((20, 30), np.iinfo(word).max, word)):
        for n in (5, 31):
            assert np.array_equal(open_lines_packed(p, n), open_lines_words(p, n))
    assert open_lines_packed(np.zeros((0, 4), word), 5).shape == (0, 4)


def test_open_lines_packed_takes_other_types_as_uint32():
    p = _packed((40, 50), np.uint32, 2).astype(np.int64)
    got = open_lines_packed(p, 5)
    assert got.dtype == np.uint32
    assert np.array_equal(got, open_lines_words(p.astype(np.uint32), 5))
