"""Roads rasterised into a window (``roadmask``): the vectorised paths against plain references."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from rasterio.features import rasterize

from fortmap.detect.roadmask import own_axes, roads_in_window


def _own_axes_reference(rows: np.ndarray, cols: np.ndarray) -> tuple[float, float, float]:
    # the moments and np.percentile's extents, as own_axes was first written
    x = np.c_[cols, rows].astype(float)
    x -= x.mean(axis=0)
    if len(x) < 3:
        return 0.0, float(len(x)), 1.0
    _, vec = np.linalg.eigh(x.T @ x)
    major, minor = vec[:, 1], vec[:, 0]
    pm, pn = x @ major, x @ minor
    length = float(np.diff(np.percentile(pm, (1, 99)))[0]) + 1
    thick = float(np.diff(np.percentile(pn, (5, 95)))[0]) + 1
    return float(np.arctan2(major[1], major[0])), length, thick


@pytest.mark.parametrize("seed", range(6))
def test_own_axes_equals_numpy_percentiles_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    for n in [1, 2, 3, 4, 5, 11, 21, 101, 150, 997, 2500]:
        rows = rng.integers(0, 400, n)
        cols = (rows * rng.normal() + rng.integers(0, 30, n)).astype(int)
        assert own_axes(rows, cols) == _own_axes_reference(rows, cols)
        # a straight one-pixel row: the thickness percentiles all fall on one value
        assert own_axes(np.full(n, 7), np.arange(n)) == _own_axes_reference(
            np.full(n, 7), np.arange(n)
        )


def test_own_axes_of_a_bar():
    rows, cols = np.mgrid[0:4, 0:50]
    phi, length, thick = own_axes(rows.ravel(), cols.ravel())
    assert abs(np.sin(phi)) < 1e-9  # along the columns
    assert 48 <= length <= 51 and 3 <= thick <= 5


def _roads_in_window_reference(roads_px, shape, margin_px):
    # one road at a time, majors last, as roads_in_window first burnt them
    h, w = shape
    n = len(roads_px)
    widths = roads_px["width_px"].to_numpy(float)
    classes = [str(v) for v in roads_px["road_class"]]
    pad = margin_px + float(widths.max())
    box = shapely.box(-pad, -pad, w + pad, h + pad)
    order = sorted(range(n), key=lambda i: classes[i] == "major")
    geoms = roads_px.geometry.to_numpy()
    polys, angle, road, start = [], [], [], []
    for i in order:
        line = geoms[i]
        if line is None or line.is_empty or not line.intersects(box):
            continue
        xy = shapely.get_coordinates(line)
        segs = shapely.linestrings(np.stack([xy[:-1], xy[1:]], axis=1))
        keep = np.flatnonzero((shapely.length(segs) != 0) & shapely.intersects(segs, box))
        polys.extend(shapely.buffer(segs[keep], widths[i] / 2 + margin_px, quad_segs=4))
        a, b = xy[keep], xy[keep + 1]
        angle.extend(np.arctan2(b[:, 1] - a[:, 1], b[:, 0] - a[:, 0]))
        start.extend(a)
        road.extend([i] * keep.size)
    shapes = zip(polys, range(1, len(polys) + 1), strict=True)
    seg = rasterize(shapes, out_shape=shape, dtype="int32")
    on = np.flatnonzero(seg)
    k = seg.ravel()[on] - 1
    road_id = np.zeros(shape, np.int32)
    road_id.ravel()[on] = np.asarray(road)[k] + 1
    ang = np.asarray(angle)[k]
    rows, cols = np.divmod(on, w)
    x0, y0 = np.asarray(start)[k].T
    across = np.full(shape, np.nan, np.float32)
    across.ravel()[on] = (
        -(cols + 0.5 - x0) * np.sin(ang) + (rows + 0.5 - y0) * np.cos(ang)
    ).astype(np.float32)
    return road_id, across


def test_roads_in_window_burns_like_one_road_at_a_time():
    rng = np.random.default_rng(3)
    lines = [
        shapely.LineString(rng.uniform(-40, 240, (int(rng.integers(2, 7)), 2))) for _ in range(30)
    ]
    # a multi-line, an empty line, a repeated vertex (a zero-length segment), a far road
    lines[0] = shapely.MultiLineString([lines[0], lines[1]])
    lines[2] = shapely.LineString()
    xy = shapely.get_coordinates(lines[3])
    lines[3] = shapely.LineString(np.r_[xy[:1], xy])
    lines[4] = shapely.LineString([(5000, 5000), (5100, 5000)])
    frame = gpd.GeoDataFrame(
        {
            "width_px": rng.uniform(4, 30, len(lines)),
            "road_class": rng.choice(["major", "minor"], len(lines)),
            "name": [f"r{i}" for i in range(len(lines))],
        },
        geometry=lines,
    )
    rr = roads_in_window(frame, (200, 230), 2.0)
    road_id, across = _roads_in_window_reference(frame, (200, 230), 2.0)
    assert rr.mask.sum() > 0.2 * rr.mask.size
    np.testing.assert_array_equal(rr.road_id, road_id)
    np.testing.assert_array_equal(rr.across, across)
    assert rr.names == [f"r{i}" for i in range(len(lines))]
    # majors are burnt last: a major's own pixels never go to a minor
    major = np.flatnonzero(frame["road_class"].to_numpy() == "major") + 1
    assert np.isin(rr.road_id, major).sum() > 0


def test_roads_in_window_without_roads_in_reach():
    frame = gpd.GeoDataFrame(
        {"width_px": [6.0], "road_class": ["minor"]},
        geometry=[shapely.LineString([(500, 500), (600, 500)])],
    )
    rr = roads_in_window(frame, (40, 50), 2.0)
    assert not rr.mask.any() and np.isnan(rr.axis).all()
