"""Barricades, rubble and berms inside one window, and their scene-wide layers.

The detectors in ``fortmap.detect`` work on a window's arrays in pixel coordinates; this module
gives them the roads of the window, turns what they find into CRS geometries, and merges the
windows' findings into the ``barricades``, ``rubble`` and ``berms`` layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import rasterio.windows
import shapely
import shapely.affinity
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window
from scipy import ndimage as ndi

from fortmap.analyze.clearance import (
    DEBRIS_M,
    FILL_GAP_M,
    MIN_OBSTACLE_M2,
    OBSTACLE_M,
    STOREY_M,
)
from fortmap.detect import rubble as RB
from fortmap.detect.barricade_rows import MAX_ROW_ALONG_M, axis_mean
from fortmap.detect.barricades import PASS_WIDTH_M, block_change, find_barricades
from fortmap.detect.berms import find_berms, merge_pieces
from fortmap.detect.road_noise import RoadNoise
from fortmap.detect.road_window import RoadWindow
from fortmap.detect.roadmask import RoadRaster, roads_in_window, roads_to_pixels
from fortmap.detect.rubble import find_rubble
from fortmap.detect.rubble_kernels import RelativeRoughness
from fortmap.io.raster import GridReader
from fortmap.report.layers import findings_frame

#: context (pixels) the road and berm detectors need around a window's core
FORT_HALO_PX = 64

#: how far in front of a berm's crest its ditch lies at most, metres (a berm is 8-15 m wide and
#: its ditch is dug from the spoil beside it)
DITCH_FRONT_M = 30.0


#: Reach (m) around a detected block row within which new objects belong to the row: about one
#: block, so that a row is not reported again as rubble.
ROW_REACH_M = 1.5

#: Reach (m) of a razed building's spill beyond its footprint: debris of a demolition falls
#: within a few metres of the walls (the simulator spreads it 1-3 m). A rubble finding lying
#: mostly within it is that building's debris, reported in the razed-building layer.
RAZED_SPILL_M = 3.0
#: Share of a rubble finding's area within ``RAZED_SPILL_M`` of a razed footprint above which
#: it is the building's spill: most of it, i.e. more than half (not fitted).
RAZED_SPILL_SHARE = 0.5


@dataclass
class FortContext:
    """Scene-wide inputs of the fortification detectors (picklable).

    Attributes:
        roads: road centre lines in the analysis CRS (metres), or None (no road analysis).
        sun_azimuth: degrees clockwise from north of the sun at the after date, or None.
        sun_elevation: degrees above the horizon of the sun at the after date, or None.
        dsm_before, dsm_after: surface-height readers on the analysis grid, or None.
        road_noise: the scene's noise of the block contrasts
            (:func:`fortmap.detect.road_noise.scene_road_noise`), so that a row scores the
            same whatever window it is read in; None: each window measures its own.
    """

    roads: gpd.GeoDataFrame | None
    sun_azimuth: float | None
    dsm_before: GridReader | None = None
    dsm_after: GridReader | None = None
    sun_elevation: float | None = None
    road_noise: RoadNoise | None = None


@dataclass
class FortFindings:
    """A window's findings, geometries in the analysis CRS."""

    barricades: list = field(default_factory=list)
    rubble: list = field(default_factory=list)
    berms: list = field(default_factory=list)


def _to_crs(g: shapely.Geometry, t: Affine) -> shapely.Geometry:
    return shapely.affinity.affine_transform(g, [t.a, t.b, t.d, t.e, t.c, t.f])


