"""Visibility gain on the simulated city: what ``analyze`` reports against the true DSMs.

The visibility step of an ``analyze`` run is re-run here on its own findings (its
``buildings`` layer with ``damage``, its barricades and berms), on the edge it used (the ring
of fortifications around the core when they surround it, else the core's boundary), exactly
as ``analyze`` builds it (:func:`fortmap.analyze.visibility_step.footprint_surfaces`: the
footprints raised to their height on the image's pixels and kept at each 2 m cell's highest,
tree crowns from the images, the berms found, 1 m of debris on the razed footprints). Gains
(km2 of ground newly seen minus no longer seen, observers every 50 m, 2 km reach) against the
gain on the simulator's true DSMs on the same edge:

* ``DSMs given``: the true DSMs through ``run_visibility`` (a sanity check: 0 %);
* ``flat ground``: no DEM, what ``analyze`` reports without ``--dem``;
* ``dem.tif``: the simulator's public-style DEM (bare earth in 30 m cells with about a metre
  of noise), what ``analyze --dem SIM/dem.tif`` reports;
* ``dem.tif, true razed list``, ``dem.tif, true berms`` and (``--true-canopy``) ``dem.tif,
  true canopy``: one detected part swapped for the truth (a diagnostic of where the error
  comes from; nothing is fitted to it);
* ``ground from the before DSM``: a DEM estimated from the before DSM (below) instead, for
  scenes written before the simulator wrote ``dem.tif``.

Razed footprints inside the cleared areas the run found get no debris (as in ``analyze``). The
``dem.tif`` row also gets the interval ``analyze`` reports: the 5th-95th percentiles of the gain
over ``--draws`` DEMs perturbed by ``--dem-accuracy`` metres (RMSE) per DEM cell, and whether
the true gain falls inside it.

The DSM ground estimate is unsupervised: a minimum filter 81 m wide (wider than any block of
buildings, so every window holds ground) followed by an 81 m mean to smooth the steps.

    fortmap simulate --out SIM [--seed 0]
    fortmap analyze --before SIM/before.tif --after SIM/after.tif \\
        --buildings SIM/buildings.geojson --roads SIM/roads.geojson \\
        --places SIM/places.geojson --core "Old City" --no-report [--dem SIM/dem.tif] --out RUN
    python benchmarks/bench_visibility.py --sim SIM --run RUN [--true-canopy] [--dem-accuracy M]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
from scipy import ndimage as ndi

from fortmap.align.coregister import coregister
from fortmap.analyze.core import parse_core
from fortmap.analyze.surface import destroyed_ids, edge_from, warp_to_grid
from fortmap.analyze.viewshed import read_dem
from fortmap.analyze.visibility import visibility_change
from fortmap.analyze.visibility_step import (
    DEFAULT_DEM_ACCURACY_M,
    DEM_DRAWS,
    VISIBILITY_RES_M,
    _berms_of,
    coarse_grid,
    dem_offsets,
    footprint_surfaces,
    gain_interval,
    run_visibility,
)
from fortmap.detect.canopy import CanopyStats, canopy_heights
from fortmap.io.raster import GridReader

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


def true_canopy(sim: Path, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """The simulator's tree canopy heights (m) before and after, highest per coarse cell.

    Re-plans and re-rasterises the scene from ``scene.json``'s seed (generated cities only,
    not ``--osm`` ones; about 12 CPU s and 2 GB for a 2 km scene at 0.5 m).
    """
    from fortmap.simulate import raster as R
    from fortmap.simulate.changes import apply_changes, plan_changes
    from fortmap.simulate.layout import plan_city
    from fortmap.simulate.noise import make_textures

    meta = json.loads((sim / "scene.json").read_text())
    if meta.get("osm"):
        raise SystemExit(f"{sim}: --true-canopy needs a generated city, not an OSM one")
    n, gsd = int(meta["width_px"]), float(meta["gsd_m"])
    streams = np.random.SeedSequence(int(meta["seed"])).spawn(4)
    r_plan, r_change, r_ras, r_tex = (np.random.default_rng(s) for s in streams)
    city = plan_city(r_plan, float(meta["size_m"]))
    ch = plan_changes(r_change, city)
    tex = make_textures(r_tex, (n, n), gsd)
    before = R.rasterize_city(r_ras, city, gsd, tex)
    after = apply_changes(r_ras, before, city, ch, gsd, tex)
    m = n // factor * factor

    def cells(c: np.ndarray) -> np.ndarray:
        return c[:m, :m].reshape(m // factor, factor, m // factor, factor).max(axis=(1, 3))

    return cells(before.canopy), cells(after.canopy)


def _layer(path: Path, name: str) -> gpd.GeoDataFrame | None:
    if name not in pyogrio.list_layers(path)[:, 0]:
        return None
    return gpd.read_file(path, layer=name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sim", type=Path, required=True, help="fortmap simulate output folder")
    ap.add_argument("--run", type=Path, required=True, help="fortmap analyze output folder")
    ap.add_argument(
        "--tree-height", type=float, help="crown top (m) for all trees (default: from shadows)"
    )
    ap.add_argument(
        "--quick", action="store_true", help="only what analyze reports (flat ground, DEM)"
    )
    ap.add_argument("--dem", type=Path, help="DEM to use (default: SIM/dem.tif)")
    ap.add_argument(
        "--true-canopy", action="store_true", help="also a row with the simulator's canopy"
    )
    ap.add_argument(
        "--canopy", type=Path, help="npz of canopy heights (b, a) to use instead of finding them"
    )
    ap.add_argument(
        "--dem-accuracy", type=float, default=DEFAULT_DEM_ACCURACY_M,
        help="vertical accuracy of the DEM, m RMSE, for the interval (0: none)",
    )  # fmt: skip
    ap.add_argument("--draws", type=int, default=DEM_DRAWS, help="perturbed DEMs for it")
    ap.add_argument("--json", type=Path, help="also write the table here")
    a = ap.parse_args()

    zb, grid = read_dem(a.sim / "dsm_before.tif")
    za, _ = read_dem(a.sim / "dsm_after.tif")
    core = parse_core("Old City", grid.crs, grid.bounds, a.sim / "places.geojson")
    gpkg = a.run / "findings.gpkg"
    found = gpd.read_file(gpkg, layer="buildings").to_crs(grid.crs)
    forts = [_layer(gpkg, n) for n in ("barricades", "berms")]
    forts = [f.to_crs(grid.crs) if f is not None else None for f in forts]
    edge, source = edge_from(grid.crs, None, core, forts)
    berms = _berms_of(forts)
    cleared = _layer(gpkg, "cleared_areas")
    truth = a.sim / "truth.gpkg"
    truth_razed = set(gpd.read_file(truth, layer="razed_buildings")["id"])
    true_berms = gpd.read_file(truth, layer="berms")
    det = destroyed_ids(found)
    print(
        f"edge: {source}; destroyed found {len(det)} ({len(det & truth_razed)} of "
        f"{len(truth_razed)} true); berms found {0 if berms is None else len(berms)}, "
        f"{len(true_berms)} in the truth"
    )
    coarse, f = coarse_grid(grid, VISIBILITY_RES_M)

    rows: list[tuple[str, dict]] = []
    t0 = time.process_time()
    r = visibility_change(zb, za, grid.transform, grid.crs, edge, resolution_m=VISIBILITY_RES_M)
    t_vis = time.process_time() - t0
    g_true = r.summary["gain_km2"]
    rows.append(("true DSMs", r.summary))
    with tempfile.TemporaryDirectory() as tmp:
        _, s = run_visibility(
            grid, Path(tmp), dsm_before=a.sim / "dsm_before.tif",
            dsm_after=a.sim / "dsm_after.tif", dem=None, buildings=None, edge_file=None,
            core=core, fortifications=forts, dates={},
        )  # fmt: skip
    rows.append(("DSMs given (run_visibility)", s))

    rb = GridReader(a.sim / "before.tif", grid, [1, 2, 3])
    ra = GridReader(a.sim / "after.tif", grid, [1, 2, 3])
    ra.set_pixel_warp(coregister(rb, ra).warp)
    t0 = time.process_time()
    st = CanopyStats()
    if a.canopy is not None:
        npz = np.load(a.canopy)
        canopy = (npz["b"], npz["a"])
        print(f"canopy: from {a.canopy}")
    else:
        canopy = canopy_heights(rb, ra, grid, f, tree_height_m=a.tree_height, stats=st)
        top = "none" if st.scene_top_m is None else f"{st.scene_top_m:.2f} m"
        print(f"canopy: scene crown top {top}, {st.measured} of {st.crowns} crowns measured")
    t_can = time.process_time() - t0
    if canopy is not None:
        felled = (canopy[0] > 0) & ~(canopy[1] > 0)
        print(f"canopy: {int((canopy[0] > 0).sum())} cells before, {int(felled.sum())} felled")
    dem_path = a.dem if a.dem is not None else a.sim / "dem.tif"
    variants: dict[str, dict] = {"flat ground (analyze, no DEM)": {"ground": None}}
    if dem_path.exists():
        z, g = read_dem(dem_path)
        dem = warp_to_grid(z, g.transform, g.crs, coarse)
        variants["dem.tif (analyze --dem)"] = {"ground": dem, "interval": True}
        variants["dem.tif, true razed list"] = {"ground": dem, "razed": truth_razed}
        variants["dem.tif, true berms"] = {"ground": dem, "berms": true_berms.to_crs(grid.crs)}
        variants["dem.tif, no cleared areas"] = {"ground": dem, "cleared": None}
        if a.true_canopy:
            variants["dem.tif, true canopy"] = {"ground": dem, "canopy": true_canopy(a.sim, f)}
    else:
        print(f"no {dem_path}: rows with a DEM skipped")
    ground = warp_to_grid(estimate_dem(zb, grid.gsd), grid.transform, grid.crs, coarse)
    variants["ground from the before DSM"] = {"ground": ground}
    col = "id" if "id" in found.columns else "fid"
    if a.quick:
        variants = dict(list(variants.items())[:2])
    t_build = []
    for name, kw in variants.items():
        t0 = time.process_time()
        sb, sa, cg, _ = footprint_surfaces(
            grid, found, kw.get("razed", det), id_column=col, ground=kw["ground"],
            canopy=kw.get("canopy", canopy), berms=kw.get("berms", berms), res_m=VISIBILITY_RES_M,
            cleared=kw.get("cleared", cleared),
        )  # fmt: skip
        t_build.append(time.process_time() - t0)
        r = visibility_change(sb, sa, cg.transform, cg.crs, edge, resolution_m=VISIBILITY_RES_M)
        summ = dict(r.summary)
        if kw.get("interval") and a.dem_accuracy > 0 and a.draws > 0:
            t0 = time.process_time()
            offs = dem_offsets(z.shape, g.transform, g.crs, cg, a.dem_accuracy, a.draws)
            summ["low"], summ["high"] = gain_interval(sb, sa, cg, edge, offs, max_distance=2000.0)
            t_int = time.process_time() - t0
            print(
                f"{name}: interval [{summ['low']:.4f}, {summ['high']:.4f}] km2 "
                f"({100 * (summ['low'] / g_true - 1):+.1f} .. {100 * (summ['high'] / g_true - 1):+.1f} %"
                f" of the true gain), true gain inside: {summ['low'] <= g_true <= summ['high']}; "
                f"{a.draws} draws at {a.dem_accuracy:g} m, {t_int:.1f} CPU s"
            )
        rows.append((name, summ))
    print()
    print("| surface | seen before (km2) | seen after (km2) | gain (km2) | vs true |")
    print("|---|---|---|---|---|")
    out = []
    for name, s in rows:
        g = s["gain_km2"]
        rel = "-" if name == "true DSMs" else f"{100 * (g / g_true - 1):+.1f} %"
        print(
            f"| {name} | {s['seen_before_km2']:.4f} | {s['seen_after_km2']:.4f} | {g:.4f} | {rel} |"
        )
        out.append({"surface": name, "gain_km2": g,
                    "seen_before_km2": s["seen_before_km2"], "seen_after_km2": s["seen_after_km2"],
                    **({"gain_km2_low": s["low"], "gain_km2_high": s["high"]} if "low" in s else {})})  # fmt: skip
    print()
    print(
        f"CPU: canopy {t_can:.2f} s, surfaces {np.median(t_build):.2f} s per pair (median), "
        f"visibility on the true DSMs {t_vis:.2f} s"
    )
    if a.json is not None:
        a.json.write_text(json.dumps({"sim": str(a.sim), "edge": source, "rows": out,
                                      "gain_true_km2": g_true}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
