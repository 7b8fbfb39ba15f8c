"""The analysis grid: ground metres whatever the image's CRS."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
from affine import Affine
from click.testing import CliRunner

from conftest import shared, textured_scene, write_tif
from fortmap.cli.main import cli
from fortmap.io.grids import analysis_grid, grid_scale, point_scale
from fortmap.io.raster import open_info

# Web Mercator at about 37.7 degrees north (Gangwon, Korea): 1/cos(latitude) = 1.265
MERC = Affine(0.6, 0, 14321853.0, 0, -0.6, 4533022.0)


def test_web_mercator_goes_onto_its_utm_zone(tmp_path):
    tif = write_tif(tmp_path / "m.tif", textured_scene(64), crs="EPSG:3857", transform=MERC)
    info = open_info(tif)
    assert grid_scale(info.grid) == pytest.approx(1.265, abs=0.002)
    grid = analysis_grid(info)
    assert grid.crs.to_epsg() == 32652
    # same ground, in ground metres: 0.6 map metres are 0.6 / 1.265 m on the ground
    assert grid.gsd == pytest.approx(0.6 / 1.265, rel=0.01)
    area = grid.width * grid.height * grid.gsd**2
    assert area == pytest.approx((64 * 0.6 / 1.265) ** 2, rel=0.03)
    assert grid_scale(grid) == pytest.approx(1.0, abs=0.001)


@pytest.mark.parametrize(
    "crs, transform",
    [
        ("EPSG:32652", Affine(0.5, 0, 500000, 0, -0.5, 4170000)),  # UTM: 0.9996, kept
        ("EPSG:32637", Affine(0.5, 0, 500000, 0, -0.5, 4000000)),
    ],
)
def test_a_crs_in_ground_metres_is_kept(tmp_path, crs, transform):
    tif = write_tif(tmp_path / "u.tif", textured_scene(64), crs=crs, transform=transform)
    info = open_info(tif)
    assert analysis_grid(info) == info.grid


def test_geographic_goes_onto_the_zone_of_its_centre(tmp_path):
    # 0.00001 degrees at 37.7 N, 127.9 E (zone 52, 126-132 E)
    t = Affine(0.00001, 0, 127.9, 0, -0.00001, 37.7)
    tif = write_tif(tmp_path / "g.tif", textured_scene(64), crs="EPSG:4326", transform=t)
    grid = analysis_grid(open_info(tif))
    assert grid.crs.to_epsg() == 32652
    assert 0.8 < grid.gsd < 1.2


def test_point_scale_of_what_is_not_projected_is_none():
    from rasterio.crs import CRS

    assert point_scale(CRS.from_epsg(4326), 10.0, 50.0) is None
    assert point_scale(None, 0.0, 0.0) is None


def test_analyze_measures_web_mercator_in_ground_metres(tmp_path):
    img = textured_scene(192)
    b = write_tif(tmp_path / "b.tif", img, crs="EPSG:3857", transform=MERC)
    a = write_tif(tmp_path / "a.tif", img, crs="EPSG:3857", transform=MERC)
    out = tmp_path / "run"
    res = CliRunner().invoke(
        cli, ["analyze", "--before", str(b), "--after", str(a), "--out", str(out), "--no-report"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    # no "stretches ground metres" warning any more: the run measures on the ground
    assert "stretches" not in res.output
    assert f"at {0.6 / 1.265:.2f}" in res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["grid"]["crs"] == "EPSG:32652"
    assert summary["grid"]["gsd_m"] == pytest.approx(0.6 / 1.265, rel=0.01)
    assert summary["grid"]["area_km2"] == pytest.approx((192 * 0.6 / 1.265) ** 2 / 1e6, rel=0.03)
    # findings come back in the image's own CRS, as for a geographic image
    assert gpd.read_file(out / "findings.gpkg", layer="cleared_areas").crs.to_epsg() == 3857


def test_gangwon_sample_is_measured_on_the_ground():
    # the review's case: 0.3739 km2 at 0.5972 m before, about 0.236 km2 at 0.473 m on the ground
    info = open_info(shared("imagery", "gangwon_korea_0p6m_rgb.tif"))
    grid = analysis_grid(info)
    assert grid.gsd == pytest.approx(0.473, abs=0.005)
    assert grid.width * grid.height * grid.gsd**2 / 1e6 == pytest.approx(0.236, abs=0.004)


def test_rasterize_shapes_burns_like_shapely_geometries():
    import numpy as np
    import shapely
    from rasterio import features as rio_features

    from fortmap.io.grids import rasterize_shapes

    ring = shapely.Polygon([(2, 2), (30, 3.5), (28, 25), (4, 20)], [[(10, 8), (18, 8), (14, 15)]])
    geoms = np.array(
        [
            shapely.box(20.3, 18.7, 38.2, 39.9),
            ring,  # a hole stays a hole
            shapely.MultiPolygon([shapely.box(0, 30, 5, 38), shapely.box(6, 30, 9, 39.5)]),
            shapely.Polygon(),  # empty: skipped as before
            shapely.box(12.5, 24.25, 19.75, 36.5),
        ],
        dtype=object,
    )
    values = [3, 1, 7, 9, 2]
    pairs = rasterize_shapes(geoms, values)
    assert [v for _, v in pairs] == values
    assert isinstance(pairs[1][0], dict) and isinstance(pairs[2][0], shapely.MultiPolygon)
    with pytest.warns(UserWarning):  # rasterio skips the empty polygon either way
        got = rio_features.rasterize(pairs, out_shape=(40, 40))
    with pytest.warns(UserWarning):
        ref = rio_features.rasterize(list(zip(geoms, values, strict=True)), out_shape=(40, 40))
    assert np.array_equal(got, ref)
    assert set(np.unique(got)) == {0, 1, 2, 3, 7}
    assert got[12, 14] == 0 and got[5, 5] == 1  # the hole, and the ring around it


def test_mosaic_mask_lines_up_with_the_sample_mosaic():
    from rasterio.crs import CRS
    from rasterio.features import rasterize
    from shapely import box

    from fortmap.io.grids import mosaic_mask, mosaic_tiles, sample_mosaic
    from fortmap.types import Grid

    g = Grid(crs=CRS.from_epsg(32637), transform=Affine(0.5, 0, 1000, 0, -0.5, 2000),
             width=150, height=110)  # fmt: skip
    # squares of 3.2 m at irregular spots, in the grid's CRS
    polys = [box(1000 + x, 2000 - y - 3.2, 1000 + x + 3.2, 2000 - y)
             for x in range(0, 75, 7) for y in range(0, 55, 9)]  # fmt: skip
    full = rasterize([(p, 1) for p in polys], out_shape=(110, 150), transform=g.transform)

    class Reader:  # the mosaic of a raster holding the burnt mask itself
        def read_raw(self, w):
            r, c = int(w.row_off), int(w.col_off)
            return full[None, r : r + int(w.height), c : c + int(w.width)].astype(np.float32)

        def read_valid(self, w):
            return np.ones((int(w.height), int(w.width)), bool)

    tiles = mosaic_tiles(g, 64, 16)
    assert len(tiles) == 4 and all(len(r) == 4 for r in tiles)
    mosaic = sample_mosaic(Reader(), Reader(), g, 64, 16)[0][0] > 0
    mask = mosaic_mask(g, 64, polys, 16)
    assert mask.shape == mosaic.shape == (64, 64)
    assert mask.any() and np.array_equal(mask, mosaic)
    # a scene smaller than the mosaic is its own single tile
    assert np.array_equal(mosaic_mask(g, 256, polys), full > 0)
    assert not mosaic_mask(g, 64, [], 16).any()
