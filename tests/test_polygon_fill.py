"""``polygon_fill.burn_polygons`` against ``rasterio.features.rasterize`` (GDAL), pixel for pixel."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from rasterio.features import rasterize

from fortmap.io.grids import rasterize_shapes
from fortmap.io.polygon_fill import burn_polygons


def _gdal(geoms, values, shape, dtype="int32"):
    return rasterize(
        rasterize_shapes(np.asarray(geoms, object), values), out_shape=shape, dtype=dtype
    )


def _random_polygons(rng, n, h, w, snap):
    out = []
    for _ in range(n):
        kind = rng.integers(4)
        cx, cy = rng.uniform(-10, w + 10), rng.uniform(-10, h + 10)
        if kind == 0:  # a buffered segment, as roads are burnt
            d = rng.uniform(-30, 30, 2)
            line = shapely.LineString([(cx, cy), (cx + d[0], cy + d[1])])
            g = line.buffer(rng.uniform(0.3, 6), quad_segs=4)
        elif kind == 1:  # a box, possibly with a hole
            a, b = rng.uniform(0.2, 25, 2)
            g = shapely.box(cx, cy, cx + a, cy + b)
            if a > 4 and b > 4 and rng.random() < 0.5:
                hole = shapely.box(cx + 1, cy + 1, cx + a - 1, cy + b - 1)
                g = shapely.Polygon(g.exterior, [hole.exterior])
        else:  # a star: concave, many crossings per row
            k = int(rng.integers(3, 12))
            t = np.sort(rng.uniform(0, 2 * np.pi, k))
            r = rng.uniform(0.5, 20, k)
            g = shapely.Polygon(np.c_[cx + r * np.cos(t), cy + r * np.sin(t)])
            if not g.is_valid:
                g = g.convex_hull
        if snap:
            # vertices on pixel centres and corners: the ties of the half-open rules
            g = shapely.transform(g, lambda c: np.round(c * 2) / 2)
            g = g if g.is_valid else g.buffer(0)
        if g.geom_type == "Polygon" and not g.is_empty:
            # either orientation of each ring: GDAL walks them all clockwise
            flip = rng.random(1 + len(g.interiors)) < 0.5
            ext = g.exterior.coords[:: -1 if flip[0] else 1]
            holes = [
                r.coords[:: -1 if f else 1] for r, f in zip(g.interiors, flip[1:], strict=True)
            ]
            out.append(shapely.Polygon(ext, holes))
    return out


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("snap", [False, True])
def test_burn_polygons_equals_gdal(seed, snap):
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(1, 90)), int(rng.integers(1, 90))
    geoms = _random_polygons(rng, 60, h, w, snap)
    values = np.arange(1, len(geoms) + 1)
    got = burn_polygons(np.asarray(geoms, object), values, (h, w))
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, _gdal(geoms, values.tolist(), (h, w)))


def test_burn_polygons_horizontal_edges_on_pixel_centres():
    # edges exactly on y + 0.5 lines and vertices on x + 0.5: GDAL's special cases
    geoms = [
        shapely.box(1.5, 1.5, 6.5, 4.5),
        shapely.Polygon([(0.5, 5.5), (8.5, 5.5), (4.5, 9.5)]),
        shapely.Polygon([(2.5, 12.5), (6.5, 9.5), (9.5, 12.5), (6.5, 12.5), (6.5, 11.5)]),
        shapely.box(-3.5, -2.5, 0.5, 0.5),
        shapely.box(9.5, 0.5, 13.5, 3.5),
    ]
    values = [3, 5, 7, 9, 11]
    got = burn_polygons(np.asarray(geoms, object), np.array(values), (13, 12))
    np.testing.assert_array_equal(got, _gdal(geoms, values, (13, 12)))
    assert got.any()


@pytest.mark.parametrize("flip", [False, True])
def test_burn_polygons_hole_edges_on_pixel_centres(flip):
    # a hole's top edge on a row's centre line leaves that row filled, whichever way its
    # rings run; an exterior's bottom edge there leaves its row empty
    ext = [(1, 0.5), (10, 0.5), (10, 8.5), (1, 8.5)]
    hole = [(3.5, 2.5), (8.5, 2.5), (8.5, 6.5), (3.5, 6.5)]
    if flip:
        ext, hole = ext[::-1], hole[::-1]
    g = shapely.Polygon(ext, [hole])
    got = burn_polygons(np.asarray([g], object), np.array([1]), (10, 12))
    np.testing.assert_array_equal(got, _gdal([g], [1], (10, 12)))
    assert got[2, 1:10].all() and not got[3:6, 4:8].any() and not got[8].any()


def test_burn_polygons_later_overwrites_and_outside_and_empty():
    a, b = shapely.box(0, 0, 10, 10), shapely.box(5, 5, 15, 15)
    far = shapely.box(100, 100, 110, 110)
    got = burn_polygons(np.asarray([a, b, far], object), np.array([1, 2, 3]), (12, 12))
    np.testing.assert_array_equal(got, _gdal([a, b, far], [1, 2, 3], (12, 12)))
    assert got[7, 7] == 2 and got[2, 2] == 1 and not (got == 3).any()
    assert not burn_polygons(np.asarray([], object), np.array([], int), (4, 5)).any()


def test_burn_polygons_falls_back_for_other_geometries():
    # a multi-polygon fills all its rings together in GDAL: left to rasterio
    m = shapely.MultiPolygon([shapely.box(0, 0, 4, 4), shapely.box(2, 2, 6, 6)])
    p = shapely.box(1, 5, 7, 8)
    geoms = np.asarray([m, p], object)
    got = burn_polygons(geoms, np.array([4, 6]), (9, 9))
    np.testing.assert_array_equal(got, _gdal(geoms, [4, 6], (9, 9)))
    with pytest.raises(AssertionError):
        # the check can fail: a different burn order gives a different raster
        np.testing.assert_array_equal(got, _gdal(geoms[::-1], [6, 4], (9, 9)))
