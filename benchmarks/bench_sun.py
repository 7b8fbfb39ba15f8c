"""Sun azimuth from shadows on imagery without sun tags (plain script, prints a table).

For each simulated city (default layout and the Helsinki street layout, several seeds): the
scene is simulated, both images' sun tags are blanked (as on imagery whose metadata lacks
them), and ``analyze`` runs with the footprints and, separately, without them. The table gives
the azimuth ``analyze`` used (``summary.json``), its error against the simulator's after-date
sun, where it came from, and the berm and barricade F1 against the truth, next to the same
scene analysed with its tags. Nothing is fitted here: the scenes are simulated with their own
seeds and only scored.

    python benchmarks/bench_sun.py [--size-m 1000] [--seeds 1 2 3 4]
        [--osm ../shared/data/osm/helsinki.osm.pbf]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import rasterio

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench-out" / "sun"


def _untagged(scene: Path) -> Path:
    """A copy of ``scene`` whose images carry no sun tags."""
    dst = scene.with_name(scene.name + "_untagged")
    if not (dst / "after.tif").exists():
        shutil.copytree(scene, dst, dirs_exist_ok=True)
        for name in ("before.tif", "after.tif"):
            with rasterio.open(dst / name, "r+") as d:
                d.update_tags(SUN_AZIMUTH="", SUN_ELEVATION="")
    return dst


def _f1(scores: dict, kind: str) -> str:
    v = scores.get("kinds", {}).get(kind, {}).get("f1")
    return "-" if v is None else f"{v:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-m", type=float, default=1000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4])
    default_osm = ROOT.parent / "shared" / "data" / "osm" / "helsinki.osm.pbf"
    ap.add_argument("--osm", type=Path, default=default_osm)
    args = ap.parse_args()

    from fortmap.analysis import AnalyzeOptions, run_analysis
    from fortmap.evaluate.score import score_run
    from fortmap.simulate import simulate_city

    layouts = [("default", None)]
    if args.osm.exists():
        layouts.append(("helsinki", args.osm))
    print(
        "| layout | seed | true az | run | az used | error (deg) | from | berms F1 "
        "| barricades F1 |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, osm in layouts:
        for seed in args.seeds:
            scene = OUT / f"{name}_{seed}"
            if not (scene / "after.tif").exists():
                simulate_city(scene, seed=seed, size_m=args.size_m, osm=osm, force=True)
            true = json.loads((scene / "scene.json").read_text())["sun"]["after"]["azimuth_deg"]
            runs = [
                ("tagged, footprints", scene, True),
                ("untagged, footprints", _untagged(scene), True),
                ("untagged, no footprints", _untagged(scene), False),
            ]
            for label, sc, fp in runs:
                out = OUT / f"run_{name}_{seed}_{label.replace(', ', '_').replace(' ', '')}"
                s = run_analysis(
                    sc / "before.tif", sc / "after.tif", out, force=True,
                    buildings=sc / "buildings.geojson" if fp else None,
                    options=AnalyzeOptions(report=False),
                )  # fmt: skip
                az = s["sun_azimuth_deg"]
                err = "-" if az is None else f"{(az - true + 180) % 360 - 180:+.1f}"
                sco = score_run(scene / "truth.gpkg", out)
                print(
                    f"| {name} | {seed} | {true:.1f} | {label} | "
                    f"{'-' if az is None else f'{az:.1f}'} | {err} | "
                    f"{s.get('sun_azimuth_from') or 'unknown'} | {_f1(sco, 'berms')} | "
                    f"{_f1(sco, 'barricades')} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
