"""Scoring the route status of entry points against truth."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely

from fortmap.errors import InputError
from fortmap.evaluate.routes import match_points, score_entry_points
from fortmap.evaluate.score import score_run

CRS = "EPSG:32637"


def _entries(xy, status, crs=CRS) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"status": list(status)}, geometry=list(shapely.points(np.asarray(xy, float))), crs=crs
    )


def test_match_points_is_one_to_one_within_distance():
    truth = np.array([[0, 0], [100, 0], [200, 0]])
    pred = np.array([[3, 4], [6, 0], [100, 14.9], [400, 0]])
    pairs = match_points(truth, pred, 15.0)
    assert sorted((i, j) for i, j, _ in pairs) == [(0, 0), (1, 2)] or sorted(
        (i, j) for i, j, _ in pairs
    ) == [(0, 1), (1, 2)]
    assert all(d <= 15.0 for *_, d in pairs)
    assert match_points(truth, np.zeros((0, 2))) == []


def test_status_accuracy_and_cut_scores():
    truth = _entries(
        [[0, 0], [100, 0], [200, 0], [300, 0], [900, 0]], ["cut", "cut", "open", "open", "open"]
    )
    pred = _entries(
        [[2, 0], [100, 5], [203, 1], [300, -8], [600, 0]], ["cut", "open", "open", "cut", "open"]
    )
    s = score_entry_points(truth, pred)
    assert s["n_matched"] == 4 and s["unmatched_truth"] == 1 and s["unmatched_pred"] == 1
    assert s["n_status_correct"] == 2 and s["status_accuracy"] == pytest.approx(0.5)
    assert (s["tp"], s["fp"], s["fn"]) == (1, 1, 1)
    assert s["precision"] == pytest.approx(0.5) and s["recall"] == pytest.approx(0.5)
    assert s["truth_cut"] == 2 and s["pred_cut"] == 2 and not s["all_correct"]


def test_perfect_prediction_in_another_crs_is_all_correct():
    truth = _entries([[500000, 4000000], [500100, 4000000]], ["open", "cut"], "EPSG:32637")
    pred = truth.to_crs("EPSG:4326")
    s = score_entry_points(truth, pred)
    assert s["all_correct"] and s["status_accuracy"] == 1.0 and s["f1"] == 1.0


def test_no_match_gives_undefined_accuracy():
    s = score_entry_points(_entries([[0, 0]], ["open"]), _entries([[50, 0]], ["open"]))
    assert s["n_matched"] == 0 and math.isnan(s["status_accuracy"]) and not s["all_correct"]


def test_bad_status_is_refused():
    with pytest.raises(InputError, match="open or cut"):
        score_entry_points(_entries([[0, 0]], ["blocked"]), _entries([[0, 0]], ["open"]))


def test_score_run_scores_entry_points(tmp_path):
    truth = tmp_path / "truth.gpkg"
    empty = gpd.GeoDataFrame({"n_blocks": np.array([], int)}, geometry=[], crs=CRS)
    pyogrio.write_dataframe(empty, truth, layer="barricades", geometry_type="LineString")
    t = _entries([[0, 0], [100, 0]], ["open", "cut"])
    pyogrio.write_dataframe(t, truth, layer="entry_points", append=True)
    pred = tmp_path / "run"
    pred.mkdir()
    p = _entries([[1, 1], [100, 3]], ["open", "open"])
    pyogrio.write_dataframe(p, pred / "findings.gpkg", layer="entry_points")
    res = score_run(truth, pred)
    ep = res["kinds"]["entry_points"]
    assert ep["n_matched"] == 2 and ep["status_accuracy"] == 0.5 and ep["recall"] == 0.0
    # a prediction without entry points is noted, not scored
    (pred / "findings.gpkg").unlink()
    pyogrio.write_dataframe(
        empty, pred / "findings.gpkg", layer="barricades", geometry_type="LineString"
    )
    res = score_run(truth, pred)
    assert "entry_points" not in res["kinds"]
    assert any("route status not scored" in n for n in res["notes"])
