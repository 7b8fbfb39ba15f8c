"""COGs with overviews: ``to_cog``, the layout check, and the rasters ``analyze`` and
``fortmap viewshed`` write (opened with rasterio, their TIFF structure read directly)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner

from fortmap.io.cog import cog_problems, overview_count, to_cog

TR = Affine(1.0, 0, 500000.0, 0, -1.0, 4000000.0)


def _tif(path, data, **extra):
    prof = {"driver": "GTiff", "width": data.shape[1], "height": data.shape[0], "count": 1,
            "dtype": data.dtype.name, "crs": "EPSG:32637", "transform": TR, **extra}  # fmt: skip
    with rasterio.open(path, "w", **prof) as ds:
        ds.write(data, 1)
    return path


def _mask(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((n, n)) > 0.7).astype(np.uint8)


def test_overview_count():
    assert overview_count(1, 1) == 0
    assert overview_count(2, 1) == 1
    assert overview_count(512, 100) == 1
    assert overview_count(513, 100) == 1
    assert overview_count(1025, 10) == 2
    assert overview_count(4000, 4000) == 3  # 500 px, the first level inside one 512 px tile


@pytest.mark.parametrize("n", [200, 1500])
def test_to_cog_writes_overviews_of_mask_values(tmp_path, n):
    data = _mask(n)
    p = _tif(tmp_path / "m.tif", data)
    assert cog_problems(p)  # a striped GeoTIFF is not a COG
    tags = {"MEANING": "test"}
    with rasterio.open(p, "r+") as ds:
        ds.update_tags(**tags)
    to_cog(p)
    assert cog_problems(p) == []
    with rasterio.open(p) as ds:
        assert ds.overviews(1) == [2 ** (k + 1) for k in range(overview_count(n, n))]
        assert ds.block_shapes[0] == (512, 512) or n < 512
        assert ds.tags()["MEANING"] == "test"
        assert (ds.read(1) == data).all()
        # nearest: the overview holds only values of the mask
        ov = ds.read(1, out_shape=(n // 2, n // 2))
        assert set(np.unique(ov)) <= {0, 1}
    assert not list(tmp_path.glob(".*tmp"))


def test_cog_problems_sees_a_tiff_with_overviews_appended_after_its_data(tmp_path):
    p = _tif(tmp_path / "t.tif", _mask(1024), tiled=True, blockxsize=256, blockysize=256)
    with rasterio.open(p, "r+") as ds:
        ds.build_overviews([2, 4], rasterio.enums.Resampling.nearest)
    problems = cog_problems(p)
    assert "an IFD comes after pixel data" in problems
    assert "GDAL does not report LAYOUT=COG" in problems


def test_cog_problems_on_bigtiff(tmp_path):
    p = _tif(tmp_path / "b.tif", _mask(700), BIGTIFF="YES")
    to_cog(p)  # the COG driver writes classic TIFF here; a BigTIFF source must still read
    assert cog_problems(p) == []
    q = tmp_path / "b2.tif"
    with rasterio.open(p) as src:
        rasterio.shutil.copy(src, q, driver="COG", BIGTIFF="YES", OVERVIEW_COUNT=1)
    with open(q, "rb") as f:
        assert f.read(4)[2] == 43  # really a BigTIFF
    assert cog_problems(q) == []


def test_viewshed_output_is_a_cog_with_overviews(tmp_path):
    from fortmap.cli.main import cli

    rng = np.random.default_rng(3)
    z = rng.random((600, 600)).astype(np.float32) * 3
    dem = _tif(tmp_path / "dem.tif", z)
    out = tmp_path / "seen.tif"
    args = ["viewshed", str(dem), "--observer", "500300,3999700", "--max-distance", "250"]
    res = CliRunner().invoke(cli, [*args, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert cog_problems(out) == []
    with rasterio.open(out) as ds:
        assert ds.overviews(1) == [2]
        assert set(np.unique(ds.read(1, out_shape=(300, 300)))) <= {0, 1, 255}


def test_analyze_rasters_are_cogs_with_overviews(small_city, tmp_path):
    from fortmap.analysis import AnalyzeOptions, run_analysis

    s = small_city
    out = tmp_path / "run"
    run_analysis(
        s / "before.tif", s / "after.tif", out,
        buildings=s / "buildings.geojson", roads=s / "roads.geojson",
        core="Old City", places=s / "places.geojson",
        options=AnalyzeOptions(report=False),
    )  # fmt: skip
    names = ["change.tif", "visibility_before.tif", "visibility_after.tif"]
    for name in names:
        p = out / name
        assert p.is_file(), f"analyze did not write {name}"
        assert cog_problems(p) == [], name
        with rasterio.open(p) as ds:
            assert ds.overviews(1), name
            assert ds.profile["tiled"], name
