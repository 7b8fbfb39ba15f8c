"""Library-level tests of the analyze pipeline: tiling invariance and the Dask path."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import rasterio

from fortmap.analysis import AnalyzeOptions, run_analysis


def _change(path):
    with rasterio.open(path / "change.tif") as ds:
        return ds.read(1)


def test_window_size_does_not_change_the_result(pair, tmp_path):
    b, a, _ = pair
    run_analysis(b, a, tmp_path / "big", options=AnalyzeOptions(window_px=1024))
    run_analysis(b, a, tmp_path / "small", options=AnalyzeOptions(window_px=96))
    big, small = _change(tmp_path / "big"), _change(tmp_path / "small")
    assert (big != small).mean() < 0.002


@pytest.mark.slow
def test_dask_local_cluster_gives_the_same_mask(pair, tmp_path):
    b, a, _ = pair
    run_analysis(b, a, tmp_path / "seq", options=AnalyzeOptions(window_px=128))
    s = run_analysis(b, a, tmp_path / "dask", options=AnalyzeOptions(window_px=128, workers=2))
    assert np.array_equal(_change(tmp_path / "seq"), _change(tmp_path / "dask"))
    assert json.loads((tmp_path / "dask" / "summary.json").read_text())["counts"] == s["counts"]


def test_progress_is_reported(pair, tmp_path):
    b, a, _ = pair
    seen = []
    run_analysis(
        b,
        a,
        tmp_path / "p",
        progress=lambda step, d, n: seen.append((step, d, n)),
        options=AnalyzeOptions(window_px=128),
    )
    detecting = [x for x in seen if x[0] == "detecting"]
    assert detecting[-1][1] == detecting[-1][2] == 9


def test_fortification_detectors_see_the_core_and_their_halo_only(
    small_city, tmp_path, monkeypatch
):
    # with footprints, the window read reaches out to their bounds; the detectors must not see
    # that extra, or their findings would depend on which footprints share the window
    import fortmap.tiles as T
    from fortmap.fortifications import FORT_HALO_PX

    seen = []
    real = T.detect_window

    def spy(fc, before, after, valid, read, core_px, transform, gsd):
        seen.append((before.shape, after.shape, valid.shape, read, core_px))
        return real(fc, before, after, valid, read, core_px, transform, gsd)

    monkeypatch.setattr(T, "detect_window", spy)
    d = small_city
    run_analysis(
        d / "before.tif",
        d / "after.tif",
        tmp_path / "out",
        buildings=d / "buildings.geojson",
        roads=d / "roads.geojson",
        options=AnalyzeOptions(window_px=512, report=False),
    )
    with rasterio.open(d / "before.tif") as ds:
        w, h = ds.width, ds.height
    # one fixed 1024 px block holds the whole 1000 px scene: one call, from one 512 px window
    assert len(seen) == 1
    for bshape, ashape, vshape, read, (c0, r0, c1, r1) in seen:
        assert bshape[1:] == ashape[1:] == vshape == (read.height, read.width)
        core = (read.col_off + c0, read.row_off + r0, read.col_off + c1, read.row_off + r1)
        assert read.col_off == max(0, core[0] - FORT_HALO_PX)
        assert read.row_off == max(0, core[1] - FORT_HALO_PX)
        assert read.col_off + read.width == min(w, core[2] + FORT_HALO_PX)
        assert read.row_off + read.height == min(h, core[3] + FORT_HALO_PX)


@pytest.mark.slow
def test_dask_workers_find_the_same_fortifications(small_city, tmp_path, monkeypatch):
    # and the same buildings, the Dask run's footprints held in a file and fed to the
    # workers a few windows at a time
    import geopandas as gpd

    import fortmap.io.footprint_store as FS

    d = small_city
    kw = {"buildings": d / "buildings.geojson", "roads": d / "roads.geojson"}
    run_analysis(d / "before.tif", d / "after.tif", tmp_path / "seq",
                 options=AnalyzeOptions(window_px=512, report=False), **kw)  # fmt: skip
    monkeypatch.setattr(FS, "MAX_IN_MEMORY", 0)
    monkeypatch.setattr(FS, "BATCH", 150)
    run_analysis(d / "before.tif", d / "after.tif", tmp_path / "dask",
                 options=AnalyzeOptions(window_px=256, report=False, workers=2), **kw)  # fmt: skip
    for layer in ("barricades", "rubble", "berms", "buildings", "razed_buildings"):
        a = gpd.read_file(tmp_path / "seq" / "findings.gpkg", layer=layer)
        b = gpd.read_file(tmp_path / "dask" / "findings.gpkg", layer=layer)
        assert len(a) == len(b), layer
        assert all(x.equals_exact(y, 1e-9) for x, y in zip(a.geometry, b.geometry, strict=True))
    assert len(gpd.read_file(tmp_path / "seq" / "findings.gpkg", layer="berms")) > 0


def test_building_damage_is_the_same_whatever_the_window(small_city, tmp_path):
    # the footprints' noise floors and shadow thresholds are the scene's, not each window's
    import geopandas as gpd

    d = small_city
    layers = []
    for w in (256, 1024):
        run_analysis(d / "before.tif", d / "after.tif", tmp_path / f"w{w}",
                     buildings=d / "buildings.geojson",
                     options=AnalyzeOptions(window_px=w, report=False))  # fmt: skip
        layers.append(gpd.read_file(tmp_path / f"w{w}" / "findings.gpkg", layer="buildings"))
    a, b = layers
    assert len(a) == len(b) > 50
    assert (a.damage == b.damage).all()
    assert np.allclose(a.score, b.score, atol=1e-4)


def test_cleared_land_tile_by_tile_from_a_file_is_the_whole_scene_s(
    small_city, tmp_path, monkeypatch
):
    # a scene larger than a tile keeps its block statistics in a temporary file and finds
    # cleared land tile by tile; the findings must be those of the whole-scene path
    import geopandas as gpd

    import fortmap.detect.cleared_tiles as CT
    import fortmap.io.scene_grid as SG

    d = small_city
    opts = AnalyzeOptions(report=False)
    run_analysis(d / "before.tif", d / "after.tif", tmp_path / "whole", options=opts)
    monkeypatch.setattr(CT, "TILE_BLOCKS", 48)
    monkeypatch.setattr(SG, "MAX_IN_MEMORY_B", 0)
    seen = []
    real = CT.cleared_from_grid
    monkeypatch.setattr(
        "fortmap.scene_findings.cleared_from_grid",
        lambda grid, *a, **k: seen.append(grid.in_memory) or real(grid, *a, **k),
    )
    run_analysis(d / "before.tif", d / "after.tif", tmp_path / "tiled", options=opts)
    assert seen == [False]
    a = gpd.read_file(tmp_path / "whole" / "findings.gpkg", layer="cleared_areas")
    b = gpd.read_file(tmp_path / "tiled" / "findings.gpkg", layer="cleared_areas")
    assert len(a) == len(b) > 0
    key = lambda g: (round(g.bounds[1], 3), round(g.bounds[0], 3))  # noqa: E731
    a = a.iloc[sorted(range(len(a)), key=lambda i: key(a.geometry.iloc[i]))]
    b = b.iloc[sorted(range(len(b)), key=lambda i: key(b.geometry.iloc[i]))]
    for x, y in zip(a.geometry, b.geometry, strict=True):
        assert x.normalize().equals_exact(y.normalize(), 1e-6)
    assert np.allclose(a.score, b.score, atol=1e-12)
    assert list(a.area_ha.round(6)) == list(b.area_ha.round(6))
    # no temporary grid is left in the output
    assert sorted(p.name for p in (tmp_path / "tiled").iterdir()) == sorted(
        p.name for p in (tmp_path / "whole").iterdir()
    )


def test_footprints_from_a_file_give_the_layers_held_in_memory(small_city, tmp_path, monkeypatch):
    # a city's footprints go to a temporary GeoPackage, read window by window and written a
    # run at a time; the findings must be those of the footprints held in memory
    import geopandas as gpd
    import pyogrio

    import fortmap.io.footprint_store as FS

    d = small_city
    kw = {"buildings": d / "buildings.geojson", "options": AnalyzeOptions(report=False)}
    ref = run_analysis(d / "before.tif", d / "after.tif", tmp_path / "memory", **kw)
    monkeypatch.setattr(FS, "MAX_IN_MEMORY", 0)
    monkeypatch.setattr(FS, "BATCH", 97)
    opened = []
    real = FS.open_footprints
    monkeypatch.setattr(
        "fortmap.analysis.open_footprints",
        lambda *a, **k: opened.append(real(*a, **k)) or opened[-1],
    )
    events = []
    got = run_analysis(
        d / "before.tif", d / "after.tif", tmp_path / "file",
        progress=lambda step, done, total: events.append((step, done, total)), **kw,
    )  # fmt: skip
    assert opened[0].frame is None and opened[0].count > 3 * 97
    # a city's footprints show their progress: read run by run, written run by run
    reads = [(d, t) for s, d, t in events if s == "reading footprints"]
    writes = [(d, t) for s, d, t in events if s == "writing buildings"]
    n_features = len(gpd.read_file(d / "buildings.geojson"))
    assert len(reads) > 3 and reads[-1] == (n_features, n_features)
    assert len(writes) > 3 and writes[-1] == (opened[0].count, opened[0].count)
    assert not opened[0].path.exists()  # the temporary file is gone
    assert got["buildings"] == ref["buildings"]
    assert got["counts"] == ref["counts"]
    for layer in ("buildings", "razed_buildings", "rubble"):
        a = gpd.read_file(tmp_path / "memory" / "findings.gpkg", layer=layer)
        b = gpd.read_file(tmp_path / "file" / "findings.gpkg", layer=layer)
        assert list(a.columns) == list(b.columns), layer
        assert len(a) == len(b), layer
        assert (a.geometry.to_wkb() == b.geometry.to_wkb()).all(), layer
        for c in a.columns.drop("geometry"):
            assert a[c].astype(str).tolist() == b[c].astype(str).tolist(), (layer, c)
    assert len(pyogrio.read_dataframe(tmp_path / "file" / "findings.gpkg", layer="buildings")) > 300
    assert sorted(p.name for p in (tmp_path / "file").iterdir()) == sorted(
        p.name for p in (tmp_path / "memory").iterdir()
    )


def test_multipolygon_footprints_are_analysed_part_by_part(small_city, tmp_path):
    # the parts of a multi-polygon share their input's ``fid``: the layer must still be written
    import geopandas as gpd
    import shapely

    d = small_city
    fp = gpd.read_file(d / "buildings.geojson")
    two = shapely.MultiPolygon([fp.geometry.iloc[0], fp.geometry.iloc[1]])
    fp = pd.concat([fp.iloc[2:], fp.iloc[:1].set_geometry([two], crs=fp.crs)], ignore_index=True)
    fp.to_file(tmp_path / "multi.geojson", driver="GeoJSON", engine="pyogrio")
    run_analysis(d / "before.tif", d / "after.tif", tmp_path / "out",
                 buildings=tmp_path / "multi.geojson", options=AnalyzeOptions(report=False))  # fmt: skip
    b = gpd.read_file(tmp_path / "out" / "findings.gpkg", layer="buildings")
    last = len(fp) - 1
    assert (b["fid"] == last).sum() == 2
    parts = b.loc[b["fid"] == last].to_crs(fp.crs).geometry.area
    assert sorted(parts.round(2)) == sorted(shapely.area(shapely.get_parts(two)).round(2))
