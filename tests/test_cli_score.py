"""``fortmap score`` end to end with click's CliRunner on small hand-made files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner
from shapely import box

from fortmap.cli.main import cli, main
from fortmap.cli.score import command

CRS = "EPSG:32637"


def _layer(path: Path, name: str, geoms: list) -> None:
    g = gpd.GeoDataFrame(
        {"score": [1.0] * len(geoms)}, geometry=gpd.GeoSeries(geoms, crs=CRS), crs=CRS
    )
    g.to_file(path, layer=name, driver="GPKG", engine="pyogrio")


def _mask(path: Path, data: np.ndarray) -> None:
    t = Affine(1.0, 0, 500000.0, 0, -1.0, 4000010.0)
    with rasterio.open(
        path, "w", driver="GTiff", width=data.shape[1], height=data.shape[0], count=1,
        dtype="uint8", crs=CRS, transform=t,
    ) as ds:  # fmt: skip
        ds.write(data.astype(np.uint8), 1)


def _case(tmp_path: Path) -> tuple[Path, Path]:
    sim, run = tmp_path / "sim", tmp_path / "run"
    sim.mkdir()
    run.mkdir()
    b = [box(500000 + 20 * i, 4000000, 500010 + 20 * i, 4000010) for i in range(4)]
    _layer(sim / "truth.gpkg", "razed_buildings", b)
    _layer(run / "findings.gpkg", "razed_buildings", b[:3] + [box(0, 0, 10, 10)])
    m = np.zeros((6, 6), np.uint8)
    m[:3] = 1
    _mask(sim / "truth_change.tif", m)
    _mask(run / "change.tif", m)
    return sim / "truth.gpkg", run


def test_cli_json(tmp_path):
    truth, run = _case(tmp_path)
    res = CliRunner().invoke(command, ["--truth", str(truth), "--pred", str(run), "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.output)
    assert r["kinds"]["razed_buildings"]["precision"] == 0.75
    assert r["kinds"]["razed_buildings"]["recall"] == 0.75
    assert r["kinds"]["change_pixels"]["f1"] == 1.0


def test_cli_table(tmp_path):
    truth, run = _case(tmp_path)
    res = CliRunner().invoke(
        cli, ["score", "--truth", str(truth), "--pred", str(run), "--iou", "0.5"]
    )
    assert res.exit_code == 0, res.output
    assert "razed_buildings" in res.output and "0.750" in res.output
    assert "change_pixels" in res.output


def test_cli_bad_input_is_one_line_error(tmp_path, monkeypatch, capsys):
    truth, _ = _case(tmp_path)
    monkeypatch.setattr(
        sys, "argv", ["fortmap", "score", "--truth", str(truth), "--pred", str(tmp_path / "nope")]
    )
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: ") and "nope" in err and "\n" not in err
