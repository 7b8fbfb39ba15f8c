"""End-to-end tests of ``fortmap analyze``, including every kind of bad input."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from click.testing import CliRunner

from conftest import rubble, textured_scene, write_tif
from fortmap.cli.main import cli


def run(*args: str):
    return CliRunner().invoke(cli, ["analyze", *map(str, args)])


def test_analyze_writes_outputs(pair, tmp_path):
    b, a, _ = pair
    out = tmp_path / "run"
    res = run("--before", b, "--after", a, "--out", out, "--quiet")
    assert res.exit_code == 0, res.output
    assert {p.name for p in out.iterdir()} >= {
        "change.tif",
        "findings.gpkg",
        "summary.json",
        "report.html",
        "captions.md",
        "figures",
    }
    s = json.loads((out / "summary.json").read_text())
    assert s["dates"] == {"before": "2024-03-01", "after": "2024-09-01"}
    assert s["coregistration"]["shift_px"] == pytest.approx([2.4, -1.6], abs=0.25)
    with rasterio.open(out / "change.tif") as ds:
        assert ds.crs.to_epsg() == 32637 and ds.dtypes[0] == "uint8"
        change = ds.read(1)
    assert set(np.unique(change)) <= {0, 1}
    # the rubble block, at rows 100-130, cols 200-230 of the after image, lies at rows 101.6-131.6,
    # cols 197.6-227.6 of the before grid once co-registered: much of it is found, little else
    assert change[102:131, 198:227].mean() > 0.4
    assert change.mean() < 0.02
    layers = set(gpd.list_layers(out / "findings.gpkg")["name"])
    assert {"razed_buildings", "cleared_areas"} <= layers


@pytest.mark.parametrize(
    "problem",
    ["missing", "directory", "not_raster", "no_crs", "no_overlap"],
)
def test_bad_before_image(problem, pair, tmp_path):
    b, a, img = pair
    bad = tmp_path / "bad.tif"
    if problem == "missing":
        pass
    elif problem == "directory":
        bad.mkdir()
    elif problem == "not_raster":
        bad.write_text("this is not a raster")
    elif problem == "no_crs":
        write_tif(bad, img, crs=None)
    elif problem == "no_overlap":
        write_tif(bad, img, transform=Affine(0.5, 0, 700000, 0, -0.5, 4000000))
    out = tmp_path / "run"
    res = run("--before", bad, "--after", a, "--out", out)
    assert res.exit_code != 0
    msg = res.output.strip()
    assert msg.startswith("Error: ") and "bad.tif" in msg
    assert len(msg.splitlines()) == 1
    assert "Traceback" not in msg
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".run")] == []


def test_existing_output_refused_without_force(pair, tmp_path):
    b, a, _ = pair
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    res = run("--before", b, "--after", a, "--out", out)
    assert res.exit_code == 3 and "--force" in res.output
    assert (out / "keep.txt").read_text() == "mine"
    res = run("--before", b, "--after", a, "--out", out, "--force", "--quiet")
    assert res.exit_code == 0 and not (out / "keep.txt").exists()


def test_inputs_are_not_modified(pair, tmp_path):
    b, a, _ = pair
    before_bytes = b.read_bytes(), a.read_bytes()
    assert run("--before", b, "--after", a, "--out", tmp_path / "r", "-q").exit_code == 0
    assert (b.read_bytes(), a.read_bytes()) == before_bytes


def test_16bit_and_different_band_counts(tmp_path):
    img = textured_scene()
    b = write_tif(tmp_path / "b16.tif", img, dtype="uint16")
    after = img.copy()
    after[:, 100:130, 200:230] = rubble(30, 30, seed=2)
    a = write_tif(tmp_path / "a4.tif", np.concatenate([after, after[:1]]))
    res = run("--before", b, "--after", a, "--out", tmp_path / "run")
    assert res.exit_code == 0, res.output
    assert "band" in res.output  # the band-count difference is reported
    with rasterio.open(tmp_path / "run" / "change.tif") as ds:
        assert ds.read(1)[105:125, 205:225].mean() > 0.5


def test_nodata_and_cloud_mask_never_change(tmp_path):
    img = textured_scene()
    after = img.copy()
    after[:, 100:130, 200:230] = rubble(30, 30, seed=3)
    after[:, 90:140, 190:240][:, :, :] = 0  # the change lies under nodata in the after image
    b = write_tif(tmp_path / "b.tif", img)
    a = write_tif(tmp_path / "a.tif", after, nodata=0)
    res = run("--before", b, "--after", a, "--out", tmp_path / "run", "-q")
    assert res.exit_code == 0, res.output
    with rasterio.open(tmp_path / "run" / "change.tif") as ds:
        assert ds.read(1)[88:142, 188:242].sum() == 0
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert s["valid_fraction"] < 0.99


def _footprints(path, crs_from="EPSG:32637", to=None, outside=False):
    t = Affine(0.5, 0, 500000, 0, -0.5, 4000000)
    boxes = [
        shapely.box(*(t @ (200, 130)), *(t @ (230, 100))),
        shapely.box(*(t @ (20, 60)), *(t @ (40, 40))),
    ]
    if outside:
        boxes.append(shapely.box(510000, 4010000, 510020, 4010020))
    g = gpd.GeoDataFrame({"id": range(len(boxes))}, geometry=boxes, crs=crs_from)
    if to:
        g = g.to_crs(to)
    g.to_file(path, engine="pyogrio")
    return path


def test_footprints_in_another_crs_and_outside(pair, tmp_path):
    b, a, _ = pair
    fp = _footprints(tmp_path / "fp.geojson", to="EPSG:4326", outside=True)
    res = run("--before", b, "--after", a, "--buildings", fp, "--out", tmp_path / "run")
    assert res.exit_code == 0, res.output
    assert "outside" in res.output
    bl = gpd.read_file(tmp_path / "run" / "findings.gpkg", layer="buildings")
    assert bl.crs.to_epsg() == 32637 and len(bl) == 2
    assert set(bl["damage"]) <= {"intact", "damaged", "destroyed"}
    assert bl["score"].between(0, 1).all()


def test_footprints_not_polygons(pair, tmp_path):
    b, a, _ = pair
    g = gpd.GeoDataFrame(geometry=[shapely.Point(500050, 3999950)], crs="EPSG:32637")
    g.to_file(tmp_path / "pts.gpkg", engine="pyogrio")
    res = run(
        "--before", b, "--after", a, "--buildings", tmp_path / "pts.gpkg", "--out", tmp_path / "r"
    )
    assert res.exit_code == 2 and "polygons" in res.output and "pts.gpkg" in res.output
    assert not (tmp_path / "r").exists()


def test_single_band_against_rgb_compares_grey(tmp_path):
    img = textured_scene()
    after = img.copy()
    after[:, 100:130, 200:230] = 0.95  # a bright new roof
    b = write_tif(tmp_path / "pan.tif", img.mean(axis=0, keepdims=True))
    a = write_tif(tmp_path / "rgb.tif", after)
    res = run("--before", b, "--after", a, "--out", tmp_path / "run")
    assert res.exit_code == 0, res.output
    assert "grey" in res.output
    with rasterio.open(tmp_path / "run" / "change.tif") as ds:
        assert ds.read(1)[105:125, 205:225].mean() > 0.5


def test_roads_core_and_dsms_on_a_simulated_city(small_city, tmp_path):
    s = small_city
    out = tmp_path / "run"
    res = run(
        "--before", s / "before.tif", "--after", s / "after.tif", "--roads", s / "roads.geojson",
        "--places", s / "places.geojson", "--core", "Old City,100",
        "--dsm-before", s / "dsm_before.tif", "--dsm-after", s / "dsm_after.tif", "--out", out, "-q",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    layers = set(gpd.list_layers(out / "findings.gpkg")["name"])
    assert {"barricades", "rubble", "berms", "routes", "entry_points"} <= layers
    summary = json.loads((out / "summary.json").read_text())
    r = summary["routes"]
    assert r["entries_before"] >= 1
    assert r["entries_after"] + r["entries_cut"] == r["entries_before"]
    assert summary["not_analysed"] == []
    berms = gpd.read_file(out / "findings.gpkg", layer="berms")
    assert set(berms["kind"]) <= {"berm", "ditch"}


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--places", "{s}/places.geojson", "--core", "Atlantis"], "Old City"),
        # without --roads, roads are derived from the before image; the core still needs --places
        (["--core", "Old City"], "--places"),
        (["--dsm-before", "{s}/dsm_before.tif"], "--dsm-after"),
    ],
)
def test_bad_route_and_dsm_options(small_city, tmp_path, extra, message):
    s = small_city
    extra = [e.format(s=s) for e in extra]
    roads = ["--roads", str(s / "roads.geojson")] if "--places" in extra else []
    out = tmp_path / "run"
    res = run(
        "--before", s / "before.tif", "--after", s / "after.tif", *roads, *extra, "--out", out
    )
    assert res.exit_code == 2, res.output
    assert message in res.output and len(res.output.strip().splitlines()) == 1
    assert not out.exists()


def test_log_json_records_steps_and_timings(pair, tmp_path):
    b, a, _ = pair
    log = tmp_path / "steps.jsonl"
    res = run("--before", b, "--after", a, "--out", tmp_path / "r", "--no-report", "-q",
              "--log-json", log)  # fmt: skip
    assert res.exit_code == 0, res.output
    assert res.output == ""  # --quiet prints nothing on success
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    steps = {e["step"] for e in lines}
    assert {"co-registering", "detecting", "timings"} <= steps
    assert lines[-1]["seconds"]["total"] > 0
    assert all(e["t"] >= 0 for e in lines[:-1])


def test_wrote_line_lists_what_was_written(pair, tmp_path):
    b, a, _ = pair
    out = tmp_path / "run"
    res = run("--before", b, "--after", a, "--out", out, "--no-report")
    assert res.exit_code == 0, res.output
    wrote = res.output.strip().splitlines()[-1]
    assert wrote.startswith(f"Wrote {out}/: findings.gpkg, change.tif, summary.json")
    # every name in the folder, and nothing that is not there (no report with --no-report)
    listed = set(wrote.split(": ", 1)[1].split(", "))
    assert listed == {p.name + ("/" if p.is_dir() else "") for p in out.iterdir()}
    assert "report.html" not in listed
