"""Whole small rasters read without requiring a georeference (masks, PNG labels and images)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

from fortmap.errors import InputError


@dataclass
class PlainRaster:
    """A whole raster read without requiring a georeference (masks, PNG labels and images)."""

    data: np.ndarray
    crs: object
    transform: Affine
    nodata: float | None


def read_plain_raster(path: str | Path, role: str) -> PlainRaster:
    """Read every band of a small raster that may have no CRS or geotransform.

    Raises:
        InputError: missing or unreadable, with a one-line message naming the file.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: {role} not found")
    try:
        with warnings.catch_warnings():
            # a plain image has no georeference; the caller decides whether it needs one
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(p) as ds:
                return PlainRaster(ds.read(), ds.crs, ds.transform, ds.nodata)
    except RasterioIOError as exc:
        raise InputError(f"{p}: cannot read {role}: {str(exc).splitlines()[0]}") from None
