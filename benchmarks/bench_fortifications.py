"""Barricades, berms and rubble on simulated scenes, window by window, scored against truth.

Usage: python benchmarks/bench_fortifications.py [--grid] [SCENE_DIR ...]
(scenes from ``fortmap simulate --out DIR --seed N``; ``--grid`` adds the difficulty grid,
easy/default/hard/extreme at seed 0 and 2 km, simulated into bench-out/simulated when absent).
The images are co-registered and matched as ``fortmap analyze`` does, then read by 1024 px
cores with a halo, and each window goes through ``fortifications.detect_window`` with the sun
angles from the after image's tags and the DSMs, as ``fortmap analyze`` with DSMs runs it
(barricades; rubble, less what touches a block row; berms from image and DSM). Not applied
here: the rule that leaves a razed building's spill to the razed layer (no razed buildings
are found in this bench), so rubble precision can be lower than the whole job's
(``bench_simulated.py``). Berms are scored twice: from imagery only (a second pass without the
DSMs) and with the DSMs. Route status: the route analysis is run on the detected barricades,
rubble and DSM berms and on the obstacles measured on the DSMs, as ``fortmap analyze`` does,
and each entry point's status (open/cut) is compared with the truth's.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import geopandas as gpd
import rasterio
import shapely
from affine import Affine
from rasterio.windows import Window

from fortmap.align.coregister import coregister
from fortmap.align.pair import normalise_pair
from fortmap.analyze.clearance import obstacles_on_grid
from fortmap.analyze.core import parse_core
from fortmap.analyze.routes import routes_in_area
from fortmap.berm_scene import WorkGrid, drop_on_berms, scene_berms, work_part
from fortmap.detect.barricades import MIN_SIGMA
from fortmap.detect.berms import merge_pieces, scene_berm_bounds
from fortmap.detect.road_noise import scene_road_noise
from fortmap.detect.sun import sun_from_tags
from fortmap.evaluate.match import score_lengths, score_lines, score_polygons
from fortmap.evaluate.routes import score_entry_points
from fortmap.fortifications import FortContext, detect_window
from fortmap.io.grids import windows
from fortmap.io.raster import GridReader, open_info
from fortmap.io.roads import read_roads

CORE, HALO = 1024, 64
GRID_OUT = Path(__file__).resolve().parents[1] / "bench-out" / "simulated"


def _route_status(d: Path, grid, roads, bars: list, rubs: list, berms: list, dsms) -> dict | None:  # noqa: ANN001
    """Entry-point status of the detected obstacles against the truth's."""
    import warnings

    if not (d / "places.geojson").exists():
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        core = parse_core("Old City", grid.crs, grid.bounds, d / "places.geojson")
    obst = {
        "barricades": gpd.GeoDataFrame(
            {"score": [s for _, s, _ in bars]}, geometry=[g for g, _, _ in bars], crs=grid.crs
        ),
        "rubble": gpd.GeoDataFrame(
            {
                "score": [s for _, s, _ in rubs],
                "passable_width_m": [at.get("passable_width_m") for _, _, at in rubs],
            },
            geometry=[g for g, _, _ in rubs],
            crs=grid.crs,
        ),
        "berms": gpd.GeoDataFrame(geometry=list(berms), crs=grid.crs),
    }
    clearance = obstacles_on_grid(*dsms, grid, roads)
    res = routes_in_area(roads, grid.bounds, core, obst, clearance)
    truth = gpd.read_file(d / "truth.gpkg", layer="entry_points")
    return score_entry_points(truth, res.entry_points)


def _to_crs(g: shapely.Geometry, t: Affine) -> shapely.Geometry:
    return shapely.affinity.affine_transform(g, [t.a, t.b, t.d, t.e, t.c, t.f])


