"""LEVIR-CD benchmark of the pixel change mask against CVA + Otsu (plain script, prints a table).

Usage: ``python benchmarks/bench_levir.py [--sim DIR] [--learned [--epochs N]]``. Reads
``../shared/data/levir-cd`` (or ``$FORTMAP_SHARED_DATA/levir-cd``); nothing is fitted to the
labels: the change model is fitted per tile on that tile's own images, unsupervised. With
``--sim DIR`` also scores a simulated scene (``before.tif``, ``after.tif``, ``truth_change.tif``
written by ``fortmap simulate``).

``--learned`` also scores the learned change model the way a user would run it, leave one tile
out: for each tile, ``fortmap train-change`` on the other four tiles (GeoTIFFs with a stated
0.5 m georeference), then ``fortmap analyze --change-model`` on the held-out tile, and its
``change.tif`` against the held-out label. No tile's own labels touch its score.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

# before numpy loads, as the CLI does: OpenBLAS threads spin on the network's small products
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from PIL import Image

from fortmap.detect.change import fit_change_model

LEVIR_GSD_M = 0.5


def shared_data() -> Path:
    env = os.environ.get("FORTMAP_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"


def load_levir(root: Path) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    out = []
    for lab in sorted((root / "label").glob("*.png")):
        a = np.asarray(Image.open(root / "A" / lab.name))[..., :3]
        b = np.asarray(Image.open(root / "B" / lab.name))[..., :3]
        tile = (
            lab.stem,
            a.transpose(2, 0, 1).astype(np.float32) / 255,
            b.transpose(2, 0, 1).astype(np.float32) / 255,
            np.asarray(Image.open(lab)) > 0,
        )
        out.append(tile)
    return out


def counts(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    p, t = pred.astype(bool), truth.astype(bool)
    return np.array([(p & t).sum(), (p & ~t).sum(), (~p & t).sum()], np.int64)


def scores(c: np.ndarray) -> tuple[float, float, float, float]:
    """(precision, recall, F1, IoU); NaN where undefined (no positives anywhere)."""
    tp, fp, fn = (int(x) for x in c)
    prec = tp / (tp + fp) if tp + fp else float("nan")
    rec = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
    iou = tp / (tp + fp + fn) if tp + fp + fn else float("nan")
    return prec, rec, f1, iou


def cva_otsu(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Classical baseline: change vector magnitude thresholded by Otsu."""
    from skimage.filters import threshold_otsu

    d = np.sqrt(((after - before) ** 2).sum(axis=0))
    return d > threshold_otsu(d)


def run_model(before: np.ndarray, after: np.ndarray, gsd: float) -> tuple[np.ndarray, float]:
    valid = np.ones(before.shape[1:], bool)
    model = fit_change_model(before, after, valid, gsd)
    t0 = time.perf_counter()
    m = model.mask(model.evidence(before, after, valid), valid)
    return m, time.perf_counter() - t0


def learned_loto(
    root: Path, out: Path, epochs: int, coregister: str, swap_dates: bool = False
) -> None:
    """Leave-one-tile-out scores of ``train-change`` + ``analyze --change-model``."""
    import rasterio

    from fortmap.analysis import AnalyzeOptions, run_analysis
    from fortmap.evaluate.levir import levir_to_geotiffs
    from fortmap.train import train_change_model

    names = sorted(p.stem for p in (root / "label").glob("*.png"))
    scenes = {n: levir_to_geotiffs(root, n, out / n) for n in names}
    tot = np.zeros(3, np.int64)
    lines = []
    for held in names:
        t0 = time.process_time()
        pairs = [(s.before, s.after, s.label) for n, s in scenes.items() if n != held]
        model = out / f"model-without-{held}.npz"
        net = train_change_model(
            pairs, model, force=True, epochs=epochs, coregister=coregister, swap_dates=swap_dates
        )
        t_train = time.process_time() - t0
        run = out / f"run-{held}"
        t0 = time.process_time()
        opts = AnalyzeOptions(report=False, change_model=model, coregister=coregister)
        run_analysis(scenes[held].before, scenes[held].after, run, force=True, options=opts)
        t_run = time.process_time() - t0
        with rasterio.open(run / "change.tif") as a, rasterio.open(scenes[held].label) as b:
            c = counts(a.read(1) > 0, b.read(1) > 0)
        tot += c
        lines.append(row(held, c) + f" {net.threshold:.2f} | {t_train:.1f} | {t_run:.1f} |")
    print(
        f"\nLEVIR-CD, learned change model, leave one tile out ({epochs} epochs, "
        f"--coregister {coregister} in training and analysis"
        + (", dates also swapped in training)" if swap_dates else ")")
    )
    print(
        "| held-out tile                | prec   | recall | F1     | IoU    | threshold |"
        " train CPU s | analyze CPU s |\n|---|---|---|---|---|---|---|---|"
    )
    print("\n".join(lines))
    print(row("POOLED", tot))


