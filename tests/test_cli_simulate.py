"""End-to-end test of ``fortmap simulate`` through click."""

from __future__ import annotations

import json

from click.testing import CliRunner

from fortmap.cli.main import cli
from fortmap.errors import OutputExistsError


def test_simulate_command_writes_a_scene(tmp_path):
    out = tmp_path / "city"
    runner = CliRunner()
    args = ["simulate", "--out", str(out), "--size-m", "400", "--seed", "2", "--difficulty", "hard"]
    res = runner.invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "buildings" in res.output and "razed" in res.output
    for name in ("before.tif", "after.tif", "dsm_before.tif", "dsm_after.tif", "truth.gpkg", "truth_change.tif",
                 "buildings.geojson", "roads.geojson", "places.geojson", "scene.json"):  # fmt: skip
        assert (out / name).is_file(), name
    meta = json.loads((out / "scene.json").read_text())
    assert meta["seed"] == 2 and meta["difficulty"]["level"] == 0.75

    res = runner.invoke(cli, args)
    assert res.exit_code == OutputExistsError.exit_code
    res = runner.invoke(cli, args + ["--force"])
    assert res.exit_code == 0, res.output


def test_simulate_command_rejects_bad_difficulty(tmp_path):
    res = CliRunner().invoke(
        cli, ["simulate", "--out", str(tmp_path / "x"), "--difficulty", "brutal"]
    )
    assert res.exit_code != 0
    assert not (tmp_path / "x").exists()


def test_simulate_command_on_osm_streets(tmp_path):
    from conftest import shared

    pbf = shared("osm", "aguascalientes.osm.pbf")
    out = tmp_path / "osm"
    args = ["simulate", "--out", str(out), "--size-m", "400", "--gsd", "2", "--osm", str(pbf)]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "entry routes into the core" in res.output
    meta = json.loads((out / "scene.json").read_text())
    assert meta["crs"] == "EPSG:32613" and meta["osm"]["osm_roads"] > 0
    assert meta["routes"]["entries_before"] >= 1


def test_simulate_command_rejects_a_non_osm_file(tmp_path):
    bad = tmp_path / "roads.geojson"
    bad.write_text("{}")
    res = CliRunner().invoke(cli, ["simulate", "--out", str(tmp_path / "o"), "--osm", str(bad)])
    assert res.exit_code == 2 and "OpenStreetMap" in res.output


def test_simulate_quiet_prints_nothing(tmp_path):
    out = tmp_path / "city"
    res = CliRunner().invoke(cli, ["simulate", "--out", str(out), "--size-m", "200", "--quiet"])
    assert res.exit_code == 0, res.output
    assert res.output == "" and (out / "truth.gpkg").is_file()
