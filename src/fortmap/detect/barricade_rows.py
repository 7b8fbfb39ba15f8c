"""Block rows: connected new-object pixels measured in their road's frame and grouped.

The pixel tests live in ``fortmap.detect.barricades``; this module turns the pixels that pass
them into pieces (one connected object each, framed by the road it lies across), groups the
pieces into rows and checks that a row looks like blocks laid across a road. Pixel
coordinates are the window's (x = column, y = row); lengths are in pixels unless named ``_m``.
The surface-height tests of rows (DSMs) live in ``barricade_dsm``, the look past a row's ends
(``off_road_change``) in ``barricade_ends``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import geopandas as gpd
import numpy as np
import shapely
from scipy import ndimage as ndi

from fortmap.detect import along_kernels as AK
from fortmap.detect.change_stats import median_np
from fortmap.detect.roadmask import RoadRaster, own_axes, segment_frame
from fortmap.detect.row_stats import percentile_pair

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
#: Least ratio of a row's span across the road to its thickness along it. Two 1.4 m blocks
#: blurred by about 0.5 m at each edge measure 3.8 x 2.4 m (1.6); a single block measures
#: about 1.0. The bound sits between, leaving room for the percentile extents' noise.
MIN_ROW_ASPECT = 1.25
#: A piece this elongated (length / thickness) has a direction worth reframing it by at a
#: crossing; a lone blurred block (about 1.0) has none.
MIN_FRAME_ASPECT = 1.4
#: Distances (m) along the road at which a pixel's surroundings are sampled: beyond a block's
#: half-length (0.75 m) plus blur, and within the few metres over which shade is uniform.
ALONG_REF_M = (2.5, 3.0, 3.5, 4.0)


def masked_box(g: np.ndarray, m: np.ndarray, k: int) -> np.ndarray:
    """Box mean of ``g`` over the pixels of ``m`` only (NaN where none)."""
    num = ndi.uniform_filter(np.where(m, g, 0).astype(np.float32), k)
    den = ndi.uniform_filter(m.astype(np.float32), k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 1e-3, num / den, np.nan).astype(np.float32)


def hysteresis(seed: np.ndarray, grow: np.ndarray) -> tuple[np.ndarray, int]:
    """Components of ``grow`` (8-connected) that hold a ``seed`` pixel, relabelled 1..n
    (int32, in the order ``ndi.label`` numbers them), by flood fills from the seeds."""
    lab, n, _ = hysteresis_pixels(seed, grow)
    return lab, n


def hysteresis_pixels(
    seed: np.ndarray, grow: np.ndarray
) -> tuple[np.ndarray, int, tuple[np.ndarray, np.ndarray]]:
    """``hysteresis`` and its labels' pixels (flat indices grouped by label in raster order,
    and where each label starts: ``road_components``' ``pixels``), found by the same fill."""
    lab, n, flat, starts = AK.seeded_labels(
        np.ascontiguousarray(seed, bool), np.ascontiguousarray(grow, bool)
    )
    return lab, int(n), (flat, starts)


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

    @cached_property
    def axes(self) -> tuple[float, float, float]:
        """``own_axes`` of the piece's pixels (angle, length, thickness), computed once."""
        return own_axes(self.rows, self.cols)

    @cached_property
    def along_len(self) -> float:
        """Extent along the road (px); percentiles ignore 1-px tails that misregistration
        leaves along edges and that 8-connectivity attaches."""
        lo, hi = percentile_pair(self.along, 5, 95)
        return hi - lo + 1

    @cached_property
    def across_span(self) -> tuple[float, float]:
        """(lo, hi) offsets across the road (px) of the piece's edges, computed once: a
        piece's pixels are not changed after it is made."""
        lo, hi = percentile_pair(self.across, 1, 99)
        return lo - 0.5, hi + 0.5

    @cached_property
    def xy(self) -> tuple[float, float]:
        """(x, y) centre of the piece's pixel centres (window pixels), computed once."""
        return float(self.cols.mean()) + 0.5, float(self.rows.mean()) + 0.5


def axis_mean(ax: np.ndarray) -> float:
    """Mean of road axis angles (radians, defined modulo pi), by doubling the angles."""
    return 0.5 * float(np.arctan2(np.sin(2 * ax).mean(), np.cos(2 * ax).mean()))


