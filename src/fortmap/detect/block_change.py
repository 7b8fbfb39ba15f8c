"""New-object evidence on road pixels: the pixel tests of the barricade detector.

Only road pixels are looked at. A pixel holds a *new block* (``block_change``) when, in the
after image, it passes two contrasts, each against the road itself and each new since the
before image: it is brighter than its road's sunlit surface (``road_change`` with
``lit_reference``: road leaving a moved shadow reaches that level and no more), and brighter
than the road a few metres ahead and behind it along the axis (``along_change``: a row is
short along the road, so this bounds it by the road around it, and lit road beside a new
shadow is no brighter than the lit road beyond it). Per-road levels cancel illumination and
radiometric differences between the dates. The sunlit level is the lower of the road's
levels on the two dates (``road_window.lit_both``): the before image lacks the new objects
that would otherwise make up the bright class of a lit narrow street. The thresholds are
multiples of the in-scene noise: the robust (MAD) spread of the contrasts over road pixels,
with a floor; measured once for the scene (``road_noise.scene_road_noise``, passed as
``noise``) so that a row scores the same whatever window it is read in, or else over the
window's road pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fortmap.detect import fort_kernels as K
from fortmap.detect.road_noise import RoadNoise
from fortmap.detect.road_pixels import RoadWindow
from fortmap.detect.road_window import along_contrast, road_contrast
from fortmap.detect.roadmask import RoadRaster

#: Seed and grow thresholds of new-object pixels, in robust standard deviations of the
#: road-surface contrast (hysteresis; 5.5 sigma keeps false alarms per MP near zero for Gaussian
#: noise, 3 sigma lets an object grow to its blurred edge). The seed was 6 while the scene's
#: noise came from tiles at the scene's corners and edges, which read 2-13 % under the noise
#: of all its road pixels on the Helsinki scenes; measured on the anchored tiles (0-3 % over
#: it), 5.5 was chosen on the development seeds (Helsinki 1-5), see BENCHMARKS.md.
SEED_SIGMA = 5.5
GROW_SIGMA = 3.0
#: Floor of the contrast noise (grey levels in the 0..1 scaled image): sensor noise and road
#: texture never fall below this, and a window with few road pixels must not over-trust them.
MIN_SIGMA = 0.02
#: Typical barricade block side (m), used to estimate the block count of a closed row.
BLOCK_M = 1.5
#: Typical gap between blocks (m), for the same estimate when the gaps are blurred away.
BLOCK_GAP_M = 0.5


@dataclass
class RoadChange:
    """New-object evidence on the road pixels of a window.

    Attributes:
        contrast: float32 (rows, cols): after-minus-before contrast to the road's median, in
            robust standard deviations (0 off road).
        seed, grow: bool masks at ``SEED_SIGMA`` / ``GROW_SIGMA``.
        sigma: the robust standard deviation (grey levels) used.
        mass: bool (rows, cols) or None: road pixels brighter than their road's sunlit level
            and brighter than before by ``GROW_SIGMA``, without the along-road bound
            (``block_change`` only): the new material a row is joined to.
    """

    contrast: np.ndarray
    seed: np.ndarray
    grow: np.ndarray
    sigma: float
    mass: np.ndarray | None = None


def opening_px(gsd: float) -> int:
    """Side (pixels) of the square opening applied to new-object pixels at ``gsd`` m/pixel.

    A block of side ``BLOCK_M`` covers ``BLOCK_M / gsd`` pixels, but at an arbitrary phase
    and angle to the pixel grid only one pixel fewer are wholly inside it (2 px for a 1.5 m
    block at 0.5 m): a wider opening erases single blocks, and with them rows of two."""
    return max(1, int(np.floor(BLOCK_M / gsd + 1e-6)) - 1)


def box_opening(m: np.ndarray, k: int) -> np.ndarray:
    """Binary opening of bool (rows, cols) ``m`` by a k x k square (k >= 1; pixels the
    square cannot reach, as at the window's edge, are dropped)."""
    if k <= 1:
        return m.copy()
    if k % 2:
        return K.opening(m, np.ones((k, k), bool))
    # erosion anchored at the square's top-left pixel, then dilation back over the square
    return K.square_opening_tl(np.ascontiguousarray(m, bool), k)


def _road_medians(g: np.ndarray, rid: np.ndarray, on: np.ndarray, n: int) -> np.ndarray:
    """Lower median of ``g`` per road id over ``on`` (index = road id, 0 unused), float32."""
    return K.road_medians(g[on], rid[on], n)


def _as_change(rw: RoadWindow, res: tuple[np.ndarray, float] | None) -> RoadChange:
    if res is None:
        f = np.zeros(rw.on.shape, bool)
        return RoadChange(np.zeros(rw.on.shape, np.float32), f, f, MIN_SIGMA)
    # the masks from the road pixels' own (float32) values: off the road the contrast is 0
    v = np.asarray(res[0]).astype(np.float32, copy=False)
    masks = []
    for t in (SEED_SIGMA, GROW_SIGMA):
        m = np.zeros(rw.on.shape, bool)
        m.ravel()[rw.flat] = v > t
        masks.append(m)
    return RoadChange(rw.scatter(v), masks[0], masks[1], res[1])


def road_change(
    before: np.ndarray,
    after: np.ndarray,
    valid: np.ndarray,
    roads: RoadRaster,
    smooth_px: int = 1,
    shade_aware: bool = False,
    lit_reference: bool = False,
    rw: RoadWindow | None = None,
) -> RoadChange:
    """New bright objects on road pixels (see the module docstring).

    Each road pixel is compared with its road's median (or, ``shade_aware``, with its road's
    level under the same illumination, see ``road_window.illumination_anomaly``) in the after
    image, less the same in the before image; the contrast is the smaller of that change and
    the after anomaly, in robust standard deviations of the change over the road pixels.

    Args:
        before, after: (bands, rows, cols) or (rows, cols) radiometrically matched images of
            the window (same scale, e.g. from ``GridReader.read``).
        valid: bool (rows, cols), pixels with data on both dates.
        roads: the window's :class:`RoadRaster`.
        smooth_px: side of a box filter applied first (pixels; rubble is a textured field and
            is measured on a smoothed image, blocks on the raw one).
        shade_aware: compare each pixel with its road's level under the same illumination
            (lit or shaded) instead of the road's one median. It removes moved shadows read
            as new material on wide fields (rubble); on the seeds it was tried on it added
            false block rows, so barricades keep one median.
        lit_reference: the after image must also stand out against its road's *sunlit* level
            (``road_window.lit_level``), not only its median: road leaving a moved shadow
            reaches the sunlit level and no more, whereas sunlit blocks are brighter
            (barricades).
        rw: the window's shared :class:`RoadWindow` (built from the other arguments when
            None; pass one to share its intermediates between calls).
    """
    rw = rw or RoadWindow.build(before, after, valid, roads)
    return _as_change(rw, road_contrast(rw, smooth_px, shade_aware, lit_reference, MIN_SIGMA))


def along_change(
    before: np.ndarray,
    after: np.ndarray,
    valid: np.ndarray,
    roads: RoadRaster,
    gsd: float,
    smooth_px: int = 1,
    rw: RoadWindow | None = None,
) -> RoadChange:
    """New bright objects on road pixels, each against the road just ahead and behind it.

    Args:
        before, after: (bands, rows, cols) or (rows, cols) radiometrically matched images.
        valid: bool (rows, cols), pixels with data on both dates.
        roads: the window's :class:`RoadRaster`.
        gsd: metres per pixel.
        smooth_px: side of a road-only box filter applied first (pixels).
        rw: the window's shared :class:`RoadWindow` (optional).

    Returns:
        :class:`RoadChange`: contrast is min(after anomaly, after minus before anomaly) (see
        ``road_window.along_anomaly``) in robust standard deviations of the latter over the
        road.
    """
    rw = rw or RoadWindow.build(before, after, valid, roads)
    return _as_change(rw, along_contrast(rw, gsd, MIN_SIGMA, smooth_px))


def block_change(
    before: np.ndarray,
    after: np.ndarray,
    valid: np.ndarray,
    roads: RoadRaster,
    gsd: float,
    rw: RoadWindow | None = None,
    noise: RoadNoise | None = None,
) -> RoadChange:
    """New block pixels: brighter than their road's sunlit level (``road_change`` with
    ``lit_reference``) *and* than the road just ahead and behind them (``along_change``).

    With ``noise`` (``road_noise.scene_road_noise``) both contrasts are in units of the
    scene's noise, so a row scores the same whatever window it is read in; without it, of
    the window's road pixels.

    The first test keeps road that merely leaves a moved shadow out; the second keeps lit road
    beside a new shadow out where a road's sunlit level is set too low (a road mostly in shade
    in the window), and bounds a row by the road around it, so a row at a shadow's edge is
    measured as the row alone. Both contrasts are in their own noise units. ``rw``: the
    window's shared :class:`RoadWindow` (optional). Blocks standing in deep shade fail the
    first test; ``find_barricades`` looks for them separately (``shade_rows``).
    """
    rw = rw or RoadWindow.build(before, after, valid, roads)
    a = road_contrast(rw, 1, False, True, MIN_SIGMA, noise.road if noise else None)
    if a is None:
        return _as_change(rw, None)
    b = along_contrast(rw, gsd, MIN_SIGMA, sigma=noise.along if noise else None)
    # off the road both contrasts are 0, as is an along contrast the window cannot tell
    cb = b[0] if b is not None else np.zeros_like(a[0])
    out = _as_change(rw, (np.minimum(a[0], cb), a[1]))
    out.mass = np.zeros(rw.on.shape, bool)
    out.mass.ravel()[rw.flat] = a[0] > GROW_SIGMA
    return out
