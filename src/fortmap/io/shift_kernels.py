"""Numba kernels of :class:`fortmap.io.raster.GridReader`'s direct reads, in pixels.

A window on the same CRS and pixel size as the file is read straight from it and shifted by
a sub-pixel offset (``bilinear_shift``), or only converted when the offset is whole
(``scale_native``); both scale per band as ``raw * scale + offset`` in the same float
operations as the numpy code they replaced, so the results are bit-identical.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def bilinear_shift(a, v, w00, w01, w10, w11, scale, offset, do_scale, do_offset):
    """Sub-pixel shift of padded (bands, H+1, W+1) pixels to float32 (bands, H, W), scaled.

    Same float32 operations, in the same order, as the numpy expression it replaces, so the
    result is bit-identical; validity needs all four neighbours.
    """
    nb, h, w = a.shape[0], a.shape[1] - 1, a.shape[2] - 1
    out = np.empty((nb, h, w), np.float32)
    for b in range(nb):
        s, o = scale[b], offset[b]
        for i in range(h):
            for j in range(w):
                x = w00 * np.float32(a[b, i, j])
                x += w01 * np.float32(a[b, i, j + 1])
                x += w10 * np.float32(a[b, i + 1, j])
                x += w11 * np.float32(a[b, i + 1, j + 1])
                if do_scale:
                    x = np.float32(np.float64(x) * s)
                    if do_offset:
                        x = np.float32(np.float64(x) + o)
                out[b, i, j] = x
    valid = np.empty((h, w), np.bool_)
    for i in range(h):
        for j in range(w):
            valid[i, j] = v[i, j] and v[i, j + 1] and v[i + 1, j] and v[i + 1, j + 1]
    return out, valid


@numba.njit(cache=True, nogil=True)
def scale_native(a, scale, offset, do_scale, do_offset):  # pragma: no cover - compiled
    """Native pixels (bands, H, W) to float32, scaled as :func:`bilinear_shift` scales."""
    nb, h, w = a.shape
    out = np.empty((nb, h, w), np.float32)
    for b in range(nb):
        s, o = scale[b], offset[b]
        for i in range(h):
            for j in range(w):
                x = np.float32(a[b, i, j])
                if do_scale:
                    x = np.float32(np.float64(x) * s)
                    if do_offset:
                        x = np.float32(np.float64(x) + o)
                out[b, i, j] = x
    return out
