"""Rubble the DSMs see: what stands on a road's surface, for the fortification step.

With both surface models, new debris on a road is a rise of the surface, whether or not the
image shows it (deep shade, debris no brighter than a pale road). :func:`find_dsm_rubble` adds
such rises as piles where the image also finds them rough and they are no block row, berm or
razed building's spill; :func:`_stands_on_dsm` drops image findings nothing stands on; and
:func:`merge_dsm_piles` joins a DSM pile to a finding beside it. Heights are metres on the
window's grid; geometries are in window pixel coordinates (col, row) unless said otherwise.
"""

from __future__ import annotations

import math

import numpy as np
import shapely
import shapely.affinity
from scipy import ndimage as ndi

from fortmap.analyze.clearance import (
    DEBRIS_M,
    FILL_GAP_M,
    MIN_OBSTACLE_M2,
    OBSTACLE_M,
    storey_falls,
)
from fortmap.detect import fort_kernels as K
from fortmap.detect import rubble as RB
from fortmap.detect.barricade_rows import MAX_ROW_ALONG_M, axis_mean
from fortmap.detect.barricades import PASS_WIDTH_M
from fortmap.detect.road_pixels import RoadWindow
from fortmap.detect.roadmask import RoadRaster
from fortmap.detect.rubble_kernels import free_width_px, shared_relative_roughness

#: Share of a rubble finding's area within a razed building's spill reach (3 m) above which it
#: is the building's spill: most of it, i.e. more than half (not fitted).
RAZED_SPILL_SHARE = 0.5

#: Half the base (m) of a berm of unknown height: half the widest berm (15 m) the issue names.
BERM_HALF_BASE_M = 7.5


def _berm_body(g: shapely.Geometry, at: dict, gsd: float) -> shapely.Geometry:
    """A berm crest or ditch (window pixels) buffered to its body: a soil bank of its
    height ``h`` at a 35 degree angle of repose reaches ``h / tan 35`` = 1.4 ``h`` either side."""
    h = at.get("height_m")
    half = BERM_HALF_BASE_M if h is None or not math.isfinite(h) else max(1.4 * h, 2.0)
    return g.buffer(half / gsd)


def _stands_on_dsm(
    g: shapely.Geometry,
    at: dict,
    dsm_before: np.ndarray,
    dsm_after: np.ndarray,
    gsd: float,
    rise_m: float = OBSTACLE_M,
) -> bool:
    """Whether a rubble finding (window pixel coordinates) is debris the DSMs can see.

    Debris that narrows a road raises its surface: where both DSMs are given, a finding over
    which the surface rose by ``OBSTACLE_M`` (0.3 m, what stops a car) on less than
    ``MIN_OBSTACLE_M2`` (1 m², the DSM noise floor of the obstacle mask) is no obstacle, e.g.
    a road coming out of a moved shadow. Where the DSMs hold no value over it, the image
    decides. Adds ``dsm_rise_m2`` to the finding's evidence. ``rise_m`` (m) replaces
    ``OBSTACLE_M`` where the DSMs' noise asks for more (``dsm_noise.DsmRules``).
    """
    h, w = dsm_before.shape
    c0, r0, c1, r1 = (int(v) for v in g.bounds)
    c0, r0 = max(c0, 0), max(r0, 0)
    c1, r1 = min(c1 + 1, w), min(r1 + 1, h)
    if c1 <= c0 or r1 <= r0:
        return True
    rr, cc = np.mgrid[r0:r1, c0:c1]
    inside = shapely.contains_xy(g, cc + 0.5, rr + 0.5)
    if not inside.any():
        return True
    rise = dsm_after[r0:r1, c0:c1][inside] - dsm_before[r0:r1, c0:c1][inside]
    known = np.isfinite(rise)
    if not known.any():
        return True
    area = float(np.count_nonzero(rise[known] >= rise_m)) * gsd * gsd
    at.setdefault("evidence", {})["dsm_rise_m2"] = round(area, 2)
    return area >= MIN_OBSTACLE_M2


#: Highest debris pile (m) on a street: broken walls slump to a metre or so (the simulator's
#: piles are at most 1.5 m); a berm (2-4 m) or a new structure stands higher.
MAX_PILE_M = 2.0


