"""The analyst's report: report.html, figures, captions, QGIS styles and GeoJSON."""

from __future__ import annotations

import json
import re
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner
from PIL import Image
from shapely import LineString, Point, box

from fortmap.cli.report import command as report_command
from fortmap.errors import InputError
from fortmap.report import captions as cap
from fortmap.report.html import load_run, script_json, write_report
from fortmap.report.layers import findings_frame, write_layers

CRS = "EPSG:32637"
LEFT, TOP, GSD, N = 412000.0, 3985800.0, 0.5, 400  # a 200 m scene
XSS = "<script>alert(1)</script>"


def _image(path: Path, seed: int, date: str, cleared: bool) -> None:
    rng = np.random.default_rng(seed)
    img = (rng.random((3, N, N)) * 60 + 90).astype(np.uint8)
    img[:, 100:140, 100:140] = 200  # a building
    if cleared:
        img[:, 100:140, 100:140] = 120
    prof = {"driver": "GTiff", "width": N, "height": N, "count": 3, "dtype": "uint8",
            "crs": CRS, "transform": Affine(GSD, 0, LEFT, 0, -GSD, TOP)}  # fmt: skip
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(img)
        dst.update_tags(ACQUISITION_DATE=date)


def make_run(
    root: Path,
    *,
    empty: bool = False,
    road_name: str = "Avenue 1",
    extra_layer: str | None = None,
) -> Path:
    """A small but complete run directory (images, summary.json, findings.gpkg, places)."""
    root.mkdir(parents=True, exist_ok=True)
    _image(root / "before.tif", 0, "2024-03-11", False)
    _image(root / "after.tif", 1, "2024-10-02", True)
    run = root / "RUN"
    run.mkdir()
    with rasterio.open(root / "before.tif") as src:
        prof = src.profile | {"count": 1}
        with rasterio.open(run / "change.tif", "w", **prof) as dst:
            dst.write(np.zeros((1, N, N), np.uint8))
    d = {"date_before": "2024-03-11", "date_after": "2024-10-02"}
    x0, y0 = LEFT + 50, TOP - 70  # the building at pixels 100..140
    layers = {
        "razed_buildings": findings_frame(
            "razed_buildings", [] if empty else [box(x0, y0 - 20, x0 + 20, y0)],
            [] if empty else [0.9], CRS, **d, evidence=None if empty else [{"loss": 0.8}],
        ),
        "barricades": findings_frame(
            "barricades", [] if empty else [LineString([(x0 + 30, y0), (x0 + 30, y0 - 15)])],
            [] if empty else [0.95], CRS, **d,
            extra={"road_name": [] if empty else [road_name]},
        ),
    }  # fmt: skip
    if extra_layer:
        from fortmap.types import LAYER_KINDS

        LAYER_KINDS.setdefault(extra_layer, extra_layer.rstrip("s"))
        layers[extra_layer] = findings_frame(
            extra_layer, [LineString([(x0, y0 - 60), (x0 + 80, y0 - 60)])], [0.8], CRS, **d
        )
    write_layers(run / "findings.gpkg", layers)
    summary = {
        "fortmap_version": "0.1.0",
        "inputs": {"before": str(root / "before.tif"), "after": str(root / "after.tif")},
        "dates": {"before": "2024-03-11", "after": "2024-10-02"},
        "grid": {"crs": CRS, "width": N, "height": N, "gsd_m": GSD, "area_km2": 0.04},
        "valid_fraction": 0.98,
        "coregistration": {
            "applied": "shift",
            "shift_m": [0.5, 0.0],
            "residual_m": 0.2,
            "tiles_used": 4,
            "affine_px": [1, 0, 1.0, 0, 1, 0.0],
        },  # fmt: skip
        "counts": {k: len(v) for k, v in layers.items()},
        "not_analysed": [],
    }
    (run / "summary.json").write_text(json.dumps(summary))
    # "Kelmar Airfield" 500 m south of the building
    places = gpd.GeoDataFrame(
        {"name": ["Kelmar Airfield", XSS]},
        geometry=[Point(x0 + 10, y0 - 510), Point(LEFT + 5000, TOP + 5000)],
        crs=CRS,
    )
    places.to_file(root / "places.geojson", driver="GeoJSON", engine="pyogrio")
    return run


