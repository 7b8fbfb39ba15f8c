"""Accuracy on simulated cities over a grid of difficulty and seeds.

For each difficulty and seed: simulate, analyse (the whole job with footprints, roads, core
and DSMs; the same job without the DSMs; and from the images alone) and score against the
simulator's truth. Prints Markdown tables.

    python benchmarks/bench_simulated.py [--size-m 2000] [--seeds 0 1]
        [--difficulties easy default hard extreme] [--variants full nodsm images]
        [--dsm-quality exact|stereo|coarse]

``--dsm-quality stereo`` (or ``coarse``) simulates each scene again with its DSMs degraded as
a stereo-satellite DSM is (``fortmap.simulate.dsm_quality``) into a folder of its own
(``..._stereo``); images and truth are those of the exact scene.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench-out" / "simulated"
VARIANTS = {
    "full": "whole job (footprints, roads, core, DSMs)",
    "nodsm": "whole job without DSMs",
    "images": "images alone",
}


def _get(scores: dict, *path) -> str:
    """A score from ``score_run``'s result as text ("-" when undefined or absent)."""
    cur = scores
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return "-"
        cur = cur[p]
    return "-" if cur is None else f"{cur:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-m", type=float, default=2000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--difficulties", nargs="+", default=["easy", "default", "hard", "extreme"])
    ap.add_argument("--osm", type=Path, default=None, help="lay the city on this OSM extract")
    ap.add_argument(
        "--variants",
        nargs="+",
        choices=list(VARIANTS),
        default=list(VARIANTS),
        help="full: footprints, roads, core and DSMs; nodsm: the same without DSMs; images: alone",
    )
    ap.add_argument(
        "--dsm-quality",
        choices=["exact", "stereo", "coarse"],
        default="exact",
        help="DSMs as simulated: exact, or degraded as a stereo DSM (a separate scene folder)",
    )
    args = ap.parse_args()
    from fortmap.analysis import AnalyzeOptions, run_analysis
    from fortmap.evaluate.score import score_run
    from fortmap.simulate import simulate_city

    rows = []
    for diff in args.difficulties:
        for seed in args.seeds:
            tag = f"_{args.osm.name.split('.')[0]}" if args.osm else ""
            if args.dsm_quality != "exact":
                tag += f"_{args.dsm_quality}"
            scene = OUT / f"{diff}_{seed}_{int(args.size_m)}{tag}"
            if not (scene / "after.tif").exists():
                simulate_city(
                    scene, seed=seed, size_m=args.size_m, difficulty=diff, force=True,
                    osm=args.osm, dsm_quality=args.dsm_quality,
                )  # fmt: skip
            for variant in args.variants:
                fp = variant != "images"
                run = scene.with_name(f"{scene.name}_{variant}")
                full = {
                    "buildings": scene / "buildings.geojson",
                    "roads": scene / "roads.geojson",
                    "places": scene / "places.geojson",
                    "core": "Old City",
                }
                if variant == "full":
                    full["dsm_before"] = scene / "dsm_before.tif"
                    full["dsm_after"] = scene / "dsm_after.tif"
                t = time.perf_counter()
                run_analysis(
                    scene / "before.tif",
                    scene / "after.tif",
                    run,
                    force=True,
                    options=AnalyzeOptions(report=False),
                    **(full if fp else {}),
                )
                dt = time.perf_counter() - t
                s = score_run(scene / "truth.gpkg", run)
                rows.append((diff, seed, variant, s, dt))
                print(f"done {diff} seed {seed} {variant} in {dt:.1f} s", file=sys.stderr)
    print(f"\nSimulated {args.size_m / 1000:.1f} km scenes\n")
    print(
        "| difficulty | seed | input | razed P | razed R | razed F1 | cleared area IoU "
        "| change pixel F1 | change IoU | time (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for diff, seed, variant, s, dt in rows:
        k = s["kinds"]
        print(
            f"| {diff} | {seed} | {variant} | {_get(k, 'razed_buildings', 'precision')} | "
            f"{_get(k, 'razed_buildings', 'recall')} | {_get(k, 'razed_buildings', 'f1')} | "
            f"{_get(k, 'cleared_areas', 'iou')} | {_get(k, 'change_pixels', 'f1')} | "
            f"{_get(k, 'change_pixels', 'iou')} | {dt:.1f} |"
        )
    for want in ("full", "nodsm"):
        if want in args.variants:
            _fort_table(rows, want)


def _fort_table(rows: list, want: str) -> None:
    """Barricades, berms, rubble and routes of one variant's runs, as a Markdown table."""
    print(f"\nThe {VARIANTS[want]}\n")
    print(
        "| difficulty | seed | barricades P | R | F1 | berms P (length) | R (length) | rubble P | R "
        "| F1 | entry points matched | route status right |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for diff, seed, variant, s, _ in rows:
        if variant != want:
            continue
        k = s["kinds"]
        e = k.get("entry_points", {})
        print(
            f"| {diff} | {seed} | {_get(k, 'barricades', 'precision')} | "
            f"{_get(k, 'barricades', 'recall')} | {_get(k, 'barricades', 'f1')} | "
            f"{_get(k, 'berms', 'precision')} | {_get(k, 'berms', 'recall')} | "
            f"{_get(k, 'rubble', 'precision')} | {_get(k, 'rubble', 'recall')} | "
            f"{_get(k, 'rubble', 'f1')} | {e.get('n_matched', '-')}/{e.get('n_truth', '-')} | "
            f"{_get(k, 'entry_points', 'status_accuracy')} |"
        )


if __name__ == "__main__":
    main()
