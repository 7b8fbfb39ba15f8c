"""Barricades: rows of new objects across a road (concrete blocks, 1-2 m each).

Only road pixels are looked at. A pixel holds a *new block* (``block_change``) when, in the
after image, it passes two contrasts, each against the road itself and each new since the
before image: it is brighter than its road's sunlit surface (``road_change`` with
``lit_reference``: road leaving a moved shadow reaches that level and no more), and brighter
than the road a few metres ahead and behind it along the axis (``along_change``: a row is
short along the road, so this bounds it by the road around it, and lit road beside a new
shadow is no brighter than the lit road beyond it). Per-road levels cancel illumination and
radiometric differences between the dates. The sunlit level is the lower of the road's
levels on the two dates (``road_window.lit_both``): the before image lacks the new objects
that would otherwise make up the bright class of a lit narrow street. The thresholds are
multiples of the in-scene noise: the robust (MAD) spread of the contrasts over road pixels,
with a floor; measured once for the scene (``road_noise.scene_road_noise``, passed as
``noise``) so that a row scores the same whatever window it is read in, or else over the
window's road pixels.

Blocks standing in a building's shadow are lit by the sky alone and are no brighter than
sunlit asphalt, so they fail the first test. A second pass looks at road in deep shade only
(``road_window.deep_shade_contrast``): a pixel brighter than the shaded road ahead and behind
it, in units of the noise of shaded road. It only adds rows; each must span much of the road
and look like skylit blocks rather than sunlight let in between shadows (``_shade_row_ok``).

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

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from scipy import ndimage as ndi

from fortmap.detect import fort_kernels as K
from fortmap.detect.barricade_rows import (  # noqa: F401  (re-exported for rubble)
    ALONG_REF_M,
    DSM_BLOCK_RISE_M,
    MAX_ROW_ALONG_M,
    ROW_GAP_M,
    Piece,
    across_road,
    dsm_rise_at,
    dsm_rows,
    free_gap,
    group_rows,
    hysteresis,
    junction_rows,
    masked_box,
    merge_split_rows,
    off_road_change,
    past_ends,
    pieces,
    reframe,
    row_ok,
)
from fortmap.detect.road_noise import RoadNoise
from fortmap.detect.road_window import (
    MIN_CLASS_PX,  # noqa: F401  (re-exported)
    PointBox,
    RoadWindow,
    along_contrast,
    deep_shade_contrast,
    lit_both,
    road_contrast,
)
from fortmap.detect.roadmask import ROAD_MARGIN_M, RoadRaster, own_axes

#: Seed and grow thresholds of new-object pixels, in robust standard deviations of the
#: road-surface contrast (hysteresis; 6 sigma keeps false alarms per MP near zero for Gaussian
#: noise, 3 sigma lets an object grow to its blurred edge).
SEED_SIGMA = 6.0
GROW_SIGMA = 3.0
#: Floor of the contrast noise (grey levels in the 0..1 scaled image): sensor noise and road
#: texture never fall below this, and a window with few road pixels must not over-trust them.
MIN_SIGMA = 0.02
#: Typical barricade block side (m), used to estimate the block count of a closed row.
BLOCK_M = 1.5
#: Typical gap between blocks (m), for the same estimate when the gaps are blurred away.
BLOCK_GAP_M = 0.5
#: A vehicle needs this much free width (m) to pass: a car is ~1.8 m wide.
PASS_WIDTH_M = 2.5
#: Most a row may exceed its carriageway's width (m): blocks stand on the carriageway and
#: blur widens the row by under 0.5 m at each end; more is a change the road mask merely cuts
#: (a shadow sliding across a lane, land cleared at a dead end).
MAX_OVERHANG_M = 1.0
#: Length (m) of the shortest row: two blocks of ``BLOCK_M`` and a typical gap between them.
MIN_ROW_BLOCKS_M = 2 * BLOCK_M + BLOCK_GAP_M
#: Least angle (degrees) between a shade row's long axis and the sun's azimuth. Sunlight let
#: through a gap between two shadows falls as a strip running along the azimuth; blocks are
#: laid across the road whatever the sun does. The axis of a row of two or three blurred blocks
#: is known to about atan(1.5 m / 4 m) = 20 degrees, which the bound allows for.
MIN_SUN_SKEW_DEG = 20.0
#: Most new material a sunlit row may be joined to, as a multiple of its own pixels. Blocks
#: stand on plain road: the pixels brighter than sunlit road and new around a row, taken
#: without the along-road bound that cuts a row out, are the row itself and its blurred rim
#: (a blurred 1.5 m block loses or gains under half its area at the 3 sigma level). A row
#: that is less than half of the new material it is connected to is the edge of a larger
#: mass, a rubble pile or a newly lit field, that the along-road test merely cut.
MAX_MASS_RATIO = 2.0
#: Least share of its carriageway's width that a row found in deep shade spans. A barricade
#: is laid to close a road (a row narrowing it to one lane still spans half of it); in shade,
#: where a block stands out less, a short bright piece is more often a patch of light or a
#: kerbside object than blocks.
MIN_SHADE_COVER = 0.5


@dataclass
class RoadChange:
    """New-object evidence on the road pixels of a window.

    Attributes:
        contrast: float32 (rows, cols): after-minus-before contrast to the road's median, in
            robust standard deviations (0 off road).
        seed, grow: bool masks at ``SEED_SIGMA`` / ``GROW_SIGMA``.
        sigma: the robust standard deviation (grey levels) used.
        mass: bool (rows, cols) or None: road pixels brighter than their road's sunlit level
            and brighter than before by ``GROW_SIGMA``, without the along-road bound
            (``block_change`` only): the new material a row is joined to.
    """

    contrast: np.ndarray
    seed: np.ndarray
    grow: np.ndarray
    sigma: float
    mass: np.ndarray | None = None


def opening_px(gsd: float) -> int:
    """Side (pixels) of the square opening applied to new-object pixels at ``gsd`` m/pixel.

    A block of side ``BLOCK_M`` covers ``BLOCK_M / gsd`` pixels, but at an arbitrary phase
    and angle to the pixel grid only one pixel fewer are wholly inside it (2 px for a 1.5 m
    block at 0.5 m): a wider opening erases single blocks, and with them rows of two."""
    return max(1, int(np.floor(BLOCK_M / gsd + 1e-6)) - 1)


def box_opening(m: np.ndarray, k: int) -> np.ndarray:
    """Binary opening of bool (rows, cols) ``m`` by a k x k square (k >= 1; pixels the
    square cannot reach, as at the window's edge, are dropped)."""
    if k <= 1:
        return m.copy()
    if k % 2:
        return K.opening(m, np.ones((k, k), bool))
    h, w = m.shape
    # erosion anchored at the square's top-left pixel, then dilation back over the square
    e = np.ones((h - k + 1, w - k + 1), bool)
    for dy in range(k):
        for dx in range(k):
            e &= m[dy : h - k + 1 + dy, dx : w - k + 1 + dx]
    out = np.zeros_like(m)
    for dy in range(k):
        for dx in range(k):
            out[dy : h - k + 1 + dy, dx : w - k + 1 + dx] |= e
    return out


def _road_medians(g: np.ndarray, rid: np.ndarray, on: np.ndarray, n: int) -> np.ndarray:
    """Lower median of ``g`` per road id over ``on`` (index = road id, 0 unused), float32."""
    return K.road_medians(g[on], rid[on], n)


def _as_change(rw: RoadWindow, res: tuple[np.ndarray, float] | None) -> RoadChange:
    if res is None:
        f = np.zeros(rw.on.shape, bool)
        return RoadChange(np.zeros(rw.on.shape, np.float32), f, f, MIN_SIGMA)
    c = rw.scatter(res[0])
    return RoadChange(c, c > SEED_SIGMA, c > GROW_SIGMA, res[1])


def road_change(
    before: np.ndarray,
    after: np.ndarray,
    valid: np.ndarray,
    roads: RoadRaster,
    smooth_px: int = 1,
    shade_aware: bool = False,
    lit_reference: bool = False,
    rw: RoadWindow | None = None,
) -> RoadChange:
    """New bright objects on road pixels (see the module docstring).

    Each road pixel is compared with its road's median (or, ``shade_aware``, with its road's
    level under the same illumination, see ``road_window.illumination_anomaly``) in the after
    image, less the same in the before image; the contrast is the smaller of that change and
    the after anomaly, in robust standard deviations of the change over the road pixels.

    Args:
        before, after: (bands, rows, cols) or (rows, cols) radiometrically matched images of
            the window (same scale, e.g. from ``GridReader.read``).
        valid: bool (rows, cols), pixels with data on both dates.
        roads: the window's :class:`RoadRaster`.
        smooth_px: side of a box filter applied first (pixels; rubble is a textured field and
            is measured on a smoothed image, blocks on the raw one).
        shade_aware: compare each pixel with its road's level under the same illumination
            (lit or shaded) instead of the road's one median. It removes moved shadows read
            as new material on wide fields (rubble); on the seeds it was tried on it added
            false block rows, so barricades keep one median.
        lit_reference: the after image must also stand out against its road's *sunlit* level
            (``road_window.lit_level``), not only its median: road leaving a moved shadow
            reaches the sunlit level and no more, whereas sunlit blocks are brighter
            (barricades).
        rw: the window's shared :class:`RoadWindow` (built from the other arguments when
            None; pass one to share its intermediates between calls).
    """
    rw = rw or RoadWindow.build(before, after, valid, roads)
    return _as_change(rw, road_contrast(rw, smooth_px, shade_aware, lit_reference, MIN_SIGMA))


def along_change(
    before: np.ndarray,
    after: np.ndarray,
    valid: np.ndarray,
    roads: RoadRaster,
    gsd: float,
    smooth_px: int = 1,
    rw: RoadWindow | None = None,
) -> RoadChange:
    """New bright objects on road pixels, each against the road just ahead and behind it.

    Args:
        before, after: (bands, rows, cols) or (rows, cols) radiometrically matched images.
        valid: bool (rows, cols), pixels with data on both dates.
        roads: the window's :class:`RoadRaster`.
        gsd: metres per pixel.
        smooth_px: side of a road-only box filter applied first (pixels).
        rw: the window's shared :class:`RoadWindow` (optional).

    Returns:
        :class:`RoadChange`: contrast is min(after anomaly, after minus before anomaly) (see
        ``road_window.along_anomaly``) in robust standard deviations of the latter over the
        road.
    """
    rw = rw or RoadWindow.build(before, after, valid, roads)
    return _as_change(rw, along_contrast(rw, gsd, MIN_SIGMA, smooth_px))


def block_change(
    before: np.ndarray,
    after: np.ndarray,
    valid: np.ndarray,
    roads: RoadRaster,
    gsd: float,
    rw: RoadWindow | None = None,
    noise: RoadNoise | None = None,
) -> RoadChange:
    """New block pixels: brighter than their road's sunlit level (``road_change`` with
    ``lit_reference``) *and* than the road just ahead and behind them (``along_change``).

    With ``noise`` (``road_noise.scene_road_noise``) both contrasts are in units of the
    scene's noise, so a row scores the same whatever window it is read in; without it, of
    the window's road pixels.

    The first test keeps road that merely leaves a moved shadow out; the second keeps lit road
    beside a new shadow out where a road's sunlit level is set too low (a road mostly in shade
    in the window), and bounds a row by the road around it, so a row at a shadow's edge is
    measured as the row alone. Both contrasts are in their own noise units. ``rw``: the
    window's shared :class:`RoadWindow` (optional). Blocks standing in deep shade fail the
    first test; ``find_barricades`` looks for them separately (``_shade_rows``).
    """
    rw = rw or RoadWindow.build(before, after, valid, roads)
    a = road_contrast(rw, 1, False, True, MIN_SIGMA, noise.road if noise else None)
    if a is None:
        return _as_change(rw, None)
    b = along_contrast(rw, gsd, MIN_SIGMA, sigma=noise.along if noise else None)
    # off the road both contrasts are 0, as is an along contrast the window cannot tell
    cb = b[0] if b is not None else np.zeros_like(a[0])
    out = _as_change(rw, (np.minimum(a[0], cb), a[1]))
    out.mass = np.zeros(rw.on.shape, bool)
    out.mass.ravel()[rw.flat] = a[0] > GROW_SIGMA
    return out


def _label(m: np.ndarray) -> np.ndarray:
    """8-connected labels of bool mask ``m`` (0 outside it)."""
    return ndi.label(m, np.ones((3, 3), bool))[0]


def _joined(lab: np.ndarray, rr: np.ndarray, cc: np.ndarray) -> int:
    """Pixels of the labelled components of ``lab`` that the pixels (rr, cc) touch."""
    ids = np.unique(lab[rr, cc])
    ids = ids[ids > 0]
    if not ids.size:
        return 0
    return int(np.isin(lab, ids).sum()) if ids.size > 1 else int((lab == ids[0]).sum())


def _along_sun(rr: np.ndarray, cc: np.ndarray, sun_azimuth: float | None) -> bool:
    """Whether a row's long axis (window pixels, north-up) runs within ``MIN_SUN_SKEW_DEG``
    of the sun's azimuth (degrees clockwise from north); False when the azimuth is unknown."""
    if sun_azimuth is None:
        return False
    phi = own_axes(rr, cc)[0]
    az = np.radians(sun_azimuth)
    # towards the sun in pixel coordinates: east is +x, north is -y
    sun = np.arctan2(-np.cos(az), np.sin(az))
    return bool(abs(np.cos(phi - sun)) > np.cos(np.radians(MIN_SUN_SKEW_DEG)))


def _rows(
    ch: RoadChange,
    grow: np.ndarray,
    roads: RoadRaster,
    roads_px: gpd.GeoDataFrame,
    gsd: float,
) -> list[list[Piece]]:
    """Block rows among the new-object pixels ``grow`` (already opened) seeded by
    ``ch.seed``: pieces framed by their road, grouped and checked (``row_ok``)."""
    if not (ch.seed & grow).any():
        return []
    lab, n = hysteresis(ch.seed & grow, grow)
    reach = ROAD_MARGIN_M / gsd
    cands = [q for q in (reframe(p, roads, roads_px, reach, gsd) for p in pieces(lab, n, roads))
             if across_road(q, gsd)]  # fmt: skip
    rows, rest = [], []
    for g in group_rows(cands, gsd):
        (rows if row_ok(g, ch.contrast, gsd, SEED_SIGMA) else rest).append(g)
    # lone blocks of a row across a junction, framed by the road owning the crossing
    rest = [p for g in rest for p in g]
    rows += junction_rows(rest, roads, roads_px, reach, gsd, ch.contrast, SEED_SIGMA)
    return merge_split_rows(rows, gsd)


def _shade_change(
    rw: RoadWindow, gsd: float, lit_sigma: float, taken: np.ndarray
) -> RoadChange | None:
    """New-object pixels in deep shade (``road_window.deep_shade_contrast``), with ``grow``
    already opened, leaving out the pixels ``taken`` by sunlit rows and the pixel around
    them: shade only adds rows, it never regroups a lit one. None without shaded road."""
    res = deep_shade_contrast(rw, gsd, lit_sigma, MIN_SIGMA)
    if res is None or not (res[0] > SEED_SIGMA).any():
        return None
    c = rw.scatter(res[0])
    near = K.dilate(np.ascontiguousarray(taken), np.ones((3, 3), bool))
    grow = box_opening((c > GROW_SIGMA) & ~near, opening_px(gsd))
    return RoadChange(c, c > SEED_SIGMA, grow, res[2])


def _shade_row_ok(
    rw: RoadWindow,
    rr: np.ndarray,
    cc: np.ndarray,
    cover: float,
    lit: float,
    lit_sigma: float,
    gsd: float,
    sun_azimuth: float | None,
    shade_sigma: float,
) -> bool:
    """Whether a row found in deep shade is blocks rather than light let in between shadows.

    Sunlight let through a gap between two shadows falls on the road as a strip along the
    sun's azimuth, as bright as sunlit road and running on into sunlit road; blocks lit by the
    sky alone are darker than sunlit asphalt, stand across the road whatever the sun does, end
    in shade or at the kerb, and span much of the road (``MIN_SHADE_COVER``).

    Args:
        rw: the window's road pixels.
        rr, cc: the row's pixels.
        cover: the row's span over its carriageway's width.
        lit: its road's sunlit level (grey levels, ``lit_both``).
        lit_sigma: the sunlit contrast noise (grey levels).
        gsd: metres per pixel.
        sun_azimuth: degrees clockwise from north, or None.
        shade_sigma: the shaded contrast noise (grey levels, ``deep_shade_contrast``).
    """
    if cover < MIN_SHADE_COVER or _along_sun(rr, cc, sun_azimuth):
        return False
    own = float(np.median(rw.ga[rr, cc]))
    # New blocks change the level of the ground they stand on, up (in the same shade) or down
    # (a shadow arrived with them); a row whose level is what it was before stands out only
    # because the road around it changed (a shadow fell around a pale patch already there).
    if abs(own - float(np.median(rw.gb[rr, cc]))) < GROW_SIGMA * shade_sigma:
        return False
    if float(np.percentile(rw.ga[rr, cc], 90)) >= lit:
        return False
    # The ground 1-3 m past either end of the row: skylit blocks are the brightest things in
    # the shade around them, so ground past an end that is brighter than the row is in the
    # sun, and the row is light running on from it; carriageway there as bright as sunlit
    # road (within the sunlit noise) is sunlit road.
    ends, _ = past_ends(rr, cc, gsd)
    h, wd = rw.on.shape
    box = PointBox(rw.ga, rw.valid)
    for pts in ends:
        x, y = np.floor(pts[:, 0]).astype(int), np.floor(pts[:, 1]).astype(int)
        inside = (x >= 0) & (x < wd) & (y >= 0) & (y < h)
        x, y = x[inside], y[inside]
        ok = rw.valid[y, x]
        if ok.sum() < 3:
            continue  # the window's edge: nothing to tell
        if float(np.nanmedian(box[y[ok], x[ok]])) > own:
            return False
        sel = ok & rw.roads.carriageway[y, x]
        if (
            sel.sum() >= 3
            and float(np.nanmedian(box[y[sel], x[sel]])) > lit - SEED_SIGMA * lit_sigma
        ):
            return False
    return True


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
            (``barricade_rows.dsm_rise_at``), and rows the DSMs alone show are added
            (``barricade_rows.dsm_rows``).

    Returns:
        (LineString across the road in window pixels, score 0..1, attributes) per barricade;
        attributes: ``road_name``, ``road_class``, ``width_m`` (span across the road, m),
        ``n_blocks``, ``blocks_road`` and ``evidence`` (dict).
    """
    rw = rw or RoadWindow.build(before, after, valid, roads)
    ch = change or block_change(before, after, valid, roads, gsd, rw=rw, noise=noise)
    lit_grow = box_opening(ch.grow, opening_px(gsd))
    groups = [(g, ch) for g in _rows(ch, lit_grow, roads, roads_px, gsd)]
    shade = _shade_change(rw, gsd, ch.sigma, lit_grow)
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
    mass_lab = None
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
            contrast = float(np.median(rise[rr, cc])) / DSM_BLOCK_RISE_M * SEED_SIGMA
            pt = shapely.Point(cx, cy)
            if any(q.distance(pt) <= ROW_GAP_M / gsd for q in kept):
                continue  # the image found this row
        else:
            contrast = float(np.median(gch.contrast[rr, cc]))
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
            continue
        in_shade = gch is not ch and not from_dsm
        if rise is not None and not from_dsm:
            seen = dsm_rise_at(rise, rr, cc, gsd, MAX_MASS_RATIO)
            if seen is False:
                continue
            seen = bool(seen)
        else:
            seen = from_dsm
        if in_shade and not _shade_row_ok(rw, rr, cc, span / max(width, 1.0), lit[p0.road + 1],
                                          ch.sigma, gsd, sun_azimuth, gch.sigma):  # fmt: skip
            continue
        # a sunlit row is most of the new material it is joined to (MAX_MASS_RATIO); where
        # the DSMs saw it, they measured that on the heights, which debris does not blur
        if not in_shade and not seen and ch.mass is not None:
            if mass_lab is None:
                mass_lab = _label(ch.mass)
            if _joined(mass_lab, rr, cc) > MAX_MASS_RATIO * len(rr):
                continue
        # light let through between shadows brightens the ground past the road too
        beyond = 0.0 if from_dsm else off_road_change(ga_s, gb_s, off, rr, cc, gsd, gch.sigma)
        if beyond > GROW_SIGMA:
            continue
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
