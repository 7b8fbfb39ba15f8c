"""Berms (earthen ridges) and ditches: elongated new relief, on or off roads.

Everything runs at about 2 m a pixel (berms are 5-15 m wide and tens to hundreds of metres
long), which keeps the whole-window work small.

* From elevation (both DSMs given): a berm is a connected region where the surface rose by
  ``MIN_HEIGHT_M`` (1 m) or more whose crest runs ``MIN_LENGTH_M`` (30 m) or more; a ditch the
  same for a drop, reported with ``kind = ditch``. Buildings razed leave drops too, but compact
  ones: the length / width test keeps only linear features.
* From imagery: a berm is an elongated region whose colour changed (threshold: Otsu on the
  window's change magnitude, an in-scene statistic) and whose two flanks are shaded as the
  after image's sun predicts: the flank facing the sun brighter than the other.

Crest lines are clipped to the window's core, so a berm crossing windows comes back in pieces
that ``merge_pieces`` joins scene-wide.
"""

from __future__ import annotations

import networkx as nx
import numba
import numpy as np
import shapely
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu
from skimage.morphology import skeletonize

#: Height change (m) that counts as a berm or ditch (the issue's figure).
MIN_HEIGHT_M = 1.0
#: Shortest crest reported (m).
MIN_LENGTH_M = 30.0
#: Widest mean footprint (m) of a linear feature: wider is a mound, spoil heap or building.
MAX_WIDTH_M = 30.0
#: Working resolution (m per pixel).
WORK_GSD_M = 2.0


def _down(a: np.ndarray, f: int) -> np.ndarray:
    """Block mean by ``f`` (trailing rows/cols that do not fill a block are dropped)."""
    if f == 1:
        return a.astype(np.float32)
    if a.ndim == 2:
        return _block_means(a[None], f)[0]
    return _block_means(a, f)


def _block_means(a: np.ndarray, f: int) -> np.ndarray:
    """(bands, rows // f, cols // f) float32 block means of a (bands, rows, cols) array."""
    if a.dtype == np.bool_:
        a = a.view(np.uint8)
    if a.dtype not in (np.float32, np.float64, np.uint8):
        a = a.astype(np.float32)
    return _block_means_kernel(a, f)


@numba.njit(cache=True, nogil=True)
def _block_means_kernel(a: np.ndarray, f: int) -> np.ndarray:
    # One pass over the window instead of numpy's reshape-mean (a strided copy per band).
    nb, h, w = a.shape[0], a.shape[1] // f, a.shape[2] // f
    out = np.zeros((nb, h, w), np.float32)
    acc = np.zeros(w, np.float64)
    inv = 1.0 / (f * f)
    for b in range(nb):
        for i in range(h):
            acc[:] = 0.0
            for r in range(i * f, i * f + f):
                for j in range(w):
                    s = 0.0
                    for c in range(j * f, j * f + f):
                        s += a[b, r, c]
                    acc[j] += s
            for j in range(w):
                out[b, i, j] = acc[j] * inv
    return out


def _crest(mask: np.ndarray) -> np.ndarray | None:
    """Longest path (rows, cols) through the skeleton of one component."""
    sk = skeletonize(mask)
    rr, cc = np.nonzero(sk)
    if len(rr) < 2:
        return None
    idx = {(r, c): i for i, (r, c) in enumerate(zip(rr, cc, strict=True))}
    g = nx.Graph()
    g.add_nodes_from(range(len(rr)))
    for i, (r, c) in enumerate(zip(rr, cc, strict=True)):
        for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
            j = idx.get((r + dr, c + dc))
            if j is not None:
                g.add_edge(i, j, weight=float(np.hypot(dr, dc)))
    comp = max(nx.connected_components(g), key=len)
    start = next(iter(comp))
    d = nx.single_source_dijkstra_path_length(g, start)
    a = max(d, key=d.get)
    d, paths = nx.single_source_dijkstra(g, a)
    b = max(d, key=d.get)
    path = paths[b]
    return np.c_[rr[path], cc[path]]


