"""Roads derived from the before image against the simulator's true roads.

For each scene: completeness (share of true road length within 5 m of a derived road) and
correctness (share of derived length within 5 m of a true road), and the CPU seconds of the
derivation. Seeds 1-3 and the Helsinki layout with seed 1 were used while developing; seed 0 and
the Helsinki layout with seed 0 are held out. Then barricade F1 (``fortmap score``, a match within 10 m) on seed 0 with derived
roads against the given roads.

    python benchmarks/bench_roads_from_image.py [--work DIR] [--size-m 1000] [--no-f1]

Scenes are simulated into ``--work`` when not there yet (about 20 s each).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from fortmap.analysis import AnalyzeOptions, run_analysis
from fortmap.detect.roads_from_image import length_within, roads_from_image
from fortmap.evaluate.score import score_run
from fortmap.io.grids import analysis_grid
from fortmap.io.raster import GridReader, open_info
from fortmap.io.roads import read_roads

SHARED = Path(
    os.environ.get(
        "FORTMAP_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )
)


def simulate(out: Path, seed: int, size_m: float, osm: Path | None = None) -> Path:
    """Simulate a scene into ``out`` unless it is there already."""
    if not (out / "before.tif").exists():
        cmd = ["fortmap", "simulate", "--out", str(out), "--seed", str(seed)]
        cmd += ["--size-m", str(size_m), "--force"]
        if osm is not None:
            cmd += ["--osm", str(osm)]
        subprocess.run(cmd, check=True, capture_output=True)
    return out


def measure(scene: Path) -> dict:
    """Completeness, correctness, lengths (km) and CPU seconds of the derived roads."""
    info = open_info(scene / "before.tif")
    grid = analysis_grid(info)
    reader = GridReader(info.path, grid, [1, 2, 3])
    t = time.process_time()
    roads, ev = roads_from_image(reader, grid)
    cpu = time.process_time() - t
    truth = read_roads(scene / "roads.geojson", grid.crs, grid.bounds)
    return {
        "completeness": length_within(truth.geometry, roads.geometry, 5.0),
        "correctness": length_within(roads.geometry, truth.geometry, 5.0),
        "derived_km": roads.length.sum() / 1e3,
        "truth_km": truth.length.sum() / 1e3,
        "cpu_s": cpu,
        "mpx": grid.width * grid.height / 1e6,
        "pixel_m": ev["pixel_m"],
    }


def barricade_f1(scene: Path, work: Path) -> dict[str, float]:
    """Barricade F1 on ``scene`` with the given roads and with roads derived from the image."""
    out = {}
    for label, roads in (("given", scene / "roads.geojson"), ("derived", None)):
        run = work / f"run_{scene.name}_{label}"
        run_analysis(
            scene / "before.tif",
            scene / "after.tif",
            run,
            roads=roads,
            force=True,
            options=AnalyzeOptions(report=False),
        )
        b = score_run(scene / "truth.gpkg", run)["kinds"]["barricades"]
        out[label] = (b["f1"], b["precision"], b["recall"], int(b["n_pred"]), int(b["n_truth"]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("bench-out/roads_from_image"))
    ap.add_argument("--size-m", type=float, default=1000.0)
    ap.add_argument("--no-f1", action="store_true", help="skip the barricade F1 runs")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    scenes = [(f"seed {s}" + (" (held out)" if s == 0 else ""), s, None) for s in (1, 2, 3, 0)]
    osm = SHARED / "osm" / "helsinki.osm.pbf"
    if osm.exists():
        scenes.append(("helsinki layout seed 1", 1, osm))
        scenes.append(("helsinki layout (held out)", 0, osm))
    else:
        print(f"skipping the Helsinki-layout scene: {osm} not found", file=sys.stderr)
    print(f"{'scene':28s} {'complete':>8s} {'correct':>8s} {'km derived/true':>16s} "
          f"{'CPU s':>6s} {'Mpx/CPU s':>9s}")  # fmt: skip
    for label, seed, o in scenes:
        name = f"hel{seed}" if o else f"sim{seed}"
        d = simulate(args.work / f"{name}_{int(args.size_m)}", seed, args.size_m, o)
        m = measure(d)
        print(
            f"{label:28s} {m['completeness']:8.3f} {m['correctness']:8.3f} "
            f"{m['derived_km']:7.1f}/{m['truth_km']:<8.1f} {m['cpu_s']:6.1f} "
            f"{m['mpx'] / m['cpu_s']:9.2f}"
        )
    if not args.no_f1:
        d = args.work / f"sim0_{int(args.size_m)}"
        print("\nbarricades on seed 0 (F1, precision, recall, n_pred, n_truth):")
        for label, v in barricade_f1(d, args.work).items():
            print(f"  {label:8s} roads: F1 {v[0]:.3f}  P {v[1]:.3f}  R {v[2]:.3f}  {v[3]}/{v[4]}")


if __name__ == "__main__":
    main()
