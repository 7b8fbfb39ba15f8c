"""Reading roads: GeoJSON/GPKG in any CRS and OpenStreetMap extracts (real ones when present)."""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from shapely import LineString, box

from conftest import shared
from fortmap.analyze.road_graph import build_road_graph
from fortmap.errors import InputError
from fortmap.io.osm import read_osm_highways
from fortmap.io.roads import parse_width_m, read_roads, road_class

UTM35 = "EPSG:32635"  # Helsinki

OSM_XML = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="hand">
  <node id="1" lat="60.1700" lon="24.9400"/>
  <node id="2" lat="60.1700" lon="24.9450"/>
  <node id="3" lat="60.1720" lon="24.9450"/>
  <node id="4" lat="60.1720" lon="24.9400"/>
  <way id="10">{tags10}<nd ref="1"/><nd ref="2"/></way>
  <way id="11"><tag k="highway" v="footway"/><nd ref="2"/><nd ref="3"/></way>
  <way id="12"><tag k="highway" v="residential"/><tag k="lanes" v="2"/><nd ref="3"/><nd ref="4"/><nd ref="99"/></way>
  <way id="13"><tag k="building" v="yes"/><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="1"/></way>
</osm>
"""


def write_osm(tmp_path: Path, tags10: str) -> Path:
    f = tmp_path / "small.osm"
    f.write_text(OSM_XML.format(tags10=tags10))
    return f


def test_road_class_and_width_parsing() -> None:
    assert road_class("primary_link") == "major"
    assert road_class("track") == "minor"
    assert road_class("footway") is None and road_class("steps") is None
    assert parse_width_m("12 ft") == pytest.approx(3.6576)
    assert parse_width_m("10'6\"") == pytest.approx(3.2004)
    assert math.isnan(parse_width_m("wide")) and math.isnan(parse_width_m(None))


def test_small_osm_file_classes_widths_and_missing_nodes(tmp_path: Path) -> None:
    f = write_osm(
        tmp_path,
        '<tag k="highway" v="primary"/><tag k="name" v="Mannerheimintie"/><tag k="width" v="9.5"/>',
    )
    r = read_roads(f, UTM35)
    assert list(r.highway) == ["primary", "residential"]  # footway and building dropped
    assert list(r.road_class) == ["major", "minor"]
    assert list(r.width_m) == [9.5, 6.0]  # tagged width; 2 lanes x 3 m
    assert r.name[0] == "Mannerheimintie"
    assert r.crs.to_epsg() == 32635
    # way 12 refers to node 99, absent from the file: kept with its two located nodes
    assert len(r.geometry[1].coords) == 2
    # ~278 m east-west at 60.17 N
    assert r.geometry[0].length == pytest.approx(278, abs=3)


def test_osm_file_without_roads(tmp_path: Path) -> None:
    f = write_osm(tmp_path, '<tag k="barrier" v="wall"/>')
    f.write_text(f.read_text().replace('k="highway" v="residential"', 'k="railway" v="rail"'))
    f.write_text(f.read_text().replace('k="highway" v="footway"', 'k="railway" v="rail"'))
    with pytest.raises(InputError, match=r"small.osm: OpenStreetMap file holds no highway"):
        read_roads(f, UTM35)
    g = write_osm(tmp_path, '<tag k="highway" v="cycleway"/>')
    g.write_text(g.read_text().replace('v="residential"', 'v="steps"'))
    with pytest.raises(InputError, match="small.osm: no roads of the classes"):
        read_roads(g, UTM35)


def test_unreadable_and_missing_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.osm.pbf"
    bad.write_bytes(b"not a pbf at all")
    with pytest.raises(InputError, match="bad.osm.pbf: cannot read OpenStreetMap"):
        read_roads(bad, UTM35)
    with pytest.raises(InputError, match="nope.geojson: roads not found"):
        read_roads(tmp_path / "nope.geojson", UTM35)


def test_geojson_roads_any_crs_and_bounds(tmp_path: Path) -> None:
    utm = "EPSG:32637"
    gdf = gpd.GeoDataFrame(
        {"highway": ["secondary", "footway", "service"], "name": ["A", "B", None]},
        geometry=[
            LineString([(500000, 4000000), (500500, 4000000)]),
            LineString([(500000, 4000100), (500500, 4000100)]),
            LineString([(509000, 4009000), (509500, 4009000)]),
        ],
        crs=utm,
    ).to_crs("EPSG:4326")
    f = tmp_path / "roads.geojson"
    gdf.to_file(f)
    r = read_roads(f, utm)
    assert list(r.road_class) == ["major", "minor"] and list(r.name) == ["A", ""]
    assert r.geometry[0].length == pytest.approx(500, abs=0.01)
    assert list(r.width_m) == [8.0, 4.0]
    inside = read_roads(f, utm, bounds=(499900, 3999900, 500600, 4000200))
    assert list(inside.name) == ["A"]
    with pytest.raises(InputError, match="roads.geojson: no road overlaps"):
        read_roads(f, utm, bounds=(0, 0, 100, 100))
    with pytest.raises(InputError, match="projected"):
        read_roads(f, "EPSG:4326")


def test_untagged_lines_and_explicit_classes(tmp_path: Path) -> None:
    f = tmp_path / "plain.gpkg"
    gpd.GeoDataFrame(
        {"road_class": ["major", "minor"], "width_m": [12.0, np.nan]},
        geometry=[LineString([(0, 0), (100, 0)]), LineString([(0, 10), (100, 10)])],
        crs="EPSG:32637",
    ).to_file(f)
    r = read_roads(f, "EPSG:32637")
    assert list(r.road_class) == ["major", "minor"] and list(r.width_m) == [12.0, 5.0]
    polys = tmp_path / "polys.geojson"
    gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1)], crs="EPSG:4326").to_file(polys)
    with pytest.raises(InputError, match="polys.geojson: roads must be lines"):
        read_roads(polys, "EPSG:32637")


# --- real OpenStreetMap extracts ----------------------------------------------------------------


@pytest.mark.realdata
def test_helsinki_pbf() -> None:
    f = shared("osm", "helsinki.osm.pbf")
    all_ways = read_osm_highways(f)
    assert len(all_ways) == 2504  # the README's highway line count (GDAL's lines layer)
    r = read_roads(f, UTM35)
    assert len(r) == int(all_ways.highway.map(road_class).notna().sum())
    assert {"major", "minor"} == set(r.road_class)
    assert not set(r.highway) & {"footway", "steps", "cycleway", "platform"}
    assert (r.width_m >= 2).all() and (r.width_m <= 60).all()
    # Helsinki's centre is ~1 km across in this extract
    w, s, e, n = r.total_bounds
    assert 500 < e - w < 3000 and 500 < n - s < 3000
    assert (r.name != "").mean() > 0.5
    g = build_road_graph(r, box(w + 100, s + 100, e - 100, n - 100))
    assert g.outside.sum() > 10 and len(g.edges) > len(r) * 0.5


@pytest.mark.realdata
def test_aguascalientes_pbf_and_bounds() -> None:
    f = shared("osm", "aguascalientes.osm.pbf")
    assert len(read_osm_highways(f)) == 674
    r = read_roads(f, "EPSG:32613")
    assert 600 < len(r) <= 674
    w, s, e, n = r.total_bounds
    sub = read_roads(f, "EPSG:32613", bounds=(w, s, (w + e) / 2, (s + n) / 2))
    assert 0 < len(sub) < len(r)


@pytest.mark.realdata
def test_west_oakland_bz2() -> None:
    f = shared("osm", "west_oakland.osm.bz2")
    r = read_roads(f, "EPSG:32610")
    assert len(r) > 10
    assert "secondary" in set(r.highway)
    assert r.crs.to_epsg() == 32610
