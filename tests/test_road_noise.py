"""Scene-wide noise of the block contrasts: measured once, the same for every window."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from affine import Affine

from fortmap.detect.barricades import block_change
from fortmap.detect.road_noise import (
    MAX_TILES,
    SPACING_PX,
    TILE_HALO_PX,
    TILE_PX,
    TILES_ACROSS,
    RoadNoise,
    noise_samples,
    sample_tiles,
    scene_road_noise,
    shade_samples,
)
from fortmap.detect.road_window import RoadWindow, deep_shade_contrast, robust_sigma
from fortmap.detect.roadmask import roads_in_window

GSD = 0.5
PIXEL_NOISE = 0.015


def _street(width: int = 600, rough_from: int | None = None, seed: int = 0):
    """A ``width`` px long horizontal 12 m road, a row of blocks at x = 150 px, and from
    ``rough_from`` px on a road surface four times noisier on both dates (zero mean)."""
    rng = np.random.default_rng(seed)
    shape = (200, width)
    road = gpd.GeoDataFrame(
        {"name": ["Main"], "road_class": ["major"], "width_px": [24.0]},
        geometry=[shapely.LineString([(0, 100), (width, 100)])],
    )
    rr = roads_in_window(road, shape, 2.0)
    base = np.where(rr.carriageway, 0.25, 0.55).astype(np.float32)
    sd = np.full(shape, PIXEL_NOISE, np.float32)
    if rough_from is not None:
        sd[:, rough_from:] *= 4
    before = base + (rng.normal(0, 1, shape) * sd).astype(np.float32)
    after = base + (rng.normal(0, 1, shape) * sd).astype(np.float32)
    for i in range(5):
        y0 = 91 + i * 4
        after[y0 : y0 + 3, 149:152] = 0.8
    return before[None], after[None], np.ones(shape, bool), rr, road


def _row_contrast(b, a, v, road, width: int, noise: RoadNoise | None) -> float:
    """Median contrast of the blocks' pixels, the window being the first ``width`` columns."""
    rr = roads_in_window(road, (200, width), 2.0)
    b, a, v = b[:, :, :width], a[:, :, :width], v[:, :width]
    ch = block_change(b, a, v, rr, GSD, noise=noise)
    return float(np.median(ch.contrast[91:110, 149:152][ch.grow[91:110, 149:152]]))


def test_noise_samples_measure_the_pixel_noise_of_a_change() -> None:
    b, a, v, rr, _ = _street()
    rw = RoadWindow.build(b, a, v, rr)
    d, along = noise_samples(rw, GSD, (0, 0, 600, 200))
    # after less before of two independent noises: sqrt(2) x the pixel noise
    want = np.sqrt(2) * PIXEL_NOISE
    assert abs(robust_sigma(d, 0.0) / want - 1) < 0.15
    # against the median of a few samples ahead and behind: a little more
    assert 1.0 < robust_sigma(along, 0.0) / want < 1.5
    # only the core's pixels count
    d2, _ = noise_samples(rw, GSD, (0, 0, 300, 200))
    assert 0.4 < d2.size / d.size < 0.6


def test_a_row_scores_the_same_whatever_the_window_with_the_scene_noise() -> None:
    b, a, v, _, road = _street(rough_from=350)
    small, large = 320, 600  # the latter reaches the rough road
    own = [_row_contrast(b, a, v, road, w, None) for w in (small, large)]
    # measured on the window, the rough road beyond the row lowers its score
    assert own[1] < 0.8 * own[0]
    noise = RoadNoise(road=0.03, along=0.03, n_px=1000)
    fixed = [_row_contrast(b, a, v, road, w, noise) for w in (small, large)]
    assert abs(fixed[1] / fixed[0] - 1) < 0.05