@pytest.fixture()
def run(tmp_path: Path) -> Path:
    return make_run(tmp_path / "scene")


def _map_data(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="fm-data">(.*?)</script>', html, re.S)
    assert m, "embedded map data missing"
    return json.loads(m.group(1))


def test_report_is_self_contained(run: Path) -> None:
    out = write_report(run, places=run.parent / "places.geojson")
    html = out.read_text()
    # no URL the browser could fetch: every src/href is a data: URI or a fragment
    refs = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', html)
    assert refs and all(r.startswith(("data:", "#")) for r in refs), refs
    assert "<link" not in html and "@import" not in html and "url(http" not in html
    assert "default-src 'none'" in html  # CSP forbids fetching anything
    data = _map_data(html)
    assert set(data["images"]) == {"before", "after"}
    assert [L["name"] for L in data["layers"]] == ["razed_buildings", "barricades"]
    assert out.stat().st_size < 5_000_000


def test_figures_and_captions(run: Path) -> None:
    write_report(run, places=run.parent / "places.geojson", credit="Imagery © Test Sat 2024")
    pngs = sorted((run / "figures").glob("fig_*.png"))
    assert len(pngs) == 1  # both findings fall in one crop
    with Image.open(pngs[0]) as im:  # print resolution: 7.2 in wide at 300 dpi
        assert im.width >= 2000
    md = (run / "captions.md").read_text()
    assert "2 October 2024" in md and "11 March 2024" in md
    assert "one building razed" in md and "one barricade built across Avenue 1" in md
    assert "north of Kelmar Airfield" in md
    assert "Imagery © Test Sat 2024" in md
    html = (run / "report.html").read_text()
    assert "north of Kelmar Airfield" in html and "Imagery © Test Sat 2024" in html


def test_without_places_captions_give_coordinates(run: Path) -> None:
    write_report(run)
    md = (run / "captions.md").read_text()
    assert re.search(r"at \d+\.\d{4}°N \d+\.\d{4}°E", md), md
    assert "Imagery: before.tif, after.tif" in md


def test_input_strings_are_escaped(tmp_path: Path) -> None:
    run = make_run(tmp_path / "x", road_name="</script><script>alert(2)</script>")
    places = tmp_path / "evil.geojson"
    gpd.GeoDataFrame({"name": [XSS]}, geometry=[Point(LEFT + 60, TOP - 200)], crs=CRS).to_file(
        places, driver="GeoJSON", engine="pyogrio"
    )
    html = write_report(run, places=places, credit='<img src=x onerror="alert(3)">').read_text()
    assert html.count("<script") == 2  # the JSON data block and our own map script
    assert "alert(1)" in html and XSS not in html and "&lt;script&gt;alert(1)" in html
    assert "<img src=x" not in html and "&lt;img src=x" in html
    assert "</script><script>alert(2)" not in html
    # the embedded JSON still carries the road name exactly, for the attribute panel
    data = _map_data(html)
    assert (
        data["layers"][1]["features"][0]["p"]["road_name"] == "</script><script>alert(2)</script>"
    )


def test_script_json_escapes_closing_tags() -> None:
    s = str(script_json({"a": "</script><!--", "b": "\u2028"}))
    assert "<" not in s and ">" not in s and "\u2028" not in s
    assert json.loads(s) == {"a": "</script><!--", "b": "\u2028"}


def test_run_without_findings_says_so(tmp_path: Path) -> None:
    run = make_run(tmp_path / "e", empty=True)
    html = write_report(run).read_text()
    assert 'id="no-findings"' in html and "No change was found" in html
    assert not list((run / "figures").glob("*.png"))
    assert "No finding was significant enough" in (run / "captions.md").read_text()


def test_new_kind_appears_without_code_change(tmp_path: Path) -> None:
    run = make_run(tmp_path / "n", extra_layer="trenches")
    html = write_report(run).read_text()
    names = [L["name"] for L in _map_data(html)["layers"]]
    assert "trenches" in names and "Trenches" in html


def test_layer_styles_follow_qgis_convention(run: Path) -> None:
    write_report(run)
    con = sqlite3.connect(run / "findings.gpkg")
    cols = [r[1] for r in con.execute("PRAGMA table_info(layer_styles)")]
    rows = con.execute(
        "SELECT f_table_name, f_geometry_column, styleQML, styleSLD, useAsDefault FROM layer_styles"
    ).fetchall()
    con.close()
    for c in ("f_table_catalog", "f_table_schema", "f_table_name", "f_geometry_column",
              "styleName", "styleQML", "styleSLD", "useAsDefault", "description", "owner",
              "ui", "update_time"):  # fmt: skip
        assert c in cols
    assert sorted(r[0] for r in rows) == ["barricades", "razed_buildings"]
    for _name, geom_col, q, s, default in rows:
        assert geom_col == "geom" and default == 1
        assert ET.fromstring(q.split(">", 1)[1]).tag == "qgis"
        assert "StyledLayerDescriptor" in ET.fromstring(s).tag
    # writing again replaces, and the layers still read
    write_report(run)
    con = sqlite3.connect(run / "findings.gpkg")
    assert con.execute("SELECT count(*) FROM layer_styles").fetchone()[0] == 2
    con.close()
    assert len(gpd.read_file(run / "findings.gpkg", layer="razed_buildings")) == 1
    assert "layer_styles" not in load_run(run).layers


def test_geojson_is_rfc7946_wgs84(run: Path) -> None:
    write_report(run, geojson=True)
    files = sorted(p.name for p in (run / "geojson").glob("*.geojson"))
    assert files == ["barricades.geojson", "razed_buildings.geojson"]
    doc = json.loads((run / "geojson" / "razed_buildings.geojson").read_text())
    assert "crs" not in doc  # RFC 7946: WGS84 implied, no crs member
    lon, lat = doc["features"][0]["geometry"]["coordinates"][0][0]
    assert 38 < lon < 40 and 35 < lat < 37  # UTM 37N scene near 36 N, 39 E
    assert pyogrio.read_info(run / "geojson" / "razed_buildings.geojson")["features"] == 1


def test_cli_refuses_to_overwrite_without_force(run: Path) -> None:
    r = CliRunner().invoke(report_command, [str(run)])
    assert r.exit_code == 0, r.output
    assert (run / "report.html").exists()
    r = CliRunner().invoke(report_command, [str(run)], standalone_mode=False)
    assert r.exception is not None and "already exists" in str(r.exception)
    r = CliRunner().invoke(report_command, [str(run), "--force", "--geojson"])
    assert r.exit_code == 0 and (run / "geojson").is_dir()


def test_missing_run_dir_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="run directory not found"):
        write_report(tmp_path / "nope")
    (tmp_path / "r").mkdir()
    with pytest.raises(InputError, match="summary.json"):
        write_report(tmp_path / "r")


