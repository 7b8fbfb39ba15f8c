import numpy as np
import pytest

from fortmap.align.radiometry import fit_band_maps


def test_recovers_linear_map_despite_changed_pixels():
    rng = np.random.default_rng(0)
    b = rng.uniform(10, 200, (3, 80, 80))
    a = b * np.array([0.7, 0.8, 1.2])[:, None, None] + np.array([30, 10, -5])[:, None, None]
    a[:, :20, :20] = rng.uniform(0, 255, (3, 20, 20))  # 6 % of the scene changed
    m = fit_band_maps(b, a, np.ones((80, 80), bool))
    nb = b * m.before_scale[:, None, None] + m.before_offset[:, None, None]
    na = a * m.after_scale[:, None, None] + m.after_offset[:, None, None]
    assert np.abs(nb[:, 20:, 20:] - na[:, 20:, 20:]).max() < 1e-3
    assert 0 <= np.percentile(nb, 1) and np.percentile(nb, 99) <= 1.01


def test_invalid_pixels_are_ignored():
    rng = np.random.default_rng(1)
    b = rng.uniform(10, 200, (1, 40, 40))
    a = 2 * b
    a[:, :10] = 0  # nodata stripe
    valid = np.ones((40, 40), bool)
    valid[:10] = False
    m = fit_band_maps(b, a, valid)
    assert m.after_scale[0] / m.before_scale[0] == pytest.approx(0.5, rel=1e-3)
