import numpy as np
import pytest
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.windows import Window
from scipy import ndimage as ndi

from conftest import textured_scene, write_tif
from fortmap.align.coregister import coregister, fit_affine_shifts, measure_shift
from fortmap.io.raster import GridReader, open_info


@settings(max_examples=15, deadline=None)
@given(dx=st.floats(-6, 6), dy=st.floats(-6, 6))
def test_measure_shift_recovers_subpixel_shift(dx, dy):
    img = textured_scene(192, seed=3)[0]
    moved = ndi.shift(img, (dy, dx), order=3, mode="nearest")
    mdx, mdy, _ = measure_shift(img, moved, img > -1, img > -1)
    assert mdx == pytest.approx(dx, abs=0.15)
    assert mdy == pytest.approx(dy, abs=0.15)


def test_measure_shift_ignores_gain_and_offset():
    img = textured_scene(192, seed=4)[0]
    moved = ndi.shift(img, (1.0, -2.0), order=3, mode="nearest") * 0.6 + 0.3
    mdx, mdy, _ = measure_shift(img, moved, img > -1, img > -1)
    assert (mdx, mdy) == pytest.approx((-2.0, 1.0), abs=0.15)


def test_coregister_pair_and_apply(pair):
    b, a, img = pair
    grid = open_info(b).grid
    br, ar = GridReader(b, grid), GridReader(a, grid)
    co = coregister(br, ar, tile_px=128, n_side=3)
    assert co.dx == pytest.approx(2.4, abs=0.2)
    assert co.dy == pytest.approx(-1.6, abs=0.2)
    assert co.residual_px < 0.5
    ar.set_pixel_warp(co.warp)
    w = Window(150, 20, 150, 60)  # away from the changed block
    # pixel noise is as strong as the fine texture here: compare the smoothed images
    before = ndi.gaussian_filter(br.read(w)[0], 1.5)
    after = ndi.gaussian_filter(ar.read(w)[0], 1.5)
    assert np.corrcoef(before.ravel(), after.ravel())[0, 1] > 0.95


def test_coregister_large_shift_found_by_coarse_pass(tmp_path):
    img = textured_scene(1024, seed=5)
    moved = ndi.shift(img, (0, 37.0, -41.5), order=1, mode="nearest")
    b = write_tif(tmp_path / "b.tif", img)
    a = write_tif(tmp_path / "a.tif", moved)
    grid = open_info(b).grid
    co = coregister(GridReader(b, grid), GridReader(a, grid), tile_px=256, n_side=3, coarse_px=256)
    assert (co.dx, co.dy) == pytest.approx((-41.5, 37.0), abs=0.3)


def test_fit_affine_shifts_exact():
    pts = np.array([[0, 0], [100, 0], [0, 100], [100, 100], [50, 50]], float)
    true = np.array([[0.01, 0.0, 2.0], [0.0, -0.02, -1.0]])
    shifts = np.column_stack([pts, np.ones(5)]) @ true.T
    coef, res = fit_affine_shifts(pts, shifts)
    assert np.allclose(coef, true) and np.allclose(res, 0)
    assert isinstance(Affine(*coef.ravel()), Affine)


def test_prep_of_an_all_valid_image_equals_the_filled_transform():
    """With every pixel valid nothing needs filling: the transform must equal the one of the
    general path (fill invalid pixels with the median, then standardise), bit for bit, and
    leave the caller's image alone; one invalid pixel is filled with the median."""
    from fortmap.align.coregister import _prep, _window_and_band

    rng = np.random.default_rng(5)
    g = rng.random((64, 64)).astype(np.float32)
    keep = g.copy()

    def reference(img, valid):
        x = np.where(valid, img, np.median(img[valid])).astype(np.float32)
        x -= x.mean()
        x /= x.std() + 1e-6
        wy, wx, band = _window_and_band(x.shape)
        f = np.fft.fft2(x * wy * wx)
        return f / (np.abs(f) + 1e-9) * band

    valid = np.ones(g.shape, bool)
    assert np.array_equal(_prep(g, valid), reference(g, valid))
    assert np.array_equal(g, keep)
    valid[3, 5] = False
    assert np.array_equal(_prep(g, valid), reference(g, valid))