def find_dsm_rubble(
    dsm_before: np.ndarray,
    dsm_after: np.ndarray,
    roads: RoadRaster,
    rw: RoadWindow,
    gsd: float,
    core_px: tuple[int, int, int, int],
    avoid: list,
    rise_m: float = OBSTACLE_M,
) -> list[tuple[shapely.Polygon, float, dict]]:
    """Debris piles the DSMs see on the carriageway that the image detector left out.

    A pile is a patch of carriageway where the surface rose by ``OBSTACLE_M`` (0.3 m) or more
    (gaps under ``clearance.FILL_GAP_M`` filled) over at least ``rubble.MIN_AREA_M2``, not
    mostly (``RAZED_SPILL_SHARE``) within ``clearance.DEBRIS_M`` of a storey-high fall (a
    razed building's spill, left to the razed layer; judged per patch, as
    ``drop_razed_spill`` judges a finding, so a pile is not cut into fragments), no higher than ``MAX_PILE_M`` (90th percentile),
    longer along its road than one block row, touching nothing in ``avoid`` (window-pixel
    geometries: piles found in the image, block rows, berm bodies), and rougher for its
    brightness than the road in the after image (``RelativeRoughness``: mixed albedo and small
    shadows, which a smooth soil bank or fresh paving lacks).

    Args:
        dsm_before, dsm_after: surface heights (m) of the window, NaN where unknown.
        roads: the window's road raster; rw: its shared road levels.
        gsd: metres per pixel.
        core_px: (col0, row0, col1, row1) of the core; a pile is kept when its centroid is in it.
        avoid: geometries in window pixels that a pile must not touch (block rows, berms).
        rise_m: least rise (m) of a pile's pixels: ``OBSTACLE_M``, or more where the DSMs'
            noise asks for it (``dsm_noise.DsmRules``).

    Returns:
        (Polygon in window pixels, score, attributes) per pile, as ``rubble.find_rubble``.
    """
    with np.errstate(invalid="ignore"):
        m = (dsm_after - dsm_before) >= rise_m
    k = max(1, int(round(FILL_GAP_M / gsd)))
    # on the road with its kerbside margin, as the image detector grows a pile: debris along a
    # kerb straddles the carriageway's edge and would break into fragments there (the gaps
    # are closed on the whole mask, read on the road only)
    m = K.square_closing_in(m, k, np.ascontiguousarray(roads.mask)) if k > 1 else m & roads.mask
    if not m.any():
        return []
    lab, n = ndi.label(m, np.ones((3, 3), bool))
    c0, r0, c1, r1 = core_px
    near = None  # what a pile must not touch, joined once a candidate needs it
    rel_rough = None
    out = []
    for i, sl in enumerate(ndi.find_objects(lab), start=1):
        rr, cc = np.nonzero(lab[sl] == i)
        rr, cc = rr + sl[0].start, cc + sl[1].start
        on = roads.carriageway[rr, cc]
        area = on.sum() * gsd * gsd
        cy, cx = rr.mean() + 0.5, cc.mean() + 0.5
        if area < RB.MIN_AREA_M2 or 1 - on.mean() > RB.MAX_OFFROAD_FRACTION:
            continue
        if not (c0 <= cx < c1 and r0 <= cy < r1):
            continue
        rise = dsm_after[rr, cc] - dsm_before[rr, cc]
        high = float(np.nanpercentile(rise, 90))
        if high > MAX_PILE_M:
            continue
        if _spill_share(dsm_before, dsm_after, rr, cc, gsd) > RAZED_SPILL_SHARE:
            continue  # mostly within a razed building's spill reach: the razed layer's debris
        rid = roads.road_id[rr, cc]
        road = int(np.bincount(rid[rid > 0]).argmax()) if (rid > 0).any() else 0
        if road == 0:
            continue
        own = rid == road
        theta = axis_mean(roads.axis[rr, cc][own].astype(float))
        along = (cc + 0.5) * np.cos(theta) + (rr + 0.5) * np.sin(theta)
        lo, hi = np.percentile(along, (5, 95))
        along_m = float(hi - lo + 1) * gsd
        if along_m <= MAX_ROW_ALONG_M:
            continue  # one block deep along the road: a block row, not a pile
        # the outline (the dearest test but the roughness) once the cheaper ones have passed
        poly = RB._polygon(lab[sl] == i, (sl[1].start, sl[0].start))
        if near is None:
            near = shapely.union_all([g for g in avoid if not g.is_empty])
        if poly is None or poly.is_empty or (not near.is_empty and poly.intersects(near)):
            continue
        if rel_rough is None:
            size = max(1, int(round(RB.ROUGH_M / gsd))) | 1
            rel_rough = shared_relative_roughness(rw, size)
        rel, rel_change = rel_rough.at(rr, cc)
        if rel <= RB.MIN_RELATIVE_ROUGHNESS:
            continue  # smooth for its brightness: a soil bank or paving, not debris
        width = float(roads.widths_px[road - 1])
        across = roads.across[rr[own], cc[own]]
        free_m = min(free_width_px(across, width), width) * gsd
        evidence = {
            "source": "dsm",
            "dsm_rise_m2": round(area, 2),
            "rise_p90_m": round(high, 2),
            "along_m": round(along_m, 2),
            "road_width_m": round(width * gsd, 2),
            "relative_roughness": round(rel, 3),
            "relative_roughness_change": round(rel_change, 3),
        }
        attrs = {
            "road_name": roads.names[road - 1],
            "road_class": roads.classes[road - 1],
            "area_m2": round(area, 1),
            "passable_width_m": round(free_m, 2),
            "blocks_road": bool(free_m < PASS_WIDTH_M),
            "evidence": evidence,
        }
        # the image alone could not carry it: scored at the image detector's floor
        out.append((poly, 0.4, attrs))
    return out