def road_components(
    lab: np.ndarray,
    roads: RoadRaster,
    n: int | None = None,
    pixels: tuple[np.ndarray, np.ndarray] | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (rows, cols, road ids, per-road pixel counts) of each labelled component that
    touches a road (road id 0, off the roads, is not counted); ``n``: the highest label
    (found when None); ``pixels``: the labels' pixels when known (``hysteresis_pixels``)."""
    if pixels is None:
        if n is None:
            n = int(lab.max()) if lab.size else 0
        # every label's pixels in raster order from one pass, as find_objects and a compare
        # per label gave them
        pixels = AK.label_pixels(lab, n)
    flat, starts = pixels
    w = lab.shape[1]
    for k in range(1, starts.size - 1):
        if starts[k] == starts[k + 1]:
            continue
        rr, cc = np.divmod(flat[starts[k] : starts[k + 1]], w)
        rid = roads.road_id[rr, cc]
        counts = np.bincount(rid)
        counts[0] = 0
        if counts.sum() == 0:
            continue
        yield rr, cc, rid, counts


def pieces(
    lab: np.ndarray,
    n: int,
    roads: RoadRaster,
    pixels: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[Piece]:
    """Measure each labelled component in the frame of the road most of it lies on
    (``pixels``: as ``road_components``)."""
    out: list[Piece] = []
    if n == 0:
        return out
    for rr, cc, rid, counts in road_components(lab, roads, n, pixels):
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
                    th = axis_mean(roads.axis[rr, cc][rid == k].astype(float))
                    return abs(np.cos(major - th))

                road = int(min(cands, key=skew))
        sel = rid == road
        rr, cc = rr[sel], cc[sel]
        theta = axis_mean(roads.axis[rr, cc].astype(float))
        along = (cc + 0.5) * np.cos(theta) + (rr + 0.5) * np.sin(theta)
        out.append(
            Piece(rr, cc, road - 1, theta, along, roads.across[rr, cc], roads.widths_px[road - 1])
        )
    return out


def road_geoms(roads: RoadRaster, roads_px: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The roads' geometries (object array) and their bounds ((n, 4) float, NaN for a missing
    or empty one) in window pixels, found once per window (kept with ``roads``)."""
    c = roads._masks.get("geoms")
    if c is None or c[0] is not roads_px:
        geoms = roads_px.geometry.to_numpy()
        c = (roads_px, geoms, shapely.bounds(geoms))
        roads._masks["geoms"] = c
    return c[1], c[2]


def near_roads(
    roads: RoadRaster, roads_px: gpd.GeoDataFrame, x: float, y: float, reach_px: float
) -> np.ndarray:
    """Indices (ascending) of the roads whose centre line passes within half their width plus
    ``reach_px`` (pixels) of the point (x, y) in window pixels.

    A line that near the point has its bounding box that near too, so the distance is
    measured to the roads whose boxes (with a hair's slack for rounding) reach it only."""
    geoms, b = road_geoms(roads, roads_px)
    lim = roads.widths_px / 2 + reach_px
    slack = lim + 1e-6 * (1.0 + abs(x) + abs(y))
    cand = np.flatnonzero(
        (b[:, 0] - slack <= x)
        & (x <= b[:, 2] + slack)
        & (b[:, 1] - slack <= y)
        & (y <= b[:, 3] + slack)
    )
    if not cand.size:
        return cand
    dist = shapely.distance(geoms[cand], shapely.Point(x, y))
    return cand[dist <= lim[cand]]


def reframe(
    p: Piece, roads: RoadRaster, roads_px: gpd.GeoDataFrame, reach_px: float, gsd: float
) -> Piece:
    """An elongated piece measured in the frame of the road it crosses most squarely.

    At a junction the road burnt last owns the pixels (``roads_in_window``), and a row across
    the crossing street is then framed by the wrong road: it looks long along it. Every road
    whose centreline passes within half its width plus ``reach_px`` (pixels) of the piece's
    centre (a row across a road is centred on its carriageway) is a candidate; the one whose
    local axis is closest to the piece's normal wins. ``gsd``: metres per pixel.
    """
    phi, length, thick = p.axes
    if length < MIN_FRAME_ASPECT * thick or roads_px is None or not len(roads_px):
        return p
    # A piece shorter than the least row span is one block at most: its long axis is that of
    # a few blurred pixels, and says nothing about the road it lies across.
    if length * gsd < MIN_ROW_SPAN_M:
        return p
    cx, cy = p.xy
    geoms = road_geoms(roads, roads_px)[0]
    best, best_skew = None, abs(np.cos(phi - p.theta))
    for i in near_roads(roads, roads_px, cx, cy, reach_px):
        if i == p.road or geoms[i].is_empty:
            continue
        th, _ = segment_frame(geoms[i], cx, cy)
        sk = abs(np.cos(phi - th))
        if sk < best_skew - 0.05:
            best, best_skew = int(i), sk
    if best is None:
        return p
    return frame_on(p, best, roads, roads_px)


def frame_on(p: Piece, i: int, roads: RoadRaster, roads_px: gpd.GeoDataFrame) -> Piece:
    """The piece ``p`` measured in the frame of road index ``i`` (0-based; the segment of its
    centre line nearest the piece's centre), whatever road owns its pixels."""
    cx, cy = p.xy
    # the same geometry object as ``roads_px.geometry.iloc[i]``, without pandas' lookup
    th, (x0, y0) = segment_frame(road_geoms(roads, roads_px)[0][i], cx, cy)
    xs, ys = p.cols + 0.5, p.rows + 0.5
    along = xs * np.cos(th) + ys * np.sin(th)
    across = (-(xs - x0) * np.sin(th) + (ys - y0) * np.cos(th)).astype(np.float32)
    q = Piece(p.rows, p.cols, i, th, along, across, float(roads.widths_px[i]))
    q.__dict__["axes"] = p.axes  # same pixels, same axes and centre
    q.__dict__["xy"] = p.xy
    return q


def junction_rows(
    rest: list[Piece],
    roads: RoadRaster,
    roads_px: gpd.GeoDataFrame,
    reach_px: float,
    gsd: float,
    contrast: np.ndarray,
    min_contrast: float,
) -> list[list[Piece]]:
    """Rows of lone pieces at a crossing, grouped in the frame of a road they lie on.

    At a junction the road burnt last owns the crossing's pixels, so the blocks of a row laid
    across the other road's mouth are framed by the owner: there they stand one behind the
    other *along* it and never group (a diagonal two-block row is two lone blocks). Each road
    whose centre line passes within half its width plus ``reach_px`` of a piece's centre is
    tried: the pieces near it are measured in its frame, grouped and checked (``row_ok``).

    Args:
        rest: pieces that formed no row in their own road's frame.
        roads: the window's roads.
        roads_px: the roads in window pixels (the frame of ``roads``' indices).
        reach_px: how far (pixels) past a road's carriageway a piece may lie.
        gsd: metres per pixel.
        contrast: (rows, cols) contrast of the pixels, for ``row_ok``.
        min_contrast: least median contrast of a row.

    Returns:
        The rows found, each of two pieces or more; a piece is in one row at most.
    """
    if len(rest) < 2 or roads_px is None or not len(roads_px):
        return []
    geoms = road_geoms(roads, roads_px)[0]
    near: dict[int, list[int]] = {}
    for k, p in enumerate(rest):
        x, y = p.xy
        for i in near_roads(roads, roads_px, x, y, reach_px):
            if not geoms[i].is_empty:
                near.setdefault(int(i), []).append(k)
    used: set[int] = set()
    out: list[list[Piece]] = []
    for i, ks in sorted(near.items()):
        ks = [k for k in ks if k not in used]
        if len(ks) < 2:
            continue
        pcs = [(k, frame_on(rest[k], i, roads, roads_px)) for k in ks]
        owner = {id(q): k for k, q in pcs}
        for g in group_rows([q for _, q in pcs if across_road(q, gsd)], gsd):
            if len(g) >= 2 and row_ok(g, contrast, gsd, min_contrast):
                out.append(g)
                used.update(owner[id(q)] for q in g)
    return out


def free_gap(spans: list[tuple[float, float]], width: float) -> float:
    """Widest free interval of the carriageway ``[-width/2, width/2]`` left by ``spans``."""
    half = width / 2
    edges = sorted((max(a, -half), min(b, half)) for a, b in spans if b > -half and a < half)
    best, cur = 0.0, -half
    for a, b in edges:
        best = max(best, a - cur)
        cur = max(cur, b)
    return max(best, half - cur)


def across_road(p: Piece, gsd: float) -> bool:
    """A piece can belong to a row: one block thick, and not a streak along the road."""
    phi, length, thick = p.axes
    if thick * gsd > MAX_ROW_ALONG_M:
        return False
    return length < 2 * thick or abs(np.cos(phi - p.theta)) <= np.sin(np.radians(MAX_ROW_SKEW_DEG))


def row_ok(g: list[Piece], contrast: np.ndarray, gsd: float, min_contrast: float) -> bool:
    """A group of pieces is a block row: it spans the road more than it runs along it, and
    its typical pixel is a strong change (a faint one is a fringe, not new objects)."""
    lo = min(p.across_span[0] for p in g)
    hi = max(p.across_span[1] for p in g)
    span = hi - lo
    rr = np.concatenate([p.rows for p in g])
    cc = np.concatenate([p.cols for p in g])
    # Thickness across the row's own long axis: a long row laid slightly oblique to the road
    # axis is still one block thick, though it runs a few metres along the road.
    # a lone piece's pixels are its own: its cached axes are the same doubles
    phi, length, thick = g[0].axes if len(g) == 1 else own_axes(rr, cc)
    if (
        thick * gsd > MAX_ROW_ALONG_M
        or span * gsd < MIN_ROW_SPAN_M
        or span < MIN_ROW_ASPECT * thick
    ):
        return False
    if length >= 2 * thick and abs(np.cos(phi - g[0].theta)) > np.sin(np.radians(MAX_ROW_SKEW_DEG)):
        return False
    return float(median_np(contrast[rr, cc])) >= min_contrast


def centre(ps: list[Piece]) -> np.ndarray:
    """(x, y) centre of the pixels of ``ps`` (pixel centres, window pixels)."""
    if len(ps) == 1:
        return np.array(ps[0].xy)  # the same means of the same pixels, computed once
    cc = np.concatenate([p.cols for p in ps])
    rr = np.concatenate([p.rows for p in ps])
    return np.array([cc.mean() + 0.5, rr.mean() + 0.5])


def along_gap(a: list[Piece], b: list[Piece]) -> float:
    """Distance (px) along the road between the centres of two sets of pieces, in ``a``'s
    frame. Each piece's ``along`` is a projection on its own axis through the window's
    origin, so on a curved road, or for a piece reframed at a crossing, two pieces side by
    side across the road differ there by hundreds of pixels times the angle between their
    axes: only centres projected on one axis are comparable."""
    th = a[0].theta
    return float(abs(np.dot(centre(b) - centre(a), (np.cos(th), np.sin(th)))))


def merge_split_rows(rows: list[list[Piece]], gsd: float) -> list[list[Piece]]:
    """Join rows on the same road at the same place along it, whatever the gap across.

    A street tree, a lamp post's shadow or a median strip can hide part of one row, which then
    comes back as two half-rows; two separate barricades side by side across one road at the
    same spot are one barricade anyway.
    """
    out: list[list[Piece]] = []
    for g in sorted(rows, key=lambda q: (q[0].road, np.mean([p.along.mean() for p in q]))):
        for h in out:
            if h[0].road == g[0].road and along_gap(h, g) <= ROW_ALONG_TOL_M / gsd:
                h.extend(g)
                break
        else:
            out.append(list(g))
    return out


def group_rows(cands: list[Piece], gsd: float) -> list[list[Piece]]:
    """Single-link grouping of short pieces on the same road into rows (``gsd`` m/pixel)."""
    groups: list[list[Piece]] = []
    for p in sorted(cands, key=lambda q: (q.road, q.along.mean())):
        for g in groups:
            q = g[-1]
            if q.road != p.road or along_gap([q], [p]) > ROW_ALONG_TOL_M / gsd:
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
    return groups
