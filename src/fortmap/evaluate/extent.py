"""Checks that a run and its truth are of the same scene before they are scored: the same
ground, and for routes the same core."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from rasterio.crs import CRS

from fortmap.errors import NoOverlapError

Bounds = tuple[float, float, float, float]

#: Cores whose areas differ by more than this fraction are called different: the simulator and
#: ``analyze`` build a radius core from the same place and radius with the same polygon, so
#: one core shows as equal areas to rounding; a different radius changes the area by twice
#: its relative change.
CORE_AREA_TOLERANCE = 0.01


def raster_bounds(path: Path) -> tuple[Bounds, CRS] | None:
    """(bounds, CRS) of a georeferenced raster, or None when it is absent, unreadable or bare."""
    if not path.exists():
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with rasterio.open(path) as ds:
                if ds.crs is None or ds.transform == rasterio.Affine.identity():
                    return None
                return tuple(ds.bounds), ds.crs
    except rasterio.errors.RasterioIOError:
        return None


def layers_bounds(layers: dict[str, gpd.GeoDataFrame], crs: CRS) -> Bounds | None:
    """Bounds in ``crs`` of all the features of ``layers`` (those with a CRS); None when empty."""
    boxes = [
        _to_crs(tuple(g.total_bounds), g.crs, crs)
        for g in layers.values()
        if g is not None and not g.empty and g.crs is not None
    ]
    return _union([b for b in boxes if b is not None])


def check_same_ground(
    truth: Path,
    truth_parts: list[tuple[Bounds, CRS] | None],
    pred_dir: Path,
    pred_parts: list[tuple[Bounds, CRS] | None],
    crs: CRS,
) -> None:
    """Refuse a run whose extent does not overlap the truth's, both compared in ``crs``.

    Args:
        truth_parts, pred_parts: (bounds, CRS) of what each side holds (rasters, layers);
            None entries are skipped. A side with nothing is not checked.
        crs: the CRS the comparison is made in (the truth's metric CRS).

    Raises:
        NoOverlapError: the two extents do not overlap (a run of another scene would
            otherwise score zeros that read as a failed analysis).
    """
    truth_parts, pred_parts = list(filter(None, truth_parts)), list(filter(None, pred_parts))
    if not truth_parts or not pred_parts:
        return
    tb = _union([_to_crs(b, c, crs) for b, c in truth_parts])
    pb = _union([_to_crs(b, c, crs) for b, c in pred_parts])
    overlap = (
        tb is not None
        and pb is not None
        and min(tb[2], pb[2]) > max(tb[0], pb[0])
        and min(tb[3], pb[3]) > max(tb[1], pb[1])
    )
    if not overlap:
        # a side that could not be placed in ``crs`` at all (None) is on other ground too
        raise NoOverlapError(
            f"{pred_dir}: the run does not overlap the truth {truth} on the ground; "
            "score a run of the truth's scene"
        )


def core_note(truth: Path, pred_dir: Path) -> str | None:
    """A note when the run's core and the truth's differ (by area), else None.

    The truth's core is in ``scene.json`` beside ``truth.gpkg`` (``routes.core_area_m2``), the
    run's in its ``summary.json``; either missing: None (nothing to compare).
    """
    t = _core_area(truth.parent / "scene.json")
    p = _core_area(pred_dir / "summary.json")
    if t is None or p is None:
        return None
    if abs(p - t) <= CORE_AREA_TOLERANCE * t:
        return None
    return (
        f"entry_points: the run's core ({p / 1e4:.2f} ha) differs from the truth's "
        f"({t / 1e4:.2f} ha): entry points lie on different boundaries, so few or none match; "
        "rerun analyze with the truth's core (e.g. --core with the same place and radius)"
    )


def _core_area(path: Path) -> float | None:
    try:
        routes = json.loads(path.read_text()).get("routes")
    except (OSError, ValueError, AttributeError):
        return None
    if isinstance(routes, str):
        return None
    area = (routes or {}).get("core_area_m2")
    return float(area) if isinstance(area, int | float) and area > 0 else None


def _to_crs(b: Bounds, src: CRS, dst: CRS) -> Bounds | None:
    from rasterio.warp import transform_bounds

    if src == dst:
        return b
    try:
        out = transform_bounds(src, dst, *b, densify_pts=21)
    except Exception:  # noqa: BLE001 - pyproj/GDAL raise several types off a projection
        return None
    return out if all(math.isfinite(v) for v in out) else None


def _union(boxes: list[Bounds | None]) -> Bounds | None:
    arr = np.array([b for b in boxes if b is not None], dtype=float)
    if not len(arr):
        return None
    return (arr[:, 0].min(), arr[:, 1].min(), arr[:, 2].max(), arr[:, 3].max())
