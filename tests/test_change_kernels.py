"""The fused kernels behind the change mask give the same numbers as the numpy/scipy code
they replaced (references written out here)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
import shapely.affinity
from scipy import ndimage as ndi

from fortmap.detect import change_cues as cues
from fortmap.detect import change_stats
from fortmap.detect.change import BLUE_MARGIN, SHIFT_BINS, ChangeModel, fit_change_model
from fortmap.detect.change_kernels import hysteresis_mask, uniform3
from fortmap.io.grids import affine_all


def _hysteresis_reference(ev, valid, low, high, min_px):
    grow = (ev >= low) & valid
    lab, n = ndi.label(grow)
    if n == 0:
        return np.zeros(ev.shape, np.uint8)
    seeded = np.bincount(lab[ev >= high], minlength=n + 1)[1:] > 0
    big = np.bincount(lab.ravel(), minlength=n + 1)[1:] >= min_px
    keep = np.zeros(n + 1, bool)
    keep[1:] = seeded & big
    out = keep[lab]
    hl, hn = ndi.label(~out)
    hs = np.bincount(hl.ravel(), minlength=hn + 1)
    small = hs < min_px
    small[0] = False
    out |= small[hl] & valid
    return out.astype(np.uint8)


def test_hysteresis_matches_scipy_labelling():
    rng = np.random.default_rng(0)
    for _ in range(150):
        h, w = (int(v) for v in rng.integers(1, 50, 2))
        ev = ndi.gaussian_filter(rng.random((h, w)), rng.uniform(0.5, 3))
        ev = ((ev - ev.min()) / (np.ptp(ev) + 1e-9)).astype(np.float32)
        valid = rng.random((h, w)) > rng.uniform(0, 0.2)
        low, high = np.float32(rng.uniform(0.2, 0.6)), np.float32(rng.uniform(0.5, 0.9))
        min_px = int(rng.integers(1, 30))
        got = hysteresis_mask(ev, valid, low, high, min_px)
        assert np.array_equal(got, _hysteresis_reference(ev, valid, low, high, min_px))


def test_hysteresis_fills_small_holes_only_where_valid():
    ev = np.zeros((40, 40), np.float32)
    ev[5:35, 5:35] = 0.9
    ev[10:12, 10:12] = 0.0  # a 4-pixel hole
    ev[20:30, 20:30] = 0.0  # a 100-pixel hole
    valid = np.ones((40, 40), bool)
    out = hysteresis_mask(ev, valid, np.float32(0.3), np.float32(0.7), 50)
    assert out[10, 10] == 1 and out[25, 25] == 0 and out[0, 0] == 0
    valid[10, 10] = False
    out = hysteresis_mask(ev, valid, np.float32(0.3), np.float32(0.7), 50)
    assert out[10, 10] == 0 and out[11, 11] == 1


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (7, 1), (64, 45)])
def test_uniform3_matches_scipy_bit_for_bit(shape):
    x = np.random.default_rng(3).random(shape).astype(np.float32)
    assert np.array_equal(uniform3(x), ndi.uniform_filter(x, 3, mode="nearest"))


def test_interp_sorted_matches_numpy_bit_for_bit():
    rng = np.random.default_rng(4)
    xp = np.maximum.accumulate(np.sort(rng.random(101)) + np.arange(101) * 1e-7)
    xp[40:43] = xp[40]  # repeated knots
    fp = np.sort(rng.random(101)).astype(np.float32)
    x = (rng.random(20_000) * 1.4 - 0.2).astype(np.float32)
    x[:101] = xp
    x[101:103] = np.nan
    got = cues.interp_sorted(x, xp, fp)
    assert np.array_equal(got, np.interp(x, xp, fp), equal_nan=True)


@pytest.mark.parametrize("nbuckets", [1, 7, 404, 6464, 100_000])
def test_interp_sorted_does_not_depend_on_the_bucket_count(nbuckets):
    # knots crowded at the low end (quantiles of skewed data) put many knots in one bucket
    rng = np.random.default_rng(5)
    v = rng.gamma(1.5, 0.05, 50_000)
    xp = np.maximum.accumulate(np.quantile(v, np.linspace(0, 1, 101)) + np.arange(101) * 1e-7)
    xp[60:63] = xp[60]
    fp = np.sort(rng.random(101))
    x = np.concatenate([v, xp, [-1.0, 9.0, np.nan]]).astype(np.float32)
    got = change_stats._interp_sorted(x, xp, fp, nbuckets)
    assert np.array_equal(got, np.interp(x, xp, fp), equal_nan=True)


@pytest.mark.parametrize("n", [1, 2, 5, 1000, 1001])
def test_median_matches_numpy(n):
    x = np.random.default_rng(n).random(n).astype(np.float32)
    assert cues.median(x) == np.median(x)
    x[0] = np.nan
    assert np.isnan(cues.median(x))


def _scene(seed: int = 5, size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    before = ndi.gaussian_filter(rng.random((3, size, size)), (0, 1.5, 1.5)).astype(np.float32)
    before = (before - before.min()) / np.ptp(before)
    after = before * 0.9 + 0.05
    after[:, 30:50, 40:60] = 0.8  # a new bright roof
    after[:, 60:70, 10:30] = 0.05  # a new dark patch
    return before, after.astype(np.float32)


def test_fused_colour_cue_matches_numpy_reference():
    before, after = _scene()
    valid = np.ones(before.shape[1:], bool)
    model = fit_change_model(before, after, valid, gsd=0.5)
    col, _, b, a = model._cue_parts(before, after)
    # the numpy formulation the fused kernel replaced
    f = model.factor
    b_ref = cues.block_mean(before, f)
    a_ref = cues.apply_maps(cues.block_mean(after, f), model.luts)
    a_ref = (
        a_ref
        - model.shift_lut[:, cues.colour_bins(b_ref, model.shift_lo, model.shift_hi, SHIFT_BINS)]
    )
    lum_b, lum_a = b_ref.mean(axis=0), a_ref.mean(axis=0)
    lit = ~cues.dilate3((lum_b < model.dark) | (lum_a < model.dark))
    scale = np.minimum(lum_a, lum_b)
    rb, ra = scale / (lum_b + 1e-3), scale / (lum_a + 1e-3)
    ref = cues.tolerant_diff(
        [lum_b] + [b_ref[i] * rb for i in range(3)], [lum_a] + [a_ref[i] * ra for i in range(3)]
    )
    ref[~lit] = 0.0
    assert np.array_equal(a, a_ref)
    assert np.array_equal(col, ref)
    assert model.blue_ref + BLUE_MARGIN > 0


def test_evidence_without_colour_shift_table():
    before, after = _scene(6)
    valid = np.ones(before.shape[1:], bool)
    fitted = fit_change_model(before, after, valid, gsd=0.5)
    plain = ChangeModel(gsd=0.5, src_q=fitted.src_q, dst_q=fitted.dst_q, dark=fitted.dark)
    ev = plain.evidence(before, after, valid)
    assert ev.shape == valid.shape and ev.dtype == np.float32
    assert ev[40, 50] > ev[5, 5]


def test_affine_all_matches_shapely():
    geoms = [shapely.box(i, 2 * i, i + 3.3, 2 * i + 1.7) for i in range(20)]
    geoms.append(shapely.Polygon([(0, 0, 1), (1, 0, 1), (1, 1, 1)]))
    m = [0.5, 0.0, 0.0, -0.5, 412000.0, 3987000.0]
    got = affine_all(geoms, m)
    ref = [shapely.affinity.affine_transform(g, m) for g in geoms]
    assert all(shapely.equals_exact(a, b, 0.0) for a, b in zip(got, ref, strict=True))
    assert affine_all([], m) == []


@pytest.mark.parametrize(
    "shape", [(4, 1, 1), (4, 1, 6), (2, 7, 1), (3, 2, 2), (2, 3, 4), (4, 37, 53)]
)
def test_tolerant_stack_matches_the_numpy_reference_bit_for_bit(shape):
    from fortmap.detect.change_kernels import tolerant_stack

    rng = np.random.default_rng(sum(shape))
    for ties in (False, True):
        b = rng.random(shape).astype(np.float32)
        a = rng.random(shape).astype(np.float32)
        if ties:  # equal neighbours: ranges with repeated extremes
            b, a = np.round(b * 3), np.round(a * 3)
        ref = cues.tolerant_diff(list(b), list(a))
        got = tolerant_stack(b, a)
        assert got.dtype == np.float32
        assert np.array_equal(got.view(np.uint32), ref.astype(np.float32).view(np.uint32))


@pytest.mark.parametrize(("shape", "f"), [((1, 1), 1), ((7, 9), 2), ((20, 33), 3), ((16, 16), 4)])
def test_block_any_dilated_equals_dilation_then_block_any(shape, f):
    from fortmap.detect.change_kernels import block_any_dilated

    rng = np.random.default_rng(shape[1] + f)
    m1, m2 = rng.random(shape) < 0.2, rng.random(shape) < 0.5
    d = ndi.binary_dilation(m1 & m2, np.ones((3, 3), bool))
    hb, wb = -(-shape[0] // f), -(-shape[1] // f)
    pad = np.zeros((hb * f, wb * f), bool)
    pad[: shape[0], : shape[1]] = d
    ref = pad.reshape(hb, f, wb, f).any(axis=(1, 3))
    assert np.array_equal(block_any_dilated(m1, m2, f), ref)


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (6, 1), (2, 2), (19, 27)])
@pytest.mark.parametrize("p", [0.0, 0.1, 0.6, 1.0])
def test_dilate3_or_equals_scipy_dilation(shape, p):
    from fortmap.detect.change_kernels import dilate3_or

    rng = np.random.default_rng(shape[0] * 31 + int(p * 10))
    m1, m2 = rng.random(shape) < p, rng.random(shape) < p / 3
    ref = ndi.binary_dilation(m1 | m2, np.ones((3, 3), bool))
    assert np.array_equal(dilate3_or(m1, m2), ref)
