"""Berms on the scene's 2 m work grid: the same whatever the windows."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import shapely
from affine import Affine
from rasterio.windows import Window

from fortmap.analysis import AnalyzeOptions, run_analysis
from fortmap.berm_scene import WorkGrid, drop_on_berms, scene_berms, work_factor, work_part
from fortmap.detect.berm_grid import _down
from fortmap.detect.berms import find_berms
from fortmap.fortifications import FortContext

GSD = 0.5


def _ridge_scene(n: int = 520, sun_az: float = 180.0, elev: float = 40.0):
    """Grass before; after a 3 m soil ridge 10 m wide along row 260 from x 60 to 460 px (100 m),
    shaded for a sun at ``sun_az``; 0.5 m pixels, mild noise on both dates."""
    rng = np.random.default_rng(0)
    grass = np.array([0.26, 0.33, 0.17], np.float32)[:, None, None]
    soil = np.array([0.50, 0.40, 0.30], np.float32)[:, None, None]
    before = np.broadcast_to(grass, (3, n, n)).copy()
    before += rng.normal(0, 0.01, before.shape).astype(np.float32)
    rows, cols = np.mgrid[0:n, 0:n].astype(np.float32)
    d = (rows + 0.5 - 260) * GSD
    on = (np.abs(d) < 5) & (cols >= 60) & (cols < 460)
    h = 3.0 * np.clip(1 - (d / 5) ** 2, 0, None)
    dzdn = -np.gradient(np.where(on, h, 0.0), GSD, axis=0)
    a, e = np.radians(sun_az), np.radians(elev)
    cos_i = (dzdn * -np.cos(a) * np.cos(e) + np.sin(e)) / np.sqrt(dzdn**2 + 1)
    light = 0.85 * np.clip(cos_i, 0, 1) + 0.17
    after = before.copy()
    after[:, on] = (soil * light[None])[:, on]
    after += rng.normal(0, 0.01, after.shape).astype(np.float32)
    return before, after, np.ones((n, n), bool)


def _fill(grid: WorkGrid, before, after, valid, core_px: int, halo: int = 64) -> None:
    h, w = valid.shape
    for r in range(0, h, core_px):
        for c in range(0, w, core_px):
            core = Window(c, r, min(core_px, w - c), min(core_px, h - r))
            c0, r0 = max(0, c - halo), max(0, r - halo)
            c1, r1 = min(w, c + core_px + halo), min(h, r + core_px + halo)
            read = Window(c0, r0, c1 - c0, r1 - r0)
            sl = (slice(r0, r1), slice(c0, c1))
            grid.add(work_part(before[:, sl[0], sl[1]], after[:, sl[0], sl[1]], valid[sl],
                               read, core, GSD, (h, w)))  # fmt: skip


@pytest.mark.parametrize("in_memory", [True, False])
@pytest.mark.parametrize("core_px", [100, 102, 128, 256, 520])
def test_windows_fill_the_work_grid_with_the_whole_scenes_block_means(core_px, in_memory, tmp_path):
    before, after, valid = _ridge_scene()
    grid = WorkGrid(valid.shape, GSD, 3, False, tmp_path, 1 << 30 if in_memory else 0)
    assert (grid.path is None) == in_memory
    _fill(grid, before, after, valid, core_px)
    f = work_factor(GSD)
    want = np.concatenate([_down(after, f), _down(before, f), _down(valid, f)[None]])
    assert np.array_equal(grid.read(0, 0, *grid.shape[1:]), want)
    grid.close()
    assert grid.path is None or not grid.path.exists()


def test_a_berm_across_window_edges_is_found_whole_and_the_same(tmp_path):
    before, after, valid = _ridge_scene()
    fc = FortContext(roads=None, sun_azimuth=180.0, sun_elevation=40.0)
    whole = find_berms(before, after, valid, GSD, 180.0, (0, 0, 520, 520), sun_elevation_deg=40.0)
    assert len(whole) == 1 and whole[0][0].length * GSD > 80
    found = []
    for core_px in (100, 256):
        # the second in a file
        grid = WorkGrid(valid.shape, GSD, 3, False, tmp_path, 1 << 30 if core_px == 100 else 0)
        _fill(grid, before, after, valid, core_px)
        found.append(scene_berms(grid, fc, Affine.identity()))
        grid.close()
    # 100 px windows cut the 200 px ridge four times; the work grid sees it whole
    for lines in found:
        assert len(lines) == 1
        assert lines[0][0].equals_exact(whole[0][0], 1e-6)
        assert lines[0][1] == whole[0][1]


def test_dsm_piles_on_a_berms_body_are_dropped():
    berm = (shapely.LineString([(0, 0), (100, 0)]), 0.8, {"height_m": 2.0})
    on = (shapely.box(40, 1, 45, 4), 0.4, {"evidence": {"source": "dsm"}})
    image = (shapely.box(40, 1, 45, 4), 0.7, {"evidence": {}})
    away = (shapely.box(40, 20, 45, 24), 0.4, {"evidence": {"source": "dsm"}})
    kept = drop_on_berms([on, image, away], [berm])
    assert kept == [image, away]
    assert drop_on_berms([on], []) == [on]


def test_analyze_finds_the_same_fortifications_whatever_the_window(small_city, tmp_path):
    # berms on the work grid; barricades and rubble on fixed 1024 px blocks
    d = small_city
    found = {}
    for w in (256, 512, 1024):
        run_analysis(
            d / "before.tif",
            d / "after.tif",
            tmp_path / f"w{w}",
            buildings=d / "buildings.geojson",
            roads=d / "roads.geojson",
            options=AnalyzeOptions(window_px=w, report=False),
        )
        path = tmp_path / f"w{w}" / "findings.gpkg"
        # the levels measured once for the scene are reported, the same for every window
        sm = json.loads((tmp_path / f"w{w}" / "summary.json").read_text())["scene_measures"]
        assert sm["road_noise"]["road"] > 0 and sm["footprints"]["noise_floor_before"] > 0
        assert (
            sm == json.loads((tmp_path / f"w{256}" / "summary.json").read_text())["scene_measures"]
        )
        found[w] = {k: gpd.read_file(path, layer=k) for k in ("barricades", "rubble", "berms")}
        # the work grid's file (if any) is gone
        assert not list((tmp_path / f"w{w}").glob("fortmap-berm-grid-*"))
    for layer in ("barricades", "rubble", "berms"):
        ref = found[1024][layer]
        assert len(ref) > 0, layer
        for w in (256, 512):
            other = found[w][layer]
            assert len(other) == len(ref), (layer, w)
            for a, b in zip(ref.geometry, other.geometry, strict=True):
                assert a.equals_exact(b, 1e-6), (layer, w)
            assert np.allclose(ref.score, other.score), (layer, w)


def _write(path, a: np.ndarray):
    import rasterio
    from rasterio.crs import CRS

    prof = {"driver": "GTiff", "width": a.shape[1], "height": a.shape[0], "count": 1,
            "dtype": "float32", "crs": CRS.from_epsg(32637),
            "transform": Affine(GSD, 0, 500000, 0, -GSD, 4000000)}  # fmt: skip
    with rasterio.open(path, "w", **prof) as ds:
        ds.write(a, 1)
    return path


def test_an_image_berm_where_trees_stood_is_kept_by_the_after_dsm_on_the_work_grid(tmp_path):
    # as test_berms' window test: trees felled and a 3 m ridge built, a net drop; the scene
    # step reads the after DSM around the crest to see the new ridge
    from fortmap.detect.dsm_noise import berm_surfaces
    from fortmap.io.raster import GridReader, open_info
    from test_berms import _ridge_dsms, _scene

    before, after = _scene(180.0)
    db, da = _ridge_dsms(trees_before=True)
    valid = np.ones(db.shape, bool)
    grid_info = open_info(_write(tmp_path / "db.tif", db))
    readers = [GridReader(_write(tmp_path / f"{k}.tif", z), grid_info.grid) for k, z in
               (("dsm_b", db), ("dsm_a", da))]  # fmt: skip
    fc = FortContext(roads=None, sun_azimuth=180.0, sun_elevation=40.0,
                     dsm_before=readers[0], dsm_after=readers[1])  # fmt: skip
    work = WorkGrid(db.shape, GSD, 3, True, tmp_path)
    h, w = db.shape
    for r in range(0, h, 128):
        for c in range(0, w, 128):
            core = Window(c, r, min(128, w - c), min(128, h - r))
            c0, r0 = max(0, c - 64), max(0, r - 64)
            c1, r1 = min(w, c + 128 + 64), min(h, r + 128 + 64)
            read = Window(c0, r0, c1 - c0, r1 - r0)
            sl = (slice(r0, r1), slice(c0, c1))
            surf = berm_surfaces(db[sl], da[sl], GSD, None)
            work.add(work_part(before[:, sl[0], sl[1]], after[:, sl[0], sl[1]], valid[sl],
                               read, core, GSD, (h, w), surf))  # fmt: skip
    found = scene_berms(work, fc, Affine.identity())
    work.close()
    berms = [o for o in found if o[2]["kind"] == "berm"]
    assert len(berms) == 1 and berms[0][2]["source"] == "both"
    assert berms[0][2]["height_m"] == pytest.approx(3.0, abs=0.5)
    # the same as the whole window's detector
    whole = find_berms(before, after, valid, GSD, 180.0, (0, 0, w, h), dsm_before=db,
                       dsm_after=da, sun_elevation_deg=40.0)  # fmt: skip
    assert [o[2]["height_m"] for o in whole if o[2]["kind"] == "berm"] == [berms[0][2]["height_m"]]
