"""score_run on small hand-made truth and predictions: simulator GeoPackage, xBD JSON, masks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image
from pyproj import Transformer
from shapely import LineString, box

from fortmap.errors import InputError
from fortmap.evaluate.score import score_run

CRS = "EPSG:32637"
T = Affine(1.0, 0, 500000.0, 0, -1.0, 4000100.0)


def write_tif(path: Path, data: np.ndarray, transform: Affine = T, crs: str | None = CRS) -> Path:
    with rasterio.open(
        path, "w", driver="GTiff", width=data.shape[1], height=data.shape[0], count=1,
        dtype="uint8", crs=crs, transform=transform,
    ) as ds:  # fmt: skip
        ds.write(data.astype(np.uint8), 1)
    return path


def gdf(geoms: list, crs: str = CRS, **cols) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries(geoms, crs=crs), crs=crs)


def write_layers(path: Path, layers: dict[str, gpd.GeoDataFrame]) -> Path:
    for name, g in layers.items():
        kw = {} if len(g) else {"geometry_type": "Unknown"}
        g.to_file(path, layer=name, driver="GPKG", engine="pyogrio", **kw)
    return path


def x0(v: float) -> float:
    return 500000.0 + v


def y0(v: float) -> float:
    return 4000000.0 + v


def sim_case(tmp_path: Path) -> tuple[Path, Path]:
    """Truth and prediction with hand-computed scores (see test_sim_scores)."""
    tdir, pdir = tmp_path / "sim", tmp_path / "run"
    tdir.mkdir()
    pdir.mkdir()
    b = [box(x0(i * 30), y0(0), x0(i * 30 + 10), y0(10)) for i in range(3)]
    truth = {
        "razed_buildings": gdf(b, score=[1.0] * 3),
        "cleared_areas": gdf([box(x0(0), y0(20), x0(100), y0(120))]),
        "barricades": gdf(
            [
                LineString([(x0(0), y0(200)), (x0(40), y0(200))]),
                LineString([(x0(0), y0(300)), (x0(40), y0(300))]),
            ]
        ),
        "berms": gdf([LineString([(x0(0), y0(400)), (x0(100), y0(400))])]),
        "rubble": gdf([]),
    }
    write_layers(tdir / "truth.gpkg", truth)
    pred = {
        # one exact, one IoU 0.8 (box shifted 1.11 m), one false positive far away
        "razed_buildings": gdf(
            [
                b[0],
                box(x0(31.111), y0(0), x0(41.111), y0(10)),
                box(x0(500), y0(500), x0(510), y0(510)),
            ],
            score=[0.9, 0.8, 0.7],
        ),
        "cleared_areas": gdf([box(x0(50), y0(20), x0(150), y0(120))], area_ha=[1.0]),
        "barricades": gdf([LineString([(x0(0), y0(203)), (x0(40), y0(203))])]),
        "berms": gdf([LineString([(x0(0), y0(402)), (x0(100), y0(402))])]),
    }
    write_layers(pdir / "findings.gpkg", pred)
    truth_mask = np.zeros((10, 10), np.uint8)
    truth_mask[:2, :5] = 1
    pred_mask = np.zeros((10, 10), np.uint8)
    pred_mask[:2, 3:7] = 1
    write_tif(tdir / "truth_change.tif", truth_mask)
    write_tif(pdir / "change.tif", pred_mask)
    return tdir / "truth.gpkg", pdir


def test_sim_scores(tmp_path):
    truth, pred = sim_case(tmp_path)
    r = score_run(truth, pred)
    k = r["kinds"]
    assert r["format"] == "sim"
    assert (k["razed_buildings"]["tp"], k["razed_buildings"]["fp"], k["razed_buildings"]["fn"]) == (
        2,
        1,
        1,
    )
    assert k["razed_buildings"]["f1"] == pytest.approx(2 / 3)
    assert k["cleared_areas"]["iou"] == pytest.approx(1 / 3)
    assert k["barricades"]["precision"] == 1.0 and k["barricades"]["recall"] == 0.5
    assert k["berms"]["precision"] == pytest.approx(1.0) and k["berms"]["recall"] == pytest.approx(
        1.0
    )
    # rubble: not in the prediction at all -> not analysed, not scored, and said so
    assert "rubble" not in k
    assert any("rubble" in n and "not analysed" in n for n in r["notes"])
    # change: truth 10 px, pred 8 px, overlap 4 px
    assert k["change_pixels"]["precision"] == pytest.approx(0.5)
    assert k["change_pixels"]["recall"] == pytest.approx(0.4)
    assert k["change_pixels"]["iou"] == pytest.approx(4 / 14)
    json.dumps(r, allow_nan=False)


def test_sim_iou_threshold_changes_result(tmp_path):
    truth, pred = sim_case(tmp_path)
    assert score_run(truth, pred, iou=0.85)["kinds"]["razed_buildings"]["tp"] == 1


def test_sim_pred_in_other_crs_is_reprojected(tmp_path):
    truth, pred = sim_case(tmp_path)
    layers = {
        n: gpd.read_file(pred / "findings.gpkg", layer=n)
        for n in ("razed_buildings", "cleared_areas")
    }
    (pred / "findings.gpkg").unlink()
    write_layers(pred / "findings.gpkg", {n: g.to_crs("EPSG:4326") for n, g in layers.items()})
    r = score_run(truth, pred)
    assert r["kinds"]["razed_buildings"]["tp"] == 2
    assert r["kinds"]["cleared_areas"]["iou"] == pytest.approx(1 / 3, rel=1e-3)
    assert "barricades" not in r["kinds"]  # layer absent from the prediction: not analysed


def test_sim_without_change_masks(tmp_path):
    truth, pred = sim_case(tmp_path)
    (pred / "change.tif").unlink()
    r = score_run(truth, pred)
    assert "change_pixels" not in r["kinds"]
    assert any("change.tif" in n for n in r["notes"])


def test_mask_truth_png_and_shape_mismatch(tmp_path):
    pred = tmp_path / "run"
    pred.mkdir()
    p = np.zeros((8, 8), np.uint8)
    p[:4] = 1
    write_tif(pred / "change.tif", p)
    label = np.zeros((8, 8), np.uint8)
    label[:, :4] = 255
    Image.fromarray(label).save(tmp_path / "label.png")
    r = score_run(tmp_path / "label.png", pred)
    assert r["format"] == "mask"
    assert r["kinds"]["change_pixels"]["f1"] == pytest.approx(0.5)
    assert r["kinds"]["change_pixels"]["iou"] == pytest.approx(16 / 48)
    Image.fromarray(np.zeros((9, 8), np.uint8)).save(tmp_path / "small.png")
    with pytest.raises(InputError, match="small.png"):
        score_run(tmp_path / "small.png", pred)
    (pred / "change.tif").unlink()
    with pytest.raises(InputError, match="change.tif"):
        score_run(tmp_path / "label.png", pred)


def xbd_case(tmp_path: Path) -> tuple[Path, Path]:
    """Five footprints near Joplin; subtypes and predictions chosen for hand-computed scores."""
    utm = "EPSG:32615"
    to_ll = Transformer.from_crs(utm, "EPSG:4326", always_xy=True)
    boxes = [box(365900 + 20 * i, 4103000, 365910 + 20 * i, 4103010) for i in range(5)]
    subtypes = ["destroyed", "destroyed", "no-damage", "un-classified", "minor-damage"]
    lng_lat, xy = [], []
    for i, (g, s) in enumerate(zip(boxes, subtypes, strict=True)):
        xs, ys = g.exterior.coords.xy
        lon, lat = to_ll.transform(np.asarray(xs), np.asarray(ys))
        wkt = "POLYGON ((" + ", ".join(f"{a} {b}" for a, b in zip(lon, lat, strict=True)) + "))"
        props = {"feature_type": "building", "subtype": s, "uid": f"u{i}"}
        lng_lat.append({"properties": props, "wkt": wkt})
        xy.append({"properties": props, "wkt": f"POLYGON (({i} 0, {i} 1, {i + 1} 1, {i} 0))"})
    label = tmp_path / "t_post_disaster.json"
    label.write_text(
        json.dumps(
            {
                "metadata": {"capture_date": "2011-05-29T00:00:00Z"},
                "features": {"lng_lat": lng_lat, "xy": xy},
            }
        )
    )
    pred = tmp_path / "run"
    pred.mkdir()
    # Predicted: u0 destroyed (TP), u1 intact (FN), u2 destroyed (FP), u3 (excluded), u4 missing.
    bl = gdf(
        boxes[:4],
        crs=utm,
        damage=["destroyed", "intact", "destroyed", "intact"],
        score=[0.9, 0.3, 0.6, 0.1],
        uid=["u0", "u1", "u2", "u3"],
    )
    write_layers(pred / "findings.gpkg", {"buildings": bl, "razed_buildings": bl.iloc[[0, 2]]})
    return label, pred


def test_xbd_scores(tmp_path):
    label, pred = xbd_case(tmp_path)
    r = score_run(label, pred)
    d = r["kinds"]["destroyed_buildings"]
    assert (d["tp"], d["fp"], d["fn"]) == (1, 1, 1)
    assert r["n_unclassified_excluded"] == 1
    assert r["n_truth"] == 4 and r["n_matched"] == 3
    # positives u0 (0.9), u1 (0.3); negatives u2 (0.6), u4 (unmatched, 0): 3 of 4 pairs ordered.
    assert d["auc"] == pytest.approx(0.75)
    assert r["confusion"]["destroyed"]["destroyed"] == 1
    assert r["confusion"]["destroyed"]["intact"] == 1
    assert r["confusion"]["minor-damage"]["unmatched"] == 1
    assert "un-classified" not in r["confusion"]


def test_xbd_needs_buildings_layer(tmp_path):
    label, pred = xbd_case(tmp_path)
    (pred / "findings.gpkg").unlink()
    write_layers(pred / "findings.gpkg", {"razed_buildings": gdf([box(0, 0, 1, 1)])})
    with pytest.raises(InputError, match="buildings"):
        score_run(label, pred)


def test_bad_inputs(tmp_path):
    truth, pred = sim_case(tmp_path)
    with pytest.raises(InputError, match="prediction directory not found"):
        score_run(truth, tmp_path / "nope")
    with pytest.raises(InputError, match="truth not found"):
        score_run(tmp_path / "missing.gpkg", pred)
    with pytest.raises(InputError, match="--iou"):
        score_run(truth, pred, iou=0.0)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="findings.gpkg"):
        score_run(truth, empty)
    (tmp_path / "corrupt.gpkg").write_text("not a geopackage")
    with pytest.raises(InputError, match="corrupt.gpkg"):
        score_run(tmp_path / "corrupt.gpkg", pred)
    (tmp_path / "corrupt.png").write_text("not an image")
    with pytest.raises(InputError, match="corrupt.png"):
        score_run(tmp_path / "corrupt.png", pred)
    (pred / "change.tif").write_text("not a raster")
    with pytest.raises(InputError, match="change.tif"):
        score_run(truth, pred)
    other = write_layers(tmp_path / "other.gpkg", {"roads": gdf([box(0, 0, 1, 1)])})
    with pytest.raises(InputError, match="none of the truth layers"):
        score_run(other, pred)


SHARED = Path(
    os.environ.get(
        "FORTMAP_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )
)


@pytest.mark.realdata
@pytest.mark.skipif(
    not (SHARED / "xbd-joplin").is_dir(), reason=f"xBD sample not found under {SHARED}"
)
def test_xbd_real_labels_against_their_own_footprints(tmp_path):
    """Scoring the real label file against predictions that copy it gives perfect scores."""
    from fortmap.evaluate.xbd import read_xbd_labels

    lab = read_xbd_labels(SHARED / "xbd-joplin/labels/joplin-tornado_00000000_post_disaster.json")
    f = lab.frame.to_crs("EPSG:32615")
    destroyed = f.subtype == "destroyed"
    pred = tmp_path / "run"
    pred.mkdir()
    bl = gdf(
        list(f.geometry),
        crs="EPSG:32615",
        damage=np.where(destroyed, "destroyed", "intact"),
        score=destroyed.astype(float).to_numpy(),
    )
    write_layers(pred / "findings.gpkg", {"buildings": bl})
    r = score_run(lab.path, pred)
    d = r["kinds"]["destroyed_buildings"]
    assert d["f1"] == 1.0 and d["auc"] == 1.0
    assert r["n_truth"] == 178 and r["n_unclassified_excluded"] == 7


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.skipif(
    not (SHARED / "xbd-joplin").is_dir(), reason=f"xBD sample not found under {SHARED}"
)
def test_xbd_readers_analyze_score_chain(tmp_path):
    """The xBD PNGs, georeferenced by the readers, go through analyze and score like a user's GeoTIFFs."""
    from fortmap.analysis import run_analysis
    from fortmap.evaluate.xbd import xbd_to_geotiffs

    xbd = SHARED / "xbd-joplin"
    scene = xbd_to_geotiffs(
        xbd / "images", xbd / "labels", "joplin-tornado_00000000", tmp_path / "in"
    )
    run_analysis(scene.before, scene.after, tmp_path / "run", buildings=scene.footprints)
    r = score_run(scene.truth_labels, tmp_path / "run")
    # Footprints land back on themselves: all but those mostly outside the image are matched.
    assert r["n_matched"] >= 170
    # The chain carries signal: destroyed buildings score above the rest.
    assert r["kinds"]["destroyed_buildings"]["auc"] > 0.5


@pytest.mark.realdata
@pytest.mark.skipif(
    not (SHARED / "levir-cd").is_dir(), reason=f"LEVIR-CD sample not found under {SHARED}"
)
def test_levir_readers_analyze_score_chain(tmp_path):
    from fortmap.analysis import run_analysis
    from fortmap.evaluate.levir import levir_to_geotiffs

    scene = levir_to_geotiffs(SHARED / "levir-cd", "val_27_0000_0256", tmp_path / "in")
    run_analysis(scene.before, scene.after, tmp_path / "run")
    r = score_run(scene.label, tmp_path / "run")
    m = r["kinds"]["change_pixels"]
    assert m["tp"] + m["fp"] + m["fn"] + m["tn"] == 256 * 256
    assert m["tp"] + m["fn"] > 0  # the label has change pixels
