"""Throughput and peak memory of ``analyze`` at several scene sizes.

Each scene is simulated once (cached under ``bench-out/``), then ``analyze`` runs in a fresh
child process limited to one thread, so the figures are per core; peak memory is the child's
maximum resident set size. The child first analyses a small warm-up scene (250 m), so that
imports and loading (or, on a first run, compiling) the numba kernels are timed apart from
the measured run; throughput is megapixels per CPU-second of the measured run (process CPU
time, which a busy machine inflates less than wall time). The report is not written
(``report=False``, like ``analyze --no-report``). Prints a Markdown table, then the CPU
seconds spent in each stage's functions (the windows stage includes the fortification,
footprint and change steps run inside it).

The machine's speed drifts over a day (by up to half on the project's shared machine), so
to compare two versions of the code, run them alternately in one call: ``--baseline-src``
names another checkout's ``src`` folder (e.g. a ``git worktree`` of an older commit), and
``--repeats`` runs each version that many times, alternating; the table then gives the median
and range of each version's CPU seconds.

    python benchmarks/bench_analyze.py [--sizes 1000 2000 3000] [--workers 0]
    python benchmarks/bench_analyze.py --sizes 1000 2000 --repeats 4 --baseline-src ../old/src

Simulating a city takes about 4 GB at 3 km and grows with the square of the side, so scenes over
``--simulate-up-to`` (4 km) are made as 2 x 2 mosaics of the scene half their size (images
tiled, footprints shifted): a real 8 km pair of 0.5 m images (256 megapixels each) that the
simulator could not hold, for measuring how memory follows the scene's size.

    python benchmarks/bench_analyze.py --sizes 2000 4000 8000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench-out" / "analyze"
#: Environment of a measured child process: one thread in every library, so figures are per core.
ONE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
    "GDAL_NUM_THREADS": "1",
}

CHILD = """
import json, sys, time, resource
from collections import defaultdict
c0 = time.process_time()
import fortmap.analysis as A, fortmap.tiles as T, fortmap.align.pair as P
from fortmap.analysis import AnalyzeOptions, run_analysis
from fortmap.detect.change import ChangeModel
# CPU seconds per stage: the stage functions are wrapped where the pipeline looks them up
cpu = defaultdict(float)
def timed(owner, name, key):
    f = getattr(owner, name)
    def g(*a, **k):
        t = time.process_time()
        try:
            return f(*a, **k)
        finally:
            cpu[key] += time.process_time() - t
    setattr(owner, name, g)
for owner, name, key in [
    (A, "open_footprints", "read footprints"), (A, "roads_from_image", "derive roads"),
    (P, "coregister", "coregister"), (P, "sample_mosaic", "fit"), (P, "fit_band_maps", "fit"),
    (A, "fit_change_model", "fit"), (A, "sun_angles", "fit"),
    (T, "process_window", "windows"), (T, "detect_window", "fortifications"),
    (ChangeModel, "evidence", "change"), (ChangeModel, "mask", "change"),
    (A, "write_layers", "write gpkg"),
]:
    if hasattr(owner, name):  # an older checkout run as the baseline may lack one
        timed(owner, name, key)
import fortmap.detect.footprints as F
timed(F, "footprint_features", "footprints")
scene, out, workers, fp, warm = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1", sys.argv[5]
def go(sc, o):
    return run_analysis(f"{sc}/before.tif", f"{sc}/after.tif", o, force=True,
                        buildings=f"{sc}/buildings.geojson" if fp else None,
                        options=AnalyzeOptions(workers=workers, report=False))
