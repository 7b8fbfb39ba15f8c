"""Co-registration: a sub-pixel global shift plus a local affine correction.

Two acquisitions of the same ground never line up exactly: orthorectification errors and
different view angles leave shifts of a few pixels that vary slowly across the scene. We
measure the shift by phase correlation, first on a decimated view of the whole scene (to catch
shifts larger than a tile), then on a grid of full-resolution tiles; a robust affine fit of the
tile shifts is the local correction, and what the fit leaves unexplained is the residual.

Shifts are in *target pixels* (the before grid), ``dx`` along columns and ``dy`` along rows,
positive when a feature sits further right / lower in the after image than in the before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from affine import Affine
from rasterio.windows import Window
from skimage.registration import phase_cross_correlation

from fortmap.align.coreg_kernels import taper_complex, whiten_band
from fortmap.detect.change_stats import median, percentiles
from fortmap.io.raster import GridReader


@dataclass
class Coregistration:
    """Result of co-registering the after image onto the before grid.

    Attributes:
        dx, dy: global shift in before-grid pixels (after minus before).
        warp: affine map from before-grid pixel to after-image pixel position on the same grid
            (the local correction; identity plus the shift when only a shift was found).
        residual_px: RMS of the tile shifts the affine model leaves unexplained (pixels).
        n_tiles: tiles whose shift was measured and kept.
        tiles: per-tile measurements (col, row centre in pixels, dx, dy, error, kept).
    """

    dx: float
    dy: float
    warp: Affine
    residual_px: float
    n_tiles: int
    tiles: list[dict] = field(default_factory=list)
    mode: str = "auto"

    def as_dict(self, gsd: float) -> dict:
        """Summary for ``summary.json``; ``gsd`` in metres per pixel gives the metre figures."""
        return {
            "mode": self.mode,
            "applied": "none"
            if self.warp == Affine.identity()
            else (
                "shift"
                if self.warp[:2] == (1.0, 0.0) and self.warp[3:5] == (0.0, 1.0)
                else "affine"
            ),
            "shift_px": [round(self.dx, 3), round(self.dy, 3)],
            "shift_m": [round(self.dx * gsd, 3), round(self.dy * gsd, 3)],
            "affine_px": [round(v, 6) for v in tuple(self.warp)[:6]],
            "residual_px": round(self.residual_px, 3),
            "residual_m": round(self.residual_px * gsd, 3),
            "tiles_used": self.n_tiles,
        }


def _grey(img: np.ndarray) -> np.ndarray:
    """Grey level with the darkest 40 % flattened: cast shadows are the darkest features of
    a scene and move with the sun between dates, so their edges would bias the shift."""
    g = img.mean(axis=0) if img.ndim == 3 else img
    g = g.astype(np.float32, copy=False)
    return np.maximum(g, np.float32(percentiles(g, 40)))


def _prep(g: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Whitened, band-passed Fourier transform of the tapered, standardised image.

    Whitening (dividing by the amplitude) makes the correlation a phase correlation, which
    ignores haze, contrast and blur; the band-pass weight (a difference of Gaussians, sigma 1
    and 8 px) then keeps the scales where roofs, roads and field edges are, and drops pixel
    noise and slow brightness gradients.
    """
    if valid.all():
        # the usual case (tiles are only measured when mostly valid): nothing to fill, and
        # the median that would fill it is a partial sort of the whole image
        g = g.astype(np.float32)
    else:
        fill = median(g[valid]) if valid.any() else 0.0
        g = np.where(valid, g, fill).astype(np.float32)
    g -= g.mean()
    g /= g.std() + 1e-6
    wy, wx, band = _window_and_band(g.shape)
    # the compiled passes do numpy's float operations without its full-size temporaries, and
    # fft2's two passes (last axis first) run in place: fresh megabyte outputs cost more in
    # page faults than the transforms themselves
    f = taper_complex(g, wy, wx)
    np.fft.fft(f, axis=1, out=f)
    np.fft.fft(f, axis=0, out=f)
    return whiten_band(f, np.abs(f), band)