def detect_window(
    fc: FortContext,
    before: np.ndarray,
    after: np.ndarray,
    valid: np.ndarray,
    read: Window,
    core_px: tuple[int, int, int, int],
    grid_transform: Affine,
    gsd: float,
) -> FortFindings:
    """Run the detectors on one window as read (core plus halo).

    Args:
        fc: scene context.
        before, after: normalised float32 (bands, rows, cols) of the window.
        valid: bool (rows, cols).
        read: the window read, on the analysis grid (pixels).
        core_px: (col0, row0, col1, row1) of the core inside the window, pixels.
        grid_transform: affine of the analysis grid.
        gsd: metres per pixel.
    """
    out = FortFindings()
    wt = grid_transform @ Affine.translation(read.col_off, read.row_off)
    kw = {}
    if fc.dsm_before is not None and fc.dsm_after is not None:
        kw = {"dsm_before": fc.dsm_before.read(read)[0], "dsm_after": fc.dsm_after.read(read)[0]}
    berms = find_berms(
        before, after, valid, gsd, fc.sun_azimuth, core_px, sun_elevation_deg=fc.sun_elevation, **kw
    )
    if fc.roads is not None and len(fc.roads):
        box = shapely.box(*rasterio.windows.bounds(read, grid_transform)).buffer(50)
        rw = fc.roads[fc.roads.intersects(box)]
        if len(rw):
            rp = roads_to_pixels(rw, wt, gsd)
            rr = roads_in_window(rp, valid.shape, 1.0 / gsd)
            # grey levels, road pixels and per-road levels, shared by barricades and rubble
            shared = RoadWindow.build(before, after, valid, rr)
            ch = block_change(before, after, valid, rr, gsd, rw=shared, noise=fc.road_noise)
            rows = find_barricades(
                before,
                after,
                valid,
                rr,
                rp,
                gsd,
                core_px,
                change=ch,
                rw=shared,
                sun_azimuth=fc.sun_azimuth,
                noise=fc.road_noise,
                **kw,
            )
            for g, s, at in rows:
                out.barricades.append((_to_crs(g, wt), s, at))
            # a row of blocks is one finding: new objects on it are not also debris
            on_row = shapely.union_all([g for g, _, _ in rows]).buffer(ROW_REACH_M / gsd)
            piles = []
            for g, s, at in find_rubble(before, after, valid, rr, rp, gsd, core_px, rw=shared):
                if rows and g.intersects(on_row):
                    continue
                if kw and not _stands_on_dsm(g, at, kw["dsm_before"], kw["dsm_after"], gsd):
                    continue
                piles.append((g, s, at))
            if kw:
                # piles the image finds too weak (deep shade, no brightening) but the DSMs see
                avoid = [_berm_body(g, at, gsd) for g, _, at in berms]
                if rows:
                    avoid.append(on_row)
                piles += find_dsm_rubble(
                    kw["dsm_before"], kw["dsm_after"], rr, shared, gsd, core_px, avoid
                )
            for g, s, at in piles:
                out.rubble.append((_to_crs(g, wt), s, at))
    for g, s, at in berms:
        out.berms.append((_to_crs(g, wt), s, at))
    return out


#: Half the base (m) of a berm of unknown height: half the widest berm (15 m) the issue names.
BERM_HALF_BASE_M = 7.5


def _berm_body(g: shapely.Geometry, at: dict, gsd: float) -> shapely.Geometry:
    """A berm crest or ditch (window pixels) buffered to its body: a soil bank of its
    height ``h`` at a 35 degree angle of repose reaches ``h / tan 35`` = 1.4 ``h`` either side."""
    h = at.get("height_m")
    half = BERM_HALF_BASE_M if h is None or not math.isfinite(h) else max(1.4 * h, 2.0)
    return g.buffer(half / gsd)


def _stands_on_dsm(
    g: shapely.Geometry, at: dict, dsm_before: np.ndarray, dsm_after: np.ndarray, gsd: float
) -> bool:
    """Whether a rubble finding (window pixel coordinates) is debris the DSMs can see.

    Debris that narrows a road raises its surface: where both DSMs are given, a finding over
    which the surface rose by ``OBSTACLE_M`` (0.3 m, what stops a car) on less than
    ``MIN_OBSTACLE_M2`` (1 m², the DSM noise floor of the obstacle mask) is no obstacle, e.g.
    a road coming out of a moved shadow. Where the DSMs hold no value over it, the image
    decides. Adds ``dsm_rise_m2`` to the finding's evidence.
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
    area = float(np.count_nonzero(rise[known] >= OBSTACLE_M)) * gsd * gsd
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

    Returns:
        (Polygon in window pixels, score, attributes) per pile, as ``rubble.find_rubble``.
    """
    with np.errstate(invalid="ignore"):
        m = (dsm_after - dsm_before) >= OBSTACLE_M
    k = max(1, int(round(FILL_GAP_M / gsd)))
    if k > 1:
        m = ndi.binary_closing(m, structure=np.ones((k, k), bool), border_value=0)
    # on the road with its kerbside margin, as the image detector grows a pile: debris along a
    # kerb straddles the carriageway's edge and would break into fragments there
    m &= roads.mask
    if not m.any():
        return []
    lab, n = ndi.label(m, np.ones((3, 3), bool))
    c0, r0, c1, r1 = core_px
    near = shapely.union_all([g for g in avoid if not g.is_empty])
    spill = None
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
        poly = RB._polygon(lab[sl] == i, (sl[1].start, sl[0].start))
        if poly is None or poly.is_empty or (not near.is_empty and poly.intersects(near)):
            continue
        if spill is None:
            spill = _near_fall(dsm_before, dsm_after, gsd)
        if spill[rr, cc].mean() > RAZED_SPILL_SHARE:
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
        if rel_rough is None:
            rel_rough = RelativeRoughness(rw, max(1, int(round(RB.ROUGH_M / gsd))) | 1)
        rel, rel_change = rel_rough.at(rr, cc)
        if rel <= RB.MIN_RELATIVE_ROUGHNESS:
            continue  # smooth for its brightness: a soil bank or paving, not debris
        width = float(roads.widths_px[road - 1])
        across = roads.across[rr[own], cc[own]]
        edges = np.arange(np.floor(-width / 2), np.ceil(width / 2) + 1)
        hit = np.histogram(across, bins=edges)[0] > 0
        free = run = 0
        for h in hit:
            run = 0 if h else run + 1
            free = max(free, run)
        free_m = min(free, width) * gsd
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
    with np.errstate(invalid="ignore"):
        fall = (dsm_before - dsm_after) >= STOREY_M
    if not fall.any():
        return fall
    return ndi.distance_transform_edt(~fall, sampling=gsd) <= DEBRIS_M


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


