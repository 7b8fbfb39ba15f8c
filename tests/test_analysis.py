"""Library-level tests of the analyze pipeline: tiling invariance and the Dask path."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio

from fortmap.analysis import AnalyzeOptions, run_analysis


def _change(path):
    with rasterio.open(path / "change.tif") as ds:
        return ds.read(1)


def test_window_size_does_not_change_the_result(pair, tmp_path):
    b, a, _ = pair
    run_analysis(b, a, tmp_path / "big", options=AnalyzeOptions(window_px=1024))
    run_analysis(b, a, tmp_path / "small", options=AnalyzeOptions(window_px=96))
    big, small = _change(tmp_path / "big"), _change(tmp_path / "small")
    assert (big != small).mean() < 0.002


@pytest.mark.slow
def test_dask_local_cluster_gives_the_same_mask(pair, tmp_path):
    b, a, _ = pair
    run_analysis(b, a, tmp_path / "seq", options=AnalyzeOptions(window_px=128))
    s = run_analysis(b, a, tmp_path / "dask", options=AnalyzeOptions(window_px=128, workers=2))
    assert np.array_equal(_change(tmp_path / "seq"), _change(tmp_path / "dask"))
    assert json.loads((tmp_path / "dask" / "summary.json").read_text())["counts"] == s["counts"]


def test_progress_is_reported(pair, tmp_path):
    b, a, _ = pair
    seen = []
    run_analysis(
        b,
        a,
        tmp_path / "p",
        progress=lambda step, d, n: seen.append((step, d, n)),
        options=AnalyzeOptions(window_px=128),
    )
    detecting = [x for x in seen if x[0] == "detecting"]
    assert detecting[-1][1] == detecting[-1][2] == 9
