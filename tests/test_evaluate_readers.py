"""Real-data readers: xBD and LEVIR-CD to GeoTIFFs; truth/prediction readers and their errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine

from fortmap.errors import InputError
from fortmap.evaluate.levir import LEVIR_ORIGIN, levir_to_geotiffs
from fortmap.evaluate.truth import Mask, aligned_masks, read_mask, read_pred_layers, truth_format
from fortmap.evaluate.xbd import read_xbd_labels, xbd_to_geotiffs
from fortmap.io.raster import open_info

SHARED = Path(
    os.environ.get(
        "FORTMAP_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )
)
XBD = SHARED / "xbd-joplin"
LEVIR = SHARED / "levir-cd"
TILE = "joplin-tornado_00000000"
needs_xbd = pytest.mark.skipif(
    not XBD.is_dir(), reason=f"xBD sample not found at {XBD} (set FORTMAP_SHARED_DATA)"
)
needs_levir = pytest.mark.skipif(
    not LEVIR.is_dir(), reason=f"LEVIR-CD sample not found at {LEVIR} (set FORTMAP_SHARED_DATA)"
)


@pytest.fixture(scope="module")
def xbd_scene(tmp_path_factory):
    if not XBD.is_dir():
        pytest.skip(f"xBD sample not found at {XBD}")
    return xbd_to_geotiffs(XBD / "images", XBD / "labels", TILE, tmp_path_factory.mktemp("xbd"))


@pytest.mark.realdata
@needs_xbd
def test_xbd_fit_gsd_and_residual(xbd_scene):
    assert 0.4 <= xbd_scene.gsd_m <= 0.5
    assert max(xbd_scene.rms_m) < 0.05  # metres: xBD pixel polygons come from the same transform
    assert xbd_scene.crs.to_epsg() == 32615
    assert xbd_scene.dates == ("2009-08-08", "2011-05-29")


@pytest.mark.realdata
@needs_xbd
def test_xbd_geotiffs_readable_by_analyze(xbd_scene):
    b = open_info(xbd_scene.before, "before image")
    a = open_info(xbd_scene.after, "after image")
    assert (b.count, b.dtype, b.grid.width, b.grid.height) == (3, "uint8", 1024, 1024)
    assert b.date == "2009-08-08" and a.date == "2011-05-29"
    assert b.grid.transform.b == 0 and b.grid.transform.d == 0


@pytest.mark.realdata
@needs_xbd
def test_xbd_footprints_and_truth(xbd_scene):
    fp = gpd.read_file(xbd_scene.footprints)
    assert len(fp) == 185 and fp["uid"].is_unique
    assert fp.crs.to_epsg() == 32615
    # Footprints fall on the image: pixel centroids inside 0..1024.
    inv = ~xbd_scene.transforms[0]
    cols, rows = zip(*(inv @ (c.x, c.y) for c in fp.geometry.centroid), strict=True)
    assert 0 <= min(cols) and max(cols) <= 1024 and 0 <= min(rows) and max(rows) <= 1024
    lines = xbd_scene.truth_table.read_text().splitlines()
    assert lines[0] == "uid,subtype,destroyed" and len(lines) == 186
    assert sum(line.endswith(",1") for line in lines[1:]) == 102


@pytest.mark.realdata
@needs_xbd
def test_read_xbd_labels_counts():
    lab = read_xbd_labels(XBD / "labels" / f"{TILE}_post_disaster.json")
    counts = lab.frame.subtype.value_counts().to_dict()
    assert counts == {
        "destroyed": 102,
        "minor-damage": 43,
        "major-damage": 27,
        "un-classified": 7,
        "no-damage": 6,
    }
    assert lab.date == "2011-05-29"


def test_read_xbd_labels_bad(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_xbd_labels(tmp_path / "x.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(InputError, match="bad.json"):
        read_xbd_labels(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"features": []}))
    with pytest.raises(InputError, match="not an xBD label file"):
        read_xbd_labels(other)


@pytest.mark.realdata
@needs_levir
def test_levir_to_geotiffs(tmp_path):
    s = levir_to_geotiffs(LEVIR, "train_36_0512_0512", tmp_path)
    for p in (s.before, s.after, s.label):
        info = open_info(p)
        assert info.grid.crs.to_epsg() == 32614
        assert info.grid.gsd == pytest.approx(0.5)
        assert info.grid.transform.c == LEVIR_ORIGIN[0] and info.grid.transform.f == LEVIR_ORIGIN[1]
        assert (info.grid.width, info.grid.height) == (256, 256)
    assert open_info(s.before).count == 3
    m = read_mask(s.label)
    assert m.data.any() and m.crs is not None
    with pytest.raises(InputError, match="not found"):
        levir_to_geotiffs(LEVIR, "no_such_tile", tmp_path)


def test_levir_refuses_geographic_crs(tmp_path):
    with pytest.raises(InputError, match="projected"):
        levir_to_geotiffs(tmp_path, "x", tmp_path, crs="EPSG:4326")


def test_truth_format(tmp_path):
    for name, kind in (
        ("truth.gpkg", "sim"),
        ("a_post_disaster.json", "xbd"),
        ("m.png", "mask"),
        ("m.TIF", "mask"),
    ):
        (tmp_path / name).write_bytes(b"")
        assert truth_format(tmp_path / name) == kind
    (tmp_path / "t.csv").write_text("")
    with pytest.raises(InputError, match="unknown truth format"):
        truth_format(tmp_path / "t.csv")
    with pytest.raises(InputError, match="not found"):
        truth_format(tmp_path / "missing.gpkg")


def test_read_pred_layers_errors(tmp_path):
    with pytest.raises(InputError, match="prediction directory not found"):
        read_pred_layers(tmp_path / "nope")
    with pytest.raises(InputError, match="findings.gpkg: not found"):
        read_pred_layers(tmp_path)
    (tmp_path / "findings.gpkg").write_text("garbage")
    with pytest.raises(InputError, match="findings.gpkg"):
        read_pred_layers(tmp_path)


def test_aligned_masks_reprojects_and_refuses(tmp_path):
    t = Affine(1, 0, 0, 0, -1, 10)
    pred = Mask(tmp_path / "p.tif", np.zeros((10, 10), bool), rasterio.crs.CRS.from_epsg(32614), t)
    truth_data = np.zeros((20, 20), bool)
    truth_data[:4, :4] = True  # the top-left 2x2 m
    truth = Mask(tmp_path / "t.tif", truth_data, pred.crs, Affine(0.5, 0, 0, 0, -0.5, 10))
    _, tr = aligned_masks(pred, truth)
    assert tr.shape == (10, 10) and tr[:2, :2].all() and tr.sum() == 4
    plain = Mask(tmp_path / "t.png", truth_data, None, None)
    with pytest.raises(InputError, match="t.png"):
        aligned_masks(pred, plain)
