"""Unit-step points along lines equal shapely's (GEOS's) interpolated points, bit for bit."""

from __future__ import annotations

import numpy as np
import shapely

from fortmap.detect.line_kernels import points_at_steps


def _reference(parts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    steps = [np.arange(0, ln + 1e-9, 1.0) for ln in shapely.length(parts)]
    n = np.array([len(s) for s in steps], np.int64)
    pts = shapely.line_interpolate_point(np.repeat(parts, n), np.concatenate(steps))
    return shapely.get_coordinates(pts), n


def test_points_at_unit_steps_equal_geos_bit_for_bit():
    rng = np.random.default_rng(7)
    for t in range(60):
        lines = []
        for _ in range(15):
            k = int(rng.integers(2, 12))
            if t % 2:  # pixel staircases, as skeleton paths are
                c = np.cumsum(rng.integers(-3, 4, (k, 2)), 0) + 0.5
            else:
                c = rng.random((k, 2)) * 50
            if t % 5 == 0:
                c[1] = c[0]  # a segment of length 0
            lines.append(shapely.LineString(c))
        parts = np.array([ln for ln in lines if ln.length > 0], dtype=object)
        if t % 3 == 0:
            parts = shapely.simplify(parts, 1.0)
        ref, n = _reference(parts)
        xy, which = shapely.get_coordinates(parts, return_index=True)
        got = points_at_steps(xy, np.cumsum(np.bincount(which, minlength=len(parts))), n)
        assert np.array_equal(got.view(np.uint64), ref.view(np.uint64))


def test_points_past_the_end_are_the_last_vertex():
    xy = np.array([[0.5, 0.5], [3.5, 0.5]])
    got = points_at_steps(xy, np.array([2]), np.array([6]))
    assert got[:, 0].tolist() == [0.5, 1.5, 2.5, 3.5, 3.5, 3.5]