def row(name: str, c: np.ndarray) -> str:
    p, r, f, i = scores(c)
    return f"| {name:<28} | {p:6.3f} | {r:6.3f} | {f:6.3f} | {i:6.3f} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sim", type=Path, default=None, help="folder written by fortmap simulate")
    ap.add_argument("--learned", action="store_true", help="also score the learned model (LOTO)")
    ap.add_argument("--epochs", type=int, default=30, help="training epochs for --learned")
    ap.add_argument(
        "--swap-dates", action="store_true", help="--learned: train with the dates also swapped"
    )
    ap.add_argument(
        "--coregister",
        nargs="+",
        default=["none", "auto"],
        help="--coregister modes to run --learned with (LEVIR-CD pairs come registered)",
    )
    ap.add_argument(
        "--out", type=Path, default=Path("bench-out/levir-learned"), help="scratch folder"
    )
    args = ap.parse_args()
    head = "| tile / method                | prec   | recall | F1     | IoU    |\n|---|---|---|---|---|"
    root = shared_data() / "levir-cd"
    if root.is_dir():
        tiles = load_levir(root)
        tot = {"cva+otsu": np.zeros(3, np.int64), "fortmap": np.zeros(3, np.int64)}
        lines, px, secs = [], 0, 0.0
        for name, a, b, lab in tiles:
            base = counts(cva_otsu(a, b), lab)
            m, dt = run_model(a, b, LEVIR_GSD_M)
            ours = counts(m, lab)
            px += lab.size
            secs += dt
            tot["cva+otsu"] += base
            tot["fortmap"] += ours
            lines += [row(f"{name} cva+otsu", base), row(f"{name} fortmap", ours)]
        print("LEVIR-CD (5 pairs, 0.5 m; label = building change)")
        print(head)
        print("\n".join(lines))
        print(row("POOLED cva+otsu", tot["cva+otsu"]))
        print(row("POOLED fortmap", tot["fortmap"]))
        print(
            f"evidence+mask speed: {px / secs / 1e6:.1f} MP/s (all tiles, one core, this machine)"
        )
        big = max(tiles, key=lambda t: t[3].size)
        reps = [run_model(big[1], big[2], LEVIR_GSD_M)[1] for _ in range(3)]
        print(
            f"evidence+mask speed on {big[0]}: {big[3].size / min(reps) / 1e6:.1f} MP/s (best of 3)"
        )
        if args.learned:
            for mode in args.coregister:
                learned_loto(root, args.out / mode, args.epochs, mode, args.swap_dates)
    else:
        print(f"LEVIR-CD not found at {root}; skipped")
    if args.sim is not None:
        import rasterio

        with rasterio.open(args.sim / "before.tif") as src:
            b0 = src.read().astype(np.float32)
            gsd = abs(src.transform.a)
        with rasterio.open(args.sim / "after.tif") as src:
            a0 = src.read().astype(np.float32)
        with rasterio.open(args.sim / "truth_change.tif") as src:
            truth = src.read(1) > 0
        scale = max(float(np.percentile(b0, 99.5)), 1e-6)
        b0, a0 = b0 / scale, a0 / scale
        m, _ = run_model(b0, a0, gsd)
        print(f"\nsimulated scene {args.sim} (gsd {gsd:.2f} m)")
        print(head)
        print(row("cva+otsu", counts(cva_otsu(b0, a0), truth)))
        print(row("fortmap", counts(m, truth)))


if __name__ == "__main__":
    main()
