"""The ``analyze`` job: from two images to findings, a change mask and a summary.

io (open, put onto one grid) -> align (co-register, normalise) -> detect (per window, then
scene-wide) -> write. Windows run one after another, or on a Dask cluster when one is given.
What the windows hand back is gathered, and the scene-wide layers built, in ``scene_findings``.
"""

from __future__ import annotations

import gc
import json
import time
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio

from fortmap import __version__
from fortmap.align.pair import coregister_pair, normalise_pair
from fortmap.analyze.core import parse_core
from fortmap.analyze.surface import check_heights, open_dsms
from fortmap.analyze.visibility_step import DEFAULT_DEM_ACCURACY_M, run_visibility
from fortmap.berm_scene import WorkGrid, drop_on_berms, scene_berms
from fortmap.detect.barricades import MIN_SIGMA as BLOCK_MIN_SIGMA
from fortmap.detect.berms import scene_berm_bounds
from fortmap.detect.change import fit_change_model
from fortmap.detect.cleared import BLOCK_FIELDS, block_px_for
from fortmap.detect.road_noise import scene_road_noise
from fortmap.detect.roads_from_image import roads_from_image
from fortmap.detect.sun import sun_angles
from fortmap.errors import InputError
from fortmap.fortifications import FortContext, fortification_layers
from fortmap.io.cog import to_cog
from fortmap.io.footprint_store import open_footprints
from fortmap.io.gdal_cache import gdal_cache_b
from fortmap.io.grids import (
    GreyScaled,
    analysis_grid,
    windows,
)
from fortmap.io.heap import keep_freed_memory, plain_heap, release_free_memory
from fortmap.io.output import atomic_dir, check_output_dir
from fortmap.io.raster import GridReader, check_overlap, open_info
from fortmap.io.roads import read_roads
from fortmap.io.scene_grid import SceneGrid
from fortmap.report.layers import append_layer, write_layers
from fortmap.run_summary import (
    change_entry,
    compile_timer,
    grid_entry,
    inputs_entry,
    load_change_net,
    model_units,
    roads_entry,
    scene_measures_entry,
)
from fortmap.scene_findings import (
    WindowTotals,
    building_layers,
    buildings_for_visibility,
    cleared_layer,
    route_layers,
)
from fortmap.tiles import SceneContext, map_windows

#: Progress callback: (step name, done, total).
Progress = Callable[[str, int, int], None]


@dataclass
class AnalyzeOptions:
    """Tuning knobs of ``analyze`` (defaults suit 0.3-1 m imagery).

    Attributes:
        window_px: side of a window's core, pixels (a multiple of the block size is used).
        min_cleared_ha: smallest cleared area reported, hectares.
        sample_px: side of the mosaic of full-resolution tiles used to fit scene-wide models.
        workers: run windows on a local Dask cluster of this many workers (0: in-process).
        scheduler: address of a running Dask scheduler (overrides ``workers``).
        coregister: ``auto`` (shift, plus an affine correction when it clearly helps),
            ``shift`` (global shift only) or ``none`` (images already co-registered).
        report: also write ``report.html``, figures, captions and QGIS styles.
        credit: credit line under each figure (default: the images' file names).
        dem_accuracy_m: vertical RMSE of ``--dem``, metres; sets the interval of the
            visibility gain when no DSMs are given (0: no interval).
        dsm_obstacles: with both DSMs, also cut road pieces whose free width measured on the
            surface's rise (0.3 m or more) is under 3 m, found in the imagery or not.
        change_model: a model file from ``fortmap train-change``; it replaces the unsupervised
            change mask (``change.tif``, the change objects and the cleared-land statistics).
    """

    window_px: int = 1024
    min_cleared_ha: float = 0.5
    sample_px: int = 1024
    workers: int = 0
    scheduler: str | None = None
    coregister: str = "auto"
    report: bool = True
    credit: str | None = None
    dem_accuracy_m: float = DEFAULT_DEM_ACCURACY_M
    dsm_obstacles: bool = True
    change_model: str | Path | None = None


