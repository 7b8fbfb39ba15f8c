"""Metrics: hand-computed cases and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fortmap.evaluate.metrics import average_ranks, confusion, pixel_scores, prf, roc_auc


def test_prf_hand_computed():
    m = prf(tp=6, fp=2, fn=4)
    assert m["precision"] == pytest.approx(0.75)
    assert m["recall"] == pytest.approx(0.6)
    assert m["f1"] == pytest.approx(2 * 0.75 * 0.6 / 1.35)


def test_prf_empty_sides():
    assert math.isnan(prf(0, 0, 0)["f1"])
    assert math.isnan(prf(0, 0, 3)["precision"])
    assert prf(0, 0, 3)["recall"] == 0.0
    assert prf(0, 0, 3)["f1"] == 0.0
    assert math.isnan(prf(0, 2, 0)["recall"])


def test_pixel_scores_hand_computed():
    pred = np.array([[1, 1, 0], [0, 1, 0]])
    truth = np.array([[1, 0, 0], [0, 1, 1]])
    m = pixel_scores(pred, truth)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (2, 1, 1, 2)
    assert m["iou"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        pixel_scores(pred, truth[:, :2])


def test_pixel_scores_valid_mask_excludes_pixels():
    pred = np.array([1, 1, 0, 0])
    truth = np.array([1, 0, 0, 1])
    m = pixel_scores(pred, truth, valid=np.array([True, True, True, False]))
    assert (m["tp"], m["fp"], m["fn"]) == (1, 1, 0)


def test_average_ranks_ties():
    np.testing.assert_allclose(average_ranks(np.array([3.0, 1.0, 3.0, 2.0])), [3.5, 1, 3.5, 2])


def test_roc_auc_hand_computed_and_ties():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    # Every score tied: AUC is exactly one half.
    assert roc_auc([0, 1, 0, 1], [0.5] * 4) == pytest.approx(0.5)
    # One tie between a positive and a negative counts one half of that pair.
    assert roc_auc([0, 1], [0.3, 0.3]) == pytest.approx(0.5)
    assert roc_auc([0, 0, 1], [0.2, 0.5, 0.5]) == pytest.approx(0.75)
    assert math.isnan(roc_auc([1, 1], [0.1, 0.2]))


def test_confusion_counts():
    c = confusion(["a", "a", "b", "x"], ["p", "q", "p", "p"], ["a", "b"], ["p", "q"])
    assert c == {"a": {"p": 1, "q": 1}, "b": {"p": 1, "q": 0}}


scores = st.lists(st.floats(0, 1, allow_nan=False), min_size=2, max_size=40)


@settings(max_examples=60, deadline=None)
@given(scores, st.integers(1, 39))
def test_auc_perfect_and_reversed(s, k):
    s = np.unique(np.asarray(s))
    if len(s) < 2:
        return
    k = min(k, len(s) - 1)
    y = np.arange(len(s)) >= len(s) - k  # positives hold the top scores
    assert roc_auc(y, s) == pytest.approx(1.0)
    assert roc_auc(y, -s) == pytest.approx(0.0)
    assert roc_auc(~y, s) == pytest.approx(0.0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), min_size=2, max_size=40), st.data())
def test_auc_matches_pairwise_definition(y, data):
    y = np.asarray(y)
    s = np.asarray(data.draw(st.lists(st.integers(0, 4), min_size=len(y), max_size=len(y))), float)
    pos, neg = s[y], s[~y]
    if len(pos) == 0 or len(neg) == 0:
        assert math.isnan(roc_auc(y, s))
        return
    pairwise = ((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])).mean()
    assert roc_auc(y, s) == pytest.approx(pairwise)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 50), st.integers(0, 50), st.integers(0, 50))
def test_f1_bounds_and_symmetry(tp, fp, fn):
    m = prf(tp, fp, fn)
    if tp + fp + fn == 0:
        assert math.isnan(m["f1"])
        return
    assert 0.0 <= m["f1"] <= 1.0
    # Swapping prediction and truth swaps fp and fn: F1 does not change.
    assert prf(tp, fn, fp)["f1"] == pytest.approx(m["f1"])
    if tp + fp > 0 and tp + fn > 0:
        assert min(m["precision"], m["recall"]) <= m["f1"] <= max(m["precision"], m["recall"])
