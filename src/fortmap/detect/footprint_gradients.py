"""Gradient fields of the footprint scorer: Gaussian, Sobel and the direction's 4th harmonic.

Split from :mod:`fortmap.detect.footprint_features` (which re-exports these names). All in
pixel units of the array given; float32 numbers identical to scipy's ``gaussian_filter`` and
``sobel`` with ``mode="nearest"``.
"""

from __future__ import annotations

import numba
import numpy as np
from scipy import ndimage as ndi
from scipy.ndimage import _filters as ndi_filters


def gradients(grey: np.ndarray, smooth_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Whole-array gradient magnitude and direction (radians), Gaussian then Sobel.

    Reference for :func:`gradient_fields` (which :func:`region_stats` reads).
    """
    g = ndi.gaussian_filter(grey, smooth_px, mode="nearest")
    gx = ndi.sobel(g, axis=1, mode="nearest")
    gy = ndi.sobel(g, axis=0, mode="nearest")
    return np.hypot(gx, gy).astype(np.float32), np.arctan2(gy, gx).astype(np.float32)


def gradient_fields(grey: np.ndarray, smooth_px: float) -> tuple[np.ndarray, ...]:
    """Gradient magnitude and the direction's 4th harmonic, ``cos 4 phi`` and ``sin 4 phi``.

    Same smoothing and Sobel as :func:`gradients`, computed once per window; the harmonic
    comes from the gradient's 4th power (no atan2 or cos per pixel), so that each footprint's
    ``cos 4(phi - theta)`` is two multiplications (:func:`region_stats`). One numba pass
    (:func:`_fields_kernel`) gives the same float32 numbers as :func:`_gradient_fields_numpy`.
    """
    g = np.ascontiguousarray(grey, np.float32)
    if g.ndim != 2 or min(g.shape) == 0:
        return _gradient_fields_numpy(grey, smooth_px)
    radius = int(4.0 * float(smooth_px) + 0.5)  # scipy's default truncate of 4 sigmas
    # scipy's own weights, reversed for a correlation as gaussian_filter1d does
    weights = np.ascontiguousarray(ndi_filters._gaussian_kernel1d(smooth_px, 0, radius)[::-1])
    if not np.array_equal(weights, weights[::-1]):
        return _gradient_fields_numpy(grey, smooth_px)
    return _fields_kernel(g, weights)


def _gradient_fields_numpy(grey: np.ndarray, smooth_px: float) -> tuple[np.ndarray, ...]:
    """Reference of :func:`gradient_fields`: scipy's Gaussian and Sobel, then numpy."""
    g = ndi.gaussian_filter(grey, smooth_px, mode="nearest")
    gx = ndi.sobel(g, axis=1, mode="nearest")
    gy = ndi.sobel(g, axis=0, mode="nearest")
    a = gx * gx - gy * gy
    b = 2 * gx * gy
    m2 = a * a + b * b  # |g|^4
    with np.errstate(invalid="ignore", divide="ignore"):
        inv = np.where(m2 > 0, 1.0 / m2, 0.0).astype(np.float32)
    mag = np.sqrt(gx * gx + gy * gy)
    return mag, (a * a - b * b) * inv, 2 * a * b * inv


@numba.njit(cache=True, nogil=True)
def _fields_kernel(grey, gauss):  # pragma: no cover - compiled
    """Gaussian (both axes), Sobel and the fields of :func:`gradient_fields`, in float32.

    Row by row: the Gaussian in two 1-D passes and the column difference
    (:func:`_smooth_row`), then the Sobel's 3-tap passes and the fields fused
    (:func:`_sobel_fields_row`), with the float64 sums of scipy's ``NI_Correlate1D`` in its
    order (``x0 * w0``, then the outermost pair first; edges extended with the end values),
    so the same numbers. The smoothed rows and their differences are kept for three rows
    only: whole arrays cost more in fresh memory than in arithmetic.
    """
    h, w = grey.shape
    acc = np.empty(w, np.float64)
    buf = np.empty(w + 2 * (gauss.shape[0] // 2), np.float64)
    row = np.empty(w, np.float32)
    y = np.empty(w, np.float32)
    g = np.empty((3, w), np.float32)  # smoothed rows k at k % 3
    dx = np.empty((3, w), np.float32)  # their column differences
    mag = np.empty((h, w), np.float32)
    c4 = np.empty((h, w), np.float32)
    s4 = np.empty((h, w), np.float32)
    done = 0  # rows smoothed so far
    for r in range(h):
        rm, rp = max(r - 1, 0), min(r + 1, h - 1)
        while done <= rp:
            _smooth_row(grey, done, gauss, acc, buf, row, g[done % 3], dx[done % 3])
            done += 1
        _sobel_fields_row(
            g[rm % 3], g[r % 3], g[rp % 3], dx[rm % 3], dx[r % 3], dx[rp % 3], row, y, mag[r],
            c4[r], s4[r],
        )  # fmt: skip
    return mag, c4, s4


@numba.njit(cache=True, nogil=True, inline="always")
def _diff3(x, m, p):  # pragma: no cover - compiled
    """scipy's correlation with (-1, 0, 1) at one pixel: centre ``x``, neighbours ``m``
    (before) and ``p`` (after), float32 in, float32 out, the sum in float64."""
    acc = np.float64(x) * 0.0
    acc += (np.float64(m) - np.float64(p)) * -1.0
    return np.float32(acc)


@numba.njit(cache=True, nogil=True, inline="always")
def _smooth3(x, m, p):  # pragma: no cover - compiled
    """scipy's correlation with (1, 2, 1) at one pixel, as :func:`_diff3`."""
    acc = np.float64(x) * 2.0
    acc += (np.float64(m) + np.float64(p)) * 1.0
    return np.float32(acc)


@numba.njit(cache=True, nogil=True)
def _smooth_row(grey, k, fw, acc, buf, col, out, dx):  # pragma: no cover - compiled
    """Row ``k`` of the Gaussian ``fw`` (symmetric, odd length) down the columns then along
    the row, into float32 ``out`` (W,), and its (-1, 0, 1) difference along the row into
    ``dx``; ``acc`` (W), ``buf`` (W + len(fw) - 1) float64 and ``col`` (W) float32 scratch.

    Loops run from 0 over row views with constant offsets: an index whose sign numba cannot
    see keeps a negative-index check in the loop, and then nothing vectorises.
    """
    h, w = grey.shape
    size1 = fw.shape[0] // 2
    w0 = fw[size1]
    src = grey[k]
    for i in range(w):
        acc[i] = np.float64(src[i]) * w0
    for jj in range(-size1, 0):
        rl, rh, wj = min(max(k + jj, 0), h - 1), min(max(k - jj, 0), h - 1), fw[size1 + jj]
        xl, xh = grey[rl], grey[rh]
        for i in range(w):
            acc[i] += (np.float64(xl[i]) + np.float64(xh[i])) * wj
    for i in range(w):
        col[i] = np.float32(acc[i])
    # along the row: buf[i] holds column i - size1, edges extended
    for i in range(w + 2 * size1):
        buf[i] = np.float64(col[min(max(i - size1, 0), w - 1)])
    bc = buf[size1 : size1 + w]
    for i in range(w):
        acc[i] = bc[i] * w0
    for jj in range(-size1, 0):
        wj = fw[size1 + jj]
        xl, xh = buf[size1 + jj : size1 + jj + w], buf[size1 - jj : size1 - jj + w]
        for i in range(w):
            acc[i] += (xl[i] + xh[i]) * wj
    for i in range(w):
        out[i] = np.float32(acc[i])
    _diff_row(out, dx)


@numba.njit(cache=True, nogil=True)
def _diff_row(src, out):  # pragma: no cover - compiled
    """(-1, 0, 1) correlation of ``src`` along the row, ends extended with the end values."""
    w = src.shape[0]
    if w > 2:
        xm, x0, xp, o = src[: w - 2], src[1 : w - 1], src[2:], out[1 : w - 1]
        for i in range(w - 2):
            o[i] = _diff3(x0[i], xm[i], xp[i])
    out[0] = _diff3(src[0], src[0], src[min(1, w - 1)])
    if w > 1:
        out[w - 1] = _diff3(src[w - 1], src[w - 2], src[w - 1])


@numba.njit(cache=True, nogil=True)
def _sobel_fields_row(gm, g0, gp, dm, d0, dp, row, y, mag, c4, s4):  # pragma: no cover
    """One row of the Sobel (gx: (1, 2, 1) down the column difference ``d*``; gy: (-1, 0, 1)
    down the smoothed rows ``g*``, then (1, 2, 1) along) and of the fields. ``*m``/``*p``:
    the rows above and below (the row itself at an edge); ``row``, ``y`` float32 scratch."""
    w = g0.shape[0]
    two = np.float32(2.0)
    one = np.float32(1.0)
    for i in range(w):
        row[i] = _diff3(g0[i], gm[i], gp[i])
    if w > 2:
        rm, r0, rp, yo = row[: w - 2], row[1 : w - 1], row[2:], y[1 : w - 1]
        for i in range(w - 2):
            yo[i] = _smooth3(r0[i], rm[i], rp[i])
    y[0] = _smooth3(row[0], row[0], row[min(1, w - 1)])
    if w > 1:
        y[w - 1] = _smooth3(row[w - 1], row[w - 2], row[w - 1])
    for i in range(w):
        x = _smooth3(d0[i], dm[i], dp[i])
        yi = y[i]
        a = x * x - yi * yi
        b = two * x * yi
        m2 = a * a + b * b
        inv = one / m2 if m2 > 0 else np.float32(0.0)
        mag[i] = np.sqrt(x * x + yi * yi)
        c4[i] = (a * a - b * b) * inv
        s4[i] = two * a * b * inv
