"""Cloud-Optimised GeoTIFFs: rewrite a GeoTIFF as a COG with overviews, and check the layout.

A COG is a tiled GeoTIFF whose image file directories (IFDs) all come before the pixel data,
full resolution first and then the overviews from largest to smallest, with the overviews'
tiles stored before the full-resolution tiles, so a reader can fetch the header and a coarse
level with a couple of range requests (https://gdal.org/drivers/raster/cog.html).
"""

from __future__ import annotations

import math
import os
import struct
from pathlib import Path

import rasterio
import rasterio.shutil
from rasterio.enums import Resampling

#: Tile side, pixels: GDAL's COG default, a good read size for QGIS and web viewers.
BLOCKSIZE = 512

_NEW_SUBFILE_TYPE, _WIDTH, _HEIGHT = 254, 256, 257
_TILE_WIDTH, _TILE_OFFSETS, _STRIP_OFFSETS = 322, 324, 273
#: TIFF field type -> (struct code, size in bytes) for the integer types tags use here.
_TYPES = {1: ("B", 1), 3: ("H", 2), 4: ("I", 4), 16: ("Q", 8)}


def overview_count(width: int, height: int, blocksize: int = BLOCKSIZE) -> int:
    """Overview levels (factors 2, 4, ...) for a raster of ``width`` x ``height`` pixels.

    As many as it takes for the smallest level to fit in one tile, and at least one for any
    raster of 2 px or more, so that every COG we write has overviews, however small.

    >>> overview_count(4000, 3000), overview_count(300, 200), overview_count(1, 1)
    (3, 1, 0)
    """
    side = max(width, height)
    if side < 2:
        return 0
    return max(1, math.ceil(math.log2(side / blocksize)))


def to_cog(path: str | Path, resampling: str = "nearest") -> Path:
    """Rewrite ``path`` in place as a deflate-compressed COG with internal overviews.

    Args:
        path: a GeoTIFF (any size: GDAL's COG driver streams it).
        resampling: overview resampling, a :class:`rasterio.enums.Resampling` name;
            ``nearest`` or ``mode`` for masks and class rasters, whose overviews must hold
            only values the full resolution holds.

    Returns:
        ``path``.

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
        n = overview_count(src.width, src.height)
        try:
            rasterio.shutil.copy(
                src,
                tmp,
                driver="COG",
                COMPRESS="DEFLATE",
                BLOCKSIZE=BLOCKSIZE,
                OVERVIEWS="IGNORE_EXISTING" if n else "NONE",
                OVERVIEW_COUNT=max(n, 1),
                OVERVIEW_RESAMPLING=Resampling[resampling].name.upper(),
            )
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    os.replace(tmp, p)
    return p


def _ifds(path: Path) -> list[dict[int, tuple[int, ...]]]:
    """The integer tags of every IFD in a TIFF or BigTIFF, in file order, plus key -1: offset."""
    with open(path, "rb") as f:
        head = f.read(16)
        bo = {b"II": "<", b"MM": ">"}.get(head[:2])
        if bo is None:
            raise ValueError(f"{path}: not a TIFF file")
        big = struct.unpack(bo + "H", head[2:4])[0] == 43
        off = (
            struct.unpack(bo + "Q", head[8:16])[0] if big else struct.unpack(bo + "I", head[4:8])[0]
        )
        cnt_fmt, ent_size, val_size, nxt_fmt = ("Q", 20, 8, "Q") if big else ("H", 12, 4, "I")
        out = []
        while off and len(out) < 64:
            f.seek(off)
            (n,) = struct.unpack(bo + cnt_fmt, f.read(struct.calcsize(cnt_fmt)))
            raw = f.read(n * ent_size + struct.calcsize(nxt_fmt))
            tags: dict[int, tuple[int, ...]] = {-1: (off,)}
            for i in range(n):
                e = raw[i * ent_size : (i + 1) * ent_size]
                tag, typ = struct.unpack(bo + "HH", e[:4])
                if typ not in _TYPES:
                    continue
                count = struct.unpack(bo + ("Q" if big else "I"), e[4 : 4 + val_size])[0]
                code, size = _TYPES[typ]
                value = e[4 + val_size :]
                if count * size > val_size:
                    here = f.tell()
                    f.seek(struct.unpack(bo + ("Q" if big else "I"), value)[0])
                    value = f.read(count * size)
                    f.seek(here)
                tags[tag] = struct.unpack(bo + code * count, value[: count * size])
            out.append(tags)
            (off,) = struct.unpack(bo + nxt_fmt, raw[n * ent_size :])
    return out


def cog_problems(path: str | Path) -> list[str]:
    """What keeps ``path`` from being a Cloud-Optimised GeoTIFF with overviews (empty if none).

    Checks, from the TIFF structure itself: every image is tiled; there is at least one
    overview; every IFD comes before any pixel data; the full-resolution image is first and
    the overviews follow from largest to smallest; the full-resolution tiles come after the
    overviews' tiles. Also that GDAL reports ``LAYOUT=COG`` (the COG driver's header).
    """
    p = Path(path)
    ifds = [d for d in _ifds(p) if not d.get(_NEW_SUBFILE_TYPE, (0,))[0] & 4]  # no masks
    problems = []
    if any(_TILE_OFFSETS not in d for d in ifds):
        problems.append("not tiled")
        return problems
    if len(ifds) < 2:
        problems.append("no overviews")
    widths = [d[_WIDTH][0] for d in ifds]
    if widths != sorted(widths, reverse=True) or len(set(widths)) != len(widths):
        problems.append(f"IFDs not ordered from full resolution down: widths {widths}")
    first_data = min(min(o for o in d[_TILE_OFFSETS] if o) for d in ifds)
    if max(d[-1][0] for d in ifds) > first_data:
        problems.append("an IFD comes after pixel data")
    starts = [min(o for o in d[_TILE_OFFSETS] if o) for d in ifds]
    if len(starts) > 1 and starts[0] < max(starts[1:]):
        problems.append("full-resolution tiles come before the overviews' tiles")
    with rasterio.open(p) as ds:
        if ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") != "COG":
            problems.append("GDAL does not report LAYOUT=COG")
    return problems


__all__ = ["BLOCKSIZE", "cog_problems", "overview_count", "to_cog"]