def test_sample_tiles_lie_in_the_scene_on_a_fixed_lattice() -> None:
    t = Affine(0.5, 0, 412_000.0, 0, -0.5, 3_987_000.0)
    tiles = sample_tiles(2000, 1500, t)
    assert 4 <= len(tiles) <= MAX_TILES
    step = min(np.diff(sorted({w.col_off for w in tiles})))
    assert step >= SPACING_PX
    for w in tiles:
        assert 0 <= w.col_off and w.col_off + w.width <= 2000
        assert 0 <= w.row_off and w.row_off + w.height <= 1500
        # on the lattice of the CRS's coordinates: corners at multiples of the spacing
        x, y = t @ (w.col_off, w.row_off)
        assert x / 0.5 % step == 0 and y / 0.5 % step == 0
    assert sample_tiles(2000, 1500, t) == tiles
    # a city's sample is no larger than a district's
    assert len(sample_tiles(40_000, 30_000, t)) <= MAX_TILES
    # a scene smaller than a tile is one tile, the whole scene
    (only,) = sample_tiles(100, 80, t)
    assert (only.col_off, only.row_off, only.width, only.height) == (0, 0, 100, 80)
    # without a transform, or with no tile of the lattice inside: spread evenly
    assert len(sample_tiles(2000, 1500)) == TILES_ACROSS**2


@pytest.mark.parametrize("cut", [(0, 0, 300, 300), (300, 212, 0, 0), (137, 512, 64, 5)])
def test_a_crop_keeps_the_sample_tiles_it_holds(cut: tuple[int, int, int, int]) -> None:
    """Cut ``left, top, right, bottom`` pixels off a scene: the crop's tiles are the scene's
    tiles that lie wholly in it, at the same places on the ground (these crops keep the
    whole scene's spacing: a much smaller one may be sampled more densely)."""
    t = Affine(0.5, 0, 412_000.0, 0, -0.5, 3_987_000.0)
    left, top, right, bottom = cut
    w, h = 2000 - left - right, 2000 - top - bottom
    crop = sample_tiles(w, h, t @ Affine.translation(left, top))
    whole = sample_tiles(2000, 2000, t)
    held = [
        (c.col_off - left, c.row_off - top)
        for c in whole
        if c.col_off >= left and c.row_off >= top
        and c.col_off + c.width <= left + w and c.row_off + c.height <= top + h
    ]  # fmt: skip
    assert [(c.col_off, c.row_off) for c in crop] == held
    assert len(held) >= 4


def _shaded_street(dark_from: int, seed: int = 1):
    """``_street`` with the road from ``dark_from`` px on in deep shade on both dates (a tenth
    of its sunlit level, the texture scaled down with it), the blocks left sunlit."""
    b, a, v, rr, road = _street(seed=seed)
    for img in (b, a):
        img[0, :, dark_from:] = np.where(
            rr.carriageway[:, dark_from:], img[0, :, dark_from:] * 0.1, img[0, :, dark_from:]
        )
    return b, a, v, rr, road


def test_shade_samples_are_the_deep_shade_contrasts_changes_on_the_core() -> None:
    b, a, v, rr, _ = _shaded_street(dark_from=300)
    rw = RoadWindow.build(b, a, v, rr)
    own = deep_shade_contrast(rw, GSD, 0.02, 0.0)
    assert own is not None
    x = shade_samples(rw, GSD, 0.02, (0, 0, 600, 200))
    # the window's own noise is that of these samples
    assert abs(robust_sigma(x, 0.0) / own[2] - 1) < 1e-6
    # only road in shade counts, and only in the core
    assert x.size < 0.6 * rw.rows.size
    assert shade_samples(rw, GSD, 0.02, (0, 0, 300, 200)).size < 0.05 * x.size


