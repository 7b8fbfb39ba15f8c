"""Matching of polygons and lines, and area/length scores."""

from __future__ import annotations

import math

import pytest
import shapely
from shapely import LineString, box

from fortmap.evaluate.match import (
    iou_pairs,
    match_lines,
    match_polygons,
    mean_line_distance,
    score_area,
    score_lengths,
    score_lines,
    score_polygons,
)


def test_iou_pairs_hand_computed():
    ti, pi, iou = iou_pairs([box(0, 0, 10, 10)], [box(5, 0, 15, 10), box(50, 50, 60, 60)])
    assert list(ti) == [0] and list(pi) == [0]
    assert iou[0] == pytest.approx(50 / 150)


def test_match_polygons_one_to_one():
    truth = [box(0, 0, 10, 10), box(20, 0, 30, 10)]
    # Two predictions on the first building: only one can match it.
    pred = [box(0, 0, 10, 9), box(0, 1, 10, 10), box(20, 0, 30, 10)]
    m = match_polygons(truth, pred, 0.5)
    assert len(m) == 2
    assert sorted(t for t, _, _ in m) == [0, 1]
    s = score_polygons(truth, pred, 0.5)
    assert (s["tp"], s["fp"], s["fn"]) == (2, 1, 0)
    assert s["precision"] == pytest.approx(2 / 3)


def test_match_polygons_threshold():
    truth = [box(0, 0, 10, 10)]
    pred = [box(6, 0, 16, 10)]  # IoU 40/160 = 0.25
    assert match_polygons(truth, pred, 0.5) == []
    assert len(match_polygons(truth, pred, 0.25)) == 1


def test_hungarian_beats_greedy():
    # Greedy would give pred 0 to truth 0 (IoU highest) and leave truth 1 unmatched.
    truth = [box(0, 0, 10, 10), box(3, 0, 13, 10)]
    pred = [box(1.5, 0, 11.5, 10), box(-2, 0, 8, 10)]
    m = match_polygons(truth, pred, 0.5)
    assert len(m) == 2


def test_empty_inputs():
    assert score_polygons([], [], 0.5)["tp"] == 0
    assert math.isnan(score_polygons([], [], 0.5)["f1"])
    assert score_polygons([box(0, 0, 1, 1)], [], 0.5)["recall"] == 0.0
    assert score_lines([], [LineString([(0, 0), (1, 0)])], 10)["precision"] == 0.0
    assert math.isnan(score_area([], [])["iou"])


def test_mean_line_distance():
    a = LineString([(0, 0), (100, 0)])
    assert mean_line_distance(a, LineString([(0, 3), (100, 3)])) == pytest.approx(3.0)
    # A crossing line touches but is far on average.
    cross = LineString([(50, -50), (50, 50)])
    assert shapely.distance(a, cross) == 0
    assert mean_line_distance(a, cross) > 20


def test_match_lines():
    truth = [LineString([(0, 0), (40, 0)]), LineString([(0, 100), (40, 100)])]
    pred = [LineString([(0, 4), (40, 4)]), LineString([(0, 130), (40, 130)])]
    m = match_lines(truth, pred, 10.0)
    assert [(t, p) for t, p, _ in m] == [(0, 0)]
    assert m[0][2] == pytest.approx(4.0)
    s = score_lines(truth, pred, 10.0)
    assert (s["precision"], s["recall"]) == (0.5, 0.5)


def test_score_lengths():
    truth = [LineString([(0, 0), (100, 0)])]
    pred = [LineString([(50, 2), (150, 2)])]
    s = score_lengths(truth, pred, 5.0)
    # Half of each line lies in the other's 5 m corridor (plus the 5 m buffer cap at the end).
    assert s["precision"] == pytest.approx(0.55, abs=0.01)
    assert s["recall"] == pytest.approx(0.55, abs=0.01)
    assert math.isnan(score_lengths([], [])["f1"])


def test_score_area():
    s = score_area([box(0, 0, 100, 100)], [box(50, 0, 150, 100), box(60, 0, 160, 100)])
    # Union of predictions is 50..160 (11000 m2); overlap with truth 5000 m2.
    assert s["precision"] == pytest.approx(5000 / 11000)
    assert s["recall"] == pytest.approx(0.5)
    assert s["iou"] == pytest.approx(5000 / 16000)
    assert s["truth_area_ha"] == pytest.approx(1.0)
