"""``fortmap viewshed`` end to end with click's CliRunner on small hand-made DEMs."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner

from fortmap.cli.main import cli

TR = Affine(10.0, 0, 500000.0, 0, -10.0, 4000410.0)


def _dem(path, z, crs="EPSG:32614", tr=TR):
    with rasterio.open(
        path, "w", driver="GTiff", width=z.shape[1], height=z.shape[0], count=1,
        dtype="float32", crs=crs, transform=tr, nodata=-9999.0,
    ) as ds:  # fmt: skip
        ds.write(z.astype(np.float32), 1)
    return path


@pytest.fixture
def wall_dem(tmp_path):
    z = np.zeros((41, 41), np.float32)
    z[:, 30] = 20.0
    z[0, :] = -9999.0
    return _dem(tmp_path / "dem.tif", z)


def _run(*args):
    return CliRunner().invoke(cli, ["viewshed", *map(str, args)])


OBS = "500205,4000205"  # centre of cell (row 20, col 20)


@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_cli_writes_the_viewshed(tmp_path, wall_dem, mode):
    out = tmp_path / "v.tif"
    res = _run(wall_dem, "--observer", OBS, "--mode", mode, "--no-curvature", "--out", out)
    assert res.exit_code == 0, res.output
    with rasterio.open(out) as ds:
        v = ds.read(1)
        assert ds.dtypes[0] == "uint8" and ds.nodata == 255 and ds.crs.to_epsg() == 32614
        assert ds.tags()["MODE"] == mode
    assert (v[0] == 255).all()
    assert (v[1:, :31] == 1).all() and (v[10:31, 31:] == 0).all()


def test_cli_options_map_onto_the_engine(tmp_path, wall_dem):
    out = tmp_path / "v.tif"
    args = ["--observer", OBS, "--target-height", "50", "--max-distance", "150"]
    res = _run(wall_dem, *args, "--observer-height", "3", "--refraction", "0.2", "--out", out)
    assert res.exit_code == 0, res.output
    with rasterio.open(out) as ds:
        v = ds.read(1)
    rr, cc = np.mgrid[0:41, 0:41]
    d = np.hypot(rr - 20, cc - 20) * 10
    assert (v[1:][d[1:] <= 150] == 1).all() and (v[1:][d[1:] > 150] == 0).all()


def test_cli_refuses_to_overwrite_without_force(tmp_path, wall_dem):
    out = tmp_path / "v.tif"
    assert _run(wall_dem, "--observer", OBS, "--out", out).exit_code == 0
    before = out.read_bytes()
    res = _run(wall_dem, "--observer", OBS, "--observer-height", "30", "--out", out)
    assert res.exit_code == 3 and "--force" in res.output
    assert out.read_bytes() == before
    res = _run(wall_dem, "--observer", OBS, "--observer-height", "30", "--out", out, "--force")
    assert res.exit_code == 0 and out.read_bytes() != before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--observer", "0,0"], "outside the DEM"),
        (["--observer", "500205,4000405"], "nodata"),
        (["--observer", OBS, "--max-distance", "0"], "maximum distance must be > 0"),
        (["--observer", OBS, "--max-distance", "-10"], "maximum distance must be > 0"),
    ],
)
def test_cli_bad_input(tmp_path, wall_dem, args, message):
    out = tmp_path / "v.tif"
    res = _run(wall_dem, *args, "--out", out)
    assert res.exit_code == 2 and message in res.output
    assert res.output.strip().count("\n") == 0  # one line
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["dem.tif"]


def test_cli_geographic_dem_is_refused(tmp_path):
    dem = _dem(
        tmp_path / "geo.tif", np.zeros((10, 10)), "EPSG:4326", Affine(0.001, 0, 10, 0, -0.001, 50)
    )
    res = _run(dem, "--observer", "10.005,49.995", "--out", tmp_path / "v.tif")
    assert res.exit_code == 2 and "geographic CRS" in res.output and "reproject" in res.output
    assert not (tmp_path / "v.tif").exists()


def test_cli_missing_dem_and_bad_observer(tmp_path):
    res = _run(tmp_path / "nope.tif", "--observer", OBS, "--out", tmp_path / "v.tif")
    assert res.exit_code == 2 and "not found" in res.output
    res = _run(tmp_path / "nope.tif", "--observer", "1;2", "--out", tmp_path / "v.tif")
    assert res.exit_code == 2 and "X,Y" in res.output
