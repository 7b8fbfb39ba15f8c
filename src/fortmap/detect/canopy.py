"""Tree canopy from an RGB image, on a coarse grid, window by window.

A pixel is *vegetated* when its excess green ``(2G - R - B) / (R + G + B)`` exceeds Otsu's
threshold over the scene (chlorophyll reflects green and absorbs red and blue; soil, roofs and
roads are near-grey). Among vegetated pixels, *tree crowns* are the dark ones: Otsu's threshold
on brightness (R + G + B) / 3 within the vegetation. A crown is a deep, clumped layer of leaves
that shades itself, so its visible reflectance is about half that of grass or crops (canopy
albedo 0.05-0.10 against 0.10-0.20 for grass). The split is only trusted when the dark class's
mean is at most :data:`MAX_DARK_RATIO` of the bright class's (the same physics with margin),
otherwise there are no trees to find and the image yields no canopy.

Both thresholds are unsupervised in-scene statistics (Otsu), taken on full-resolution tiles
spread over the scene. The image is read by windows of the target grid (never whole), smoothed
over :data:`SMOOTH_M` (crowns are 3 m across or more; this removes sensor noise) and reduced to
the fraction of each coarse cell's pixels that are vegetated and that are crowns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from rasterio.windows import Window
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu

from fortmap.io.raster import GridReader
from fortmap.types import Grid

#: Canopy height (m above ground) given to detected crowns when no better figure is known:
#: town and orchard trees are mostly 4-10 m tall, and the top of a crown is rounded, so the
#: mean height of a crown's surface is lower than its top. 6 m is the middle of that range
#: (it is also about the mean crown surface height of the simulator's tree model).
DEFAULT_TREE_HEIGHT_M = 6.0
#: Width (m) of the box filter applied before classifying pixels.
SMOOTH_M = 1.5
#: Largest ratio of mean brightness of the dark (crown) class to the bright (grass) class for
#: the split to count as trees against low vegetation.
MAX_DARK_RATIO = 0.75
#: Fraction of a crown's pixels that must still be vegetated in the after image for the tree
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


def vegetation_cover(
    reader: GridReader,
    grid: Grid,
    factor: int,
    thresholds: CanopyThresholds,
    *,
    window: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """Fractions of vegetated and of crown pixels in each ``factor`` x ``factor`` block.

    Args:
        reader: an RGB reader on ``grid``.
        grid: the fine grid (the image's pixels).
        factor: fine pixels per coarse cell along each axis (an integer).
        thresholds: from :func:`canopy_thresholds` on the same image.
        window: side of the windows read, fine pixels (rounded down to a multiple of factor).

    Returns:
        (vegetated, crowns): float32 (grid.height // factor, grid.width // factor) fractions
        0..1 of the block's valid pixels (0 where none is valid).
    """
    f = int(factor)
    ch, cw = grid.height // f, grid.width // f
    veg_out = np.zeros((ch, cw), np.float32)
    tree_out = np.zeros((ch, cw), np.float32)
    step = max(f, window // f * f)
    k = _smooth_px(grid)
    halo = k // 2 + 1
    for r0 in range(0, ch * f, step):
        for c0 in range(0, cw * f, step):
            h, w = min(step, ch * f - r0), min(step, cw * f - c0)
            # read a halo around the window so the smoothing has no seams between windows
            rr0, cc0 = max(0, r0 - halo), max(0, c0 - halo)
            rr1, cc1 = min(grid.height, r0 + h + halo), min(grid.width, c0 + w + halo)
            win = Window(cc0, rr0, cc1 - cc0, rr1 - rr0)
            e, b = _features(reader.read_raw(win), k)
            valid = reader.read_valid(win)
            sl = (slice(r0 - rr0, r0 - rr0 + h), slice(c0 - cc0, c0 - cc0 + w))
            e, b, valid = e[sl], b[sl], valid[sl]
            veg = (e > thresholds.exg) & valid
            tree = veg & (b < thresholds.dark) if math.isfinite(thresholds.dark) else veg & False
            shape = (h // f, f, w // f, f)
            n = valid.reshape(shape).sum(axis=(1, 3))
            den = np.maximum(n, 1).astype(np.float32)
            out = (slice(r0 // f, (r0 + h) // f), slice(c0 // f, (c0 + w) // f))
            veg_out[out] = veg.reshape(shape).sum(axis=(1, 3)) / den
            tree_out[out] = tree.reshape(shape).sum(axis=(1, 3)) / den
    return veg_out, tree_out


def canopy_heights(
    before: GridReader,
    after: GridReader | None,
    grid: Grid,
    factor: int,
    *,
    tree_height_m: float = DEFAULT_TREE_HEIGHT_M,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Canopy heights (m above ground) before and after, on the ``factor``-times coarser grid.

    Crowns are found on the before image (trees seldom appear between two dates weeks or
    months apart, while the after image's vegetation may have greened or dried with the
    season). A coarse cell is a crown cell when any of its pixels is (the same rule as
    resampling a fine surface with the maximum, as :mod:`fortmap.analyze.visibility` does). A
    tree is felled whole: each connected group of crown cells stands after when most of its
    crown pixels are still vegetated in the co-registered after image (above the after image's
    own excess-green threshold), else it is gone after (felled, bulldozed or buried).

    Args:
        before: RGB reader of the before image on ``grid``.
        after: the after image on ``grid`` (co-registered); None: trees unchanged.
        grid: the fine grid, metres.
        factor: fine pixels per coarse cell along each axis.
        tree_height_m: height given to crown cells, metres.

    Returns:
        (before, after) float32 heights of shape (grid.height // factor, grid.width // factor),
        or None when the before image shows no tree crowns (or is not RGB).
    """
    tb = canopy_thresholds(before, grid)
    if tb is None or not math.isfinite(tb.dark):
        return None
    _, crowns = vegetation_cover(before, grid, factor, tb)
    trees = crowns > 0
    h_before = np.where(trees, np.float32(tree_height_m), np.float32(0))
    ta = canopy_thresholds(after, grid) if after is not None else None
    if ta is None:
        return h_before, h_before.copy()
    veg_after, _ = vegetation_cover(after, grid, factor, ta)
    lab, n = ndi.label(trees, structure=np.ones((3, 3), bool))
    if n == 0:
        return h_before, h_before.copy()
    idx = np.arange(1, n + 1)
    crown_px = ndi.sum(crowns, lab, idx)
    still = ndi.sum(crowns * np.minimum(veg_after, 1.0), lab, idx)
    stands = np.r_[False, still >= MIN_STANDING_FRACTION * np.maximum(crown_px, 1e-9)]
    return h_before, np.where(stands[lab], h_before, np.float32(0))
