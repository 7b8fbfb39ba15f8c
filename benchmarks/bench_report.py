"""Size and time of ``report.html`` on a large simulated scene (the issue asks <= 25 MB at 16 km2).

Each scene is simulated once with ``fortmap simulate`` (cached under ``bench-out/report/``),
then a child process runs ``analyze`` with the scene's footprints, roads and core (place
"Old City" in its places.geojson) but without the report, and then writes the report, timing
both in CPU seconds (``time.process_time``; wall time is noisy on a shared machine) and wall
seconds. Prints a Markdown table.

    python benchmarks/bench_report.py [--sizes 4000] [--gsd 0.5]
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
OUT = ROOT / "bench-out" / "report"

CHILD = """
import json, sys, time, resource
from fortmap.analysis import AnalyzeOptions, run_analysis
from fortmap.report.html import write_report
scene, out = sys.argv[1], sys.argv[2]
c, w = time.process_time(), time.perf_counter()
s = run_analysis(f"{scene}/before.tif", f"{scene}/after.tif", out, force=True,
                 buildings=f"{scene}/buildings.geojson", roads=f"{scene}/roads.geojson",
                 core="Old City", places=f"{scene}/places.geojson",
                 options=AnalyzeOptions(report=False))
c1, w1 = time.process_time(), time.perf_counter()
p = write_report(out, places=f"{scene}/places.geojson")
c2, w2 = time.process_time(), time.perf_counter()
print(json.dumps({"analyze_cpu": c1 - c, "analyze_wall": w1 - w, "report_cpu": c2 - c1,
                  "report_wall": w2 - w1, "bytes": p.stat().st_size, "grid": s["grid"],
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=float, nargs="+", default=[4000])
    ap.add_argument("--gsd", type=float, default=0.5)
    args = ap.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "GDAL_NUM_THREADS": "1"}
    rows = []
    for size in args.sizes:
        tag = f"{int(size)}_gsd{args.gsd:g}"
        scene = OUT / f"scene_{tag}"
        if not (scene / "after.tif").exists():
            t = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "fortmap.cli.main", "simulate", "--out", str(scene),
                 "--size-m", str(size), "--gsd", str(args.gsd), "--seed", "0", "--force"],
                check=True, env=env,
            )  # fmt: skip
            print(f"simulated {size:.0f} m in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        run = OUT / f"run_{tag}"
        r = subprocess.run(
            [sys.executable, "-c", CHILD, str(scene), str(run)],
            capture_output=True,
            text=True,
            env=env,
        )
        if r.returncode:
            sys.exit(r.stderr)
        res = json.loads(r.stdout.strip().splitlines()[-1])
        rows.append((size, args.gsd, res))
    print("\n| scene (km2) | gsd (m) | megapixels | report.html (MB) | analyze CPU s | report CPU s "
          "| report wall s | peak RSS (MB) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for size, gsd, r in rows:
        mp = r["grid"]["width"] * r["grid"]["height"] / 1e6
        print(
            f"| {(size / 1000) ** 2:.1f} | {gsd:g} | {mp:.1f} | {r['bytes'] / 1e6:.2f} | "
            f"{r['analyze_cpu']:.1f} | {r['report_cpu']:.1f} | {r['report_wall']:.1f} | "
            f"{r['rss_mb']:.0f} |"
        )


if __name__ == "__main__":
    main()
