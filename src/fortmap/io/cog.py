"""Turn a GeoTIFF into a Cloud-Optimised GeoTIFF with overviews, in place (via a temporary file)."""

from __future__ import annotations

import os
from pathlib import Path

import rasterio
import rasterio.shutil
from rasterio.enums import Resampling


def to_cog(path: str | Path, resampling: str = "nearest") -> Path:
    """Rewrite ``path`` as a deflate-compressed COG with internal overviews.

    Args:
        path: a GeoTIFF (any size: GDAL's COG driver streams it).
        resampling: overview resampling (``nearest`` for masks and class rasters).

    Example:
        >>> import numpy as np, rasterio, tempfile, pathlib
        >>> from affine import Affine
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.tif"
        >>> with rasterio.open(p, "w", driver="GTiff", width=1024, height=1024, count=1,
        ...                    dtype="uint8", crs="EPSG:32637",
        ...                    transform=Affine(0.5, 0, 0, 0, -0.5, 0)) as d:
        ...     d.write(np.ones((1, 1024, 1024), "uint8"))
        >>> with rasterio.open(to_cog(p)) as d:
        ...     d.overviews(1)
        [2]
    """
    p = Path(path)
    tmp = p.with_name(f".{p.name}.cog.tmp")
    with rasterio.open(p) as src:
        rasterio.shutil.copy(
            src,
            tmp,
            driver="COG",
            COMPRESS="DEFLATE",
            BLOCKSIZE=512,
            OVERVIEW_RESAMPLING=Resampling[resampling].name.upper(),
        )
    os.replace(tmp, p)
    return p
