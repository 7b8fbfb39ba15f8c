"""Tests of the simulated city: determinism, formats, truth consistency, physics of the render."""

from __future__ import annotations

import json

import geopandas as gpd
import networkx as nx
import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
from rasterio.features import rasterize
from skimage.registration import phase_cross_correlation

from fortmap.errors import InputError, OutputExistsError
from fortmap.simulate import Difficulty, resolve_difficulty, simulate_city
from fortmap.simulate.render import cast_shadows
from fortmap.simulate.truth_routes import junction_vertices
from fortmap.types import DATE_TAG, TRUTH_LAYERS

RASTERS = ("before.tif", "after.tif", "dsm_before.tif", "dsm_after.tif", "truth_change.tif")
GEOM_TYPES = {
    "razed_buildings": "Polygon",
    "cleared_areas": "Polygon",
    "barricades": "LineString",
    "berms": "LineString",
    "rubble": "Polygon",
}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A 400 m scene at 0.5 m (800 x 800 px), default difficulty."""
    return simulate_city(tmp_path_factory.mktemp("sim") / "a", seed=3, size_m=400)


@pytest.fixture(scope="module")
def medium(tmp_path_factory):
    """A 1000 m scene at 1 m: big enough for the count rules, still quick."""
    return simulate_city(tmp_path_factory.mktemp("sim") / "m", seed=5, size_m=1000, gsd=1.0)


def test_same_seed_gives_identical_outputs(small, tmp_path):
    again = simulate_city(tmp_path / "b", seed=3, size_m=400)
    vectors = ("buildings.geojson", "roads.geojson", "places.geojson", "scene.json")
    for name in RASTERS + ("dem.tif",) + vectors:
        assert (small.out_dir / name).read_bytes() == (again.out_dir / name).read_bytes(), name
    for layer in TRUTH_LAYERS:
        a = gpd.read_file(small.truth, layer=layer)
        b = gpd.read_file(again.truth, layer=layer)
        assert a.equals(b), layer


def test_other_seed_gives_other_city(small, tmp_path):
    other = simulate_city(tmp_path / "c", seed=4, size_m=400)
    with rasterio.open(small.before) as a, rasterio.open(other.before) as b:
        assert not np.array_equal(a.read(), b.read())


def test_rasters_have_grid_dtype_and_tags(small):
    grids = set()
    for name in RASTERS:
        with rasterio.open(small.out_dir / name) as ds:
            assert ds.crs.to_epsg() == 32637
            assert ds.res == (0.5, 0.5)
            assert (ds.width, ds.height) == (800, 800)
            grids.add(tuple(ds.transform))
            expect = {
                "before.tif": ("uint8", 3),
                "after.tif": ("uint8", 3),
                "truth_change.tif": ("uint8", 1),
            }
            assert (ds.dtypes[0], ds.count) == expect.get(name, ("float32", 1)), name
            assert ds.profile["tiled"] and ds.block_shapes[0] == (512, 512)
            assert ds.compression.name.lower() == "deflate"
    assert len(grids) == 1
    meta = json.loads(small.scene_json.read_text())
    for name, date in (("before.tif", "2024-03-11"), ("after.tif", "2024-10-02")):
        with rasterio.open(small.out_dir / name) as ds:
            tags = ds.tags()
        assert tags[DATE_TAG] == date
        assert tags["TIFFTAG_DATETIME"].startswith(date.replace("-", ":"))
        sun = meta["sun"][name.split(".")[0]]
        assert float(tags["SUN_AZIMUTH"]) == pytest.approx(sun["azimuth_deg"], abs=1e-3)
        assert 20 <= float(tags["SUN_ELEVATION"]) <= 70
    with rasterio.open(small.dsm_before) as ds:
        dsm = ds.read(1)
    assert 300 < dsm.min() and dsm.max() - dsm.min() < 60  # terrain + buildings up to 30 m


def test_vectors_have_schema(small):
    b = gpd.read_file(small.buildings)
    assert b.crs.to_epsg() == 32637 and set(b.geom_type) <= {"Polygon"}
    assert b["id"].is_unique and b["height"].between(3, 30).all()
    r = gpd.read_file(small.roads)
    assert set(r["class"]) == {"major", "minor"} and set(r.geom_type) == {"LineString"}
    assert r.loc[r["class"] == "major", "width_m"].between(12, 20).all()
    assert r.loc[r["class"] == "minor", "width_m"].between(5, 8).all()
    p = gpd.read_file(small.places)
    assert {"river", "airport", "district"} <= set(p["kind"])


def test_truth_layers_types_and_counts(small, medium):
    for scene in (small, medium):
        layers = sorted(pyogrio.list_layers(scene.truth)[:, 0])
        assert layers == sorted(TRUTH_LAYERS + ("routes", "entry_points"))
        for layer, gtype in GEOM_TYPES.items():
            assert pyogrio.read_info(scene.truth, layer=layer)["geometry_type"] == gtype
    t = {layer: gpd.read_file(medium.truth, layer=layer) for layer in TRUTH_LAYERS}
    n_b = len(gpd.read_file(medium.buildings))
    assert 0.05 <= len(t["razed_buildings"]) / n_b <= 0.11
    assert set(t["razed_buildings"]["id"]) <= set(gpd.read_file(medium.buildings)["id"])
    assert 1 <= len(t["cleared_areas"]) <= 3
    assert 4 <= len(t["barricades"]) <= 8
    assert (t["barricades"]["n_blocks"] >= 2).all()
    assert 1 <= len(t["berms"]) <= 4 and t["berms"]["height_m"].between(2, 4).all()
    assert t["berms"]["length_m"].between(35, 420).all()
    assert 3 <= len(t["rubble"]) <= 6 and t["rubble"]["area_m2"].between(20, 320).all()
    assert (t["rubble"]["passable_width_m"] == 0).any() or (
        t["rubble"]["passable_width_m"] > 0
    ).all()


def test_empty_layer_is_written_with_its_geometry_type(tmp_path):
    # At 200 m there is little room: whatever comes out empty must still be a typed layer.
    scene = simulate_city(tmp_path / "tiny", seed=11, size_m=200)
    for layer, gtype in GEOM_TYPES.items():
        assert pyogrio.read_info(scene.truth, layer=layer)["geometry_type"] == gtype


def test_truth_change_covers_truth_geometries(medium):
    with rasterio.open(medium.truth_change) as ds:
        mask, transform, shape = ds.read(1), ds.transform, ds.shape
    assert set(np.unique(mask)) <= {0, 1}
    for layer in TRUTH_LAYERS:
        g = gpd.read_file(medium.truth, layer=layer).geometry
        if g.empty:
            continue
        if layer in ("barricades", "berms"):
            g = g.buffer(0.5, cap_style="flat")
        burnt = rasterize([(x, 1) for x in g], out_shape=shape, transform=transform).astype(bool)
        assert mask[burnt].mean() > 0.95, layer
    assert 0.001 < mask.mean() < 0.2


def test_razed_buildings_lose_their_shadows(medium):
    razed = gpd.read_file(medium.truth, layer="razed_buildings")
    bld = gpd.read_file(medium.buildings)
    razed = razed[razed["height"] >= 6]
    ring = razed.buffer(12).difference(razed.geometry.union_all())
    ring = ring.difference(bld[~bld["id"].isin(razed["id"])].buffer(1).union_all())
    with (
        rasterio.open(medium.before) as b,
        rasterio.open(medium.after) as a,
    ):
        shape, transform = b.shape, b.transform
        grey_b, grey_a = b.read().mean(0), a.read().mean(0)
    near = rasterize(
        [(x, 1) for x in ring if not x.is_empty], out_shape=shape, transform=transform
    ).astype(bool)
    # "Dark" is in-scene: each image's own 10th percentile, so haze and gain cancel out.
    dark_b = (grey_b[near] < np.percentile(grey_b, 10)).mean()
    dark_a = (grey_a[near] < np.percentile(grey_a, 10)).mean()
    assert dark_b > 0.15 and dark_a < 0.5 * dark_b


def test_cast_shadow_length_is_height_over_tan_elevation():
    dsm = np.zeros((200, 200), np.float32)
    dsm[100:120, 90:110] = 10.0  # a 10 m box, 10 m x 10 m at 0.5 m
    sh = cast_shadows(dsm, 0.5, azimuth_deg=180.0, elevation_deg=45.0) > 0.5
    # Sun in the south: the shadow runs north of the box for 10 m = 20 px (rows 80..99).
    col = sh[:, 100]
    assert col[81:100].all() and not col[:79].any() and not col[121:].any()
    sh30 = cast_shadows(dsm, 0.5, azimuth_deg=90.0, elevation_deg=30.0) > 0.5
    length = sh30[110, :90].sum()  # sun in the east: shadow to the west, 10/tan(30) = 17.3 m
    assert abs(length * 0.5 - 10 / np.tan(np.radians(30))) <= 1.0


def test_recorded_misregistration_matches_phase_correlation(small):
    meta = json.loads(small.scene_json.read_text())
    with rasterio.open(small.before) as b, rasterio.open(small.after) as a:
        gb, ga = b.read().mean(0), a.read().mean(0)
    # Phase correlation proper (whitened spectrum): plain cross-correlation is pulled by the
    # shadows, which move with the sun between the dates.
    shift, _, _ = phase_cross_correlation(gb, ga, upsample_factor=20, normalization="phase")
    dx, dy = -shift[1], -shift[0]
    mis = meta["misregistration"]
    assert np.hypot(mis["dx_px"], mis["dy_px"]) > 1.0
    assert abs(dx - mis["dx_px"]) < 0.5 and abs(dy - mis["dy_px"]) < 0.5


def test_road_network_connects_edge_to_core(medium):
    roads = gpd.read_file(medium.roads)
    noded = shapely.node(shapely.union_all(roads.geometry.values))
    g = nx.Graph()
    for line in shapely.get_parts(noded):
        xy = np.round(shapely.get_coordinates(line), 3)
        g.add_edges_from((tuple(p), tuple(q)) for p, q in zip(xy[:-1], xy[1:], strict=True))
    core = gpd.read_file(medium.places).query("name == 'Old City'").geometry.iloc[0]
    start = min(g.nodes, key=lambda n: core.distance(shapely.Point(n)))
    left, bottom, right, top = roads.total_bounds
    reach = nx.node_connected_component(g, start)
    on_edge = [n for n in reach if min(n[0] - left, right - n[0], n[1] - bottom, top - n[1]) < 1.0]
    assert len(on_edge) >= 3
    assert len(reach) > 0.8 * g.number_of_nodes()


def test_existing_dir_is_refused_without_force(small):
    with pytest.raises(OutputExistsError):
        simulate_city(small.out_dir, seed=3, size_m=400)
    before = small.before.read_bytes()
    simulate_city(small.out_dir, seed=3, size_m=400, force=True)
    assert small.before.read_bytes() == before
    assert not [p for p in small.out_dir.parent.iterdir() if p.name.startswith(".")]


def test_difficulty_presets_and_scale():
    easy, default, hard = (resolve_difficulty(k) for k in ("easy", "default", "hard"))
    assert easy.misreg_px < default.misreg_px < hard.misreg_px
    assert 2.0 <= default.misreg_px <= 3.0
    assert resolve_difficulty(0.45) == default == resolve_difficulty("0.45")
    assert resolve_difficulty(default) is default
    assert isinstance(Difficulty.from_level(1.0), Difficulty)
    for bad in ("impossible", 1.5, -0.1):
        with pytest.raises(InputError):
            resolve_difficulty(bad)


def test_bad_size_is_refused(tmp_path):
    with pytest.raises(InputError):
        simulate_city(tmp_path / "x", size_m=50)


def test_core_place_has_a_radius_inside_the_ring(medium):
    places = gpd.read_file(medium.places)
    core = places[places["name"] == "Old City"].iloc[0]
    assert core["radius_m"] == pytest.approx(0.15 * 1000)
    ring = gpd.read_file(medium.roads).query("name == 'Ring Boulevard'")
    assert ring.distance(core.geometry).min() > core["radius_m"]


def test_crossing_roads_share_a_vertex():
    a = shapely.LineString([(0, 0), (10, 0)])
    b = shapely.LineString([(5, -5), (5, 5)])
    c = shapely.LineString([(20, 0), (30, 0)])  # touches nothing
    na, nb, nc = junction_vertices([a, b, c])
    assert (5.0, 0.0) in [tuple(xy) for xy in shapely.get_coordinates(na)]
    assert (5.0, 0.0) in [tuple(xy) for xy in shapely.get_coordinates(nb)]
    assert na.equals(a) and nb.equals(b) and nc is c or nc.equals(c)


def test_true_route_status_follows_the_true_obstacles(medium):
    ent = gpd.read_file(medium.truth, layer="entry_points")
    routes = gpd.read_file(medium.truth, layer="routes")
    meta = json.loads(medium.scene_json.read_text())["routes"]
    assert len(ent) == meta["entries_before"] == medium.n_entries > 0
    assert set(ent["status"]) <= {"open", "cut"}
    assert (ent["status"] == "cut").sum() == meta["entries_cut"] == medium.n_entries_cut
    # every cut entry names true obstacles, and each of them lies on a cut road piece
    layer = {"barricade": "barricades", "berm": "berms", "rubble": "rubble"}
    n_feat = {k: len(gpd.read_file(medium.truth, layer=v)) for k, v in layer.items()}
    for labels in ent.loc[ent["status"] == "cut", "cut_by"]:
        assert labels
        for lab in labels.split(";"):
            kind, idx = lab.split(":")
            assert int(idx) < n_feat[kind]
            assert routes["cut_by"].str.contains(lab, regex=False).any()
    # entry points lie on the core's boundary
    places = gpd.read_file(medium.places).query("name == 'Old City'").iloc[0]
    d = ent.distance(places.geometry)
    assert (abs(d - places["radius_m"]) < 1.0).all()
    # barricade rows always cross the centreline, so each closes the piece it stands on
    bars = gpd.read_file(medium.truth, layer="barricades")
    cut_routes = routes[routes["status"] == "cut"]
    for geom in bars.geometry:
        assert cut_routes.intersects(geom).any()


def test_public_dem_averages_30_m_cells_and_adds_noise():
    from affine import Affine

    from fortmap.simulate.scene import DEM_CELL_M, DEM_NOISE_M, public_dem

    # a tilted plane 610 px (305 m) square at 0.5 m: 11 cells of 30 m, the last one partial
    n, gsd = 610, 0.5
    tr = Affine(gsd, 0.0, 1000.0, 0.0, -gsd, 5000.0)
    rows, cols = np.mgrid[0:n, 0:n].astype(np.float32)
    ground = 300.0 + 0.01 * cols * gsd - 0.02 * rows * gsd
    dem, dtr = public_dem(ground, tr, np.random.default_rng(0))
    assert dem.shape == (11, 11) and dem.dtype == np.float32
    assert dtr == Affine(DEM_CELL_M, 0.0, 1000.0, 0.0, -DEM_CELL_M, 5000.0)
    # a cell's posting is the mean of the ground it covers: at its centre on a plane
    centre = (np.arange(11) + 0.5) * DEM_CELL_M
    centre[-1] = (10 * 60 + n) / 2 * gsd  # the partial cell: mean over the part in the scene
    plane = 300.0 + 0.01 * centre[None, :] - 0.02 * centre[:, None]
    err = dem - plane
    # 121 draws of N(0, 1.2 m): the sample sd lies within 0.9..1.5 m all but never
    assert abs(err.mean()) < 0.4 and 0.75 * DEM_NOISE_M < err.std() < 1.25 * DEM_NOISE_M
    again, _ = public_dem(ground, tr, np.random.default_rng(0))
    assert np.array_equal(dem, again)


def test_dem_is_written_beside_the_images(small):
    assert small.dem == small.out_dir / "dem.tif"
    with rasterio.open(small.dem) as ds:
        dem = ds.read(1)
        assert ds.crs.to_epsg() == 32637 and ds.res == (30.0, 30.0) and ds.dtypes[0] == "float32"
        assert ds.tags()["UNITS"] == "metre"
        with rasterio.open(small.before) as img:
            b, s = ds.bounds, img.bounds
            # covers the scene whole, by less than a cell more
            assert b.left == s.left and b.top == s.top
            assert s.right <= b.right < s.right + 30 and s.bottom - 30 < b.bottom <= s.bottom
    assert np.isfinite(dem).all()
    # bare earth: near the lowest DSM heights of its cell (the ground between buildings and
    # trees), never at roof or crown height; 5 m is 4 sigma of the noise
    with rasterio.open(small.dsm_before) as ds:
        dsm = ds.read(1)
    low = np.percentile(dsm[:780, :780].reshape(13, 60, 13, 60).swapaxes(1, 2), 5, axis=(2, 3))
    diff = dem[:13, :13] - low
    assert np.median(np.abs(diff)) < 1.5 and np.abs(diff).max() < 5.0
