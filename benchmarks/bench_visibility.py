"""Visibility gain on the simulated city: surfaces from footprints against the true DSMs.

Gains (km2 of ground newly seen minus no longer seen, from the core's boundary, 2 m grid):

* ``true DSMs``: the simulator's DSMs (terrain, buildings, trees, berms, debris);
* ``footprints only``: a DEM plus ``buildings.geojson`` raised to their ``height``, the razed
  ones removed after (what ``analyze`` did before canopy and berms were added);
* ``+ canopy``: tree crowns found in the before image (excess green and crown darkness, both
  Otsu) raised as domes to the top measured from their shadows (or ``--tree-height``), those
  no longer vegetated in the after image gone;
* ``+ berms``: the berms ``analyze`` found (``--run``), raised to their height or 2.5 m;
* ``+ debris``: the razed footprints covered by 1 m of debris after (what ``analyze`` does).

Each with the truth's razed list and, with ``--run``, the buildings ``analyze`` classed
``destroyed``. Surfaces are built on the 2 m visibility grid; nothing is fitted to the truth.

The simulator writes no DEM, so the DEM is estimated from the before DSM, unsupervised: a
minimum filter 81 m wide (wider than any block of buildings, so every window holds ground)
followed by an 81 m mean to smooth the steps; the simulated terrain varies over hundreds of
metres, so this is within decimetres of it.

    fortmap simulate --out SIM [--seed 0]
    fortmap analyze --before SIM/before.tif --after SIM/after.tif \\
        --buildings SIM/buildings.geojson --roads SIM/roads.geojson \\
        --places SIM/places.geojson --core "Old City" --no-report --out RUN
    python benchmarks/bench_visibility.py --sim SIM --run RUN
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
from scipy import ndimage as ndi

from fortmap.align.coregister import coregister
from fortmap.analyze.core import parse_core
from fortmap.analyze.surface import destroyed_ids, warp_to_grid
from fortmap.analyze.viewshed import read_dem
from fortmap.analyze.visibility import visibility_change
from fortmap.analyze.visibility_step import (
    VISIBILITY_RES_M,
    _berms_of,
    coarse_grid,
    footprint_surfaces,
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sim", type=Path, required=True, help="fortmap simulate output folder")
    ap.add_argument("--run", type=Path, help="fortmap analyze output folder (detected razed)")
    ap.add_argument(
        "--tree-height", type=float, help="crown top (m) for all trees (default: from shadows)"
    )
    ap.add_argument(
        "--quick", action="store_true", help="only the full surface with the detected razed list"
    )
    ap.add_argument("--json", type=Path, help="also write the table here")
    a = ap.parse_args()

    zb, grid = read_dem(a.sim / "dsm_before.tif")
    za, _ = read_dem(a.sim / "dsm_after.tif")
    core = parse_core("Old City", grid.crs, grid.bounds, a.sim / "places.geojson")
    fp = gpd.read_file(a.sim / "buildings.geojson")
    truth_razed = set(gpd.read_file(a.sim / "truth.gpkg", layer="razed_buildings")["id"])
    coarse, f = coarse_grid(grid, VISIBILITY_RES_M)
    ground = warp_to_grid(estimate_dem(zb, grid.gsd), grid.transform, grid.crs, coarse)

    lists = {"true razed": truth_razed}
    berms = None
    if a.run is not None:
        found = gpd.read_file(a.run / "findings.gpkg", layer="buildings")
        lists["detected razed"] = det = destroyed_ids(found)
        print(f"detected destroyed: {len(det)} ({len(det & truth_razed)} of {len(truth_razed)})")
        try:
            berms = _berms_of([gpd.read_file(a.run / "findings.gpkg", layer="berms")])
        except Exception:  # noqa: BLE001 - an older run without the layer
            berms = None
    n_berms = 0 if berms is None else len(berms)
    n_true = len(gpd.read_file(a.sim / "truth.gpkg", layer="berms"))
    print(f"berms: {n_berms} found by analyze, {n_true} in the truth")

    bands = [1, 2, 3]
    rb = GridReader(a.sim / "before.tif", grid, bands)
    ra = GridReader(a.sim / "after.tif", grid, bands)
    ra.set_pixel_warp(coregister(rb, ra).warp)
    t0 = time.process_time()
    st = CanopyStats()
    canopy = canopy_heights(rb, ra, grid, f, tree_height_m=a.tree_height, stats=st)
    t_can = time.process_time() - t0
    cells = [0 if canopy is None else int((c > 0).sum()) for c in canopy or (None, None)]
    top = "none" if st.scene_top_m is None else f"{st.scene_top_m:.2f} m"
    print(
        f"canopy: {cells[0]} cells before, {cells[1]} after ({coarse.res[0]:.1f} m); sun "
        f"{st.sun}; scene crown top {top} ({'default' if st.default_used else 'measured'}), "
        f"{st.measured} of {st.crowns} crowns measured; {t_can:.2f} CPU s "
        f"({grid.width * grid.height / t_can / 1e6:.1f} Mpx per CPU s)"
    )
    none = (np.zeros((coarse.height, coarse.width), np.float32),) * 2
    variants = {
        "footprints only (old)": {"canopy": none, "berms": None, "debris_m": 0.0},
        "+ canopy": {"canopy": canopy or none, "berms": None, "debris_m": 0.0},
        "+ canopy + berms": {"canopy": canopy or none, "berms": berms, "debris_m": 0.0},
        "+ canopy + berms + debris": {"canopy": canopy or none, "berms": berms},
    }
    if a.quick:
        variants = {k: v for k, v in variants.items() if k == "+ canopy + berms + debris"}
        lists = {k: v for k, v in lists.items() if k == "detected razed"} or lists
    rows = []
    t0 = time.process_time()
    r = visibility_change(zb, za, grid.transform, grid.crs, core, resolution_m=VISIBILITY_RES_M)
    t_vis = time.process_time() - t0
    g_true = r.summary["gain_km2"]
    rows.append(("true DSMs", "-", r.summary))
    t_build = []
    for name, kw in variants.items():
        for lname, ids in lists.items():
            t0 = time.process_time()
            sb, sa, cg, _ = footprint_surfaces(grid, fp, ids, ground=ground, **kw)
            t_build.append(time.process_time() - t0)
            r = visibility_change(sb, sa, cg.transform, cg.crs, core, resolution_m=cg.res[0])
            rows.append((name, lname, r.summary))
    print()
    print("| surface | razed list | seen before (km2) | seen after (km2) | gain (km2) | vs true |")
    print("|---|---|---|---|---|---|")
    out = []
    for name, lname, s in rows:
        g = s["gain_km2"]
        rel = "-" if name == "true DSMs" else f"{100 * (g / g_true - 1):+.1f} %"
        print(
            f"| {name} | {lname} | {s['seen_before_km2']:.4f} | {s['seen_after_km2']:.4f} "
            f"| {g:.4f} | {rel} |"
        )
        out.append({"surface": name, "razed": lname, "gain_km2": g,
                    "seen_before_km2": s["seen_before_km2"], "seen_after_km2": s["seen_after_km2"]})  # fmt: skip
    print()
    print(
        f"CPU: canopy {t_can:.2f} s, surfaces {np.median(t_build):.2f} s per pair (median), "
        f"visibility on the true DSMs {t_vis:.2f} s"
    )
    if a.json is not None:
        a.json.write_text(json.dumps({"sim": str(a.sim), "rows": out}, indent=1))


if __name__ == "__main__":
    main()
