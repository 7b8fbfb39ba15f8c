"""Tree canopy from an RGB image, on a coarse grid, window by window.

A pixel is *vegetated* when its excess green ``(2G - R - B) / (R + G + B)`` exceeds Otsu's
threshold over the scene (chlorophyll reflects green and absorbs red and blue; soil, roofs and
roads are near-grey). Among vegetated pixels, *tree crowns* are the dark ones: Otsu's threshold
on brightness (R + G + B) / 3 within the vegetation. A crown is a deep, clumped layer of leaves
that shades itself, so its visible reflectance is about half that of grass or crops (canopy
albedo 0.05-0.10 against 0.10-0.20 for grass). The split is only trusted when the dark class's
mean is at most :data:`MAX_DARK_RATIO` of the bright class's (the same physics with margin),
otherwise there are no trees to find and the image yields no canopy.

Heights: a crown is a dome. At a pixel ``d`` metres inside the crown's edge (Euclidean distance
transform) its height is that of a sphere of the crown's radius ``r`` (the largest ``d`` in the
crown, capped for groves at the scene's median crown radius): ``top - r + sqrt(r^2 - (r -
d)^2)``, the rim at ``top - r``, as a crown seen from above. The top comes from the crown's cast
shadow: the sun's elevation from the image's tags (``SUN_ELEVATION``, ``SUN_AZIMUTH``), the
shadow's length along the anti-sun direction measured on the ground beyond the crown, and the
shadow of a sphere (:func:`shadow_height`) whose radius is the crown's half-width across the
sun's azimuth (holes in a crown's mask shrink its inscribed radius, not that width). Where a
crown's shadow cannot be measured the scene's median measured top is used, else
:data:`DEFAULT_TREE_HEIGHT_M`.

Felled trees: a crown stands after unless its pixels are bare ground in the after image,
grey *and* bright by the after image's own thresholds (:func:`bare_ground`), so a change of
season or colour balance between the dates does not fell trees.

Both thresholds are unsupervised in-scene statistics (Otsu) of each image, taken on
full-resolution tiles spread over the scene. The images are read by windows of the target
grid (never whole) and smoothed over :data:`SMOOTH_M` (crowns are 3 m across or more; this
removes sensor noise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numba
import numpy as np
import rasterio
from rasterio.windows import Window
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu

from fortmap.detect.sun import sun_from_tags as tags_sun
from fortmap.io.raster import GridReader
from fortmap.types import Grid

#: Crown top height (m above ground) when the shadows cannot be measured (no sun elevation in
#: the image's tags, or no measurable crown shadows): town and orchard trees are mostly
#: 4-10 m tall; 7 m is the middle of that range.
DEFAULT_TREE_HEIGHT_M = 7.0
#: Tallest crown top (m) whose shadow is looked for; taller estimates are not trusted.
MAX_TREE_HEIGHT_M = 30.0
#: A crown's own shadow estimate is kept within this factor of the scene's median tree height
#: (a shadow falling into a building's shadow, or cut short by a wall, is not the tree's).
TREE_HEIGHT_SPREAD = 2.0
#: Fraction of a band of ground beyond the crown (away from the sun) that must be dark for the
#: shadow to reach it: the band's half-width point of the shadow (see :func:`shadow_height`).
SHADOW_FILL = 0.5
#: Width (m) of the box filter applied before classifying pixels.
SMOOTH_M = 1.5
#: Largest ratio of mean brightness of the dark (crown) class to the bright (grass) class for
#: the split to count as trees against low vegetation.
MAX_DARK_RATIO = 0.75
#: Fraction of a crown's pixels that must not be bare ground in the after image for the tree
#: to stand after (a majority).
MIN_STANDING_FRACTION = 0.5
#: Side (px) of the sample tiles and of the sample mosaic the thresholds are fitted on.
_TILE = 256
_SAMPLE_SIDE = 1536


@dataclass(frozen=True)
class CanopyThresholds:
    """Per-image thresholds (unsupervised, Otsu).

    Attributes:
        exg: excess green above which a pixel is vegetated (dimensionless).
        dark: brightness (image DN) below which a vegetated pixel is a tree crown; NaN when the
            image shows no tree crowns (no dark vegetation class).
    """

    exg: float
    dark: float


def excess_green(rgb: np.ndarray) -> np.ndarray:
    """Excess green ``(2G - R - B) / (R + G + B)`` of a (3, rows, cols) array, float32."""
    r, g, b = (np.asarray(x, np.float32) for x in rgb[:3])
    tot = r + g + b
    return np.where(tot > 0, (2 * g - r - b) / np.maximum(tot, 1e-6), 0).astype(np.float32)


def _features(rgb: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    sm = [ndi.uniform_filter(np.asarray(x, np.float32), k, mode="nearest") for x in rgb[:3]]
    return excess_green(np.stack(sm)), (sm[0] + sm[1] + sm[2]) / 3.0


def _smooth_px(grid: Grid) -> int:
    return max(1, int(round(SMOOTH_M / grid.gsd)) | 1)


def canopy_thresholds(reader: GridReader, grid: Grid) -> CanopyThresholds | None:
    """Otsu thresholds of excess green and of crown darkness, from tiles spread over ``grid``.

    Args:
        reader: an RGB reader on ``grid`` (bands red, green, blue first).
        grid: the grid read (pixels of ``grid.gsd`` metres).

    Returns:
        The thresholds, or None when the image has fewer than 3 bands or no valid pixels.
    """
    if len(reader.band_indexes) < 3:
        return None
    n = max(1, _SAMPLE_SIDE // _TILE)
    tw, th = min(_TILE, grid.width), min(_TILE, grid.height)
    exg, br = [], []
    k = _smooth_px(grid)
    for r in np.unique(np.linspace(0, grid.height - th, n).astype(int)):
        for c in np.unique(np.linspace(0, grid.width - tw, n).astype(int)):
            w = Window(int(c), int(r), tw, th)
            valid = reader.read_valid(w)
            e, b = _features(reader.read_raw(w), k)
            exg.append(e[valid])
            br.append(b[valid])
    e, b = np.concatenate(exg), np.concatenate(br)
    if e.size < 100 or np.ptp(e) == 0:
        return None
    t_exg = float(threshold_otsu(e))
    veg = b[e > t_exg]
    dark = math.nan
    if veg.size >= 100 and np.ptp(veg) > 0:
        t = float(threshold_otsu(veg))
        lo, hi = veg[veg < t], veg[veg >= t]
        if lo.size and hi.size and lo.mean() <= MAX_DARK_RATIO * hi.mean():
            dark = t
    return CanopyThresholds(t_exg, dark)


def _coarse_tiles(grid: Grid, f: int, step: int, halo: int):
    """Windows (pixels) tiling the part of ``grid`` that whole ``f``-pixel cells cover.

    Yields (window read with ``halo`` pixels around it, slice of the core in that read, slice
    of the coarse grid the core fills, block shape (rows/f, f, cols/f, f) of the core).
    """
    ch, cw = grid.height // f, grid.width // f
    for r0 in range(0, ch * f, step):
        for c0 in range(0, cw * f, step):
            h, w = min(step, ch * f - r0), min(step, cw * f - c0)
            rr0, cc0 = max(0, r0 - halo), max(0, c0 - halo)
            rr1, cc1 = min(grid.height, r0 + h + halo), min(grid.width, c0 + w + halo)
            win = Window(cc0, rr0, cc1 - cc0, rr1 - rr0)
            sl = (slice(r0 - rr0, r0 - rr0 + h), slice(c0 - cc0, c0 - cc0 + w))
            out = (slice(r0 // f, (r0 + h) // f), slice(c0 // f, (c0 + w) // f))
            yield win, sl, out, (h // f, f, w // f, f)


@dataclass
class CanopyStats:
    """What the canopy heights rest on (filled by :func:`canopy_heights`).

    Attributes:
        sun: (azimuth, elevation) in degrees from the before image's tags, or None.
        crowns: crowns found (connected groups of crown pixels, counted per window with its
            halo, so a crown near a window's edge counts more than once).
        measured: of these, crowns whose top came from their own shadow.
        scene_top_m: median measured crown top (m), or None when none was measured.
        default_used: True when no shadow was measurable and the default top was used.
    """

    sun: tuple[float, float] | None = None
    crowns: int = 0
    measured: int = 0
    scene_top_m: float | None = None
    default_used: bool = False
    #: crown tops (m) measured on the sample tiles the scene median is taken over
    tops: list[float] = field(default_factory=list, repr=False)


def sun_from_tags(path: str | object) -> tuple[float, float] | None:
    """(azimuth, elevation) of the sun in degrees from a raster's metadata tags, or None.

    The tags are read as :func:`fortmap.detect.sun.sun_from_tags` reads them; both angles are
    needed, and the elevation must be 5-90 degrees (lower suns cast shadows too long to
    measure).
    """
    try:
        with rasterio.open(path) as ds:
            tags = ds.tags()
    except (TypeError, rasterio.errors.RasterioIOError):
        return None
    az, el = tags_sun(tags)
    if az is None or el is None or el < 5.0:
        return None
    return az, el


@numba.njit(cache=True)
def _first_crown_toward(lab, du, dv, kmax):  # pragma: no cover - compiled
    """For each non-crown pixel: label and number of unit steps (px) toward (du, dv) to the
    first crown pixel within ``kmax`` steps (0 where none)."""
    h, w = lab.shape
    own = np.zeros((h, w), np.int32)
    step = np.zeros((h, w), np.int16)
    for r in range(h):
        for c in range(w):
            if lab[r, c] > 0:
                continue
            for k in range(1, kmax + 1):
                rr = int(round(r + k * dv))
                cc = int(round(c + k * du))
                if rr < 0 or rr >= h or cc < 0 or cc >= w:
                    break
                if lab[rr, cc] > 0:
                    own[r, c] = lab[rr, cc]
                    step[r, c] = k
                    break
    return own, step


def shadow_height(length_m: np.ndarray, radius_m: np.ndarray, elevation_deg: float) -> np.ndarray:
    """Top height (m) of spherical crowns from their shadow's length beyond the crown's edge.

    A sphere of radius ``r`` centred ``c`` metres up casts, for a sun ``e`` degrees high, a
    shadow ellipse whose far tip lies ``c / tan e + r / sin e`` from the point under the centre,
    so ``L = c / tan e + r / sin e - r`` beyond the crown's edge and ``top = c + r``. ``L`` is
    measured where the shadow covers half of the crown's width (:data:`SHADOW_FILL`), which on
    the ellipse is ``(1 - sqrt(3) / 2) r / sin e`` short of the tip; that is added back.

    Args:
        length_m: shadow lengths beyond the crown edge, metres.
        radius_m: crown radii, metres.
        elevation_deg: sun elevation, degrees.
    """
    e = math.radians(elevation_deg)
    r = np.asarray(radius_m, float)
    tip = np.asarray(length_m, float) + (1.0 - math.sqrt(3.0) / 2.0) * r / math.sin(e)
    c = (tip + r - r / math.sin(e)) * math.tan(e)
    return c + r


def _crown_tops(
    lab: np.ndarray, n: int, grey: np.ndarray, valid: np.ndarray, radius: np.ndarray,
    sun: tuple[float, float], gsd: float,
) -> np.ndarray:  # fmt: skip
    """Per-label crown top (m) from shadows, NaN where not measurable (index 0 unused)."""
    az, el = sun
    # toward the sun in pixel steps: east is +col, north is -row
    du, dv = math.sin(math.radians(az)), -math.cos(math.radians(az))
    kmax = int(math.ceil(MAX_TREE_HEIGHT_M / math.tan(math.radians(el)) / gsd))
    own, step = _first_crown_toward(lab.astype(np.int32), du, dv, kmax)
    lit_own, _ = _first_crown_toward(lab.astype(np.int32), -du, -dv, 2)
    near_dark = (own > 0) & (step <= 2) & valid
    near_lit = (lit_own > 0) & (own == 0) & valid
    out = np.full(n + 1, np.nan)
    if near_dark.sum() < 20 or near_lit.sum() < 20:
        return out
    b_dark, b_lit = float(np.median(grey[near_dark])), float(np.median(grey[near_lit]))
    if not b_dark < b_lit:
        return out  # no shadow on the anti-sun side: the tags do not describe this image
    # shadow or lit: halfway between the two in log brightness (an in-scene statistic)
    dark = grey < math.sqrt(max(b_dark, 1e-6) * b_lit)
    m = (own > 0) & valid
    idx = own[m].astype(np.int64) * (kmax + 1) + step[m]
    size = (n + 1) * (kmax + 1)
    cnt = np.bincount(idx, minlength=size).reshape(n + 1, kmax + 1)[:, 1:]
    dk = np.bincount(idx, weights=dark[m], minlength=size).reshape(n + 1, kmax + 1)[:, 1:]
    # empty bands (rounding skips some steps; crowns of other trees) do not end the shadow
    ok = (dk >= SHADOW_FILL * cnt) | (cnt == 0)
    run = np.argmin(np.c_[ok, np.zeros((n + 1, 1), bool)], axis=1)
    seen = (cnt > 0).cumsum(axis=1)[np.arange(n + 1), np.minimum(run, kmax - 1)] > 0
    # a shadow running to kmax is cut off or not the tree's: not measured
    good = (run > 0) & (run < kmax) & seen
    top = shadow_height(run * gsd, _across_radius(lab, n, du, dv, radius, gsd), el)
    out[good] = top[good]
    out[(out <= 0) | (out > MAX_TREE_HEIGHT_M)] = np.nan
    return out


def _across_radius(
    lab: np.ndarray, n: int, du: float, dv: float, radius: np.ndarray, gsd: float
) -> np.ndarray:
    """Per-label crown radius (m) from the label's width across the sun (index 0 unused).

    The inscribed radius (``radius``, from the distance transform) understates a crown where
    leaf texture and self-shading leave holes in its mask (by a third on field trees). The
    crown's cast shadow and its lit/shaded halves lie along the sun's azimuth, so its width
    across that azimuth is its diameter. Capped at twice the inscribed radius, so that a
    grove's width is not taken for one crown's.
    """
    rows, cols = np.nonzero(lab)
    k = lab[rows, cols]
    across = cols * -dv + rows * du
    idx = np.arange(n + 1)
    width = np.asarray(ndi.maximum(across, k, idx), float) - np.asarray(
        ndi.minimum(across, k, idx), float
    )
    return np.clip((width + 1.0) * gsd / 2.0, radius, 2.0 * radius)


def _dome(edt_m: np.ndarray, radius: np.ndarray, top: np.ndarray) -> np.ndarray:
    """Heights (m) of sphere-capped crowns: rim ``top - r`` rising to ``top`` at ``r`` inside."""
    r = np.maximum(radius, 1e-3)
    d = np.minimum(edt_m, r)
    return np.maximum(top - r + np.sqrt(np.maximum(r * r - (r - d) ** 2, 0.0)), 0.0)


def _crowns_in(
    reader: GridReader, grid: Grid, win: Window, th: CanopyThresholds, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    e, b = _features(reader.read_raw(win), k)
    valid = reader.read_valid(win)
    return (e > th.exg) & (b < th.dark) & valid, b, valid


def bare_ground(
    reader: GridReader, win: Window, thresholds: CanopyThresholds, k: int
) -> np.ndarray:
    """Pixels of ``win`` that are bare ground: neither vegetated nor as dark as a crown.

    A felled (or bulldozed, or buried) tree leaves soil or debris, which is both grey (excess
    green below the image's own Otsu threshold) and bright (above the image's own crown
    darkness threshold: soil reflects 0.3-0.6 of visible light, a crown 0.05-0.10, sunlit or
    not). Each test alone fails on a standing crown now and then: a crown in a building's
    shadow is lit by bluish sky light and loses its green, and a lit crown can be brighter
    than the threshold; a crown fails both only when its pixels are mislabelled. Both
    thresholds are the image's own, so a change of colour balance or season between the
    dates moves them with it. Without a crown threshold (NaN) the colour test decides alone.
    Pixels outside the image's valid area are never bare (no evidence of a change).

    Args:
        reader: an RGB reader on the grid (co-registered).
        win: window of the grid, pixels.
        thresholds: :func:`canopy_thresholds` of the same image.
        k: box smoothing, pixels (as for the crowns).
    """
    e, b = _features(reader.read_raw(win), k)
    bare = e <= thresholds.exg
    if math.isfinite(thresholds.dark):
        bare &= b >= thresholds.dark
    return bare & reader.read_valid(win)


def _window_heights(
    crown: np.ndarray, grey: np.ndarray, valid: np.ndarray, grid: Grid,
    sun: tuple[float, float] | None, scene_top: float, cap_r: float | None, stats: CanopyStats,
) -> np.ndarray:  # fmt: skip
    """Fine dome heights (m) over one window of crown pixels."""
    lab, n = ndi.label(crown)
    if n == 0:
        return np.zeros(crown.shape, np.float32)
    edt = ndi.distance_transform_edt(crown) * grid.gsd
    idx = np.arange(n + 1)
    radius = np.asarray(ndi.maximum(edt, lab, idx), float)
    top = np.full(n + 1, np.nan)
    if sun is not None:
        top = _crown_tops(lab, n, grey, valid, radius, sun, grid.gsd)
    measured = np.isfinite(top[1:])
    stats.crowns += n
    stats.measured += int(measured.sum())
    if math.isfinite(scene_top):
        lo, hi = scene_top / TREE_HEIGHT_SPREAD, scene_top * TREE_HEIGHT_SPREAD
        top = np.where(np.isfinite(top), np.clip(top, lo, hi), scene_top)
    r = radius if cap_r is None else np.minimum(radius, cap_r)
    r = np.minimum(r, top)  # a crown is never deeper than the tree is tall
    return _dome(edt, r[lab], top[lab]).astype(np.float32) * crown


def _scene_tree(
    reader: GridReader, grid: Grid, th: CanopyThresholds, sun: tuple[float, float] | None
) -> tuple[float, float | None, CanopyStats]:
    """Median measured crown top (m) and median crown radius (m) over the sample tiles."""
    st = CanopyStats(sun=sun)
    n = max(1, _SAMPLE_SIDE // _TILE)
    tw, th_ = min(2 * _TILE, grid.width), min(2 * _TILE, grid.height)
    k = _smooth_px(grid)
    radii: list[np.ndarray] = []
    for r in np.unique(np.linspace(0, grid.height - th_, n).astype(int)):
        for c in np.unique(np.linspace(0, grid.width - tw, n).astype(int)):
            crown, b, valid = _crowns_in(reader, grid, Window(int(c), int(r), tw, th_), th, k)
            lab, m = ndi.label(crown)
            if m == 0:
                continue
            edt = ndi.distance_transform_edt(crown) * grid.gsd
            rad = np.asarray(ndi.maximum(edt, lab, np.arange(m + 1)), float)
            radii.append(rad[1:])
            if sun is not None:
                top = _crown_tops(lab, m, b, valid, rad, sun, grid.gsd)
                st.tops.extend(top[1:][np.isfinite(top[1:])].tolist())
    top = float(np.median(st.tops)) if len(st.tops) >= 5 else math.nan
    rad = float(np.median(np.concatenate(radii))) if radii else None
    return top, rad, st


def canopy_heights(
    before: GridReader,
    after: GridReader | None,
    grid: Grid,
    factor: int,
    *,
    tree_height_m: float | None = None,
    sun: tuple[float, float] | None = None,
    stats: CanopyStats | None = None,
    window: int = 1024,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Canopy heights (m above ground) before and after, on the ``factor``-times coarser grid.

    Crowns are found on the before image (trees seldom appear between two dates weeks or
    months apart, while the after image's vegetation may have greened or dried with the
    season) and given dome heights at full resolution; a coarse cell takes the highest of its
    pixels (as resampling a fine surface with the maximum, as
    :mod:`fortmap.analyze.visibility` does). A tree is felled whole: a crown cell stands after
    when most crown pixels within a crown's width of it (twice the scene's median crown
    radius) are not bare ground in the co-registered after image (:func:`bare_ground`: grey
    *and* bright by the after image's own thresholds), else it is gone after (felled,
    bulldozed or buried).

    Args:
        before: RGB reader of the before image on ``grid``.
        after: the after image on ``grid`` (co-registered); None: trees unchanged.
        grid: the fine grid, metres.
        factor: fine pixels per coarse cell along each axis.
        tree_height_m: crown top (m) for every crown, instead of measuring shadows.
        sun: (azimuth, elevation) degrees of the before image; None: from its tags.
        stats: filled with what the heights rest on, when given.
        window: side of the windows read, fine pixels.

    Returns:
        (before, after) float32 heights of shape (grid.height // factor, grid.width // factor),
        or None when the before image shows no tree crowns (or is not RGB).
    """
    tb = canopy_thresholds(before, grid)
    if tb is None or not math.isfinite(tb.dark):
        return None
    st = stats if stats is not None else CanopyStats()
    if tree_height_m is None:
        sun = sun if sun is not None else sun_from_tags(before.path)
        scene_top, cap_r, sample = _scene_tree(before, grid, tb, sun)
    else:
        sun, scene_top, cap_r, sample = None, float(tree_height_m), None, CanopyStats()
    st.sun, st.tops = sun, sample.tops
    if not math.isfinite(scene_top):
        scene_top, st.default_used = DEFAULT_TREE_HEIGHT_M, True
    st.scene_top_m = scene_top
    f = int(factor)
    ch, cw = grid.height // f, grid.width // f
    h_before = np.zeros((ch, cw), np.float32)
    crowns = np.zeros((ch, cw), np.float32)
    step = max(f, window // f * f)
    k = _smooth_px(grid)
    # the halo holds a crown's shadow and a grove's width, so windows have no seams
    reach = MAX_TREE_HEIGHT_M / math.tan(math.radians(sun[1])) if sun else 0.0
    halo = int(math.ceil((reach + 4 * (cap_r or 5.0)) / grid.gsd)) + k
    ta = canopy_thresholds(after, grid) if after is not None else None
    kept = np.zeros((ch, cw), np.float32)
    for win, sl, out, shape in _coarse_tiles(grid, f, step, halo):
        crown, b, valid = _crowns_in(before, grid, win, tb, k)
        z = _window_heights(crown, b, valid, grid, sun, scene_top, cap_r, st)
        h_before[out] = z[sl].reshape(shape).max(axis=(1, 3))
        crowns[out] = crown[sl].reshape(shape).mean(axis=(1, 3))
        if ta is not None:
            still = crown[sl] & ~bare_ground(after, win, ta, k)[sl]
            kept[out] = still.reshape(shape).mean(axis=(1, 3))
    trees = crowns > 0
    h_before = np.where(trees, np.maximum(h_before, 0.0), 0.0).astype(np.float32)
    if ta is None:
        return h_before, h_before.copy()
    # a tree is felled whole: a crown cell stands when most crown pixels within a tree's width
    # of it (3 x 3 cells) are not bare ground after; a grove cut through keeps its other part
    k = max(3, int(round(2 * (cap_r or 2.0) / (grid.gsd * f))) | 1)
    crown_px = ndi.uniform_filter(crowns, k, mode="constant")
    still = ndi.uniform_filter(kept, k, mode="constant")
    stands = still >= MIN_STANDING_FRACTION * np.maximum(crown_px, 1e-9)
    return h_before, np.where(trees & stands, h_before, np.float32(0))
