"""LEVIR-CD pairs as GeoTIFFs.

LEVIR-CD tiles are Google Earth RGB PNGs at 0.5 m a pixel from several Texas cities, without any
georeference. To run them through ``analyze`` like a user's GeoTIFFs they are given an arbitrary
but stated georeference: WGS84 / UTM zone 14N (EPSG:32614), 0.5 m pixels, north-up, upper-left
corner at ``LEVIR_ORIGIN`` (a point near Austin, TX). Distances and areas are then right in
metres; absolute positions are not real. No acquisition dates are known, so none are tagged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from affine import Affine
from rasterio.crs import CRS

from fortmap.errors import InputError
from fortmap.io.georef import georeference_png

#: LEVIR-CD pixel size in metres.
LEVIR_GSD_M = 0.5
#: Upper-left corner (easting, northing, metres, EPSG:32614) given to every LEVIR-CD tile.
LEVIR_ORIGIN: tuple[float, float] = (620000.0, 3350000.0)
#: CRS given to LEVIR-CD tiles.
LEVIR_CRS = "EPSG:32614"


@dataclass
class LevirScene:
    """A LEVIR-CD pair written as GeoTIFFs.

    Attributes:
        name: tile name without extension, e.g. ``test_101``.
        before, after: the A (earlier) and B (later) images as GeoTIFFs.
        label: the change label (0 = no change, 255 = change) as a GeoTIFF on the same grid.
        transform: the stated pixel -> metres affine.
        crs: the stated CRS.
    """

    name: str
    before: Path
    after: Path
    label: Path
    transform: Affine
    crs: CRS


def levir_to_geotiffs(
    root: str | Path,
    name: str,
    out_dir: str | Path,
    origin: tuple[float, float] = LEVIR_ORIGIN,
    crs: str = LEVIR_CRS,
) -> LevirScene:
    """Write LEVIR-CD tile ``name`` (A, B and label) as GeoTIFFs with a stated georeference.

    Args:
        root: LEVIR-CD folder holding ``A/``, ``B/`` and ``label/``.
        name: tile name, with or without ``.png``.
        out_dir: folder to write ``before.tif``, ``after.tif`` and ``label.tif`` into.
        origin: upper-left corner (x, y) in ``crs`` units (metres).
        crs: a projected CRS in metres.

    Raises:
        InputError: a missing or unreadable tile, or a geographic ``crs``.
    """
    root, out = Path(root), Path(out_dir)
    stem = name[:-4] if name.lower().endswith(".png") else name
    target = CRS.from_user_input(crs)
    if not target.is_projected:
        raise InputError(f"{crs}: LEVIR-CD tiles need a projected CRS in metres")
    transform = Affine(LEVIR_GSD_M, 0.0, origin[0], 0.0, -LEVIR_GSD_M, origin[1])
    paths = {}
    for sub, out_name in (("A", "before.tif"), ("B", "after.tif"), ("label", "label.tif")):
        src = root / sub / f"{stem}.png"
        if not src.exists():
            raise InputError(f"{src}: LEVIR-CD {sub} image not found")
        paths[sub] = georeference_png(src, transform, target, out / out_name)
    return LevirScene(stem, paths["A"], paths["B"], paths["label"], transform, target)
