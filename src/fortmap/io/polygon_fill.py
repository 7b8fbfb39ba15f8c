"""Burn polygons into a raster by pixel centres, as GDAL's rasteriser does, in one compiled pass.

``rasterio.features.rasterize`` (no transform, ``all_touched=False``, merge ``replace``) hands
each shape to GDAL as a Python mapping, which GDAL turns into an OGR geometry before filling
it: for the hundreds of small polygons of a window (buffered road segments, footprints) that
conversion costs more than the fill. :func:`burn_polygons` reads the shapely polygons'
coordinates in one vectorised call and fills them with GDAL's own scan-line rule
(``GDALdllImageFilledPolygon`` of ``alg/llrasterize.cpp``): per pixel row ``y`` the edges
crossing ``y + 0.5`` (half-open in y; horizontal edges never count) give
crossings rounded by ``floor(x + 0.5)``, filled pairwise from the left crossing to one pixel
before the right one; later polygons overwrite earlier ones. Coordinates are pixels (x =
column, y = row), as with the identity transform.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import shapely
from rasterio.features import rasterize

from fortmap.io.grids import rasterize_shapes


def burn_polygons(
    geoms: np.ndarray,
    values: np.ndarray,
    shape: tuple[int, int],
    dtype: str = "int32",
) -> np.ndarray:
    """``rasterio.features.rasterize(zip(geoms, values), out_shape=shape, dtype=dtype)``.

    Args:
        geoms: shapely geometries (object array) in pixel coordinates of the raster.
        values: burn value per geometry (ints).
        shape: (rows, cols) of the raster.
        dtype: numpy dtype name of the raster (fill 0).

    Returns:
        The raster; non-empty Polygons are filled here, anything else (multi-parts, empty or
        other geometries) by rasterio, for the whole call.
    """
    arr = np.asarray(geoms, dtype=object).ravel()
    vals = np.asarray(values).ravel()
    plain = len(arr) > 0 and bool(np.all((shapely.get_type_id(arr) == 3) & ~shapely.is_empty(arr)))
    if not plain:
        if not len(arr):
            return np.zeros(shape, dtype)
        return rasterize(rasterize_shapes(arr, vals.tolist()), out_shape=shape, dtype=dtype)
    rings, owner = shapely.get_rings(arr, return_index=True)
    xy, ring_of = shapely.get_coordinates(rings, return_index=True)
    ring_start = np.zeros(len(rings) + 1, np.int64)
    np.cumsum(np.bincount(ring_of, minlength=len(rings)), out=ring_start[1:])
    poly_start = np.searchsorted(owner, np.arange(len(arr) + 1)).astype(np.int64)
    out = np.zeros(shape, dtype)
    _fill(
        out,
        np.ascontiguousarray(xy[:, 0]),
        np.ascontiguousarray(xy[:, 1]),
        ring_start,
        poly_start,
        vals.astype(out.dtype),
    )
    return out


@numba.njit(cache=True, nogil=True)
def _fill(out, xs, ys, ring_start, poly_start, values):  # pragma: no cover - compiled
    # GDAL's ``GDALdllImageFilledPolygon`` per polygon (its rings are the parts), with the
    # scan-line burn clipped to the raster as ``gvBurnScanline`` clips it.
    h, w = out.shape
    maxx = w - 1
    # GDAL's rings go clockwise (shoelace area < 0 in pixel coordinates) whatever their
    # orientation in the geometry: a counter-clockwise ring is walked backwards
    nr = ring_start.size - 1
    ccw = np.zeros(nr, np.bool_)
    for r in range(nr):
        s, e = ring_start[r], ring_start[r + 1]
        area = 0.0
        for i in range(s, e):
            i1 = e - 1 if i == s else i - 1
            area += xs[i1] * ys[i] - xs[i] * ys[i1]
        ccw[r] = area > 0
    ints = np.empty(max(ring_start[-1], 1), np.int64)
    for p in range(poly_start.size - 1):
        r0, r1 = poly_start[p], poly_start[p + 1]
        a, b = ring_start[r0], ring_start[r1]
        if b <= a:
            continue
        v = values[p]
        dminy = ys[a]
        dmaxy = ys[a]
        for i in range(a + 1, b):
            if ys[i] < dminy:
                dminy = ys[i]
            if ys[i] > dmaxy:
                dmaxy = ys[i]
        # C's (int) cast truncates toward zero
        miny = max(int(dminy), 0)
        maxy = min(int(dmaxy), h - 1)
        for y in range(miny, maxy + 1):
            dy = y + 0.5
            n = 0
            for r in range(r0, r1):
                s, e = ring_start[r], ring_start[r + 1]
                for i in range(s, e):
                    i1 = e - 1 if i == s else i - 1
                    dy1 = ys[i1]
                    dy2 = ys[i]
                    if (dy1 < dy and dy2 < dy) or (dy1 > dy and dy2 > dy):
                        continue
                    if dy1 < dy2:
                        dx1 = xs[i1]
                        dx2 = xs[i]
                    elif dy1 > dy2:
                        dy1, dy2 = dy2, dy1
                        dx2 = xs[i1]
                        dx1 = xs[i]
                    else:
                        # a horizontal edge on the line: those running right to left once
                        # the ring is clockwise are filled apart (the others are skipped)
                        if (xs[i1] > xs[i]) != ccw[r]:
                            hx1 = int(math.floor(min(xs[i], xs[i1]) + 0.5))
                            hx2 = int(math.floor(max(xs[i], xs[i1]) + 0.5))
                            if hx1 <= maxx and hx2 > 0:
                                _burn_run(out, y, hx1, hx2 - 1, v)
                        continue
                    if dy < dy2 and dy >= dy1:
                        x = (dy - dy1) * (dx2 - dx1) / (dy2 - dy1) + dx1
                        ints[n] = int(math.floor(x + 0.5))
                        n += 1
            # insertion sort: a row crosses a handful of edges
            for i in range(1, n):
                t = ints[i]
                j = i - 1
                while j >= 0 and ints[j] > t:
                    ints[j + 1] = ints[j]
                    j -= 1
                ints[j + 1] = t
            for i in range(0, n - 1, 2):
                if ints[i] <= maxx and ints[i + 1] > 0:
                    _burn_run(out, y, ints[i], ints[i + 1] - 1, v)
    return out


@numba.njit(cache=True, nogil=True, inline="always")
def _burn_run(out, y, x0, x1, v):  # pragma: no cover - compiled
    if x0 > x1:
        return
    x0 = max(x0, 0)
    x1 = min(x1, out.shape[1] - 1)
    for x in range(x0, x1 + 1):
        out[y, x] = v
