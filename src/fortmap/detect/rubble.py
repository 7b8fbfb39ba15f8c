"""Rubble on routes: debris newly lying on a road's carriageway.

Uses the same road-surface contrast as barricades (``barricades.road_change``: brighter than
the road's own median in the after image and brighter than before, in units of the in-scene
robust noise), measured on a 1.5 m box-smoothed image because debris is a speckled field, not a
solid object (a wider box dilutes the narrow piles of a narrow street, 1.5-3 m across). A pile
often breaks into patches (lumps and their own small shadows), so pieces of new material on one
road within 8 m of each other are joined and measured as one pile, its pixels in a
junction included. A pile is kept when it covers a few square metres, when its
raw (unsmoothed) new material forms a mass longer along the road than one concrete block (a
block row, however many rows deep, is separate block-sized objects; a candidate longer than two
rows is no row and skips this test), when its texture grew more
than the road's, and when it is rougher for its brightness (``RK.RelativeRoughness``, blind to
light and to smooth slopes) than the road around it and than what lay there before: that keeps
out a berm's smooth end on the road and road leaving a shadow. A pile must also stand above its
road's sunlit level in the after image: road leaving a shadow reaches that level and no more.
Where the pile's ground lay in deep shade before, the before roughness is sensor noise over a
dark level, so the change in relative roughness is not asked for there; where part of it lay
in shade, the change is measured on the part lit then. A kept pile is extended over its own
road down to 1.5 sigmas of contrast (its faint margins), as the low bar of a second hysteresis.
Debris spilling onto the kerb from a razed building beside the road (a pile hugging the kerb
with changed ground beyond it) is left to the razed-building layer.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from rasterio.features import shapes
from scipy import ndimage as ndi

from fortmap.detect import fort_kernels as K
from fortmap.detect import rubble_kernels as RK
from fortmap.detect.barricade_rows import hysteresis_pixels
from fortmap.detect.barricades import (
    GROW_SIGMA,
    MAX_ROW_ALONG_M,
    MIN_SIGMA,
    PASS_WIDTH_M,
    Piece,
)
from fortmap.detect.road_pixels import RoadWindow
from fortmap.detect.road_window import SHADE_SIGMAS, lit_both, lit_level, road_contrast
from fortmap.detect.roadmask import RoadRaster
from fortmap.detect.rubble_pieces import Component, disk, frame, merge, pieces

#: Box filter side (m) over which debris speckle is averaged: 3 px at 0.5 m. A pile on a
#: narrow street (Helsinki layout, 4-6 m roads) is 1.5-3 m across; a 2.5 m box diluted its
#: contrast below the seed threshold (chosen on Helsinki seeds 1-5 and default seeds 1-5).
SMOOTH_M = 1.5
#: Least contrast (robust sigmas of the road change) of a pile's after level over its road's
#: sunlit level: the grow threshold of new material (``barricades.GROW_SIGMA``), a noise
#: multiple; no margin was fitted.
MIN_LIT_SIGMA = GROW_SIGMA
#: Seed threshold of pile pixels, robust sigmas of the window's own road change: the
#: barricades' seed until they came to be scaled by the scene's noise from the anchored tiles
#: (``block_change.SEED_SIGMA``, 5.5 since); rubble's noise did not change with it.
RUBBLE_SEED_SIGMA = 6.0
#: Box side (m) of the relative roughness (``RK.RelativeRoughness``).
ROUGH_M = 2.5
#: Smallest pile reported (m2): about a car's footprint, the least that narrows a lane.
MIN_AREA_M2 = 8.0
#: Smallest median log ratio of local roughness after / before (``RK.RoadRoughness``): ln 1.5,
#: set on seeds 1-3 of the simulator.
MIN_ROUGHNESS = float(np.log(1.5))
#: Largest share of a component outside the carriageway: more is spill from off the road.
MAX_OFFROAD_FRACTION = 0.35
#: Pieces of new material on one road closer than this (m) are one pile: debris thins out into
#: patches with bare road between them (on the dev scenes one pile's patches lay 4-8 m apart
#: where it was faint or partly shaded), whereas separate obstacles stand tens of metres apart
#: (the simulator puts piles 25 m and rows 30 m apart; a real dump is one truckload). Raised
#: from 4 m (a car's length) on Helsinki dev seeds 1-10 (4 and 8 tried).
MERGE_GAP_M = 8.0
#: Contrast (robust sigmas of the road change, 1.5 m smoothed) down to which a pile that passed
#: every test is extended over its own road: the low bar of a second hysteresis, so that the
#: pile's faint margins (debris thinning out, parts in half shade) are measured with it. An
#: isolated 1.5 sigma speck (7 % one-sided) is not reached: only components touching the pile
#: join it. 1.5 was chosen on the dev seeds over 2.0 (both tried).
EXTEND_SIGMA = 1.5
#: An extension that would more than triple the pile is not taken: it is a lighting change
#: spreading along the road, not the pile's margin.
EXTEND_MAX = 3.0
#: A candidate longer along its road than this many block rows (``MAX_ROW_ALONG_M`` each) is no
#: block row, even two rows deep: the one-mass test (``_longest_blob``) is not asked of it.
#: Faint debris breaks into specks at the raw 3 sigma level, which that test reads as
#: block-sized objects (5 dev piles on narrow paths were lost so).
ROW_MULTIPLE = 2.0
#: When a list, ``find_rubble`` appends (centroid row, col in window pixels, test failed or
#: "kept", measures) per candidate pile: a diagnostic hook for benchmarks, None in production.
TRACE: list | None = None


def _note(p: Piece | Component, why: str, **kw: float) -> None:
    if TRACE is not None:
        TRACE.append((float(p.rows.mean()) + 0.5, float(p.cols.mean()) + 0.5, why, kw))


def _longest_blob(p: Piece, raw: np.ndarray) -> float:
    """Longest extent along the road (px) of one connected object of raw new pixels in a piece
    (``raw``: bool per pixel of the piece).

    A block row, however many rows deep, is a set of separate blocks, each one block long
    along the road (plus blur); a debris field is one mass of broken material as long as the
    pile itself.
    """
    r0, c0 = p.rows.min(), p.cols.min()
    m = np.zeros((p.rows.max() - r0 + 1, p.cols.max() - c0 + 1), bool)
    m[p.rows - r0, p.cols - c0] = raw
    lab, n = ndi.label(m, np.ones((3, 3), bool))
    if n == 0:
        return 0.0
    k = lab[p.rows - r0, p.cols - c0]
    best = 0.0
    for i in range(1, n + 1):
        a = p.along[k == i]
        if a.size >= 4:
            lo, hi = np.percentile(a, (5, 95))
            best = max(best, float(hi - lo + 1))
    return best


#: Least excess (natural log) of a pile's relative roughness (``RK.RelativeRoughness``) over its
#: road's, in the after image and in its change since the before image: debris must be
#: rougher, for its brightness, than the asphalt it lies on and than what lay there before.
#: Zero, from first principles (no margin was fitted): broken material of mixed albedo is
#: rougher than asphalt, whereas a berm's smooth soil, fresh paving and road leaving a shadow
#: (whose texture brightens with its level) are not.
MIN_RELATIVE_ROUGHNESS = 0.0


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


#: A pile with more than this share in the kerbside margin hugs the kerb (set on the dev
#: seeds d1-d3 and Helsinki seed 1: the spill strips there sit at 0.2-0.35, piles in the road
#: below 0.12 unless they are under 3 m across).
SPILL_OFFROAD_FRACTION = 0.2
#: Width (m) of the ring of ground beyond the road looked at around a pile.
RING_M = 2.0


def _outside(
    p: Piece, offz: RK.OffRoadChange, off: np.ndarray, ring: np.ndarray
) -> tuple[float, float]:
    """Share of changed ground (over 3 sigma) in the ring beyond the road around a piece, on
    the left and on the right of its road (0 where a side has no ground to look at)."""
    pad = ring.shape[0] // 2 + 1
    r0, c0 = max(p.rows.min() - pad, 0), max(p.cols.min() - pad, 0)
    r1 = min(p.rows.max() + pad + 1, off.shape[0])
    c1 = min(p.cols.max() + pad + 1, off.shape[1])
    m = np.zeros((r1 - r0, c1 - c0), bool)
    m[p.rows - r0, p.cols - c0] = True
    ok = ndi.binary_dilation(m, ring) & off[r0:r1, c0:c1]
    rr, cc = np.nonzero(ok)
    if rr.size == 0:
        return (0.0, 0.0)
    z = offz[rr + r0, cc + c0] > 3.0
    th = p.theta
    acr = (cc + c0 + 0.5) * -np.sin(th) + (rr + r0 + 0.5) * np.cos(th)
    mid = float(np.median((p.cols + 0.5) * -np.sin(th) + (p.rows + 0.5) * np.cos(th)))
    out = []
    for side in (acr < mid, acr >= mid):
        out.append(float(z[side].mean()) if side.sum() >= 10 else 0.0)
    return (out[0], out[1])


def _road_change(
    rw: RoadWindow, smooth: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float] | None:
    """``barricades.road_change(..., smooth_px=smooth, shade_aware=True, rw=rw)`` without its
    whole-window contrast array (only kept piles read the contrast, at their pixels), and
    seeded at ``RUBBLE_SEED_SIGMA``: the seed and grow masks (bool (rows, cols)), the contrast
    per ``rw.on`` pixel (float32, robust sigmas) and its sigma (grey levels); None where the
    window has too few road pixels (``road_change``'s masks are then empty)."""
    res = road_contrast(rw, smooth, True, False, MIN_SIGMA)
    if res is None:
        return None
    v = np.asarray(res[0]).astype(np.float32, copy=False)
    return _on_mask(rw, v > RUBBLE_SEED_SIGMA), _on_mask(rw, v > GROW_SIGMA), v, res[1]


def _on_mask(rw: RoadWindow, at_on: np.ndarray) -> np.ndarray:
    """bool (rows, cols): ``at_on`` (bool per ``rw.on`` pixel) on the road, False off it."""
    m = np.zeros(rw.on.shape, bool)
    m.ravel()[rw.flat] = at_on
    return m


def _on_values(rw: RoadWindow, v: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``rw.scatter(v)[rows, cols]``: ``v`` (per ``rw.on`` pixel) at pixels (rows, cols), 0 off
    the road, looked up in the sorted flat indices of the road pixels."""
    flat = rows * rw.on.shape[1] + cols
    pos = np.minimum(np.searchsorted(rw.flat, flat), rw.flat.size - 1)
    return np.where(rw.flat[pos] == flat, v[pos], np.float32(0.0))


def _extend(
    p: Piece,
    rr: np.ndarray,
    cc: np.ndarray,
    lazy: dict,
    low: tuple[RoadWindow, np.ndarray],
    carriage: np.ndarray,
    road_id: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Carriageway pixels of the pile's own road (rows, cols) joining a kept pile (pixels
    ``rr, cc``) at ``EXTEND_SIGMA``: components of that low bar touching it, less its own
    pixels; none where they would more than ``EXTEND_MAX``-fold it. ``low``: the window's
    road and its contrast per road pixel. ``lazy`` memoises the window's low-bar mask; only
    the components touching a pile are traced."""
    if "low" not in lazy:
        rw, v = low
        # off the road the contrast is 0, below the bar
        m = K.opening(_on_mask(rw, v > EXTEND_SIGMA) & carriage, np.ones((3, 3), bool))
        lazy["low"] = np.ascontiguousarray(m)
    flat = K.components_touching(lazy["low"], rr, cc)
    er, ec = np.divmod(flat, lazy["low"].shape[1])
    # raster order, as a scan of the components' box lists them
    keep = (road_id[er, ec] == p.road + 1) & ~np.isin(flat, rr * lazy["low"].shape[1] + cc)
    er, ec = er[keep], ec[keep]
    none = np.zeros(0, np.intp)
    if rr.size + er.size > EXTEND_MAX * rr.size:
        _note(p, "no extension", px=rr.size, extra=er.size)
        return none, none
    return er, ec


def find_rubble(
    before: np.ndarray,
    after: np.ndarray,
    valid: np.ndarray,
    roads: RoadRaster,
    roads_px: gpd.GeoDataFrame,
    gsd: float,
    core_px: tuple[int, int, int, int],
    rw: RoadWindow | None = None,
) -> list[tuple[shapely.Polygon, float, dict]]:
    """Debris fields on road carriageways in one window.

    Args:
        before, after: matched images of the window, (bands, rows, cols).
        valid: bool (rows, cols).
        roads: the window's :class:`RoadRaster`.
        roads_px: the roads in window pixel coordinates (kept for symmetry with barricades).
        gsd: metres per pixel.
        core_px: (col0, row0, col1, row1) of the core; a pile is kept when its centroid is in it.
        rw: the window's shared :class:`RoadWindow` (optional; built here when None).

    Returns:
        (Polygon in window pixels, score 0..1, attributes) per pile; attributes:
        ``road_name``, ``road_class``, ``area_m2``, ``passable_width_m`` (widest free strip
        of the carriageway beside the pile, m), ``blocks_road`` and ``evidence``.
    """
    rw = rw or RoadWindow.build(before, after, valid, roads)
    smooth = max(1, int(round(SMOOTH_M / gsd)))
    ch = _road_change(rw, smooth)
    if ch is None or not ch[0].any():
        return []  # no seed pixel, no pile
    seed, grow, ch_v, ch_sigma = ch
    grow = K.opening(grow, np.ones((3, 3), bool))
    # Debris is patchy: close gaps of up to ~3 m so one field is one pile.
    k = max(3, int(round(3.0 / gsd)) | 1)
    close_se = np.hypot(*np.mgrid[-(k // 2) : k // 2 + 1, -(k // 2) : k // 2 + 1]) <= k / 2
    grow = K.closing(grow, close_se) & roads.mask
    # filled from the seeds; the same fill gives each pile's pixels, so no second pass over
    # the window collects them
    lab, n, pix = hysteresis_pixels(seed & grow, grow)
    if n == 0:
        return []  # most windows: no candidate, so none of the per-pile measures below
    carriage = roads.carriageway
    # the raw change, the roughness and the off-road change are measured for the piles that
    # pass the tests before them only (most windows have none)
    lazy: dict = {}

    def raw(p: Piece) -> np.ndarray:
        # ``road_change(..., shade_aware=True).grow`` at the piece's pixels: the contrast is
        # kept per road pixel and read there, not spread over a whole-window array
        if "raw" not in lazy:
            res = road_contrast(rw, 1, True, False, MIN_SIGMA)
            lazy["raw"] = None if res is None else res[0]
        c = lazy["raw"]
        if c is None:
            return np.zeros(p.rows.size, bool)
        flat = p.rows * rw.on.shape[1] + p.cols
        pos = np.minimum(np.searchsorted(rw.flat, flat), rw.flat.size - 1)
        return (rw.flat[pos] == flat) & (c[pos] > GROW_SIGMA)

    def off_road() -> np.ndarray:
        if "off" not in lazy:
            lazy["off"] = valid & ~roads.mask
        return lazy["off"]

    def offz() -> RK.OffRoadChange:
        if "offz" not in lazy:
            lazy["offz"] = RK.OffRoadChange(rw.ga, off_road(), smooth, rw.gb)
        return lazy["offz"]

    def rough() -> RK.RoadRoughness:
        if "rough" not in lazy:
            lazy["rough"] = RK.RoadRoughness(rw)
        return lazy["rough"]

    def relrough() -> RK.RelativeRoughness:
        if "relrough" not in lazy:
            # measured over the debris speckle's own scale (SMOOTH_M, odd): lumps a metre
            # or so across survive an image's blur where 1.5 m boxes see mostly pixel noise
            # (on the dev scenes at the hard and extreme difficulties, 3 px boxes lost most
            # piles; 5 px kept them)
            size = max(1, int(round(ROUGH_M / gsd))) | 1
            lazy["relrough"] = RK.shared_relative_roughness(rw, size)
        return lazy["relrough"]

    ring_k = disk(2 * RING_M / gsd)
    c0, r0, c1, r1 = core_px
    gap = int(np.ceil(MERGE_GAP_M / gsd / 2))
    out = []
    for comp in merge(pieces(lab, n, roads, pix), lab.shape, MERGE_GAP_M / gsd):
        on = carriage[comp.rows, comp.cols]
        if on.sum() * gsd * gsd < MIN_AREA_M2 or 1 - on.mean() > MAX_OFFROAD_FRACTION:
            _note(comp, "area/offroad", area=on.sum() * gsd * gsd, off=1 - on.mean())
            continue
        rr, cc = comp.rows[on], comp.cols[on]
        cy, cx = rr.mean() + 0.5, cc.mean() + 0.5
        if not (c0 <= cx < c1 and r0 <= cy < r1):
            continue  # the window holding its centroid in its core reports it
        p = frame(comp, roads)
        # A block row's raw (unsmoothed) new pixels span one block along the road; debris
        # spans its whole length, however short, with dark gaps of its own between lumps.
        # The raw change costs a whole-road contrast: a candidate too long for a block row
        # cannot fail the test, so its blob is measured only if it is kept (for evidence).
        blob_m = None
        if p.along_len * gsd <= ROW_MULTIPLE * MAX_ROW_ALONG_M:
            blob_m = _longest_blob(p, raw(p)) * gsd
            if blob_m <= MAX_ROW_ALONG_M:
                _note(p, "blob", blob_m=blob_m, along=p.along_len * gsd)
                continue
        tex = float(np.median(rough().at(p.rows[on], p.cols[on])))
        # The changed ground beyond the road is measured where a test needs it (a pile
        # hugging the kerb, one in shade before) or for a kept pile's evidence only.
        sides = None
        if 1 - on.mean() > SPILL_OFFROAD_FRACTION:
            sides = _outside(p, offz(), off_road(), ring_k)
        if sides is not None and max(sides) > 0.5:
            # hugs the kerb and the ground beyond it changed too: spill from off the road
            _note(p, "spill", off=1 - on.mean(), sides=max(sides))
            continue
        if tex < MIN_ROUGHNESS:
            _note(p, "tex", tex=tex)
            continue  # smooth new surface: light or shadow change, fresh paving, not debris
        # Against the road's sunlit level (``road_window.lit_both``), not its level under the
        # same light: where most of a window's road lies in shade (low sun, narrow streets)
        # the shade-aware contrast falls back to one median, and road leaving a shadow reads
        # as new material. It reaches the sunlit level and no more; debris of twice asphalt's
        # albedo in sunlight stands well above it.
        lit = lit_both(rw, smooth)[p.road + 1]  # memoised in ``rw``
        ga = rw.full_grey("a", smooth)[rr, cc]
        # A pile partly in a building's shadow is judged on its sunlit part (above the
        # window's Otsu split of road levels), when that part is a pile in itself: its shaded
        # part cannot reach the sunlit level, whatever it is made of.
        t = rw.otsu("a", smooth)
        if t is not None:
            sunlit = ga > t
            if sunlit.sum() * gsd * gsd >= MIN_AREA_M2:
                ga = ga[sunlit]
        lit_c = float(np.median(ga) - lit) / ch_sigma
        if lit_c <= MIN_LIT_SIGMA:
            _note(p, "lit", lit_c=lit_c, tex=tex)
            continue
        # Where the ground lay in shade before, its relative roughness then is mostly sensor
        # noise over a dark level (inflated, so the change reads as a loss of texture); the
        # sunlit-level test above already rules out road leaving that shadow, so only the
        # after image's roughness is asked for. Not beside changed ground, though: a shadow
        # lifted there had its caster razed, and the debris is that building's spill.
        if "lit_b" not in lazy:
            lazy["lit_b"] = lit_level(rw, smooth, roads.classes, "b")
        lit_b = lazy["lit_b"][p.road + 1]
        dark_b = rw.full_grey("b", smooth)[rr, cc] < (lit_b - SHADE_SIGMAS * ch_sigma)
        dark_most = float(np.median(dark_b)) > 0.5
        if dark_most and sides is None:
            sides = _outside(p, offz(), off_road(), ring_k)
        shaded_before = dark_most and max(sides) <= 0.5
        # A pile partly in shade before: the change is measured on its ground lit then, when
        # that part is a pile in itself (the shaded part's before roughness is noise).
        lit_part = ~dark_b if (~dark_b).sum() * gsd * gsd >= MIN_AREA_M2 else None
        rel, rel_change = relrough().at(rr, cc, lit_part)
        if rel <= MIN_RELATIVE_ROUGHNESS or (
            rel_change <= MIN_RELATIVE_ROUGHNESS and not shaded_before
        ):
            # no rougher than the road, for its brightness, or than what lay there before: a
            # smooth mound (a berm's end on the road) or road leaving a shadow, not debris
            _note(p, "relrough", rel=rel, rel_change=rel_change, shaded_before=shaded_before)
            continue
        er, ec = _extend(p, rr, cc, lazy, (rw, ch_v), carriage, roads.road_id)
        # across offsets of the pile in its road's frame, the extension's from its own road
        across = np.concatenate([p.across[on], roads.across[er, ec]])
        rr, cc = np.concatenate([rr, er]), np.concatenate([cc, ec])
        ra, ca = rr.min(), cc.min()
        m = np.zeros((rr.max() - ra + 1, cc.max() - ca + 1), bool)
        m[rr - ra, cc - ca] = True
        # the merged pieces of one pile, bridged over the gaps that merged them
        m = np.pad(m, gap)
        m = ndi.binary_fill_holes(ndi.binary_closing(m, disk(2 * gap), border_value=0))
        m = m[gap:-gap, gap:-gap]
        poly = _polygon(m, (int(ca), int(ra)))
        if poly is None or poly.is_empty:
            continue
        _note(p, "kept", lit_c=lit_c, tex=tex, rel=rel, rel_change=rel_change)
        if blob_m is None:
            blob_m = _longest_blob(p, raw(p)) * gsd
        if sides is None:
            sides = _outside(p, offz(), off_road(), ring_k)
        width = float(p.width_px)
        free_m = min(RK.free_width_px(across, width), width) * gsd
        contrast = float(np.median(_on_values(rw, ch_v, rr, cc)))
        lo, hi = np.percentile(across, (5, 95))
        across_m = float(hi - lo + 1) * gsd
        area_m2 = float(rr.size) * gsd * gsd
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
                        "noise_sigma": round(ch_sigma, 4),
                        "along_m": round(p.along_len * gsd, 2),
                        "road_width_m": round(width * gsd, 2),
                        "offroad_fraction": round(1 - float(on.mean()), 3),
                        "across_m": round(across_m, 2),
                        "roughness_log_ratio": round(tex, 3),
                        "outside_changed": [round(x, 2) for x in sides],
                        "blob_along_m": round(blob_m, 2),
                        "relative_roughness": round(rel, 3),
                        "relative_roughness_change": round(rel_change, 3),
                        "lit_sigma": round(lit_c, 2),
                        "shaded_before": bool(shaded_before),
                    },
                },
            )
        )
    return out
