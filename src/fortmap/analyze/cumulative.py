"""Cumulative visibility: how many observers see each cell.

Observers are points in the DEM's projected CRS (metres), usually sampled every N metres along
a line (a road, a front line) or a polygon's boundary with :func:`observers_along`. Each one's
viewshed is the ``fast`` sweep of :mod:`fortmap.analyze.viewshed` with the same definitions
(curvature, refraction, nodata never visible and never blocking).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import shapely
from affine import Affine
from shapely.geometry.base import BaseGeometry

from fortmap.analyze.viewshed import (
    DEFAULT_REFRACTION,
    _as_dem,
    check_params,
    curvature_coefficient,
    observer_cell,
)
from fortmap.errors import InputError

#: Memory (bytes) the per-observer window buffers of one parallel batch may take.
_BATCH_BYTES = 256 * 2**20


def observers_along(geometry: BaseGeometry, spacing_m: float) -> np.ndarray:
    """Points every ``spacing_m`` metres along lines or polygon boundaries, as an (n, 2) array.

    Points and multipoints are returned as they are. Each line (or ring) gets its first vertex,
    then a point every ``spacing_m`` metres of its length, and its last vertex when the length
    is not a multiple of the spacing (closed rings do not repeat the first point).

    Args:
        geometry: shapely geometry in a projected CRS (metres).
        spacing_m: distance between observers along the line, metres (> 0).

    Raises:
        InputError: ``spacing_m <= 0`` or an empty geometry.

    Example:
        >>> from shapely.geometry import LineString
        >>> observers_along(LineString([(0, 0), (25, 0)]), 10).tolist()
        [[0.0, 0.0], [10.0, 0.0], [20.0, 0.0], [25.0, 0.0]]
    """
    if not spacing_m > 0:
        raise InputError(f"observer spacing must be > 0 m, got {spacing_m:g}")
    if geometry is None or geometry.is_empty:
        raise InputError("observer geometry is empty")
    pts: list[np.ndarray] = []
    for part in shapely.get_parts(geometry):
        if part.geom_type == "Point":
            pts.append(np.asarray(part.coords, float)[:, :2])
            continue
        lines = shapely.get_parts(part.boundary) if part.geom_type == "Polygon" else [part]
        for line in lines:
            length = line.length
            dist = np.arange(0.0, length, spacing_m)
            if not line.is_closed and (dist.size == 0 or length - dist[-1] > 1e-9):
                dist = np.append(dist, length)
            xy = shapely.get_coordinates(shapely.line_interpolate_point(line, dist))
            pts.append(xy)
    if not pts:
        raise InputError(f"observer geometry {geometry.geom_type} has no points or lines")
    return np.concatenate(pts, axis=0)


def cumulative_viewshed(
    dem: np.ndarray,
    transform: Affine,
    observers_xy: np.ndarray,
    *,
    observer_height: float = 2.0,
    target_height: float = 0.0,
    max_distance: float | None = None,
    refraction: float = DEFAULT_REFRACTION,
    curvature: bool = True,
    nodata: float | None = None,
    skip_invalid: bool = False,
    eye_ground: np.ndarray | None = None,
    source: str = "DEM",
) -> np.ndarray:
    """Count, for every cell, the observers that see it (``fast`` sweep, multi-core).

    Args:
        dem: 2-D elevations in metres; NaN (or ``nodata``) marks unknown cells.
        transform: north-up affine transform of ``dem`` in a projected CRS (metres).
        observers_xy: (n, 2) observer positions in the DEM's CRS, metres.
        observer_height: eye height above the ground, metres.
        target_height: height of the targets above the ground, metres.
        max_distance: how far each observer sees, metres (None: the whole DEM; a limit makes
            each observer's work proportional to ``max_distance**2``).
        refraction: refraction coefficient k.
        curvature: apply earth curvature and refraction.
        nodata: value marking unknown cells besides NaN.
        skip_invalid: drop observers outside the DEM or on nodata instead of raising.
        eye_ground: heights (m) shaped like ``dem`` that observers stand on instead of ``dem``
            (e.g. the lower of two dates' surfaces, to keep eyes at one height on both).
        source: name of the input, for error messages.

    Returns:
        Counts shaped like ``dem``: uint16 when there are fewer than 65,536 observers, else
        uint32. Nodata cells count 0.

    Raises:
        InputError: an observer outside the DEM or on nodata (unless ``skip_invalid``),
            ``max_distance <= 0``, no observers.
    """
    from fortmap.analyze import viewshed_kernels as k

    max_d = check_params(max_distance, "fast", source)
    z = _as_dem(dem, nodata)
    xy = np.asarray(observers_xy, dtype=float).reshape(-1, 2)
    rc = []
    for x, y in xy:
        try:
            rc.append(observer_cell(z, transform, float(x), float(y), source))
        except InputError:
            if not skip_invalid:
                raise
    if not rc:
        raise InputError(f"{source}: no observer lies on valid DEM cells")
    obs_rc = np.asarray(rc, dtype=np.int64)
    dx, dy = abs(transform.a), abs(transform.e)
    base = z if eye_ground is None else np.asarray(eye_ground, dtype=np.float64)
    if base.shape != z.shape:
        raise InputError(
            f"{source}: eye_ground shape {base.shape} differs from the DEM's {z.shape}"
        )
    eyes = base[obs_rc[:, 0], obs_rc[:, 1]].astype(np.float64) + float(observer_height)
    if not np.isfinite(eyes).all():
        raise InputError(f"{source}: eye_ground is unknown under an observer")
    rows, cols = z.shape
    half_r = rows if math.isinf(max_d) else min(rows, int(math.ceil(max_d / dy)))
    half_c = cols if math.isinf(max_d) else min(cols, int(math.ceil(max_d / dx)))
    win = min(rows, 2 * half_r + 1) * min(cols, 2 * half_c + 1)
    batch = int(np.clip(_BATCH_BYTES // max(win, 1), 1, 4 * numba.get_num_threads()))
    batch = min(batch, len(obs_rc))
    counts = k.cumulative_counts(
        z,
        obs_rc,
        eyes,
        dx,
        dy,
        float(target_height),
        max_d,
        curvature_coefficient(refraction, curvature),
        min(half_r, rows),
        min(half_c, cols),
        batch,
    )
    return counts.astype(np.uint16) if len(obs_rc) < 65536 else counts
