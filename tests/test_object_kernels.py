"""Compiled change-object steps against the ndimage calls they replace (exact)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from fortmap.detect.object_kernels import grow_within, label_sums


def _evidence(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h, w = rng.integers(40, 300, 2)
    ev = ndi.gaussian_filter(rng.random((h, w)), 3)
    return ((ev - ev.min()) / (ev.max() - ev.min())).astype(np.float32)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("reach", [1, 2, 4, 9])
def test_growth_is_ndimage_s_masked_dilation(seed, reach):
    ev = _evidence(seed)
    mask = ev > 0.65
    allowed = (ev >= 0.3) | mask
    want = ndi.binary_dilation(mask, iterations=reach, mask=allowed)
    got = grow_within(mask, allowed, reach)
    assert got.dtype == bool
    assert (got == want).all()
    assert got.sum() > mask.sum()  # it grew


@pytest.mark.parametrize("seed", range(8))
def test_label_sums_are_ndimage_s_to_the_bit(seed):
    ev = _evidence(seed)
    lab, n = ndi.label(ev > 0.5)
    assert n > 0
    idx = np.arange(1, n + 1)
    c, sy, sx, sv = label_sums(lab, n, ev)
    m = lab > 0
    assert np.array_equal(c[1:], ndi.sum(m, lab, idx))
    cy, cx = np.array(ndi.center_of_mass(m, lab, idx)).T.reshape(2, -1)
    assert np.array_equal(sy[1:] / c[1:], cy)
    assert np.array_equal(sx[1:] / c[1:], cx)
    assert np.array_equal(sv[1:] / c[1:], ndi.mean(ev, lab, idx))
    assert c.sum() == lab.size
