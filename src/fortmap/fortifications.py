"""Barricades, rubble and berms inside one window, and their scene-wide layers.

The detectors in ``fortmap.detect`` work on a window's arrays in pixel coordinates; this module
gives them the roads of the window, turns what they find into CRS geometries, and merges the
windows' findings into the ``barricades``, ``rubble`` and ``berms`` layers.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import rasterio.windows
import shapely
import shapely.affinity
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from fortmap.berm_scene import WorkPart, footprint_labels, work_part
from fortmap.detect.barricades import block_change, find_barricades
from fortmap.detect.berms import BermBounds, find_berms, merge_pieces
from fortmap.detect.dsm_noise import DsmNoise, DsmRules, berm_surfaces, dsm_rules
from fortmap.detect.dsm_rubble import (  # noqa: F401  (re-exported)
    RAZED_SPILL_SHARE,
    _berm_body,
    _stands_on_dsm,
    find_dsm_rubble,
    merge_dsm_piles,
)
from fortmap.detect.road_noise import RoadNoise
from fortmap.detect.road_pixels import RoadWindow
from fortmap.detect.roadmask import roads_in_window, roads_to_pixels
from fortmap.detect.rubble import find_rubble
from fortmap.io.raster import GridReader
from fortmap.report.layers import findings_frame

#: context (pixels) the road and berm detectors need around a window's core
FORT_HALO_PX = 64

#: Side (pixels) of the fixed blocks the barricade and rubble detectors run on, whatever
#: ``--window``: their noise, lit/shade split and per-road levels are taken over the block
#: and its halo, so a window of another size would find other rows and piles
#: (BENCHMARKS.md, "Findings and the window size"). 1024 px is the default window.
FORT_BLOCK_PX = 1024

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


@dataclass
class FortContext:
    """Scene-wide inputs of the fortification detectors (picklable).

    Attributes:
        roads: road centre lines in the analysis CRS (metres), or None (no road analysis).
        sun_azimuth: degrees clockwise from north of the sun at the after date, or None.
        sun_elevation: degrees above the horizon of the sun at the after date, or None.
        dsm_before, dsm_after: surface-height readers on the analysis grid (NaN where
            unknown, the after DSM's offset and tilt removed: ``dsm_noise.CorrectedDsm``), or
            None.
        road_noise: the scene's noise of the block contrasts
            (:func:`fortmap.detect.road_noise.scene_road_noise`), so that a row scores the
            same whatever window it is read in; None: each window measures its own.
        dsm_noise: the DSM difference's offset, tilt and noise
            (:func:`fortmap.detect.dsm_noise.estimate_dsm_noise`), added to the evidence of
            what the DSMs found; None: not measured.
        dsm_rules: thresholds and on/off of the DSM rules under that noise
            (:func:`fortmap.detect.dsm_noise.dsm_rules`); None: all on at their floors. A rule
            switched off leaves its step to the image alone.
        footprints: the footprints in analysis-grid pixels (polygons), or None.
        berm_bounds: the berm image path's change bounds for the scene
            (:func:`fortmap.detect.berms.scene_berm_bounds`), or None (each window's own).
        scene_shape: (rows, cols) of the analysis grid. Given, the windows do not look for
            berms but hand back their blocks of the scene's work grid (``FortFindings.works``),
            and the berms are found on the whole grid (:mod:`fortmap.berm_scene`); None:
            berms window by window.
    """

    roads: gpd.GeoDataFrame | None
    sun_azimuth: float | None
    dsm_before: GridReader | None = None
    dsm_after: GridReader | None = None
    sun_elevation: float | None = None
    road_noise: RoadNoise | None = None
    dsm_noise: DsmNoise | None = None
    dsm_rules: DsmRules | None = None
    footprints: np.ndarray | None = None
    berm_bounds: BermBounds | None = None
    scene_shape: tuple[int, int] | None = None


@dataclass
class FortFindings:
    """A window's findings, geometries in the analysis CRS."""

    barricades: list = field(default_factory=list)
    rubble: list = field(default_factory=list)
    berms: list = field(default_factory=list)
    works: list[WorkPart] = field(default_factory=list)


def _to_crs(g: shapely.Geometry, t: Affine) -> shapely.Geometry:
    return shapely.affinity.affine_transform(g, [t.a, t.b, t.d, t.e, t.c, t.f])


def _footprint_labels(fc: FortContext, read: Window) -> np.ndarray | None:
    """The footprints overlapping ``read`` rasterised on its grid (int labels, 0 = none)."""
    if fc.footprints is None or not len(fc.footprints):
        return None
    origin = (read.col_off, read.row_off)
    return footprint_labels(fc.footprints, origin, 1, (int(read.height), int(read.width)))


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
    rules = fc.dsm_rules or dsm_rules(None)
    if fc.dsm_before is not None and fc.dsm_after is not None:
        kw = {"dsm_before": fc.dsm_before.read(read)[0], "dsm_after": fc.dsm_after.read(read)[0]}
    # a rule the DSMs' noise cannot carry gets no DSMs: its detector runs on the image alone
    with warnings.catch_warnings():
        # a crest across a DSM hole has stations with no height: they do not count as ridge
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        berm_kw = {}
        if kw and rules.on("berms"):
            zb, za = berm_surfaces(kw["dsm_before"], kw["dsm_after"], gsd, fc.dsm_noise)
            berm_kw = {"dsm_before": zb, "dsm_after": za}
        else:
            # the DSM path judges buildings by height; footprints only guide the image path,
            # rasterised only where it finds a crest (most windows find none)
            berm_kw = {"footprints": lambda: _footprint_labels(fc, read)}
        if fc.scene_shape is not None:
            # berms are found on the scene's work grid after the window pass
            core = Window(read.col_off + core_px[0], read.row_off + core_px[1],
                          core_px[2] - core_px[0], core_px[3] - core_px[1])  # fmt: skip
            surfaces = (zb, za) if "dsm_before" in berm_kw else None
            part = work_part(before, after, valid, read, core, gsd, fc.scene_shape, surfaces)
            if part is not None:
                out.works.append(part)
            berms = []
        else:
            berms = find_berms(
                before, after, valid, gsd, fc.sun_azimuth, core_px,
                sun_elevation_deg=fc.sun_elevation, bounds=fc.berm_bounds, **berm_kw,
            )  # fmt: skip
    rubble_kw = kw if rules.on("rubble") else {}
    rise_m = rules.threshold("rubble")
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
                **(kw if rules.on("block_rows") else {}),
            )
            for g, s, at in rows:
                out.barricades.append((_to_crs(g, wt), s, at))
            # a row of blocks is one finding: new objects on it are not also debris
            on_row = shapely.union_all([g for g, _, _ in rows]).buffer(ROW_REACH_M / gsd)
            piles = []
            for g, s, at in find_rubble(before, after, valid, rr, rp, gsd, core_px, rw=shared):
                if rows and g.intersects(on_row):
                    continue
                if rubble_kw and not _stands_on_dsm(
                    g, at, kw["dsm_before"], kw["dsm_after"], gsd, rise_m
                ):
                    continue
                piles.append((g, s, at))
            if rubble_kw:
                # piles the image finds too weak (deep shade, no brightening) but the DSMs see
                avoid = [_berm_body(g, at, gsd) for g, _, at in berms]
                if rows:
                    avoid.append(on_row)
                piles += find_dsm_rubble(
                    kw["dsm_before"], kw["dsm_after"], rr, shared, gsd, core_px, avoid, rise_m
                )  # fmt: skip
            for g, s, at in piles:
                out.rubble.append((_to_crs(g, wt), s, at))
    for g, s, at in berms:
        out.berms.append((_to_crs(g, wt), s, at))
    if fc.dsm_noise is not None:
        for _, _, at in out.barricades + out.rubble + out.berms:
            tag_dsm_evidence(at, fc.dsm_noise)
    return out


def tag_dsm_evidence(at: dict, noise: DsmNoise) -> None:
    """Add the DSMs' offset, tilt and noise (``evidence.dsm_quality``) to a finding's
    attributes ``at`` (in place) when the DSMs found or confirmed it."""
    ev = at.setdefault("evidence", {})
    source = at.get("source", ev.get("source"))
    if source in ("dsm", "both") or "dsm_rise_m2" in ev:
        ev["dsm_quality"] = noise.evidence()


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
            ev = {"pieces": len(mine)}
            quality = [at["evidence"]["dsm_quality"] for _, _, at in mine
                       if "dsm_quality" in at.get("evidence", {})]  # fmt: skip
            if quality:
                ev["dsm_quality"] = quality[0]
            out.append(
                (
                    line,
                    max((s for _, s, _ in mine), default=0.5),
                    {
                        "berm_kind": kind,
                        "height_m": max(heights) if heights else math.nan,
                        "source": source,
                        "evidence": ev,
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
    # only the razed footprints within reach of each finding: the union of all of them,
    # buffered, grew with the scene (2863 change objects at 6 km took 10 s and 200 MB)
    geoms = np.asarray(razed.geometry.values)
    tree = shapely.STRtree(geoms)
    out = []
    for item in rubble:
        g = item[0]
        near = tree.query(g, predicate="dwithin", distance=RAZED_SPILL_M)
        if g.area > 0 and len(near):
            reach = shapely.union_all(geoms[np.sort(near)]).buffer(RAZED_SPILL_M)
            if g.intersection(reach).area / g.area > RAZED_SPILL_SHARE:
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
