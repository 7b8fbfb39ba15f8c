"""Small geometry helpers of the city plan (``layout``, ``vegetation``, ``osm_city``,
``changes``): wandering polylines, irregular blobs, the line or polygon parts of a geometry,
and rotation of points. Local metres throughout (see ``layout``).
"""

from __future__ import annotations

import numpy as np
from shapely.geometry import LineString, Polygon
from shapely.geometry.base import BaseGeometry


def _walk(
    rng: np.random.Generator, start: np.ndarray, heading: float, step: float, n: int
) -> LineString:
    """A gently wandering polyline whose heading reverts to ``heading`` (radians)."""
    pts, h = [start.copy()], heading
    for _ in range(n):
        h += -0.25 * (h - heading) + rng.normal(0.0, 0.09)
        pts.append(pts[-1] + step * np.array([np.cos(h), np.sin(h)]))
    return LineString(pts)


def _blob(rng: np.random.Generator, cx: float, cy: float, r: float, n: int = 18) -> Polygon:
    """An irregular roundish polygon of mean radius ``r`` metres."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    k = np.arange(1, 4)
    ph = rng.uniform(0, 2 * np.pi, 3)
    amp = rng.uniform(0.05, 0.18, 3)
    rr = r * (1 + (amp[None, :] * np.sin(k[None, :] * t[:, None] + ph[None, :])).sum(1))
    return Polygon(np.c_[cx + rr * np.cos(t), cy + rr * np.sin(t)])


def _lines(geom: BaseGeometry) -> list[LineString]:
    if geom.is_empty:
        return []
    parts = getattr(geom, "geoms", [geom])
    return [g for g in parts if isinstance(g, LineString) and g.length > 1.0]


def _polys(geom: BaseGeometry) -> list[Polygon]:
    if geom.is_empty:
        return []
    parts = getattr(geom, "geoms", [geom])
    return [g for g in parts if isinstance(g, Polygon)]


def _rot(xy: np.ndarray, angle: float, origin: tuple[float, float]) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    d = xy - np.asarray(origin)
    return np.c_[c * d[:, 0] - s * d[:, 1], s * d[:, 0] + c * d[:, 1]] + np.asarray(origin)
