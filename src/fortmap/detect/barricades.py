"""Barricades: rows of new objects across a road (concrete blocks, 1-2 m each).

Only road pixels are looked at. A pixel holds a *new block* (``block_change``) when, in the
after image, it passes two contrasts, each against the road itself and each new since the
before image: it is brighter than its road's sunlit surface (``road_change`` with
``lit_reference``: road leaving a moved shadow reaches that level and no more), and brighter
than the road a few metres ahead and behind it along the axis (``along_change``: a row is
short along the road, so this bounds it by the road around it, and lit road beside a new
shadow is no brighter than the lit road beyond it). Per-road levels cancel illumination and
radiometric differences between the dates. The thresholds are multiples of the in-scene
noise: the robust (MAD) spread of the contrasts over the window's road pixels, with a floor.

Connected new-object pixels are measured in the road's frame. A barricade is a row of pieces,
each short along the road (a block is 1-2 m; blur and shadows add about a metre), spanning a
good part of the road across it: a parked car (4-5 m along, 2 m across) or a single block is
not one. Blocks stand on the carriageway, so a row ends there: one wider than the carriageway
by more than blur allows is a change that the road mask merely cuts (a shadow sliding off a
narrow lane as the sun moves, land cleared at a dead end).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import geopandas as gpd
import numba as nb
import numpy as np
import shapely
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu

from fortmap.detect.barricade_rows import (  # noqa: F401  (re-exported for rubble)
    ALONG_REF_M,
    MAX_ROW_ALONG_M,
    Piece,
    across_road,
    free_gap,
    group_rows,
    hysteresis,
    masked_box,
    merge_split_rows,
    off_road_change,
    pieces,
    reframe,
    row_ok,
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
#: Fewest pixels of a road in one illumination class for its own reference level.
MIN_CLASS_PX = 30
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


@dataclass
class RoadChange:
    """New-object evidence on the road pixels of a window.

    Attributes:
        contrast: float32 (rows, cols): after-minus-before contrast to the road's median, in
            robust standard deviations (0 off road).
        seed, grow: bool masks at ``SEED_SIGMA`` / ``GROW_SIGMA``.
        sigma: the robust standard deviation (grey levels) used.
    """

    contrast: np.ndarray
    seed: np.ndarray
    grow: np.ndarray
    sigma: float


def _grey(img: np.ndarray) -> np.ndarray:
    return img.mean(axis=0) if img.ndim == 3 else img.astype(np.float32)


def _road_medians(g: np.ndarray, rid: np.ndarray, on: np.ndarray, n: int) -> np.ndarray:
    """Lower median of ``g`` per road id over ``on`` (index = road id, 0 unused), float32."""
    return _road_medians_kernel(
        np.ascontiguousarray(g), np.ascontiguousarray(rid), np.ascontiguousarray(on), n
    )


@nb.njit(cache=True)
def _road_medians_kernel(g, rid, on, n):
    # one counting-sort pass groups the pixels by road, then each road's values are sorted on
    # their own (a whole-window lexsort cost more than the rest of the road reference)
    h, w = g.shape
    counts = np.zeros(n + 1, np.int64)
    for r in range(h):
        for c in range(w):
            if on[r, c] and 0 <= rid[r, c] < n:
                counts[rid[r, c] + 1] += 1
    start = np.cumsum(counts)
    fill = start[:-1].copy()
    vals = np.empty(start[-1], g.dtype)
    for r in range(h):
        for c in range(w):
            if on[r, c] and 0 <= rid[r, c] < n:
                k = rid[r, c]
                vals[fill[k]] = g[r, c]
                fill[k] += 1
    out = np.zeros(n, np.float32)
    for k in range(n):
        m = start[k + 1] - start[k]
        if m > 0:
            x = np.sort(vals[start[k] : start[k + 1]])
            out[k] = x[(m - 1) // 2]
    return out


def _illumination_anomaly(
    g: np.ndarray, rid: np.ndarray, on: np.ndarray, ref: np.ndarray, n: int
) -> np.ndarray:
    """``g`` less the typical surface of its road under the same illumination, on ``on``.

    A road is partly in building shadow on either date, and the shadows move with the sun: a
    single per-road median sits between the lit and shaded levels, so lit road beside a new
    shadow looks like a new bright object. Road pixels are split into a dark and a bright class
    by Otsu's threshold on their 1.5 m-smoothed grey level (an unsupervised in-scene
    statistic); each pixel is compared with the median of its road's pixels in its class.
    Pixels of the dark class within 1 m of the bright class (penumbra, blurred shadow edges)
    are compared with the bright level, so a shadow edge never reads as a new object.
    The classes and their levels come from the ``ref`` pixels (the carriageway): the kerbside
    margin of the road mask is pavement or verge, often brighter than asphalt, and must not
    set the lit level.
    """
    gs = ndi.uniform_filter(g, 3)
    med = _road_medians(g, rid, ref, n)
    vals = gs[ref]
    if vals.size < 50 or float(np.ptp(vals)) <= 0:
        return g - med[rid]
    t = threshold_otsu(vals)
    lo = vals <= t
    # Sunlit asphalt is most of a road at the time of the overpass; where the bright class is
    # the minority it is new material on the road (a pile, a row of blocks), not sunlight.
    if lo.all() or not lo.any() or lo.mean() >= 0.5:
        return g - med[rid]
    dark = on & (gs <= t)
    bright = on & ~dark
    near_bright = ndi.binary_dilation(bright & ref, np.ones((5, 5), bool))
    dark &= ~near_bright
    bright = on & ~dark
    out = np.zeros_like(g)
    for cls in (dark, bright):
        m = _road_medians(g, rid, cls & ref, n)
        cnt = np.bincount(rid[cls & ref], minlength=n)
        # a road with too few pixels in a class falls back to its overall median
        m = np.where(cnt >= MIN_CLASS_PX, m, med)
        out[cls] = g[cls] - m[rid[cls]]
    return out


def _lit_level(
    g: np.ndarray, rid: np.ndarray, ref: np.ndarray, n: int, classes: list[str] | None = None
) -> np.ndarray:
    """Per road id, the level of its sunlit surface: the median of its ``ref`` pixels in the
    bright class of Otsu's split (an unsupervised in-scene statistic) of the window's
    1.5 m-smoothed road grey levels; never below the road's median, which it falls back to
    for a road with too few bright pixels."""
    med = _road_medians(g, rid, ref, n)
    gs = ndi.uniform_filter(g, 3)
    vals = gs[ref]
    if vals.size < 50 or float(np.ptp(vals)) <= 0:
        return med
    bright = ref & (gs > threshold_otsu(vals))
    lit = _road_medians(g, rid, bright, n)
    nb = np.bincount(rid[bright], minlength=n)
    nt = np.bincount(rid[ref], minlength=n)
    # The split is the window's: on a road of darker or lighter asphalt than the others it
    # only cuts off a tail. A road is lit and shaded in part when both classes are a real
    # share of it (a tenth at least); otherwise its median is its one level.
    two = (nb >= MIN_CLASS_PX) & (nb >= 0.1 * nt) & (nt - nb >= 0.1 * nt)
    own = np.where(two, lit, med)
    if classes is not None:
        # A road almost wholly in shade in the window (a narrow street between tall blocks)
        # shows no sunlit level of its own, and its median is its shaded level: a strip of
        # sun let through between two shadows would stand out against it. Such a road takes
        # the sunlit level of the window's roads of its class, as pavements of a class match.
        cls = np.array(["", *classes])[:n]
        for k in set(classes):
            mine = cls == k
            # only roads with a real share of bright pixels tell the level; on a road with a
            # few those are new material (the very blocks looked for), not sunlit asphalt
            pix = bright & (mine & (nb >= MIN_CLASS_PX) & (nb >= 0.1 * nt))[rid]
            if pix.sum() < MIN_CLASS_PX:
                continue
            level = float(np.median(g[pix]))
            few = mine & (nb < 0.1 * np.maximum(nt, 1))
            own[few] = np.maximum(own[few], level)
    return np.maximum(own, med)


def road_change(
    before: np.ndarray,
    after: np.ndarray,
    valid: np.ndarray,
    roads: RoadRaster,
    smooth_px: int = 1,
    shade_aware: bool = False,
    lit_reference: bool = False,
) -> RoadChange:
    """New bright objects on road pixels (see the module docstring).

    Args:
        before, after: (bands, rows, cols) or (rows, cols) radiometrically matched images of
            the window (same scale, e.g. from ``GridReader.read``).
        valid: bool (rows, cols), pixels with data on both dates.
        roads: the window's :class:`RoadRaster`.
        smooth_px: side of a box filter applied first (pixels; rubble is a textured field and
            is measured on a smoothed image, blocks on the raw one).
        shade_aware: compare each pixel with its road's level under the same illumination
            (lit or shaded, see ``_illumination_anomaly``) instead of the road's one median.
            It removes moved shadows read as new material on wide fields (rubble); on the
            seeds it was tried on it added false block rows, so barricades keep one median.
        lit_reference: the after image must also stand out against its road's *sunlit* level
            (``_lit_level``), not only its median: road leaving a moved shadow reaches the
            sunlit level and no more, whereas sunlit blocks are brighter (barricades).
    """
    on = roads.mask & valid
    shape = valid.shape
    zero = np.zeros(shape, np.float32)
    if on.sum() < 50:
        f = np.zeros(shape, bool)
        return RoadChange(zero, f, f, MIN_SIGMA)
    ga, gb = _grey(after), _grey(before)
    if smooth_px > 1:
        ga = ndi.uniform_filter(ga, smooth_px)
        gb = ndi.uniform_filter(gb, smooth_px)
    n = int(roads.road_id.max()) + 1
    ref = roads.carriageway & valid
    if ref.sum() < 50:
        ref = on
    if shade_aware:
        an_a = _illumination_anomaly(ga, roads.road_id, on, ref, n)
        an_b = _illumination_anomaly(gb, roads.road_id, on, ref, n)
    else:
        an_a = ga - _road_medians(ga, roads.road_id, ref, n)[roads.road_id]
        an_b = gb - _road_medians(gb, roads.road_id, ref, n)[roads.road_id]
    d = an_a - an_b
    x = d[on]
    sigma = max(float(np.median(np.abs(x - np.median(x)))) * 1.4826, MIN_SIGMA)
    # Bright in the after image against the road itself, and brighter than before: a pixel
    # leaving a shadow reaches only the road's level, so it fails the first test.
    if lit_reference and not shade_aware:
        an_a = ga - _lit_level(ga, roads.road_id, ref, n, roads.classes)[roads.road_id]
    c = np.minimum(an_a, d) / sigma
    c[~on] = 0.0
    return RoadChange(c.astype(np.float32), c > SEED_SIGMA, c > GROW_SIGMA, sigma)


@nb.njit(cache=True)
def _sides(sm, on, road_id, rows, cols, angle, offs_px):
    """Per road pixel, the brighter of the median road levels ``offs_px`` ahead and behind
    along ``angle`` (NaN where no sample is on the road), and whether a sample fell on
    another road."""
    h, w = sm.shape
    n = rows.size
    best = np.full(n, np.nan, np.float32)
    other = np.zeros(n, np.bool_)
    buf = np.empty(offs_px.size, np.float32)
    for i in range(n):
        own = road_id[rows[i], cols[i]]
        ca, sa = math.cos(angle[i]), math.sin(angle[i])
        b = -np.inf
        for sgn in (-1.0, 1.0):
            cnt = 0
            for j in range(offs_px.size):
                x = int(math.floor(cols[i] + 0.5 + sgn * offs_px[j] * ca))
                y = int(math.floor(rows[i] + 0.5 + sgn * offs_px[j] * sa))
                if 0 <= x < w and 0 <= y < h and on[y, x]:
                    buf[cnt] = sm[y, x]
                    cnt += 1
                    if road_id[y, x] != own:
                        other[i] = True
            if cnt:
                # median of at most a handful of samples: insertion sort, no allocation
                for u in range(1, cnt):
                    v = buf[u]
                    q = u
                    while q > 0 and buf[q - 1] > v:
                        buf[q] = buf[q - 1]
                        q -= 1
                    buf[q] = v
                if cnt % 2:
                    med = buf[cnt // 2]
                else:
                    med = np.float32((np.float64(buf[cnt // 2 - 1]) + buf[cnt // 2]) / 2.0)
                if med > b:
                    b = med
        if b > -np.inf:
            best[i] = b
    return best, other


def _along_anomaly(g: np.ndarray, on: np.ndarray, roads: RoadRaster, gsd: float) -> np.ndarray:
    """``g`` less the brighter of the road surfaces a few metres ahead and behind, on ``on``.

    A block row is short along the road, so the surface on either side of it along the axis is
    road under the same light as the row itself when the row is in a building's shadow, and a
    block in shade (lit by the sky only) stands out against shaded asphalt as much as a lit
    block against lit asphalt. Taking the brighter side keeps a shadow's edge across the road
    from reading as an object: its lit side is no brighter than the lit road beyond it.
    Sides off the road (a dead end, the image edge) are skipped; NaN where both are.
    """
    sm = masked_box(g, on, 3).astype(np.float32)
    rows, cols = np.nonzero(on)
    th = roads.axis[rows, cols].astype(np.float64)
    offs = np.asarray(ALONG_REF_M, np.float64) / gsd
    rid = np.ascontiguousarray(roads.road_id)
    ref, _ = _sides(sm, on, rid, rows, cols, th, offs)
    # In a crossing the pixels belong to one road (the one burnt last) and a row across the
    # other road lies along the owner's axis; where the owner's normal reaches another road,
    # that road's own axis is looked along too, and the lower reference kept.
    ref_n, cross = _sides(sm, on, rid, rows, cols, th + np.pi / 2, offs)
    ref = np.where(cross & np.isfinite(ref_n), np.fmin(ref, ref_n), ref)
    out = np.full(g.shape, np.nan, np.float32)
    out[rows, cols] = g[rows, cols] - ref
    return out


def along_change(
    before: np.ndarray,
    after: np.ndarray,
    valid: np.ndarray,
    roads: RoadRaster,
    gsd: float,
    smooth_px: int = 1,
) -> RoadChange:
    """New bright objects on road pixels, each against the road just ahead and behind it.

    Args:
        before, after: (bands, rows, cols) or (rows, cols) radiometrically matched images.
        valid: bool (rows, cols), pixels with data on both dates.
        roads: the window's :class:`RoadRaster`.
        gsd: metres per pixel.

    Returns:
        :class:`RoadChange`: contrast is min(after anomaly, after minus before anomaly) (see
        ``_along_anomaly``) in robust standard deviations of the latter over the road.
    """
    on = roads.mask & valid
    shape = valid.shape
    if on.sum() < 50:
        f = np.zeros(shape, bool)
        return RoadChange(np.zeros(shape, np.float32), f, f, MIN_SIGMA)
    ga, gb = _grey(after), _grey(before)
    if smooth_px > 1:
        ga, gb = masked_box(ga, on, smooth_px), masked_box(gb, on, smooth_px)
    an_a = _along_anomaly(ga, on, roads, gsd)
    an_b = _along_anomaly(gb, on, roads, gsd)
    d = an_a - an_b
    x = d[on & np.isfinite(d)]
    if x.size < 50:
        f = np.zeros(shape, bool)
        return RoadChange(np.zeros(shape, np.float32), f, f, MIN_SIGMA)
    sigma = max(float(np.median(np.abs(x - np.median(x)))) * 1.4826, MIN_SIGMA)
    c = np.minimum(an_a, d) / sigma
    c[~on | ~np.isfinite(c)] = 0.0
    return RoadChange(c.astype(np.float32), c > SEED_SIGMA, c > GROW_SIGMA, sigma)


def block_change(
    before: np.ndarray, after: np.ndarray, valid: np.ndarray, roads: RoadRaster, gsd: float
) -> RoadChange:
    """New block pixels: brighter than their road's sunlit level (``road_change`` with
    ``lit_reference``) *and* than the road just ahead and behind them (``along_change``).

    The first test keeps road that merely leaves a moved shadow out; the second keeps lit road
    beside a new shadow out where a road's sunlit level is set too low (a road mostly in shade
    in the window), and bounds a row by the road around it, so a row at a shadow's edge is
    measured as the row alone. Both contrasts are in their own noise units.
    """
    a = road_change(before, after, valid, roads, lit_reference=True)
    b = along_change(before, after, valid, roads, gsd)
    c = np.minimum(a.contrast, b.contrast)
    return RoadChange(c, c > SEED_SIGMA, c > GROW_SIGMA, a.sigma)


def find_barricades(
    before: np.ndarray,
    after: np.ndarray,
    valid: np.ndarray,
    roads: RoadRaster,
    roads_px: gpd.GeoDataFrame,
    gsd: float,
    core_px: tuple[int, int, int, int],
    change: RoadChange | None = None,
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
        change: precomputed ``block_change(before, after, valid, roads, gsd)`` (optional).

    Returns:
        (LineString across the road in window pixels, score 0..1, attributes) per barricade;
        attributes: ``road_name``, ``road_class``, ``width_m`` (span across the road, m),
        ``n_blocks``, ``blocks_road`` and ``evidence`` (dict).
    """
    ch = change or block_change(before, after, valid, roads, gsd)
    off = valid & ~roads.mask
    ga_s, gb_s = masked_box(_grey(after), valid, 3), masked_box(_grey(before), valid, 3)
    # Opening drops 1-2 px fringes that residual misregistration leaves along road edges;
    # a blurred 1.5 m block is wider than 3 px and survives it.
    grow = ndi.binary_opening(ch.grow, np.ones((3, 3), bool))
    lab, n = hysteresis(ch.seed & grow, grow)
    reach = ROAD_MARGIN_M / gsd
    cands = [q for q in (reframe(p, roads, roads_px, reach) for p in pieces(lab, n, roads))
             if across_road(q, gsd)]  # fmt: skip
    groups = group_rows(cands, gsd)
    groups = merge_split_rows([g for g in groups if row_ok(g, ch.contrast, gsd, SEED_SIGMA)], gsd)
    c0, r0, c1, r1 = core_px
    out = []
    for g in groups:
        lo = min(p.across_span[0] for p in g)
        hi = max(p.across_span[1] for p in g)
        span = hi - lo
        rr = np.concatenate([p.rows for p in g])
        cc = np.concatenate([p.cols for p in g])
        along_len = own_axes(rr, cc)[2]
        contrast = float(np.median(ch.contrast[rr, cc]))
        cy, cx = float(rr.mean()) + 0.5, float(cc.mean()) + 0.5
        if not (c0 <= cx < c1 and r0 <= cy < r1):
            continue
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
        if span * gsd > width * gsd + MAX_OVERHANG_M:
            continue
        # light let through between shadows brightens the ground past the road too
        beyond = off_road_change(ga_s, gb_s, off, rr, cc, gsd, ch.sigma)
        if beyond > GROW_SIGMA:
            continue
        line = shapely.LineString([base + nrm * lo, base + nrm * hi])
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
                        "noise_sigma": round(ch.sigma, 4),
                        "along_m": round(along_len * gsd, 2),
                        "road_width_m": round(width * gsd, 2),
                        "free_gap_m": round(gap * gsd, 2),
                        "pieces": len(g),
                        "off_road_sigma": round(beyond, 2),
                    },
                },
            )
        )
    return out
