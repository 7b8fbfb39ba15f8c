"""The CLI's promises on bad input and interruptions, whatever the command: one ``Error:`` line,
a non-zero exit, no traceback, no input replaced, nothing half-written."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from conftest import terminate_when, textured_scene, write_tif
from fortmap.cli.analyze import format_summary
from fortmap.cli.main import cli


def invoke(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_error_line(res) -> str:
    msg = res.output.strip()
    assert msg.startswith("Error: "), msg
    assert len(msg.splitlines()) == 1, msg
    assert "Traceback" not in msg
    return msg


@pytest.mark.parametrize(
    "args, expect",
    [
        (["analyze", "--bogus"], "fortmap analyze --help"),
        (["nosuchcommand"], "fortmap --help"),
        (["viewshed", "dem.tif", "--observer", "abc", "--out", "v.tif"], "X,Y"),
        (["analyze", "--before", "b.tif", "--after", "a.tif", "--out", "r", "--window", "0"], "0"),
        (
            ["analyze", "--before", "b.tif", "--after", "a.tif", "--out", "r", "--workers", "-1"],
            "-1",
        ),
        (
            ["analyze", "--before", "b.tif", "--after", "a.tif", "--out", "r"]
            + ["--min-cleared-ha", "-1"],
            "--min-cleared-ha",
        ),
    ],
)
def test_usage_errors_are_one_line(args, expect):
    res = invoke(*args)
    assert res.exit_code == 2
    assert expect in one_error_line(res)


def test_help_still_works():
    res = invoke("analyze", "--help")
    assert res.exit_code == 0 and "--before" in res.output


def test_output_folder_holding_the_inputs_is_refused_even_with_force(pair, tmp_path):
    # --force replaces --out whole: with the inputs inside, it would delete them
    b, a, _ = pair
    before = b.read_bytes()
    res = invoke("analyze", "--before", b, "--after", a, "--out", tmp_path, "--force", "-q")
    assert res.exit_code == 2
    assert "would replace the input" in one_error_line(res)
    assert b.read_bytes() == before and a.exists()


def test_output_equal_to_the_current_folder_is_refused(pair, tmp_path, monkeypatch):
    b, a, _ = pair
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    res = invoke("analyze", "--before", b, "--after", a, "--out", ".", "--force", "-q")
    assert res.exit_code == 2 and "current folder" in one_error_line(res)
    assert list(work.iterdir()) == []  # no temporary folder left behind


def test_viewshed_output_that_is_its_dem_is_refused(tmp_path):
    dem = tmp_path / "dem.tif"
    dem.write_bytes(b"not read: the guard comes first")
    res = invoke("viewshed", dem, "--observer", "1,1", "--out", dem, "--force")
    assert res.exit_code == 2 and "would replace the input" in one_error_line(res)
    assert dem.read_bytes() == b"not read: the guard comes first"


def test_simulate_osm_inside_output_is_refused(tmp_path):
    (tmp_path / "x.osm.pbf").write_bytes(b"")
    res = invoke("simulate", "--out", tmp_path, "--osm", tmp_path / "x.osm.pbf", "--force")
    assert res.exit_code == 2 and "would replace the input" in one_error_line(res)


@pytest.mark.parametrize("option", ["--out", "--log-json"])
def test_unwritable_output_fails_before_the_run(pair, tmp_path, option):
    # a file where a folder should be: fails up front, naming the user's path, not a temporary
    b, a, _ = pair
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    out = tmp_path / "run"
    target = blocker / "sub" / ("log.json" if option == "--log-json" else "run")
    args = ["--out", target] if option == "--out" else ["--out", out, "--log-json", target]
    res = invoke("analyze", "--before", b, "--after", a, *args, "-q")
    assert res.exit_code == 2
    msg = one_error_line(res)
    assert str(target) in msg and "not a folder" in msg
    assert not out.exists()


def test_log_json_folder_is_made(pair, tmp_path):
    b, a, _ = pair
    log = tmp_path / "logs" / "deep" / "run.jsonl"
    res = invoke(
        "analyze", "--before", b, "--after", a, "--out", tmp_path / "run", "-q", "--no-report",
        "--log-json", log,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert log.read_text().strip().splitlines()[-1].startswith('{"step": "timings"')


@pytest.mark.parametrize(
    "exc, code, words",
    [
        (KeyboardInterrupt(), 130, "interrupted"),
        (PermissionError(13, "Permission denied", "/data/run"), 1, "/data/run: Permission denied"),
        (OSError("Timed out trying to connect to tcp://10.0.0.1:8786 after 30 s"), 1, "Timed out"),
    ],
)
def test_interrupts_and_os_errors_are_one_line(pair, tmp_path, monkeypatch, exc, code, words):
    import fortmap.analysis
    from fortmap.io.output import atomic_dir

    def fail(before, after, out_dir, **kwargs):
        with atomic_dir(out_dir, kwargs.get("force", False)):
            raise exc

    monkeypatch.setattr(fortmap.analysis, "run_analysis", fail)
    b, a, _ = pair
    out = tmp_path / "run"
    res = invoke("analyze", "--before", b, "--after", a, "--out", out, "-q")
    assert res.exit_code == code
    assert words in one_error_line(res)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["after.tif", "before.tif"]


def test_sigterm_removes_the_output_in_progress(tmp_path):
    """A real process, killed by SIGTERM while it writes: exit 143, nothing left behind."""
    out = tmp_path / "city"
    code, err = terminate_when(
        ["simulate", "--out", str(out), "--size-m", "1000", "--seed", "3"],
        lambda: bool(list(tmp_path.glob(".city.tmp-*"))),
    )
    assert code == 143, err
    assert err.strip().splitlines() == ["Error: terminated (SIGTERM)"]
    assert list(tmp_path.iterdir()) == []


def _summary(mode: str) -> dict:
    return {
        "dates": {"before": "2024-01-01", "after": None},
        "grid": {"area_km2": 1.0, "gsd_m": 0.5},
        "coregistration": {
            "mode": mode,
            "applied": "none" if mode == "none" else "shift",
            "shift_m": [-0.95, -1.0],
            "residual_m": 2.4,
            "tiles_used": 9,
        },
        "counts": {"razed_buildings": 1},
        "areas": {"cleared_ha": 0.0, "changed_ha": 1.0},
        "timings_s": {"total": 1.0},
        "megapixels_per_second": 1.0,
    }


def test_summary_says_when_the_shift_was_not_applied():
    # with --coregister none the shift is measured, not applied: saying "shift -0.95 m" alone
    # reads as a correction made to the after image
    line = format_summary(_summary("none")).splitlines()[1]
    assert "none applied" in line and "measured shift -0.95 m" in line
    line = format_summary(_summary("auto")).splitlines()[1]
    assert line.startswith("Co-registration: shift -0.95 m, -1.00 m")


def test_summary_tells_compiling_the_kernels_apart():
    # a first run's time is mostly numba compiling the kernels: said, so that it is not read
    # as the analysis's speed
    s = _summary("auto")
    assert format_summary(s).splitlines()[-1] == "Time: 1.0 s (1.0 megapixels/s)"
    s["timings_s"] = {"total": 71.9, "compiling_kernels": 64.3}
    last = format_summary(s).splitlines()[-1]
    assert "of which 64 s compiling fortmap's kernels on first use" in last
    s["timings_s"] = {"total": 7.3, "compiling_kernels": 0.4}  # a kernel or two: not worth a word
    assert format_summary(s).splitlines()[-1] == "Time: 7.3 s (1.0 megapixels/s)"


def _height_tif(path, x0: float, bands: int = 1, dtype: str = "float32"):
    import numpy as np
    from affine import Affine

    data = np.full((bands, 40, 40), 0.5)
    return write_tif(path, data, transform=Affine(1.0, 0, x0, 0, -1.0, 4000000), dtype=dtype)


@pytest.mark.parametrize("option, role", [("--dem", "DEM"), ("--dsm-before", "before DSM")])
def test_height_model_off_the_images_fails_up_front(pair, tmp_path, option, role):
    # the images lie at 500000 E; this one 100 km east
    b, a, _ = pair
    off = _height_tif(tmp_path / "off.tif", 600000.0)
    good = _height_tif(tmp_path / "good.tif", 500000.0)
    extra = [option, off]
    if option == "--dsm-before":
        extra += ["--dsm-after", good]
    out = tmp_path / "run"
    res = invoke("analyze", "--before", b, "--after", a, "--out", out, "-q", *extra)
    assert res.exit_code == 2
    assert f"off.tif: {role} does not overlap the images" in one_error_line(res)
    assert not out.exists() and not list(tmp_path.glob(".run*"))


def test_viewshed_refuses_an_rgb_image_as_dem(tmp_path):
    rgb = write_tif(tmp_path / "photo.tif", textured_scene(64))
    out = tmp_path / "v.tif"
    res = invoke("viewshed", rgb, "--observer", "500010,3999990", "--out", out)
    assert res.exit_code == 2
    assert "photo.tif: DEM has 3 bands" in one_error_line(res)
    assert not out.exists()
