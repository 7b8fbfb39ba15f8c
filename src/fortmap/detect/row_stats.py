"""Small exact statistics of a block row's pixels, cheaper than numpy's general routines.

A window's rows are made of a few pieces of tens to hundreds of pixels each, measured
hundreds of times a scene; ``np.percentile``'s Python overhead costs several times the sort
of so few values. The helpers here repeat numpy's arithmetic step for step, so they give
the same doubles.
"""

from __future__ import annotations

import math

import numpy as np


def percentile_pair(x: np.ndarray, q_lo: float, q_hi: float) -> tuple[float, float]:
    """``np.percentile(x, (q_lo, q_hi))`` (linear method) of a float array, as two floats.

    numpy takes the virtual index ``(n - 1) * q / 100`` (q divided as a float64), the two
    values around it, their difference in the input's precision and interpolates in float64
    from the nearer end; any NaN makes both NaN. Percentiles are in 0..100. A zero's sign
    may differ (numpy's partition orders -0.0 and 0.0 either way; they compare equal).

    Args:
        x: float values (any shape; flattened), e.g. offsets across a road in pixels.
        q_lo, q_hi: the two percentiles, 0..100.

    Returns:
        The two percentiles, in the unit of ``x``.
    """
    x = np.asarray(x)
    if x.dtype.kind != "f":
        # numpy interpolates integers on its own path: keep it
        lo, hi = np.percentile(x, (q_lo, q_hi))
        return float(lo), float(hi)
    s = np.sort(x.ravel())
    n = s.size
    if n == 0:
        raise IndexError("percentile of an empty array")
    if np.isnan(s[-1]):
        return math.nan, math.nan
    return _lerp_at(s, q_lo / 100), _lerp_at(s, q_hi / 100)


def _lerp_at(s: np.ndarray, q: float) -> float:
    """Quantile ``q`` (0..1) of sorted ``s`` as numpy's linear method computes it."""
    n = s.size
    vi = (n - 1) * q
    if vi >= n - 1:
        return float(s[n - 1])
    if vi < 0:
        return float(s[0])
    k = math.floor(vi)
    t = vi - k
    a, b = s[k], s[k + 1]
    d = float(b - a)  # the difference in the input's precision, as numpy's ``b - a``
    if t >= 0.5:
        return float(b) - d * (1 - t)
    return float(a) + d * t


def nanmedian_rows(v: np.ndarray) -> np.ndarray:
    """``np.nanmedian(v, axis=1)`` of a 2-D float array, without its masked-array path.

    numpy takes the median of each row's non-NaN values from a sort, as the sum of the two
    middle values (one value twice for an odd count) halved in the array's precision; a row
    of NaNs gives NaN (without numpy's warning). Rows of a few samples each, e.g. grey levels
    at a few distances across a row.
    """
    v = np.asarray(v)
    s = np.sort(v, axis=1)  # NaNs sort last
    k = np.count_nonzero(~np.isnan(v), axis=1)
    h = k // 2
    lo_i = np.where(k % 2 == 1, h, h - 1)
    lo = np.take_along_axis(s, lo_i[:, None], axis=1)[:, 0]
    hi = np.take_along_axis(s, h[:, None], axis=1)[:, 0]
    out = (lo + hi) / v.dtype.type(2)
    out[k == 0] = np.nan
    return out