@lru_cache(maxsize=4)
def _window_and_band(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hanning tapers and the square root of the band-pass weight for an image ``shape``
    (pixels); every tile has the same shape, so they are computed once."""
    wy = np.hanning(shape[0])[:, None]
    wx = np.hanning(shape[1])[None, :]
    # The weight depends on the squared frequencies only, and fftfreq's k/n and -k/n have the
    # same square: it is computed on the non-negative quarter (indices 0..n/2, exp's cost a
    # quarter) and mirrored, the same doubles as over the whole plane.
    iy = np.minimum(np.arange(shape[0]), shape[0] - np.arange(shape[0]))
    ix = np.minimum(np.arange(shape[1]), shape[1] - np.arange(shape[1]))
    fy = np.fft.fftfreq(shape[0])[: iy.max() + 1, None]
    fx = np.fft.fftfreq(shape[1])[None, : ix.max() + 1]
    r2 = (2 * np.pi) ** 2 * (fx**2 + fy**2)
    weight = np.exp(-r2 * 1.0**2 / 2) - np.exp(-r2 * 8.0**2 / 2)
    band = np.sqrt(np.clip(weight, 0, None))[iy[:, None], ix[None, :]]
    for a in (wy, wx, band):
        a.flags.writeable = False
    return wy, wx, band


def measure_shift(
    ref: np.ndarray, mov: np.ndarray, ref_valid: np.ndarray, mov_valid: np.ndarray
) -> tuple[float, float, float]:
    """Shift of ``mov`` against ``ref`` (pixels, dx along columns, dy along rows) and the
    phase-correlation error (0 good .. 1 bad).

    Example:
        >>> import numpy as np
        >>> from scipy import ndimage as ndi
        >>> a = ndi.gaussian_filter(np.random.default_rng(0).random((128, 128)), 2)
        >>> b = ndi.shift(a, (1.5, -2.0))  # content moved 1.5 rows down, 2 columns left
        >>> dx, dy, err = measure_shift(a, b, a > -1, b > -1)
        >>> round(dx, 1), round(dy, 1)
        (-2.0, 1.5)
    """
    r = _prep(_grey(ref), ref_valid)
    m = _prep(_grey(mov), mov_valid)
    shift, error, _ = phase_cross_correlation(
        r, m, space="fourier", upsample_factor=20, normalization=None
    )
    return float(-shift[1]), float(-shift[0]), float(error)


def _tile_windows(width: int, height: int, size: int, n: int) -> list[Window]:
    size = min(size, max(64, min(width, height) // 2))
    cols = np.unique(np.linspace(0, width - size, n).round().astype(int))
    rows = np.unique(np.linspace(0, height - size, n).round().astype(int))
    return [Window(int(c), int(r), size, size) for r in rows for c in cols]


def fit_affine_shifts(points: np.ndarray, shifts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares affine model of shifts: ``shift = A @ [x, y, 1]``; returns (A 2x3, residuals)."""
    design = np.column_stack([points, np.ones(len(points))])
    coef, *_ = np.linalg.lstsq(design, shifts, rcond=None)
    return coef.T, shifts - design @ coef


def coregister(
    before: GridReader,
    after: GridReader,
    tile_px: int = 256,
    n_side: int = 4,
    coarse_px: int = 1024,
) -> Coregistration:
    """Measure how the after image is displaced against the before image and return the warp.

    Args:
        before: reader of the before image on its own grid.
        after: reader of the after image on the before grid (no warp applied yet).
        tile_px: side of the full-resolution tiles, pixels.
        n_side: tiles per side of the measuring grid (``n_side**2`` tiles at most).
        coarse_px: side of the decimated central view measured first, pixels.

    Returns:
        The co-registration; apply it with ``after.set_pixel_warp(result.warp)``.
    """
    grid = before.grid
    # Coarse pass on the central part of the scene, decimated to about coarse_px: it catches
    # shifts of up to a quarter of that region while reading at most a few megapixels.
    side_c = min(grid.width, 2 * coarse_px)
    side_r = min(grid.height, 2 * coarse_px)
    region = Window((grid.width - side_c) // 2, (grid.height - side_r) // 2, side_c, side_r)
    step = max(1, int(np.ceil(max(side_c, side_r) / coarse_px)))
    shape = (side_r // step, side_c // step)
    b = before.read_raw(region, shape)
    a = after.read_raw(region, shape)
    vb = before.read_valid(region, shape)
    va = after.read_valid(region, shape)
    dx = dy = 0.0
    if vb.mean() > 0.5 and va.mean() > 0.5 and b.std() > 1e-6 and a.std() > 1e-6:
        cdx, cdy, _ = measure_shift(b, a, vb, va)
        dx, dy = cdx * step, cdy * step

    # Full-resolution tiles read with the coarse shift already applied.
    after.set_pixel_warp(Affine.translation(dx, dy))
    tiles = []
    for w in _tile_windows(grid.width, grid.height, tile_px, n_side):
        vb = before.read_valid(w)
        va = after.read_valid(w)
        if vb.mean() < 0.5 or va.mean() < 0.5:
            continue
        b = before.read_raw(w)
        a = after.read_raw(w)
        if np.std(b) < 1e-6 or np.std(a) < 1e-6:
            continue
        tdx, tdy, err = measure_shift(b, a, vb, va)
        tiles.append(
            {
                "col": w.col_off + w.width / 2,
                "row": w.row_off + w.height / 2,
                "dx": tdx + dx,
                "dy": tdy + dy,
                "error": err,
                "kept": True,
            }
        )
    after.set_pixel_warp(Affine.identity())
    if not tiles:
        return Coregistration(dx, dy, Affine.translation(dx, dy), float("nan"), 0, [])

    pts = np.array([[t["col"], t["row"]] for t in tiles], dtype=float)
    sh = np.array([[t["dx"], t["dy"]] for t in tiles], dtype=float)
    med = np.median(sh, axis=0)
    # Tiles over water, fields or heavy change give wild shifts: drop those far from the median.
    dev = np.hypot(*(sh - med).T)
    keep = dev <= max(1.5, 3 * np.median(dev))
    for t, k in zip(tiles, keep, strict=True):
        t["kept"] = bool(k)
    gdx, gdy = (float(v) for v in np.median(sh[keep], axis=0))
    res = sh[keep] - [gdx, gdy]
    warp = Affine.translation(gdx, gdy)
    design = np.column_stack([pts[keep], np.ones(int(keep.sum()))])
    if keep.sum() >= 6 and np.linalg.matrix_rank(design) == 3:
        coef, res_aff = fit_affine_shifts(pts[keep], sh[keep])
        # Keep the affine correction only when it explains clearly more than a plain shift
        # (a quarter less residual, and at least 0.2 px): parallax from tall buildings and
        # off-nadir views scatters tile shifts, and an affine fitted to that scatter is noise.
        rms_shift = float(np.sqrt(np.mean(np.sum(res**2, axis=1))))
        rms_aff = float(np.sqrt(np.mean(np.sum(res_aff**2, axis=1))))
        if rms_aff < 0.75 * rms_shift and rms_shift - rms_aff > 0.2:
            res = res_aff
            warp = Affine(
                1 + coef[0, 0], coef[0, 1], coef[0, 2], coef[1, 0], 1 + coef[1, 1], coef[1, 2]
            )
    residual = float(np.sqrt(np.mean(np.sum(res**2, axis=1))))
    return Coregistration(gdx, gdy, warp, residual, int(keep.sum()), tiles)
