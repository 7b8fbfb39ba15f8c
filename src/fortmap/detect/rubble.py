"""Rubble on routes: debris newly lying on a road's carriageway.

Uses the same road-surface contrast as barricades (``barricades.road_change``: brighter than
the road's own median in the after image and brighter than before, in units of the in-scene
robust noise), measured on a 2.5 m box-smoothed image because debris is a speckled field, not a
solid object. Components of new material on the carriageway are rubble when they cover a few
square metres and run along the road for more than a block row does; debris that spills onto
the road edge from a razed building next to it (mostly outside the carriageway) is left to the
razed-building layer.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from rasterio.features import shapes
from scipy import ndimage as ndi

from fortmap.detect.barricades import (
    MAX_ROW_ALONG_M,
    PASS_WIDTH_M,
    hysteresis,
    pieces,
    road_change,
)
from fortmap.detect.roadmask import RoadRaster

#: Box filter side (m) over which debris speckle is averaged.
SMOOTH_M = 2.5
#: Smallest pile reported (m2): about a car's footprint, the least that narrows a lane.
MIN_AREA_M2 = 8.0
#: Smallest median log ratio of local roughness after / before (``_roughness``): ln 1.5,
#: set on seeds 1-3 of the simulator.
MIN_ROUGHNESS = float(np.log(1.5))
#: Largest share of a component outside the carriageway: more is spill from off the road.
MAX_OFFROAD_FRACTION = 0.35


def _roughness(
    before: np.ndarray, after: np.ndarray, on: np.ndarray | None = None, size: int = 3
) -> np.ndarray:
    """Log ratio of local grey-level spread (``size`` px box) after / before, less its median
    over the road pixels ``on``.

    Debris is broken material: it is rougher than the asphalt it covers at any illumination,
    whereas a road leaving a shadow or a sun change brightens smoothly. The two dates differ
    in blur and noise, which scales every pixel's spread alike: taking off the road's median
    ratio (an in-scene statistic: most road is unchanged) leaves the change in texture itself.
    """
    out = []
    for img in (before, after):
        g = img.mean(axis=0) if img.ndim == 3 else img
        m = ndi.uniform_filter(g, size)
        v = ndi.uniform_filter(g * g, size) - m * m
        out.append(np.sqrt(np.clip(v, 1e-6, None)))
    r = np.log(out[1] / out[0])
    if on is not None and on.sum() >= 50:
        r -= float(np.median(r[on]))
    return r


def _polygon(mask: np.ndarray, off: tuple[int, int]) -> shapely.Polygon | None:
    """Largest polygon of a bool mask (pixel coordinates shifted by ``off`` = (col, row))."""
    polys = [
        shapely.geometry.shape(g)
        for g, v in shapes(mask.astype(np.uint8), mask=mask, connectivity=8)
        if v == 1
    ]
    if not polys:
        return None
    p = max(polys, key=lambda q: q.area)
    p = shapely.Polygon(p.exterior).simplify(0.75)
    return shapely.affinity.translate(p, off[0], off[1])


def find_rubble(
    before: np.ndarray,
    after: np.ndarray,
    valid: np.ndarray,
    roads: RoadRaster,
    roads_px: gpd.GeoDataFrame,
    gsd: float,
    core_px: tuple[int, int, int, int],
) -> list[tuple[shapely.Polygon, float, dict]]:
    """Debris fields on road carriageways in one window.

    Args:
        before, after: matched images of the window, (bands, rows, cols).
        valid: bool (rows, cols).
        roads: the window's :class:`RoadRaster`.
        roads_px: the roads in window pixel coordinates (kept for symmetry with barricades).
        gsd: metres per pixel.
        core_px: (col0, row0, col1, row1) of the core; a pile is kept when its centroid is in it.

    Returns:
        (Polygon in window pixels, score 0..1, attributes) per pile; attributes:
        ``road_name``, ``road_class``, ``area_m2``, ``passable_width_m`` (widest free strip
        of the carriageway beside the pile, m), ``blocks_road`` and ``evidence``.
    """
    smooth = max(1, int(round(SMOOTH_M / gsd)))
    ch = road_change(before, after, valid, roads, smooth_px=smooth, shade_aware=True)
    grow = ndi.binary_opening(ch.grow, np.ones((3, 3), bool))
    # Debris is patchy: close gaps of up to ~3 m so one field is one pile.
    k = max(3, int(round(3.0 / gsd)) | 1)
    disk = np.hypot(*np.mgrid[-(k // 2) : k // 2 + 1, -(k // 2) : k // 2 + 1]) <= k / 2
    grow = ndi.binary_closing(grow, disk) & roads.mask
    lab, n = hysteresis(ch.seed & grow, grow)
    carriage = roads.carriageway
    rough = _roughness(before, after, roads.mask & valid)
    c0, r0, c1, r1 = core_px
    out = []
    for p in pieces(lab, n, roads):
        on = carriage[p.rows, p.cols]
        if on.sum() * gsd * gsd < MIN_AREA_M2 or 1 - on.mean() > MAX_OFFROAD_FRACTION:
            continue
        if p.along_len * gsd <= MAX_ROW_ALONG_M + SMOOTH_M:
            continue  # a block row's footprint (widened by the smoothing): a barricade
        tex = float(np.median(rough[p.rows[on], p.cols[on]]))
        if tex < MIN_ROUGHNESS:
            continue  # smooth new surface: light or shadow change, fresh paving, not debris
        rr, cc = p.rows[on], p.cols[on]
        cy, cx = rr.mean() + 0.5, cc.mean() + 0.5
        if not (c0 <= cx < c1 and r0 <= cy < r1):
            continue
        ra, ca = rr.min(), cc.min()
        m = np.zeros((rr.max() - ra + 1, cc.max() - ca + 1), bool)
        m[rr - ra, cc - ca] = True
        m = ndi.binary_fill_holes(ndi.binary_closing(m, np.ones((3, 3), bool), border_value=0))
        poly = _polygon(m, (int(ca), int(ra)))
        if poly is None or poly.is_empty:
            continue
        width = float(p.width_px)
        half = width / 2
        # Widest free strip across the carriageway, from the across offsets the pile covers.
        edges = np.arange(np.floor(-half), np.ceil(half) + 1)
        hit = np.histogram(p.across[on], bins=edges)[0] > 0
        free = 0
        run = 0
        for h in hit:
            run = 0 if h else run + 1
            free = max(free, run)
        free_m = min(free, width) * gsd
        contrast = float(np.median(ch.contrast[rr, cc]))
        lo, hi = np.percentile(p.across[on], (5, 95))
        across_m = float(hi - lo + 1) * gsd
        area_m2 = float(on.sum()) * gsd * gsd
        score = float(np.clip(0.4 + 0.6 * min(contrast / 12.0, 1.0), 0, 1))
        out.append(
            (
                poly,
                score,
                {
                    "road_name": roads.names[p.road],
                    "road_class": roads.classes[p.road],
                    "area_m2": round(area_m2, 1),
                    "passable_width_m": round(free_m, 2),
                    "blocks_road": bool(free_m < PASS_WIDTH_M),
                    "evidence": {
                        "contrast_sigma": round(contrast, 2),
                        "noise_sigma": round(ch.sigma, 4),
                        "along_m": round(p.along_len * gsd, 2),
                        "road_width_m": round(width * gsd, 2),
                        "offroad_fraction": round(1 - float(on.mean()), 3),
                        "across_m": round(across_m, 2),
                        "roughness_log_ratio": round(tex, 3),
                    },
                },
            )
        )
    return out
