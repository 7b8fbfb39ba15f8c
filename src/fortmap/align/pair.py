"""Align an image pair for change detection: co-register the after image onto the before
one, then fit each date's radiometric map on a sample of the scene."""

from __future__ import annotations

import numpy as np
from affine import Affine

from fortmap.align.coregister import Coregistration, coregister
from fortmap.align.radiometry import BandMaps, fit_band_maps
from fortmap.errors import InputError
from fortmap.io.grids import sample_mosaic
from fortmap.io.raster import GridReader
from fortmap.types import Grid


def coregister_pair(before: GridReader, after: GridReader, mode: str = "auto") -> Coregistration:
    """Co-register ``after`` onto ``before`` and set the after reader's pixel warp.

    Args:
        before, after: readers of the two images on the analysis grid.
        mode: ``auto`` (the global shift plus an affine correction where it clearly helps),
            ``shift`` (the global sub-pixel shift only) or ``none`` (measured, not applied).

    Returns:
        The fitted co-registration, its ``warp`` the one applied and ``mode`` set.
    """
    coreg = coregister(before, after)
    if mode == "shift":
        coreg.warp = Affine.translation(coreg.dx, coreg.dy)
    elif mode == "none":
        coreg.warp = Affine.identity()
    coreg.mode = mode
    after.set_pixel_warp(coreg.warp)
    return coreg


def normalise_pair(
    before: GridReader, after: GridReader, grid: Grid, sample_px: int, grey: bool
) -> tuple[BandMaps, np.ndarray, np.ndarray, np.ndarray]:
    """Fit the two dates' radiometric maps on a mosaic sample and set them on the readers.

    Args:
        before, after: readers on ``grid`` (the after one already warped).
        grid: the analysis grid.
        sample_px: side of the sample mosaic's tiles, pixels.
        grey: compare grey levels (the band counts differ and one image has fewer than 3);
            the maps are then fitted on the grey sample and applied after averaging, so the
            readers get no per-band scale.

    Returns:
        (the band maps; the normalised before and after samples, bands x rows x cols; the
        sample's valid mask).

    Raises:
        InputError: no valid pixel of the after image overlaps the before one.
    """
    sb, sa, sv = sample_mosaic(before, after, grid, sample_px)
    if grey:
        sb, sa = sb.mean(axis=0, keepdims=True), sa.mean(axis=0, keepdims=True)
    if sv.mean() < 0.001:
        raise InputError(
            f"{after.path}: no valid pixels overlap {before.path} (all nodata or masked)"
        )
    maps = fit_band_maps(sb, sa, sv)
    if grey:
        before.scale = after.scale = None
    else:
        before.scale, before.offset = maps.before_scale, maps.before_offset
        after.scale, after.offset = maps.after_scale, maps.after_offset
    nb_s = sb * maps.before_scale[:, None, None] + maps.before_offset[:, None, None]
    na_s = sa * maps.after_scale[:, None, None] + maps.after_offset[:, None, None]
    return maps, nb_s, na_s, sv
