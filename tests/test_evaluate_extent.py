"""``fortmap score`` refuses a run of another scene and says when the run's core differs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from shapely import Point, box

from fortmap.cli.main import cli
from fortmap.errors import NoOverlapError
from fortmap.evaluate.extent import check_same_ground, core_note
from fortmap.evaluate.score import score_run
from test_evaluate_score import gdf, sim_case, write_layers, write_tif, x0, y0

# Puerto Rico, UTM zone 19N: a run from there scored against a city in zone 37N
PR_CRS = "EPSG:32619"


def _run_elsewhere(tmp_path: Path) -> Path:
    import numpy as np
    from affine import Affine

    pdir = tmp_path / "pr"
    pdir.mkdir()
    far = [box(800000, 2000000, 800010, 2000010)]
    write_layers(pdir / "findings.gpkg", {"razed_buildings": gdf(far, crs=PR_CRS)})
    t = Affine(1.0, 0, 800000.0, 0, -1.0, 2000100.0)
    write_tif(pdir / "change.tif", np.zeros((10, 10), np.uint8), transform=t, crs=PR_CRS)
    return pdir


def test_run_of_another_scene_is_refused(tmp_path):
    truth, _ = sim_case(tmp_path)
    pdir = _run_elsewhere(tmp_path)
    with pytest.raises(NoOverlapError, match="does not overlap") as err:
        score_run(truth, pdir)
    assert str(truth) in str(err.value) and str(pdir) in str(err.value)
    res = CliRunner().invoke(cli, ["score", "--truth", str(truth), "--pred", str(pdir)])
    assert res.exit_code == 2
    line = res.output.strip()
    assert line.startswith("Error: ") and len(line.splitlines()) == 1 and "truth.gpkg" in line


def test_change_mask_of_another_scene_is_refused(tmp_path):
    _, pdir_ok = sim_case(tmp_path)
    pdir = _run_elsewhere(tmp_path)
    with pytest.raises(NoOverlapError):
        score_run(tmp_path / "sim" / "truth_change.tif", pdir)
    # the same scene still scores
    assert "change_pixels" in score_run(tmp_path / "sim" / "truth_change.tif", pdir_ok)["kinds"]


def test_findings_only_runs_overlap_by_their_features(tmp_path):
    truth, pdir = sim_case(tmp_path)
    (pdir / "change.tif").unlink()
    (truth.parent / "truth_change.tif").unlink()
    assert "razed_buildings" in score_run(truth, pdir)["kinds"]


def test_same_ground_in_two_crs_is_accepted():
    # the same 100 m square in UTM 37N and in WGS 84
    b = (500000.0, 4000000.0, 500100.0, 4000100.0)
    ll = (39.0, 36.1447, 39.0011, 36.1456)
    check_same_ground(Path("t"), [(b, "EPSG:32637")], Path("p"), [(ll, "EPSG:4326")], "EPSG:32637")
    with pytest.raises(NoOverlapError):
        far = (10.0, 50.0, 10.01, 50.01)
        check_same_ground(
            Path("t"), [(b, "EPSG:32637")], Path("p"), [(far, "EPSG:4326")], "EPSG:32637"
        )


def _routes_case(tmp_path: Path, truth_core_m2: float, run_core_m2: float) -> tuple[Path, Path]:
    truth, pdir = sim_case(tmp_path)
    entries = gdf([Point(x0(10), y0(10))], status=["open"])
    write_layers(truth, {"entry_points": entries})
    write_layers(pdir / "findings.gpkg", {"entry_points": gdf([Point(x0(80), y0(80))],
                                                              status=["open"])})  # fmt: skip
    (truth.parent / "scene.json").write_text(
        json.dumps({"routes": {"core_area_m2": truth_core_m2}})
    )
    (pdir / "summary.json").write_text(json.dumps({"routes": {"core_area_m2": run_core_m2}}))
    return truth, pdir


def test_a_different_core_is_said_in_a_note(tmp_path):
    truth, pdir = _routes_case(tmp_path, 70657.45, 502654.8)
    r = score_run(truth, pdir)
    assert r["kinds"]["entry_points"]["n_matched"] == 0
    notes = [n for n in r["notes"] if "run's core" in n]
    assert len(notes) == 1 and "differs from the truth's" in notes[0]
    res = CliRunner().invoke(cli, ["score", "--truth", str(truth), "--pred", str(pdir)])
    assert res.exit_code == 0 and "note: entry_points: the run's core" in res.output


def test_the_same_core_gets_no_note(tmp_path):
    truth, pdir = _routes_case(tmp_path, 70657.45, 70657.45)
    assert not [n for n in score_run(truth, pdir)["notes"] if "run's core" in n]
    assert core_note(truth, tmp_path / "nowhere") is None