def _lines(
    mask: np.ndarray, f: int, min_len_px: float, max_width_px: float
) -> list[tuple[shapely.LineString, np.ndarray, float]]:
    """Crest lines (window pixels) of elongated components of ``mask`` (work pixels).

    Returns (line, component mask, mean width in work pixels) per component kept.
    """
    lab, n = ndi.label(mask, np.ones((3, 3), bool))
    out = []
    for k, sl in enumerate(ndi.find_objects(lab), start=1):
        if sl is None:
            continue
        m = lab[sl] == k
        area = m.sum()
        if area < min_len_px:
            continue
        path = _crest(m)
        if path is None:
            continue
        xy = np.c_[path[:, 1] + sl[1].start + 0.5, path[:, 0] + sl[0].start + 0.5] * f
        line = shapely.LineString(xy).simplify(f)
        length = line.length / f
        width = area / max(length, 1.0)
        if length < min_len_px or width > max_width_px:
            continue
        full = np.zeros(mask.shape, bool)
        full[sl] = m
        out.append((line, full, float(width)))
    return out


def _clip(line: shapely.LineString, core_px: tuple[int, int, int, int]) -> list:
    part = line.intersection(shapely.box(*core_px))
    return [
        g for g in getattr(part, "geoms", [part]) if g.geom_type == "LineString" and g.length > 0
    ]


