from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window

from conftest import textured_scene, write_tif
from fortmap.errors import InputError, NoOverlapError, NotGeoreferencedError
from fortmap.io.raster import GridReader, check_overlap, open_info


def test_open_info_reads_grid_and_date(pair):
    b, _, _ = pair
    info = open_info(b, "before image")
    assert info.grid.gsd == pytest.approx(0.5)
    assert info.count == 3 and info.dtype == "uint8"
    assert info.date == "2024-03-01"


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        open_info(tmp_path / "nope.tif", "before image")


def test_not_a_raster(tmp_path):
    p = tmp_path / "notes.tif"
    p.write_text("hello, not an image")
    with pytest.raises(InputError, match="notes.tif"):
        open_info(p)


def test_no_crs_says_how_to_georeference(tmp_path):
    p = write_tif(tmp_path / "plain.tif", textured_scene(64), crs=None)
    with pytest.raises(NotGeoreferencedError, match="georeference"):
        open_info(p)


def test_png_is_not_georeferenced(tmp_path):
    from PIL import Image

    p = tmp_path / "photo.png"
    Image.fromarray((textured_scene(64).transpose(1, 2, 0) * 255).astype("uint8")).save(p)
    with pytest.raises(NotGeoreferencedError, match="photo.png"):
        open_info(p)


def test_no_overlap(tmp_path):
    a = open_info(write_tif(tmp_path / "a.tif", textured_scene(64)))
    far = Affine(0.5, 0, 600000, 0, -0.5, 4000000)
    b = open_info(write_tif(tmp_path / "b.tif", textured_scene(64), transform=far))
    with pytest.raises(NoOverlapError, match="does not overlap"):
        check_overlap(a, b)


def test_reader_warps_other_crs_onto_grid(tmp_path):
    """The same image stored in WGS84 reads back onto the UTM grid close to the original."""
    from rasterio.warp import calculate_default_transform, reproject

    img = textured_scene(256)
    src = write_tif(tmp_path / "utm.tif", img)
    info = open_info(src)
    dst_crs = "EPSG:4326"
    t, w, h = calculate_default_transform(info.grid.crs, dst_crs, 256, 256, *info.grid.bounds)
    out = np.zeros((3, h, w), np.float32)
    with rasterio.open(src) as ds:
        for i in range(3):
            reproject(
                ds.read(i + 1).astype("float32"),
                out[i],
                src_transform=ds.transform,
                src_crs=ds.crs,
                dst_transform=t,
                dst_crs=dst_crs,
            )
    geo = write_tif(tmp_path / "geo.tif", out / 255, crs=dst_crs, transform=t, dtype="float32")
    r = GridReader(geo, info.grid)
    back = r.read(Window(32, 32, 192, 192))
    ref = img[:, 32:224, 32:224]
    assert back.shape == ref.shape
    assert np.corrcoef(back.ravel(), ref.ravel())[0, 1] > 0.9


def test_16bit_reads_as_float(tmp_path):
    p = write_tif(tmp_path / "u16.tif", textured_scene(64), dtype="uint16")
    r = GridReader(p, open_info(p).grid)
    data = r.read(Window(0, 0, 64, 64))
    assert data.dtype == np.float32 and data.max() > 255


def test_valid_mask_from_nodata(tmp_path):
    img = textured_scene(64)
    img[:, :10, :] = 0
    p = write_tif(tmp_path / "nd.tif", img, nodata=0)
    r = GridReader(p, open_info(p).grid)
    v = r.read_valid(Window(0, 0, 64, 64))
    assert not v[:10].any() and v[20:].mean() > 0.95


def test_reader_pickles(pair):
    import pickle

    b, _, _ = pair
    r = GridReader(b, open_info(b).grid)
    r.read(Window(0, 0, 8, 8))
    r2 = pickle.loads(pickle.dumps(r))
    assert np.array_equal(r2.read(Window(0, 0, 8, 8)), r.read(Window(0, 0, 8, 8)))
    assert isinstance(r2.path, Path)


