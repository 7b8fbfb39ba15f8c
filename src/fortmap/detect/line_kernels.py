"""Points at unit steps along polylines (numba), the same coordinates as GEOS gives.

``shapely.line_interpolate_point`` walks a line from its start for every point asked, so
sampling a line at every unit of its length costs its length times its vertex count; here each
line is walked once. Units are those of the coordinates (pixels on the overview grid).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True)
def points_at_steps(  # pragma: no cover - compiled
    xy: np.ndarray, ends: np.ndarray, n_steps: np.ndarray
) -> np.ndarray:
    """Points at distances 0, 1, ..., ``n_steps[j] - 1`` along each line ``j``.

    The same numbers as ``shapely.line_interpolate_point(line, float(k))``: GEOS's
    ``LengthLocationMap`` (the first segment whose running length passes the distance, the
    fraction of it, a fraction of 1 moved onto the next vertex; past the end, the last vertex)
    and ``LinearLocation.pointAlongSegmentByFraction``, in the same float64 operations. As
    the distances grow, the segment found never moves back, so one walk serves all of them.

    Args:
        xy: float64 (vertices, 2) coordinates of all lines, line after line.
        ends: int64 (lines,) end offset of each line's vertices in ``xy`` (cumulative counts).
        n_steps: int64 (lines,) points wanted per line.

    Returns:
        float64 (n_steps.sum(), 2) points, line after line.
    """
    out = np.empty((n_steps.sum(), 2), np.float64)
    o = 0
    a = 0
    for j in range(ends.shape[0]):
        b = ends[j]
        m = b - a
        total = 0.0
        i = 0  # segment from vertex a + i
        seg = -1.0
        for k in range(n_steps[j]):
            d = float(k)
            if d <= 0.0 or m == 1:
                out[o, 0], out[o, 1] = xy[a, 0], xy[a, 1]
                o += 1
                continue
            while i < m - 1:
                if seg < 0.0:
                    dx = xy[a + i + 1, 0] - xy[a + i, 0]
                    dy = xy[a + i + 1, 1] - xy[a + i, 1]
                    seg = math.sqrt(dx * dx + dy * dy)
                if total + seg > d:
                    break
                total += seg
                seg = -1.0
                i += 1
            if i >= m - 1:
                out[o, 0], out[o, 1] = xy[b - 1, 0], xy[b - 1, 1]
            else:
                frac = (d - total) / seg
                frac = min(max(frac, 0.0), 1.0)
                p = a + i
                if frac == 1.0:
                    out[o, 0], out[o, 1] = xy[p + 1, 0], xy[p + 1, 1]
                elif frac <= 0.0:
                    out[o, 0], out[o, 1] = xy[p, 0], xy[p, 1]
                else:
                    out[o, 0] = (xy[p + 1, 0] - xy[p, 0]) * frac + xy[p, 0]
                    out[o, 1] = (xy[p + 1, 1] - xy[p, 1]) * frac + xy[p, 1]
            o += 1
        a = b
    return out
