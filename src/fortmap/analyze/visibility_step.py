"""The visibility step of ``analyze``: which surfaces, which edge, and what gets written.

Without DSMs the surfaces are built on the visibility grid (never the image's full
resolution): the DEM (or flat ground), the footprints raised to their height (the razed ones
replaced by a layer of debris after), tree canopy found in the images
(:mod:`fortmap.detect.canopy`) and the berms ``analyze`` found (after only: they are changes);
razed footprints inside the cleared areas found are left bare (clearing grades the ground).

A DEM's height error cannot be removed, and sight at eye level is sensitive to it, so with a
DEM the gain gets an interval: the gain over a few DEMs perturbed by the DEM's stated accuracy
(:func:`dem_offsets`, :func:`gain_interval`). It covers the DEM's error only, not that of the
findings or of what the footprints leave out (roof tanks and stair boxes, for one).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry.base import BaseGeometry

from fortmap.analyze.surface import (
    DEFAULT_DEBRIS_M,
    berm_relief,
    build_surface,
    check_heights,
    destroyed_ids,
    edge_from,
    warp_to_grid,
)
from fortmap.analyze.viewshed import read_dem
from fortmap.analyze.visibility import gain_samples, visibility_change, write_visibility
from fortmap.detect.canopy import CanopyStats, canopy_heights
from fortmap.io.cog import to_cog
from fortmap.io.raster import GridReader
from fortmap.types import VISIBILITY_RES_M, Grid

#: Vertical accuracy (m, RMSE) of a DEM whose own is not given: Copernicus GLO-30, the free
#: 30 m DEM, specifies its relative vertical accuracy as under 2 m LE90 on slopes up to 20 %,
#: i.e. a standard deviation of 2 / 1.645 = 1.2 m (SRTM's 10 m LE90 spec is about 6 m). An
#: absolute offset is left out: shifting ground and observers alike changes no sight line.
DEFAULT_DEM_ACCURACY_M = 1.2
#: Perturbed DEMs drawn for the interval of the gain: each costs one more pair of cumulative
#: viewsheds, so few; the 5th-95th percentiles of 10 draws are rough but show the spread.
DEM_DRAWS = 10
#: Percentiles of the drawn gains reported as the interval.
INTERVAL_PERCENTILES = (5.0, 95.0)


def coarse_grid(grid: Grid, res_m: float) -> tuple[Grid, int]:
    """``grid`` coarsened by a whole factor to cells of about ``res_m`` metres, and the factor.

    A whole factor makes each coarse cell exactly ``factor`` x ``factor`` image pixels, so
    image-derived fractions (canopy) fall on it without resampling.
    """
    f = max(1, int(round(res_m / grid.gsd)))
    return (
        Grid(
            crs=grid.crs,
            transform=grid.transform @ Affine.scale(f),
            width=max(1, grid.width // f),
            height=max(1, grid.height // f),
        ),
        f,
    )


def _berms_of(layers: list[gpd.GeoDataFrame | None]) -> gpd.GeoDataFrame | None:
    parts = [lay[lay["kind"] == "berm"] for lay in layers if lay is not None and "kind" in lay]
    parts = [p for p in parts if not p.empty]
    if not parts:
        return None
    return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=parts[0].crs)


def footprint_surfaces(
    grid: Grid,
    buildings: gpd.GeoDataFrame,
    razed_ids: set[object],
    *,
    id_column: str = "id",
    ground: np.ndarray | None = None,
    images: tuple[GridReader, GridReader | None] | None = None,
    canopy: tuple[np.ndarray, np.ndarray] | None = None,
    berms: gpd.GeoDataFrame | None = None,
    res_m: float = 2.0,
    tree_height_m: float | None = None,
    debris_m: float = DEFAULT_DEBRIS_M,
    cleared: gpd.GeoDataFrame | None = None,
) -> tuple[np.ndarray, np.ndarray, Grid, dict]:
    """Before and after surfaces (m) from footprints, canopy and berms on the coarse grid.

    Args:
        grid: the images' grid (projected CRS, metres); the surfaces are on
            ``coarse_grid(grid, res_m)``.
        buildings: footprints, any CRS, ``height`` (m) or storeys where known.
        razed_ids: values of ``id_column`` of the razed buildings (gone after, debris left).
        id_column: the footprints' id column.
        ground: terrain heights (m) on the coarse grid; None: flat ground at 0 m.
        images: (before, after) RGB readers on ``grid``, the after one co-registered;
            None or not RGB: no canopy.
        canopy: (before, after) canopy heights (m) on the coarse grid, found already (then
            ``images`` is not read).
        berms: berm crest lines found by ``analyze`` (after only), any CRS.
        res_m: cell size of the surfaces, metres (rounded to a whole number of pixels).
        tree_height_m: crown top (m) for every tree; None: from the trees' shadows and the sun
            elevation in the before image's tags (see :mod:`fortmap.detect.canopy`).
        debris_m: height of the debris on razed footprints, metres.
        cleared: cleared areas found by ``analyze`` (polygons, any CRS): ground graded bare,
            so the razed footprints in them get no debris.

    Returns:
        (before, after, coarse grid, what went into them for the summary).
    """
    coarse, f = coarse_grid(grid, res_m)
    st = CanopyStats()
    tree_from = "given" if canopy is not None else None
    if canopy is None:
        canopy = (None, None)
        if images is not None and images[0] is not None:
            found = canopy_heights(
                images[0], images[1], grid, f, tree_height_m=tree_height_m, stats=st
            )
            if found is not None:
                canopy = found
                tree_from = (
                    "set" if tree_height_m is not None
                    else "default" if st.default_used else "shadows"
                )  # fmt: skip
    relief = berm_relief(coarse, berms)
    # burned on the image's pixels and kept at each cell's highest: the coarse surface stands
    # for the fine one resampled with the maximum, as a DSM is in visibility_change
    kw = {"dem": ground, "id_column": id_column, "supersample": f}
    zb = build_surface(coarse, buildings, canopy=canopy[0], **kw)
    bare = None
    if cleared is not None and not cleared.empty:
        c = cleared if cleared.crs is None else cleared.to_crs(grid.crs)
        bare = shapely.union_all(c.geometry[c.geometry.notna()].to_numpy())
    za = build_surface(
        coarse, buildings, razed_ids=razed_ids, razed_debris_m=debris_m, canopy=canopy[1],
        relief=relief, bare=bare, **kw,
    )  # fmt: skip
    cell_m2 = coarse.res[0] * coarse.res[1]
    info = {
        "canopy_km2": {
            k: round(float((c > 0).sum()) * cell_m2 / 1e6, 4) if c is not None else 0.0
            for k, c in zip(("before", "after"), canopy, strict=True)
        },
        # median crown top (m) of the scene, and where it came from
        "tree_top_m": (
            None
            if tree_from in (None, "given") or st.scene_top_m is None
            else round(st.scene_top_m, 2)
        ),
        "tree_top_from": tree_from,
        "berms": 0 if berms is None else len(berms),
        "debris_m": debris_m,
        "cleared_areas": 0 if cleared is None else len(cleared),
    }
    return zb, za, coarse, info


def dem_offsets(
    dem_shape: tuple[int, int],
    dem_transform: Affine,
    dem_crs: CRS | str,
    grid: Grid,
    accuracy_m: float,
    draws: int,
    seed: int = 0,
) -> list[np.ndarray]:
    """Random DEM errors on ``grid`` (m): independent per DEM cell, interpolated like the DEM.

    Each draw gives every cell of the DEM (its own grid, ``dem_shape`` cells) an error drawn
    from N(0, ``accuracy_m``) and resamples it bilinearly onto ``grid`` as the DEM itself is,
    so that the error is correlated over one DEM cell (30 m for a public DEM): a DEM's
    height error is the error of its postings. ``seed`` fixes the draws, so that a run is
    reproducible.
    """
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(max(0, int(draws))):
        e = rng.normal(0.0, accuracy_m, dem_shape).astype(np.float32)
        out.append(np.nan_to_num(warp_to_grid(e, dem_transform, dem_crs, grid), nan=0.0))
    return out


def gain_interval(
    surface_before: np.ndarray,
    surface_after: np.ndarray,
    grid: Grid,
    edge: BaseGeometry,
    offsets: list[np.ndarray],
    *,
    max_distance: float,
) -> tuple[float, float]:
    """The 5th and 95th percentiles (km2) of the gain over the surfaces plus each offset.

    The same offset goes on both dates: the DEM under them is one and the same.
    """
    g = gain_samples(
        surface_before, surface_after, grid.transform, grid.crs, edge, offsets,
        max_distance=max_distance, resolution_m=VISIBILITY_RES_M,
    )  # fmt: skip
    lo, hi = np.percentile(g, INTERVAL_PERCENTILES)
    return float(lo), float(hi)


def run_visibility(
    grid: Grid,
    out_dir: Path,
    *,
    dsm_before: str | Path | None,
    dsm_after: str | Path | None,
    dem: str | Path | None,
    buildings: gpd.GeoDataFrame | None,
    edge_file: str | Path | None,
    core: object | None,
    fortifications: list[gpd.GeoDataFrame],
    dates: dict,
    max_distance: float = 2000.0,
    images: tuple[GridReader, GridReader | None] | None = None,
    tree_height_m: float | None = None,
    dem_accuracy_m: float = DEFAULT_DEM_ACCURACY_M,
    dem_draws: int = DEM_DRAWS,
    cleared: gpd.GeoDataFrame | None = None,
    dsm_after_plane: tuple[float, float, float] | None = None,
) -> tuple[gpd.GeoDataFrame | None, dict]:
    """Visibility from the defended edge before and after; writes the two rasters.

    Surfaces: the DSMs when given; else :func:`footprint_surfaces`: the DEM (``dem``, or flat
    ground) with the footprints raised to their height, the destroyed ones replaced by debris
    after, tree canopy from ``images`` and the berms among ``fortifications``.

    Args:
        images: (before, after) RGB readers on ``grid``, the after one co-registered, for the
            canopy; None: no canopy.
        tree_height_m: crown top (m) of the trees found in the images; None: measured from
            their shadows.
        dem_accuracy_m: vertical accuracy (m, RMSE) of ``dem``; with a DEM and no DSMs the
            gain gets an interval (``gain_km2_low``, ``gain_km2_high``): the 5th-95th
            percentiles over ``dem_draws`` DEMs perturbed by that much (:func:`dem_offsets`).
            0: no interval.
        dem_draws: how many perturbed DEMs; 0: no interval.
        cleared: the ``cleared_areas`` found (no debris on razed footprints there).
        dsm_after_plane: (a, b, c): the after DSM reads ``a + b col + c row`` metres too high
            against the before one at ``grid`` pixel (col, row)
            (:attr:`fortmap.detect.dsm_noise.DsmNoise.plane`); removed before the eyes are
            stood on the lower surface. None: read as it is.

    Returns:
        (the ``visibility`` layer or None, the summary entry; it says why when skipped).
    """
    # before the edge: a height model that misses the scene is the user's to fix, named, not
    # a visibility step that finds no observer on valid cells
    for p, role in ((dsm_before, "before DSM"), (dsm_after, "after DSM"), (dem, "DEM")):
        if p is not None:
            check_heights(p, role, grid)
    if edge_file is None and core is None:
        # what is defended is the analyst's call: without an edge or a core, no visibility
        return None, {"skipped": "no defended edge: give --edge or --core"}
    try:
        edge, source = edge_from(grid.crs, edge_file, core, fortifications)
    except Exception as exc:  # noqa: BLE001 - no edge is a reason to skip, not to fail
        if edge_file is not None:
            raise
        return None, {"skipped": f"no defended edge ({exc}); give --edge or --core"}
    if dsm_before is not None and dsm_after is not None:
        zb, gb = read_dem(dsm_before)
        za, ga = read_dem(dsm_after)
        if dsm_after_plane is not None:
            za = za - _plane_on(dsm_after_plane, grid, ga, za.shape)
        surface_from = "DSMs"
        parts = None
        kw = {"after_transform": ga.transform, "after_crs": ga.crs}
        transform, crs = gb.transform, gb.crs
    elif buildings is not None:
        coarse, _ = coarse_grid(grid, VISIBILITY_RES_M)
        ground = None
        if dem is not None:
            z, g = read_dem(dem)
            ground = warp_to_grid(z, g.transform, g.crs, coarse)
            dem_grid = (z.shape, g.transform, g.crs)
        # footprints keep their input ``id`` when they have one, else their row number ``fid``
        col = "id" if "id" in buildings.columns else "fid"
        zb, za, coarse, parts = footprint_surfaces(
            grid, buildings, destroyed_ids(buildings, id_column=col), id_column=col,
            ground=ground, images=images, berms=_berms_of(fortifications),
            res_m=VISIBILITY_RES_M, tree_height_m=tree_height_m, cleared=cleared,
        )  # fmt: skip
        surface_from = ("DEM" if dem is not None else "flat ground") + " plus footprints"
        if parts["tree_top_from"] is not None:
            surface_from += ", canopy"
        if parts["berms"]:
            surface_from += ", berms"
        kw = {}
        transform, crs = coarse.transform, coarse.crs
    else:
        return None, {"skipped": "no surface: give --dsm-before/--dsm-after or --buildings"}
    res = visibility_change(
        zb, za, transform, crs, edge, max_distance=max_distance,
        resolution_m=VISIBILITY_RES_M, **dates, **kw,
    )  # fmt: skip
    for path in write_visibility(res, out_dir):
        to_cog(path)
    summary = {**res.summary, "edge_source": source, "surface_from": surface_from}
    if dsm_after_plane is not None and parts is None:
        summary["after_dsm_offset_removed"] = True
    if parts is not None:
        summary["surface_parts"] = parts
        if dem is None:
            summary["gain_interval"] = {"method": "none: flat ground (give --dem)"}
        elif dem_accuracy_m > 0 and dem_draws > 0:
            offsets = dem_offsets(*dem_grid, coarse, dem_accuracy_m, dem_draws)
            lo, hi = gain_interval(zb, za, coarse, edge, offsets, max_distance=max_distance)
            summary["gain_km2_low"] = round(lo, 4)
            summary["gain_km2_high"] = round(hi, 4)
            summary["gain_interval"] = {
                "method": (
                    f"{INTERVAL_PERCENTILES[0]:g}th-{INTERVAL_PERCENTILES[1]:g}th percentile of "
                    f"the gain over {dem_draws} DEMs with an independent N(0, "
                    f"{dem_accuracy_m:g} m) error per DEM cell, interpolated bilinearly, the "
                    "same on both dates"
                ),
                "dem_accuracy_m": dem_accuracy_m,
                "draws": dem_draws,
            }
    return res.layer, summary


def _plane_on(
    plane: tuple[float, float, float], grid: Grid, dsm_grid: Grid, shape: tuple[int, int]
) -> np.ndarray:
    """float32 (rows, cols): ``plane`` (metres, over ``grid``'s pixels) at the centres of the
    cells of a DSM on ``dsm_grid`` (its own CRS taken to be ``grid``'s; the DSMs are checked to
    overlap the images before this step)."""
    a, b, c = plane
    h, w = shape
    jj, ii = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    t = ~grid.transform * dsm_grid.transform
    col = t.a * jj + t.b * ii + t.c
    row = t.d * jj + t.e * ii + t.f
    return (a + b * col + c * row).astype(np.float32)
