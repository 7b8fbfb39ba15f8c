"""What the clearing opened up: ground seen from the defended edge before and after.

Observers stand every ``spacing_m`` metres along the edge (a line, or a polygon's boundary),
``observer_height`` metres above the surface under them (the lower of the two dates' surfaces,
so that the posts stay where they were), and look ``max_distance`` metres at
targets ``target_height`` metres above the surface (:mod:`fortmap.analyze.cumulative`, the
``fast`` sweep, with earth curvature and refraction). Both surfaces are resampled onto one
coarser analysis grid (``resolution_m``) with the **maximum** of the fine cells, so that a wall
thinner than a cell still blocks sight; a target next to a wall is then lifted to the wall's
height, which costs at most one cell of seen ground along each wall, the same on both dates.

The *field* is the ground the numbers count: cells within ``max_distance`` of the edge, and,
when the edge is a polygon, outside it (the approaches, not the defended area itself).
Distances to the edge are Euclidean distance transforms on the analysis grid (within half a
cell of the exact distance). Compass sectors are bearings from the edge's centroid, clockwise
from grid north (the CRS's north, within the UTM convergence of true north).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from affine import Affine
from rasterio import features
from rasterio.crs import CRS
from rasterio.warp import Resampling
from scipy import ndimage as ndi
from shapely.geometry.base import BaseGeometry

from fortmap.analyze.cumulative import cumulative_viewshed, observers_along
from fortmap.analyze.surface import as_edge, warp_to_grid
from fortmap.analyze.viewshed import DEFAULT_REFRACTION, NODATA, check_projected, write_mask
from fortmap.errors import InputError
from fortmap.report.layers import findings_frame
from fortmap.types import Grid

#: The 16 compass sectors, each 22.5 degrees wide and centred on its bearing.
SECTORS: tuple[str, ...] = (
    "N", "NNE", "NE", "ENE", "E", "ESE", "SE", "SSE",
    "S", "SSW", "SW", "WSW", "W", "WNW", "NW", "NNW",
)  # fmt: skip
#: Distance bands (m from the edge) of the summary's open ground.
BANDS_M: tuple[float, ...] = (500.0, 1000.0)
#: Layer states, in the order the layer lists them.
STATES: tuple[str, ...] = ("seen_before", "seen_after", "newly_seen", "no_longer_seen")


@dataclass
class VisibilityResult:
    """Visibility from the edge on both dates, on the analysis grid.

    Attributes:
        grid: the analysis grid (CRS of the inputs, ``resolution_m`` cells).
        before: uint16 count of observers seeing each cell before (0 on nodata cells).
        after: the same after.
        valid: bool, True where both surfaces are known.
        field: bool, the cells the layer and summary count (see the module docstring).
        edge: the edge (CRS metres) the observers stood on.
        observers: (n, 2) observer positions used, CRS metres.
        layer: ``visibility`` findings layer, one (multi)polygon per state in :data:`STATES`.
        summary: figures for ``summary.json`` (areas in km2, distances in metres).
    """

    grid: Grid
    before: np.ndarray
    after: np.ndarray
    valid: np.ndarray
    field: np.ndarray
    edge: BaseGeometry
    observers: np.ndarray
    layer: gpd.GeoDataFrame
    summary: dict = field(default_factory=dict)


def _analysis_grid(
    shape: tuple[int, int],
    transform: Affine,
    crs: CRS,
    edge: BaseGeometry,
    reach_m: float,
    res_m: float,
) -> Grid:
    """The part of the surface within ``reach_m`` of the edge, on ``res_m`` cells (never finer)."""
    t = transform
    if t.b != 0 or t.d != 0:
        raise InputError("surface: grid is rotated; warp it north-up first")
    res = max(float(res_m), abs(t.a), abs(t.e))
    left, top = t.c, t.f
    right, bottom = t.c + t.a * shape[1], t.f + t.e * shape[0]
    left, right = min(left, right), max(left, right)
    bottom, top = min(bottom, top), max(bottom, top)
    ex0, ey0, ex1, ey1 = edge.bounds
    x0, y0 = max(left, ex0 - reach_m), max(bottom, ey0 - reach_m)
    x1, y1 = min(right, ex1 + reach_m), min(top, ey1 + reach_m)
    if not (x1 > x0 and y1 > y0):
        raise InputError("surface: the edge and its surroundings lie outside the surface")
    # snap to the surface's own cell corners so that max-resampling takes whole fine cells
    x0 = left + math.floor((x0 - left) / abs(t.a)) * abs(t.a)
    y1 = top - math.floor((top - y1) / abs(t.e)) * abs(t.e)
    width = max(1, math.ceil((x1 - x0) / res))
    height = max(1, math.ceil((y1 - y0) / res))
    return Grid(crs, Affine(res, 0, x0, 0, -res, y1), width, height)


def _distance_to_edge(edge: BaseGeometry, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """(distance in m from each cell centre to the edge's lines, mask of cells inside polygons)."""
    shape = (grid.height, grid.width)
    lines = shapely.boundary(edge) if edge.geom_type.endswith("Polygon") else edge
    parts = [p.boundary if p.geom_type.endswith("Polygon") else p for p in shapely.get_parts(lines)]
    on_edge = features.rasterize(
        [(p, 1) for p in parts], out_shape=shape, transform=grid.transform, all_touched=True
    ).astype(bool)
    polys = [p for p in shapely.get_parts(edge) if p.geom_type.endswith("Polygon")]
    inside = np.zeros(shape, bool)
    if polys:
        inside = features.rasterize(
            [(p, 1) for p in polys], out_shape=shape, transform=grid.transform
        ).astype(bool)
    if not on_edge.any():
        raise InputError("edge: lies outside the analysed surface")
    dist = ndi.distance_transform_edt(~on_edge, sampling=grid.res).astype(np.float32)
    return dist, inside


def _polygons(mask: np.ndarray, grid: Grid) -> BaseGeometry:
    """The cells of ``mask`` as one MultiPolygon (CRS metres)."""
    rings = [
        g["coordinates"]
        for g, v in features.shapes(mask.astype(np.uint8), mask=mask, transform=grid.transform)
        if v == 1
    ]
    if not rings:
        return shapely.MultiPolygon()
    # one GeoJSON parse for all parts: building thousands of polygons one by one is 10x slower
    return shapely.from_geojson(json.dumps({"type": "MultiPolygon", "coordinates": rings}))


def _sectors(
    seen_b: np.ndarray,
    seen_a: np.ndarray,
    dist: np.ndarray,
    grid: Grid,
    centre: tuple[float, float],
) -> list[dict]:
    rows, cols = np.indices((grid.height, grid.width), dtype=np.float32)
    x, y = grid.transform @ (cols + 0.5, rows + 0.5)
    az = np.degrees(np.arctan2(x - centre[0], y - centre[1])) % 360.0
    sector = (np.floor((az + 11.25) / 22.5).astype(np.int64)) % 16
    out = []
    for k, name in enumerate(SECTORS):
        ins = sector == k
        far = [float(dist[ins & s].max()) if (ins & s).any() else 0.0 for s in (seen_b, seen_a)]
        out.append(
            {
                "sector": name,
                "azimuth_deg": k * 22.5,
                "farthest_before_m": round(far[0], 1),
                "farthest_after_m": round(far[1], 1),
            }
        )
    return out


def visibility_change(
    surface_before: np.ndarray,
    surface_after: np.ndarray,
    transform: Affine,
    crs: CRS | str,
    edge: BaseGeometry,
    *,
    after_transform: Affine | None = None,
    after_crs: CRS | str | None = None,
    spacing_m: float = 50.0,
    observer_height: float = 2.0,
    target_height: float = 1.5,
    max_distance: float = 2000.0,
    resolution_m: float = 2.0,
    refraction: float = DEFAULT_REFRACTION,
    nodata: float | None = None,
    fixed_eyes: bool = True,
    date_before: str = "",
    date_after: str = "",
) -> VisibilityResult:
    """Ground seen from the edge before and after, what was newly seen, and a summary.

    Args:
        surface_before: heights in metres (DSM, or DEM plus buildings), NaN for unknown.
        surface_after: the same after; on the before grid unless ``after_transform`` or
            ``after_crs`` say otherwise (then it is resampled, with a warning).
        transform: north-up affine transform of ``surface_before`` (projected CRS, metres).
        crs: CRS of ``surface_before``, also that of ``edge`` and of the results.
        edge: the defended edge, a line or polygon (multi-parts allowed), CRS metres.
        after_transform: transform of ``surface_after`` when it differs.
        after_crs: CRS of ``surface_after`` when it differs.
        spacing_m: distance between observers along the edge, metres.
        observer_height: eye height above the surface, metres.
        target_height: height above the surface of what is to be seen (a person: 1.5 m).
        max_distance: how far each observer looks, metres.
        resolution_m: cell size of the analysis grid, metres (never finer than the surface's).
        refraction: atmospheric refraction coefficient k.
        nodata: value marking unknown cells besides NaN.
        fixed_eyes: stand each observer on the lower of the two surfaces on both dates, so
            that only the change in front of the edge counts (a razed roof under an observer
            post would otherwise lower the eye after); False: on each date's own surface.
        date_before, date_after: ISO dates written into the layer.

    Returns:
        A :class:`VisibilityResult`.

    Raises:
        InputError: geographic or non-metric CRS, rotated grid, an edge with no line or
            polygon, an edge outside the surface, no observer on known ground, bad distances.
    """
    crs = CRS.from_user_input(crs)
    check_projected(crs, "surface")
    edge = as_edge(edge)
    if not max_distance > 0 or not spacing_m > 0 or not resolution_m > 0:
        raise InputError("visibility: max_distance, spacing_m and resolution_m must be > 0 m")
    zb = np.asarray(surface_before)
    za = np.asarray(surface_after)
    if zb.ndim != 2 or za.ndim != 2:
        raise InputError("surface: surfaces must be 2-D arrays of heights")
    a_tr = transform if after_transform is None else after_transform
    a_crs = crs if after_crs is None else CRS.from_user_input(after_crs)
    if za.shape != zb.shape or not a_tr.almost_equals(transform) or a_crs != crs:
        warnings.warn(
            "surface: the after surface's grid differs from the before one; resampling it onto "
            "the analysis grid",
            stacklevel=2,
        )
    grid = _analysis_grid(zb.shape, transform, crs, edge, max_distance, resolution_m)
    obs = observers_along(edge, spacing_m)
    kw = {
        "observer_height": observer_height,
        "target_height": target_height,
        "max_distance": max_distance,
        "refraction": refraction,
    }
    sb, valid, before, after = _seen_from(
        grid, obs, (zb, transform, crs), (za, a_tr, a_crs), nodata, fixed_eyes, kw
    )
    dist, inside = _distance_to_edge(edge, grid)
    fld = valid & (dist <= max_distance) & ~inside
    seen_b = (before > 0) & fld
    seen_a = (after > 0) & fld
    masks = {
        "seen_before": seen_b,
        "seen_after": seen_a,
        "newly_seen": seen_a & ~seen_b,
        "no_longer_seen": seen_b & ~seen_a,
    }
    cell_m2 = grid.res[0] * grid.res[1]
    n_obs = int(_n_valid_observers(obs, sb, grid))
    geoms = [_polygons(masks[s], grid) for s in STATES]
    evidence = [
        {"cells": int(masks[s].sum()), "cell_m": grid.res[0], "observers": n_obs} for s in STATES
    ]
    layer = findings_frame(
        "visibility",
        geoms,
        [1.0] * len(STATES),
        crs,
        date_before=date_before,
        date_after=date_after,
        evidence=evidence,
        extra={"state": list(STATES)},
    )
    # areas from cell counts: the polygons are those cells exactly, so the two agree
    km2 = {s: float(masks[s].sum()) * cell_m2 / 1e6 for s in STATES}
    centre = edge.centroid
    summary = {
        "edge_length_m": round(
            float(
                shapely.length(
                    shapely.boundary(edge) if edge.geom_type.endswith("Polygon") else edge
                )
            ),
            1,
        ),
        "observers": n_obs,
        "spacing_m": spacing_m,
        "observer_height_m": observer_height,
        "target_height_m": target_height,
        "max_distance_m": max_distance,
        "resolution_m": grid.res[0],
        "field_km2": round(float(fld.sum()) * cell_m2 / 1e6, 4),
        "seen_before_km2": round(km2["seen_before"], 4),
        "seen_after_km2": round(km2["seen_after"], 4),
        "gain_km2": round(km2["seen_after"] - km2["seen_before"], 4),
        "newly_seen_km2": round(km2["newly_seen"], 4),
        "no_longer_seen_km2": round(km2["no_longer_seen"], 4),
        "open_ground_km2": {
            f"{int(b)}m": {
                "before": round(float((seen_b & (dist <= b)).sum()) * cell_m2 / 1e6, 4),
                "after": round(float((seen_a & (dist <= b)).sum()) * cell_m2 / 1e6, 4),
            }
            for b in BANDS_M
        },
        "sectors": _sectors(seen_b, seen_a, dist, grid, (centre.x, centre.y)),
    }
    return VisibilityResult(grid, before, after, valid, fld, edge, obs, layer, summary)


def gain_samples(
    surface_before: np.ndarray,
    surface_after: np.ndarray,
    transform: Affine,
    crs: CRS | str,
    edge: BaseGeometry,
    offsets: Iterable[np.ndarray],
    *,
    spacing_m: float = 50.0,
    observer_height: float = 2.0,
    target_height: float = 1.5,
    max_distance: float = 2000.0,
    resolution_m: float = 2.0,
    refraction: float = DEFAULT_REFRACTION,
    fixed_eyes: bool = True,
) -> np.ndarray:
    """The gain (km2) of :func:`visibility_change` with each of ``offsets`` added to both surfaces.

    For propagating an error that both dates share (a DEM's): each offset (m, on the
    surfaces' grid) is added to the before and the after surface alike, and only the areas
    are counted (no layer, no sectors), with the same observers, field and definitions.

    Args:
        surface_before, surface_after: heights in metres on one grid, NaN for unknown.
        transform: their north-up affine transform (projected CRS, metres).
        crs: their CRS, also that of ``edge``.
        edge: the defended edge, CRS metres.
        offsets: height offsets in metres, each shaped like the surfaces (NaN counts as 0).
        spacing_m, observer_height, target_height, max_distance, resolution_m, refraction,
            fixed_eyes: as in :func:`visibility_change`.

    Returns:
        float64 array of gains (km2, seen after minus seen before), one per offset.

    Raises:
        InputError: as :func:`visibility_change`; an offset or the after surface shaped
            unlike the before surface.
    """
    crs = CRS.from_user_input(crs)
    check_projected(crs, "surface")
    edge = as_edge(edge)
    zb = np.asarray(surface_before, dtype=np.float32)
    za = np.asarray(surface_after, dtype=np.float32)
    if zb.ndim != 2 or za.shape != zb.shape:
        raise InputError("surface: the before and after surfaces must be 2-D and alike")
    grid = _analysis_grid(zb.shape, transform, crs, edge, max_distance, resolution_m)
    obs = observers_along(edge, spacing_m)
    dist, inside = _distance_to_edge(edge, grid)
    cell_km2 = grid.res[0] * grid.res[1] / 1e6
    kw = {
        "observer_height": observer_height,
        "target_height": target_height,
        "max_distance": max_distance,
        "refraction": refraction,
    }
    gains = []
    for off in offsets:
        off = np.nan_to_num(np.asarray(off, dtype=np.float32), nan=0.0)
        if off.shape != zb.shape:
            raise InputError(f"offset: shape {off.shape} is not the surfaces' {zb.shape}")
        _, valid, before, after = _seen_from(
            grid, obs, (zb + off, transform, crs), (za + off, transform, crs), None, fixed_eyes, kw
        )
        fld = valid & (dist <= max_distance) & ~inside
        n = int(((after > 0) & fld).sum()) - int(((before > 0) & fld).sum())
        gains.append(n * cell_km2)
    return np.asarray(gains, dtype=float)


def _seen_from(
    grid: Grid,
    obs: np.ndarray,
    before: tuple[np.ndarray, Affine, CRS],
    after: tuple[np.ndarray, Affine, CRS],
    nodata: float | None,
    fixed_eyes: bool,
    kw: dict,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Both surfaces (heights in m, each with its transform and CRS) on the analysis ``grid``
    and the observers seeing each cell on either date; returns (before surface on the grid,
    valid cells, count before, count after). ``kw``: the viewshed's heights, distance and
    refraction (see :func:`fortmap.analyze.cumulative.cumulative_viewshed`)."""
    sb = warp_to_grid(*before, grid, resampling=Resampling.max, nodata=nodata)
    sa = warp_to_grid(*after, grid, resampling=Resampling.max, nodata=nodata)
    # a cell unknown on one date is unknown on both, so that it cannot count as a change
    valid = np.isfinite(sb) & np.isfinite(sa)
    sb[~valid] = np.nan
    sa[~valid] = np.nan
    eye = np.fmin(sb, sa) if fixed_eyes else None
    kw = {**kw, "skip_invalid": True, "eye_ground": eye}
    seen_b = cumulative_viewshed(sb, grid.transform, obs, source="surface before", **kw)
    seen_a = cumulative_viewshed(sa, grid.transform, obs, source="surface after", **kw)
    return sb, valid, seen_b, seen_a


def _n_valid_observers(obs: np.ndarray, z: np.ndarray, grid: Grid) -> int:
    cols, rows = ~grid.transform @ (obs[:, 0], obs[:, 1])
    r, c = np.floor(rows).astype(int), np.floor(cols).astype(int)
    ok = (r >= 0) & (r < grid.height) & (c >= 0) & (c < grid.width)
    ok[ok] = np.isfinite(z[r[ok], c[ok]])
    return int(ok.sum())


def write_visibility(result: VisibilityResult, out_dir: str | Path) -> list[Path]:
    """Write ``visibility_before.tif`` and ``visibility_after.tif`` into ``out_dir``.

    Each is a uint8 COG on the analysis grid: the number of observers seeing the cell (capped
    at 254), 0 unseen, 255 where a surface is unknown.
    """
    out = []
    for name, counts in (("before", result.before), ("after", result.after)):
        data = np.minimum(counts, NODATA - 1).astype(np.uint8)
        data[~result.valid] = NODATA
        path = Path(out_dir) / f"visibility_{name}.tif"
        tags = {
            "OBSERVERS": result.summary.get("observers", len(result.observers)),
            "MAX_DISTANCE_M": result.summary.get("max_distance_m", ""),
            "MEANING": "observers seeing the cell (capped at 254); 255 unknown",
        }
        write_mask(path, data, result.grid, tags)
        out.append(path)
    return out
