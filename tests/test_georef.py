"""Georeferencing plain images: affine fit from control points, GeoTIFF writing."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image

from fortmap.errors import InputError, NotGeoreferencedError
from fortmap.io.georef import (
    HOW_TO_GEOREFERENCE,
    fit_affine_from_gcps,
    georeference_png,
    not_georeferenced_message,
    utm_crs_for,
)
from fortmap.io.raster import open_info
from fortmap.types import DATE_TAG


def _apply(t: Affine, pix: np.ndarray) -> np.ndarray:
    x, y = pix[:, 0], pix[:, 1]
    return np.c_[t.a * x + t.b * y + t.c, t.d * x + t.e * y + t.f]


def test_fit_recovers_known_affine_with_rotation():
    true = Affine(0.5, 0.02, 400000.0, 0.03, -0.5, 5000000.0)
    rng = np.random.default_rng(1)
    pix = rng.uniform(0, 2000, size=(50, 2))
    world = _apply(true, pix)
    fit, rms = fit_affine_from_gcps(pix, world)
    assert fit.almost_equals(true, precision=1e-6)
    assert rms < 1e-6


def test_fit_reports_residual_of_noisy_points():
    true = Affine(0.5, 0.0, 0.0, 0.0, -0.5, 0.0)
    rng = np.random.default_rng(2)
    pix = rng.uniform(0, 1000, size=(2000, 2))
    world = _apply(true, pix) + rng.normal(0, 0.3, size=(2000, 2))
    _, rms = fit_affine_from_gcps(pix, world)
    # RMS of 2-D isotropic noise with sigma 0.3 m is 0.3 * sqrt(2).
    assert rms == pytest.approx(0.3 * np.sqrt(2), rel=0.05)


def test_fit_rejects_bad_points():
    with pytest.raises(InputError, match="at least 3"):
        fit_affine_from_gcps(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(InputError, match="collinear"):
        line = np.c_[np.arange(5.0), np.arange(5.0)]
        fit_affine_from_gcps(line, line)
    with pytest.raises(InputError, match=r"\(n, 2\)"):
        fit_affine_from_gcps(np.zeros((4, 2)), np.zeros((4, 3)))


def test_utm_crs_for():
    assert utm_crs_for(-94.5, 37.07).to_epsg() == 32615
    assert utm_crs_for(151.2, -33.9).to_epsg() == 32756
    with pytest.raises(InputError):
        utm_crs_for(10.0, 89.0)


def test_georeference_png_keeps_bands_dtype_and_date(tmp_path):
    rgb = (np.arange(300 * 280 * 3) % 251).astype(np.uint8).reshape(300, 280, 3)
    png = tmp_path / "img.png"
    Image.fromarray(rgb).save(png)
    t = Affine(0.5, 0, 620000, 0, -0.5, 3350000)
    out = georeference_png(png, t, "EPSG:32614", tmp_path / "img.tif", date="2020-05-01T10:00:00Z")
    with rasterio.open(out) as ds:
        assert ds.count == 3 and ds.dtypes[0] == "uint8"
        assert ds.crs.to_epsg() == 32614
        assert ds.transform.almost_equals(t)
        assert ds.tags()[DATE_TAG] == "2020-05-01"
        np.testing.assert_array_equal(ds.read().transpose(1, 2, 0), rgb)
    info = open_info(out, "before image")
    assert info.date == "2020-05-01"
    assert info.grid.gsd == pytest.approx(0.5)


def test_georeference_png_missing_and_unreadable(tmp_path):
    with pytest.raises(InputError, match="not found"):
        georeference_png(tmp_path / "nope.png", Affine.identity(), "EPSG:32614", tmp_path / "o.tif")
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    with pytest.raises(InputError, match="bad.png"):
        georeference_png(bad, Affine.identity(), "EPSG:32614", tmp_path / "o.tif")


def test_plain_png_refused_with_how_to(tmp_path):
    png = tmp_path / "plain.png"
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(png)
    with pytest.raises(NotGeoreferencedError) as exc:
        open_info(png, "before image")
    assert "gdal_translate" in str(exc.value)
    assert "gdal_translate" in HOW_TO_GEOREFERENCE
    msg = not_georeferenced_message(png)
    assert str(png) in msg and "\n" not in msg
