"""Barricades: rows of new objects across a road (concrete blocks, 1-2 m each).

Only road pixels are looked at. A pixel holds a *new bright object* when, in the after image,
it is much brighter than its road's typical surface and it was not that bright before. Both
contrasts are measured against the road's own median (per road, per window), which cancels
illumination and radiometric differences between the dates, and moving building shadows
(a road pixel leaving a shadow is only as bright as the rest of the road). The thresholds are
multiples of the in-scene noise: the robust (MAD) spread of those contrasts over the window's
road pixels, with a floor for windows with little road.

Connected new-object pixels are measured in the road's frame. A barricade is a row of pieces,
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
from skimage.filters import threshold_otsu

from fortmap.detect.roadmask import ROAD_MARGIN_M, RoadRaster, own_axes, segment_frame

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
#: A block row is at most this long along the road (m): a 2 m block plus blur.
MAX_ROW_ALONG_M = 3.5
#: Pieces within these distances (m) along / across the road form one row.
ROW_ALONG_TOL_M = 2.0
ROW_GAP_M = 3.0
#: A row must span at least this much across the road (m): two 1.5 m blocks.
MIN_ROW_SPAN_M = 2.5
#: Most a row's own long axis may turn from the road's normal (degrees): a barricade closes the
#: road, so it is laid across it; at 30 degrees a row is already 15 % longer than the road is wide.
MAX_ROW_SKEW_DEG = 30.0
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
    """Median of ``g`` per road id (index = road id, 0 unused)."""
    ids, vals = rid[on], g[on]
    order = np.lexsort((vals, ids))
    ids, vals = ids[order], vals[order]
    lo = np.searchsorted(ids, np.arange(n), side="left")
    hi = np.searchsorted(ids, np.arange(n), side="right")
    out = np.zeros(n, np.float32)
    has = hi > lo
    out[has] = vals[(lo[has] + hi[has] - 1) // 2]
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


def _lit_level(g: np.ndarray, rid: np.ndarray, ref: np.ndarray, n: int) -> np.ndarray:
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
    return np.maximum(np.where(two, lit, med), med)


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
        an_a = ga - _lit_level(ga, roads.road_id, ref, n)[roads.road_id]
    c = np.minimum(an_a, d) / sigma
    c[~on] = 0.0
    return RoadChange(c.astype(np.float32), c > SEED_SIGMA, c > GROW_SIGMA, sigma)


def hysteresis(seed: np.ndarray, grow: np.ndarray) -> tuple[np.ndarray, int]:
    """Components of ``grow`` (8-connected) that hold a ``seed`` pixel, relabelled 1..n."""
    lab, n = ndi.label(grow, np.ones((3, 3), bool))
    if n == 0:
        return lab, 0
    keep = np.zeros(n + 1, bool)
    keep[np.unique(lab[seed & grow])] = True
    keep[0] = False
    new = np.zeros(n + 1, np.int32)
    new[keep] = np.arange(1, keep.sum() + 1)
    return new[lab], int(keep.sum())


@dataclass
class Piece:
    """One connected new object, measured in its road's frame (pixels)."""

    rows: np.ndarray
    cols: np.ndarray
    road: int  # road index (0-based)
    theta: float  # road axis, radians in pixel coordinates
    along: np.ndarray  # pixel centres projected on the axis
    across: np.ndarray  # signed offset from the road axis (RoadRaster.across)
    width_px: float

    @property
    def along_len(self) -> float:
        """Extent along the road (px); percentiles ignore 1-px tails that misregistration
        leaves along edges and that 8-connectivity attaches."""
        lo, hi = np.percentile(self.along, (5, 95))
        return float(hi - lo + 1)

    @property
    def across_span(self) -> tuple[float, float]:
        lo, hi = np.percentile(self.across, (1, 99))
        return float(lo - 0.5), float(hi + 0.5)


def pieces(lab: np.ndarray, n: int, roads: RoadRaster) -> list[Piece]:
    """Measure each labelled component in the frame of the road most of it lies on."""
    out: list[Piece] = []
    if n == 0:
        return out
    for k, sl in enumerate(ndi.find_objects(lab), start=1):
        if sl is None:
            continue
        m = lab[sl] == k
        rr, cc = np.nonzero(m)
        rr, cc = rr + sl[0].start, cc + sl[1].start
        rid = roads.road_id[rr, cc]
        counts = np.bincount(rid)
        counts[0] = 0
        if counts.sum() == 0:
            continue
        road = int(counts.argmax())
        cands = np.nonzero(counts >= 0.1 * counts.sum())[0]
        if len(cands) > 1 and len(rr) >= 6:
            # At crossings the pixels belong to either road: an elongated piece is framed by
            # the road it lies across (its long axis closest to that road's normal).
            x = np.c_[cc, rr].astype(float)
            x -= x.mean(axis=0)
            ev, vec = np.linalg.eigh(x.T @ x)
            if ev[1] > 4 * max(ev[0], 1e-9):
                major = np.arctan2(vec[1, 1], vec[0, 1])

                def skew(k: int, rr=rr, cc=cc, rid=rid, major=major) -> float:
                    ax = roads.axis[rr, cc][rid == k].astype(float)
                    th = 0.5 * np.arctan2(np.sin(2 * ax).mean(), np.cos(2 * ax).mean())
                    return abs(np.cos(major - th))

                road = int(min(cands, key=skew))
        sel = rid == road
        rr, cc = rr[sel], cc[sel]
        ax = roads.axis[rr, cc].astype(float)
        theta = 0.5 * float(np.arctan2(np.sin(2 * ax).mean(), np.cos(2 * ax).mean()))
        along = (cc + 0.5) * np.cos(theta) + (rr + 0.5) * np.sin(theta)
        out.append(
            Piece(rr, cc, road - 1, theta, along, roads.across[rr, cc], roads.widths_px[road - 1])
        )
    return out