def test_compass_and_where() -> None:
    places = [cap.Place("Kelmar Airfield", 0.0, 0.0)]
    assert cap.where(0, 1200, places, CRS) == "1.2 km north of Kelmar Airfield"
    assert cap.where(300, -300, places, CRS) == "420 m south-east of Kelmar Airfield"
    assert cap.where(10, 10, places, CRS) == "at Kelmar Airfield"
    assert cap.date_text("2024-10-02") == "2 October 2024"


def test_bank_is_the_side_of_the_river_course() -> None:
    ns = cap.River("Azra River", LineString([(0, -2000), (0, 2000)]), None, 40.0)
    sn = cap.River("Azra River", LineString([(0, 2000), (0, -2000)]), None, 40.0)
    for r in (ns, sn):  # which way the line was drawn does not matter
        assert cap.bank([(-300, 0)], [r]) == "on the Azra River's western bank"
        assert cap.bank([(300, 50)], [r]) == "on the Azra River's eastern bank"
    assert cap.bank([(5, 0)], [ns]) == "over the Azra River"  # within the 40 m channel
    assert cap.bank([(-300, 0), (300, 0)], [ns]) == "on both banks of the Azra River"
    assert cap.bank([(1200, 0)], [ns]) == ""  # more than a kilometre away
    assert cap.bank([(0, 0)], None) == ""
    # a meander bending east at the findings: the bank keeps the name of the reach's course
    bend = cap.River(
        "Tigris", LineString([(0, -2000), (0, -30), (60, 0), (0, 30), (0, 2000)]), None
    )
    assert cap.bank([(-100, 0)], [bend]) == "on the Tigris's western bank"
    # a water polygon, unnamed; then the nearest of two rivers is the one described
    water = cap.River("", None, box(-20, -2000, 20, 2000))
    assert cap.bank([(0, -400)], [water]) == "over the river"
    assert cap.bank([(-300, 0), (300, 0)], [water]) == "on both banks of the river"
    ew = cap.River("The Canal", LineString([(-2000, 500), (2000, 500)]), None)
    assert cap.bank([(150, 420)], [ns, ew]) == "on The Canal's southern bank"


