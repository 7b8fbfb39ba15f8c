"""Berms (earthen ridges) and ditches: elongated new relief, on or off roads.

Everything runs at about 2 m a pixel (berms are 5-15 m wide and tens to hundreds of metres
long), which keeps the whole-window work small.

* From elevation (both DSMs given): a berm is a connected region where the surface rose by
  ``MIN_HEIGHT_M`` (1 m) or more whose crest runs ``MIN_LENGTH_M`` (30 m) or more; a ditch the
  same for a drop, reported with ``kind = ditch``. Buildings razed leave drops too, but compact
  ones: the length / width test keeps only linear features. Where trees or a wall stood,
  a berm can be a net drop; a crest seen in the imagery (below) is then kept when the after
  DSM itself shows a new ridge: crest ``MIN_HEIGHT_M`` above the ground on both sides and
  the surface changed there by as much (:func:`_after_ridge`); the drop under it is no ditch.
* From imagery: a berm is fresh soil (changed since the before image, threshold: Otsu on the
  scene's change magnitude, an in-scene statistic, grown by hysteresis to half of it; or
  redder than before by more than the scene's own spread of that gain, ``NOISE_SIGMAS``
  robust deviations, since soil heaped on ground of nearly its brightness changes the colour
  more than the brightness; and bare-earth coloured in the after image: red above blue by
  ``SOIL_MIN_REDNESS``, a physical property of iron-bearing soils that grey concrete,
  asphalt, rubble dust, vegetation and sky-lit shadows lack), elongated (crest
  ``MIN_LENGTH_M`` or more, width 4-22 m, no more than ``MAX_SINUOSITY`` times its end-to-end
  distance) and lit as a new earthen ridge. The crest is judged in pieces of ``PIECE_M``
  (``berm_image.lit_runs``): each piece is first moved onto the ridge's crest (the change
  mask often misses one flank, leaving the skeleton beside the crest), then its flank
  contrast per unit of facing (the cosine between its normal and the sun's azimuth, fitted by
  least squares, so ridges running obliquely towards the sun are judged too) must reach what
  a 1 m high, 20 m wide ridge would show (Lambertian shading; see
  ``berm_lighting.min_flank_contrast``), exceed the before image's own contrast there by as
  much (the ridge is new), stay within what flanks at the soil's angle of repose can show
  (``berm_lighting.max_flank_contrast``: brighter steps are walls, roof edges, cast
  shadows), and both flanks must be soil-coloured. A piece running along the sun's azimuth,
  which lighting cannot judge, is kept when both its flanks are fresh, changed soil and the
  light on it did not change as a moving shadow's does. A crest's inner flanks must on
  average be mostly changed ground. Cleared ground (wide, no flank contrast), rubble, roads,
  roof edges and moved shadows fail one of these tests. A scene whose Otsu threshold lies
  within the unchanged bulk's spread (``NOISE_SIGMAS``) has no changed population and no
  image berms; flank samples that reach past the valid data are not judged. With building
  footprints given and no DSMs, a crest stretch closer to a standing footprint than half its
  own measured width is dropped: the ridge's body would overlap the building, so the edge is
  a roof edge or its moved shadow (``berm_image.standing_distance``: a footprint stands when
  most of its interior did not change).

Both bounds are measured once, on the sample mosaic the radiometric maps are fitted on
(``scene_berm_bounds``), so that they do not depend on where the window edges fall: taken over
each window, as before, the Helsinki-layout scenes' berm F1 varied by up to 0.37 between
windows of 512, 1024 and 2048 px (BENCHMARKS.md, "Findings and the window size"). Without
that sample (``bounds`` None), each window measures its own.

Crest lines are clipped to the given core, so a berm crossing cores comes back in pieces
that ``merge_pieces`` joins scene-wide. ``fortmap analyze`` runs :func:`find_berms_work` on the
scene's whole work grid in large tiles (:mod:`fortmap.berm_scene`), not window by window, so
that a crest is judged whole whatever the windows; :func:`find_berms` is the same detector on
one window's full-resolution arrays. The work-grid helpers (block means, crest lines of mask
components) are in :mod:`fortmap.detect.berm_grid`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import shapely
import shapely.affinity
import shapely.ops
from scipy import ndimage as ndi

from fortmap.detect.berm_bounds import (  # noqa: F401  (re-exported)
    NOISE_SIGMAS,
    BermBounds,
    _redness,
    change_bound,
    change_threshold,
    scene_berm_bounds,
)
from fortmap.detect.berm_grid import (  # noqa: F401  (WORK_GSD_M re-exported)
    WORK_GSD_M,
    _clip,
    _down,
    _lines,
    dilate3x3,
    hysteresis,
    open2x2,
    work_factor,
)
from fortmap.detect.berm_image import (
    SOIL_MIN_REDNESS,
    down_labels,
    lit_runs,
    standing_distance,
)
from fortmap.detect.berm_lighting import (
    MIN_CONSISTENT,
    crest_offset,
    flank_contrast,
    min_flank_contrast,
    ridge_lighting,
)
from fortmap.detect.change_stats import median_np

__all__ = [
    "change_threshold",
    "crest_offset",
    "find_berms",
    "find_berms_work",
    "flank_contrast",
    "merge_pieces",
    "min_flank_contrast",
    "ridge_lighting",
]

#: Height change (m) that counts as a berm or ditch (the issue's figure).
MIN_HEIGHT_M = 1.0
#: Shortest crest reported (m).
MIN_LENGTH_M = 30.0
#: Widest mean footprint (m) of a linear feature: wider is a mound, spoil heap or building.
MAX_WIDTH_M = 30.0
#: Image berms: crest width range (m) measured from the distance transform (berms are 5-20 m
#: wide; the change mask loses or gains a pixel of the 2 m grid at each edge).
IMAGE_WIDTH_M = (4.0, 22.0)
#: How far (in half-widths of the crest) the ground beside an image crest is sought in the
#: after DSM: past the toe, inside the next field or street (two berm widths out).
RIDGE_REACH = 4.0


def _on_body(
    line: shapely.LineString, zone: np.ndarray, min_len_px: float
) -> list[shapely.LineString]:
    """Stretches of ``line`` (pixels of the bool grid ``zone``) that lie over ``zone``, cut
    at gaps of more than 2 pixels; stretches shorter than ``min_len_px`` are dropped."""
    n = max(2, int(line.length) + 1)
    d = np.linspace(0.0, line.length, n)
    p = shapely.get_coordinates(shapely.line_interpolate_point(line, d))
    r = np.clip(np.floor(p[:, 1]).astype(int), 0, zone.shape[0] - 1)
    c = np.clip(np.floor(p[:, 0]).astype(int), 0, zone.shape[1] - 1)
    on = zone[r, c]
    # close gaps of up to 2 samples: speckle in the mask, not a road left bare
    gap = ndi.binary_closing(np.r_[True, on, True], np.ones(3, bool))[1:-1] | on
    lab, k = ndi.label(gap)
    out = []
    for i in range(1, k + 1):
        idx = np.flatnonzero(lab == i)
        if d[idx[-1]] - d[idx[0]] >= min_len_px:
            out.append(shapely.ops.substring(line, d[idx[0]], d[idx[-1]]))
    return out


def _image_berms(
    ab: np.ndarray,
    bb: np.ndarray,
    vd: np.ndarray,
    f: int,
    wg: float,
    sun_azimuth_deg: float | None,
    sun_elevation_deg: float | None,
    footprints: Callable[[], np.ndarray | None] | None = None,
    bounds: BermBounds | None = None,
) -> tuple[list[tuple[shapely.LineString, float, dict]], float]:
    """Image-only berm crests (window pixels) from work-grid after/before bands, and the
    change threshold used; ``footprints`` (called for int labels on the work grid, 0 = none,
    or None) keeps crests off standing buildings. It is called only once a crest wide enough
    is found: most windows have none, and rasterising their footprints was wasted."""
    mag = np.sqrt(((ab - bb) ** 2).sum(axis=0))
    mag[~vd] = 0
    if vd.sum() <= 100:
        return [], float("nan")
    if bounds is None:
        mag_vd = mag[vd]  # gathered once for the spread and the threshold
        if np.ptp(mag_vd) <= 0:
            return [], float("nan")
        thr = change_threshold(mag_vd)
    else:
        thr = bounds.change
    if thr is None:
        return [], float("nan")
    # hysteresis: a berm over ground of nearly its colour changes less than its bright flank
    changed = hysteresis(mag, thr / 2, thr) & vd
    redness = _redness(ab)
    # fresh soil over ground of nearly its brightness changes the colour more than the
    # brightness: a rise in redness beyond the window's own spread of it is change too
    red_gain = redness - _redness(bb)
    bound = change_bound(red_gain[vd]) if bounds is None else bounds.red_gain
    if bound is not None:
        changed |= (red_gain >= bound) & vd
    m = open2x2(changed & (redness >= SOIL_MIN_REDNESS))
    lazy: dict = {}

    def standing() -> np.ndarray | None:
        # distance to standing footprints, measured on the first crest that needs it
        if "to_bldg" not in lazy:
            fp = None if footprints is None else footprints()
            lazy["to_bldg"] = None if fp is None else standing_distance(fp, changed, vd)
        return lazy["to_bldg"]

    ga, gb, body = ab.mean(axis=0), bb.mean(axis=0), changed.astype(np.float32)
    # the soil-change mask a pixel wider: a crest put back on the ridge may run along its edge
    body_zone = dilate3x3(m)
    w_lo, w_hi = IMAGE_WIDTH_M[0] / wg, IMAGE_WIDTH_M[1] / wg
    c_min = min_flank_contrast(sun_elevation_deg)
    out = []
    for line, _comp, width in _lines(m, f, MIN_LENGTH_M / wg, w_hi, True, vd):
        if width < w_lo:
            continue
        work_line = shapely.affinity.scale(line, 1 / f, 1 / f, origin=(0, 0))
        for run, lits, shifts in lit_runs(ga, gb, redness, body, vd, work_line, width, wg,
                                          sun_azimuth_deg, sun_elevation_deg, MIN_LENGTH_M):  # fmt: skip
            # pieces along the sun (not judged by lighting) weigh in at the weakest kept
            judged = [lt for lt in lits if lt["judged"] > 0]
            consistent, contrast = MIN_CONSISTENT, 0.0
            if judged:
                consistent = float(np.mean([lt["consistent"] for lt in judged]))
                contrast = float(np.median([lt["contrast"] for lt in judged]))
            strength = min(1.0, contrast / (4 * c_min))
            score = 0.45 + 0.25 * (consistent - MIN_CONSISTENT) / (1 - MIN_CONSISTENT)
            score += 0.25 * strength - 0.15 * (sun_azimuth_deg is None)
            ev = {"width_m": round(width * wg, 1), "lit_consistent": round(consistent, 2),
                  "flank_contrast": round(contrast, 3), "min_contrast": round(c_min, 3),
                  "change_threshold": round(thr, 4),
                  "crest_shift_m": round(float(np.mean(shifts)) * wg, 1),
                  "lit_pieces": f"{len(judged)}/{len(lits)}"}  # fmt: skip
            # the crest runs over its own body: where it crosses bare ground (a road left
            # clear, a gap between two fields) the ridge does not go on
            parts = _on_body(run, body_zone, MIN_LENGTH_M / wg)
            to_bldg = standing()
            if to_bldg is not None:
                # the ridge's body (half its width either side of the crest) cannot overlap
                # a standing building: a crest that close runs along a roof edge or its shadow
                clear = to_bldg >= width / 2
                parts = [q for p in parts for q in _on_body(p, clear, MIN_LENGTH_M / wg)]
            for part in parts:
                part_px = shapely.affinity.scale(part, f, f, origin=(0, 0))
                out.append((part_px, float(np.clip(score, 0.05, 0.95)), ev))
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
    footprints: np.ndarray | Callable[[], np.ndarray | None] | None = None,
    bounds: BermBounds | None = None,
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
        footprints: optional building footprints rasterised on the window grid (int labels,
            one per building, 0 = none), as given to the analysis; used only without DSMs, to
            drop image crests whose body would overlap a standing footprint. A callable
            returning them (or None) is called only where an image crest needs them.
        bounds: the scene's change bounds for the image path (``scene_berm_bounds``), or
            None to take them over the window.

    Returns:
        (LineString in window pixels, score 0..1, attributes) per crest piece; attributes:
        ``kind`` (berm | ditch), ``height_m`` (median change along the crest from the DSMs,
        NaN from imagery alone), ``source`` (image | dsm | both), ``evidence``.
    """
    f = work_factor(gsd)
    # every block of an all-valid window averages 1.0 exactly: no pass needed
    vd = (
        np.ones((valid.shape[0] // f, valid.shape[1] // f), bool)
        if valid.all()
        else _down(valid, f) > 0.99
    )
    ab = _down(after, f) if after.ndim == 3 else _down(after, f)[None]
    bb = _down(before, f) if before.ndim == 3 else _down(before, f)[None]
    have_dsm = dsm_before is not None and dsm_after is not None
    dh = ridge = fp_work = None
    if have_dsm:
        dh = _down(dsm_after, f) - _down(dsm_before, f)

        def ridge(line: shapely.LineString, width_m: float) -> float | None:
            return _after_ridge(line, dsm_before, dsm_after, gsd, width_m)

    elif footprints is not None:

        def fp_work() -> np.ndarray | None:
            fp = footprints() if callable(footprints) else footprints
            return None if fp is None else down_labels(fp, f, vd.shape)

    return find_berms_work(
        ab, bb, vd, gsd, sun_azimuth_deg, core_px, dh=dh, ridge=ridge,
        sun_elevation_deg=sun_elevation_deg, footprints=fp_work, bounds=bounds,
    )  # fmt: skip


def find_berms_work(
    ab: np.ndarray,
    bb: np.ndarray,
    vd: np.ndarray,
    gsd: float,
    sun_azimuth_deg: float | None,
    core_px: tuple[int, int, int, int],
    dh: np.ndarray | None = None,
    ridge: Callable[[shapely.LineString, float], float | None] | None = None,
    sun_elevation_deg: float | None = None,
    footprints: Callable[[], np.ndarray | None] | None = None,
    bounds: BermBounds | None = None,
) -> list[tuple[shapely.LineString, float, dict]]:
    """:func:`find_berms` on the work grid (``WORK_GSD_M`` blocks of the image's pixels).

    Args:
        ab, bb: after and before block means, (bands, rows, cols) of the work grid.
        vd: bool (rows, cols) of the work grid: blocks wholly valid.
        gsd: metres per pixel of the image (a work pixel is ``f`` of them,
            ``f = round(WORK_GSD_M / gsd)``).
        sun_azimuth_deg, sun_elevation_deg: as for :func:`find_berms`.
        core_px: (col0, row0, col1, row1) of the core in image pixels from the work grid's
            origin; crest lines are clipped to it.
        dh: the DSMs' difference (after less before, m) on the work grid, or None (no DSMs).
        ridge: with DSMs, the median height (m) of a new ridge in the after DSM along a line
            (image pixels from the work grid's origin) of a given width (m), or None where the
            after DSM shows none (``_after_ridge``).
        footprints: called for building footprint labels on the work grid (0 = none), or
            None; used only without DSMs.
        bounds: the scene's change bounds for the image path, or None (the grid's own).

    Returns:
        As :func:`find_berms`, lines in image pixels from the work grid's origin.
    """
    f = work_factor(gsd)
    wg = gsd * f
    min_len, max_w = MIN_LENGTH_M / wg, MAX_WIDTH_M / wg
    out: list[tuple[shapely.LineString, float, dict]] = []
    dsm_lines: list[shapely.LineString] = []
    have_dsm = dh is not None
    if have_dsm:
        dh = dh.copy()
        dh[~vd] = 0
        for kind, m in (("berm", dh >= MIN_HEIGHT_M), ("ditch", dh <= -MIN_HEIGHT_M)):
            m = open2x2(m)
            for line, comp, width in _lines(m, f, min_len, max_w):
                h = float(median_np(dh[comp]))
                peak = float(np.percentile(np.abs(dh[comp]), 90))
                if kind == "berm":  # a drop confirms no berm seen in the image
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
    found, thr = _image_berms(
        ab, bb, vd, f, wg, sun_azimuth_deg, sun_elevation_deg,
        footprints=None if have_dsm else footprints, bounds=bounds,
    )  # fmt: skip
    dsm_zone = shapely.union_all([ln.buffer(3 * f) for ln in dsm_lines]) if dsm_lines else None
    for line, score, ev in found:
        both = dsm_zone is not None and line.intersection(dsm_zone).length > 0.5 * line.length
        if both:
            for i, (ln, s, at) in enumerate(out):
                if at["kind"] == "berm" and ln.distance(line) < 3 * f:
                    out[i] = (ln, min(1.0, s + 0.2), {**at, "source": "both"})
            continue
        if have_dsm:
            # no net gain of 1 m: trees or buildings may have stood where the berm now is, so
            # the after surface itself must stand as a new ridge; else a colour change only
            relief = None if ridge is None else ridge(line, ev.get("width_m", 20.0))
            if relief is None:
                continue
            # the drop under it is what stood there before (trees, a wall), not a ditch
            foot = line.buffer(ev.get("width_m", 20.0) / 2 / gsd)
            out = [
                o
                for o in out
                if o[2]["kind"] != "ditch" or o[0].intersection(foot).length <= 0.5 * o[0].length
            ]
            for piece in _clip(line, core_px):
                out.append(
                    (piece, min(1.0, score + 0.2), {"kind": "berm", "height_m": round(relief, 2),
                     "source": "both", "evidence": {**ev, "after_relief_m": round(relief, 2)}})
                )  # fmt: skip
            continue
        for piece in _clip(line, core_px):
            out.append(
                (piece, score, {"kind": "berm", "height_m": float("nan"),
                                "source": "image", "evidence": ev})
            )  # fmt: skip
    return out


def _after_ridge(
    line: shapely.LineString,
    dsm_before: np.ndarray,
    dsm_after: np.ndarray,
    gsd: float,
    width_m: float,
) -> float | None:
    """Median height (m) of a new ridge along ``line`` (window pixels) in the after DSM, or
    None where it is no berm by elevation.

    A station supports a ridge where the after surface on the crest stands ``MIN_HEIGHT_M``
    above the lowest point on *each* side out to ``RIDGE_REACH`` half-widths (the higher of
    the two sides, so a slope is no ridge), and the surface there changed by
    ``MIN_HEIGHT_M`` either way (gained, or lost trees or a building to the earthwork). Half
    the stations must support it, as for a crest seen in the DSM change.
    """
    n = max(2, int(line.length * gsd / WORK_GSD_M) + 1)
    d = np.linspace(0.0, line.length, n)
    p = shapely.get_coordinates(shapely.line_interpolate_point(line, d))
    t = np.gradient(p, axis=0)
    t /= np.maximum(np.hypot(t[:, 0], t[:, 1]), 1e-9)[:, None]
    nrm = np.c_[-t[:, 1], t[:, 0]]
    half = max(width_m, IMAGE_WIDTH_M[0]) / 2 / gsd
    # crest: within a quarter width of the line; sides: from the toe out to RIDGE_REACH halves
    q_crest = np.linspace(-half / 2, half / 2, 5)
    q_side = np.linspace(half, RIDGE_REACH * half, 8)
    h, w = dsm_after.shape

    def at(a: np.ndarray, q: np.ndarray) -> np.ndarray:
        x = p[:, 0, None] + q[None, :] * nrm[:, 0, None]
        y = p[:, 1, None] + q[None, :] * nrm[:, 1, None]
        c = np.clip(np.floor(x).astype(np.int64), 0, w - 1)
        r = np.clip(np.floor(y).astype(np.int64), 0, h - 1)
        return a[r, c]

    crest_after = np.nanmax(at(dsm_after, q_crest), axis=1)
    crest_change = np.nanmax(np.abs(at(dsm_after, q_crest) - at(dsm_before, q_crest)), axis=1)
    sides = np.maximum(np.nanmin(at(dsm_after, q_side), axis=1),
                       np.nanmin(at(dsm_after, -q_side), axis=1))  # fmt: skip
    relief = crest_after - sides
    ok = (relief >= MIN_HEIGHT_M) & (crest_change >= MIN_HEIGHT_M)
    if ok.mean() < 0.5:
        return None
    return float(median_np(relief[ok]))


def merge_pieces(lines: list[shapely.LineString], tol: float = 1.0) -> list[shapely.LineString]:
    """Join crest pieces that touch (within ``tol``, same units as the lines) into lines."""
    if not lines:
        return []
    merged = shapely.line_merge(
        shapely.union_all(shapely.snap(np.asarray(lines), shapely.union_all(lines), tol))
    )
    return [g for g in getattr(merged, "geoms", [merged]) if g.length > 0]