def _near_fall(dsm_before: np.ndarray, dsm_after: np.ndarray, gsd: float) -> np.ndarray:
    """bool (rows, cols): within ``DEBRIS_M`` (m) of a fall of the surface of ``STOREY_M``."""
    fall = storey_falls(dsm_before, dsm_after)
    if not fall.any():
        return fall
    return ndi.distance_transform_edt(~fall, sampling=gsd) <= DEBRIS_M


def _spill_share(
    dsm_before: np.ndarray, dsm_after: np.ndarray, rr: np.ndarray, cc: np.ndarray, gsd: float
) -> float:
    """Share of the pixels (rr, cc) that ``_near_fall`` marks, measured around them only.

    A fall farther than ``DEBRIS_M`` cannot reach them, so the distances are taken over their
    bounding box grown by that reach (as ``clearance`` clears debris around each obstacle):
    the same answer as the whole window's, without a distance transform of the whole window.
    """
    r = int(np.ceil(DEBRIS_M / gsd)) + 1
    h, w = dsm_before.shape
    r0, r1 = max(0, int(rr.min()) - r), min(h, int(rr.max()) + 1 + r)
    c0, c1 = max(0, int(cc.min()) - r), min(w, int(cc.max()) + 1 + r)
    near = _near_fall(dsm_before[r0:r1, c0:c1], dsm_after[r0:r1, c0:c1], gsd)
    return float(near[rr - r0, cc - c0].mean())


def merge_dsm_piles(rubble: list) -> list:
    """Rubble findings with each pile seen by the DSMs only (``evidence.source`` "dsm") joined
    to the findings within ``rubble.MERGE_GAP_M`` of it, as ``find_rubble`` joins a pile's
    patches: a pile's shaded or faint part, or its part across a junction or a window edge,
    is part of that pile, not another.

    Args:
        rubble: (polygon, score, attributes) per finding, polygons in a metric CRS.

    Returns:
        The findings, merged; a merged finding keeps the image finding's evidence (or the
        largest DSM pile's), the best score, the narrowest passable width and the summed area.
    """
    dsm = [k for k, f in enumerate(rubble) if f[2].get("evidence", {}).get("source") == "dsm"]
    if not dsm:
        return rubble
    gap = RB.MERGE_GAP_M
    geoms = [f[0] for f in rubble]
    tree = shapely.STRtree(geoms)
    parent = list(range(len(rubble)))

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for k in dsm:
        for j in tree.query(geoms[k], predicate="dwithin", distance=gap):
            parent[root(int(j))] = root(k)
    groups: dict[int, list[int]] = {}
    for k in range(len(rubble)):
        groups.setdefault(root(k), []).append(k)
    out = []
    for g in groups.values():
        if len(g) == 1:
            out.append(rubble[g[0]])
            continue
        items = [rubble[k] for k in g]
        image = [f for f in items if f[2].get("evidence", {}).get("source") != "dsm"]
        lead = max(image or items, key=lambda f: f[0].area)
        # bridged over the gaps that joined them, as ``find_rubble`` bridges a pile's patches
        geom = shapely.union_all([f[0] for f in items]).buffer(gap / 2).buffer(-gap / 2)
        if geom.geom_type != "Polygon":
            geom = max(getattr(geom, "geoms", [geom]), key=lambda q: q.area)
        at = dict(lead[2])
        at["evidence"] = dict(at.get("evidence", {}), merged_dsm_piles=len(items) - len(image))
        at["area_m2"] = round(float(sum(f[2].get("area_m2", 0.0) for f in items)), 1)
        at["passable_width_m"] = min(f[2].get("passable_width_m", 0.0) for f in items)
        at["blocks_road"] = any(f[2].get("blocks_road", False) for f in items)
        out.append((geom, max(f[1] for f in items), at))
    return out