def test_rivers_and_places_from_one_file(tmp_path: Path) -> None:
    p = tmp_path / "places.geojson"
    gpd.GeoDataFrame(
        {
            "name": ["Azra River", "Azra River", "Lake Tor", "Old Town", "Bridge 1", "Ditch"],
            "kind": [None, None, None, "district", "bridge", "river"],
            "waterway": ["river", "river", None, None, None, None],
            "natural": [None, None, "water", None, None, None],
        },
        geometry=[
            LineString([(LEFT, TOP), (LEFT, TOP - 500)]),  # two OSM ways, one river
            LineString([(LEFT, TOP - 500), (LEFT, TOP - 1000)]),
            box(LEFT + 500, TOP - 600, LEFT + 900, TOP - 400),
            box(LEFT - 900, TOP - 900, LEFT - 100, TOP - 100),  # a district polygon is a place
            Point(LEFT, TOP - 300),
            Point(LEFT + 50, TOP - 50),  # a river given as a point stays a named place
        ],
        crs=CRS,
    ).to_file(p, driver="GeoJSON", engine="pyogrio")
    places = {pl.name: pl for pl in cap.load_places(p, CRS)}
    assert set(places) == {"Old Town", "Bridge 1", "Ditch"}
    assert box(LEFT - 900, TOP - 900, LEFT - 100, TOP - 100).contains(
        Point(places["Old Town"].x, places["Old Town"].y)
    )
    rivers = {r.name: r for r in cap.load_rivers(p, CRS)}
    assert set(rivers) == {"Azra River", "Lake Tor"}
    assert rivers["Azra River"].lines.geom_type == "LineString"  # the two ways merged
    assert rivers["Azra River"].lines.length == pytest.approx(1000)
    assert rivers["Lake Tor"].water is not None and rivers["Lake Tor"].lines is None
    assert cap.bank([(LEFT + 200, TOP - 700)], list(rivers.values())) == (
        "on the Azra River's eastern bank"
    )


def test_river_bank_in_report_captions_escaped(run: Path, tmp_path: Path) -> None:
    places = tmp_path / "river.geojson"
    x = LEFT + 150  # the findings lie about 70-100 m west of this north-south river
    gpd.GeoDataFrame(
        {"name": ["Kelmar Airfield", XSS], "kind": ["airport", "river"]},
        geometry=[Point(LEFT + 60, TOP - 600), LineString([(x, TOP + 500), (x, TOP - 900)])],
        crs=CRS,
    ).to_file(places, driver="GeoJSON", engine="pyogrio")
    html = write_report(run, places=places).read_text()
    md = (run / "captions.md").read_text()
    assert f"on the {XSS}'s western bank" in md
    assert "north of Kelmar Airfield, on the &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert XSS not in html


def _tree(d: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()
    }  # fmt: skip


