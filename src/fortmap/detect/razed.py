"""Razed buildings found without footprints: building-sized objects of change.

When no footprints are given, a razed building shows as a compact patch of change of a
building's size. Thin rows (barricades), road-long strips and hectare-wide clearings are left
to their own detectors.
"""

from __future__ import annotations

import numpy as np
import shapely
from affine import Affine
from rasterio import features
from scipy import ndimage as ndi


def change_objects(
    mask: np.ndarray,
    evidence: np.ndarray,
    core: tuple[int, int, int, int],
    gsd: float,
    min_area_m2: float = 30.0,
    max_area_m2: float = 3000.0,
    min_width_m: float = 3.0,
) -> tuple[list[shapely.Polygon], list[float], list[dict]]:
    """Building-sized compact change objects of one window.

    Args:
        mask: uint8 (rows, cols) change mask of the window as read (core plus halo).
        evidence: float32 (rows, cols) change evidence 0..1 of the same window.
        core: (col0, row0, col1, row1) of the core inside the read window, pixels; an object is
            kept by the window holding its centroid, so each object is reported once.
        gsd: metres per pixel.
        min_area_m2, max_area_m2: size range of a building, square metres.
        min_width_m: narrower objects (rows of blocks, debris lines) are dropped, metres.

    Returns:
        (polygons in the read window's pixel coordinates, scores 0..1, evidence dicts).
    """
    m = mask.astype(bool)
    # Opening by the minimum width removes thin rows and fringes along moved shadows.
    r = max(1, int(round(min_width_m / gsd / 2)))
    disk = np.hypot(*np.mgrid[-r : r + 1, -r : r + 1]) <= r
    m = ndi.binary_opening(m, disk)
    m = ndi.binary_fill_holes(m)
    lab, n = ndi.label(m)
    if n == 0:
        return [], [], []
    px_area = gsd * gsd
    idx = np.arange(1, n + 1)
    area = ndi.sum(m, lab, idx) * px_area
    cy, cx = np.array(ndi.center_of_mass(m, lab, idx)).T.reshape(2, -1)
    mean_ev = ndi.mean(evidence, lab, idx)
    c0, r0, c1, r1 = core
    keep = (
        (area >= min_area_m2)
        & (area <= max_area_m2)
        & (cx >= c0)
        & (cx < c1)
        & (cy >= r0)
        & (cy < r1)
    )
    polys, scores, evs = [], [], []
    slices = ndi.find_objects(lab)
    for i in np.flatnonzero(keep):
        sl = slices[i]
        sub = (lab[sl] == i + 1).astype(np.uint8)
        t = Affine.translation(sl[1].start, sl[0].start)
        parts = [
            shapely.geometry.shape(g) for g, v in features.shapes(sub, mask=sub > 0, transform=t)
        ]
        poly = shapely.union_all(parts).simplify(0.5)
        if poly.is_empty:
            continue
        hull = poly.convex_hull
        solidity = poly.area / hull.area if hull.area > 0 else 0.0
        if solidity < 0.5:
            continue
        polys.append(poly)
        scores.append(float(np.clip(mean_ev[i] * (0.5 + 0.5 * solidity), 0, 1)))
        evs.append(
            {
                "mean_change_evidence": round(float(mean_ev[i]), 3),
                "solidity": round(float(solidity), 3),
            }
        )
    return polys, scores, evs
