"""The fused structure-cue inputs equal the numpy formulation they replaced, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from fortmap.detect.change import DARK_WEIGHT, EXG_VEG, ChangeModel
from fortmap.detect.change_structure import structure_inputs, weighted_pair


@pytest.mark.parametrize("nb", [1, 2, 3])
@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (5, 1), (23, 31)])
def test_structure_inputs_equal_where_and_the_weight(nb, shape):
    rng = np.random.default_rng(nb * 10 + shape[1])
    x = rng.random((nb, *shape)).astype(np.float32)
    if nb == 3:
        x[1, ::3] += np.float32(0.4)  # green pixels: the vegetation term bites
        x[:, 1::4] = x[:1, 1::4]  # grey pixels: zero saturation
    filled = rng.random(shape) < 0.3
    q = np.zeros((nb, 3), np.float32)
    model = ChangeModel(gsd=0.5, src_q=q, dst_q=q, dark=0.1, sat_ref=0.2, exg_ref=0.01)
    model.ground = 0.37
    lum, wt = structure_inputs(
        x,
        filled,
        np.float32(model.ground),
        np.float32(max(model.sat_ref, 1e-3)),
        np.float32(model.exg_ref + EXG_VEG),
        np.float32(EXG_VEG),
    )
    ref_lum = np.where(filled, np.float32(model.ground), x.max(axis=0))
    ref_wt = model._structure_weight(x)
    assert lum.tobytes() == ref_lum.tobytes()
    assert wt.tobytes() == ref_wt.tobytes()
    if nb == 3 and wt.size > 100:
        assert (wt == 0).any() and (wt == 1).any() and ((wt > 0) & (wt < 1)).any()


def test_weighted_pair_equals_the_numpy_stack():
    rng = np.random.default_rng(2)
    w, k, s = (rng.random((2, 9, 13)).astype(np.float32) for _ in range(3))
    got = weighted_pair(w[0], k[0], s[0], np.float32(DARK_WEIGHT))
    ref = np.stack([w[0] * s[0], DARK_WEIGHT * k[0] * s[0]])
    assert got.tobytes() == ref.tobytes()
