"""Road centre lines derived from the before image when no ``--roads`` are given.

Roads are long, narrow corridors of one uniform, grey surface. The method works on a
downsampled overview of the before image (about 1 m a pixel, coarser for large scenes) and uses
only in-scene statistics and first principles, no labels:

1. **Surface classes.** The overview (median-filtered against noise) is clustered by colour
   (k-means, 16 classes, seeded). A city has a few road surfaces (asphalt of the main roads,
   lighter asphalt or concrete of side streets), each one colour class.
2. **Which classes are road.** A class is road surface when it is grey (chroma below
   ``MAX_CHROMA``: asphalt and concrete reflect the visible bands about equally, while water,
   vegetation and most soils do not) and when most of its pixels (``MIN_CORRIDOR_SHARE``, a
   majority) lie in corridors: places a ``CORRIDOR_M`` long line fits in some direction
   (line openings) but a disk ``MAX_WIDTH_M`` across does not. Roofs, fields and plazas are
   compact or wide; roads are the one surface that is mostly corridor. For this width test a
   class's holes up to ``SMALL_HOLE_M2`` (tree crowns, cars) are filled: an open field or a
   yard dotted with trees is still wide, though its pixels between the crowns form narrow
   runs (on the Helsinki layout such grey ground passed the test as road).
3. **Centre lines.** The corridors of the road classes are skeletonised; the skeleton is cut into
   a graph at its junctions, spurs shorter than ``MIN_SPUR_M`` are dropped, and the rest is
   merged into LineStrings. Width is twice the distance from the centre line to the road's edge
   (distance transform), the median along each line; a road ``MAJOR_WIDTH_M`` or wider (three
   lanes of ``LANE_WIDTH_M``) is ``major``.

The full-resolution scene is never held in memory: the overview is read in strips with GDAL's
averaging decimation. Steps 1 and 2 are :mod:`fortmap.detect.road_surface` (with the corridor
test in :mod:`fortmap.detect.road_corridors`), step 3 :mod:`fortmap.detect.road_centrelines`.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import shapely
from affine import Affine
from rasterio.windows import Window

from fortmap.detect.median_kernels import to_bytes
from fortmap.detect.road_centrelines import centrelines
from fortmap.detect.road_surface import road_mask
from fortmap.io.raster import GridReader
from fortmap.io.roads import LANE_WIDTH_M
from fortmap.types import Grid

#: Target pixel size of the overview, metres: a 5 m side street is still 5 pixels across.
OVERVIEW_M = 1.0
#: Largest overview side, pixels (keeps a 4x4 km scene at 2 m and memory near 100 MB).
MAX_OVERVIEW_PX = 2048
#: Width from which a derived road is ``major`` (three lanes).
MAJOR_WIDTH_M = 3 * LANE_WIDTH_M


def read_overview(
    reader: GridReader, grid: Grid, pixel_m: float = OVERVIEW_M, max_px: int = MAX_OVERVIEW_PX
) -> tuple[np.ndarray, np.ndarray, Affine]:
    """The image downsampled by an integer factor (block averages), read strip by strip.

    Args:
        reader: reader on the analysis grid (raw values are read; scaling is ignored).
        grid: the analysis grid (metres).
        pixel_m: wanted pixel size, metres (never finer than the grid's).
        max_px: the overview's longest side is kept under this many pixels.

    Returns:
        (image (bands, rows, cols), valid bool (rows, cols), affine of the overview in the
        grid's CRS); the image is uint8 when every value is a whole number 0..255 (the
        averages of a byte image, which GDAL rounds to bytes), float32 otherwise.
    """
    f = max(1, round(pixel_m / grid.gsd), math.ceil(max(grid.width, grid.height) / max_px))
    w, h = grid.width // f, grid.height // f
    strip = max(1, 256 // f) * f * 4
    parts, valid = [], []
    # a byte image's averages are bytes as GDAL returns them: no float32 copy to convert back
    native = getattr(reader, "read_decimated", None)
    for r0 in range(0, h * f, strip):
        rows = min(strip, h * f - r0)
        win = Window(0, r0, w * f, rows)
        part = native(win, (rows // f, w)) if native else reader.read_raw(win, (rows // f, w))
        if part.dtype != np.uint8:
            part = part.astype(np.float32, copy=False)  # as read_raw converts
        parts.append(part)
        valid.append(reader.read_valid(win, (rows // f, w)))
    if any(p.dtype != np.uint8 for p in parts):
        # bytes are a quarter of the float32 copy, and road_mask works on them as they are
        b8 = [np.empty(p.shape, np.uint8) for p in parts]
        if all(to_bytes(p, b) for p, b in zip(parts, b8, strict=True)):
            parts = b8
    return (
        np.concatenate(parts, axis=1),
        np.concatenate(valid, axis=0),
        grid.transform @ Affine.scale(f),
    )


def roads_from_image(
    reader: GridReader, grid: Grid, pixel_m: float = OVERVIEW_M
) -> tuple[gpd.GeoDataFrame, dict]:
    """Road centre lines derived from an image (normally the before image).

    Args:
        reader: reader of the image on the analysis grid.
        grid: the analysis grid (projected CRS, metres).
        pixel_m: pixel size of the overview worked on, metres.

    Returns:
        (roads, evidence): roads with the columns of ``fortmap.io.roads.read_roads``
        (``road_class`` major|minor from width, ``highway`` and ``name`` empty, ``width_m`` in
        metres) as LineStrings in ``grid.crs``, possibly empty; evidence holds the overview's
        pixel size and the colour classes measured.
    """
    img, valid, t = read_overview(reader, grid, pixel_m)
    px = float(abs(t.a))
    mask, ev = road_mask(img, valid, px)
    lines = centrelines(mask, t, px)
    w = lines["width_m"].to_numpy(float)
    roads = gpd.GeoDataFrame(
        {
            "road_class": np.where(w >= MAJOR_WIDTH_M, "major", "minor"),
            "highway": [""] * len(lines),
            "name": [""] * len(lines),
            "width_m": w,
        },
        geometry=lines.geometry.values,
        crs=grid.crs,
    )
    ev = {"pixel_m": round(px, 3), "road_share": round(_share(mask), 4), **ev}
    return roads, ev


def _share(mask: np.ndarray) -> float:
    """``float(mask.mean())`` (the same number) from a count, without the float64 sum."""
    return np.count_nonzero(mask) / mask.size if mask.size else float("nan")


def length_within(lines: gpd.GeoSeries, other: gpd.GeoSeries, tol_m: float = 5.0) -> float:
    """Share of the length of ``lines`` lying within ``tol_m`` metres of ``other`` (0..1).

    Completeness is ``length_within(truth, derived)``, correctness
    ``length_within(derived, truth)``; both in the same projected CRS.
    """
    total = float(lines.length.sum())
    if total == 0 or len(other) == 0:
        return 0.0
    zone = shapely.union_all(shapely.buffer(other.values, tol_m))
    return float(shapely.length(shapely.intersection(lines.values, zone)).sum() / total)
