"""LEVIR-CD benchmark of the pixel change mask against CVA + Otsu (plain script, prints a table).

Usage: ``python benchmarks/bench_levir.py [--sim DIR]``. Reads ``../shared/data/levir-cd`` (or
``$FORTMAP_SHARED_DATA/levir-cd``); nothing is fitted to the labels: the change model is fitted
per tile on that tile's own images, unsupervised. With ``--sim DIR`` also scores a simulated
scene (``before.tif``, ``after.tif``, ``truth_change.tif`` written by ``fortmap simulate``).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
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


def row(name: str, c: np.ndarray) -> str:
    p, r, f, i = scores(c)
    return f"| {name:<28} | {p:6.3f} | {r:6.3f} | {f:6.3f} | {i:6.3f} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sim", type=Path, default=None, help="folder written by fortmap simulate")
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
