"""Throughput and peak memory of ``analyze`` at several scene sizes.

Each scene is simulated once (cached under ``bench-out/``), then ``analyze`` runs in a fresh
child process limited to one thread, so the figures are per core; peak memory is the child's
maximum resident set size. Prints a Markdown table.

    python benchmarks/bench_analyze.py [--sizes 1000 2000 3000] [--workers 0]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench-out" / "analyze"

CHILD = """
import json, sys, time, resource
from fortmap.analysis import AnalyzeOptions, run_analysis
scene, out, workers, fp = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
t = time.perf_counter()
s = run_analysis(f"{scene}/before.tif", f"{scene}/after.tif", out, force=True,
                 buildings=f"{scene}/buildings.geojson" if fp else None,
                 options=AnalyzeOptions(workers=workers, report=False))
wall = time.perf_counter() - t
print(json.dumps({"wall": wall, "timings": s["timings_s"], "grid": s["grid"],
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=float, nargs="+", default=[1000, 2000, 3000])
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--no-footprints", action="store_true")
    args = ap.parse_args()
    from fortmap.simulate import simulate_city

    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "NUMBA_NUM_THREADS": "1",
        "GDAL_NUM_THREADS": "1",
    }
    rows = []
    for size in args.sizes:
        scene = OUT / f"scene_{int(size)}"
        if not (scene / "after.tif").exists():
            t = time.perf_counter()
            simulate_city(scene, seed=0, size_m=size, force=True)
            print(f"simulated {size:.0f} m in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        r = subprocess.run(
            [
                sys.executable,
                "-c",
                CHILD,
                str(scene),
                str(OUT / f"run_{int(size)}"),
                str(args.workers),
                "0" if args.no_footprints else "1",
            ],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        res = json.loads(r.stdout.strip().splitlines()[-1])
        mp = res["grid"]["width"] * res["grid"]["height"] / 1e6
        rows.append((size, mp, res["wall"], mp / res["wall"], res["rss_mb"], res["timings"]))
    print(
        f"\nanalyze, {'with' if not args.no_footprints else 'without'} footprints, "
        f"workers={args.workers}, one thread per process\n"
    )
    print(
        "| scene | megapixels | time (s) | MP/s | peak RSS (MB) | coregister | fit | windows | scene-wide |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for size, mp, wall, rate, rss, t in rows:
        print(
            f"| {size / 1000:.1f} km | {mp:.1f} | {wall:.2f} | {rate:.2f} | {rss:.0f} | "
            f"{t['coregister']:.2f} | {t['normalise_and_fit']:.2f} | {t['windows']:.2f} | "
            f"{t['scene_wide']:.2f} |"
        )


if __name__ == "__main__":
    main()
