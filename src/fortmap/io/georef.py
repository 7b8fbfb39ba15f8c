"""Georeference plain images: fit a pixel -> map affine from control points and write a GeoTIFF.

fortmap only analyses georeferenced rasters. Images that come without a georeference (PNG/JPEG
exports, benchmark tiles) can be turned into GeoTIFFs here when matching pixel and map
coordinates are known (ground control points, or labels given in both spaces as xBD does).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS

from fortmap.errors import InputError
from fortmap.io.plain_raster import read_plain_raster
from fortmap.io.raster import HOW_TO_GEOREFERENCE
from fortmap.types import DATE_TAG

__all__ = [
    "HOW_TO_GEOREFERENCE",
    "fit_affine_from_gcps",
    "georeference_png",
    "not_georeferenced_message",
    "utm_crs_for",
]


def not_georeferenced_message(path: str | Path, role: str = "image") -> str:
    """One-line message for a raster without CRS/geotransform, saying how to fix it."""
    return f"{path}: {role} is not georeferenced; {HOW_TO_GEOREFERENCE}"


def utm_crs_for(lon: float, lat: float) -> CRS:
    """The WGS84 UTM zone CRS (metres) containing the point ``lon``, ``lat`` (degrees).

    Example:
        >>> utm_crs_for(-94.5, 37.07).to_epsg()
        32615
    """
    if not (-180.0 <= lon <= 180.0 and -80.0 <= lat <= 84.0):
        raise InputError(f"({lon}, {lat}): outside the UTM domain (longitude/latitude in degrees)")
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def fit_affine_from_gcps(pixel_xy: np.ndarray, world_xy: np.ndarray) -> tuple[Affine, float]:
    """Least-squares affine transform from pixel to world coordinates.

    Args:
        pixel_xy: (n, 2) pixel coordinates (column, row), pixel corners at integers, as in GDAL.
        world_xy: (n, 2) matching map coordinates (x, y) in the target CRS units.

    Returns:
        The affine (pixel -> world, rasterio convention) and the RMS residual distance of the
        control points in world units (metres for a projected CRS).

    Raises:
        InputError: fewer than 3 points, mismatched shapes, or collinear points.
    """
    p = np.asarray(pixel_xy, dtype=float)
    w = np.asarray(world_xy, dtype=float)
    if p.ndim != 2 or p.shape[1] != 2 or p.shape != w.shape:
        raise InputError(f"control points: pixel {p.shape} and world {w.shape} must both be (n, 2)")
    if len(p) < 3:
        raise InputError(f"control points: need at least 3 to fit an affine, got {len(p)}")
    # Centre the pixels so the design matrix is well conditioned for large images.
    p0 = p.mean(axis=0)
    design = np.c_[p - p0, np.ones(len(p))]
    if np.linalg.matrix_rank(design[:, :2] - design[:, :2].mean(axis=0)) < 2:
        raise InputError("control points: pixel coordinates are collinear, cannot fit an affine")
    cx, *_ = np.linalg.lstsq(design, w[:, 0], rcond=None)
    cy, *_ = np.linalg.lstsq(design, w[:, 1], rcond=None)
    a, b = cx[0], cx[1]
    d, e = cy[0], cy[1]
    c = cx[2] - a * p0[0] - b * p0[1]
    f = cy[2] - d * p0[0] - e * p0[1]
    transform = Affine(a, b, c, d, e, f)
    fx = design @ cx
    fy = design @ cy
    rms = float(np.sqrt(np.mean((fx - w[:, 0]) ** 2 + (fy - w[:, 1]) ** 2)))
    return transform, rms


def georeference_png(
    png: Path,
    transform: Affine,
    crs: CRS | str,
    out_tif: Path,
    date: str | None = None,
) -> Path:
    """Write ``png`` (or any raster GDAL reads) as a tiled GeoTIFF with the given georeference.

    Band count and pixel type are kept; no resampling happens. A palette or alpha channel is
    written as a plain band.

    Args:
        png: the input image.
        transform: pixel -> map affine in ``crs`` units (see ``fit_affine_from_gcps``).
        crs: the map CRS, e.g. ``"EPSG:32615"``.
        out_tif: the GeoTIFF to write (overwritten).
        date: acquisition date (ISO 8601); stored as the ``ACQUISITION_DATE`` tag when given.

    Returns:
        ``out_tif``.

    Raises:
        InputError: missing or unreadable input.
    """
    src = read_plain_raster(png, "image")
    data, nodata = src.data, src.nodata
    count, height, width = data.shape
    profile = {
        "driver": "GTiff",
        "count": count,
        "dtype": data.dtype.name,
        "width": width,
        "height": height,
        "crs": CRS.from_user_input(crs),
        "transform": transform,
        "compress": "deflate",
        "nodata": nodata,
    }
    # GDAL requires tiles of a multiple of 16 pixels; small images are written striped.
    if width >= 256 and height >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    if count == 3 and data.dtype == np.uint8:
        profile["photometric"] = "RGB"
    out = Path(out_tif)
    out.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data)
        if date:
            dst.update_tags(**{DATE_TAG: date[:10]})
    return out
