"""Road-surface contrasts of one window, computed on its road pixels only.

Barricades and rubble both compare each road pixel with its road's own surface, on the raw and
on a box-smoothed grey image, with one median or per illumination class (see
``barricades.road_change``, ``barricades.along_change``), or with the road a few metres ahead
and behind it. What those contrasts share (grey images, road pixels, per-road medians,
smoothed levels, Otsu splits) is held once per window by ``road_pixels.RoadWindow``
(re-exported here with its constants and ``PointBox``). Pixel coordinates are the window's.
The along-road contrast samples both dates in one pass (``along_kernels.sides_ab``).
"""

from __future__ import annotations

import numpy as np

from fortmap.detect import along_kernels as AK
from fortmap.detect import class_kernels as CK
from fortmap.detect import fort_kernels as K
from fortmap.detect import masked_box_kernels as MB
from fortmap.detect.barricade_rows import ALONG_REF_M, masked_box
from fortmap.detect.order_stats import median_f32, robust_sigma
from fortmap.detect.road_pixels import (  # noqa: F401  (re-exported)
    MIN_CLASS_PX,
    MIN_ROAD_PX,
    PointBox,
    RoadWindow,
    grey,
    otsu_threshold,
)

#: How far (m) across its owner road a pixel looks for a crossing road. At a junction the road
#: burnt last owns the whole crossing, so a row across the other road's mouth can stand up to
#: half the owner's width (10 m for a 20 m avenue) from the other road's own pixels.
JUNCTION_REACH_M = 10.0
#: Ground is in deep shade where its level lies more than this many robust sigmas of the
#: sunlit road contrast below its road's sunlit level: sunlit road is never that far below
#: it, by the definition of the noise (not fitted).
SHADE_SIGMAS = 6.0


def illumination_anomaly(rw: RoadWindow, which: str, smooth_px: int) -> np.ndarray:
    """Per ``on`` pixel, the level less the typical surface of its road under the same
    illumination.

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
    g = rw.level(which, smooth_px)
    rid, ref, n = rw.rid, rw.ref, rw.n
    med = rw.medians(which, smooth_px)
    t = rw.otsu(which, smooth_px)
    if t is None:
        return g - med[rid]
    dark = rw.level3(which, smooth_px) <= t
    h, w = rw.on.shape
    # Sunlit asphalt is most of a road at the time of the overpass; where the bright class is
    # the minority it is new material on the road (a pile, a row of blocks), not sunlight
    # (``class_groups`` tells, and splits the classes in the same pass).
    # Both classes' medians in one selection pass: group r is road r dark, r + n road r bright.
    split, grp, g_ref, sel, cnt = CK.class_groups(dark, ref, rid, g, rw.rows, rw.cols, h, w, n, 2)
    if not split:
        return g - med[rid]
    m = K.road_medians(g_ref, sel, 2 * n)
    # a road with too few pixels in a class falls back to its overall median
    m = np.where(cnt >= MIN_CLASS_PX, m, np.concatenate([med, med]))
    if g.ndim == 1 and g.dtype == m.dtype:
        return CK.less_at(g, m, grp)
    return g - m[grp]


def lit_level(
    rw: RoadWindow, smooth_px: int, classes: list[str] | None, which: str = "a"
) -> np.ndarray:
    """Per road id, the level of its sunlit surface in image ``which`` ('a' after, 'b'
    before): the median of its ``ref`` pixels in the bright class of Otsu's split (an
    unsupervised in-scene statistic) of the window's 1.5 m-smoothed road grey levels; never
    below the road's median, which it falls back to for a road with too few bright pixels.
    Memoised in ``rw`` (``lit_both`` and rubble ask for the same levels); not to be
    changed by the caller."""
    key = ("lit", which, smooth_px, None if classes is None else tuple(classes))
    return rw._memo(key, lambda: _lit_level(rw, smooth_px, classes, which))


def _lit_level(rw: RoadWindow, smooth_px: int, classes: list[str] | None, which: str) -> np.ndarray:
    g = rw.level(which, smooth_px)
    rid, ref, n = rw.rid, rw.ref, rw.n
    med = rw.medians(which, smooth_px)
    t = rw.otsu(which, smooth_px)
    if t is None:
        return med
    bright = ref & (rw.level3(which, smooth_px) > t)
    # ``g[bright]``, ``rid[bright]`` and the bright pixels per road in one pass
    g_br, rb, nbr = CK.masked_by_road(bright, rid, g, n)
    lit = K.road_medians(g_br, rb, n)
    nt = rw._memo(("n_ref",), lambda: np.bincount(rid[ref], minlength=n))
    # The split is the window's: on a road of darker or lighter asphalt than the others it
    # only cuts off a tail. A road is lit and shaded in part when both classes are a real
    # share of it (a tenth at least); otherwise its median is its one level.
    two = (nbr >= MIN_CLASS_PX) & (nbr >= 0.1 * nt) & (nt - nbr >= 0.1 * nt)
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
            vals = CK.values_on_roads(
                bright, rid, mine & (nbr >= MIN_CLASS_PX) & (nbr >= 0.1 * nt), g
            )
            if vals.size < MIN_CLASS_PX:
                continue
            level = float(median_f32(vals))
            few = mine & (nbr < 0.1 * np.maximum(nt, 1))
            own[few] = np.maximum(own[few], level)
    return np.maximum(own, med)


def lit_both(rw: RoadWindow, smooth_px: int) -> np.ndarray:
    """Per road id, the lower of its sunlit levels in the after and the before image.

    The before image shows the same surfaces under a sun of matched radiometry but without
    the new objects: on a road with few bright pixels of its own (a lit narrow street, bright
    kerbs) the after image's bright class can be the very blocks looked for, which would set
    the bar at their own level."""
    return rw._memo(
        ("lit2", smooth_px),
        lambda: np.minimum(
            lit_level(rw, smooth_px, rw.roads.classes, "a"),
            lit_level(rw, smooth_px, rw.roads.classes, "b"),
        ),
    )


def road_contrast(
    rw: RoadWindow,
    smooth_px: int,
    shade_aware: bool,
    lit_reference: bool,
    floor: float,
    sigma: float | None = None,
) -> tuple[np.ndarray, float] | None:
    """``barricades.road_change``'s contrast per ``on`` pixel (robust sigmas) and its sigma,
    or None where the window has too few road pixels. ``sigma`` (grey levels): the scene's
    noise of this contrast (``road_noise.scene_road_noise``), used instead of the window's."""
    if not rw.enough:
        return None
    if shade_aware:
        an_a = illumination_anomaly(rw, "a", smooth_px)
        an_b = illumination_anomaly(rw, "b", smooth_px)
    else:
        an_a = rw.level("a", smooth_px) - rw.medians("a", smooth_px)[rw.rid]
        an_b = rw.level("b", smooth_px) - rw.medians("b", smooth_px)[rw.rid]
    d = an_a - an_b
    sigma = robust_sigma(d, floor) if sigma is None else max(sigma, floor)
    # Bright in the after image against the road itself, and brighter than before: a pixel
    # leaving a shadow reaches only the road's level, so it fails the first test.
    if lit_reference and not shade_aware:
        an_a = rw.level("a", smooth_px) - lit_both(rw, smooth_px)[rw.rid]
    return np.minimum(an_a, d) / sigma, sigma


