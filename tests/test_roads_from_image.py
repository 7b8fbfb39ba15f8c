"""Roads derived from the before image (no ``--roads``)."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import shapely
from affine import Affine
from click.testing import CliRunner
from rasterio.crs import CRS

from fortmap.cli.main import cli
from fortmap.detect.road_centrelines import centrelines
from fortmap.detect.road_corridors import fill_small_holes, line_openings
from fortmap.detect.road_surface import road_mask
from fortmap.detect.roads_from_image import length_within, roads_from_image
from fortmap.io.grids import analysis_grid
from fortmap.io.raster import GridReader, open_info
from fortmap.io.roads import ROAD_COLUMNS, read_roads


def _street_grid(size: int = 400, seed: int = 0) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """RGB (3, size, size) at 1 m: green-brown textured blocks cut by grey streets.

    Returns the image and the streets as (row or col of the axis, width in pixels); streets
    at index 0 run east-west, the others north-south.
    """
    rng = np.random.default_rng(seed)
    img = np.empty((3, size, size), np.float32)
    blocks = rng.random((size // 8, size // 8))
    tex = np.kron(blocks, np.ones((8, 8)))[:size, :size]
    img[0] = 90 + 60 * tex
    img[1] = 110 + 50 * tex
    img[2] = 60 + 30 * tex
    streets = [(100, 7), (260, 12), (150, 6), (320, 9)]
    for i, (axis, w) in enumerate(streets):
        sl = slice(axis - w // 2, axis - w // 2 + w)
        if i < 2:
            img[:, sl, :] = np.array([118.0, 120.0, 124.0])[:, None, None]
        else:
            img[:, :, sl] = np.array([118.0, 120.0, 124.0])[:, None, None]
    img += rng.normal(0, 2.0, img.shape).astype(np.float32)
    return img, streets


def test_line_openings_keep_long_bars_and_drop_blobs():
    m = np.zeros((1, 80, 80), bool)
    m[0, 10:14, 5:75] = True  # a 70 px bar, 4 px wide
    m[0, 40:55, 40:55] = True  # a 15 px square
    op = line_openings(m, 31)[0]
    assert op[10:14, 5:75].mean() > 0.95
    assert not op[40:55, 40:55].any()


def test_grey_streets_on_a_textured_scene():
    img, streets = _street_grid()
    valid = np.ones(img.shape[1:], bool)
    mask, ev = road_mask(img, valid, 1.0)
    assert ev["road_classes"], ev
    lines = centrelines(mask, Affine.identity(), 1.0)
    truth = [
        shapely.LineString([(0, a + 0.5), (400, a + 0.5)])
        if i < 2
        else shapely.LineString([(a + 0.5, 0), (a + 0.5, 400)])
        for i, (a, _) in enumerate(streets)
    ]
    tg = gpd.GeoSeries(truth)
    assert length_within(tg, lines.geometry, 3.0) > 0.85
    assert length_within(lines.geometry, tg, 3.0) > 0.85
    # the 12 m street reads about 12 m wide, the 6 m one about 6 m (within 2 m)
    for (a, w), ln in zip(streets, truth, strict=True):
        near = lines[lines.geometry.distance(ln.interpolate(0.5, normalized=True)) < 3]
        assert len(near), (a, w)
        assert abs(near["width_m"].median() - w) <= 2.0, (a, w, near["width_m"].tolist())


def test_fill_small_holes_fills_crowns_not_blocks():
    m = np.ones((60, 60), bool)
    m[10:16, 10:16] = False  # a 6 m crown: 36 m2
    m[30:45, 30:45] = False  # a 15 m block: 225 m2
    f = fill_small_holes(m, 1.0)
    assert f[10:16, 10:16].all() and not f[30:45, 30:45].any()


def test_fill_labelled_equals_the_bincount_lookup():
    from scipy import ndimage as ndi

    from fortmap.detect.pixel_kernels import fill_labelled

    rng = np.random.default_rng(4)
    for p_on in (0.3, 0.6, 0.9, 1.0):
        m = rng.random((50, 70)) < p_on
        holes, n = ndi.label(~m)
        for max_px in (0.0, 1.0, 3.5, 40.0, 1e9):
            small = np.bincount(holes.ravel()) <= max_px
            small[0] = False
            assert np.array_equal(fill_labelled(m, holes, n, max_px), m | small[holes])


def test_class_bit_counts_equal_per_class_masks():
    from fortmap.detect.pixel_kernels import class_bit_counts

    rng = np.random.default_rng(8)
    lab = rng.integers(-1, 6, (40, 60))[::2, ::2]  # a strided view, -1 for no class
    bits = rng.integers(0, 2**6, (40, 60)).astype(np.uint32)[::2, ::2]
    bitpos = np.array([2, -1, 0, 5, 1, -1])
    total, on = class_bit_counts(lab, bits, bitpos)
    for k in range(6):
        m = lab == k
        assert total[k] == m.sum()
        ref = ((bits >> np.uint32(max(bitpos[k], 0))) & 1).astype(bool) & m
        assert on[k] == (ref.sum() if bitpos[k] >= 0 else 0)


def test_lines_extended_to_the_border_at_once_equal_one_by_one():
    import shapely

    from fortmap.detect.road_centrelines import _to_border, _to_border_all

    rng = np.random.default_rng(9)
    shape = (50, 80)
    lines = [shapely.LineString(rng.random((k, 2)) * [80, 50]) for k in (2, 3, 5, 2, 4, 7)]
    lines += [
        shapely.LineString([(1.0, 25.0), (40.0, 25.0), (78.5, 25.0)]),  # both ends near an edge
        shapely.LineString([(3.0, 3.0), (30.0, 30.0)]),  # left and top tie at the start
        shapely.LineString([(77.0, 47.0), (60.0, 40.0)]),  # right and bottom tie
        shapely.LineString([(40.0, 2.0), (40.0, 48.0)]),  # top and bottom
    ]
    tols = [float(t) for t in rng.uniform(1.0, 12.0, len(lines))]
    got = _to_border_all(np.array(lines, dtype=object), shape, tols)
    ref = [_to_border(ln, shape, t) for ln, t in zip(lines, tols, strict=True)]
    assert [g.coords[:] for g in got] == [r.coords[:] for r in ref]
    assert any(len(g.coords) > len(ln.coords) for g, ln in zip(got, lines, strict=True))


def test_segment_medians_equal_numpy_medians():
    from fortmap.detect.selection_kernels import segment_medians

    rng = np.random.default_rng(10)
    lens = np.array([1, 2, 3, 4, 7, 10, 1])
    vals = np.round(rng.random(lens.sum()) * 5, 1)  # ties
    ref = [np.median(v) for v in np.split(vals, np.cumsum(lens)[:-1])]
    got = segment_medians(vals.copy(), np.cumsum(lens))
    assert got.tolist() == [float(r) for r in ref]


def test_grey_field_dotted_with_trees_is_not_road():
    # a grey yard with a tree crown every 14 m: between the crowns runs of grey go on for the
    # whole yard and are under 30 m wide, but the yard is one wide surface
    img, streets = _street_grid()
    field = np.zeros(img.shape[1:], bool)
    field[160:250, 170:310] = True
    img[:, field] = np.array([165.0, 162.0, 154.0])[:, None]
    rng = np.random.default_rng(1)
    for r in range(163, 250, 14):
        for c in range(173, 310, 14):
            img[:, r : r + 6, c : c + 6] = np.array([60.0, 85.0, 50.0])[:, None, None]
    img[:, field] += rng.normal(0, 2.0, (3, int(field.sum()))).astype(np.float32)
    mask, ev = road_mask(img, np.ones(field.shape, bool), 1.0)
    assert ev["road_classes"], ev
    yard = [k for k, c in enumerate(ev["classes"]) if abs(c["mean"][0] - 165) < 5]
    assert yard and not set(yard) & set(ev["road_classes"]), ev
    assert mask[field].mean() < 0.05


def test_no_corridors_no_roads():
    rng = np.random.default_rng(3)
    tex = np.kron(rng.random((40, 40)), np.ones((10, 10)))
    img = np.stack([90 + 60 * tex, 110 + 50 * tex, 60 + 30 * tex]).astype(np.float32)
    mask, ev = road_mask(img, np.ones(tex.shape, bool), 1.0)
    assert ev["road_classes"] == [] and not mask.any()
    assert centrelines(mask, Affine.identity(), 1.0).empty


def test_derived_roads_match_the_simulated_city(small_city):
    info = open_info(small_city / "before.tif")
    grid = analysis_grid(info)
    roads, ev = roads_from_image(GridReader(info.path, grid, [1, 2, 3]), grid)
    assert list(roads.columns[:4]) == list(ROAD_COLUMNS)
    assert CRS.from_user_input(roads.crs) == grid.crs
    assert set(roads["road_class"]) <= {"major", "minor"}
    assert (roads["width_m"] > 0).all() and ev["pixel_m"] == pytest.approx(1.0)
    truth = read_roads(small_city / "roads.geojson", grid.crs, grid.bounds)
    # floors well under what the method measures on this scene (0.78 and 0.81)
    assert length_within(truth.geometry, roads.geometry, 5.0) > 0.6
    assert length_within(roads.geometry, truth.geometry, 5.0) > 0.65


def test_analyze_without_roads_derives_them(small_city, tmp_path):
    s = small_city
    out = tmp_path / "run"
    res = CliRunner().invoke(
        cli,
        [
            "analyze", "--before", str(s / "before.tif"), "--after", str(s / "after.tif"),
            "--places", str(s / "places.geojson"), "--core", "Old City,100",
            "--out", str(out), "--no-report", "-q",
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["roads_from"] == "before image"
    assert summary["roads"].startswith("derived from the before image")
    assert summary["not_analysed"] == []
    layers = set(gpd.list_layers(out / "findings.gpkg")["name"])
    assert {"barricades", "rubble", "routes", "entry_points"} <= layers
    assert summary["routes"]["entries_before"] >= 1


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_overview_read_natively_equals_the_float_read(tmp_path, dtype):
    # read_overview takes a byte image's averages as bytes; a reader offering only
    # read_raw (float32) must give the same overview, values and type
    from conftest import textured_scene, write_tif
    from fortmap.detect.roads_from_image import read_overview

    p = write_tif(tmp_path / f"{dtype}.tif", textured_scene(300), dtype=dtype)
    grid = analysis_grid(open_info(p))
    reader = GridReader(p, grid)

    class FloatOnly:
        def read_raw(self, win, shape):
            return reader.read_raw(win, shape)

        def read_valid(self, win, shape):
            return reader.read_valid(win, shape)

    for px in (1.0, 1.5):
        got = read_overview(reader, grid, px, max_px=128)
        ref = read_overview(FloatOnly(), grid, px, max_px=128)
        assert got[0].dtype == ref[0].dtype
        assert (got[0].dtype == np.uint8) == (dtype == "uint8")
        assert np.array_equal(got[0], ref[0]) and np.array_equal(got[1], ref[1])
        assert got[2] == ref[2]
