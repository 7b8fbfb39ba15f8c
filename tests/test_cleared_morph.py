"""The compiled morphology of the cleared-land step against scipy.ndimage."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from fortmap.detect.cleared_morph import binary_dilation, binary_erosion, disk, fill_holes

SHAPES = [(1, 1), (1, 9), (7, 1), (2, 5), (5, 5), (13, 17), (40, 33)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("r", [1, 2, 3, 4])
@pytest.mark.parametrize("p", [0.0, 0.05, 0.4, 0.9, 1.0])
def test_disc_dilation_and_erosion_match_scipy(shape, r, p):
    rng = np.random.default_rng(shape[0] * 97 + shape[1] + r * 7 + int(p * 100))
    m = rng.random(shape) < p
    s = disk(r)
    assert np.array_equal(binary_dilation(m, s), ndi.binary_dilation(m, s, border_value=0))
    assert np.array_equal(binary_erosion(m, s), ndi.binary_erosion(m, s, border_value=0))


@pytest.mark.parametrize("r", [1, 2, 3])
def test_closing_and_opening_of_blobs_match_scipy(r):
    rng = np.random.default_rng(r)
    # blobs with holes and gaps, touching the edges
    m = ndi.uniform_filter(rng.random((60, 70)), 5) > 0.52
    s = disk(r)
    ref = ndi.binary_closing(m, s, border_value=0)
    got = binary_erosion(binary_dilation(m, s), s)
    assert np.array_equal(got, ref) and ref.any() and not ref.all()
    ref = ndi.binary_opening(m, s, border_value=0)
    assert np.array_equal(binary_dilation(binary_erosion(m, s), s), ref) and ref.any()


def test_square_structure_and_rejected_structures():
    rng = np.random.default_rng(5)
    m = rng.random((20, 30)) < 0.3
    s = np.ones((3, 5), bool)
    assert np.array_equal(binary_dilation(m, s), ndi.binary_dilation(m, s, border_value=0))
    assert np.array_equal(binary_erosion(m, s), ndi.binary_erosion(m, s, border_value=0))
    with pytest.raises(ValueError):
        binary_dilation(m, np.ones((2, 3), bool))
    ring = np.ones((3, 3), bool)
    ring[1, 1] = False
    with pytest.raises(ValueError):
        binary_erosion(m, ring)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("p", [0.0, 0.3, 0.55, 0.7, 1.0])
def test_fill_holes_matches_scipy(shape, p):
    rng = np.random.default_rng(shape[0] * 13 + shape[1] + int(p * 100))
    m = rng.random(shape) < p
    assert np.array_equal(fill_holes(m), ndi.binary_fill_holes(m))


def test_fill_holes_fills_an_enclosed_hole_only():
    m = np.zeros((9, 12), bool)
    m[1:6, 1:6] = True
    m[3, 3] = False  # enclosed
    m[0:4, 8:11] = True
    m[0, 9] = False  # open to the edge
    got = fill_holes(m)
    assert got[3, 3] and not got[0, 9]
    assert np.array_equal(got, ndi.binary_fill_holes(m))