def along_anomaly(
    rw: RoadWindow, which: str, gsd: float, smooth_px: int = 1, kerb: bool = False
) -> np.ndarray:
    """Per ``on`` pixel, the raw level less the brighter of the road surfaces a few metres
    ahead and behind; NaN where both sides are off road (a dead end, the image edge).
    With ``kerb``, a pixel on the carriageway is compared with carriageway only.

    A block row is short along the road, so the surface on either side of it along the axis is
    road under the same light as the row itself when the row is in a building's shadow, and a
    block in shade (lit by the sky only) stands out against shaded asphalt as much as a lit
    block against lit asphalt. Taking the brighter side keeps a shadow's edge across the road
    from reading as an object: its lit side is no brighter than the lit road beyond it.

    Both images' anomalies are computed together (every caller takes both): the samples'
    positions are shared, the values are those of a pass per image.
    """
    key = ("along_an", which, gsd, smooth_px, kerb)
    if key not in rw._cache:
        an_a, an_b = _along(rw, gsd, smooth_px, kerb)
        rw._cache[("along_an", "a", gsd, smooth_px, kerb)] = an_a
        rw._cache[("along_an", "b", gsd, smooth_px, kerb)] = an_b
    return rw._cache[key]


def _reference(
    rw: RoadWindow,
    sms: tuple[np.ndarray, np.ndarray],
    samp: np.ndarray,
    sel: np.ndarray | slice,
    gsd: float,
    smooth_px: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """``along_anomaly``'s reference levels of the after and before road-only means ``sms``
    at the ``on`` pixels indexed by ``sel``, sampled on ``samp`` (bool rows, cols).

    The pass over all road pixels on the whole road mask also records which samples fall
    on the kerbside (road off the carriageway), for ``_kerb_pixels``."""
    th = rw._memo(("axis",), lambda: np.take(rw.roads.axis, rw.flat).astype(np.float64))
    side = rw._memo(("side",), lambda: np.ascontiguousarray(rw.on & ~rw.roads.carriageway))
    offs = np.asarray(ALONG_REF_M, np.float64) / gsd
    rows, cols = rw.rows[sel], rw.cols[sel]
    # levels +inf exactly off the road (``_along_levels``) and the kerbside within it
    inf_off = samp is rw.on and rw._cache.get(("along_inf", smooth_px), False)
    ref_a, ref_b, hit = AK.sides_ab(*sms, samp, side, rows, cols, th[sel], offs, inf_off)

    # In a crossing the pixels belong to one road (the one burnt last) and a row across the
    # other road lies along the owner's axis; where the owner's normal reaches another road,
    # that road's own axis is looked along too, and the lower reference kept.
    # Most pixels are far from a crossing: find those whose normal reaches another road
    # first (ids only, once per window), and sample the levels along the normal there alone.
    def crossing() -> np.ndarray:
        far = np.arange(offs[-1] * gsd + 2.0, JUNCTION_REACH_M + 0.01, 2.0) / gsd
        reach = np.concatenate([offs, far])
        road_id = np.ascontiguousarray(rw.roads.road_id)
        return AK.other_road(rw.on, road_id, rw.rows, rw.cols, th + np.pi / 2, reach)

    k = np.flatnonzero(rw._memo(("cross", gsd), crossing)[sel])
    hit_n = np.zeros(0, bool)
    if k.size:
        *nrm, hit_n = AK.sides_ab(
            *sms, samp, side, rows[k], cols[k], th[sel][k] + np.pi / 2, offs, inf_off
        )
        for ref, ref_n in zip((ref_a, ref_b), nrm, strict=True):
            ref[k] = np.where(np.isfinite(ref_n), np.fmin(ref[k], ref_n), ref[k])
    if samp is rw.on and isinstance(sel, slice):
        # a sample on the kerbside along the axis, or along the normal at a crossing
        hit[k] |= hit_n
        rw._cache[("kerb_hit", gsd)] = hit
    return ref_a, ref_b


def _along_levels(rw: RoadWindow, which: str, smooth_px: int) -> tuple[np.ndarray, np.ndarray]:
    """Grey level ``which`` (road-only box-smoothed over ``smooth_px``) and its 3x3 road-only
    mean on the road pixels (NaN off them), both (rows, cols)."""

    def level(w: str) -> np.ndarray:
        g = rw.full_grey(w, 1)
        if smooth_px > 1:
            g = rw._memo(("along", w, smooth_px), lambda: masked_box(g, rw.on, smooth_px))
        return g

    key = ("along_sm", which, smooth_px)
    if key not in rw._cache:
        # the 3x3 road-only means are read on road pixels only, so they are computed there
        # only; the after and before images in one pass (every caller takes both). Off the
        # road they are +inf where no road mean can be (``sides_ab``'s ``inf_off``): levels
        # far below float32's range, whose means of nine over a ninth cannot overflow
        fill = np.nan
        if smooth_px <= 1:
            with np.errstate(invalid="ignore"):
                big = max(np.abs(rw.level(w, 1)).max(initial=0.0) for w in "ab")
            fill = np.inf if big < 1e30 else np.nan
        sm_a, sm_b = MB.masked_box_ab(level("a"), level("b"), rw.on, 3, rw.rows, rw.cols, fill)
        rw._cache[("along_inf", smooth_px)] = fill == np.inf
        rw._cache[("along_sm", "a", smooth_px)] = sm_a
        rw._cache[("along_sm", "b", smooth_px)] = sm_b
    return level(which), rw._cache[key]


def _along(rw: RoadWindow, gsd: float, smooth_px: int, kerb: bool) -> list[np.ndarray]:
    (ga, sm_a), (gb, sm_b) = _along_levels(rw, "a", smooth_px), _along_levels(rw, "b", smooth_px)

    def at(w: str, g: np.ndarray, sel: np.ndarray | slice) -> np.ndarray:
        # the level at the ``on`` pixels ``sel``: unsmoothed, the window's memoised gather
        return rw.level(w, 1)[sel] if smooth_px <= 1 else np.take(g, rw.flat[sel])

    if not kerb:
        refs = _reference(rw, (sm_a, sm_b), rw.on, slice(None), gsd, smooth_px)
        return [at(w, g, slice(None)) - r for w, g, r in zip("ab", (ga, gb), refs, strict=True)]
    # The road mask runs past the kerb onto pavement and verge, often paler than asphalt: at
    # a corner the pavement lies a few metres along a block's axis, and would set the bar of
    # a block on the carriageway, which is measured against carriageway instead. Only
    # carriageway pixels whose samples reach the kerbside can differ from the plain anomaly.
    out = [along_anomaly(rw, w, gsd, smooth_px, False).copy() for w in "ab"]
    j = rw._memo(("kerb_px", gsd), lambda: _kerb_pixels(rw, gsd))
    if j.size:
        cw = rw._memo(("cw",), lambda: np.ascontiguousarray(rw.roads.carriageway & rw.on))
        refs = _reference(rw, (sm_a, sm_b), cw, j, gsd, smooth_px)
        for o, w, g, r in zip(out, "ab", (ga, gb), refs, strict=True):
            o[j] = at(w, g, j) - r
    return out


def _kerb_pixels(rw: RoadWindow, gsd: float) -> np.ndarray:
    """Indices of the ``on`` pixels on the carriageway whose along-axis samples, or
    along-normal samples at a crossing, fall on road off the carriageway (found by the plain
    anomaly's pass, ``_reference``, which samples the very same points)."""
    cw = np.take(rw.roads.carriageway, rw.flat)
    return np.flatnonzero(cw & rw._cache[("kerb_hit", gsd)])


def along_contrast(
    rw: RoadWindow, gsd: float, floor: float, smooth_px: int = 1, sigma: float | None = None
) -> tuple[np.ndarray, float] | None:
    """``barricades.along_change``'s contrast per ``on`` pixel (0 where undefined) and its
    sigma, or None where too few road pixels have one. A carriageway pixel is compared with
    carriageway only (``along_anomaly`` with ``kerb``); the deep-shade pass keeps the whole
    road mask, whose shade test and noise it sets. ``sigma`` (grey levels): the scene's noise
    of this contrast, used instead of the window's."""
    if not rw.enough:
        return None
    an_a = along_anomaly(rw, "a", gsd, smooth_px, kerb=True)
    an_b = along_anomaly(rw, "b", gsd, smooth_px, kerb=True)
    d = an_a - an_b
    x = d[np.isfinite(d)]
    if x.size < MIN_ROAD_PX:
        return None
    sigma = robust_sigma(x, floor) if sigma is None else max(sigma, floor)
    c = np.minimum(an_a, d) / sigma
    c[~np.isfinite(c)] = 0.0
    return c, sigma


def shaded_change(
    rw: RoadWindow, gsd: float, lit_sigma: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per ``on`` pixel: the after image's along-road anomaly, its change (after less before),
    whether it is in deep shade in the after image, and whether on both dates
    (``deep_shade_contrast``; ``road_noise`` samples the scene's noise from the last two)."""
    an_a = along_anomaly(rw, "a", gsd)
    an_b = along_anomaly(rw, "b", gsd)
    bar = lit_both(rw, 1)[rw.rid] - SHADE_SIGMAS * lit_sigma
    with np.errstate(invalid="ignore"):
        shade = (rw.level("a", 1) - an_a) < bar
        both = shade & ((rw.level("b", 1) - an_b) < bar)
    return an_a, an_a - an_b, shade, both


def deep_shade_contrast(
    rw: RoadWindow, gsd: float, lit_sigma: float, floor: float, sigma: float | None = None
) -> tuple[np.ndarray, np.ndarray, float] | None:
    """Contrast of road pixels in deep shade against the shaded road just ahead and behind.

    A block in a building's shadow is lit by the sky only and is no brighter than sunlit
    asphalt, so the sunlit-level test of ``road_contrast`` cannot see it; against the shaded
    road around it (``along_anomaly``) it stands out as a lit block does on lit road, and the
    shade scales the road's texture down with it. A pixel is *in shade* where even the
    brighter of the road levels ahead and behind it in the after image lies more than
    ``SHADE_SIGMAS`` (6) sunlit-noise units below its road's sunlit level (``lit_both``): sunlit
    road is never that far below it, by the definition of the noise. The contrast is in units
    of the noise of road shaded on both dates (robust MAD, floored at ``floor``).

    Args:
        rw: the window's road pixels.
        gsd: metres per pixel.
        lit_sigma: the sunlit contrast noise (grey levels, ``road_contrast``'s sigma).
        floor: least noise (grey levels).
        sigma: the scene's noise of this contrast (grey levels,
            ``road_noise.scene_road_noise``), used instead of the window's: measured on the
            window, it depends on how much shaded road the window holds (the Helsinki-layout scene:
            0.0205 on a 1024 px window, 0.0238 on the whole scene, which lost a row in shade).

    Returns:
        (contrast per ``on`` pixel in robust sigmas, 0 out of shade; bool per ``on`` pixel:
        in shade; the sigma), or None where the window has too little road shaded on both
        dates to measure its noise.
    """
    if not rw.enough:
        return None
    an_a, d, shade, both = shaded_change(rw, gsd, lit_sigma)
    x = d[both & np.isfinite(d)]
    if x.size < MIN_ROAD_PX:
        return None
    sigma = robust_sigma(x, floor) if sigma is None else max(sigma, floor)
    c = np.where(shade, np.minimum(an_a, d) / sigma, 0.0).astype(np.float32)
    c[~np.isfinite(c)] = 0.0
    return c, shade, sigma
