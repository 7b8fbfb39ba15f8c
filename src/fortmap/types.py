"""Shared types: the grid every raster stage works on and the findings schema.

All findings, whatever their kind, share one schema so that later kinds (barricades, berms,
rubble, routes, visibility) slot in without changing the writers or the report:

================  ==========  =====================================================
column            type        meaning
================  ==========  =====================================================
kind              str         kind of finding, e.g. ``razed_building``
score             float       confidence 0..1 that the finding is real
date_before       str         ISO date of the earlier image ("" when unknown)
date_after        str         ISO date of the later image ("" when unknown)
evidence          str         JSON object of the measurements behind the score
area_m2           float       area in square metres (polygons; NaN otherwise)
length_m          float       length in metres (lines; NaN otherwise)
geometry          geometry    in the before image's CRS
================  ==========  =====================================================

Layers may add their own measure columns (``area_ha``, ``width_m``, ``height_m``, ...);
measures are always in metres (or m2 / ha as the name says).
"""

from __future__ import annotations

from dataclasses import dataclass

from affine import Affine
from rasterio.crs import CRS

#: Columns every findings layer carries, in this order, before its own extras.
FINDING_COLUMNS: tuple[str, ...] = (
    "kind",
    "score",
    "date_before",
    "date_after",
    "evidence",
    "area_m2",
    "length_m",
)

#: Layer name -> the ``kind`` value its rows carry. Later issues add entries here.
LAYER_KINDS: dict[str, str] = {
    "razed_buildings": "razed_building",
    "cleared_areas": "cleared_area",
    "buildings": "building",
    "barricades": "barricade",
    "berms": "berm",
    "rubble": "rubble",
    "routes": "route",
    "entry_points": "entry_point",
    "visibility": "visibility",
}

#: Kinds of change the simulator's ``truth.gpkg`` holds, one layer each.
TRUTH_LAYERS: tuple[str, ...] = (
    "razed_buildings",
    "cleared_areas",
    "barricades",
    "berms",
    "rubble",
)

#: GeoTIFF metadata tag holding an image's acquisition date (ISO 8601).
DATE_TAG = "ACQUISITION_DATE"

#: Damage classes of a building footprint.
DAMAGE_CLASSES: tuple[str, ...] = ("intact", "damaged", "destroyed")


#: resolution of the visibility grid, metres: sight lines are blocked by walls a few metres
#: thick, and the surfaces are resampled with the maximum so thin obstacles still block
VISIBILITY_RES_M = 2.0


@dataclass(frozen=True)
class Grid:
    """A raster grid: CRS, affine transform (pixel -> CRS units) and shape in pixels.

    Attributes:
        crs: coordinate reference system of the grid (projected, in metres, for analysis).
        transform: affine transform from (col, row) pixel corners to CRS coordinates.
        width: number of columns (pixels).
        height: number of rows (pixels).
    """

    crs: CRS
    transform: Affine
    width: int
    height: int

    @property
    def res(self) -> tuple[float, float]:
        """Pixel size (x, y) in CRS units (metres for a projected CRS), both positive."""
        return (abs(self.transform.a), abs(self.transform.e))

    @property
    def gsd(self) -> float:
        """Mean ground sample distance in CRS units (metres for a projected CRS)."""
        return float((abs(self.transform.a) + abs(self.transform.e)) / 2)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in CRS units."""
        t = self.transform
        xs = (t.c, t.c + t.a * self.width)
        ys = (t.f, t.f + t.e * self.height)
        return (min(xs), min(ys), max(xs), max(ys))
