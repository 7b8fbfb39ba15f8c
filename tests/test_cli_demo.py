"""End-to-end test of ``fortmap demo`` on a small simulated city."""

from __future__ import annotations

import json

from click.testing import CliRunner

from fortmap.cli.main import cli


def test_demo_small_city(tmp_path):
    out = tmp_path / "demo"
    res = CliRunner().invoke(cli, ["demo", "--out", str(out), "--size-m", "500", "--seed", "3"])
    assert res.exit_code == 0, res.output
    assert (out / "scene" / "truth.gpkg").exists()
    assert (out / "analysis" / "findings.gpkg").exists()
    scores = json.loads((out / "scores.json").read_text())
    assert scores["pred"] == str(out / "analysis")
    assert "razed_buildings" in res.output and "cleared_areas" in res.output
    # the detectors work on the simulated city: far better than chance
    assert scores["kinds"]["razed_buildings"]["f1"] > 0.4
    assert scores["kinds"]["change_pixels"]["recall"] > 0.5
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]


def test_demo_refuses_existing_output(tmp_path):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    res = CliRunner().invoke(cli, ["demo", "--out", str(out), "--size-m", "300"])
    assert res.exit_code == 3 and "--force" in res.output
    assert (out / "mine.txt").read_text() == "keep"
