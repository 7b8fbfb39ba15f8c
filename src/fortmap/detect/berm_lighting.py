"""Whether a line in an image is lit as a ridge under a given sun: flank contrast, crest.

A Lambertian ridge under a sun at elevation e shows its sun-facing flank brighter than its far
flank by a relative contrast of tan(slope) / tan(e) times the cosine between the flank's
normal and the sun's azimuth (the facing), diluted by sky light. These functions measure that
contrast along a crest line (in the image's pixel coordinates), put a crest drawn beside a
ridge back on it, and give the contrast the gentlest ridge to report must show and the most
an earthen ridge (flanks at the soil's angle of repose) can show.
"""

from __future__ import annotations

import numba
import numpy as np
import shapely
from scipy import ndimage as ndi

from fortmap.detect.pairwise_mean import run_mean

#: Gentlest ridge flank the image test must still see: 1 m rise over a 20 m wide ridge, sampled
#: halfway between crest and toe of a parabolic section, where the slope is 2 h / w.
MIN_FLANK_SLOPE = 2 * 1.0 / 20.0
#: Share of the sun's light that comes from the sky (lights both flanks alike and dilutes the
#: flank contrast); about 0.2 under a clear sky.
SKY_SHARE = 0.2
#: Flank samples are judged only where the ridge's normal is within 80 deg of the sun's azimuth
#: (|cos| >= 0.17): closer to the sun's line, a 1 m ridge's contrast (``min_flank_contrast``
#: times the facing, under 1 %) drowns in the soil's texture.
MIN_FACING = 0.17
#: Share of the crest that must be judged (face the sun at all) for the lighting to count.
MIN_JUDGED = 0.3
#: Share of the judged crest samples whose sun-side flank must be the brighter one.
MIN_CONSISTENT = 0.7
#: Sun elevation (deg) assumed when the metadata does not give it.
DEFAULT_SUN_ELEVATION = 45.0
#: Steepest flank of an earthen ridge (deg): loose soil stands at its angle of repose, 30-40
#: deg; the upper end, so that only contrasts no earthwork can show are refused.
REPOSE_DEG = 40.0


def _valid_at(valid: np.ndarray | None, p: np.ndarray) -> np.ndarray:
    """Whether each point (x, y in pixel coordinates) falls on a valid pixel of the grid."""
    c, r = np.floor(p[:, 0]).astype(int), np.floor(p[:, 1]).astype(int)
    inside = (r >= 0) & (c >= 0) & (r < valid.shape[0]) & (c < valid.shape[1])
    ok = np.zeros(len(p), bool)
    ok[inside] = valid[r[inside], c[inside]]
    return ok


