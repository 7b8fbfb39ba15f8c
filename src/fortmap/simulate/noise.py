"""Cheap random textures: smooth noise made by upsampling coarse white noise."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi


def smooth_noise(
    rng: np.random.Generator, shape: tuple[int, int], scale_px: float, order: int = 1
) -> np.ndarray:
    """Zero-mean, unit-variance-ish noise with features about ``scale_px`` pixels across.

    Coarse Gaussian noise on a lattice ``scale_px`` apart, interpolated up to ``shape``;
    costs one interpolation instead of a large convolution.
    """
    h, w = shape
    s = max(float(scale_px), 1.0)
    ch, cw = int(np.ceil(h / s)) + 2, int(np.ceil(w / s)) + 2
    coarse = rng.standard_normal((ch, cw)).astype(np.float32)
    if s <= 1.0:
        return coarse[:h, :w]
    out = ndi.zoom(coarse, (s, s), order=order, prefilter=False, grid_mode=False)
    return out[:h, :w].astype(np.float32, copy=False)


def fbm(
    rng: np.random.Generator, shape: tuple[int, int], scale_px: float, octaves: int = 3
) -> np.ndarray:
    """Fractal (multi-octave) smooth noise, largest features ``scale_px`` pixels across."""
    out = np.zeros(shape, np.float32)
    amp, s, total = 1.0, float(scale_px), 0.0
    for _ in range(octaves):
        out += amp * smooth_noise(rng, shape, s)
        total += amp
        amp *= 0.5
        s = max(s / 2.0, 1.0)
    out /= total
    return out


@dataclass
class Textures:
    """Random textures shared by both dates (the ground does not re-texture itself), float32.

    Attributes:
        fine: white noise, one value per pixel.
        grain: smooth noise with ~0.6 m features.
        patch: smooth noise with ~1.5 m features.
        broad: two-octave noise with ~15 m features.
    """

    fine: np.ndarray
    grain: np.ndarray
    patch: np.ndarray
    broad: np.ndarray


def make_textures(rng: np.random.Generator, shape: tuple[int, int], gsd: float) -> Textures:
    """The scene's textures for a grid of ``shape`` pixels at ``gsd`` metres per pixel."""
    fine = rng.standard_normal(shape, dtype=np.float32)
    grain = smooth_noise(rng, shape, 0.6 / gsd) if 0.6 / gsd > 1.0 else fine
    return Textures(
        fine, grain, smooth_noise(rng, shape, 1.5 / gsd), fbm(rng, shape, 15.0 / gsd, 2)
    )