@pytest.mark.parametrize("exc", [KeyboardInterrupt, RuntimeError])
def test_interrupted_report_leaves_the_run_as_it_was(run: Path, monkeypatch, exc) -> None:
    """Interrupted after its first figure (as SIGTERM does, raised as an exception by the CLI):
    no empty or partial figures/, no captions.md, no report.html, no staging folder."""
    from fortmap.report import figures

    before = _tree(run)
    calls = []
    real = figures.fig_bytes

    def fig_bytes(fig, dpi):
        calls.append(dpi)
        if len(calls) > 1:
            raise exc("stop")
        return real(fig, dpi)

    monkeypatch.setattr(figures, "fig_bytes", fig_bytes)
    with pytest.raises(exc):
        write_report(run, geojson=True)
    assert _tree(run) == before
    assert sorted(p.name for p in run.iterdir() if p.is_dir()) == []


def test_rerun_replaces_the_report_whole(run: Path) -> None:
    write_report(run, geojson=True)
    (run / "figures" / "fig_99.png").write_bytes(b"stale")
    write_report(run)
    assert sorted(p.name for p in (run / "figures").iterdir()) == ["fig_01.png"]
    # geojson/ is kept when this run writes none; no staging or old folder is left
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []
    assert (run / "geojson").is_dir() and (run / "report.html").exists()


def test_sigterm_during_report_leaves_the_run_as_it_was(run: Path) -> None:
    """A real ``fortmap report`` process killed by SIGTERM while it writes: exit 143, the run
    folder unchanged (the review found an empty figures/ left behind)."""
    from conftest import terminate_when

    before = _tree(run)
    code, err = terminate_when(
        ["report", str(run)], lambda: bool(list(run.glob(".staging-*/figures"))), poll_s=0.01
    )
    assert code == 143, err
    assert _tree(run) == before
    assert [p.name for p in run.iterdir() if p.is_dir() or p.name.startswith(".")] == []


def test_findings_in_the_image_crs_are_drawn_on_the_analysis_grid(run: Path) -> None:
    # a geographic (or Web Mercator) image: findings.gpkg in its CRS, change.tif on UTM
    gpkg = run / "findings.gpkg"
    utm = {n: gpd.read_file(gpkg, layer=n) for n in ("razed_buildings", "barricades")}
    gpkg.unlink()
    write_layers(gpkg, {n: g.to_crs("EPSG:4326") for n, g in utm.items()})
    loaded = load_run(run)
    for n, g in utm.items():
        assert loaded.layers[n].crs == loaded.grid.crs
        assert np.allclose(loaded.layers[n].total_bounds, g.total_bounds, atol=0.01)
    write_report(run)
    assert len(list((run / "figures").glob("fig_*.png"))) == 1


def test_a_city_s_intact_footprints_stay_out_of_the_map(run: Path, monkeypatch) -> None:
    import fortmap.report.html as H

    d = {"date_before": "2024-03-11", "date_after": "2024-10-02"}
    x0, y0 = LEFT + 10, TOP - 10
    boxes = [box(x0 + 9 * i, y0 - 8, x0 + 9 * i + 6, y0 - 2) for i in range(12)]
    damage = ["destroyed", "damaged"] + ["intact"] * 10
    fp = findings_frame(
        "buildings", boxes, [0.9, 0.6] + [0.1] * 10, CRS, **d, extra={"damage": damage}
    )
    write_layers(run / "findings.gpkg", {"buildings": fp})
    monkeypatch.setattr(H, "MAP_INTACT_MAX", 5)
    html = write_report(run, geojson=True).read_text()
    (layer,) = [L for L in _map_data(html)["layers"] if L["name"] == "buildings"]
    assert len(layer["features"]) == 2
    assert "10 intact in findings.gpkg only" in layer["label"]
    # the table counts the whole layer; the GeoJSON export holds it whole
    assert "10 intact not drawn" in html
    assert pyogrio.read_info(run / "geojson" / "buildings.geojson")["features"] == 12
    # under the limit, every footprint is drawn
    monkeypatch.setattr(H, "MAP_INTACT_MAX", 12)
    html = write_report(run).read_text()
    (layer,) = [L for L in _map_data(html)["layers"] if L["name"] == "buildings"]
    assert len(layer["features"]) == 12 and "intact" not in layer["label"]