def _frame(layer: str, items: list, crs: CRS, dates: dict, columns: tuple[str, ...]):
    geoms = [g for g, _, _ in items]
    extra = {c: [at.get(c) for _, _, at in items] for c in columns}
    return findings_frame(
        layer,
        geoms,
        [s for _, s, _ in items],
        crs,
        evidence=[at.get("evidence", {}) for _, _, at in items],
        extra=extra,
        **dates,
    )


def _merge_berms(pieces: list) -> list:
    """Join crest pieces cut by window edges; a merged crest keeps its pieces' best score,
    greatest height and every source."""
    out = []
    for kind in ("berm", "ditch"):
        parts = [p for p in pieces if p[2].get("kind", "berm") == kind]
        if not parts:
            continue
        tree = shapely.STRtree([g for g, _, _ in parts])
        for line in merge_pieces([g for g, _, _ in parts]):
            idx = tree.query(line, predicate="dwithin", distance=1.0)
            mine = [parts[i] for i in idx] or parts[:0]
            heights = [at.get("height_m") for _, _, at in mine]
            heights = [h for h in heights if h is not None and not math.isnan(h)]
            sources = {at.get("source", "image") for _, _, at in mine}
            source = "both" if "both" in sources or {"image", "dsm"} <= sources else sources.pop()
            out.append(
                (
                    line,
                    max((s for _, s, _ in mine), default=0.5),
                    {
                        "berm_kind": kind,
                        "height_m": max(heights) if heights else math.nan,
                        "source": source,
                        "evidence": {"pieces": len(mine)},
                    },
                )
            )
    return out


def drop_razed_spill(rubble: list, razed: gpd.GeoSeries | None) -> list:
    """Rubble findings less those that are a razed building's spill.

    Args:
        rubble: (polygon, score, attributes) per finding, polygons in the analysis CRS (m).
        razed: footprints of razed buildings in the same CRS, or None (nothing dropped).

    Returns:
        The findings of which at most ``RAZED_SPILL_SHARE`` of the area lies within
        ``RAZED_SPILL_M`` of a razed footprint.
    """
    if razed is None or len(razed) == 0 or not rubble:
        return rubble
    reach = shapely.union_all(np.asarray(razed.geometry.values)).buffer(RAZED_SPILL_M)
    out = []
    for item in rubble:
        g = item[0]
        if g.area > 0 and g.intersection(reach).area / g.area > RAZED_SPILL_SHARE:
            continue
        out.append(item)
    return out


def fortification_layers(
    found: FortFindings,
    crs: CRS,
    dates: dict,
    roads_given: bool,
    dsm_given: bool = False,
    razed: gpd.GeoDataFrame | None = None,
) -> dict[str, gpd.GeoDataFrame]:
    """The ``barricades``, ``rubble`` (when roads were given) and ``berms`` layers.

    With DSMs, a ridge seen in the image with no height change in the DSMs is contradicted by
    the better evidence and dropped. With ``razed`` (the razed-building layer, analysis CRS),
    debris lying mostly within a razed footprint's spill reach is left to that layer
    (``drop_razed_spill``).
    """
    layers = {}
    if roads_given:
        layers["barricades"] = _frame(
            "barricades",
            found.barricades,
            crs,
            dates,
            ("road_name", "road_class", "width_m", "n_blocks", "blocks_road"),
        )
        layers["rubble"] = _frame(
            "rubble",
            drop_razed_spill(
                merge_dsm_piles(found.rubble), None if razed is None else razed.geometry
            ),
            crs,
            dates,
            ("road_name", "road_class", "passable_width_m", "blocks_road"),
        )
    pieces = found.berms
    if dsm_given:
        pieces = [p for p in pieces if p[2].get("source") in ("dsm", "both")]
    berms = _merge_berms(pieces)
    # a ditch is reported where it fronts a berm (the trenches "in front of berms"); a
    # drop elsewhere is a razed row of buildings or felled trees, already reported as such
    crests = [g for g, _, at in berms if at["berm_kind"] == "berm"]
    if crests:
        near = shapely.union_all(crests).buffer(DITCH_FRONT_M)
        berms = [b for b in berms if b[2]["berm_kind"] == "berm" or b[0].intersects(near)]
    else:
        berms = [b for b in berms if b[2]["berm_kind"] == "berm"]
    frame = _frame("berms", berms, crs, dates, ("height_m", "source"))
    # trenches and ditches are reported in the same layer, told apart by ``kind``
    frame["kind"] = [at["berm_kind"] for _, _, at in berms]
    layers["berms"] = frame
    return layers