go(warm, out + "-warmup")
first = time.process_time() - c0
cpu.clear()
c, t = time.process_time(), time.perf_counter()
s = go(scene, out)
wall, total = time.perf_counter() - t, time.process_time() - c
print(json.dumps({"wall": wall, "cpu": total, "first": first, "timings": s["timings_s"],
                  "stage_cpu": dict(cpu), "grid": s["grid"],
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _simulate(scene: Path, size_m: float) -> None:
    """Simulate a scene in a process of its own: a child's peak RSS (``ru_maxrss``) starts from
    its parent's at the fork, so a parent grown by simulating a 3 km scene (about 4 GB) would
    show in every measured run."""
    code = (
        "import sys; from fortmap.simulate import simulate_city; "
        "simulate_city(sys.argv[1], seed=0, size_m=float(sys.argv[2]), force=True)"
    )
    subprocess.run([sys.executable, "-c", code, str(scene), str(size_m)], check=True)


def _mosaic(src: Path, out: Path) -> None:
    """A scene twice as wide: ``src``'s images tiled 2 x 2 (written tile by tile) and its
    footprints shifted to each tile."""
    import geopandas as gpd
    import pandas as pd
    import rasterio
    from rasterio.windows import Window

    out.mkdir(parents=True, exist_ok=True)
    for name in ("before.tif", "after.tif"):
        with rasterio.open(src / name) as s:
            prof, data, h, w, t = s.profile.copy(), s.read(), s.height, s.width, s.transform
        prof.update(width=2 * w, height=2 * h, BIGTIFF="IF_SAFER")
        with rasterio.open(out / f".{name}", "w", **prof) as d:
            for i in range(2):
                for j in range(2):
                    d.write(data, window=Window(j * w, i * h, w, h))
        del data
        (out / f".{name}").rename(out / name)
    b = gpd.read_file(src / "buildings.geojson")
    parts = [
        b.assign(geometry=b.geometry.translate(j * w * t.a, i * h * t.e))
        for i in range(2)
        for j in range(2)
    ]
    tiled = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=b.crs)
    tiled.to_file(out / "buildings.geojson", driver="GeoJSON")


def _scene(size: float, limit: float) -> Path:
    """The scene of ``size`` metres under ``bench-out/analyze``, simulated or (over ``limit``)
    mosaicked from the scene half its size."""
    scene = OUT / f"scene_{int(size)}"
    if (scene / "after.tif").exists():
        return scene
    t = time.perf_counter()
    if size > limit:
        _mosaic(_scene(size / 2, limit), scene)
        how = "mosaicked"
    else:
        _simulate(scene, size)
        how = "simulated"
    print(f"{how} {size:.0f} m in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return scene


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=float, nargs="+", default=[1000, 2000, 3000])
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--no-footprints", action="store_true")
    ap.add_argument(
        "--simulate-up-to", type=float, default=4000, help="larger scenes are 2 x 2 mosaics"
    )
    ap.add_argument("--repeats", type=int, default=1, help="runs of each version, alternating")
    ap.add_argument(
        "--baseline-src", type=Path, help="another checkout's src folder to run alternately"
    )
    args = ap.parse_args()
    if args.baseline_src is not None and not (args.baseline_src / "fortmap").is_dir():
        sys.exit(f"{args.baseline_src}: not a src folder holding the fortmap package")
    env = {**os.environ, **ONE_THREAD}
    warm = OUT / "scene_250"
    if not (warm / "after.tif").exists():
        _simulate(warm, 250)
    versions = [("this code", None)]
    if args.baseline_src is not None:
        versions.insert(0, (f"baseline {args.baseline_src}", args.baseline_src.resolve()))
    scenes = {size: _scene(size, args.simulate_up_to) for size in args.sizes}
    runs: dict[tuple[str, float], list[dict]] = {}
    for _ in range(max(1, args.repeats)):
        for name, src in versions:
            venv = dict(env)
            if src is not None:
                venv["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")])
            for size, scene in scenes.items():
                runs.setdefault((name, size), []).append(_child(args, scene, size, warm, venv))
    print(
        f"\nanalyze, {'with' if not args.no_footprints else 'without'} footprints, no report, "
        f"workers={args.workers}, one thread per process; MP/CPU-s = megapixels per CPU-second "
        "of the measured run (median run); warm-up = imports plus a 250 m scene (numba cache "
        f"load); {max(1, args.repeats)} run(s) of each version"
        + (", alternating" if len(versions) > 1 else "")
        + "\n"
    )
    print(
        "| code | scene | megapixels | CPU (s) | MP/CPU-s | wall (s) | MP/s (wall) "
        "| peak RSS (MB) | warm-up CPU (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    medians = {}
    for (name, size), rs in runs.items():
        mp = rs[0]["grid"]["width"] * rs[0]["grid"]["height"] / 1e6
        cpus = sorted(r["cpu"] for r in rs)
        med = statistics.median(cpus)
        medians[(name, size)] = min(rs, key=lambda r: abs(r["cpu"] - med))
        spread = f"{med:.2f}" if len(cpus) == 1 else f"{med:.2f} ({cpus[0]:.2f}-{cpus[-1]:.2f})"
        wall = statistics.median(r["wall"] for r in rs)
        print(
            f"| {name} | {size / 1000:.1f} km | {mp:.1f} | {spread} | {mp / med:.2f} | "
            f"{wall:.2f} | {mp / wall:.2f} | {max(r['rss_mb'] for r in rs):.0f} | "
            f"{statistics.median(r['first'] for r in rs):.2f} |"
        )
    # windows include the fortification, footprint and change steps; the rest of the
    # windows stage is reading, block statistics and writing change.tif
    cols = list(medians)
    stages = list(medians[cols[0]]["stage_cpu"]) if cols else []
    print(
        "\nCPU seconds per stage of the median run (process time inside the stage's functions):\n"
    )
    print("| stage | " + " | ".join(f"{n}, {s / 1000:.1f} km" for n, s in cols) + " |")
    print("|---|" + "---|" * len(cols))
    for st in stages:
        vals = " | ".join(f"{medians[c]['stage_cpu'].get(st, 0.0):.2f}" for c in cols)
        print(f"| {st} | {vals} |")


def _child(args: argparse.Namespace, scene: Path, size: float, warm: Path, env: dict) -> dict:
    """One measured run of ``analyze`` in a fresh single-threaded process; its JSON record."""
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            str(scene),
            str(OUT / f"run_{int(size)}"),
            str(args.workers),
            "0" if args.no_footprints else "1",
            str(warm),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    if r.returncode != 0:
        tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
        sys.exit(f"analyze of {scene} failed: {tail}")
    return json.loads(r.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
