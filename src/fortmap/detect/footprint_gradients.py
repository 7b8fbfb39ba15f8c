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
def _pass_row(src, fw, anti, buf, acc, out):  # pragma: no cover - compiled
    """One row of ``scipy.ndimage.correlate1d(src, fw, axis=1, mode="nearest")`` in float32.

    scipy's ``NI_Correlate1D`` for a symmetric (``anti``: antisymmetric) kernel: edges
    extended with the end values, each sum in float64 in scipy's order (``x0 * w0``, then the
    outermost pair first), rounded to float32 once. ``src`` (W,) in, ``out`` (W,);
    ``buf`` (W + len(fw) - 1) and ``acc`` (W) are float64 scratch.
    """
    w = src.shape[0]
    size1 = fw.shape[0] // 2
    w0 = fw[size1]
    for c in range(-size1, w + size1):
        buf[c + size1] = np.float64(src[min(max(c, 0), w - 1)])
    # tap by tap over the whole row (each sum still in scipy's order): the inner loops
    # vectorise
    for c in range(w):
        acc[c] = buf[c + size1] * w0
    for jj in range(-size1, 0):
        wj = fw[size1 + jj]
        for c in range(w):
            x, y = buf[c + size1 + jj], buf[c + size1 - jj]
            acc[c] += ((x - y) if anti else (x + y)) * wj
    for c in range(w):
        out[c] = np.float32(acc[c])


@numba.njit(cache=True, nogil=True)
def _pass_col(src, r, fw, anti, acc, out):  # pragma: no cover - compiled
    """Row ``r`` of the same correlation along axis 0 (as :func:`_pass_row`) into float32
    ``out`` (W,); ``acc`` is float64 scratch (W,)."""
    h, w = src.shape
    size1 = fw.shape[0] // 2
    w0 = fw[size1]
    for c in range(w):
        acc[c] = np.float64(src[r, c]) * w0
    for jj in range(-size1, 0):
        lo, hi, wj = min(max(r + jj, 0), h - 1), min(max(r - jj, 0), h - 1), fw[size1 + jj]
        for c in range(w):
            x, y = np.float64(src[lo, c]), np.float64(src[hi, c])
            acc[c] += ((x - y) if anti else (x + y)) * wj
    for c in range(w):
        out[c] = np.float32(acc[c])


@numba.njit(cache=True, nogil=True)
def _fields_kernel(grey, gauss):  # pragma: no cover - compiled
    """Gaussian (both axes), Sobel and the fields of :func:`gradient_fields`, in float32.

    Row by row: the Gaussian in two 1-D passes (:func:`_pass_col`, :func:`_pass_row`), the
    Sobel's 3-tap passes and the fields fused (:func:`_diff_row`, :func:`_sobel_fields_row`),
    with the same float64 sums in scipy's order, so the same numbers. The smoothed rows and
    their differences are kept for three rows only: whole arrays cost more in fresh memory
    than in arithmetic.
    """
    h, w = grey.shape
    acc = np.empty(w, np.float64)
    buf = np.empty(w + 2 * (gauss.shape[0] // 2) + 2, np.float64)
    row = np.empty(w, np.float32)
    g = np.empty((3, w), np.float32)  # smoothed rows k at k % 3
    dx = np.empty((3, w), np.float32)  # their column differences
    mag = np.empty((h, w), np.float32)
    c4 = np.empty((h, w), np.float32)
    s4 = np.empty((h, w), np.float32)
    done = 0  # rows smoothed so far
    for r in range(h):
        rm, rp = max(r - 1, 0), min(r + 1, h - 1)
        while done <= rp:
            k = done % 3
            _pass_col(grey, done, gauss, False, acc, row)
            _pass_row(row, gauss, False, buf, acc, g[k])
            _diff_row(g[k], dx[k])
            done += 1
        _sobel_fields_row(
            g[rm % 3], g[r % 3], g[rp % 3], dx[rm % 3], dx[r % 3], dx[rp % 3], row, mag[r],
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
def _diff_row(src, out):  # pragma: no cover - compiled
    """:func:`_pass_row` of ``src`` with (-1, 0, 1): ends extended with the end values."""
    w = src.shape[0]
    for c in range(1, w - 1):
        out[c] = _diff3(src[c], src[c - 1], src[c + 1])
    out[0] = _diff3(src[0], src[0], src[min(1, w - 1)])
    if w > 1:
        out[w - 1] = _diff3(src[w - 1], src[w - 2], src[w - 1])


@numba.njit(cache=True, nogil=True)
def _sobel_fields_row(gm, g0, gp, dm, d0, dp, row, mag, c4, s4):  # pragma: no cover
    """One row of the Sobel (gx: (1, 2, 1) down the column difference ``d*``; gy: (-1, 0, 1)
    down the smoothed rows ``g*``, then (1, 2, 1) along) and of the fields. ``*m``/``*p``:
    the rows above and below (the row itself at an edge); ``row`` is float32 scratch."""
    w = g0.shape[0]
    two = np.float32(2.0)
    one = np.float32(1.0)
    for c in range(w):
        row[c] = _diff3(g0[c], gm[c], gp[c])
    for c in range(w):
        x = _smooth3(d0[c], dm[c], dp[c])
        y = _smooth3(row[c], row[max(c - 1, 0)], row[min(c + 1, w - 1)])
        a = x * x - y * y
        b = two * x * y
        m2 = a * a + b * b
        inv = one / m2 if m2 > 0 else np.float32(0.0)
        mag[c] = np.sqrt(x * x + y * y)
        c4[c] = (a * a - b * b) * inv
        s4[c] = two * a * b * inv
