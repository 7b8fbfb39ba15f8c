"""Visibility before and after: hand-made surfaces with known answers, surfaces, edges, errors."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import LineString, Point, Polygon, box

from fortmap.analyze.surface import build_surface, destroyed_ids, edge_from, fortification_ring
from fortmap.analyze.visibility import SECTORS, STATES, visibility_change, write_visibility
from fortmap.errors import InputError
from fortmap.types import Grid

UTM = CRS.from_epsg(32637)
X0, Y0 = 500000.0, 4000000.0


def _tr(cell: float, n: int) -> Affine:
    return Affine(cell, 0, X0, 0, -cell, Y0 + n * cell)


def _walled(n: int = 100) -> tuple[np.ndarray, np.ndarray, Affine]:
    """1 m flat ground with a 10 m wall across it at x = 30..32 m (before) and none after."""
    before = np.zeros((n, n), np.float32)
    before[:, 30:32] = 10.0
    return before, np.zeros_like(before), _tr(1.0, n)


def _edge_line(x: float = 10.0, n: int = 100) -> LineString:
    return LineString([(X0 + x, Y0 + 0.5), (X0 + x, Y0 + n - 0.5)])


def test_razed_wall_opens_ground_behind_it():
    before, after, tr = _walled()
    r = visibility_change(
        before, after, tr, UTM, _edge_line(), spacing_m=10, max_distance=500, resolution_m=1.0
    )
    s = r.summary
    # eye 2 m, targets 1.5 m, wall 10 m: nothing behind the wall (x >= 32 m) is seen before
    assert s["field_km2"] == pytest.approx(0.01)
    assert s["seen_before_km2"] == pytest.approx(0.0032, abs=0.0001)
    assert s["seen_after_km2"] == pytest.approx(0.01)
    assert s["gain_km2"] == pytest.approx(0.0068, abs=0.0001)
    assert s["newly_seen_km2"] == pytest.approx(s["gain_km2"])
    assert s["no_longer_seen_km2"] == 0
    assert (r.before[:, 33:] == 0).all() and (r.after > 0).all()
    lay = r.layer.set_index("state")
    assert list(r.layer["state"]) == list(STATES)
    assert (r.layer["kind"] == "visibility").all()
    assert lay.loc["newly_seen", "area_m2"] == pytest.approx(6800.0, abs=100)
    assert shapely.is_valid(r.layer.geometry.to_numpy()).all()
    # a wall built (the reverse) hides the same ground: the gain is negative
    back = visibility_change(
        after, before, tr, UTM, _edge_line(), spacing_m=10, max_distance=500, resolution_m=1.0
    )
    assert back.summary["gain_km2"] == pytest.approx(-s["gain_km2"])
    assert back.summary["no_longer_seen_km2"] == pytest.approx(s["newly_seen_km2"])


def test_no_change_means_no_gain():
    rng = np.random.default_rng(3)
    z = rng.uniform(0, 8, (60, 60)).astype(np.float32)
    edge = box(X0 + 100, Y0 + 100, X0 + 140, Y0 + 140)
    r = visibility_change(z, z.copy(), _tr(4.0, 60), UTM, edge, max_distance=150, resolution_m=4)
    s = r.summary
    assert s["gain_km2"] == 0 and s["newly_seen_km2"] == 0 and s["no_longer_seen_km2"] == 0
    assert 0 < s["seen_before_km2"] < s["field_km2"]
    assert all(x["farthest_before_m"] == x["farthest_after_m"] for x in s["sectors"])
    assert r.layer.set_index("state").loc["newly_seen", "area_m2"] == 0
    # the polygon's inside is not part of the field
    assert not r.field[(r.grid.height // 2), (r.grid.width // 2)]


def test_sectors_see_far_where_the_wall_went():
    n, cell = 200, 5.0
    tr = _tr(cell, n)
    cx, cy = X0 + 500, Y0 + 500
    edge = box(cx - 20, cy - 20, cx + 20, cy + 20)
    after = np.zeros((n, n), np.float32)
    before = after.copy()
    before[80:120, 108] = 20.0  # a wall 20 m east of the square, 200 m long, in sector E
    r = visibility_change(
        before, after, tr, UTM, edge, spacing_m=5, max_distance=300, resolution_m=cell
    )
    sec = {x["sector"]: x for x in r.summary["sectors"]}
    assert list(sec) == list(SECTORS) and len(SECTORS) == 16
    assert sec["E"]["azimuth_deg"] == 90.0
    # flat ground: every sector sees to the maximum distance after (within a cell)
    for x in sec.values():
        assert x["farthest_after_m"] == pytest.approx(300, abs=cell)
    assert sec["E"]["farthest_before_m"] < 120
    for name in ("N", "S", "W", "NW", "SW"):
        assert sec[name]["farthest_before_m"] == sec[name]["farthest_after_m"]
    bands = r.summary["open_ground_km2"]
    assert bands["500m"]["after"] == pytest.approx(r.summary["seen_after_km2"])
    assert bands["500m"]["after"] >= bands["500m"]["before"]


def test_edge_without_line_or_polygon_is_refused():
    z = np.zeros((20, 20), np.float32)
    with pytest.raises(InputError, match="no line or polygon"):
        visibility_change(z, z, _tr(1, 20), UTM, Point(X0 + 5, Y0 + 5))
    with pytest.raises(InputError, match="empty"):
        visibility_change(z, z, _tr(1, 20), UTM, Polygon())


def test_edge_outside_and_geographic_crs_are_refused():
    z = np.zeros((20, 20), np.float32)
    far = LineString([(0, 0), (10, 0)])
    with pytest.raises(InputError, match="outside"):
        visibility_change(z, z, _tr(1, 20), UTM, far, max_distance=50)
    with pytest.raises(InputError, match="geographic"):
        visibility_change(z, z, _tr(1, 20), "EPSG:4326", _edge_line(5, 20))


def test_after_on_another_grid_is_resampled_with_a_warning():
    before, _, tr = _walled()
    after = np.zeros((50, 50), np.float32)  # the same flat ground on 2 m cells
    with pytest.warns(UserWarning, match="grid differs"):
        r = visibility_change(
            before,
            after,
            tr,
            UTM,
            _edge_line(),
            after_transform=_tr(2.0, 50),
            spacing_m=10,
            max_distance=500,
            resolution_m=1.0,
        )
    assert r.summary["gain_km2"] == pytest.approx(0.0068, abs=0.0001)


def test_nodata_cells_count_on_neither_date():
    before, after, tr = _walled()
    before[:, 60:70] = -9999
    r = visibility_change(
        before, after, tr, UTM, _edge_line(), nodata=-9999, spacing_m=10, max_distance=500
    )
    assert not r.valid[:, 60:70].any() and not r.field[:, 60:70].any()
    assert r.summary["field_km2"] == pytest.approx(0.009)


def test_write_visibility(tmp_path):
    before, after, tr = _walled()
    r = visibility_change(before, after, tr, UTM, _edge_line(), spacing_m=10, max_distance=500)
    paths = write_visibility(r, tmp_path)
    assert [p.name for p in paths] == ["visibility_before.tif", "visibility_after.tif"]
    with rasterio.open(paths[0]) as ds:
        assert ds.dtypes[0] == "uint8" and ds.nodata == 255 and ds.crs == UTM
        np.testing.assert_array_equal(ds.read(1), np.minimum(r.before, 254))


def _grid(n: int = 50, cell: float = 1.0) -> Grid:
    return Grid(UTM, _tr(cell, n), n, n)


def test_build_surface_heights_storeys_and_razed():
    g = _grid()
    fp = gpd.GeoDataFrame(
        {
            "id": [1, 2, 3, 4],
            "height": [10.0, None, None, 4.0],
            "building:levels": [None, 4, None, None],
        },
        geometry=[
            box(X0 + 5, Y0 + 5, X0 + 15, Y0 + 15),
            box(X0 + 20, Y0 + 20, X0 + 30, Y0 + 30),
            box(X0 + 35, Y0 + 35, X0 + 45, Y0 + 45),
            box(X0 + 10, Y0 + 10, X0 + 20, Y0 + 20),  # overlaps building 1, lower
        ],
        crs=UTM,
    )
    dem = np.full((50, 50), 100.0, np.float32)
    z = build_surface(g, fp, dem=dem)
    at = lambda x, y: z[int(50 - y), int(x)]  # noqa: E731
    assert at(7.5, 7.5) == pytest.approx(110.0)
    assert at(12.5, 12.5) == pytest.approx(110.0)  # the taller wins where they overlap
    assert at(17.5, 17.5) == pytest.approx(104.0)
    assert at(25.5, 25.5) == pytest.approx(112.0)  # 4 storeys x 3 m
    assert at(40.5, 40.5) == pytest.approx(106.0)  # default 2 storeys x 3 m
    assert at(2.5, 2.5) == pytest.approx(100.0)
    razed = build_surface(g, fp.to_crs("EPSG:4326"), dem=dem, razed_ids={1})
    assert razed[int(50 - 7.5), 7] == pytest.approx(100.0, abs=1e-3)
    assert razed[int(50 - 17.5), 17] == pytest.approx(104.0)
    with pytest.raises(InputError, match="shape"):
        build_surface(g, fp, dem=np.zeros((3, 3)))


def test_destroyed_ids():
    lay = gpd.GeoDataFrame({"id": [1, 2, 3], "damage": ["intact", "destroyed", "damaged"]})
    assert destroyed_ids(lay) == {2}
    with pytest.raises(InputError, match="damage"):
        destroyed_ids(lay.drop(columns="damage"))


def test_edge_from_file_core_and_ring(tmp_path):
    line = gpd.GeoDataFrame(geometry=[_edge_line()], crs=UTM).to_crs("EPSG:4326")
    p = tmp_path / "edge.geojson"
    line.to_file(p)
    edge, src = edge_from(UTM, edge_file=p)
    assert src == "edge_file" and edge.length == pytest.approx(99.0, abs=0.01)
    pts = tmp_path / "points.geojson"
    gpd.GeoDataFrame(geometry=[Point(X0, Y0)], crs=UTM).to_file(pts)
    with pytest.raises(InputError, match="no line or polygon"):
        edge_from(UTM, edge_file=pts)

    core = Point(X0 + 500, Y0 + 500).buffer(200)
    assert edge_from(UTM, core=core)[1] == "core"

    def cut(x: float, y: float) -> LineString:
        return LineString([(X0 + x - 5, Y0 + y), (X0 + x + 5, Y0 + y)])

    around = gpd.GeoDataFrame(
        geometry=[cut(500, 750), cut(750, 500), cut(500, 250), cut(250, 500)], crs=UTM
    )
    edge, src = edge_from(UTM, core=core, fortifications=[around, None])
    assert src == "fortification_ring" and edge.contains(core.centroid)
    stray = gpd.GeoDataFrame(geometry=[cut(1900, 1900)], crs=UTM)  # far beyond the core
    edge2, _ = edge_from(UTM, core=core, fortifications=[around, stray])
    assert edge2.equals(edge)
    one_side = gpd.GeoDataFrame(geometry=[cut(700, 400), cut(700, 500), cut(700, 600)], crs=UTM)
    assert fortification_ring([one_side], (X0 + 500, Y0 + 500)) is None
    assert edge_from(UTM, core=core, fortifications=[one_side])[1] == "core"
    with pytest.raises(InputError, match="no edge"):
        edge_from(UTM)


# --- surfaces from footprints, canopy and berms -------------------------------------------


def _city_truth_trees(city, factor: int) -> tuple[np.ndarray, object]:
    """Coarse cells holding a tree in the simulator's before DSM, and the image grid.

    Before the changes, the only things standing more than 2 m above the ground outside the
    footprints are trees (no berms, no debris yet), so the DSM gives the true canopy.
    """
    from scipy import ndimage as ndi

    from fortmap.analyze.viewshed import read_dem

    dsm, grid = read_dem(city / "dsm_before.tif")
    ground = ndi.minimum_filter(dsm, int(40 / grid.gsd))
    fp = gpd.read_file(city / "buildings.geojson").to_crs(grid.crs)
    roofs = rasterio.features.rasterize(
        ((g.buffer(1.0), 1) for g in fp.geometry), out_shape=dsm.shape, transform=grid.transform
    ).astype(bool)
    tall = (dsm - ground > 2.0) & ~roofs
    n, m = dsm.shape[0] // factor, dsm.shape[1] // factor
    cells = tall[: n * factor, : m * factor].reshape(n, factor, m, factor).any(axis=(1, 3))
    return cells, grid


def test_canopy_found_in_simulated_images(small_city):
    import rasterio.features  # noqa: F401 - used by _city_truth_trees

    from fortmap.detect.canopy import canopy_heights
    from fortmap.io.raster import GridReader

    truth, grid = _city_truth_trees(small_city, 4)
    rb = GridReader(small_city / "before.tif", grid, [1, 2, 3])
    ra = GridReader(small_city / "after.tif", grid, [1, 2, 3])
    hb, ha = canopy_heights(rb, ra, grid, 4, tree_height_m=7.0)
    assert hb.shape == truth.shape
    found = hb > 0
    tp = (found & truth).sum()
    # measured 0.84-0.86 precision, 0.85-0.89 recall on 1 km scenes (seeds 1-3)
    assert tp / found.sum() > 0.7
    assert tp / truth.sum() > 0.7
    # domes whose top is the given 7 m: lower towards the crown's rim
    assert hb.max() == pytest.approx(7.0, abs=1e-4) and hb.min() >= 0
    assert np.median(hb[found]) < 7.0
    # trees are only ever lost between the dates, and most stand
    assert not ((ha > 0) & ~found).any()
    assert 0.8 * found.sum() <= (ha > 0).sum() <= found.sum()


def test_canopy_tops_measured_from_shadows(small_city):
    import rasterio.features  # noqa: F401 - used by _city_truth_trees
    from scipy import ndimage as ndi

    from fortmap.analyze.viewshed import read_dem
    from fortmap.detect.canopy import CanopyStats, canopy_heights, sun_from_tags
    from fortmap.io.raster import GridReader

    truth, grid = _city_truth_trees(small_city, 4)
    sun = sun_from_tags(small_city / "before.tif")
    assert sun is not None and 5 <= sun[1] <= 90
    st = CanopyStats()
    hb, _ = canopy_heights(
        GridReader(small_city / "before.tif", grid, [1, 2, 3]), None, grid, 4, stats=st
    )
    assert st.sun == sun and not st.default_used and st.measured > 0
    # the crowns' heights against the DSM's (highest pixel per 2 m cell) where both see a tree
    dsm, _ = read_dem(small_city / "dsm_before.tif")
    above = dsm - ndi.minimum_filter(dsm, int(40 / grid.gsd))
    n, m = truth.shape
    true_h = above[: n * 4, : m * 4].reshape(n, 4, m, 4).max(axis=(1, 3))
    both = (hb > 0) & truth
    ratio = float(np.mean(hb[both]) / np.mean(true_h[both]))
    # measured 0.87 on the 1 km scene of seed 1 (flat 6 m slabs: 1.09); no fit to the truth
    assert 0.7 < ratio < 1.3, ratio


def test_shadow_height_inverts_a_spheres_shadow():
    from fortmap.detect.canopy import shadow_height

    # sphere r = 2 m centred 3 m up, sun 45 deg: tip 3 + 2 sqrt(2) m from the centre's foot,
    # 1 + 2 sqrt(2) m beyond the crown edge; half the width is covered 0.134 r / sin e short
    r, c, e = 2.0, 3.0, 45.0
    tip = c / np.tan(np.radians(e)) + r / np.sin(np.radians(e)) - r
    half = tip - (1 - np.sqrt(3) / 2) * r / np.sin(np.radians(e))
    assert shadow_height(np.array([half]), np.array([r]), e)[0] == pytest.approx(c + r)
    # a higher sun casts a shorter shadow for the same tree
    assert shadow_height(np.array([half]), np.array([r]), 60.0)[0] > c + r


def test_dome_profile_and_sun_tags(tmp_path):
    from fortmap.detect.canopy import _dome, sun_from_tags

    d = np.array([0.0, 1.0, 2.0, 5.0])
    h = _dome(d, np.full(4, 2.0), np.full(4, 6.0))
    assert h.tolist() == pytest.approx([4.0, 4.0 + np.sqrt(3.0), 6.0, 6.0])
    path = tmp_path / "t.tif"
    kw = {"driver": "GTiff", "width": 4, "height": 4, "count": 1, "dtype": "uint8", "crs": UTM}
    kw["transform"] = _tr(1.0, 4)
    with rasterio.open(path, "w", **kw) as dst:
        dst.write(np.zeros((1, 4, 4), np.uint8))
    assert sun_from_tags(path) is None
    with rasterio.open(path, "r+") as dst:
        dst.update_tags(SUN_AZIMUTH="400", SUN_ELEVATION="35.5")
    assert sun_from_tags(path) == (40.0, 35.5)
    assert sun_from_tags(tmp_path / "missing.tif") is None


def test_no_canopy_without_dark_vegetation(tmp_path):
    from fortmap.detect.canopy import canopy_heights, canopy_thresholds
    from fortmap.io.raster import GridReader

    rng = np.random.default_rng(0)
    img = np.empty((3, 128, 128), np.uint8)
    img[:] = np.array([150, 150, 145], np.uint8)[:, None, None]  # grey ground
    img[:, :, 64:] = np.array([110, 140, 80], np.uint8)[:, None, None]  # a field, evenly lit
    img = np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)
    path = tmp_path / "grass.tif"
    tr = _tr(0.5, 128)
    with rasterio.open(
        path, "w", driver="GTiff", width=128, height=128, count=3, dtype="uint8", crs=UTM,
        transform=tr,
    ) as dst:  # fmt: skip
        dst.write(img)
    grid = Grid(UTM, tr, 128, 128)
    t = canopy_thresholds(GridReader(path, grid, [1, 2, 3]), grid)
    assert t is not None and np.isnan(t.dark)
    assert canopy_heights(GridReader(path, grid, [1, 2, 3]), None, grid, 4) is None


def test_footprint_surfaces_stand_trees_berms_and_debris(small_city):
    import rasterio.features  # noqa: F401 - used by _city_truth_trees

    from fortmap.analyze.visibility_step import coarse_grid, footprint_surfaces
    from fortmap.io.raster import GridReader

    truth, grid = _city_truth_trees(small_city, 4)
    fp = gpd.read_file(small_city / "buildings.geojson")
    razed = set(gpd.read_file(small_city / "truth.gpkg", layer="razed_buildings")["id"])
    berms = gpd.read_file(small_city / "truth.gpkg", layer="berms")
    images = tuple(
        GridReader(small_city / f"{d}.tif", grid, [1, 2, 3]) for d in ("before", "after")
    )
    zb, za, cg, info = footprint_surfaces(
        grid, fp, razed, images=images, berms=berms, tree_height_m=6.0, debris_m=1.0
    )
    bare_b, bare_a, cg0, _ = footprint_surfaces(grid, fp, razed, debris_m=0.0)
    assert cg == cg0 == coarse_grid(grid, 2.0)[0] and zb.shape == (cg.height, cg.width)
    # trees: domes topping at 6 m where no building stands, on both dates where they stand
    trees = (zb - bare_b) > 0
    tree_h = (zb - bare_b)[trees & (bare_b == 0)]
    assert tree_h.max() == pytest.approx(6.0, abs=1e-4) and tree_h.min() > 0
    assert (trees & truth).sum() > 0.7 * trees.sum()
    assert info["canopy_km2"]["before"] > 0 and info["tree_top_m"] == 6.0
    assert info["tree_top_from"] == "set"
    # debris on the razed footprints, berms after only
    raz = fp[fp["id"].isin(razed)].to_crs(cg.crs)
    on = rasterio.features.rasterize(
        ((g.buffer(-1.0), 1) for g in raz.geometry), out_shape=zb.shape, transform=cg.transform
    ).astype(bool)
    assert np.all((za - bare_a)[on & (za - bare_a < 2)] >= 1.0 - 1e-6)
    if len(berms):
        crest = berms.geometry.iloc[0].interpolate(0.5, normalized=True)
        c, r = ~cg.transform @ (crest.x, crest.y)
        h = float(berms["height_m"].iloc[0])
        assert za[int(r), int(c)] - bare_a[int(r), int(c)] == pytest.approx(h, abs=0.5)


def test_berm_relief_profile_and_ditches():
    from fortmap.analyze.surface import DEFAULT_BERM_HEIGHT_M, berm_relief

    grid = Grid(UTM, _tr(1.0, 60), 60, 60)
    crest = LineString([(X0 + 10.5, Y0 + 30.5), (X0 + 50.5, Y0 + 30.5)])
    lay = gpd.GeoDataFrame(
        {"kind": ["berm", "berm", "ditch"], "height_m": [3.0, np.nan, 5.0]},
        geometry=[crest, LineString([(X0 + 10.5, Y0 + 5.5), (X0 + 50.5, Y0 + 5.5)]), crest],
        crs=UTM,
    )
    h = berm_relief(grid, lay, width_m=10.0)
    # rows run south: y = Y0 + 30.5 is row 29; 2 m off the crest: 3 * (1 - 0.4**2)
    assert h[29, 30] == pytest.approx(3.0)
    assert h[27, 30] == pytest.approx(3.0 * (1 - 0.4**2), abs=1e-5)
    assert h[23, 30] == 0 and h[35, 30] == 0  # beyond half the width
    assert h[54, 30] == pytest.approx(DEFAULT_BERM_HEIGHT_M)  # no height: the default
    assert berm_relief(grid, None).max() == 0


def test_run_visibility_refuses_a_dem_off_the_grid(tmp_path):
    # the library path (run_analysis) too: a named error, not "no observer on valid DEM cells"
    from fortmap.analyze.visibility_step import run_visibility
    from fortmap.errors import NoOverlapError

    utm = CRS.from_epsg(32637)
    dem = tmp_path / "dem.tif"
    with rasterio.open(
        dem, "w", driver="GTiff", width=20, height=20, count=1, dtype="float32", crs=utm,
        transform=Affine(2.0, 0, 600_000.0, 0, -2.0, 4_000_000.0),
    ) as ds:  # fmt: skip
        ds.write(np.zeros((1, 20, 20), np.float32))
    grid = Grid(utm, Affine(0.5, 0, 500_000.0, 0, -0.5, 4_000_000.0), 100, 100)
    with pytest.raises(NoOverlapError, match="dem.tif: DEM does not overlap the images"):
        run_visibility(
            grid, tmp_path, dsm_before=None, dsm_after=None, dem=dem, buildings=None,
            edge_file=None, core=box(500_010, 3_999_960, 500_040, 3_999_990),
            fortifications=[], dates={},
        )  # fmt: skip
