"""Tests of fortmap.simulate.dsm_quality: a stereo DSM degraded from an exact surface."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from fortmap.simulate.dsm_quality import (
    NODATA,
    PRESETS,
    DsmQuality,
    degrade_dsm,
    resolve_quality,
)


def _surface(n: int = 400) -> np.ndarray:
    """Flat ground at 100 m with one 10 m building and a 1.5 m x 1 m block (0.5 m pixels)."""
    z = np.full((n, n), 100.0, np.float32)
    z[100:160, 100:160] += 10.0
    z[300:302, 300:303] += 1.5
    return z


def test_exact_leaves_the_surface_as_it_is():
    z = _surface()
    out, drawn = degrade_dsm(z, 0.5, PRESETS["exact"], np.random.default_rng(0))
    assert np.array_equal(out, z)
    assert drawn["offset_m"] == 0.0 and PRESETS["exact"].exact


def test_stereo_is_deterministic_per_seed_and_differs_between_seeds():
    z = _surface()
    a, da = degrade_dsm(z, 0.5, PRESETS["stereo"], np.random.default_rng(7))
    b, db = degrade_dsm(z, 0.5, PRESETS["stereo"], np.random.default_rng(7))
    c, _ = degrade_dsm(z, 0.5, PRESETS["stereo"], np.random.default_rng(8))
    assert np.array_equal(a, b) and da == db
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("name", ["stereo", "coarse"])
def test_noise_offset_tilt_and_holes_follow_the_preset(name):
    q = PRESETS[name]
    z = _surface()
    out, drawn = degrade_dsm(z, 0.5, q, np.random.default_rng(3))
    holes = out == NODATA
    assert 0.3 * q.hole_fraction < holes.mean() < 2.0 * q.hole_fraction
    assert abs(drawn["offset_m"]) <= q.offset_m and 0 <= drawn["tilt_m_per_km"] <= q.tilt_m_per_km
    # open ground far from the building: the error less its plane is the random error,
    # somewhat below the posts' sigma after the matcher's smoothing and interpolation
    ground = np.zeros(z.shape, bool)
    ground[200:280, 20:380] = True
    err = (out - z)[ground & ~holes]
    yy, xx = np.nonzero(ground & ~holes)
    A = np.c_[np.ones(xx.size), xx, yy]
    res = err - A @ np.linalg.lstsq(A, err, rcond=None)[0]
    assert 0.4 * q.noise_m < res.std() < 1.1 * q.noise_m
    assert abs(np.median(err) - drawn["offset_m"]) < 0.3 + q.tilt_m_per_km * 0.2


def test_a_block_is_flattened_by_the_coarse_posting():
    z = _surface()
    q = DsmQuality("smooth only", posting_m=2.0, smooth_m=1.0)
    out, _ = degrade_dsm(z, 0.5, q, np.random.default_rng(0))
    top = out[299:303, 299:304].max() - 100.0
    assert top < 1.0  # a 1.5 m x 1 m block reads well under its height


def test_resolve_quality_names_the_presets():
    assert resolve_quality("coarse") is PRESETS["coarse"]
    with pytest.raises(ValueError, match="exact, stereo, coarse"):
        resolve_quality("lidar")


def test_simulate_writes_degraded_dsms_with_nodata_and_exact_truth(tmp_path):
    from fortmap.cli.main import cli

    res = CliRunner().invoke(
        cli,
        ["simulate", "--out", str(tmp_path / "s"), "--seed", "4", "--size-m", "200",
         "--dsm-quality", "stereo", "--quiet"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "s" / "scene.json").read_text())
    assert meta["dsm_quality"]["name"] == "stereo"
    assert set(meta["dsm_quality"]["drawn"]) == {"dsm_before", "dsm_after"}
    with rasterio.open(tmp_path / "s" / "dsm_after.tif") as ds:
        assert ds.nodata == NODATA
        assert ds.tags()["DSM_QUALITY"] == "stereo"
        assert (ds.read(1) == NODATA).any()
    res = CliRunner().invoke(
        cli, ["simulate", "--out", str(tmp_path / "e"), "--seed", "4", "--size-m", "200", "--quiet"]
    )
    assert res.exit_code == 0, res.output
    # the images and truth do not depend on the DSMs' quality
    for f in ("after.tif", "truth_change.tif"):
        with rasterio.open(tmp_path / "s" / f) as a, rasterio.open(tmp_path / "e" / f) as b:
            assert np.array_equal(a.read(), b.read())
    with rasterio.open(tmp_path / "e" / "dsm_after.tif") as ds:
        assert ds.nodata is None