def reframe(p: Piece, roads: RoadRaster, roads_px: gpd.GeoDataFrame, reach_px: float) -> Piece:
    """An elongated piece measured in the frame of the road it crosses most squarely.

    At a junction the road burnt last owns the pixels (``roads_in_window``), and a row across
    the crossing street is then framed by the wrong road: it looks long along it. Every road
    whose centreline passes within half its width plus ``reach_px`` (pixels) of the piece's
    centre (a row across a road is centred on its carriageway) is a candidate; the one whose local axis is closest to the piece's normal wins.
    """
    phi, length, thick = own_axes(p.rows, p.cols)
    if length < 2 * thick or roads_px is None or not len(roads_px):
        return p
    cx, cy = float(p.cols.mean()) + 0.5, float(p.rows.mean()) + 0.5
    geoms = roads_px.geometry.to_numpy()
    dist = shapely.distance(geoms, shapely.Point(cx, cy))
    best, best_skew = None, abs(np.cos(phi - p.theta))
    for i in np.flatnonzero(dist <= roads.widths_px / 2 + reach_px):
        if i == p.road or geoms[i] is None or geoms[i].is_empty:
            continue
        th, _ = segment_frame(geoms[i], cx, cy)
        sk = abs(np.cos(phi - th))
        if sk < best_skew - 0.05:
            best, best_skew = int(i), sk
    if best is None:
        return p
    th, (x0, y0) = segment_frame(geoms[best], cx, cy)
    xs, ys = p.cols + 0.5, p.rows + 0.5
    along = xs * np.cos(th) + ys * np.sin(th)
    across = (-(xs - x0) * np.sin(th) + (ys - y0) * np.cos(th)).astype(np.float32)
    return Piece(p.rows, p.cols, best, th, along, across, float(roads.widths_px[best]))


def free_gap(spans: list[tuple[float, float]], width: float) -> float:
    """Widest free interval of the carriageway ``[-width/2, width/2]`` left by ``spans``."""
    half = width / 2
    edges = sorted((max(a, -half), min(b, half)) for a, b in spans if b > -half and a < half)
    best, cur = 0.0, -half
    for a, b in edges:
        best = max(best, a - cur)
        cur = max(cur, b)
    return max(best, half - cur)


def _across_road(p: Piece, gsd: float) -> bool:
    """A piece can belong to a row: one block thick, and not a streak along the road."""
    phi, length, thick = own_axes(p.rows, p.cols)
    if thick * gsd > MAX_ROW_ALONG_M:
        return False
    return length < 2 * thick or abs(np.cos(phi - p.theta)) <= np.sin(np.radians(MAX_ROW_SKEW_DEG))


def off_road_change(
    diff: np.ndarray, ok: np.ndarray, rr: np.ndarray, cc: np.ndarray, gsd: float
) -> float:
    """How strongly the brightening of a row carries on past its ends, off the road.

    Blocks stand on the carriageway, and the ground beyond a row's ends (kerb, pavement) does
    not change; a band of sunlight let through between two buildings' shadows brightens the
    road *and* the ground on either side of it. The row's long axis is followed 1-3 m past
    each end, over pixels off the road; the weaker end's median brightening is returned.

    Args:
        diff: after-minus-before grey level in robust standard deviations (rows, cols).
        ok: bool (rows, cols): valid pixels off the road mask.
        rr, cc: the row's pixels.
        gsd: metres per pixel.

    Returns:
        The smaller of the two ends' medians (sigma); 0 where an end has no pixel to look at.
    """
    phi, length, thick = own_axes(rr, cc)
    u = np.array([np.cos(phi), np.sin(phi)])
    v = np.array([-u[1], u[0]])
    c = np.array([cc.mean() + 0.5, rr.mean() + 0.5])
    t = np.arange(1.0, 3.01, 0.5) / gsd
    w = np.arange(-thick / 4, thick / 4 + 0.01, 1.0)
    h, wd = diff.shape
    ends = []
    for sgn in (-1, 1):
        pts = c + sgn * (length / 2 + t[:, None, None]) * u + w[None, :, None] * v
        x = np.floor(pts[..., 0]).astype(int).ravel()
        y = np.floor(pts[..., 1]).astype(int).ravel()
        inside = (x >= 0) & (x < wd) & (y >= 0) & (y < h)
        x, y = x[inside], y[inside]
        sel = ok[y, x]
        if sel.sum() < 3:
            return 0.0
        ends.append(float(np.median(diff[y[sel], x[sel]])))
    return min(ends)


