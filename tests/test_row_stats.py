"""Exact small statistics of block rows (``row_stats``) and the cached measures of a
``barricade_rows.Piece`` that use them, against numpy's own routines."""

from __future__ import annotations

import numpy as np
import pytest

from fortmap.detect.barricade_rows import Piece, centre, row_ok
from fortmap.detect.roadmask import own_axes
from fortmap.detect.row_stats import nanmedian_rows, percentile_pair


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_percentile_pair_matches_numpy_bit_for_bit(dtype) -> None:
    rng = np.random.default_rng(3)
    for i in range(3000):
        n = int(rng.integers(1, 300))
        x = (rng.normal(size=n) * rng.uniform(0.1, 500)).astype(dtype)
        if i % 5 == 0:
            x = np.round(x)  # ties: equal neighbours, zero differences
        for q in ((1, 99), (5, 95), (0, 100), (50, 50), (33, 67)):
            want = np.percentile(x, q)
            got = percentile_pair(x, *q)
            # equal values (a zero's sign aside: numpy's partition may order -0.0 and 0.0
            # either way, and the callers add 0.5 or subtract, which drops it)
            assert got == tuple(want), (n, q)


def test_percentile_pair_nan_and_integers() -> None:
    x = np.array([1.0, np.nan, 3.0], np.float32)
    assert all(np.isnan(v) for v in percentile_pair(x, 1, 99))
    xi = np.arange(17)
    assert percentile_pair(xi, 5, 95) == tuple(float(v) for v in np.percentile(xi, (5, 95)))
    with pytest.raises(IndexError):
        percentile_pair(np.array([], np.float32), 1, 99)


def _piece(rng: np.random.Generator, n: int) -> Piece:
    rr = rng.integers(0, 40, n)
    cc = rng.integers(0, 40, n)
    th = float(rng.uniform(-np.pi, np.pi))
    along = (cc + 0.5) * np.cos(th) + (rr + 0.5) * np.sin(th)
    across = rng.normal(0, 5, n).astype(np.float32)
    return Piece(rr, cc, 0, th, along, across, 12.0)


def test_piece_measures_match_the_numpy_formulas() -> None:
    rng = np.random.default_rng(5)
    for n in (1, 2, 3, 7, 50, 333):
        p = _piece(rng, n)
        lo, hi = np.percentile(p.across, (1, 99))
        assert p.across_span == (float(lo - 0.5), float(hi + 0.5))
        lo, hi = np.percentile(p.along, (5, 95))
        assert p.along_len == float(hi - lo + 1)
        cc, rr = np.concatenate([p.cols]), np.concatenate([p.rows])
        assert np.array_equal(centre([p]), np.array([cc.mean() + 0.5, rr.mean() + 0.5]))
        assert p.xy == (float(p.cols.mean()) + 0.5, float(p.rows.mean()) + 0.5)


def test_row_ok_of_one_piece_uses_the_same_axes() -> None:
    rng = np.random.default_rng(9)
    contrast = rng.uniform(0, 10, (40, 40)).astype(np.float32)
    for _ in range(200):
        p = _piece(rng, int(rng.integers(3, 60)))
        assert p.axes == own_axes(np.concatenate([p.rows]), np.concatenate([p.cols]))
        q = Piece(p.rows, p.cols, 0, p.theta, p.along, p.across, 12.0)
        # a second piece object with the same pixels but no cached axes answers alike
        assert row_ok([p], contrast, 0.5, 3.0) == row_ok([q], contrast, 0.5, 3.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nanmedian_rows_matches_numpy(dtype) -> None:
    rng = np.random.default_rng(11)
    for cols in (1, 2, 3, 4, 7):
        v = (rng.normal(size=(500, cols)) * 100).astype(dtype)
        v[rng.random(v.shape) < 0.3] = np.nan
        v[:5] = np.nan  # all-NaN rows
        v[5:10] = np.round(v[5:10])
        with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
            want = np.nanmedian(v, axis=1)
        got = nanmedian_rows(v)
        assert got.dtype == want.dtype
        assert np.array_equal(got, want, equal_nan=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_median_np_used_for_rows_matches_np_median(dtype) -> None:
    # barricades, shade rows and berm crests take their medians from change_stats.median_np
    from fortmap.detect.change_stats import median_np

    rng = np.random.default_rng(17)
    for n in list(range(1, 12)) + [99, 100, 1001]:
        x = (rng.normal(size=n) * 50).astype(dtype)
        want, got = np.median(x), median_np(x)
        assert got == want and type(got) is type(want)
        x[n // 2] = np.nan
        assert np.isnan(median_np(x)) and np.isnan(np.median(x))
