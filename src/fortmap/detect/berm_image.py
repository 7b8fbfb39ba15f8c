"""Image berms: which stretches of a candidate crest are a new earthen ridge.

A candidate crest (the skeleton of fresh, soil-coloured change) is cut into pieces of
``PIECE_M``; each piece is put back on its crest and kept when the after image shows it lit
as a ridge under the sun and that ridge is new, earthen and bare soil:

* lit as a ridge (``ridge_lighting``): the sun-side flank brighter, by at least the gentlest
  ridge's contrast;
* new: the before image's own flank contrast on the same line is lower than the after's by at
  least that much (a roof's edge, a wall or a field boundary was there before);
* earthen: no more contrast than flanks at the soil's angle of repose give
  (``max_flank_contrast``); a brighter step is a wall's, a roof's edge or a cast shadow's;
* bare soil on both flanks: each flank's median redness reaches ``SOIL_MIN_REDNESS``
  (shading scales the bands alike, so both flanks of one soil body keep its colour); the far
  flank only when the sun stands above the repose angle, so that it is not in its own shadow.

A piece running along the sun's azimuth has equally lit flanks, and its lighting neither
confirms nor refutes a ridge: it is kept when both flanks are fresh soil and changed ground,
and the light on it did not change as a moving shadow's does (see ``_unlit_piece_ok``).
Consecutive kept pieces form one crest; the crest's inner flanks must on average be mostly
changed ground (the ridge's body is what changed; ``BODY_SHARE``).

``standing_distance`` tells standing building footprints from razed ones by their change,
so that ``berms`` can keep crests off standing roofs.
"""

from __future__ import annotations

import numpy as np
import shapely
import shapely.ops

from fortmap.detect.berm_lighting import (
    MIN_JUDGED,
    REPOSE_DEG,
    SKY_SHARE,
    crest_offset,
    facing_share,
    flank_values,
    lighting_stats,
    max_flank_contrast,
    min_flank_contrast,
    offset_towards_sun,
    ridge_lighting,
)
from fortmap.detect.change_stats import median_np
from fortmap.detect.edt_kernels import edt

#: Smallest (R - B) / (R + G + B) of bare earth: iron oxides make soil reflect at least ~20 %
#: more red than blue; grey surfaces sit near 0, shadows lit by the blue sky below it.
SOIL_MIN_REDNESS = 0.06
#: Longest crest per unit of its end-to-end distance (a half-circle arc is 1.57).
MAX_SINUOSITY = 1.6
#: Length (m) of the crest pieces judged one by one: about three berm widths, long enough for
#: a dozen flank samples, short enough that a bend or a stray skeleton branch is its own piece.
PIECE_M = 40.0
#: Share of a crest's inner flanks (out to half its half-width) that must be changed ground,
#: on average over both flanks: the majority, since a new ridge is itself the change.
BODY_SHARE = 0.5


def _lit_piece(
    ga: np.ndarray,
    gb: np.ndarray,
    red: np.ndarray,
    vd: np.ndarray,
    piece: shapely.LineString,
    width: float,
    sun_azimuth_deg: float | None,
    sun_elevation_deg: float | None,
) -> dict | None:
    """Lighting of a piece (work pixels) lit as a new earthen ridge of bare soil, or None."""
    half = width / 2
    lit = ridge_lighting(ga, piece, half, sun_azimuth_deg, sun_elevation_deg, valid=vd)
    if lit is None or sun_azimuth_deg is None:
        return lit
    c_min = min_flank_contrast(sun_elevation_deg)
    before = lighting_stats(gb, piece, half, sun_azimuth_deg, valid=vd)
    if before is not None and before["contrast"] > lit["contrast"] - c_min:
        return None  # the step was there before: not a new ridge
    if lit["contrast"] > max_flank_contrast(sun_elevation_deg):
        return None
    r_lit, r_far = flank_values(red, piece, max(half, 1.5), sun_azimuth_deg, vd)
    e = 45.0 if sun_elevation_deg is None else sun_elevation_deg
    # NaN (no sample) fails these comparisons, as it should
    if not (r_lit >= SOIL_MIN_REDNESS and (e <= REPOSE_DEG or r_far >= SOIL_MIN_REDNESS)):
        return None
    return lit


def _unlit_piece_ok(
    ga: np.ndarray,
    gb: np.ndarray,
    red: np.ndarray,
    changed: np.ndarray,
    vd: np.ndarray,
    piece: shapely.LineString,
    width: float,
    sun_azimuth_deg: float,
    ground: float,
) -> bool:
    """Whether a piece (work pixels) running along the sun, where lighting cannot judge, is
    fresh soil that changed on both flanks with no moving shadow over it.

    Cast shadow is lit by the sky alone, about ``SKY_SHARE`` of full light: a shadow that came
    or went changes the light by about 1 / ``SKY_SHARE``, new soil by its albedo ratio to the
    ground. The flanks' light ratio after / before must lie within the geometric midpoint,
    1 / sqrt(``SKY_SHARE``), of 1, and the before flanks must not have been shadow (darker
    than ``ground``, the window's median brightness, by that factor).
    """
    reach, inner = max(width / 2, 1.5), max(width / 4, 1.0)
    r1, r2 = flank_values(red, piece, reach, sun_azimuth_deg, vd, min_facing=0.0)
    c1, c2 = flank_values(changed, piece, inner, sun_azimuth_deg, vd, np.mean, min_facing=0.0)
    if not (min(r1, r2) >= SOIL_MIN_REDNESS and min(c1, c2) >= BODY_SHARE):
        return False
    a1, a2 = flank_values(ga, piece, reach, sun_azimuth_deg, vd, np.mean, min_facing=0.0)
    b1, b2 = flank_values(gb, piece, reach, sun_azimuth_deg, vd, np.mean, min_facing=0.0)
    lim = 1.0 / np.sqrt(SKY_SHARE)
    ratio = (a1 + a2) / max(b1 + b2, 1e-6)
    return bool(1.0 / lim <= ratio <= lim and (b1 + b2) / 2 >= ground / lim)


