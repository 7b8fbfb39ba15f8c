"""Footprints burned as a fine DSM resampled with the maximum, and crown radii across the sun."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import shapely
from affine import Affine
from rasterio import features
from rasterio.crs import CRS
from scipy import ndimage as ndi

from fortmap.analyze.surface import build_surface
from fortmap.detect.canopy import _across_radius
from fortmap.types import Grid

UTM = CRS.from_epsg(32637)


def _grid(width: int, height: int, cell: float = 2.0) -> Grid:
    return Grid(UTM, Affine(cell, 0, 500_000.0, 0, -cell, 4_000_000.0), width, height)


def _fine_max(fp: gpd.GeoDataFrame, grid: Grid, s: int) -> np.ndarray:
    """What a DSM on cells ``s`` times finer, resampled with the maximum, holds."""
    order = np.argsort(fp["height"].to_numpy(), kind="stable")
    fine = features.rasterize(
        zip(fp.geometry.to_numpy()[order], fp["height"].to_numpy()[order], strict=True),
        out_shape=(grid.height * s, grid.width * s),
        transform=grid.transform @ Affine.scale(1.0 / s),
        dtype="float32",
    )
    return fine.reshape(grid.height, s, grid.width, s).max(axis=(1, 3))


def _houses(grid: Grid, n: int, seed: int = 0) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    x0, y1 = grid.transform.c, grid.transform.f
    w, h = grid.width * grid.res[0], grid.height * grid.res[1]
    xs, ys = x0 + rng.uniform(0, w, n), y1 - rng.uniform(0, h, n)
    geoms = shapely.box(xs, ys, xs + rng.uniform(3, 25, n), ys + rng.uniform(3, 25, n))
    return gpd.GeoDataFrame(
        {"id": np.arange(n), "height": rng.uniform(3, 20, n)}, geometry=geoms, crs=UTM
    )


def test_supersampled_footprints_are_the_fine_dsm_resampled_with_the_maximum():
    # wide enough that the burn runs in several strips (about 4 M fine cells each)
    grid = _grid(2100, 300)
    fp = _houses(grid, 1500)
    z = build_surface(grid, fp, supersample=4)
    assert np.array_equal(z, _fine_max(fp, grid, 4))
    # all_touched raises every cell an edge grazes: more cells than the fine DSM has
    touched = build_surface(grid, fp, all_touched=True)
    assert ((touched > 0) & (z == 0)).sum() > 0.02 * (z > 0).sum()
    assert not ((z > 0) & (touched == 0)).any()


def test_supersampled_razed_footprints_leave_debris_and_overlaps_keep_the_taller():
    grid = _grid(40, 40)
    x0, y1 = grid.transform.c, grid.transform.f
    low = shapely.box(x0 + 10.3, y1 - 50.1, x0 + 40.7, y1 - 10.6)
    tall = shapely.box(x0 + 30.2, y1 - 30.9, x0 + 60.1, y1 - 20.2)
    fp = gpd.GeoDataFrame({"id": [1, 2], "height": [6.0, 15.0]}, geometry=[low, tall], crs=UTM)
    z = build_surface(grid, fp, supersample=4)
    assert np.array_equal(z, _fine_max(fp, grid, 4))
    assert z.max() == 15.0 and set(np.unique(z)) == {0.0, 6.0, 15.0}
    after = build_surface(grid, fp, razed_ids={2}, razed_debris_m=1.0, supersample=4)
    only_low = _fine_max(fp[fp["id"] == 1], grid, 4)
    debris = _fine_max(fp[fp["id"] == 2].assign(height=1.0), grid, 4)
    assert np.allclose(after, np.maximum(only_low, 0.0) + debris)


def _disc(r_px: float, holes: float = 0.0, seed: int = 0) -> np.ndarray:
    yy, xx = np.mgrid[-40:41, -40:41]
    disc = xx * xx + yy * yy <= r_px * r_px
    if holes:
        disc &= np.random.default_rng(seed).random(disc.shape) > holes
    return disc


def test_crown_radius_across_the_sun_survives_holes_in_the_mask():
    gsd, r_px = 0.5, 8.0
    crown = _disc(r_px, holes=0.08)
    lab, n = ndi.label(crown)
    lab[lab > 1] = 0  # the crown itself, not stray specks
    edt = ndi.distance_transform_edt(lab > 0) * gsd
    inscribed = np.asarray(ndi.maximum(edt, lab, np.arange(2)), float)
    # holes from leaf texture cut the inscribed radius well short of the crown's
    assert inscribed[1] < 0.6 * r_px * gsd
    az = math.radians(150.0)
    r = _across_radius(lab, 1, math.sin(az), -math.cos(az), inscribed, gsd)
    # but not its width across the sun (capped at twice the inscribed radius)
    assert r[1] == min(2 * inscribed[1], r[1]) and r[1] > 1.1 * inscribed[1]
    clean = _disc(r_px)
    lab2, _ = ndi.label(clean)
    edt2 = ndi.distance_transform_edt(clean) * gsd
    ins2 = np.asarray(ndi.maximum(edt2, lab2, np.arange(2)), float)
    r2 = _across_radius(lab2, 1, math.sin(az), -math.cos(az), ins2, gsd)
    assert abs(r2[1] - r_px * gsd) <= gsd


def test_a_groves_width_is_not_one_crowns_radius():
    gsd = 0.5
    row = np.zeros((30, 120), bool)
    for c in range(10, 110, 14):  # touching crowns in a row across a sun in the south
        yy, xx = np.mgrid[0:30, 0:120]
        row |= (yy - 15) ** 2 + (xx - c) ** 2 <= 49
    lab, n = ndi.label(row)
    assert n == 1
    edt = ndi.distance_transform_edt(row) * gsd
    ins = np.asarray(ndi.maximum(edt, lab, np.arange(2)), float)
    r = _across_radius(lab, 1, 0.0, 1.0, ins, gsd)
    assert r[1] == 2 * ins[1]


def _dem(path, data: np.ndarray, x0: float = 500_000.0, crs: str = "EPSG:32637"):
    import rasterio

    with rasterio.open(
        path, "w", driver="GTiff", width=data.shape[-1], height=data.shape[-2],
        count=1 if data.ndim == 2 else data.shape[0], dtype=data.dtype.name, crs=crs,
        transform=Affine(2.0, 0, x0, 0, -2.0, 4_000_000.0),
    ) as ds:  # fmt: skip
        ds.write(data if data.ndim == 3 else data[None])
    return path


def test_height_model_must_be_one_band(tmp_path):
    import pytest

    from fortmap.analyze.surface import check_heights
    from fortmap.errors import InputError

    rgb = _dem(tmp_path / "photo.tif", np.zeros((3, 20, 20), np.uint8))
    with pytest.raises(InputError, match=r"photo.tif: DEM has 3 bands"):
        check_heights(rgb, "DEM")
    one = _dem(tmp_path / "dem.tif", np.full((20, 20), 12.5, np.float32))
    assert check_heights(one, "DEM", _grid(10, 10)) == one
    grey = _dem(tmp_path / "grey.tif", np.full((20, 20), 120, np.uint8))
    with pytest.warns(UserWarning, match=r"grey.tif: DEM holds 8-bit integers"):
        check_heights(grey, "DEM")


def test_height_model_must_overlap_the_grid(tmp_path):
    import pytest

    from fortmap.analyze.surface import check_heights
    from fortmap.errors import NoOverlapError

    z = np.full((20, 20), 12.5, np.float32)
    far = _dem(tmp_path / "far.tif", z, x0=600_000.0)
    with pytest.raises(NoOverlapError, match=r"far.tif: before DSM does not overlap the images"):
        check_heights(far, "before DSM", _grid(10, 10))
    # another zone: placed on the globe, still elsewhere
    other = _dem(tmp_path / "other.tif", z, crs="EPSG:32619")
    with pytest.raises(NoOverlapError, match="does not overlap"):
        check_heights(other, "DEM", _grid(10, 10))
    # a DEM covering part of the grid is fine
    part = _dem(tmp_path / "part.tif", z, x0=500_010.0)
    assert check_heights(part, "DEM", _grid(10, 10)) == part