def test_a_scene_shade_noise_replaces_the_windows() -> None:
    b, a, v, rr, _ = _shaded_street(dark_from=300)
    rw = RoadWindow.build(b, a, v, rr)
    own = deep_shade_contrast(rw, GSD, 0.02, 0.0)
    given = deep_shade_contrast(rw, GSD, 0.02, 0.0, sigma=2 * own[2])
    assert given[2] == 2 * own[2]
    k = own[0] != 0
    assert np.allclose(given[0][k], own[0][k] / 2, rtol=1e-5)
    # the floor still holds
    assert deep_shade_contrast(rw, GSD, 0.02, 0.5, sigma=0.01)[2] == 0.5


def _write_scene(path, data: np.ndarray, transform: Affine) -> None:
    import rasterio

    with rasterio.open(
        path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
        dtype="uint8", crs="EPSG:32635", transform=transform,
    ) as dst:  # fmt: skip
        dst.write(data)


def test_a_crop_holding_the_same_tiles_measures_the_same_noise(tmp_path) -> None:
    """``scene_road_noise`` through real GeoTIFFs: cut a scene's right and bottom edges, away
    from every tile and its halo, and the noise is the same; cut its top and left, and the
    tiles still lie where they were on the ground."""
    from shapely.affinity import affine_transform

    from fortmap.io.grids import analysis_grid
    from fortmap.io.raster import GridReader, open_info

    rng = np.random.default_rng(3)
    n = 1400
    t = Affine(0.5, 0, 385_445.0, 0, -0.5, 6_671_801.0)
    xs, ys = np.meshgrid(np.arange(n), np.arange(n))
    # a 10 m street every 150 m across and down, on a noisy ground; some change on the streets
    road = (xs % 300 < 20) | (ys % 300 < 20)
    base = np.where(road, 90.0, 140.0)
    before = base + rng.normal(0, 6, (n, n))
    after = base + rng.normal(0, 6, (n, n)) + np.where(rng.random((n, n)) < 0.01, 60, 0)
    imgs = [np.clip(np.repeat(x[None], 3, 0), 0, 255).astype(np.uint8) for x in (before, after)]
    lines = [shapely.LineString([(c + 10, 0), (c + 10, n)]) for c in range(0, n, 300)]
    lines += [shapely.LineString([(0, r + 10), (n, r + 10)]) for r in range(0, n, 300)]
    roads = gpd.GeoDataFrame(
        {"width_m": [10.0] * len(lines)},
        geometry=[affine_transform(g, [t.a, t.b, t.d, t.e, t.c, t.f]) for g in lines],
        crs="EPSG:32635",
    )

    def noise(left: int, top: int, right: int, bottom: int) -> RoadNoise:
        sl = (slice(None), slice(top, n - bottom), slice(left, n - right))
        tt = t @ Affine.translation(left, top)
        paths = [tmp_path / f"{k}_{left}_{top}_{right}_{bottom}.tif" for k in ("b", "a")]
        for p, img in zip(paths, imgs, strict=True):
            _write_scene(p, img[sl], tt)
        grid = analysis_grid(open_info(paths[0]))
        b, a = (GridReader(p, grid) for p in paths)
        tiles = sample_tiles(grid.width, grid.height, grid.transform)
        out = scene_road_noise(b, a, grid.transform, grid.width, grid.height, roads, 0.5, 0.005)
        return out, [(grid.transform @ (w.col_off, w.row_off)) for w in tiles], tiles

    whole, at, tiles = noise(0, 0, 0, 0)
    # cut the right and bottom edges up to 20 px past the last tiles' halos (64 px)
    right = n - max(w.col_off for w in tiles) - TILE_PX - TILE_HALO_PX - 20
    bottom = n - max(w.row_off for w in tiles) - TILE_PX - TILE_HALO_PX - 20
    assert right > 0 and bottom > 0
    same, at_cut, _ = noise(0, 0, right, bottom)
    assert at_cut == at and same == whole
    # cut off the top and left: the tiles it holds are the whole scene's, on the ground
    moved, at_moved, _ = noise(200, 150, 0, 0)
    assert at_moved and set(at_moved) <= set(at)
    assert abs(moved.road / whole.road - 1) < 0.1
