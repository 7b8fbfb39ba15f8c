"""``analyze`` on the real pairs in ../shared/data, run the way a user with GeoTIFFs would.

xBD Joplin: the PNGs are georeferenced from the labels (fortmap.evaluate.xbd), analysed with
the pre-event footprints, and scored destroyed-versus-rest per footprint. LEVIR-CD: each pair
gets a stated 0.5 m georeference, is analysed without footprints, and ``change.tif`` is scored
pixel by pixel against the label. Prints Markdown tables.

    python benchmarks/bench_realdata.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench-out" / "realdata"
DEFAULT_DATA = Path(os.environ.get("FORTMAP_SHARED_DATA", ROOT.parent / "shared" / "data"))


def _f(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = ap.parse_args()
    if not args.data.is_dir():
        sys.exit(f"shared data not found at {args.data}")
    from fortmap.analysis import AnalyzeOptions, run_analysis
    from fortmap.evaluate.levir import levir_to_geotiffs
    from fortmap.evaluate.score import score_run
    from fortmap.evaluate.xbd import xbd_to_geotiffs

    NO_REPORT = AnalyzeOptions(report=False)  # noqa: N806 - accuracy only
    xbd = args.data / "xbd-joplin"
    scene = xbd_to_geotiffs(xbd / "images", xbd / "labels", "joplin-tornado_00000000", OUT / "xbd")
    t = time.perf_counter()
    run_analysis(
        scene.before, scene.after, OUT / "xbd-run", buildings=scene.footprints, force=True,
        options=NO_REPORT,
    )  # fmt: skip
    dt = time.perf_counter() - t
    r = score_run(scene.truth_labels, OUT / "xbd-run")
    d = r["kinds"]["destroyed_buildings"]
    print("\nxBD Joplin, destroyed versus all other footprints (analyze --buildings, then score)\n")
    print("| footprints scored | precision | recall | F1 | ROC AUC | fitted GSD (m) | time (s) |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {r.get('n_matched', '-')} | {_f(d['precision'])} | {_f(d['recall'])} | {_f(d['f1'])} | "
        f"{_f(d.get('auc'))} | {scene.gsd_m:.3f} | {dt:.1f} |"
    )

    print("\nLEVIR-CD, change.tif against the label (analyze without footprints, then score)\n")
    print("| pair | precision | recall | F1 | IoU | true change px | predicted px |")
    print("|---|---|---|---|---|---|---|")
    tp = fp = fn = 0
    for png in sorted((args.data / "levir-cd" / "A").glob("*.png")):
        name = png.stem
        ls = levir_to_geotiffs(args.data / "levir-cd", name, OUT / f"levir-{name}")
        run_analysis(ls.before, ls.after, OUT / f"levir-{name}-run", force=True, options=NO_REPORT)
        m = score_run(ls.label, OUT / f"levir-{name}-run")["kinds"]["change_pixels"]
        tp, fp, fn = tp + m["tp"], fp + m["fp"], fn + m["fn"]
        print(
            f"| {name} | {_f(m['precision'])} | {_f(m['recall'])} | {_f(m['f1'])} | "
            f"{_f(m['iou'])} | {m['tp'] + m['fn']:.0f} | {m['tp'] + m['fp']:.0f} |"
        )
    p = tp / max(tp + fp, 1)
    rc = tp / max(tp + fn, 1)
    f1 = 2 * p * rc / max(p + rc, 1e-12)
    iou = tp / max(tp + fp + fn, 1)
    print(
        f"| **pooled** | {p:.3f} | {rc:.3f} | {f1:.3f} | {iou:.3f} | {tp + fn:.0f} | {tp + fp:.0f} |"
    )


if __name__ == "__main__":
    main()