def run_scene(d: Path) -> dict:
    """Findings and scores of one simulated scene."""
    bi, ai = open_info(d / "before.tif"), open_info(d / "after.tif")
    grid = bi.grid
    br, ar = GridReader(bi.path, grid, [1, 2, 3]), GridReader(ai.path, grid, [1, 2, 3])
    ar.set_pixel_warp(coregister(br, ar).warp)
    # as ``fortmap analyze``: radiometric maps and the berm bounds from the sample mosaic
    _, nb_s, na_s, sv = normalise_pair(br, ar, grid, 1024, False)
    bounds = scene_berm_bounds(nb_s, na_s, sv, grid.gsd)
    dsm_b, dsm_a = GridReader(d / "dsm_before.tif", grid), GridReader(d / "dsm_after.tif", grid)
    with rasterio.open(ai.path) as ds:
        az, el = sun_from_tags(ds.tags())
    roads = read_roads(d / "roads.geojson", grid.crs, grid.bounds)
    # The simulator writes the class as ``class``, which read_roads does not know.
    raw = gpd.read_file(d / "roads.geojson")
    if "class" in raw.columns and len(raw) == len(roads):
        roads["road_class"] = raw["class"].to_numpy()
    gsd = grid.gsd
    # as ``fortmap analyze`` with DSMs: one detect_window per window (barricades, rubble with
    # the row rule, the berm work grid), then berms from image and DSM on the whole work grid;
    # image-only berms once more on a work grid without the DSMs
    noise = scene_road_noise(br, ar, grid.transform, grid.width, grid.height, roads, grid.gsd,
                             MIN_SIGMA)  # fmt: skip
    shape = (grid.height, grid.width)
    fc = FortContext(roads=roads, sun_azimuth=az, sun_elevation=el, dsm_before=dsm_b,
                     dsm_after=dsm_a, road_noise=noise, berm_bounds=bounds,
                     scene_shape=shape)  # fmt: skip
    fc_img = FortContext(roads=None, sun_azimuth=az, sun_elevation=el, berm_bounds=bounds)
    work_dsm, work_img = WorkGrid(shape, gsd, 3, True), WorkGrid(shape, gsd, 3, False)
    bars, rubs = [], []
    t_fort = t_berm = 0.0
    t0 = time.perf_counter()
    for core in windows(grid, CORE):
        c0, r0 = max(0, core.col_off - HALO), max(0, core.row_off - HALO)
        c1 = min(grid.width, core.col_off + core.width + HALO)
        r1 = min(grid.height, core.row_off + core.height + HALO)
        w = Window(c0, r0, c1 - c0, r1 - r0)
        b, a = br.read(w), ar.read(w)
        valid = br.read_valid(w) & ar.read_valid(w)
        cpx = (core.col_off - c0, core.row_off - r0, core.col_off - c0 + core.width,
               core.row_off - r0 + core.height)  # fmt: skip
        t = time.perf_counter()
        found = detect_window(fc, b, a, valid, w, cpx, grid.transform, gsd)
        bars += found.barricades
        rubs += found.rubble
        for part in found.works:
            work_dsm.add(part)
        t_fort += time.perf_counter() - t
        t = time.perf_counter()
        work_img.add(work_part(b, a, valid, w, core, gsd, shape))
        t_berm += time.perf_counter() - t
    t = time.perf_counter()
    berms_all = scene_berms(work_dsm, fc, grid.transform)
    rubs = drop_on_berms(rubs, berms_all)
    berm_dsm = [g for g, _, at in berms_all if at["kind"] == "berm"]
    t_fort += time.perf_counter() - t
    t = time.perf_counter()
    berm_img = [g for g, _, at in scene_berms(work_img, fc_img, grid.transform)
                if at["kind"] == "berm"]  # fmt: skip
    t_berm += time.perf_counter() - t
    work_dsm.close()
    work_img.close()
    total = time.perf_counter() - t0
    mp = grid.width * grid.height / 1e6
    truth = {k: gpd.read_file(d / "truth.gpkg", layer=k) for k in ("barricades", "berms", "rubble")}
    return {
        "barricades": score_lines(truth["barricades"].geometry.values, [g for g, _, _ in bars], 10),
        "rubble": score_polygons(truth["rubble"].geometry.values, [g for g, _, _ in rubs], 0.25),
        "berms_image": score_lengths(truth["berms"].geometry.values, merge_pieces(berm_img), 5),
        "berms_dsm": score_lengths(truth["berms"].geometry.values, merge_pieces(berm_dsm), 5),
        "routes": _route_status(d, grid, roads, bars, rubs, merge_pieces(berm_dsm), (dsm_b, dsm_a)),
        "mp_per_s_fort": mp / t_fort,
        "mp_per_s_berms": mp / t_berm,
        "seconds": total,
    }


def main(args: list[str]) -> None:
    dirs = [Path(a) for a in args if a != "--grid"]
    if "--grid" in args:
        from fortmap.simulate import simulate_city

        for diff in ("easy", "default", "hard", "extreme"):
            scene = GRID_OUT / f"{diff}_0_2000"
            if not (scene / "after.tif").exists():
                simulate_city(scene, seed=0, size_m=2000, difficulty=diff, force=True)
            if scene not in dirs:
                dirs.append(scene)
    print(f"{'scene':<24}{'layer':<13}{'P':>7}{'R':>7}{'F1':>7}{'n_true':>8}{'n_pred':>8}")
    for d in dirs:
        res = run_scene(d)
        name = d.name
        for k in ("barricades", "rubble"):
            s = res[k]
            print(f"{name:<24}{k:<13}{s['precision']:7.3f}{s['recall']:7.3f}{s['f1']:7.3f}"
                  f"{s['n_truth']:8.0f}{s['n_pred']:8.0f}")  # fmt: skip
        for k in ("berms_image", "berms_dsm"):
            s = res[k]
            print(f"{name:<24}{k:<13}{s['precision']:7.3f}{s['recall']:7.3f}{s['f1']:7.3f}"
                  f"{s['truth_length_m']:7.0f}m{s['pred_length_m']:7.0f}m")  # fmt: skip
        r = res["routes"]
        if r is not None:
            print(f"{name:<24}route status right {r.get('status_accuracy', float('nan')):.3f} "
                  f"({r.get('n_matched', '-')} of {r.get('n_truth', '-')} entries matched, "
                  f"{r.get('n_pred', '-')} predicted)")  # fmt: skip
        print(
            f"{name:<24}speed: fortification step {res['mp_per_s_fort']:.1f} MP/s, image-only "
            f"berms {res['mp_per_s_berms']:.1f} MP/s, {res['seconds']:.1f} s",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
