"""Peak memory of ``analyze`` after each step, at several scene sizes.

Each size runs in a fresh single-threaded child process. The pipeline's step functions are
wrapped where ``fortmap.analysis`` looks them up, and the process's peak resident set
(``VmHWM``) is read after each one; the table shows how each step's share follows the
scene's size. Scenes are those of ``bench_analyze.py`` (simulated up to 4 km, 2 x 2 mosaics
above). Footprints are given, no ``--roads``, no report.

    python benchmarks/bench_memory.py --sizes 2000 4000 8000 [--no-footprints]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_analyze import ONE_THREAD, OUT, _scene  # noqa: E402

STEPS = [
    ("open_footprints", "reading footprints"),
    ("roads_from_image", "deriving roads"),
    ("coregister_pair", "co-registration"),
    ("to_cog", "the window pass"),
    ("scene_berms", "berms"),
    ("cleared_layer", "cleared land"),
    ("building_layers", "building layers"),
    ("fortification_layers", "fortification layers"),
    ("run_visibility", "visibility"),
    ("write_layers", "writing the layers"),
]

CHILD = """
import json, sys
import fortmap.analysis as A
from fortmap.analysis import AnalyzeOptions, run_analysis
def hwm():
    d = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return int(d["VmHWM"].split()[0]) / 1024
seen = {"start": hwm()}
def wrap(name):
    f = getattr(A, name)
    def g(*a, **k):
        r = f(*a, **k)
        seen[name] = hwm()
        return r
    setattr(A, name, g)
for name in json.loads(sys.argv[4]):
    wrap(name)
sc, out, fp = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
run_analysis(f"{sc}/before.tif", f"{sc}/after.tif", out, force=True,
             buildings=f"{sc}/buildings.geojson" if fp else None,
             options=AnalyzeOptions(report=False))
seen["end"] = hwm()
print(json.dumps(seen))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=float, nargs="+", default=[2000, 4000, 8000])
    ap.add_argument("--no-footprints", action="store_true")
    ap.add_argument("--simulate-up-to", type=float, default=4000)
    args = ap.parse_args()
    env = {**os.environ, **ONE_THREAD}
    names = [n for n, _ in STEPS]
    cols = {}
    for size in args.sizes:
        scene = _scene(size, args.simulate_up_to)
        r = subprocess.run(
            [sys.executable, "-c", CHILD, str(scene), str(OUT / f"mem_{int(size)}"),
             "0" if args.no_footprints else "1", json.dumps(names)],
            capture_output=True, text=True, env=env,
        )  # fmt: skip
        if r.returncode != 0:
            tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
            sys.exit(f"analyze of {scene} failed: {tail}")
        cols[size] = json.loads(r.stdout.strip().splitlines()[-1])
    fp = "without" if args.no_footprints else "with"
    print(f"\nPeak resident memory (VmHWM, MB) after each step, {fp} footprints, one thread\n")
    print("| after | " + " | ".join(f"{s / 1000:.0f} km" for s in args.sizes) + " |")
    print("|---|" + "---|" * len(args.sizes))
    for key, label in [("start", "imports"), *STEPS, ("end", "the end (peak)")]:
        vals = [cols[s].get(key) for s in args.sizes]
        if all(v is None for v in vals):
            continue
        print(f"| {label} | " + " | ".join("-" if v is None else f"{v:.0f}" for v in vals) + " |")


if __name__ == "__main__":
    main()
