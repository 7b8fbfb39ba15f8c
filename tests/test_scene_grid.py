"""The scene grid: the same values in memory and in its temporary file."""

from __future__ import annotations

import numpy as np
import pytest

from fortmap.io.scene_grid import SceneGrid, tiles


@pytest.mark.parametrize("limit", [0, 1 << 20])
def test_parts_written_are_read_back_clipped(limit, tmp_path):
    rng = np.random.default_rng(0)
    ref = np.zeros((2, 30, 40), np.float16)
    with SceneGrid((2, 30, 40), np.float16, tmp_path, limit) as g:
        assert g.in_memory == (limit > 0)
        for r0, c0 in ((0, 0), (25, 35), (10, 38), (29, 0)):
            part = rng.random((2, 8, 8)).astype(np.float32)
            g.write(r0, c0, part)
            h, w = min(8, 30 - r0), min(8, 40 - c0)
            ref[:, r0 : r0 + h, c0 : c0 + w] = part[:, :h, :w]
        assert np.array_equal(g.read(0, 0, 30, 40), ref)
        assert np.array_equal(g.read(5, 7, 20, 39, slice(1, 2)), ref[1:2, 5:20, 7:39])
        path = g.path
    # the file goes with the grid
    assert path is None or not path.exists()
    assert not list(tmp_path.iterdir())


def test_a_file_grid_keeps_no_mapping_between_calls(tmp_path):
    with SceneGrid((1, 64, 64), np.uint8, tmp_path, 0) as g:
        g.write(0, 0, np.ones((1, 64, 64), np.uint8))
        maps = open("/proc/self/maps").read()
        assert str(g.path) not in maps


def test_tiles_cover_the_grid_once():
    cover = np.zeros((23, 31), int)
    for (r0, c0, r1, c1), (q0, p0, q1, p1) in tiles((23, 31), 8, 3):
        cover[r0:r1, c0:c1] += 1
        assert (q0, p0) == (max(0, r0 - 3), max(0, c0 - 3))
        assert (q1, p1) == (min(23, r1 + 3), min(31, c1 + 3))
    assert (cover == 1).all()
