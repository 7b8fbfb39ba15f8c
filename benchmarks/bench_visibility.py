"""Visibility gain on the simulated city: footprint surfaces against the simulator's true DSMs.

Three gains (km2 of ground newly seen minus no longer seen, from the core's boundary):

* ``true``: the simulator's DSMs (terrain, buildings, trees, berms, debris) before and after;
* ``footprints_true_razed``: a DEM plus ``buildings.geojson`` raised to their ``height``, the
  truth's razed buildings removed after (the surface model's own error: no trees, no berms);
* ``footprints_detected``: the same with the buildings ``analyze`` classed ``destroyed``
  removed instead (what ``analyze`` reports without DSMs);
* with ``--seed``, ``true_no_trees``: the simulator's surfaces rebuilt in memory (same seed,
  so the same city) without tree canopies: terrain, buildings, berms and debris only. It
  splits the footprint model's error into what trees cause and the rest.

The simulator writes no DEM, so the DEM is estimated from the before DSM, unsupervised: a
minimum filter 81 m wide (wider than any block of buildings, so every window holds ground)
followed by an 81 m mean to smooth the steps; the simulated terrain varies over hundreds of
metres, so this is within decimetres of it.

    fortmap simulate --out SIM
    fortmap analyze --before SIM/before.tif --after SIM/after.tif \\
        --buildings SIM/buildings.geojson --out RUN
    python benchmarks/bench_visibility.py --sim SIM --run RUN [--seed 0] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
from scipy import ndimage as ndi

from fortmap.analyze.core import parse_core
from fortmap.analyze.surface import build_surface, destroyed_ids
from fortmap.analyze.viewshed import read_dem
from fortmap.analyze.visibility import visibility_change

GROUND_WINDOW_M = 81.0


def estimate_dem(dsm: np.ndarray, gsd: float) -> np.ndarray:
    """Ground heights (m) under a DSM: a wide minimum filter, then a mean of the same width."""
    # the 4x coarser minimum keeps the filter cheap on a 4000 x 4000 DSM; ground is smooth
    f = 4
    h, w = dsm.shape
    coarse = dsm[: h - h % f, : w - w % f].reshape(h // f, f, w // f, f).min(axis=(1, 3))
    k = max(3, int(round(GROUND_WINDOW_M / (gsd * f))) | 1)
    ground = ndi.uniform_filter(ndi.minimum_filter(coarse, k, mode="nearest"), k, mode="nearest")
    full = np.repeat(np.repeat(ground, f, axis=0), f, axis=1)
    return np.pad(full, ((0, h - full.shape[0]), (0, w - full.shape[1])), mode="edge")


def surfaces_without_trees(seed: int, size_m: float, gsd: float) -> tuple[np.ndarray, np.ndarray]:
    """The simulated city's before/after surfaces (m) without canopies, rebuilt from ``seed``."""
    from fortmap.simulate import raster as R
    from fortmap.simulate.changes import apply_changes, plan_changes
    from fortmap.simulate.layout import plan_city
    from fortmap.simulate.noise import make_textures

    # the same generator split as fortmap.simulate.scene.simulate_city, so the same city
    r_plan, r_change, r_ras, r_tex = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(7)[:4]
    )
    n = int(round(size_m / gsd))
    city = plan_city(r_plan, n * gsd)
    ch = plan_changes(r_change, city)
    tex = make_textures(r_tex, (n, n), gsd)
    before = R.rasterize_city(r_ras, city, gsd, tex)
    after = apply_changes(r_ras, before, city, ch, gsd, tex)
    return tuple(s.ground + s.obj_h + s.relief for s in (before, after))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sim", type=Path, required=True, help="fortmap simulate output folder")
    ap.add_argument("--run", type=Path, help="fortmap analyze output folder (detected razed)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--seed", type=int, help="simulate seed of SIM: add true_no_trees")
    ap.add_argument("--resolution", type=float, default=2.0)
    a = ap.parse_args()

    zb, grid = read_dem(a.sim / "dsm_before.tif")
    za, _ = read_dem(a.sim / "dsm_after.tif")
    core = parse_core("Old City", grid.crs, grid.bounds, a.sim / "places.geojson")
    fp = gpd.read_file(a.sim / "buildings.geojson")
    truth_razed = set(gpd.read_file(a.sim / "truth.gpkg", layer="razed_buildings")["id"])
    t0 = time.perf_counter()
    dem = estimate_dem(zb, grid.gsd)
    t_dem = time.perf_counter() - t0

    surfaces = {"true": (zb, za)}
    if a.seed is not None:
        meta = json.loads((a.sim / "scene.json").read_text())
        nb, na = surfaces_without_trees(a.seed, meta["size_m"], meta["gsd_m"])
        d = float(np.abs(np.maximum(nb, zb) - zb).max())
        print(f"rebuilt surfaces: max excess over dsm_before {d:.3f} m (0: same city)")
        surfaces["true_no_trees"] = (nb, na)
    t0 = time.perf_counter()
    s_before = build_surface(grid, fp, dem=dem)
    surfaces["footprints_true_razed"] = (
        s_before,
        build_surface(grid, fp, dem=dem, razed_ids=truth_razed),
    )
    t_build = (time.perf_counter() - t0) / 2
    if a.run is not None:
        found = gpd.read_file(a.run / "findings.gpkg", layer="buildings")
        det = destroyed_ids(found)
        surfaces["footprints_detected"] = (
            s_before,
            build_surface(grid, fp, dem=dem, razed_ids=det),
        )
        tp = len(det & truth_razed)
        print(f"detected destroyed: {len(det)} ({tp} of {len(truth_razed)} truly razed)")

    res = {}
    for name, (b, af) in surfaces.items():
        times = []
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            r = visibility_change(b, af, grid.transform, grid.crs, core, resolution_m=a.resolution)
            times.append(time.perf_counter() - t0)
        res[name] = r.summary
        s = r.summary
        print(
            f"{name:24s} seen before {s['seen_before_km2']:.4f} after {s['seen_after_km2']:.4f} "
            f"gain {s['gain_km2']:.4f} (+{s['newly_seen_km2']:.4f} -{s['no_longer_seen_km2']:.4f})"
            f" km2; {statistics.median(times):.2f} s (median of {a.repeat})"
        )
    g_true = res["true"]["gain_km2"]
    for name in res:
        if name.startswith("footprints") and "true_no_trees" in res:
            g = res[name]["gain_km2"]
            g_nt = res["true_no_trees"]["gain_km2"]
            print(f"{name}: gain vs true_no_trees {g_nt:.4f}: {100 * (g / g_nt - 1):+.1f} %")
        if name != "true":
            g = res[name]["gain_km2"]
            print(f"{name}: gain {g:.4f} km2 vs true {g_true:.4f}: {100 * (g / g_true - 1):+.1f} %")
    if "footprints_detected" in res:
        g0 = res["footprints_true_razed"]["gain_km2"]
        g1 = res["footprints_detected"]["gain_km2"]
        print(
            f"detection alone (detected vs true razed, same surface model): {100 * (g1 / g0 - 1):+.1f} %"
        )
    print(f"DEM estimate {t_dem:.2f} s, build_surface {t_build:.2f} s per date")
    print(
        json.dumps(
            {k: {kk: v[kk] for kk in ("gain_km2", "open_ground_km2")} for k, v in res.items()}
        )
    )


if __name__ == "__main__":
    main()
