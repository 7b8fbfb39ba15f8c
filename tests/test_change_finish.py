"""The row-wise kernels that finish the change evidence give the numpy/scipy numbers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from fortmap.detect.change_finish import finish_evidence, upsample_masked


def _finish_reference(col, st, b, a, c_loc, c_sig, s_loc, s_sig, z0, dz, veg_thr):
    """The numpy formulation: scipy smoothing, float32 z-scores, both-dates vegetation."""
    f32 = np.float32
    zc = ndi.uniform_filter(col, 3, mode="nearest")
    zs = ndi.uniform_filter(st, 3, mode="nearest")
    ec = np.clip((((zc - c_loc) / c_sig) - z0) / dz, f32(0), f32(1))
    es = np.clip((((zs - s_loc) / s_sig) - z0) / dz, f32(0), f32(1))
    ev = np.maximum(es * (f32(0.5) + f32(0.5) * ec), ec * ec * f32(0.75))
    if b.shape[0] >= 3:
        eb = (f32(2) * b[1] - b[0] - b[2]) / (b[0] + b[1] + b[2] + f32(0.03))
        ea = (f32(2) * a[1] - a[0] - a[2]) / (a[0] + a[1] + a[2] + f32(0.03))
        ev[(eb > veg_thr) & (ea > veg_thr)] = 0
    elif veg_thr < 0:
        ev[:] = 0
    return ev


@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (5, 1), (2, 2), (31, 44)])
@pytest.mark.parametrize(("nb", "veg"), [(3, 0.05), (1, 0.05), (1, -0.01)])
def test_finish_evidence_matches_numpy(shape, nb, veg):
    rng = np.random.default_rng(shape[1] * 7 + nb)
    col = rng.gamma(1.0, 0.05, shape).astype(np.float32)
    st = rng.gamma(1.0, 0.02, shape).astype(np.float32)
    b = rng.random((nb, *shape)).astype(np.float32)
    a = rng.random((nb, *shape)).astype(np.float32)
    args = [np.float32(v) for v in (0.02, 0.015, 0.01, 0.008, 2.0, 4.0, veg)]
    got = finish_evidence(col, st, b, a, *args)
    ref = _finish_reference(col, st, b, a, *args)
    assert got.dtype == np.float32
    assert got.tobytes() == ref.tobytes()


def _upsample_reference(x, f, h, w, valid):
    """Bilinear weights from block centres, in float64 as the first kernel did, per pixel."""
    hs, ws = x.shape
    inv = np.float32(1.0 / f)
    fy = (np.arange(h) + np.float32(0.5)) * np.float64(inv) - np.float32(0.5)
    fx = (np.arange(w) + np.float32(0.5)) * np.float64(inv) - np.float32(0.5)
    y0, x0 = np.floor(fy).astype(int), np.floor(fx).astype(int)
    ty, tx = (fy - y0)[:, None], (fx - x0)[None, :]
    ya, yb = np.clip(y0, 0, hs - 1)[:, None], np.clip(y0 + 1, 0, hs - 1)[:, None]
    xa, xb = np.clip(x0, 0, ws - 1)[None, :], np.clip(x0 + 1, 0, ws - 1)[None, :]
    x = x.astype(np.float64)
    top = x[ya, xa] * (1 - tx) + x[ya, xb] * tx
    bot = x[yb, xa] * (1 - tx) + x[yb, xb] * tx
    return np.where(valid, top * (1 - ty) + bot * ty, 0.0).astype(np.float32)


@pytest.mark.parametrize(
    ("hs", "ws", "f"), [(1, 1, 2), (1, 5, 2), (4, 1, 3), (9, 13, 2), (7, 6, 4)]
)
@pytest.mark.parametrize("p_valid", [0.0, 0.7, 1.0])
def test_upsample_masked_matches_the_per_pixel_formula(hs, ws, f, p_valid):
    rng = np.random.default_rng(hs * 10 + ws + f)
    x = rng.random((hs, ws)).astype(np.float32)
    h, w = hs * f - (f > 2), ws * f
    valid = rng.random((h, w)) < p_valid
    got = upsample_masked(x, f, h, w, valid)
    assert got.tobytes() == _upsample_reference(x, f, h, w, valid).tobytes()
