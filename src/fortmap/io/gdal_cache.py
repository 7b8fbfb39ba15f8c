"""GDAL's block cache size for ``analyze`` and ``report`` (a module of its own: light to import)."""

from __future__ import annotations

import os

#: GDAL's block cache during ``analyze`` and ``report``, bytes: it holds a 2 km pair of 0.5 m
#: RGB images (96 MB decoded), so that the window pass finds the blocks that the road overview
#: and the co-registration decoded; on a larger scene it still holds the window rows' shared
#: halos. ``FORTMAP_GDAL_CACHE_MB`` overrides it. (GDAL's own default, 5 % of the memory, let
#: the report of an 8 km scene hold 1.2 GB of decoded blocks.)
GDAL_CACHE_B = 128 * 1024 * 1024


def gdal_cache_b() -> int:
    """GDAL's block cache for ``analyze`` and ``report``, bytes (``FORTMAP_GDAL_CACHE_MB`` or
    ``GDAL_CACHE_B``)."""
    mb = os.environ.get("FORTMAP_GDAL_CACHE_MB")
    return int(float(mb) * 1024 * 1024) if mb else GDAL_CACHE_B
