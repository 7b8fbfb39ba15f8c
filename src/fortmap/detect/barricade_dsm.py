"""Block rows seen in the DSMs: the surface-height tests of the barricade detector.

An image row is confirmed or dropped by the rise of the surface under it (``dsm_rise_at``),
and rows the DSMs alone show are found as image rows are (``dsm_rows``: pieces framed by their
road and grouped by ``barricade_rows``). Pixel coordinates are the window's; heights in metres.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
from scipy import ndimage as ndi

from fortmap.detect import fort_kernels as K
from fortmap.detect.barricade_rows import (
    Piece,
    across_road,
    group_rows,
    hysteresis_pixels,
    junction_rows,
    merge_split_rows,
    pieces,
    reframe,
    row_ok,
)
from fortmap.detect.roadmask import RoadRaster

#: Least surface rise (m) over a block: half the lowest block (1.4 m), so that a DSM that
#: smooths a block's edges still shows its top.
DSM_BLOCK_RISE_M = 0.7
#: Least rise (m) that is new material around a row (a car's ground clearance, as
#: ``analyze.clearance.OBSTACLE_M``).
DSM_MASS_RISE_M = 0.3
#: Least area (m²) of block-high rise under a row: half the footprint of a 1.4 m block.
DSM_MIN_BLOCK_M2 = 1.0


def dsm_rise_at(
    rise: np.ndarray,
    rr: np.ndarray,
    cc: np.ndarray,
    gsd: float,
    max_mass_ratio: float,
    block_rise_m: float = DSM_BLOCK_RISE_M,
    mass_rise_m: float = DSM_MASS_RISE_M,
) -> bool | None:
    """Whether the DSMs see blocks under a row found in the image (window pixels).

    A row of blocks raises the surface by a block's height over a block's footprint at least,
    and stands on plain road: the risen ground it is joined to is the row itself, not a mound
    many times its size (a rubble pile, whose edge the image test cut into a row).

    Args:
        rise: after minus before surface height (m), window grid, NaN where unknown.
        rr, cc: the row's pixels.
        gsd: metres per pixel.
        max_mass_ratio: most risen ground joined to the row, as a multiple of its pixels.
        block_rise_m, mass_rise_m: the block-high and new-material rises (m); raise them
            above the floors to a few sigmas of the DSM difference's noise
            (``dsm_noise.DsmRules``) with noisy DSMs.

    Returns:
        True or False; None where the DSMs hold no value under the row (the image decides).
    """
    if rr.size == 0:
        return None
    h, w = rise.shape
    # The dilation and its tests on the row's bounding box grown by one pixel (nothing beyond
    # it is near), and the risen ground joined to the blocks filled from them: the same
    # answer as whole-window arrays and labels, in the cost of the row and its mound.
    r0, r1 = max(int(rr.min()) - 1, 0), min(int(rr.max()) + 2, h)
    c0, c1 = max(int(cc.min()) - 1, 0), min(int(cc.max()) + 2, w)
    near = np.zeros((r1 - r0, c1 - c0), bool)
    near[rr - r0, cc - c0] = True
    # the image row is blurred and may sit a pixel off the DSM's blocks
    near = ndi.binary_dilation(near, np.ones((3, 3), bool))
    sub = rise[r0:r1, c0:c1]
    if not np.isfinite(sub[near]).any():
        return None
    with np.errstate(invalid="ignore"):
        block = near & (sub >= block_rise_m)
        if block.sum() * gsd * gsd < DSM_MIN_BLOCK_M2:
            return False
        mass = np.ascontiguousarray(rise >= mass_rise_m)
    br, bc = np.nonzero(block)
    joined = K.components_touching(mass, br + r0, bc + c0).size
    return bool(joined <= max_mass_ratio * max(len(rr), int(block.sum())))


def dsm_rows(
    rise: np.ndarray,
    roads: RoadRaster,
    roads_px: gpd.GeoDataFrame,
    reach_px: float,
    gsd: float,
    max_mass_ratio: float,
    block_rise_m: float = DSM_BLOCK_RISE_M,
    mass_rise_m: float = DSM_MASS_RISE_M,
) -> list[list[Piece]]:
    """Block rows seen in the DSMs alone: block-high rises on the road, framed and grouped as
    image rows are (``row_ok`` with the rise in metres as the contrast), each most of the
    risen ground it is joined to (see ``dsm_rise_at``). Finds rows the image misses (deep
    shade, a row joined to debris in the image). Arguments as ``dsm_rise_at``; ``reach_px``
    as ``junction_rows``."""
    with np.errstate(invalid="ignore"):
        m = (rise >= block_rise_m) & roads.mask
    if not m.any():
        return []
    # every component seeds itself: ``ndi.label``'s labels, and their pixels from the same fill
    lab, n, px = hysteresis_pixels(m, m)
    z = np.nan_to_num(rise, nan=0.0)
    found = pieces(lab, n, roads, px)
    cands = [q for q in (reframe(p, roads, roads_px, reach_px, gsd) for p in found)
             if across_road(q, gsd)]  # fmt: skip
    rows, rest = [], []
    for g in group_rows(cands, gsd):
        (rows if row_ok(g, z, gsd, block_rise_m) else rest).append(g)
    rest = [p for g in rest for p in g]
    rows += junction_rows(rest, roads, roads_px, reach_px, gsd, z, block_rise_m)
    out = []
    for g in merge_split_rows(rows, gsd):
        rr = np.concatenate([p.rows for p in g])
        cc = np.concatenate([p.cols for p in g])
        if dsm_rise_at(rise, rr, cc, gsd, max_mass_ratio, block_rise_m, mass_rise_m):
            out.append(g)
    return out
