"""The visibility step of ``analyze``: which surfaces, which edge, and what gets written."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
from affine import Affine

from fortmap.analyze.surface import build_surface, destroyed_ids, edge_from, warp_to_grid
from fortmap.analyze.viewshed import read_dem
from fortmap.analyze.visibility import visibility_change, write_visibility
from fortmap.io.cog import to_cog
from fortmap.types import Grid

#: resolution of the visibility grid, metres: sight lines are blocked by walls a few metres
#: thick, and the surfaces are resampled with the maximum so thin obstacles still block
VISIBILITY_RES_M = 2.0


def _coarse(grid: Grid, res_m: float) -> Grid:
    f = max(1.0, res_m / grid.gsd)
    return Grid(
        crs=grid.crs,
        transform=grid.transform @ Affine.scale(f),
        width=max(1, int(grid.width / f)),
        height=max(1, int(grid.height / f)),
    )


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
) -> tuple[gpd.GeoDataFrame | None, dict]:
    """Visibility from the defended edge before and after; writes the two rasters.

    Surfaces: the DSMs when given; else the DEM (``dem``, or flat ground) with the footprints
    raised to their height, the destroyed ones removed for the after date.

    Returns:
        (the ``visibility`` layer or None, the summary entry; it says why when skipped).
    """
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
        surface_from = "DSMs"
        kw = {"after_transform": ga.transform, "after_crs": ga.crs}
        transform, crs = gb.transform, gb.crs
    elif buildings is not None:
        coarse = _coarse(grid, VISIBILITY_RES_M)
        ground = None
        if dem is not None:
            z, g = read_dem(dem)
            ground = warp_to_grid(z, g.transform, g.crs, coarse)
        # footprints keep their input ``id`` when they have one, else their row number ``fid``
        col = "id" if "id" in buildings.columns else "fid"
        zb = build_surface(coarse, buildings, dem=ground, id_column=col)
        razed = destroyed_ids(buildings, id_column=col)
        za = build_surface(coarse, buildings, dem=ground, razed_ids=razed, id_column=col)
        surface_from = ("DEM" if dem is not None else "flat ground") + " plus footprints"
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
    return res.layer, {**res.summary, "edge_source": source, "surface_from": surface_from}
