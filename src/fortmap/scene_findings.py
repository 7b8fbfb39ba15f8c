"""What ``analyze`` gathers from its windows, and the scene-wide layers built from it.

:class:`WindowTotals` adds up each window's result as it comes back (changed and valid pixel
counts, block statistics, footprint features, change objects, fortifications);
:func:`cleared_layer`, :func:`building_layers` and :func:`route_layers` then build the cleared
land, buildings (or razed buildings from change objects) and routes into the core of
``findings.gpkg``. Pixel coordinates are the analysis grid's; geometries are in its CRS.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import pandas as pd
import shapely
from affine import Affine

from fortmap.detect.cleared_tiles import cleared_from_grid
from fortmap.fortifications import FortFindings
from fortmap.io.grids import to_crs
from fortmap.io.scene_grid import SceneGrid
from fortmap.report.layers import findings_frame
from fortmap.run_summary import building_counts
from fortmap.tiles import WindowResult
from fortmap.types import Grid

if TYPE_CHECKING:
    from fortmap.detect.dsm_noise import DsmRules
    from fortmap.detect.footprint_damage import DamageRefs
    from fortmap.io.footprint_store import FootprintStore


@dataclass
class WindowTotals:
    """The windows' results gathered over the scene, in the order they come back.

    Attributes:
        blocks: (fields, block rows, block cols) float16 block statistics of the scene
            (``cleared.BLOCK_FIELDS``), filled window by window (in a temporary file beyond
            a district).
        block: block side, pixels.
        feats, feat_ids: the footprints' feature frames and their footprint indices.
        objects, obj_scores, obj_ev: change objects (pixel polygons), scores and evidence.
        found: the barricades, rubble and berms found.
        valid_px, changed_px: valid and changed pixels of the cores.
    """

    blocks: SceneGrid
    block: int
    feats: list[pd.DataFrame] = field(default_factory=list)
    feat_ids: list[int] = field(default_factory=list)
    objects: list[shapely.Polygon] = field(default_factory=list)
    obj_scores: list[float] = field(default_factory=list)
    obj_ev: list[dict] = field(default_factory=list)
    found: FortFindings = field(default_factory=FortFindings)
    valid_px: int = 0
    changed_px: int = 0

    def add(self, res: WindowResult) -> None:
        """Add one window's result (about its core only)."""
        block = self.block
        self.valid_px += res.valid_px
        self.changed_px += int(res.change.sum())
        self.blocks.write(res.core.row_off // block, res.core.col_off // block, res.blocks)
        if res.footprint_features is not None:
            self.feats.append(res.footprint_features)
            self.feat_ids.extend(res.footprint_ids)
        self.objects += res.objects
        self.obj_scores += res.object_scores
        self.obj_ev += res.object_evidence
        if res.fort is not None:
            self.found.barricades += res.fort.barricades
            self.found.rubble += res.fort.rubble
            self.found.berms += res.fort.berms


def cleared_layer(
    totals: WindowTotals, grid: Grid, min_cleared_ha: float, dates: dict
) -> tuple[gpd.GeoDataFrame, list[shapely.Polygon]]:
    """The ``cleared_areas`` layer from the block statistics, and its polygons.

    Args:
        totals: the windows' results.
        grid: the analysis grid.
        min_cleared_ha: smallest cleared area reported, hectares.
        dates: ``date_before`` and ``date_after`` of the findings.
    """
    block = totals.block
    block_t = grid.transform @ Affine.scale(block)
    cpolys, cscores, cev = cleared_from_grid(
        totals.blocks, block_t, block * grid.gsd, min_cleared_ha
    )
    frame = findings_frame(
        "cleared_areas",
        cpolys,
        cscores,
        grid.crs,
        evidence=cev,
        extra={"area_ha": [p.area / 1e4 for p in cpolys]},
        **dates,
    )
    return frame, cpolys


def building_layers(
    fps: FootprintStore | None,
    totals: WindowTotals,
    grid: Grid,
    dates: dict,
    write: Callable[[gpd.GeoDataFrame], None] | None = None,
) -> tuple[dict[str, gpd.GeoDataFrame], dict | None]:
    """``buildings`` and ``razed_buildings`` from the footprints' features, or, without
    footprints (``fps`` None), ``razed_buildings`` from the change objects.

    The damage classes use references measured once over every footprint of the scene
    (:func:`fortmap.detect.footprint_damage.damage_refs`), so footprints held in a file are
    classified a run at a time with the same result: their ``buildings`` layer is handed to
    ``write`` run by run instead of being returned.

    Args:
        fps: the building footprints (analysis CRS), or None.
        totals: the windows' results.
        grid: the analysis grid.
        dates: ``date_before`` and ``date_after`` of the findings.
        write: takes each run of the ``buildings`` layer when the footprints are in a file.

    Returns:
        The layers, and the count of buildings per damage class (None without footprints).
    """
    if fps is None:
        razed = findings_frame(
            "razed_buildings",
            to_crs(totals.objects, grid.transform),
            totals.obj_scores,
            grid.crs,
            evidence=totals.obj_ev,
            **dates,
        )
        return {"razed_buildings": razed}, None
    from fortmap.detect.footprint_damage import damage_refs

    fdf = pd.concat(totals.feats, ignore_index=True) if totals.feats else pd.DataFrame()
    fdf.index = totals.feat_ids
    fdf = fdf.sort_index()
    refs = damage_refs(fdf)
    if fps.frame is not None:
        bl = _buildings_frame(fps.frame, fdf, refs, grid, dates)
        razed = bl[bl["damage"] == "destroyed"].copy()
        razed["kind"] = "razed_building"
        return {"buildings": bl, "razed_buildings": razed}, building_counts(bl)
    if write is None:
        raise ValueError("footprints in a file: give write")
    razed_parts, counts = [], Counter()
    for batch in fps.batches():
        bl = _buildings_frame(batch, fdf, refs, grid, dates)
        counts.update(bl["damage"].tolist())
        razed_parts.append(bl[bl["damage"] == "destroyed"])
        write(bl)
        del bl
    razed = pd.concat(razed_parts, ignore_index=True)
    razed["kind"] = "razed_building"
    total = sum(counts.values())
    return {"razed_buildings": razed}, {"total": total, **dict(counts.most_common())}


def buildings_for_visibility(
    layers: dict, fps: FootprintStore | None, gpkg: Path, defended: bool
) -> gpd.GeoDataFrame | None:
    """The ``buildings`` layer for the visibility surface of footprints: the one in ``layers``;
    for footprints held in a file, the one already written to ``gpkg``, read whole (the surface
    is made of every footprint), and only where it is needed: an edge or core to see from and
    no DSMs (``defended``)."""
    if fps is None or fps.frame is not None:
        return layers.get("buildings")
    if not defended:
        return None
    return gpd.read_file(gpkg, layer="buildings", engine="pyogrio")


def _buildings_frame(
    rows: gpd.GeoDataFrame, fdf: pd.DataFrame, refs: DamageRefs, grid: Grid, dates: dict
) -> gpd.GeoDataFrame:
    """The ``buildings`` layer of the footprints ``rows`` (index = row) that have features."""
    from fortmap.detect.footprint_damage import damage_from_features

    # a run is a range of rows
    ix = fdf.index
    sub = fdf[(ix >= rows.index.min()) & (ix <= rows.index.max())]
    dmg = damage_from_features(sub, grid.gsd, refs)
    keep_cols = [c for c in rows.columns if c not in ("geometry", "score", "damage")]
    attrs = rows.loc[dmg.index, keep_cols]
    extra = {c: attrs[c].tolist() for c in keep_cols if c not in ("kind", "evidence")}
    extra["damage"] = dmg["damage"].tolist()
    return findings_frame(
        "buildings",
        rows.geometry.loc[dmg.index].values,
        dmg["score"].values,
        grid.crs,
        evidence=dmg["evidence"].tolist(),
        extra=extra,
        **dates,
    )


def route_layers(
    road_lines: gpd.GeoDataFrame,
    grid: Grid,
    core_poly: shapely.Polygon,
    layers: dict[str, gpd.GeoDataFrame],
    dsms: tuple | None,
    rules: DsmRules | None,
    dsm_obstacles: bool,
    dates: dict,
) -> dict:
    """Trace the routes into the core and add the ``routes`` and ``entry_points`` layers to
    ``layers`` (whose findings block them).

    With both DSMs, ``dsm_obstacles`` and the ``route_obstacles`` rule on, roads left too
    narrow by a rise of the surface are cut too.

    Args:
        road_lines: the roads (analysis CRS).
        grid: the analysis grid.
        core_poly: the core to reach.
        layers: the finding layers so far; the route layers are added to it.
        dsms: the two dates' DSMs on the grid, or None.
        rules: the DSM rules (``dsm_noise.DsmRules``).
        dsm_obstacles: whether to cut roads at surface obstacles.
        dates: ``date_before`` and ``date_after`` of the findings.

    Returns:
        The routes' summary.
    """
    # networkx and the route graph load only when routes are asked for
    from fortmap.analyze.routes import routes_in_area

    clearance = None
    if dsms is not None and dsm_obstacles and rules.on("route_obstacles"):
        from fortmap.analyze.clearance import obstacles_on_grid

        clearance = obstacles_on_grid(
            dsms[0], dsms[1], grid, road_lines, rise_m=rules.threshold("route_obstacles")
        )
    rres = routes_in_area(road_lines, grid.bounds, core_poly, layers, clearance, **dates)
    layers["routes"], layers["entry_points"] = rres.routes, rres.entry_points
    return rres.summary