def _bits(z: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(z).view(np.uint64)


@pytest.mark.parametrize("shape", [(64, 64), (48, 80), (1, 7), (256, 256)])
def test_coreg_kernels_match_numpy_bit_for_bit(shape):
    """The compiled taper and whitening passes must give numpy's bits, signed zeros included
    (the band weight is exactly 0 at the DC term), on random and on degenerate images."""
    from fortmap.align.coreg_kernels import taper_complex, whiten_band
    from fortmap.align.coregister import _window_and_band

    rng = np.random.default_rng(sum(shape))
    wy, wx, band = _window_and_band(shape)
    for g in (
        rng.standard_normal(shape).astype(np.float32),
        np.zeros(shape, np.float32),
        (rng.random(shape) * 1e6).astype(np.float32),
    ):
        t = taper_complex(g, wy, wx)
        assert np.array_equal(_bits(t), _bits((g * wy * wx).astype(np.complex128)))
        f = np.fft.fft2(g * wy * wx)
        ref = f / (np.abs(f) + 1e-9) * band
        assert np.array_equal(_bits(whiten_band(f.copy(), np.abs(f), band)), _bits(ref))
    # zeros of either sign and huge or tiny values in the spectrum itself
    f = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    f *= np.exp(rng.uniform(-40, 40, shape))
    f.real[rng.random(shape) < 0.2] = -0.0
    f.imag[rng.random(shape) < 0.2] = 0.0
    ref = f / (np.abs(f) + 1e-9) * band
    assert np.array_equal(_bits(whiten_band(f.copy(), np.abs(f), band)), _bits(ref))


@pytest.mark.parametrize("shape", [(64, 64), (48, 80), (256, 256), (1024, 1024)])
def test_prep_in_place_transform_equals_numpy_fft2_bit_for_bit(shape):
    """_prep transforms in place, row pass then column pass: the spectrum must be numpy's
    ``fft2`` of the tapered image, bit for bit, at tile and coarse-view sizes."""
    from fortmap.align.coregister import _prep, _window_and_band

    rng = np.random.default_rng(shape[0])
    g = ndi.gaussian_filter(rng.random(shape), 2).astype(np.float32)
    valid = np.ones(shape, bool)
    x = g.copy()
    x -= x.mean()
    x /= x.std() + 1e-6
    wy, wx, band = _window_and_band(shape)
    f = np.fft.fft2(x * wy * wx)
    assert np.array_equal(_bits(_prep(g, valid)), _bits(f / (np.abs(f) + 1e-9) * band))


@pytest.mark.parametrize(
    "shape", [(1024, 1024), (256, 256), (250, 250), (513, 250), (1, 1), (2, 3)]
)
def test_window_and_band_mirrored_quarter_equals_whole_plane(shape):
    """The band-pass weight computed on a quarter and mirrored is the whole plane's, bit for
    bit (the expression it replaces)."""
    from fortmap.align.coregister import _window_and_band

    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.fftfreq(shape[1])[None, :]
    r2 = (2 * np.pi) ** 2 * (fx**2 + fy**2)
    weight = np.exp(-r2 * 1.0**2 / 2) - np.exp(-r2 * 8.0**2 / 2)
    ref = np.sqrt(np.clip(weight, 0, None))
    wy, wx, band = _window_and_band(shape)
    assert band.dtype == ref.dtype and band.shape == ref.shape
    assert np.array_equal(band, ref)
    assert np.array_equal(wy, np.hanning(shape[0])[:, None])
    assert np.array_equal(wx, np.hanning(shape[1])[None, :])
