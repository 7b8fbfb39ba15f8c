"""The berm image path's two change bounds: the Otsu threshold of the change magnitude and
the outlier bound of the rise in redness, measured once for the scene (``scene_berm_bounds``)
on the sample mosaic the radiometric maps are fitted on, so that they do not depend on where
the window edges fall (``fortmap.detect.berms`` describes the image path).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.filters import threshold_otsu

from fortmap.detect.berm_grid import _down, work_factor
from fortmap.detect.order_stats import median_sigma
from fortmap.detect.road_pixels import otsu_threshold

#: How many robust standard deviations above the median change the Otsu threshold must lie
#: for the window to hold a population of changed pixels at all (the usual outlier bound).
NOISE_SIGMAS = 3.0


def change_threshold(mag: np.ndarray) -> float | None:
    """Otsu threshold of change magnitudes, or None when they hold no changed population.

    Otsu splits any histogram in two; a threshold within ``NOISE_SIGMAS`` robust standard
    deviations (from the MAD) of the median lies inside the unchanged bulk's own spread, so
    there is no separate population of changed pixels, only noise and resampling residue at
    edges (an image against itself, shifted).
    """
    lo, hi = mag.min(), mag.max()
    # Otsu's threshold with the histogram counted in one compiled pass (the same threshold)
    thr = float(otsu_threshold(mag.ravel()) if hi > lo else threshold_otsu(mag))
    bound = change_bound(mag)
    if bound is not None and thr < bound:
        return None
    return thr


def change_bound(x: np.ndarray) -> float | None:
    """Upper outlier bound of ``x``: ``NOISE_SIGMAS`` robust standard deviations (from the
    MAD) above its median, or None when ``x`` has no spread (nothing to tell apart)."""
    med, sigma = median_sigma(x, 0.0)
    return float(med) + NOISE_SIGMAS * sigma if sigma > 0 else None


@dataclass(frozen=True)
class BermBounds:
    """The image path's two change bounds, measured once for the scene.

    Attributes:
        change: Otsu threshold of the work-grid change magnitude (``change_threshold``).
        red_gain: outlier bound of the rise in redness (``change_bound``), or None (no
            spread: the redness test is off).
    """

    change: float
    red_gain: float | None


def scene_berm_bounds(
    before: np.ndarray, after: np.ndarray, valid: np.ndarray, gsd: float
) -> BermBounds | None:
    """The image path's change bounds from a sample of the scene (``io.grids.sample_mosaic``,
    normalised as the windows are read), the same for every window whatever the tiling.

    Args:
        before, after: normalised float32 (bands, rows, cols) of the sample.
        valid: bool (rows, cols).
        gsd: metres per pixel of the sample.

    Returns:
        :class:`BermBounds`, or None where the sample has too few valid work-grid pixels or
        holds no changed population (``change_threshold``): each window then measures its
        own, as a scene blurred or misregistered all over (the simulator's ``hard`` seed 1)
        can still hold windows where fresh soil stands out.
    """
    f = work_factor(gsd)
    vd = _down(valid, f) > 0.99
    if vd.sum() <= 100:
        return None
    ab = _down(after, f) if after.ndim == 3 else _down(after, f)[None]
    bb = _down(before, f) if before.ndim == 3 else _down(before, f)[None]
    mag = np.sqrt(((ab - bb) ** 2).sum(axis=0))[vd]
    thr = change_threshold(mag) if np.ptp(mag) > 0 else None
    if thr is None:
        return None
    return BermBounds(thr, change_bound((_redness(ab) - _redness(bb))[vd]))


def _redness(bands: np.ndarray) -> np.ndarray:
    """(R - B) / (R + G + B) of (bands, rows, cols), floored brightness 0.3 (dark pixels'
    colour is noise)."""
    return (bands[0] - bands[-1]) / np.maximum(np.abs(bands).sum(axis=0), 0.3)
