"""Match predicted objects to true ones: polygons by IoU, lines by distance, berms by length.

All geometries must be in one projected CRS (metres); distances and buffers are in metres.
Matching is one-to-one and maximises the total IoU (or minimises the total distance) with the
Hungarian algorithm (``scipy.optimize.linear_sum_assignment``) over the admissible pairs only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely
from scipy.optimize import linear_sum_assignment

from fortmap.evaluate.metrics import prf

#: IoU needed for a predicted building to count as found (the usual object-detection choice).
BUILDING_IOU = 0.5
#: IoU for rubble: rubble fields have no crisp edge, so half the building threshold is used.
RUBBLE_IOU = 0.25
#: A predicted barricade matches a true one when their mean symmetric distance is within this (m).
BARRICADE_DIST_M = 10.0
#: Berm buffer (m) for length-weighted precision and recall.
BERM_BUFFER_M = 5.0


def _geoms(values: Sequence[shapely.Geometry] | np.ndarray) -> np.ndarray:
    g = np.asarray(list(values), dtype=object)
    if len(g):
        g = shapely.make_valid(g)
    return g


def iou_pairs(
    truth: Sequence[shapely.Geometry], pred: Sequence[shapely.Geometry]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IoU of every intersecting (truth, pred) pair of polygons.

    Returns:
        (truth index, pred index, IoU) arrays, one entry per pair that overlaps.
    """
    t, p = _geoms(truth), _geoms(pred)
    if len(t) == 0 or len(p) == 0:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0)
    tree = shapely.STRtree(p)
    ti, pi = tree.query(t, predicate="intersects")
    inter = shapely.area(shapely.intersection(t[ti], p[pi]))
    union = shapely.area(t[ti]) + shapely.area(p[pi]) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return ti.astype(int), pi.astype(int), iou


def _assign(ti: np.ndarray, pi: np.ndarray, gain: np.ndarray) -> list[tuple[int, int, float]]:
    """One-to-one assignment maximising the total ``gain`` over the given admissible pairs."""
    if len(ti) == 0:
        return []
    ut, tinv = np.unique(ti, return_inverse=True)
    up, pinv = np.unique(pi, return_inverse=True)
    # Inadmissible pairs get a gain far below any admissible one, and are dropped afterwards.
    m = np.full((len(ut), len(up)), -1e9)
    m[tinv, pinv] = gain
    rows, cols = linear_sum_assignment(m, maximize=True)
    keep = m[rows, cols] > -1e8
    return [
        (int(ut[r]), int(up[c]), float(m[r, c]))
        for r, c in zip(rows[keep], cols[keep], strict=True)
    ]


def match_polygons(
    truth: Sequence[shapely.Geometry],
    pred: Sequence[shapely.Geometry],
    min_iou: float = BUILDING_IOU,
) -> list[tuple[int, int, float]]:
    """One-to-one matches (truth index, pred index, IoU) with IoU >= ``min_iou``.

    The assignment maximises the summed IoU among pairs that pass the threshold.
    """
    ti, pi, iou = iou_pairs(truth, pred)
    ok = iou >= min_iou
    return _assign(ti[ok], pi[ok], iou[ok])


def score_polygons(
    truth: Sequence[shapely.Geometry], pred: Sequence[shapely.Geometry], min_iou: float
) -> dict[str, float]:
    """Object precision, recall and F1 of polygons matched one-to-one at ``min_iou``."""
    matches = match_polygons(truth, pred, min_iou)
    tp = len(matches)
    out = prf(tp, len(pred) - tp, len(truth) - tp)
    out["mean_iou_matched"] = float(np.mean([m[2] for m in matches])) if matches else float("nan")
    out["iou_threshold"] = float(min_iou)
    out["n_truth"] = float(len(truth))
    out["n_pred"] = float(len(pred))
    return out


def mean_line_distance(a: shapely.Geometry, b: shapely.Geometry, step_m: float = 1.0) -> float:
    """Mean symmetric distance (m) between two lines: points every ``step_m`` along each line,
    distance to the other, averaged over both directions.

    Unlike the minimum distance it is large for crossing lines; unlike Hausdorff it is forgiving
    of a prediction a few metres shorter than the truth.
    """

    def one_way(src: shapely.Geometry, dst: shapely.Geometry) -> float:
        n = max(2, int(np.ceil(src.length / step_m)) + 1)
        pts = shapely.line_interpolate_point(src, np.linspace(0.0, 1.0, n), normalized=True)
        return float(np.mean(shapely.distance(pts, dst)))

    return 0.5 * (one_way(a, b) + one_way(b, a))


