"""The visibility gain's interval over perturbed DEMs, and bare ground in cleared areas."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import LineString, box

from fortmap.analyze.surface import build_surface
from fortmap.analyze.visibility import gain_samples, visibility_change
from fortmap.analyze.visibility_step import (
    VISIBILITY_RES_M,
    coarse_grid,
    dem_offsets,
    footprint_surfaces,
    run_visibility,
)
from fortmap.types import Grid

UTM = CRS.from_epsg(32637)
X0, Y0 = 500_000.0, 4_000_000.0


def _tr(cell: float, n: int) -> Affine:
    return Affine(cell, 0, X0, 0, -cell, Y0 + n * cell)


def _hilly(n: int = 80, cell: float = 2.0, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Rough ground with two walls before, the nearer one gone after."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(0, 1.5, (n, n)).astype(np.float32)
    before = z.copy()
    for c in (20, 45):
        before[5 : n - 5, c] += 6.0
    after = before.copy()
    after[5 : n - 5, 20] = z[5 : n - 5, 20]
    return before, after


def test_gain_samples_match_visibility_change_and_ignore_a_common_shift():
    before, after = _hilly()
    tr, edge = _tr(2.0, 80), LineString([(X0 + 10, Y0 + 20), (X0 + 10, Y0 + 140)])
    kw = {"spacing_m": 20.0, "max_distance": 150.0, "resolution_m": 2.0}
    full = visibility_change(before, after, tr, UTM, edge, **kw).summary["gain_km2"]
    assert full > 0
    zero, shift = np.zeros_like(before), np.full_like(before, 37.5)
    g = gain_samples(before, after, tr, UTM, edge, [zero, shift], **kw)
    # the same definitions give the same gain (the summary's is rounded to 1e-4 km2); lifting
    # ground and observers alike changes none
    assert g[0] == pytest.approx(full, abs=6e-5)
    assert g[1] == g[0]
    # a rough offset on both dates moves what is seen, so the gain can move too
    rough = np.random.default_rng(0).normal(0, 3.0, before.shape).astype(np.float32)
    assert gain_samples(before, after, tr, UTM, edge, [rough], **kw)[0] != pytest.approx(full)
    with pytest.raises(Exception, match="offset"):
        gain_samples(before, after, tr, UTM, edge, [np.zeros((3, 3))], **kw)


def test_dem_offsets_have_the_dems_rmse_at_its_postings_and_are_smooth_between():
    grid = Grid(UTM, _tr(2.0, 300), 300, 300)
    dem_tr = _tr(30.0, 20)
    off = dem_offsets((20, 20), dem_tr, UTM, grid, 1.2, 40, seed=3)
    assert len(off) == 40 and off[0].shape == (300, 300)
    again = dem_offsets((20, 20), dem_tr, UTM, grid, 1.2, 2, seed=3)
    assert np.array_equal(off[1], again[1])
    stack = np.stack(off)
    # at a posting (a 30 m cell's centre, 2 m cell 7 of 15) the error is the drawn one
    at_posts = stack[:, 7 + 15 * np.arange(2, 18)][:, :, 7 + 15 * np.arange(2, 18)]
    assert np.sqrt(np.mean(at_posts**2)) == pytest.approx(1.2, rel=0.1)
    # neighbouring 2 m cells share it (bilinear between postings): correlated at the DEM's
    # cell size, not independent per analysis cell
    step = np.abs(np.diff(stack[:, 30:270, 30:270], axis=2))
    assert np.sqrt(np.mean(step**2)) < 0.25


def _scene(tmp_path, with_dem: bool):
    """A 0.5 m image grid, houses in a ring around a core square, a 30 m DEM."""
    n = 480
    grid = Grid(UTM, _tr(0.5, n), n, n)
    rng = np.random.default_rng(5)
    geoms, ids = [], []
    for k in range(60):
        x, y = X0 + rng.uniform(10, 220), Y0 + rng.uniform(10, 220)
        if X0 + 90 < x < X0 + 150 and Y0 + 90 < y < Y0 + 150:
            continue
        geoms.append(box(x, y, x + rng.uniform(6, 14), y + rng.uniform(6, 14)))
        ids.append(k)
    fp = gpd.GeoDataFrame(
        {"id": ids, "height": rng.uniform(4, 12, len(ids))}, geometry=geoms, crs=UTM
    )
    fp["damage"] = np.where(np.arange(len(fp)) % 4 == 0, "destroyed", "none")
    dem = None
    if with_dem:
        dem = tmp_path / "dem.tif"
        z = rng.normal(100, 2, (8, 8)).astype(np.float32)
        prof = {"driver": "GTiff", "width": 8, "height": 8, "count": 1, "dtype": "float32"}
        with rasterio.open(dem, "w", crs=UTM, transform=_tr(30.0, 8), **prof) as ds:
            ds.write(z, 1)
    core = box(X0 + 95, Y0 + 95, X0 + 145, Y0 + 145)
    return grid, fp, dem, core


@pytest.mark.parametrize("with_dem", [True, False])
def test_run_visibility_gives_an_interval_only_with_a_dem(tmp_path, with_dem):
    grid, fp, dem, core = _scene(tmp_path, with_dem)
    _, s = run_visibility(
        grid, tmp_path, dsm_before=None, dsm_after=None, dem=dem, buildings=fp,
        edge_file=None, core=core, fortifications=[], dates={}, max_distance=150.0,
        dem_accuracy_m=1.5, dem_draws=6,
    )  # fmt: skip
    assert "gain_km2" in s
    if with_dem:
        assert s["gain_km2_low"] <= s["gain_km2_high"]
        assert s["gain_interval"]["draws"] == 6 and s["gain_interval"]["dem_accuracy_m"] == 1.5
        assert "percentile" in s["gain_interval"]["method"]
    else:
        assert "gain_km2_low" not in s and "flat ground" in s["gain_interval"]["method"]
    _, s0 = run_visibility(
        grid, tmp_path, dsm_before=None, dsm_after=None, dem=dem, buildings=fp,
        edge_file=None, core=core, fortifications=[], dates={}, max_distance=150.0,
        dem_accuracy_m=0.0,
    )  # fmt: skip
    assert "gain_km2_low" not in s0 and s0["gain_km2"] == s["gain_km2"]


def test_razed_footprints_in_cleared_ground_leave_no_debris():
    grid = Grid(UTM, _tr(2.0, 40), 40, 40)
    fp = gpd.GeoDataFrame(
        {"id": [1, 2], "height": [6.0, 6.0]},
        geometry=[box(X0 + 10, Y0 + 10, X0 + 20, Y0 + 20), box(X0 + 50, Y0 + 50, X0 + 60, Y0 + 60)],
        crs=UTM,
    )
    cleared = box(X0 + 40, Y0 + 40, X0 + 75, Y0 + 75)
    z = build_surface(grid, fp, razed_ids={1, 2}, razed_debris_m=1.0, bare=cleared)
    c, r = ~grid.transform @ (X0 + 15, Y0 + 15)
    assert z[int(r), int(c)] == pytest.approx(1.0)
    c, r = ~grid.transform @ (X0 + 55, Y0 + 55)
    assert z[int(r), int(c)] == 0.0
    # through footprint_surfaces, with the cleared areas as analyze writes them
    image = Grid(UTM, _tr(0.5, 160), 160, 160)
    layer = gpd.GeoDataFrame({"kind": ["cleared"]}, geometry=[cleared], crs=UTM)
    _, za, cg, info = footprint_surfaces(image, fp, {1, 2}, cleared=layer, debris_m=1.0)
    assert cg == coarse_grid(image, VISIBILITY_RES_M)[0] and info["cleared_areas"] == 1
    assert za.max() == pytest.approx(1.0) and za[int(r), int(c)] == 0.0
