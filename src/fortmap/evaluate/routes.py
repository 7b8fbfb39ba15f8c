"""Score the route status of entry points into the core against the simulator's truth.

An entry point is where a road crosses the core's boundary (see
:mod:`fortmap.analyze.routes`). Predicted and true entry points are matched one to one by
distance (Hungarian, minimum total distance) within ``max_dist_m`` (15 m: a few pixels of
metre-class imagery plus half a wide road, fixed before any result was seen). Over the matched
pairs the status (``open`` or ``cut``) is compared: the accuracy is the share of matched entries
whose status is right, and precision/recall/F1 treat ``cut`` as the positive class. Unmatched
entries on either side are counted, not folded into the accuracy.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import shapely
from scipy.optimize import linear_sum_assignment

from fortmap.errors import InputError
from fortmap.evaluate.metrics import prf

#: Distance (m) within which a predicted entry point matches a true one.
ENTRY_DIST_M = 15.0


def match_points(
    truth: np.ndarray, pred: np.ndarray, max_dist_m: float = ENTRY_DIST_M
) -> list[tuple[int, int, float]]:
    """One-to-one (truth index, pred index, distance m) pairs within ``max_dist_m``.

    Args:
        truth, pred: (n, 2) coordinates in one projected CRS (metres).
        max_dist_m: largest distance (m) of a matched pair.
    """
    truth = np.asarray(truth, float).reshape(-1, 2)
    pred = np.asarray(pred, float).reshape(-1, 2)
    if not len(truth) or not len(pred):
        return []
    d = np.hypot(truth[:, None, 0] - pred[None, :, 0], truth[:, None, 1] - pred[None, :, 1])
    # inadmissible pairs cost more than any admissible assignment could
    big = max_dist_m * (len(truth) + len(pred) + 1) + 1.0
    cost = np.where(d <= max_dist_m, d, big)
    ti, pi = linear_sum_assignment(cost)
    return [
        (int(i), int(j), float(d[i, j]))
        for i, j in zip(ti, pi, strict=True)
        if d[i, j] <= max_dist_m
    ]


def _status(gdf: gpd.GeoDataFrame, role: str) -> np.ndarray:
    if "status" not in gdf.columns:
        raise InputError(f"{role}: entry_points layer has no 'status' column")
    s = gdf["status"].fillna("").astype(str).str.lower().to_numpy()
    bad = sorted(set(s) - {"open", "cut"})
    if bad:
        raise InputError(f"{role}: entry_points status must be open or cut, found {bad[:5]}")
    return s


def score_entry_points(
    truth: gpd.GeoDataFrame,
    pred: gpd.GeoDataFrame,
    max_dist_m: float = ENTRY_DIST_M,
    *,
    crs: object | None = None,
) -> dict:
    """Status (open/cut) agreement of predicted entry points with true ones.

    Args:
        truth: true ``entry_points`` (Points with ``status``), any CRS.
        pred: predicted ``entry_points``, any CRS.
        max_dist_m: match distance (m).
        crs: projected CRS (metres) to compare in; defaults to the truth's, or its UTM zone
            when geographic.

    Returns:
        ``precision``, ``recall``, ``f1`` (``cut`` positive, over matched entries),
        ``status_accuracy`` (NaN with no match), ``all_correct`` (every true entry matched,
        no extra prediction, every status right), counts ``n_truth``, ``n_pred``,
        ``n_matched``, ``n_status_correct``, ``unmatched_truth``, ``unmatched_pred``,
        ``truth_cut``, ``pred_cut`` and ``max_entry_dist_m``.

    Raises:
        InputError: a layer without CRS or ``status``, or with a status other than open/cut.
    """
    for gdf, role in ((truth, "truth"), (pred, "prediction")):
        if len(gdf) and gdf.crs is None:
            raise InputError(f"{role}: entry_points layer has no CRS")
    if crs is None:
        crs = truth.crs if truth.crs is not None else pred.crs
        if crs is not None and gpd.GeoSeries([], crs=crs).crs.is_geographic:
            crs = truth.estimate_utm_crs() if len(truth) else pred.estimate_utm_crs()
    t = truth.to_crs(crs) if len(truth) and crs is not None else truth
    p = pred.to_crs(crs) if len(pred) and crs is not None else pred
    ts, ps = _status(t, "truth"), _status(p, "prediction")
    txy = (
        shapely.get_coordinates(shapely.centroid(t.geometry.values)) if len(t) else np.zeros((0, 2))
    )
    pxy = (
        shapely.get_coordinates(shapely.centroid(p.geometry.values)) if len(p) else np.zeros((0, 2))
    )
    pairs = match_points(txy, pxy, max_dist_m)
    tm = np.array([ts[i] for i, _, _ in pairs], dtype=object)
    pm = np.array([ps[j] for _, j, _ in pairs], dtype=object)
    correct = int((tm == pm).sum())
    tp = int(((tm == "cut") & (pm == "cut")).sum())
    fp = int(((tm == "open") & (pm == "cut")).sum())
    fn = int(((tm == "cut") & (pm == "open")).sum())
    n = len(pairs)
    out = prf(tp, fp, fn)
    out.update(
        {
            "status_accuracy": correct / n if n else math.nan,
            "all_correct": bool(n == len(t) == len(p) and correct == n),
            "n_truth": len(t),
            "n_pred": len(p),
            "n_matched": n,
            "n_status_correct": correct,
            "unmatched_truth": len(t) - n,
            "unmatched_pred": len(p) - n,
            "truth_cut": int((ts == "cut").sum()),
            "pred_cut": int((ps == "cut").sum()),
            "max_entry_dist_m": float(max_dist_m),
        }
    )
    return out
