"""Berms (earthen ridges) and ditches: elongated new relief, on or off roads.

Everything runs at about 2 m a pixel (berms are 5-15 m wide and tens to hundreds of metres
long), which keeps the whole-window work small.

* From elevation (both DSMs given): a berm is a connected region where the surface rose by
  ``MIN_HEIGHT_M`` (1 m) or more whose crest runs ``MIN_LENGTH_M`` (30 m) or more; a ditch the
  same for a drop, reported with ``kind = ditch``. Buildings razed leave drops too, but compact
  ones: the length / width test keeps only linear features.
* From imagery: a berm is fresh soil (changed since the before image, threshold: Otsu on the
  window's change magnitude, an in-scene statistic, grown by hysteresis to half of it; and
  bare-earth coloured in the after image: red above blue by ``SOIL_MIN_REDNESS``, a physical
  property of iron-bearing soils that grey concrete, asphalt, rubble dust, vegetation and
  sky-lit shadows lack), elongated (crest ``MIN_LENGTH_M`` or more, width 4-22 m) and lit as
  a ridge: all along the crest, the flank facing the after image's sun is brighter than the
  far flank by at least what a 1 m high, 20 m wide ridge would show (Lambertian shading; see
  ``min_flank_contrast``). Cleared ground (wide, no flank contrast), rubble, roads and moved
  shadows fail one of these tests.

Crest lines are clipped to the window's core, so a berm crossing windows comes back in pieces
that ``merge_pieces`` joins scene-wide.
"""

from __future__ import annotations

import networkx as nx
import numba
import numpy as np
import shapely
import shapely.affinity
from scipy import ndimage as ndi
from skimage.filters import apply_hysteresis_threshold, threshold_otsu
from skimage.morphology import skeletonize