def _row_ok(g: list[Piece], ch: RoadChange, gsd: float) -> bool:
    """A group of pieces is a block row: it spans the road more than it runs along it, and
    its typical pixel is a strong change (a faint one is a fringe, not new objects)."""
    lo = min(p.across_span[0] for p in g)
    hi = max(p.across_span[1] for p in g)
    span = hi - lo
    rr = np.concatenate([p.rows for p in g])
    cc = np.concatenate([p.cols for p in g])
    # Thickness across the row's own long axis: a long row laid slightly oblique to the road
    # axis is still one block thick, though it runs a few metres along the road.
    phi, length, thick = own_axes(rr, cc)
    if thick * gsd > MAX_ROW_ALONG_M or span * gsd < MIN_ROW_SPAN_M or span < 1.5 * thick:
        return False
    if length >= 2 * thick and abs(np.cos(phi - g[0].theta)) > np.sin(np.radians(MAX_ROW_SKEW_DEG)):
        return False
    return float(np.median(ch.contrast[rr, cc])) >= SEED_SIGMA


def _merge_split_rows(rows: list[list[Piece]], gsd: float) -> list[list[Piece]]:
    """Join rows on the same road at the same place along it, whatever the gap across.

    A street tree, a lamp post's shadow or a median strip can hide part of one row, which then
    comes back as two half-rows; two separate barricades side by side across one road at the
    same spot are one barricade anyway.
    """
    out: list[list[Piece]] = []
    for g in sorted(rows, key=lambda q: (q[0].road, np.mean([p.along.mean() for p in q]))):
        a = np.mean(np.concatenate([p.along for p in g]))
        for h in out:
            b = np.mean(np.concatenate([p.along for p in h]))
            if h[0].road == g[0].road and abs(a - b) <= ROW_ALONG_TOL_M / gsd:
                h.extend(g)
                break
        else:
            out.append(list(g))
    return out


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
        change: precomputed ``road_change(before, after, valid, roads, lit_reference=True)``
            (optional).

    Returns:
        (LineString across the road in window pixels, score 0..1, attributes) per barricade;
        attributes: ``road_name``, ``road_class``, ``width_m`` (span across the road, m),
        ``n_blocks``, ``blocks_road`` and ``evidence`` (dict).
    """
    ch = change or road_change(before, after, valid, roads, lit_reference=True)
    diff = _grey(after) - _grey(before)
    off = valid & ~roads.mask
    dv = diff[valid]
    dsig = max(float(np.median(np.abs(dv - np.median(dv)))) * 1.4826, MIN_SIGMA) if dv.size else 1.0
    diff = (diff - (float(np.median(dv)) if dv.size else 0.0)) / dsig
    # Opening drops 1-2 px fringes that residual misregistration leaves along road edges;
    # a blurred 1.5 m block is wider than 3 px and survives it.
    grow = ndi.binary_opening(ch.grow, np.ones((3, 3), bool))
    lab, n = hysteresis(ch.seed & grow, grow)
    reach = ROAD_MARGIN_M / gsd
    cands = [q for q in (reframe(p, roads, roads_px, reach) for p in pieces(lab, n, roads))
             if _across_road(q, gsd)]  # fmt: skip
    # Single-link grouping of short pieces on the same road into rows.
    groups: list[list[Piece]] = []
    for p in sorted(cands, key=lambda q: (q.road, q.along.mean())):
        for g in groups:
            q = g[-1]
            if q.road != p.road or abs(q.along.mean() - p.along.mean()) > ROW_ALONG_TOL_M / gsd:
                continue
            lo = min(s.across_span[0] for s in g)
            hi = max(s.across_span[1] for s in g)
            a, b = p.across_span
            if a - hi > ROW_GAP_M / gsd or lo - b > ROW_GAP_M / gsd:
                continue
            # a fragment beside the row (a shadow's edge, debris) must not make it too thick
            rr = np.concatenate([s.rows for s in g] + [p.rows])
            cc = np.concatenate([s.cols for s in g] + [p.cols])
            if own_axes(rr, cc)[2] * gsd <= MAX_ROW_ALONG_M:
                g.append(p)
                break
        else:
            groups.append([p])
    groups = _merge_split_rows([g for g in groups if _row_ok(g, ch, gsd)], gsd)
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
        beyond = off_road_change(diff, off, rr, cc, gsd)
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
