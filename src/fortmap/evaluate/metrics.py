"""Scores: precision/recall/F1 from counts, pixel scores of masks, rank-based ROC AUC, confusion."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else float("nan")


def prf(tp: float, fp: float, fn: float) -> dict[str, float]:
    """Precision, recall and F1 from true/false positive and false negative counts.

    Counts may be weighted (lengths in metres, areas in m2). A ratio with a zero denominator is
    NaN (precision with no prediction, recall with no truth); F1 is NaN only when both are
    undefined, and 0 when one of them is defined and the other side is empty.

    Example:
        >>> prf(8, 2, 8)["f1"]
        0.6153846153846154
    """
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    denom = 2 * tp + fp + fn
    f1 = _ratio(2 * tp, denom)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "tp": float(tp),
        "fp": float(fp),
        "fn": float(fn),
    }


def pixel_scores(
    pred: np.ndarray, truth: np.ndarray, valid: np.ndarray | None = None
) -> dict[str, float]:
    """Pixel precision, recall, F1 and IoU of a boolean prediction against a boolean truth mask.

    Args:
        pred: predicted change (nonzero = change), any shape.
        truth: true change, same shape.
        valid: optional mask of pixels to score (True = scored).

    Returns:
        precision, recall, f1, iou, and the counts tp, fp, fn, tn (pixels).
    """
    p = np.asarray(pred) != 0
    t = np.asarray(truth) != 0
    if p.shape != t.shape:
        raise ValueError(f"prediction {p.shape} and truth {t.shape} differ in shape")
    if valid is not None:
        v = np.asarray(valid, dtype=bool)
        p, t = p[v], t[v]
    tp = int(np.count_nonzero(p & t))
    fp = int(np.count_nonzero(p & ~t))
    fn = int(np.count_nonzero(~p & t))
    tn = int(p.size - tp - fp - fn)
    out = prf(tp, fp, fn)
    out["iou"] = _ratio(tp, tp + fp + fn)
    out["tn"] = float(tn)
    return out


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values`` with ties given their mean rank (as scipy's ``rankdata``)."""
    x = np.asarray(values, dtype=float).ravel()
    order = np.argsort(x, kind="mergesort")
    sx = x[order]
    # Start index of each run of equal values, and the run each sorted element belongs to.
    new_run = np.r_[True, sx[1:] != sx[:-1]]
    run_id = np.cumsum(new_run) - 1
    starts = np.flatnonzero(new_run)
    ends = np.r_[starts[1:], len(sx)]
    mean_rank = (starts + ends + 1) / 2.0
    ranks = np.empty(len(x), dtype=float)
    ranks[order] = mean_rank[run_id]
    return ranks


def roc_auc(y_true: Sequence[bool] | np.ndarray, score: Sequence[float] | np.ndarray) -> float:
    """Area under the ROC curve, from ranks (Mann-Whitney U); tied scores count one half.

    Returns NaN when only one class is present.

    Example:
        >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        0.75
    """
    y = np.asarray(y_true).astype(bool).ravel()
    s = np.asarray(score, dtype=float).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels {y.shape} and scores {s.shape} differ in shape")
    n_pos = int(y.sum())
    n_neg = int(len(y) - n_pos)
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = average_ranks(s)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def confusion(
    truth: Sequence[str],
    pred: Sequence[str],
    truth_classes: Sequence[str],
    pred_classes: Sequence[str],
) -> dict[str, dict[str, int]]:
    """Confusion counts as ``{truth_class: {pred_class: n}}``; unknown labels are ignored."""
    table = {t: dict.fromkeys(pred_classes, 0) for t in truth_classes}
    for t, p in zip(truth, pred, strict=True):
        if t in table and p in table[t]:
            table[t][p] += 1
    return table
