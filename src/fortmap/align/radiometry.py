"""Radiometric normalisation: put both images on one reflectance-like scale.

Two acquisitions differ in sun elevation, haze and sensor gain. We map the before image to
roughly 0..1 per band with a fixed scale, then fit per band a linear map of the after image
onto the before image using only pixels that look unchanged (iteratively reweighted), as in
relative radiometric normalisation with pseudo-invariant features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fortmap.detect.change_stats import median, percentiles


@dataclass
class BandMaps:
    """Per-band linear maps ``value * scale + offset`` for the before and after images."""

    before_scale: np.ndarray
    before_offset: np.ndarray
    after_scale: np.ndarray
    after_offset: np.ndarray

    def as_dict(self) -> dict:
        """JSON-friendly summary."""
        return {k: [round(float(x), 6) for x in v] for k, v in self.__dict__.items()}


def fit_band_maps(
    before: np.ndarray, after: np.ndarray, valid: np.ndarray, iterations: int = 3
) -> BandMaps:
    """Fit the maps on a sample of the scene (the same pixels in both images).

    Args:
        before, after: raw values, (bands, rows, cols), same shape, on the before grid.
        valid: bool (rows, cols), pixels valid in both.
        iterations: reweighting rounds that drop changed pixels from the fit.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> b = rng.uniform(0, 200, (1, 50, 50))
        >>> m = fit_band_maps(b, 0.5 * b + 20, np.ones((50, 50), bool))
        >>> round(float(m.after_scale[0] / m.before_scale[0]), 2)
        2.0
    """
    nb = before.shape[0]
    bs, bo, as_, ao = (np.zeros(nb, np.float64) for _ in range(4))
    # A fixed, spread subsample of 250,000 pixels fits the maps as well as all of them, faster.
    idx = np.flatnonzero(valid.ravel())
    if idx.size > 250_000:
        idx = idx[np.linspace(0, idx.size - 1, 250_000).astype(np.int64)]
    for i in range(nb):
        b = before[i].ravel()[idx].astype(np.float64)
        a = after[i].ravel()[idx].astype(np.float64)
        if b.size < 10:
            bs[i], as_[i] = 1.0, 1.0
            continue
        lo, hi = percentiles(b, [0.5, 99.5])
        bs[i] = 1.0 / max(hi - lo, 1e-6)
        bo[i] = -lo * bs[i]
        bn = b * bs[i] + bo[i]
        # Start from matching robust percentiles, then refit on the pixels that agree.
        alo, ahi = percentiles(a, [2, 98])
        blo, bhi = percentiles(bn, [2, 98])
        g = (bhi - blo) / max(ahi - alo, 1e-6)
        o = blo - alo * g
        for _ in range(iterations):
            r = a * g + o - bn
            mad = median(np.abs(r - median(r))) * 1.4826 + 1e-6
            sel = np.abs(r) < 2.5 * mad
            if sel.sum() < 10:
                break
            # Reduced major axis, not least squares: both images are noisy, and least squares
            # would shrink the gain towards 0 wherever the two dates correlate poorly.
            asel, bsel = a[sel], bn[sel]
            sa, sb = asel.std(), bsel.std()
            if sa < 1e-9 or sb < 1e-9:
                break
            g = sb / sa
            o = bsel.mean() - g * asel.mean()
        as_[i], ao[i] = g, o
    return BandMaps(
        bs.astype(np.float32), bo.astype(np.float32), as_.astype(np.float32), ao.astype(np.float32)
    )
