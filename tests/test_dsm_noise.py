"""Tests of fortmap.detect.dsm_noise: offset, tilt and noise of a DSM pair, and the rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window

from fortmap.detect.dsm_noise import (
    RULES,
    CorrectedDsm,
    DsmNoise,
    dsm_rules,
    estimate_dsm_noise,
    measure_dsms,
    rule_threshold,
)
from fortmap.io.grids import analysis_grid
from fortmap.io.raster import GridReader, open_info

N = 800  # 400 m at 0.5 m
UTM_HALF_METRE = Affine(0.5, 0, 500000, 0, -0.5, 4000000)


def _write(path, z, nodata=None):
    prof = dict(driver="GTiff", width=N, height=N, count=1, dtype="float32",
                crs="EPSG:32637", transform=UTM_HALF_METRE, nodata=nodata)  # fmt: skip
    with rasterio.open(path, "w", **prof) as ds:
        ds.write(z.astype(np.float32), 1)
    return path


def _pair(tmp_path, sigma=0.0, offset=0.0, tilt_east_per_km=0.0, holes=False):
    """A town on flat ground; the after DSM adds a berm, a razed block, noise, offset, tilt."""
    rng = np.random.default_rng(0)
    z = np.full((N, N), 50.0, np.float32)
    for r in range(40, N - 80, 120):
        for c in range(40, N - 80, 120):
            z[r : r + 50, c : c + 50] += 12.0
    a = z.copy()
    a[600:620, 100:700] += 3.0  # a berm
    a[40:90, 40:90] -= 12.0  # a razed building
    b = z.copy()
    if sigma:
        b += rng.normal(0, sigma, z.shape).astype(np.float32)
        a += rng.normal(0, sigma, z.shape).astype(np.float32)
    east = (np.arange(N) + 0.5) * 0.5
    a += np.float32(offset) + (east[None, :] * tilt_east_per_km / 1000).astype(np.float32)
    nod = None
    if holes:
        nod = -9999.0
        b[300:340, 300:340] = nod
        a[500:520, 200:260] = nod
    pb = _write(tmp_path / "b.tif", b, nod)
    pa = _write(tmp_path / "a.tif", a, nod)
    grid = analysis_grid(open_info(pb))
    return GridReader(pb, grid, [1]), GridReader(pa, grid, [1]), grid


def test_exact_dsms_measure_no_noise_and_keep_every_rule_at_its_floor(tmp_path):
    rb, ra, grid = _pair(tmp_path)
    dsms, noise, rules, entry = measure_dsms(rb, ra, grid)
    assert noise.sigma_px_m == 0.0 and noise.sigma_over(1.0) == 0.0
    assert not noise.corrected and dsms[1].plane is None
    assert rules.off == {} and "warning" not in entry
    assert rules.thresholds == {r.name: r.floor_m for r in RULES}


def test_offset_and_tilt_are_measured_and_removed(tmp_path):
    rb, ra, grid = _pair(tmp_path, sigma=0.3, offset=2.5, tilt_east_per_km=0.8, holes=True)
    dsms, noise, _, entry = measure_dsms(rb, ra, grid)
    # 0.8 m/km over 400 m: the plane at the centre (x = 200 m) reads 2.5 + 0.16 m
    assert noise.offset_m == pytest.approx(2.66, abs=0.05)
    assert noise.tilt_m_per_km == pytest.approx(0.8, abs=0.2)
    assert noise.tilt_azimuth_deg == pytest.approx(90.0, abs=15.0)
    assert noise.corrected and entry["offset_removed"]
    # the difference of two independent 0.3 m errors: 0.42 m per pixel, halved over 4 pixels
    assert noise.sigma_px_m == pytest.approx(0.3 * math.sqrt(2), rel=0.15)
    assert noise.sigma_over(1.0) == pytest.approx(0.3 * math.sqrt(2) / 2, rel=0.2)
    assert noise.sigma_over(64.0) < noise.sigma_over(16.0) < noise.sigma_over(4.0)
    d = dsms[1].read(Window(0, 0, N, N))[0] - dsms[0].read(Window(0, 0, N, N))[0]
    ground = d[700:790, 10:790]
    assert abs(float(np.nanmedian(ground))) < 0.05
    assert abs(float(np.nanmedian(d[700:790, 10:100]) - np.nanmedian(d[700:790, 700:790]))) < 0.1
    assert entry["cpu_s"] >= 0


def test_nodata_reads_as_nan_never_as_a_rise(tmp_path):
    rb, ra, grid = _pair(tmp_path, holes=True)
    b = CorrectedDsm(rb).read(Window(0, 0, N, N))[0]
    a = CorrectedDsm(ra).read(Window(0, 0, N, N))[0]
    assert np.isnan(b[300:340, 300:340]).all() and np.isnan(a[500:520, 200:260]).all()
    with np.errstate(invalid="ignore"):
        rise = (a - b) >= 0.3
    assert not rise[300:340, 300:340].any() and not rise[500:520, 200:260].any()
    noise = estimate_dsm_noise(CorrectedDsm(rb), CorrectedDsm(ra), grid)
    assert 0.0 < noise.nodata_fraction < 0.02


def test_noisy_dsms_switch_block_rows_and_rubble_off_but_keep_berms(tmp_path):
    rb, ra, grid = _pair(tmp_path, sigma=0.5, offset=1.0)
    _, noise, rules, entry = measure_dsms(rb, ra, grid)
    assert not rules.on("block_rows") and not rules.on("rubble")
    assert not rules.on("route_obstacles") and rules.on("berms")
    assert rules.threshold("rubble") >= 3 * noise.sigma_over(1.0) > 0.3
    msg = entry["warning"]
    assert "\n" not in msg and str(rb.path) in msg and str(ra.path) in msg
    assert "block_rows" in msg and "berms" not in msg


def _noise(s1: float, s4: float) -> DsmNoise:
    return DsmNoise((0, 0, 0), 0, 0, 0, s1, ((1.0, s1), (4.0, s4), (16.0, s4 / 2)), 0, 1)


def test_thresholds_rise_with_the_noise_and_rules_turn_off_when_objects_drown():
    quiet = dsm_rules(_noise(0.05, 0.03))
    assert quiet.off == {} and quiet.threshold("block_rows") == 0.7
    # rubble's floor (0.3 m) lies under 3 sigmas: raised, and the 0.6 m pile still clears it
    mid = dsm_rules(_noise(0.11, 0.08))
    assert mid.threshold("rubble") == pytest.approx(0.33) and mid.on("rubble")
    loud = dsm_rules(_noise(0.9, 1.6))
    assert set(loud.off) == {r.name for r in RULES}
    assert rule_threshold(None, RULES[0]) == RULES[0].floor_m


def test_sigma_over_interpolates_and_extrapolates():
    n = _noise(0.4, 0.2)
    assert n.sigma_over(1.0) == 0.4 and n.sigma_over(0.25) == 0.4
    assert 0.2 < n.sigma_over(2.0) < 0.4
    assert n.sigma_over(64.0) == pytest.approx(0.1 * math.sqrt(16 / 64))


def test_the_plane_is_mapped_onto_a_dsm_grid_for_visibility():
    from fortmap.analyze.visibility_step import _plane_on
    from fortmap.types import Grid

    grid = Grid(crs=rasterio.crs.CRS.from_epsg(32637), transform=UTM_HALF_METRE, width=N, height=N)
    coarse = Grid(
        crs=grid.crs, transform=UTM_HALF_METRE * Affine.scale(4), width=N // 4, height=N // 4
    )
    # 1 m at the origin, +0.01 m per analysis column, -0.02 m per analysis row
    z = _plane_on((1.0, 0.01, -0.02), grid, coarse, (N // 4, N // 4))
    # a coarse cell's centre (2, 1) lies at analysis pixel (2 * 4 + 2, 1 * 4 + 2)
    assert z[1, 2] == pytest.approx(1.0 + 0.01 * 10 - 0.02 * 6)


def test_small_holes_take_the_lowest_height_on_their_rim_and_large_ones_stay_unknown():
    from fortmap.detect.dsm_noise import fill_small_holes

    z = np.zeros((100, 100), np.float32)
    z[:, 50:] = 10.0  # a wall at column 50
    z[20:24, 48:52] = np.nan  # an occlusion at the wall's foot
    z[60:100, 0:40] = np.nan  # 400 m² unknown
    f = fill_small_holes(z, 0.5)
    assert (f[20:24, 48:52] == 0.0).all()  # the ground, never the roof
    assert np.isnan(f[60:100, 0:40]).all()


def test_berm_surfaces_smooth_only_noisy_dsms():
    from fortmap.detect.dsm_noise import berm_surfaces

    rng = np.random.default_rng(1)
    z = rng.normal(0, 0.4, (200, 200)).astype(np.float32)
    b, a = berm_surfaces(z, z, 0.5, _noise(0.0, 0.0))
    assert np.array_equal(a, z)
    b, a = berm_surfaces(z, z, 0.5, _noise(0.3, 0.2))
    assert a[50:150, 50:150].std() < 0.1
