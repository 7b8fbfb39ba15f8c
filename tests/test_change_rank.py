"""Running min and max by doubling against the kernel they stand in for."""

from __future__ import annotations

import numpy as np
import pytest

from fortmap.detect.change_cues import _rank3, _tophat_sums
from fortmap.detect.change_rank import rank_square, tophat_sums

SHAPES = [(1, 1), (1, 12), (9, 1), (2, 3), (7, 7), (23, 30)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("r", [0, 1, 2, 3, 4, 5, 6, 8, 13])
@pytest.mark.parametrize("is_max", [False, True])
def test_rank_square_equals_the_running_loop(shape, r, is_max):
    rng = np.random.default_rng(shape[0] * 50 + shape[1] + r)
    x = rng.random(shape).astype(np.float32)
    x[rng.random(shape) < 0.2] = 0.5  # ties
    got = rank_square(x, r, is_max)
    assert got.tobytes() == _rank3(x, r, is_max).tobytes()


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("radii", [(1, 3, 5), (1,), (2, 2, 4), (5, 3, 1), (0, 1)])
def test_tophat_sums_equal_the_running_loop(shape, radii):
    rng = np.random.default_rng(shape[0] * 7 + len(radii))
    lum = rng.random(shape).astype(np.float32)
    r = np.array(radii, np.int64)
    got, ref = tophat_sums(lum, r), _tophat_sums(lum, r)
    for g, e in zip(got, ref, strict=True):
        assert g.tobytes() == e.tobytes()
    if lum.size > 4:
        assert got[0].max() > 0 and got[1].max() > 0


def test_tophats_keep_the_running_loop_for_nan():
    from fortmap.detect.change_cues import tophats

    rng = np.random.default_rng(9)
    lum = rng.random((15, 18)).astype(np.float32)
    lum[4, 6] = np.nan
    radii = np.array([1, 3], np.int64)
    got = tophats(lum, (3, 7))
    ref = _tophat_sums(lum, radii)
    for g, e in zip(got, ref, strict=True):
        assert g.tobytes() == (e / 2).tobytes()