#: Height change (m) that counts as a berm or ditch (the issue's figure).
MIN_HEIGHT_M = 1.0
#: Shortest crest reported (m).
MIN_LENGTH_M = 30.0
#: Widest mean footprint (m) of a linear feature: wider is a mound, spoil heap or building.
MAX_WIDTH_M = 30.0
#: Working resolution (m per pixel).
WORK_GSD_M = 2.0
#: Image berms: crest width range (m) measured from the distance transform (berms are 5-20 m
#: wide; the change mask loses or gains a pixel of the 2 m grid at each edge).
IMAGE_WIDTH_M = (4.0, 22.0)
#: Smallest (R - B) / (R + G + B) of bare earth: iron oxides make soil reflect at least ~20 %
#: more red than blue; grey surfaces sit near 0, shadows lit by the blue sky below it.
SOIL_MIN_REDNESS = 0.06
#: Gentlest ridge flank the image test must still see: 1 m rise over a 20 m wide ridge, sampled
#: halfway between crest and toe of a parabolic section, where the slope is 2 h / w.
MIN_FLANK_SLOPE = 2 * 1.0 / 20.0
#: Share of the sun's light that comes from the sky (lights both flanks alike and dilutes the
#: flank contrast); about 0.2 under a clear sky.
SKY_SHARE = 0.2
#: Flank samples are judged only where the ridge's normal is within 70 deg of the sun's azimuth
#: (|cos| >= 0.34); a ridge running towards the sun has equally lit flanks.
MIN_FACING = 0.34
#: Share of the judged crest samples whose sun-side flank must be the brighter one.
MIN_CONSISTENT = 0.7
#: Sun elevation (deg) assumed when the metadata does not give it.
DEFAULT_SUN_ELEVATION = 45.0


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
    mask: np.ndarray, f: int, min_len_px: float, max_width_px: float, crest_width: bool = False
) -> list[tuple[shapely.LineString, np.ndarray, float]]:
    """Crest lines (window pixels) of elongated components of ``mask`` (work pixels).

    The width (work pixels) is the component's area over its crest length, or with
    ``crest_width`` twice the median distance from the crest to the component's edge (which a
    wide blob with a wiggly skeleton cannot fake). Returns (line, component mask, width) per
    component kept.
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
        if crest_width:
            edt = ndi.distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1]
            width = 2 * float(np.median(edt[path[:, 0], path[:, 1]]))
        else:
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


def _flank_samples(
    grey: np.ndarray, line: shapely.LineString, half_width_px: float, sun_azimuth_deg: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flank brightness either side of ``line`` every 2 pixels (``grey``'s pixel coordinates).

    Returns (sun-side flank, far flank, facing) per sample, where the "sun side" is the side
    of the left-hand normal and facing is the cosine between that normal and the direction
    of the sun: positive when the left flank faces the sun.
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
    # offsets from next to the crest to 2 pixels beyond the toe: a crest found off-centre (the
    # change mask often misses the shaded flank) still has most of each flank, and the cast
    # shadow beyond the far one, on its own side
    s1 = np.zeros(len(pts))
    s2 = np.zeros(len(pts))
    offs = np.arange(0.5, max(half_width_px, 2.0) + 2.0 + 1e-6, 0.5)
    for off in offs:
        p1 = pts + nrm * off
        p2 = pts - nrm * off
        s1 += ndi.map_coordinates(grey, [p1[:, 1] - 0.5, p1[:, 0] - 0.5], order=1, mode="nearest")
        s2 += ndi.map_coordinates(grey, [p2[:, 1] - 0.5, p2[:, 0] - 0.5], order=1, mode="nearest")
    return s1 / len(offs), s2 / len(offs), nrm @ sun


def flank_contrast(
    grey: np.ndarray, line: shapely.LineString, half_width_px: float, sun_azimuth_deg: float
) -> float:
    """Mean (sun-side flank - far flank) brightness along ``line`` (``grey``'s pixels).

    Positive when the flank facing the sun is the brighter one, as for a ridge; negative for a
    trench. Each flank is the mean over offsets from 0.5 pixel to 2 pixels beyond the
    half-width either side of the crest. Each sample is
    weighted by how squarely its flank faces the sun (a ridge parallel to the sun's azimuth
    has equally lit flanks and tells nothing).
    """
    s1, s2, w = _flank_samples(grey, line, half_width_px, sun_azimuth_deg)
    if np.abs(w).sum() < 1e-6:
        return 0.0
    return float(np.sum((s1 - s2) * w) / np.abs(w).sum())


def min_flank_contrast(sun_elevation_deg: float | None) -> float:
    """Relative flank contrast (lit - dark) / (lit + dark) of the gentlest ridge to report.

    For a Lambertian surface under a sun at elevation e, flanks of slope s facing towards and
    away from the sun receive sin(e)cos(s) +- cos(e)sin(s) of the direct light, so their
    relative contrast is tan(s) / tan(e), diluted by the sky light that reaches both alike.
    Evaluated for ``MIN_FLANK_SLOPE``; the per-sample value is this times the facing cosine.
    """
    e = np.radians(DEFAULT_SUN_ELEVATION if sun_elevation_deg is None else sun_elevation_deg)
    e = float(np.clip(e, np.radians(10.0), np.radians(80.0)))
    return float(MIN_FLANK_SLOPE / np.tan(e) * (1.0 - SKY_SHARE))


def ridge_lighting(
    grey: np.ndarray,
    line: shapely.LineString,
    half_width_px: float,
    sun_azimuth_deg: float | None,
    sun_elevation_deg: float | None = None,
    grey_before: np.ndarray | None = None,
) -> dict | None:
    """How consistently ``line`` is lit as a ridge under the given sun, or None if it is not.

    Args:
        grey: brightness of the after image, same pixel grid as ``line``.
        line: crest in ``grey``'s pixel coordinates.
        half_width_px: half the ridge's width, pixels.
        sun_azimuth_deg: the sun's azimuth (deg clockwise from north), or None when unknown;
            a ridge then only has to be lit consistently on one side.
        sun_elevation_deg: the sun's elevation (deg), or None (``DEFAULT_SUN_ELEVATION``).
        grey_before: brightness of the before image on the same grid (optional): the flank
            contrast is then measured on the change, after minus before.

    Returns:
        ``consistent`` (share of judged samples lit the expected way), ``contrast`` (median
        relative contrast per unit facing), ``judged`` (share of the crest judged), or None
        when too little of the crest faces the sun or the lighting is not a ridge's.
    """
    c_min = min_flank_contrast(sun_elevation_deg)
    s1, s2, w = _flank_samples(grey, line, half_width_px, sun_azimuth_deg or 0.0)
    norm = np.maximum(np.abs(s1) + np.abs(s2), 0.05)
    if grey_before is not None:
        # what changed, not what is: ground that differs either side of the ridge (an orchard
        # on one side, a field on the other) is there in both images and cancels
        b1, b2, _ = _flank_samples(grey_before, line, half_width_px, sun_azimuth_deg or 0.0)
        s1, s2 = s1 - b1, s2 - b2
    rel = (s1 - s2) / norm
    if sun_azimuth_deg is None:
        # unknown sun: the sign of the left-normal contrast must simply hold along the crest
        w = np.ones_like(rel) * (1.0 if np.median(rel) >= 0 else -1.0)
    judged = np.abs(w) >= MIN_FACING
    if judged.sum() < 5 or judged.mean() < 0.3:
        return None
    r = rel[judged] * np.sign(w[judged])
    consistent = float(np.mean(r > 0))
    contrast = float(np.median(r / np.abs(w[judged])))
    if consistent < MIN_CONSISTENT or contrast < c_min:
        return None
    return {"consistent": consistent, "contrast": contrast, "judged": float(judged.mean())}


def _image_berms(
    ab: np.ndarray,
    bb: np.ndarray,
    vd: np.ndarray,
    f: int,
    wg: float,
    sun_azimuth_deg: float | None,
    sun_elevation_deg: float | None,
) -> tuple[list[tuple[shapely.LineString, float, dict]], float]:
    """Image-only berm crests (window pixels) from work-grid after/before bands, and the
    change threshold used."""
    mag = np.sqrt(((ab - bb) ** 2).sum(axis=0))
    mag[~vd] = 0
    if vd.sum() <= 100 or np.ptp(mag[vd]) <= 0:
        return [], float("nan")
    thr = float(threshold_otsu(mag[vd]))
    # hysteresis: a berm over ground of nearly its colour changes less than its bright flank
    changed = apply_hysteresis_threshold(mag, thr / 2, thr) & vd
    redness = (ab[0] - ab[-1]) / np.maximum(np.abs(ab).sum(axis=0), 0.3)
    m = ndi.binary_opening(changed & (redness >= SOIL_MIN_REDNESS), np.ones((2, 2), bool))
    ga = ab.mean(axis=0)
    w_lo, w_hi = IMAGE_WIDTH_M[0] / wg, IMAGE_WIDTH_M[1] / wg
    out = []
    for line, _comp, width in _lines(m, f, MIN_LENGTH_M / wg, w_hi, crest_width=True):
        if width < w_lo:
            continue
        work_line = shapely.affinity.scale(line, 1 / f, 1 / f, origin=(0, 0))
        lit = ridge_lighting(ga, work_line, width / 2, sun_azimuth_deg, sun_elevation_deg)
        if lit is None:
            continue
        c_min = min_flank_contrast(sun_elevation_deg)
        strength = min(1.0, lit["contrast"] / (4 * c_min))
        score = 0.45 + 0.25 * (lit["consistent"] - MIN_CONSISTENT) / (1 - MIN_CONSISTENT)
        score += 0.25 * strength - 0.15 * (sun_azimuth_deg is None)
        ev = {"width_m": round(width * wg, 1), "lit_consistent": round(lit["consistent"], 2),
              "flank_contrast": round(lit["contrast"], 3), "min_contrast": round(c_min, 3),
              "change_threshold": round(thr, 4)}  # fmt: skip
        out.append((line, float(np.clip(score, 0.05, 0.95)), ev))
    return out, thr


def find_berms(
    before: np.ndarray,
    after: np.ndarray,
    valid: np.ndarray,
    gsd: float,
    sun_azimuth_deg: float | None,
    core_px: tuple[int, int, int, int],
    dsm_before: np.ndarray | None = None,
    dsm_after: np.ndarray | None = None,
    sun_elevation_deg: float | None = None,
) -> list[tuple[shapely.LineString, float, dict]]:
    """Berm and ditch crest lines in one window.

    Args:
        before, after: matched images of the window, (bands, rows, cols).
        valid: bool (rows, cols).
        gsd: metres per pixel of the window.
        sun_azimuth_deg: the after image's sun azimuth (degrees clockwise from north, the
            direction the sun is in), or None when unknown (image berms then only need a
            flank contrast of one consistent sign, and score lower).
        core_px: (col0, row0, col1, row1) of the core; crest lines are clipped to it.
        dsm_before, dsm_after: optional surface heights (m) of the window on the same grid.
        sun_elevation_deg: the after image's sun elevation (degrees), or None (45 assumed);
            sets the flank contrast a gentle ridge shows.

    Returns:
        (LineString in window pixels, score 0..1, attributes) per crest piece; attributes:
        ``kind`` (berm | ditch), ``height_m`` (median change along the crest from the DSMs,
        NaN from imagery alone), ``source`` (image | dsm | both), ``evidence``.
    """
    f = max(1, int(round(WORK_GSD_M / gsd)))
    wg = gsd * f
    min_len, max_w = MIN_LENGTH_M / wg, MAX_WIDTH_M / wg
    vd = _down(valid, f) > 0.99
    ab = _down(after, f) if after.ndim == 3 else _down(after, f)[None]
    bb = _down(before, f) if before.ndim == 3 else _down(before, f)[None]
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
    # Imagery: fresh soil, elongated, flanks lit as the sun predicts.
    found, thr = _image_berms(ab, bb, vd, f, wg, sun_azimuth_deg, sun_elevation_deg)
    dsm_zone = shapely.union_all([ln.buffer(3 * f) for ln in dsm_lines]) if dsm_lines else None
    for line, score, ev in found:
        both = dsm_zone is not None and line.intersection(dsm_zone).length > 0.5 * line.length
        if both:
            for i, (ln, s, at) in enumerate(out):
                if at["kind"] == "berm" and ln.distance(line) < 3 * f:
                    out[i] = (ln, min(1.0, s + 0.2), {**at, "source": "both"})
            continue
        if have_dsm:
            continue  # the DSMs see no relief here: a colour change, not a berm
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