def run_analysis(
    before: str | Path,
    after: str | Path,
    out_dir: str | Path,
    *,
    buildings: str | Path | None = None,
    roads: str | Path | None = None,
    core: str | None = None,
    places: str | Path | None = None,
    dsm_before: str | Path | None = None,
    dsm_after: str | Path | None = None,
    dem: str | Path | None = None,
    edge: str | Path | None = None,
    force: bool = False,
    options: AnalyzeOptions | None = None,
    progress: Progress | None = None,
) -> dict:
    """Analyse a before/after pair and write findings, ``change.tif`` and ``summary.json``.

    Args:
        before, after: georeferenced rasters (any CRS; the after image is warped onto the
            before image's grid).
        out_dir: directory to create (refused if it exists, unless ``force``).
        buildings: optional footprints (polygons, any CRS) to classify one by one.
        roads: road lines (GeoJSON/GPKG in any CRS, or an OSM extract); barricades and rubble
            are looked for on them, and routes into the core are traced along them.
        core: the core to reach: a polygon file, ``lon,lat,radius_m`` or a place name in
            ``places`` (needs ``roads``).
        places: named points (GeoJSON) for ``core``.
        dsm_before, dsm_after: surface heights in metres (any CRS; warped onto the before grid)
            for berms, ditches and visibility.
        dem: ground heights in metres (projected CRS) for visibility without DSMs.
        edge: the defended edge (lines or polygons, any CRS) for visibility; default: the ring
            of barricades and berms around the core, else the core's boundary.
        force: replace an existing ``out_dir``.
        options: tuning knobs.
        progress: called as ``progress(step, done, total)``.

    Returns:
        The summary written to ``summary.json``.
    """
    # GDAL's block cache defaults to 5 % of RAM. A fixed size keeps memory bounded whatever the
    # scene's size (``GDAL_CACHE_B``).
    # The loaded libraries leave a few hundred thousand long-lived objects on the heap, and
    # each full garbage collection the run triggers walks them all (about 0.1 CPU s each on
    # a 2 km scene); frozen, collections only visit what the run itself allocates.
    gc.freeze()
    try:
        # freed window arrays are reused from the heap instead of being mapped (and zeroed by
        # the kernel) again: a tenth less CPU time, the same results (``io.heap``)
        with keep_freed_memory(), rasterio.Env(GDAL_CACHEMAX=gdal_cache_b()):
            with ExitStack() as stack:
                return _run(
                    before, after, out_dir, buildings, roads, core, places, dsm_before,
                    dsm_after, dem, edge, force, options, progress, stack,
                )  # fmt: skip
    finally:
        gc.unfreeze()