def test_direct_shifted_read_matches_gdal_warper(pair):
    """The fast path (same grid, sub-pixel shift) agrees with GDAL's bilinear warp."""
    _, a, _ = pair
    grid = open_info(a).grid
    fast, gdal = GridReader(a, grid), GridReader(a, grid)
    gdal.direct = False
    warp = Affine.translation(2.3, -1.7)
    fast.set_pixel_warp(warp)
    gdal.set_pixel_warp(warp)
    w = Window(40, 40, 200, 150)
    x, y = fast.read(w), gdal.read(w)
    assert np.abs(x - y).mean() < 0.5  # DN of 0..255 data
    assert fast.read_valid(w).all() and gdal.read_valid(w).all()
    edge = Window(0, 0, 50, 50)  # reads 1.7 rows above the raster: those are invalid
    v = fast.read_valid(edge)
    assert not v[0].any() and v[5:].all()


@pytest.mark.parametrize("shift", [(0.0, 0.0), (2.3, -1.7)])
@pytest.mark.parametrize("nodata", [None, 0])
def test_inside_reads_equal_the_padded_edge_reads(tmp_path, shift, nodata):
    """A window wholly inside the raster (read straight into its array, validity without a
    pass) gives what the zero-padded path for windows crossing the edge gives there."""
    img = textured_scene(64)
    img[:, :6, :20] = 0  # a nodata patch when nodata=0
    p = write_tif(tmp_path / "in.tif", img, nodata=nodata)
    r = GridReader(p, open_info(p).grid)
    r.set_pixel_warp(Affine.translation(*shift))
    r.scale, r.offset = np.array([0.01, 0.02, 0.03]), np.array([0.1, 0.0, -0.1])
    big = Window(-4, -3, 72, 70)  # crosses every edge: the padded path
    inner = Window(6, 2, 40, 50)  # inside the raster, even with the shift's extra pixel
    sl = (slice(5, 55), slice(10, 50))
    assert np.array_equal(r.read(inner), r.read(big)[:, sl[0], sl[1]])
    assert np.array_equal(r.read_raw(inner), r.read_raw(big)[:, sl[0], sl[1]])
    v_in, v_big = r.read_valid(inner), r.read_valid(big)[sl]
    assert np.array_equal(v_in, v_big)
    assert v_in.all() == (nodata is None)


@pytest.mark.parametrize("direct", [True, False])
def test_changing_the_warp_of_an_open_reader_reads_like_a_fresh_one(pair, direct):
    """The file stays open across ``set_pixel_warp``; only the warped view is rebuilt, so every
    warp (shift, affine, back to none) reads exactly what a new reader with it reads."""
    _, a, _ = pair
    grid = open_info(a).grid
    r = GridReader(a, grid)
    r.direct = direct
    w = Window(30, 20, 120, 90)
    r.read(w)  # opens the file (and for direct=False the warped view)
    for warp in (Affine.translation(1.5, -0.75), Affine(1.01, 0.0, 2.0, 0.0, 0.99, -1.0),
                 Affine.identity()):  # fmt: skip
        r.set_pixel_warp(warp)
        fresh = GridReader(a, grid)
        fresh.direct = direct
        fresh.set_pixel_warp(warp)
        assert np.array_equal(r.read(w), fresh.read(w))
        assert np.array_equal(r.read_valid(w), fresh.read_valid(w))
    r.close()
    assert r._ds is None and r._vrt is None


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_decimated_reads_are_gdal_block_averages_in_the_raster_type(tmp_path, dtype):
    from rasterio.enums import Resampling

    p = write_tif(tmp_path / f"{dtype}.tif", textured_scene(96), dtype=dtype)
    r = GridReader(p, open_info(p).grid)
    w = Window(8, 4, 80, 60)
    got = r.read_decimated(w, (30, 40))
    with rasterio.open(p) as ds:
        ref = ds.read(window=w, out_shape=(ds.count, 30, 40), resampling=Resampling.average)
    assert got.dtype == np.dtype(dtype) and np.array_equal(got, ref)
    raw = r.read_raw(w, (30, 40))
    assert raw.dtype == np.float32 and np.array_equal(raw, ref.astype(np.float32))
