"""The fused colour cue gives the same bytes as the kernels it replaced, run in turn."""

from __future__ import annotations

import numpy as np
import pytest

from fortmap.detect import change_cues as cues
from fortmap.detect.change import SHIFT_BINS
from fortmap.detect.change_colour import colour_cue
from fortmap.detect.change_kernels import colour_prep, dilate3_or, tolerant_stack


def _inputs(shape, has_shift, seed):
    rng = np.random.default_rng(seed)
    # values beyond the tables' range on both sides, and dark pixels for the shade flags
    b = rng.uniform(-0.1, 1.2, shape).astype(np.float32)
    a = rng.uniform(-0.1, 1.2, shape).astype(np.float32)
    b[:, ::4] *= np.float32(0.05)
    a[:, :, ::5] *= np.float32(0.05)
    src_q = np.sort(rng.random((3, 11)), axis=1).astype(np.float32)
    dst_q = np.sort(rng.random((3, 11)), axis=1).astype(np.float32)
    lo, step, table = cues.map_luts(src_q, dst_q)
    slo = np.float32([0.1, 0.05, 0.0])
    sfac = np.float32([SHIFT_BINS / 0.8, SHIFT_BINS / 0.9, SHIFT_BINS / 1.0])
    slut = rng.normal(0, 0.05, (3, SHIFT_BINS**3)).astype(np.float32)
    consts = (lo, step, table, slo, sfac, slut, SHIFT_BINS, has_shift)
    return b, a, consts + (np.float32(0.2), np.float32(0.36))


def _reference(b, a, consts):
    a_map, cb, ca, shb, sha, skb, ska = colour_prep(b, a, *consts)
    unlit = dilate3_or(shb, sha)
    col = tolerant_stack(cb, ca)
    col[unlit] = 0.0
    return a_map, (col, unlit, shb, sha, skb, ska)


@pytest.mark.parametrize(
    "shape", [(3, 1, 1), (3, 1, 9), (3, 6, 1), (3, 2, 2), (3, 3, 5), (3, 23, 31)]
)
@pytest.mark.parametrize("has_shift", [False, True])
@pytest.mark.parametrize("in_place", [False, True])
def test_colour_cue_equals_the_kernels_in_turn(shape, has_shift, in_place):
    b, a, consts = _inputs(shape, has_shift, shape[1] * 7 + shape[2] + has_shift)
    ref_a, ref = _reference(b, a.copy(), consts)
    a_out = a if in_place else np.empty_like(a)
    got = colour_cue(b, a, a_out, *consts)
    if b[0].size > 100:
        assert got[1].any() and not got[1].all()
        assert (got[0] > 0).any()
    assert a_out.tobytes() == ref_a.tobytes()
    for g, r in zip(got, ref, strict=True):
        assert g.dtype == r.dtype and g.shape == r.shape
        assert g.tobytes() == r.tobytes()


def test_colour_cue_with_nan():
    b, a, consts = _inputs((3, 17, 13), True, 3)
    b[1, 4, 5] = np.nan
    a[0, 9, 0] = np.nan
    a[2, 16, 12] = np.nan
    ref_a, ref = _reference(b, a.copy(), consts)
    a_out = np.empty_like(a)
    got = colour_cue(b, a, a_out, *consts)
    assert a_out.tobytes() == ref_a.tobytes()
    for g, r in zip(got, ref, strict=True):
        assert g.tobytes() == r.tobytes()
