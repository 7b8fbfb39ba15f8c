"""Barricades: rows of new objects across a road (concrete blocks, 1-2 m each).

The pixel tests (new block pixels, each against its road's sunlit level and against the road
ahead and behind it) live in ``block_change``; the second pass over road in deep shade in
``shade_rows``; the grouping of pixels into rows in ``barricade_rows``. This module runs them
over a window and keeps the rows that pass the tests below.

A row of blocks stands on plain road, so a sunlit row must be most of the new material it is
joined to (``MAX_MASS_RATIO``): the along-road test cuts a textured rubble pile into bright
pieces, some row-shaped, that are each a small part of the pile.

Connected new-object pixels are measured in the road's frame; at a crossing, lone blocks
that form no row in the frame of the road owning the crossing's pixels are grouped again in
the frame of each road they lie on (``barricade_rows.junction_rows``). A barricade is a row of pieces,
each short along the road (a block is 1-2 m; blur and shadows add about a metre), spanning a
good part of the road across it: a parked car (4-5 m along, 2 m across) or a single block is
not one. Blocks stand on the carriageway, so a row ends there: one wider than the carriageway
by more than blur allows is a change that the road mask merely cuts (a shadow sliding off a
narrow lane as the sun moves, land cleared at a dead end).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from fortmap.detect import fort_kernels as K
from fortmap.detect.barricade_dsm import DSM_BLOCK_RISE_M, dsm_rise_at, dsm_rows
from fortmap.detect.barricade_ends import off_road_change
from fortmap.detect.barricade_rows import (  # noqa: F401  (re-exported for rubble)
    ALONG_REF_M,
    MAX_ROW_ALONG_M,
    ROW_GAP_M,
    Piece,
    across_road,
    free_gap,
    group_rows,
    hysteresis,
    hysteresis_pixels,
    junction_rows,
    masked_box,
    merge_split_rows,
    pieces,
    reframe,
    row_ok,
)
from fortmap.detect.block_change import (  # noqa: F401  (re-exported)
    BLOCK_GAP_M,
    BLOCK_M,
    GROW_SIGMA,
    MIN_SIGMA,
    SEED_SIGMA,
    RoadChange,
    _road_medians,
    along_change,
    block_change,
    box_opening,
    opening_px,
    road_change,
)
from fortmap.detect.change_stats import median_np
from fortmap.detect.road_noise import RoadNoise
from fortmap.detect.road_pixels import (
    MIN_CLASS_PX,  # noqa: F401  (re-exported)
    PointBox,
    RoadWindow,
)
from fortmap.detect.road_window import lit_both
from fortmap.detect.roadmask import ROAD_MARGIN_M, RoadRaster, own_axes
from fortmap.detect.shade_rows import (  # noqa: F401  (re-exported)
    MIN_SHADE_COVER,
    MIN_SUN_SKEW_DEG,
    _along_sun,
    shade_change,
    shade_row_ok,
)

#: A vehicle needs this much free width (m) to pass: a car is ~1.8 m wide.
PASS_WIDTH_M = 2.5
#: Most a row may exceed its carriageway's width (m): blocks stand on the carriageway and
#: blur widens the row by under 0.5 m at each end; more is a change the road mask merely cuts
#: (a shadow sliding across a lane, land cleared at a dead end).
MAX_OVERHANG_M = 1.0
#: Length (m) of the shortest row: two blocks of ``BLOCK_M`` and a typical gap between them.
MIN_ROW_BLOCKS_M = 2 * BLOCK_M + BLOCK_GAP_M
#: Most new material a sunlit row may be joined to, as a multiple of its own pixels. Blocks
#: stand on plain road: the pixels brighter than sunlit road and new around a row, taken
#: without the along-road bound that cuts a row out, are the row itself and its blurred rim
#: (a blurred 1.5 m block loses or gains under half its area at the 3 sigma level). A row
#: that is less than half of the new material it is connected to is the edge of a larger
#: mass, a rubble pile or a newly lit field, that the along-road test merely cut.
MAX_MASS_RATIO = 2.0
#: When a list, ``find_barricades`` appends (centre row, col in window pixels, test failed or
#: "kept", measures) per candidate row: a diagnostic hook for benchmarks, None in production.
TRACE: list | None = None


def _note(rr: np.ndarray, cc: np.ndarray, why: str, **kw: float) -> None:
    if TRACE is not None:
        TRACE.append((float(rr.mean()) + 0.5, float(cc.mean()) + 0.5, why, kw))


def _joined(m: np.ndarray, rr: np.ndarray, cc: np.ndarray) -> int:
    """Pixels of the 8-connected components of bool mask ``m`` that hold one of the pixels
    (rr, cc), filled from them (no labelling of the whole window)."""
    return int(K.components_touching(m, rr, cc).size)


def _rows(
    ch: RoadChange,
    grow: np.ndarray,
    roads: RoadRaster,
    roads_px: gpd.GeoDataFrame,
    gsd: float,
) -> list[list[Piece]]:
    """Block rows among the new-object pixels ``grow`` (already opened) seeded by
    ``ch.seed``: pieces framed by their road, grouped and checked (``row_ok``)."""
    seed = ch.seed & grow  # formed once for the test and the fill
    if not seed.any():
        return []
    lab, n, px = hysteresis_pixels(seed, grow)
    reach = ROAD_MARGIN_M / gsd
    found = pieces(lab, n, roads, px)
    cands = [q for q in (reframe(p, roads, roads_px, reach, gsd) for p in found)
             if across_road(q, gsd)]  # fmt: skip
    rows, rest = [], []
    for g in group_rows(cands, gsd):
        ok = row_ok(g, ch.contrast, gsd, SEED_SIGMA)
        (rows if ok else rest).append(g)
        if not ok and TRACE is not None:
            rr = np.concatenate([p.rows for p in g])
            _note(rr, np.concatenate([p.cols for p in g]), "row_ok", pieces=len(g), px=rr.size)
    # lone blocks of a row across a junction, framed by the road owning the crossing
    rest = [p for g in rest for p in g]
    rows += junction_rows(rest, roads, roads_px, reach, gsd, ch.contrast, SEED_SIGMA)
    return merge_split_rows(rows, gsd)


def find_barricades(
    before: np.ndarray,
    after: np.ndarray,
    valid: np.ndarray,
    roads: RoadRaster,
    roads_px: gpd.GeoDataFrame,
    gsd: float,
    core_px: tuple[int, int, int, int],
    change: RoadChange | None = None,
    rw: RoadWindow | None = None,
    sun_azimuth: float | None = None,
    noise: RoadNoise | None = None,
    dsm_before: np.ndarray | None = None,
    dsm_after: np.ndarray | None = None,
) -> list[tuple[shapely.LineString, float, dict]]:
    """Rows of new objects across roads in one window.

    Args:
        before, after: matched images of the window, (bands, rows, cols).
        valid: bool (rows, cols).
        roads: the window's :class:`RoadRaster` (from ``roads_in_window``).
        roads_px: the roads in window pixel coordinates (as given to ``roads_in_window``).
        gsd: metres per pixel.
        core_px: (col0, row0, col1, row1) of the window's core, pixels; a barricade is kept
            when its centre lies in the core.
        change: precomputed ``block_change(before, after, valid, roads, gsd, noise=noise)``
            (optional).
        rw: the window's shared :class:`RoadWindow` (optional).
        sun_azimuth: degrees clockwise from north of the sun at the after date, or None; with
            it, a row found in deep shade whose long axis runs along the sun is dropped (light
            let through between shadows). Window pixels are taken as north-up.
        noise: the scene's noise of the block contrasts (``road_noise.scene_road_noise``),
            or None to measure it on the window (which makes a row's score depend on the
            window layout).
        dsm_before, dsm_after: surface heights (m) on the window's grid, NaN where unknown,
            or None. With both, an image row under which the surface did not rise by a
            block's height, or that is the edge of a larger risen mass, is dropped
            (``barricade_dsm.dsm_rise_at``), and rows the DSMs alone show are added
            (``barricade_dsm.dsm_rows``).

    Returns:
        (LineString across the road in window pixels, score 0..1, attributes) per barricade;
        attributes: ``road_name``, ``road_class``, ``width_m`` (span across the road, m),
        ``n_blocks``, ``blocks_road`` and ``evidence`` (dict).
    """
    rw = rw or RoadWindow.build(before, after, valid, roads)
    ch = change or block_change(before, after, valid, roads, gsd, rw=rw, noise=noise)
    lit_grow = box_opening(ch.grow, opening_px(gsd))
    groups = [(g, ch) for g in _rows(ch, lit_grow, roads, roads_px, gsd)]
    shade = shade_change(rw, gsd, ch.sigma, lit_grow, noise.shade if noise else None)
    if shade is not None:
        groups += [(g, shade) for g in _rows(shade, shade.grow, roads, roads_px, gsd)]
    rise = None
    if dsm_before is not None and dsm_after is not None:
        rise = (dsm_after - dsm_before).astype(np.float32)
        # the DSM rows come last: a row the image found is kept as the image measured it
        reach = ROAD_MARGIN_M / gsd
        groups += [(g, None) for g in dsm_rows(rise, roads, roads_px, reach, gsd, MAX_MASS_RATIO)]
    if not groups:
        return []  # most windows: no row
    off = valid & ~roads.mask
    # the smoothed levels are read at a few points past a row's ends only
    ga_s, gb_s = PointBox(rw.ga, valid), PointBox(rw.gb, valid)
    lit = lit_both(rw, 1)
    c0, r0, c1, r1 = core_px
    mass = None
    out = []
    kept: list[shapely.LineString] = []
    for g, gch in groups:
        lo = min(p.across_span[0] for p in g)
        hi = max(p.across_span[1] for p in g)
        span = hi - lo
        rr = np.concatenate([p.rows for p in g])
        cc = np.concatenate([p.cols for p in g])
        along_len = own_axes(rr, cc)[2]
        from_dsm = gch is None
        cy, cx = float(rr.mean()) + 0.5, float(cc.mean()) + 0.5
        if not (c0 <= cx < c1 and r0 <= cy < r1):
            continue
        if from_dsm:
            # a 1.4 m block (twice DSM_BLOCK_RISE_M) scores as a 2 x SEED_SIGMA contrast
            contrast = float(median_np(rise[rr, cc])) / DSM_BLOCK_RISE_M * SEED_SIGMA
            pt = shapely.Point(cx, cy)
            if any(q.distance(pt) <= ROW_GAP_M / gsd for q in kept):
                continue  # the image found this row
        else:
            contrast = float(median_np(gch.contrast[rr, cc]))
        p0 = g[0]
        width = float(p0.width_px)
        # Runs of object pixels across the row tell apart blocks with visible gaps.
        bins = np.zeros(int(np.ceil(span)) + 1, bool)
        for p in g:
            bins[np.clip((p.across - lo).astype(int), 0, len(bins) - 1)] = True
        runs = int(np.count_nonzero(bins[1:] & ~bins[:-1]) + bins[0])
        # Blurred blocks often merge: count at least one per block plus a typical gap.
        n_blocks = max(2, runs, int(round((span * gsd + BLOCK_GAP_M) / (BLOCK_M + BLOCK_GAP_M))))
        gap = free_gap([(lo, hi)], width)
        # Line across the road through the row centre, from one end of the row to the other.
        nrm = np.array([-np.sin(p0.theta), np.cos(p0.theta)])
        acr = np.concatenate([p.across for p in g])
        proj = (cc + 0.5) * nrm[0] + (rr + 0.5) * nrm[1]
        if np.dot(acr - acr.mean(), proj - proj.mean()) < 0:
            nrm = -nrm  # the road's left side, as ``across`` counts it
        base = np.array([cx, cy]) - nrm * float(acr.mean())
        # a row is two blocks at least, and on a lane narrower than two blocks it runs past
        # the kerbs: measure its overhang against the wider of the two
        if span * gsd > max(width * gsd, MIN_ROW_BLOCKS_M) + MAX_OVERHANG_M:
            _note(rr, cc, "overhang", span_m=span * gsd, width_m=width * gsd)
            continue
        in_shade = gch is not ch and not from_dsm
        if rise is not None and not from_dsm:
            seen = dsm_rise_at(rise, rr, cc, gsd, MAX_MASS_RATIO)
            if seen is False:
                _note(rr, cc, "dsm")
                continue
            seen = bool(seen)
        else:
            seen = from_dsm
        if in_shade and not shade_row_ok(rw, rr, cc, span / max(width, 1.0), lit[p0.road + 1],
                                          ch.sigma, gsd, sun_azimuth, gch.sigma):  # fmt: skip
            _note(rr, cc, "shade_row", cover=span / max(width, 1.0))
            continue
        # a sunlit row is most of the new material it is joined to (MAX_MASS_RATIO); where
        # the DSMs saw it, they measured that on the heights, which debris does not blur
        if not in_shade and not seen and ch.mass is not None:
            if mass is None:
                mass = np.ascontiguousarray(ch.mass)
            joined = _joined(mass, rr, cc)
            if joined > MAX_MASS_RATIO * len(rr):
                _note(rr, cc, "mass", ratio=joined / len(rr))
                continue
        # light let through between shadows brightens the ground past the road too
        beyond = 0.0 if from_dsm else off_road_change(ga_s, gb_s, off, rr, cc, gsd, gch.sigma)
        if beyond > GROW_SIGMA:
            _note(rr, cc, "beyond", beyond=beyond)
            continue
        _note(rr, cc, "kept", shade=float(in_shade), contrast=contrast)
        line = shapely.LineString([base + nrm * lo, base + nrm * hi])
        kept.append(line)
        cover = min(span / max(width, 1.0), 1.0)
        score = float(np.clip(0.5 * cover + 0.5 * min(contrast / (2 * SEED_SIGMA), 1.0), 0, 1))
        out.append(
            (
                line,
                score,
                {
                    "road_name": roads.names[p0.road],
                    "road_class": roads.classes[p0.road],
                    "width_m": round(span * gsd, 2),
                    "n_blocks": int(n_blocks),
                    "blocks_road": bool(gap * gsd < PASS_WIDTH_M),
                    "evidence": {
                        "contrast_sigma": round(contrast, 2),
                        "noise_sigma": round(gch.sigma, 4) if gch is not None else None,
                        "along_m": round(along_len * gsd, 2),
                        "road_width_m": round(width * gsd, 2),
                        "free_gap_m": round(gap * gsd, 2),
                        "pieces": len(g),
                        "off_road_sigma": round(beyond, 2),
                        "in_shade": bool(in_shade),
                        "source": "dsm" if from_dsm else ("both" if seen else "image"),
                    },
                },
            )
        )
    return out
