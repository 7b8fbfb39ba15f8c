"""Compiled element-wise passes of the phase correlation in :mod:`fortmap.align.coregister`.

Each kernel performs the same float operations, in the same order, as the numpy expression
it replaces, so the spectra (and the measured shifts) are bit for bit those of numpy. They
only save the full-size temporaries numpy allocates (a float64 tapered image, its complex
cast, and the complex casts of the real divisor and weight).

Every product or sum numpy would do with an exact zero (the imaginary part of a real array
cast to complex) is kept: it decides the sign of zero results, and an exact zero operand also
makes the result independent of whether numpy's loops fuse a multiply and an add.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def taper_complex(g, wy, wx):  # pragma: no cover - compiled
    """``(g * wy * wx).astype(complex128)`` for float32 ``g`` (rows, cols) and float64 tapers
    ``wy`` (rows, 1) and ``wx`` (1, cols): ``g`` is widened to float64 first, as numpy does."""
    h, w = g.shape
    out = np.empty((h, w), np.complex128)
    for i in range(h):
        y = wy[i, 0]
        for j in range(w):
            out[i, j] = complex((np.float64(g[i, j]) * y) * wx[0, j], 0.0)
    return out


@njit(cache=True, nogil=True)
def whiten_band(f, amp, band):  # pragma: no cover - compiled
    """``f / (amp + 1e-9) * band`` in place on complex128 ``f`` (rows, cols), with float64
    ``amp`` (numpy's ``np.abs(f)``) and ``band`` of the same shape.

    numpy casts the real divisor and weight to complex: the division is its complex division
    by ``(d, 0)`` (a reciprocal, then products) and the weight a complex product by ``(b, 0)``.
    """
    h, w = f.shape
    for i in range(h):
        for j in range(w):
            fr = f[i, j].real
            fi = f[i, j].imag
            # numpy's ratio 0 / d is +0 and its scale 1 / (d + 0 * 0) is 1 / d for the
            # d >= 1e-9 here (NaN stays NaN either way)
            scl = 1.0 / (amp[i, j] + 1e-9)
            qr = (fr + fi * 0.0) * scl
            qi = (fi - fr * 0.0) * scl
            b = band[i, j]
            f[i, j] = complex(qr * b - qi * 0.0, qr * 0.0 + qi * b)
    return f
