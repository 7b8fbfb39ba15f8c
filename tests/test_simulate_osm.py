"""The simulated city on real OpenStreetMap streets and buildings (``simulate --osm``)."""

from __future__ import annotations

import json
import warnings

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely

from conftest import shared
from fortmap.errors import InputError
from fortmap.simulate import simulate_city
from fortmap.simulate.osm_city import read_osm_buildings, utm_crs


@pytest.fixture(scope="module")
def helsinki(tmp_path_factory):
    """A 500 m Helsinki scene at 1 m (500 x 500 px)."""
    pbf = shared("osm", "helsinki.osm.pbf")
    return simulate_city(
        tmp_path_factory.mktemp("osm") / "hel", seed=1, size_m=500, gsd=1.0, osm=pbf
    )


def test_scene_lies_in_the_extracts_utm_zone_on_its_roads(helsinki):
    roads = gpd.read_file(helsinki.roads)
    assert roads.crs.to_epsg() == 32635  # Helsinki, 25 E: UTM zone 35N
    assert {"class", "name", "highway", "width_m"} <= set(roads.columns)
    assert set(roads["class"]) == {"major", "minor"}
    assert (roads["name"] != "").sum() > 10  # real street names, not generated ones
    assert not roads["name"].str.startswith("Avenue ").any()
    meta = json.loads(helsinki.scene_json.read_text())
    left, bottom = meta["origin_en"]
    scene = shapely.box(left, bottom, left + 500, bottom + 500)
    assert roads.geometry.within(scene.buffer(1e-6)).all()
    lon, lat = meta["osm"]["centre_lonlat"]
    assert 24.9 < lon < 25.0 and 60.1 < lat < 60.2


def test_real_buildings_are_kept_and_blocks_filled(helsinki):
    meta = json.loads(helsinki.scene_json.read_text())
    n_osm = meta["osm"]["osm_buildings"]
    b = gpd.read_file(helsinki.buildings)
    assert n_osm > 20 and len(b) >= n_osm
    assert b["height"].between(3, 30).all()
    # the generated fill keeps clear of the mapped footprints
    osm, gen = b.iloc[:n_osm], b.iloc[n_osm:]
    if len(gen):
        assert not gen.intersects(osm.union_all()).any()


def test_core_place_and_true_routes(helsinki):
    p = gpd.read_file(helsinki.places)
    core = p[p["name"] == "Old City"]
    assert len(core) == 1 and core["radius_m"].iloc[0] == pytest.approx(75.0)
    layers = set(pyogrio.list_layers(helsinki.truth)[:, 0])
    assert {"routes", "entry_points", "barricades", "berms", "rubble"} <= layers
    ent = gpd.read_file(helsinki.truth, layer="entry_points")
    assert len(ent) == helsinki.n_entries > 0
    assert set(ent["status"]) <= {"open", "cut"}
    d = ent.distance(core.geometry.iloc[0])
    assert (abs(d - 75.0) < 1.0).all()


def test_osm_scene_is_deterministic(helsinki, tmp_path):
    again = simulate_city(
        tmp_path / "b", seed=1, size_m=500, gsd=1.0, osm=shared("osm", "helsinki.osm.pbf")
    )
    for name in ("before.tif", "after.tif", "truth_change.tif", "roads.geojson", "scene.json"):
        assert (helsinki.out_dir / name).read_bytes() == (again.out_dir / name).read_bytes()
    a = gpd.read_file(helsinki.truth, layer="entry_points")
    b = gpd.read_file(again.truth, layer="entry_points")
    assert a.equals(b)


def test_size_is_cut_to_the_extract(tmp_path):
    pbf = shared("osm", "aguascalientes.osm.pbf")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        scene = simulate_city(tmp_path / "a", seed=0, size_m=9000, gsd=4.0, osm=pbf)
    assert any("scene cut" in str(x.message) for x in w)
    assert scene.width * 4.0 < 9000
    assert len(read_osm_buildings(pbf)) > 0


def test_bad_osm_input_is_refused(tmp_path):
    with pytest.raises(InputError):
        simulate_city(tmp_path / "x", size_m=400, osm=tmp_path / "missing.osm.pbf")
    notosm = tmp_path / "roads.geojson"
    notosm.write_text("{}")
    with pytest.raises(InputError, match="OpenStreetMap"):
        simulate_city(tmp_path / "y", size_m=400, osm=notosm)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_utm_zone():
    assert utm_crs(24.94, 60.17).to_epsg() == 32635
    assert utm_crs(-102.27, 21.87).to_epsg() == 32613
    assert utm_crs(151.2, -33.9).to_epsg() == 32756
    assert np.isfinite(utm_crs(179.99, 0.0).to_epsg())