def lit_runs(
    ga: np.ndarray,
    gb: np.ndarray,
    red: np.ndarray,
    changed: np.ndarray,
    vd: np.ndarray,
    line: shapely.LineString,
    width: float,
    wg: float,
    sun_azimuth_deg: float | None,
    sun_elevation_deg: float | None,
    min_length_m: float,
) -> list[tuple[shapely.LineString, list[dict], list[float]]]:
    """Stretches of ``line`` (work pixels) that are a new earthen ridge, each on its crest.

    Args:
        ga, gb: after and before brightness on the work grid.
        red: after redness (R - B) / (R + G + B) on the work grid.
        changed: 1.0 where the ground changed between the dates (float32, work grid).
        vd: valid work pixels.
        line: candidate crest, work pixels.
        width: candidate's width, work pixels.
        wg: metres per work pixel.
        sun_azimuth_deg, sun_elevation_deg: the after image's sun (degrees), or None.
        min_length_m: shortest run kept (m).

    Returns:
        (crest, lighting per piece, shift per piece) per run of consecutive kept pieces; a
        piece kept along the sun has lighting ``judged`` 0 and NaN ``contrast``.
    """
    n = max(1, int(round(line.length * wg / PIECE_M)))
    cuts = np.linspace(0, line.length, n + 1)
    runs: list[tuple[list, list[dict], list[float]]] = []
    prev_kept = False
    lazy: dict = {}

    def ground() -> float:
        # the window's median brightness, needed only for pieces along the sun
        if "ground" not in lazy:
            lazy["ground"] = float(median_np(ga[vd])) if vd.any() else 0.0
        return lazy["ground"]

    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        piece = shapely.ops.substring(line, a, b)
        if piece.geom_type != "LineString" or piece.length <= 0:
            prev_kept = False
            continue
        shift = 0.0
        if sun_azimuth_deg is not None:
            shift = crest_offset(ga, piece, width / 2, sun_azimuth_deg)
            piece = offset_towards_sun(piece, shift, sun_azimuth_deg)
        lit = _lit_piece(ga, gb, red, vd, piece, width, sun_azimuth_deg, sun_elevation_deg)
        if (
            lit is None
            and sun_azimuth_deg is not None
            and facing_share(piece, sun_azimuth_deg) < MIN_JUDGED
            and _unlit_piece_ok(ga, gb, red, changed, vd, piece, width, sun_azimuth_deg, ground())
        ):
            lit = {"consistent": float("nan"), "contrast": float("nan"), "judged": 0.0}
        if lit is None:
            prev_kept = False
            continue
        if not prev_kept:
            runs.append(([], [], []))
        runs[-1][0].append(shapely.get_coordinates(piece))
        runs[-1][1].append(lit)
        runs[-1][2].append(shift)
        prev_kept = True
    out = []
    for coords, lits, shifts in runs:
        crest = shapely.LineString(np.concatenate(coords))
        ends = shapely.get_coordinates(crest)[[0, -1]]
        chord = float(np.hypot(*(ends[1] - ends[0])))
        # a berm is an embankment along a line or a gentle arc; a crest that doubles back on
        # itself traces a blob's outline (a tree crown, a building's rim), not a ridge
        if crest.length * wg < min_length_m or crest.length > MAX_SINUOSITY * chord:
            continue
        if sun_azimuth_deg is not None:
            inner = max(width / 4, 1.0)
            c1, c2 = flank_values(changed, crest, inner, sun_azimuth_deg, vd, np.mean)
            # NaN where the whole run lies along the sun: its pieces were checked one by one
            if (c1 + c2) / 2 < BODY_SHARE:
                continue
        out.append((crest, lits, shifts))
    return out


def down_labels(labels: np.ndarray, f: int, shape: tuple[int, int]) -> np.ndarray:
    """Labels sampled at the centre of each ``f`` x ``f`` block, cut to the work ``shape``."""
    lab = labels[f // 2 :: f, f // 2 :: f][: shape[0], : shape[1]]
    out = np.zeros(shape, dtype=np.int64)
    out[: lab.shape[0], : lab.shape[1]] = lab
    return out


def standing_distance(labels: np.ndarray, changed: np.ndarray, vd: np.ndarray) -> np.ndarray | None:
    """Distance (work pixels) to the nearest standing footprint, from footprint ``labels``
    (int, 0 = none) and the change mask, both on the work grid; None where none stands.

    A footprint stands when less than half of its valid interior changed: a razed building
    leaves rubble or bare ground over most of its plot, a standing roof only moved shadows
    along its edges.
    """
    n = int(labels.max())
    if n == 0:
        return None
    # per-label pixel counts, as ``ndi.sum`` over labels 1..n gives them (float64 sums of
    # bools: exact integers), from one bincount each
    flat = labels.ravel()
    inside = np.bincount(flat, vd.ravel(), minlength=n + 1)[1:]
    share = np.bincount(flat, (changed & vd).ravel(), minlength=n + 1)[1:] / np.maximum(inside, 1)
    keep = np.r_[False, (share < 0.5) & (inside > 0)]
    stand = keep[labels]
    if not stand.any():
        return None
    # scipy's distance transform's numbers (``edt_kernels.edt``), compiled
    return edt(~stand)