def _interp(grey: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Bilinear ``grey`` (nearest beyond its edge) at points ``p`` (..., 2) of x, y in pixel
    coordinates (pixel centres at .5), shaped as ``p`` less its last axis.

    Each value depends on its own point only: every offset of a line's stations is sampled in
    one call, the same values as a call per offset at a fraction of the overhead."""
    return ndi.map_coordinates(grey, [p[..., 1] - 0.5, p[..., 0] - 0.5], order=1, mode="nearest")


def _flank_samples(
    grey: np.ndarray,
    line: shapely.LineString,
    half_width_px: float,
    sun_azimuth_deg: float,
    valid: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Flank brightness either side of ``line`` every 2 pixels (``grey``'s pixel coordinates).

    Returns (sun-side flank, far flank, facing, ok) per sample, where the "sun side" is the
    side of the left-hand normal, facing is the cosine between that normal and the direction
    of the sun (positive when the left flank faces the sun), and ok says that both flanks
    lie on ``valid`` pixels (all True without ``valid``).
    """
    (s1, s2), facing, ok = _flank_sums((grey,), line, half_width_px, sun_azimuth_deg, valid)
    return s1, s2, facing, ok


def _flank_sums(
    greys: tuple[np.ndarray, ...],
    line: shapely.LineString,
    half_width_px: float,
    sun_azimuth_deg: float,
    valid: np.ndarray | None = None,
) -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray]:
    """``_flank_samples`` of each grid in ``greys`` (same pixel coordinates) at the same
    stations: the stations are found once, and each grid is sampled on both flanks in one
    call (each value depends on its own point only: the same values).

    Returns (s1, s2) of every grid, flattened in order, then facing and ok as there.
    """
    a = np.radians(sun_azimuth_deg)
    sun = np.array([np.sin(a), -np.cos(a)])  # towards the sun in pixel coords (rows run south)
    pts, nrm = _stations(line, max(4, int(line.length // 2)))
    # offsets from next to the crest to 2 pixels beyond the toe: a crest found off-centre (the
    # change mask often misses the shaded flank) still has most of each flank, and the cast
    # shadow beyond the far one, on its own side
    ok = np.ones(len(pts), bool)
    offs = np.arange(0.5, max(half_width_px, 2.0) + 2.0 + 1e-6, 0.5)
    # (offset, station, xy): the points of every offset at once
    step = nrm[None] * offs[:, None, None]
    p1, p2 = pts[None] + step, pts[None] - step
    both = np.concatenate([p1, p2])
    sums: list[np.ndarray] = []
    for grey in greys:
        v = _interp(grey, both)
        s1 = np.zeros(len(pts))
        s2 = np.zeros(len(pts))
        # summed offset by offset, in the order a loop over the offsets added them
        for v1, v2 in zip(v[: len(offs)], v[len(offs) :], strict=True):
            s1 += v1
            s2 += v2
        sums += [s1 / len(offs), s2 / len(offs)]
    if valid is not None:
        # a flank reaching past the image's edge compares soil with fill (or with the
        # edge pixels a misregistration shift smeared), which says nothing about relief
        ok = _valid_at(valid, both.reshape(-1, 2)).reshape(both.shape[:2]).all(axis=0)
    return tuple(sums), nrm @ sun, ok


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
    s1, s2, w, _ = _flank_samples(grey, line, half_width_px, sun_azimuth_deg)
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


def max_flank_contrast(sun_elevation_deg: float | None) -> float:
    """Largest relative flank contrast per unit facing an earthen ridge can show.

    Flanks no steeper than ``REPOSE_DEG`` give at most tan(repose) / tan(e) (no sky light,
    which only lowers it); a brighter-against-darker step than that is a wall, a roof's edge
    or a cast shadow's. Infinite when the sun stands no higher than the repose angle (the far
    flank may then lie in its own shadow).
    """
    e = DEFAULT_SUN_ELEVATION if sun_elevation_deg is None else sun_elevation_deg
    if e <= REPOSE_DEG:
        return float("inf")
    return float(np.tan(np.radians(REPOSE_DEG)) / np.tan(np.radians(e)))


def flank_values(
    img: np.ndarray,
    line: shapely.LineString,
    reach_px: float,
    sun_azimuth_deg: float,
    valid: np.ndarray | None = None,
    stat=np.median,
    min_facing: float = MIN_FACING,
) -> tuple[float, float]:
    """``stat`` (median by default) of ``img`` over the sun-side and the far flank of ``line``
    (``img``'s pixels), from half a pixel beside the crest out to ``reach_px``, where the
    flanks face the sun (|facing| >= ``MIN_FACING``); NaN where no sample qualifies."""
    a = np.radians(sun_azimuth_deg)
    sun = np.array([np.sin(a), -np.cos(a)])
    pts, nrm = _stations(line, max(4, int(line.length)))
    facing = nrm @ sun
    keep = np.abs(facing) >= min_facing
    pts, nrm = pts[keep], nrm[keep] * np.where(facing[keep] < 0, -1.0, 1.0)[:, None]
    if valid is not None:
        pts, nrm = pts[_valid_at(valid, pts)], nrm[_valid_at(valid, pts)]
    if len(pts) == 0:
        return float("nan"), float("nan")
    offs = np.arange(0.5, max(reach_px, 0.5) + 1e-6, 0.5)[:, None, None]
    # (offset, station) samples, the array ``stat`` made of the per-offset lists before
    lit = _interp(img, pts[None] + (1.0 * nrm)[None] * offs)
    dark = _interp(img, pts[None] + (-1.0 * nrm)[None] * offs)
    return float(stat(lit)), float(stat(dark))


def facing_share(line: shapely.LineString, sun_azimuth_deg: float) -> float:
    """Share of ``line`` whose normal lies within ``MIN_FACING`` of the sun's azimuth, i.e.
    whose flank lighting can tell a ridge at all (a crest running along the sun's azimuth
    has equally lit flanks)."""
    a = np.radians(sun_azimuth_deg)
    _, nrm = _stations(line, max(4, int(line.length // 2)))
    return float(np.mean(np.abs(nrm @ np.array([np.sin(a), -np.cos(a)])) >= MIN_FACING))


def _sun_normal_profile(
    grey: np.ndarray, line: shapely.LineString, reach_px: float, sun_azimuth_deg: float
) -> tuple[np.ndarray, np.ndarray]:
    """Mean brightness across ``line`` at offsets -reach..reach (``grey``'s pixels), the
    positive offsets on the side the sun is on. Returns (offsets, profile)."""
    a = np.radians(sun_azimuth_deg)
    sun = np.array([np.sin(a), -np.cos(a)])
    pts, nrm = _stations(line, max(4, int(line.length)))
    # one side for the whole crest (the side the sun is on, on average): a wiggly crest
    # must not swap its flanks from sample to sample
    nrm *= 1.0 if float(np.sum(nrm @ sun)) >= 0 else -1.0
    offs = np.arange(-reach_px, reach_px + 1e-6, 0.5)
    vals = _interp(grey, pts[None] + nrm[None] * offs[:, None, None])
    # each row (one offset's samples, contiguous) is reduced on its own: the same float32
    # means as a call per row
    return offs, vals.mean(axis=1).astype(np.float64)


def crest_offset(
    grey: np.ndarray,
    line: shapely.LineString,
    half_width_px: float,
    sun_azimuth_deg: float,
    grey_before: np.ndarray | None = None,
) -> float:
    """Offset (pixels, positive towards the sun) that moves ``line`` onto the ridge's crest.

    A ridge's crest is where its sun-facing flank turns into its far flank: the brightness
    across it steps down from lit to shaded. The change mask a crest is drawn from often
    misses the shaded flank (or the lit one, over bright ground), which leaves the skeleton
    beside the crest; the crest is put back on the offset, within the half-width, where
    the mean brightness over a half-width on the sun side most exceeds that on the far side
    (on the change, after minus before, when ``grey_before`` is given).
    """
    h = max(half_width_px, 1.5)
    offs, prof = _sun_normal_profile(grey, line, 2 * h, sun_azimuth_deg)
    if grey_before is not None:
        prof = prof - _sun_normal_profile(grey_before, line, 2 * h, sun_azimuth_deg)[1]
    return float(_best_offset(offs, np.ascontiguousarray(prof, np.float64), float(h)))


@numba.njit(cache=True, nogil=True)
def _best_offset(offs, prof, h):  # pragma: no cover - compiled
    # ``crest_offset``'s search: the offset c (|c| <= h, first of equals) with the largest
    # mean of ``prof`` over offs in (c, c + h] less its mean over [c - h, c), numpy's means
    # (``pairwise_mean``) of the values in offset order
    n = offs.size
    lit = np.empty(n, np.float64)
    dark = np.empty(n, np.float64)
    best, best_c = -np.inf, 0.0
    for k in range(n):
        c = offs[k]
        if not abs(c) <= h:
            continue
        nl = 0
        nd = 0
        for i in range(n):
            o = offs[i]
            if o > c and o <= c + h:
                lit[nl] = prof[i]
                nl += 1
            if o < c and o >= c - h:
                dark[nd] = prof[i]
                nd += 1
        if nl and nd:
            d = run_mean(lit, 0, nl) - run_mean(dark, 0, nd)
            if d > best:
                best, best_c = d, c
    return best_c


def offset_towards_sun(
    line: shapely.LineString, dist: float, sun_azimuth_deg: float
) -> shapely.LineString:
    """``line`` moved ``dist`` (its units) sideways, positive towards the sun."""
    if abs(dist) < 1e-9:
        return line
    a = np.radians(sun_azimuth_deg)
    xy = shapely.get_coordinates(line)
    v = xy[-1] - xy[0]
    left = np.array([-v[1], v[0]])
    # rows run south, so "towards the sun" in pixel coordinates is (sin a, -cos a)
    side = 1.0 if left @ np.array([np.sin(a), -np.cos(a)]) >= 0 else -1.0
    moved = line.offset_curve(side * dist, join_style="round")
    if moved.is_empty or moved.geom_type != "LineString":
        return line
    return moved


def ridge_lighting(
    grey: np.ndarray,
    line: shapely.LineString,
    half_width_px: float,
    sun_azimuth_deg: float | None,
    sun_elevation_deg: float | None = None,
    grey_before: np.ndarray | None = None,
    valid: np.ndarray | None = None,
) -> dict | None:
    """How consistently ``line`` is lit as a ridge under the given sun, or None if it is not.

    Each crest sample gives the relative contrast r = (left flank - right flank) / (sum)
    and the facing w (cosine between the left normal and the sun). A Lambertian ridge of
    flank slope s has r = k w with k = tan(s) / tan(e) (diluted by sky light), so k is
    estimated by least squares through the origin over the samples that face the sun at
    all (|w| >= ``MIN_FACING``): samples nearly along the sun weigh little instead of being
    divided by a small w, which lets ridges running obliquely towards the sun be judged.

    Args:
        grey: brightness of the after image, same pixel grid as ``line``.
        line: crest in ``grey``'s pixel coordinates.
        half_width_px: half the ridge's width, pixels.
        sun_azimuth_deg: the sun's azimuth (deg clockwise from north), or None when unknown;
            a ridge then only has to be lit consistently on one side.
        sun_elevation_deg: the sun's elevation (deg), or None (``DEFAULT_SUN_ELEVATION``).
        grey_before: brightness of the before image on the same grid (optional): the flank
            contrast is then measured on the change, after minus before.
        valid: bool mask of ``grey``'s valid pixels (optional); samples whose flanks reach
            invalid pixels are not judged.

    Returns:
        ``consistent`` (share of judged samples lit the expected way), ``contrast`` (k, the
        relative contrast per unit facing), ``judged`` (share of the crest judged), or None
        when too little of the crest faces the sun or the lighting is not a ridge's.
    """
    st = lighting_stats(grey, line, half_width_px, sun_azimuth_deg, grey_before, valid)
    if st is None:
        return None
    if st["consistent"] < MIN_CONSISTENT or st["contrast"] < min_flank_contrast(sun_elevation_deg):
        return None
    return st


def lighting_stats(
    grey: np.ndarray,
    line: shapely.LineString,
    half_width_px: float,
    sun_azimuth_deg: float | None,
    grey_before: np.ndarray | None = None,
    valid: np.ndarray | None = None,
) -> dict | None:
    """The measurements behind :func:`ridge_lighting`, with no thresholds applied.

    Returns ``consistent``, ``contrast`` and ``judged`` as there, or None when too little of
    the crest faces the sun (fewer than 5 samples or ``MIN_JUDGED`` of them) to judge.
    """
    greys = (grey,) if grey_before is None else (grey, grey_before)
    sums, w, ok = _flank_sums(greys, line, half_width_px, sun_azimuth_deg or 0.0, valid)
    s1, s2 = sums[:2]
    norm = np.maximum(np.abs(s1) + np.abs(s2), 0.05)
    if grey_before is not None:
        # what changed, not what is: ground that differs either side of the ridge (an orchard
        # on one side, a field on the other) is there in both images and cancels
        b1, b2 = sums[2:]
        s1, s2 = s1 - b1, s2 - b2
    rel = (s1 - s2) / norm
    if sun_azimuth_deg is None:
        # unknown sun: the sign of the left-normal contrast must simply hold along the crest
        w = np.ones_like(rel) * (1.0 if np.median(rel) >= 0 else -1.0)
    judged = (np.abs(w) >= MIN_FACING) & ok
    if judged.sum() < 5 or judged.mean() < MIN_JUDGED:
        return None
    r, wj = rel[judged], w[judged]
    return {
        "consistent": float(np.mean(r * np.sign(wj) > 0)),
        "contrast": float(np.sum(r * wj) / np.sum(wj * wj)),
        "judged": float(judged.mean()),
    }


def _stations(line: shapely.LineString, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points evenly along ``line`` and the unit normals there (pixel coordinates), the
    tangent taken over 2 px either side so a kinked skeleton does not swing the normal."""
    d = np.linspace(0, line.length, n)
    pts = shapely.get_coordinates(shapely.line_interpolate_point(line, d))
    nxt = shapely.get_coordinates(
        shapely.line_interpolate_point(line, np.minimum(d + 2, line.length))
    )
    prv = shapely.get_coordinates(shapely.line_interpolate_point(line, np.maximum(d - 2, 0)))
    t = nxt - prv
    t /= np.maximum(np.hypot(*t.T), 1e-9)[:, None]
    return pts, np.c_[-t[:, 1], t[:, 0]]
