"""Cleared land tile by tile against the whole-scene path."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from affine import Affine

from fortmap.detect.change_stats import median_np
from fortmap.detect.cleared import BLOCK_FIELDS, ClearedLevels, extract_cleared
from fortmap.detect.cleared_tiles import (
    cleared_from_grid,
    levels_from_histograms,
    median_of_counts,
)
from fortmap.io.scene_grid import SceneGrid

T = Affine(2.0, 0, 500000.0, 0, -2.0, 4000000.0)


def _scene(seed: int, h: int = 150, w: int = 170) -> np.ndarray:
    """float16 block statistics with clearings of several shapes: one crossing tiles, a ring
    around a hole, one at the scene's edge, one too small, invalid blocks inside one."""
    rng = np.random.default_rng(seed)
    s = np.zeros((len(BLOCK_FIELDS), h, w), np.float32)
    s[0] = 1.0
    s[2] = 0.02 + 0.02 * rng.random((h, w))
    s[3] = 0.1 + 0.02 * rng.random((h, w))
    s[4] = 0.1 + 0.02 * rng.random((h, w))
    region = np.zeros((h, w), bool)
    region[20:70, 30:120] = True  # crosses tile seams
    yy, xx = np.mgrid[:h, :w]
    ring = np.hypot(yy - 110, xx - 60)
    region |= (ring < 30) & (ring > 12)  # a ring: its hole is filled
    region[100:150, 140:170] = True  # at the scene's corner
    region[5:12, 150:158] = True  # too small
    # an L shape whose arms meet in another tile
    region[80:140, 100:110] = True
    region[130:140, 100:135] = True
    n = int(region.sum())
    s[1][region] = 0.6 + 0.4 * rng.random(n)
    s[2][region] = 0.4 + 0.2 * rng.random(n)
    s[4][region] = 0.02
    s[0][40:45, 60:66] = 0.0  # invalid blocks inside the first area
    s[0][-3:, :] = 0.2
    return s.astype(np.float16)


def _grid(stats: np.ndarray, tmp_path, in_memory: bool) -> SceneGrid:
    g = SceneGrid(stats.shape, np.float16, tmp_path, 1 << 30 if in_memory else 0)
    g.write(0, 0, stats)
    return g


def _same(a: list, b: list) -> None:
    assert len(a[0]) == len(b[0]) > 0
    key = lambda p: (round(p.bounds[1], 3), round(p.bounds[0], 3))  # noqa: E731
    oa = sorted(range(len(a[0])), key=lambda i: key(a[0][i]))
    ob = sorted(range(len(b[0])), key=lambda i: key(b[0][i]))
    for i, j in zip(oa, ob, strict=True):
        pa, pb = a[0][i], b[0][j]
        assert shapely.equals_exact(shapely.normalize(pa), shapely.normalize(pb), tolerance=1e-6)
        assert a[1][i] == pytest.approx(b[1][j], abs=1e-12)
        assert a[2][i] == b[2][j]


@pytest.mark.parametrize(("tile", "in_memory"), [(64, True), (50, False), (37, True)])
def test_tiles_find_the_whole_scene_areas(tile, in_memory, tmp_path):
    stats = _scene(1)
    whole = extract_cleared(stats.astype(np.float32), T, 2.0, 0.25)
    # the ring, the corner, the L and the crossing area; the small one is dropped
    assert len(whole[0]) == 4
    with _grid(stats, tmp_path, in_memory) as g:
        tiled = cleared_from_grid(g, T, 2.0, 0.25, tile=tile)
    _same(whole, tiled)
    # the ring's hole is filled on both paths
    ring = [p for p in tiled[0] if p.contains(shapely.Point(T @ (60, 110)))]
    assert len(ring) == 1 and not list(ring[0].interiors)


def test_one_tile_is_the_whole_scene_path(tmp_path):
    stats = _scene(2)
    whole = extract_cleared(stats.astype(np.float32), T, 2.0, 0.25)
    with _grid(stats, tmp_path, False) as g:
        one = cleared_from_grid(g, T, 2.0, 0.25, tile=1024)
    assert [p.wkb for p in one[0]] == [p.wkb for p in whole[0]] and one[1:] == whole[1:]


def test_no_valid_block_finds_nothing(tmp_path):
    stats = np.zeros((len(BLOCK_FIELDS), 80, 90), np.float16)
    with _grid(stats, tmp_path, True) as g:
        assert cleared_from_grid(g, T, 2.0, 0.5, tile=32) == ([], [], [])


@pytest.mark.parametrize("n", [1, 2, 7, 1000, 1001])
def test_levels_from_histograms_are_the_medians(n):
    rng = np.random.default_rng(n)
    d = (rng.gamma(2.0, 0.1, n)).astype(np.float16)
    t = (rng.random(n) * 3).astype(np.float16)
    hd = np.bincount(d.view(np.uint16), minlength=65536)
    ht = np.bincount(t.view(np.uint16), minlength=65536)
    assert levels_from_histograms(hd, ht) == ClearedLevels.from_values(
        d.astype(np.float32), t.astype(np.float32)
    )
    vals = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32)
    assert median_of_counts(vals, hd) == median_np(d.astype(np.float32))