def match_lines(
    truth: Sequence[shapely.Geometry],
    pred: Sequence[shapely.Geometry],
    max_dist_m: float = BARRICADE_DIST_M,
) -> list[tuple[int, int, float]]:
    """One-to-one matches (truth index, pred index, mean distance in m) within ``max_dist_m``.

    The assignment minimises the total mean symmetric distance among admissible pairs.
    """
    t, p = _geoms(truth), _geoms(pred)
    if len(t) == 0 or len(p) == 0:
        return []
    tree = shapely.STRtree(p)
    ti, pi = tree.query(t, predicate="dwithin", distance=max_dist_m)
    d = np.array([mean_line_distance(t[i], p[j]) for i, j in zip(ti, pi, strict=True)])
    ok = d <= max_dist_m if len(d) else np.zeros(0, bool)
    # Maximise a gain that decreases with distance, so nearer pairs win.
    pairs = _assign(ti[ok], pi[ok], max_dist_m - d[ok])
    return [(i, j, max_dist_m - g) for i, j, g in pairs]


def score_lines(
    truth: Sequence[shapely.Geometry], pred: Sequence[shapely.Geometry], max_dist_m: float
) -> dict[str, float]:
    """Object precision, recall and F1 of lines matched one-to-one within ``max_dist_m``."""
    matches = match_lines(truth, pred, max_dist_m)
    tp = len(matches)
    out = prf(tp, len(pred) - tp, len(truth) - tp)
    out["max_dist_m"] = float(max_dist_m)
    out["n_truth"] = float(len(truth))
    out["n_pred"] = float(len(pred))
    return out


def score_lengths(
    truth: Sequence[shapely.Geometry],
    pred: Sequence[shapely.Geometry],
    buffer_m: float = BERM_BUFFER_M,
) -> dict[str, float]:
    """Length-weighted precision and recall of lines within a ``buffer_m`` corridor.

    Precision is the fraction of predicted length within ``buffer_m`` of some true line; recall
    the fraction of true length within ``buffer_m`` of some predicted line (lengths in metres).
    """
    t, p = _geoms(truth), _geoms(pred)
    t_len = float(shapely.length(t).sum()) if len(t) else 0.0
    p_len = float(shapely.length(p).sum()) if len(p) else 0.0
    p_in = t_in = 0.0
    if len(t) and len(p):
        t_zone = shapely.union_all(shapely.buffer(t, buffer_m))
        p_zone = shapely.union_all(shapely.buffer(p, buffer_m))
        p_in = float(shapely.length(shapely.intersection(shapely.union_all(p), t_zone)))
        t_in = float(shapely.length(shapely.intersection(shapely.union_all(t), p_zone)))
    precision = p_in / p_len if p_len > 0 else float("nan")
    recall = t_in / t_len if t_len > 0 else float("nan")
    if np.isnan(precision) and np.isnan(recall):
        f1 = float("nan")
    elif (np.nan_to_num(precision) + np.nan_to_num(recall)) == 0:
        f1 = 0.0
    else:
        f1 = (
            2
            * np.nan_to_num(precision)
            * np.nan_to_num(recall)
            / (np.nan_to_num(precision) + np.nan_to_num(recall))
        )
    return {
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "truth_length_m": t_len,
        "pred_length_m": p_len,
        "buffer_m": float(buffer_m),
    }


def score_area(
    truth: Sequence[shapely.Geometry], pred: Sequence[shapely.Geometry]
) -> dict[str, float]:
    """Area precision, recall, F1 and IoU of the union of predictions against the union of truth.

    Areas are in m2 (the CRS must be metric); ``tp/fp/fn`` are areas in m2.
    """
    t, p = _geoms(truth), _geoms(pred)
    tu = shapely.union_all(t) if len(t) else shapely.Polygon()
    pu = shapely.union_all(p) if len(p) else shapely.Polygon()
    inter = float(tu.intersection(pu).area)
    tp, fp, fn = inter, float(pu.area) - inter, float(tu.area) - inter
    out = prf(tp, fp, fn)
    union = tp + fp + fn
    out["iou"] = tp / union if union > 0 else float("nan")
    out["truth_area_ha"] = float(tu.area) / 1e4
    out["pred_area_ha"] = float(pu.area) / 1e4
    return out