def flank_contrast(
    grey: np.ndarray, line: shapely.LineString, half_width_px: float, sun_azimuth_deg: float
) -> float:
    """Mean (sun-side flank - far flank) brightness along ``line`` (window pixels).

    Positive when the flank facing the sun is the brighter one, as for a ridge; negative for a
    trench. Flanks are sampled at half the half-width either side of the crest. Each sample is
    weighted by how squarely its flank faces the sun (a ridge parallel to the sun's azimuth
    has equally lit flanks and tells nothing).
    """
    a = np.radians(sun_azimuth_deg)
    sun = np.array([np.sin(a), -np.cos(a)])  # towards the sun in pixel coords (rows run south)
    n = max(4, int(line.length // 2))
    d = np.linspace(0, line.length, n)
    pts = shapely.get_coordinates(shapely.line_interpolate_point(line, d))
    nxt = shapely.get_coordinates(
        shapely.line_interpolate_point(line, np.minimum(d + 2, line.length))
    )
    prv = shapely.get_coordinates(shapely.line_interpolate_point(line, np.maximum(d - 2, 0)))
    t = nxt - prv
    t /= np.maximum(np.hypot(*t.T), 1e-9)[:, None]
    nrm = np.c_[-t[:, 1], t[:, 0]]
    w = nrm @ sun
    off = max(1.0, half_width_px / 2)
    p1 = pts + nrm * off
    p2 = pts - nrm * off
    s1 = ndi.map_coordinates(grey, [p1[:, 1] - 0.5, p1[:, 0] - 0.5], order=1, mode="nearest")
    s2 = ndi.map_coordinates(grey, [p2[:, 1] - 0.5, p2[:, 0] - 0.5], order=1, mode="nearest")
    if np.abs(w).sum() < 1e-6:
        return 0.0
    return float(np.sum((s1 - s2) * w) / np.abs(w).sum())


def find_berms(
    before: np.ndarray,
    after: np.ndarray,
    valid: np.ndarray,
    gsd: float,
    sun_azimuth_deg: float | None,
    core_px: tuple[int, int, int, int],
    dsm_before: np.ndarray | None = None,
    dsm_after: np.ndarray | None = None,
) -> list[tuple[shapely.LineString, float, dict]]:
    """Berm and ditch crest lines in one window.

    Args:
        before, after: matched images of the window, (bands, rows, cols).
        valid: bool (rows, cols).
        gsd: metres per pixel of the window.
        sun_azimuth_deg: the after image's sun azimuth (degrees clockwise from north, the
            direction the sun is in), or None when unknown (image berms then need no flank
            test and score lower).
        core_px: (col0, row0, col1, row1) of the core; crest lines are clipped to it.
        dsm_before, dsm_after: optional surface heights (m) of the window on the same grid.

    Returns:
        (LineString in window pixels, score 0..1, attributes) per crest piece; attributes:
        ``kind`` (berm | ditch), ``height_m`` (median change along the crest from the DSMs,
        NaN from imagery alone), ``source`` (image | dsm | both), ``evidence``.
    """
    f = max(1, int(round(WORK_GSD_M / gsd)))
    wg = gsd * f
    min_len, max_w = MIN_LENGTH_M / wg, MAX_WIDTH_M / wg
    vd = _down(valid, f) > 0.99
    # Band means of block means equal block means of the grey level, at 1/f**2 of the cost.
    ab = _down(after, f) if after.ndim == 3 else _down(after, f)[None]
    bb = _down(before, f) if before.ndim == 3 else _down(before, f)[None]
    ga = ab.mean(axis=0)
    out: list[tuple[shapely.LineString, float, dict]] = []
    dsm_lines: list[shapely.LineString] = []
    have_dsm = dsm_before is not None and dsm_after is not None
    if have_dsm:
        dh = _down(dsm_after, f) - _down(dsm_before, f)
        dh[~vd] = 0
        for kind, m in (("berm", dh >= MIN_HEIGHT_M), ("ditch", dh <= -MIN_HEIGHT_M)):
            m = ndi.binary_opening(m, np.ones((2, 2), bool))
            for line, comp, width in _lines(m, f, min_len, max_w):
                h = float(np.median(dh[comp]))
                peak = float(np.percentile(np.abs(dh[comp]), 90))
                dsm_lines.append(line)
                score = float(np.clip(0.5 + 0.25 * peak / MIN_HEIGHT_M, 0, 1))
                ev = {"width_m": round(width * wg, 1), "peak_change_m": round(peak, 2)}
                for piece in _clip(line, core_px):
                    out.append(
                        (piece, score, {"kind": kind, "height_m": round(abs(peak), 2),
                                        "median_change_m": round(h, 2), "source": "dsm",
                                        "evidence": ev})
                    )  # fmt: skip
    # Imagery: colour change, elongated, flanks shaded as the sun predicts.
    mag = np.sqrt(((ab - bb) ** 2).sum(axis=0))
    mag[~vd] = 0
    if vd.sum() > 100 and np.ptp(mag[vd]) > 0:
        thr = float(threshold_otsu(mag[vd]))
        m = ndi.binary_opening(mag > thr, np.ones((2, 2), bool))
        dsm_zone = shapely.union_all([ln.buffer(3 * f) for ln in dsm_lines]) if dsm_lines else None
        for line, _comp, width in _lines(m, f, min_len, max_w):
            fc = 0.0
            if sun_azimuth_deg is not None:
                fc = flank_contrast(ga, line, width * f / 2, sun_azimuth_deg)
                if fc <= 0:
                    continue  # not lit like a ridge under this sun
            both = dsm_zone is not None and line.intersection(dsm_zone).length > 0.5 * line.length
            if both:
                for i, (ln, s, at) in enumerate(out):
                    if at["kind"] == "berm" and ln.distance(line) < 3 * f:
                        out[i] = (ln, min(1.0, s + 0.2), {**at, "source": "both"})
                continue
            if have_dsm:
                continue  # the DSMs see no relief here: a colour change, not a berm
            score = float(np.clip(0.4 + 0.1 * (sun_azimuth_deg is not None) + 5 * fc, 0, 0.9))
            ev = {"width_m": round(width * wg, 1), "flank_contrast": round(fc, 4),
                  "change_threshold": round(thr, 4)}  # fmt: skip
            for piece in _clip(line, core_px):
                out.append(
                    (piece, score, {"kind": "berm", "height_m": float("nan"),
                                    "source": "image", "evidence": ev})
                )  # fmt: skip
    return out


def merge_pieces(lines: list[shapely.LineString], tol: float = 1.0) -> list[shapely.LineString]:
    """Join crest pieces that touch (within ``tol``, same units as the lines) into lines."""
    if not lines:
        return []
    merged = shapely.line_merge(
        shapely.union_all(shapely.snap(np.asarray(lines), shapely.union_all(lines), tol))
    )
    return [g for g in getattr(merged, "geoms", [merged]) if g.length > 0]