def _run(
    before, after, out_dir, buildings, roads, core, places, dsm_before, dsm_after,
    dem, edge, force, options, progress, stack,
) -> dict:  # fmt: skip
    opts = options or AnalyzeOptions()
    tell = progress or (lambda step, done, total: None)
    timings: dict[str, float] = {}
    # a first run compiles the kernels: its time is told apart from the analysis's
    compiling = stack.enter_context(compile_timer())
    t0 = time.perf_counter()
    check_output_dir(
        out_dir, force,
        [before, after, buildings, roads, places, dsm_before, dsm_after, dem, edge, core,
         opts.change_model],
    )  # fmt: skip

    binfo = open_info(before, "before image")
    ainfo = open_info(after, "after image")
    net = load_change_net(opts.change_model, binfo, ainfo, opts.coregister)
    overlap = check_overlap(binfo, ainfo)
    grid = analysis_grid(binfo)
    gsd = grid.gsd
    # heights that miss the images fail now, not after detection has run
    for path, role in ((dem, "DEM"), (dsm_before, "before DSM"), (dsm_after, "after DSM")):
        if path is not None:
            check_heights(path, role, grid)
    # RGB against RGB+NIR compares the first three bands; a single-band image against a
    # multi-band one compares grey levels.
    grey = binfo.count != ainfo.count and min(binfo.count, ainfo.count) < 3
    if binfo.count != ainfo.count:
        how = "grey levels" if grey else "their first three bands"
        warnings.warn(
            f"{binfo.path} has {binfo.count} band(s) and {ainfo.path} {ainfo.count}: "
            f"comparing {how}",
            stacklevel=2,
        )
    bands = None if grey else list(range(1, min(binfo.count, ainfo.count, 3) + 1))
    breader = GridReader(binfo.path, grid, bands)
    areader = GridReader(ainfo.path, grid, bands)

    fps = None
    if buildings is not None:
        # a city's footprints go to a temporary file beside the output (``footprint_store``)
        parent = Path(out_dir).absolute().parent
        # a bar only where someone watches: its total costs a GeoJSON one more scan
        bar = (
            None
            if progress is None
            else lambda done, total: tell("reading footprints", done, total)
        )
        fps = stack.enter_context(
            open_footprints(buildings, grid, parent if parent.is_dir() else None, bar)
        )
    road_lines = read_roads(roads, grid.crs, grid.bounds) if roads is not None else None
    core_poly = parse_core(core, grid.crs, grid.bounds, places) if core is not None else None
    dsms, dsm_noise, rules, dsm_entry = open_dsms(dsm_before, dsm_after, grid)
    timings["open"] = time.perf_counter() - t0

    roads_from = "file" if road_lines is not None else None
    derived_ev = None
    if road_lines is None:
        # given roads always win; without them, the before image's corridors stand in
        t = time.perf_counter()
        tell("deriving roads", 0, 1)
        road_lines, derived_ev = roads_from_image(breader, grid)
        roads_from = "before image" if len(road_lines) else None
        if not len(road_lines):
            road_lines = None
        timings["derive_roads"] = time.perf_counter() - t
        tell("deriving roads", 1, 1)
    if core is not None and road_lines is None:
        raise InputError(
            f"--core {core}: no roads found in {binfo.path} for routes into the core; give --roads"
        )

    # align
    t = time.perf_counter()
    tell("co-registering", 0, 1)
    coreg = coregister_pair(breader, areader, opts.coregister)
    timings["coregister"] = time.perf_counter() - t
    tell("co-registering", 1, 1)

    t = time.perf_counter()
    maps, nb_s, na_s, sv = normalise_pair(breader, areader, grid, opts.sample_px, grey)
    step = 1
    model = fit_change_model(nb_s, na_s, sv, gsd, sample_step=step)
    timings["normalise_and_fit"] = time.perf_counter() - t

    block = block_px_for(gsd)
    window_px = max(block, opts.window_px // block * block)
    fp_halo = 0
    if fps is not None:
        from fortmap.detect.footprints import footprint_halo_px

        fp_halo = footprint_halo_px(gsd)
    # the footprints are burnt on the sample mosaic only when the metadata lacks the sun
    roofs = None if fps is None else lambda: fps.mosaic_mask(opts.sample_px)
    sun_az, sun_el, sun_from = sun_angles(ainfo.tags, na_s, sv, gsd, roofs)
    fort = FortContext(
        roads=road_lines,
        sun_azimuth=sun_az,
        sun_elevation=sun_el,
        dsm_before=dsms[0] if dsms else None,
        dsm_after=dsms[1] if dsms else None,
        dsm_noise=dsm_noise,
        dsm_rules=rules,
    )
    ctx = SceneContext(
        before=breader,
        after=areader,
        change_model=model,
        gsd=gsd,
        block=block,
        footprint_halo=fp_halo,
        find_objects=fps is None,
        grey=grey,
        fort=fort,
        change_net=net,
    )
    if fps is not None:
        from fortmap.detect.footprints import footprint_scene

        # the footprints' noise floors and shadow thresholds, once for the scene
        ctx.footprint_scene = footprint_scene(nb_s, na_s, sv)
    # the berm image path's change bounds, once for the scene: not per window
    fort.berm_bounds = scene_berm_bounds(nb_s, na_s, sv, gsd)
    # berms are found on the scene's 2 m work grid once the windows have filled it
    fort.scene_shape = (grid.height, grid.width)
    if net is not None:
        ctx.learned_units = model_units(opts.change_model, maps, binfo, ainfo, grey)
    if grey:
        ctx.before = GreyScaled(breader, maps.before_scale[0], maps.before_offset[0])
        ctx.after = GreyScaled(areader, maps.after_scale[0], maps.after_offset[0])
    if road_lines is not None and len(road_lines):
        # one noise level for the whole scene: a row's score must not depend on the windows
        t = time.perf_counter()
        fort.road_noise = scene_road_noise(
            ctx.before, ctx.after, grid.transform, grid.width, grid.height, road_lines, gsd,
            BLOCK_MIN_SIGMA,
        )  # fmt: skip
        timings["road_noise"] = time.perf_counter() - t

    cores = windows(grid, window_px)
    if fps is not None:
        # the berm tiles read the footprints near them from the store
        fort.footprints = fps
        jobs = zip(cores, fps.window_footprints(cores, window_px), strict=True)
    else:
        # a list made up front: made one by one between the windows, these small objects
        # land among the windows' freed arrays, and the heap held 60 MB more (2 km)
        jobs = [(w, []) for w in cores]

    with atomic_dir(out_dir, force) as tmp:
        t = time.perf_counter()
        bh, bw = grid.height // block, grid.width // block
        profile = {
            "driver": "GTiff",
            "dtype": "uint8",
            "count": 1,
            "width": grid.width,
            "height": grid.height,
            "crs": grid.crs,
            "transform": grid.transform,
            "tiled": True,
            "blockxsize": 512,
            "blockysize": 512,
            # left uncompressed: ``to_cog`` rewrites it deflated (the same COG, byte for byte)
            "compress": None,
            "nodata": None,
        }
        # float16 keeps the scene-wide state at 10 bytes per 2 m block (1/16 of the pixels),
        # in a temporary file beyond a district; the berm detector's 2 m blocks, gathered from
        # the windows, in a grid of their own
        nb = 1 if grey else len(bands)
        berm_dsm = bool(dsms) and rules.on("berms")
        with SceneGrid(
            (len(BLOCK_FIELDS), bh, bw), np.float16, tmp, prefix="fortmap-blocks-"
        ) as blocks:
            totals = WindowTotals(blocks, block)
            with WorkGrid((grid.height, grid.width), gsd, nb, berm_dsm, tmp) as work:
                with rasterio.open(tmp / "change.tif", "w", **profile) as dst:
                    for k, res in enumerate(map_windows(ctx, jobs, opts.workers, opts.scheduler)):
                        dst.write(res.change, 1, window=res.core)
                        totals.add(res)
                        if res.fort is not None:
                            for part in res.fort.works:
                                work.add(part)
                        tell("detecting", k + 1, len(cores))
                    dst.update_tags(
                        description="1 where structures appeared or disappeared or the ground "
                        "was reshaped"
                    )
                to_cog(tmp / "change.tif")
                if not work.in_memory:
                    # past a district, the windows' freed arrays go back, so that the berm
                    # tiles and layers start from a clean heap (a district's take less than the
                    # windows did, and would only pay to fault the pages in again)
                    release_free_memory()
                timings["windows"] = time.perf_counter() - t
                t = time.perf_counter()
                tell("finding berms", 0, 1)
                berms = scene_berms(work, fort, grid.transform)
                totals.found.berms += berms
                # piles the DSMs found on a berm's body are the berm (the windows did not know)
                totals.found.rubble = drop_on_berms(totals.found.rubble, berms)
                tell("finding berms", 1, 1)
                timings["berms"] = time.perf_counter() - t

            t = time.perf_counter()
            dates = {"date_before": binfo.date, "date_after": ainfo.date}
            cleared, cpolys = cleared_layer(totals, grid, opts.min_cleared_ha, dates)
        layers = {"cleared_areas": cleared}
        out_crs = binfo.grid.crs

        def write_buildings(part: gpd.GeoDataFrame) -> None:
            # footprints held in a file: the layer goes out a run at a time
            if out_crs != grid.crs:
                part = part.to_crs(out_crs)
            append_layer(tmp / "findings.gpkg", "buildings", part)
            written[0] += len(part)
            tell("writing buildings", written[0], len(fps))

        written = [0]
        found_b, building_totals = building_layers(fps, totals, grid, dates, write_buildings)
        layers.update(found_b)
        layers.update(
            fortification_layers(
                totals.found,
                grid.crs,
                dates,
                road_lines is not None,
                dsm_given=dsms is not None and rules.on("berms"),
                razed=layers.get("razed_buildings"),
            )
        )
        routes_summary = None
        if core_poly is not None:
            routes_summary = route_layers(
                road_lines, grid, core_poly, layers, dsms, rules, opts.dsm_obstacles, dates
            )
        t_vis = time.perf_counter()
        vis_layer, vis_summary = run_visibility(
            grid,
            tmp,
            dsm_before=dsm_before,
            dsm_after=dsm_after,
            dem=dem,
            buildings=buildings_for_visibility(
                layers,
                fps,
                tmp / "findings.gpkg",
                (edge is not None or core_poly is not None) and not dsms,
            ),  # fmt: skip
            edge_file=edge,
            core=core_poly,
            fortifications=[layers.get("barricades"), layers.get("berms")],
            dates=dates,
            images=(breader, areader) if bands is not None else None,
            dem_accuracy_m=opts.dem_accuracy_m,
            cleared=layers.get("cleared_areas"),
            dsm_after_plane=dsm_noise.plane if dsm_noise and dsm_noise.corrected else None,
        )
        if vis_layer is not None:
            layers["visibility"] = vis_layer
        timings["visibility"] = time.perf_counter() - t_vis
        if binfo.grid.crs != grid.crs:
            layers = {k: v.to_crs(binfo.grid.crs) for k, v in layers.items()}
        write_layers(tmp / "findings.gpkg", layers)
        timings["scene_wide"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t0
        if compiling.done:
            timings["compiling_kernels"] = compiling.duration

        summary = {
            "fortmap_version": __version__,
            "inputs": inputs_entry(
                before=binfo.path,
                after=ainfo.path,
                buildings=buildings,
                roads=roads,
                places=places,
                dsm_before=dsm_before,
                dsm_after=dsm_after,
                dem=dem,
                edge=edge,
            ),  # fmt: skip
            "dates": {"before": binfo.date, "after": ainfo.date},
            "grid": grid_entry(grid),
            "overlap_fraction": round(overlap, 4),
            "valid_fraction": round(totals.valid_px / (grid.width * grid.height), 4),
            "coregistration": coreg.as_dict(gsd),
            "radiometry": maps.as_dict(),
            "counts": {k: int(len(v)) for k, v in layers.items() if k != "buildings"},
            "buildings": building_totals,
            "areas": {
                "cleared_ha": round(float(sum(p.area for p in cpolys)) / 1e4, 3),
                "changed_ha": round(totals.changed_px * gsd * gsd / 1e4, 3),
            },
            "razed_buildings_from": "footprints" if fps is not None else "change objects",
            "change_from": change_entry(net, opts.change_model),
            "roads": roads_entry(roads, roads_from, road_lines, derived_ev),
            "roads_from": roads_from,
            "not_analysed": [] if road_lines is not None else ["barricades", "rubble", "routes"],
            "sun_azimuth_deg": None if sun_az is None else round(float(sun_az), 1),
            "sun_elevation_deg": None if sun_el is None else round(float(sun_el), 1),
            "sun_azimuth_from": sun_from,
            "berms_from": "image and DSM" if dsms and rules.on("berms") else "image",
            "scene_measures": scene_measures_entry(
                fort.road_noise, fort.berm_bounds, ctx.footprint_scene
            ),
            "dsm_quality": dsm_entry,
            "routes": routes_summary,
            "visibility": vis_summary,
            "timings_s": {k: round(v, 3) for k, v in timings.items()},
            "megapixels_per_second": round(grid.width * grid.height / 1e6 / timings["total"], 3),
        }
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2))
        if opts.report:
            from fortmap.report.html import write_report

            t = time.perf_counter()
            tell("writing report", 0, 1)
            # the report's arrays on a clean heap, not on the windows' fragments
            with plain_heap():
                write_report(tmp, places=places, credit=opts.credit, name=Path(out_dir).name)
            tell("writing report", 1, 1)
            summary["timings_s"]["report"] = round(time.perf_counter() - t, 3)
            (tmp / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
