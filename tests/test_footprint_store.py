"""The footprint store: the same footprints, windows and runs in memory and from a file."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

import fortmap.io.footprint_store as FS
from fortmap.detect.footprint_damage import damage_from_features, damage_refs
from fortmap.errors import InputError
from fortmap.io.footprint_store import open_footprints
from fortmap.io.vector import read_footprints
from fortmap.types import Grid

CRS_M = CRS.from_epsg(32637)
# 200 x 160 pixels of 0.5 m from (1000, 2080): 100 m by 80 m
GRID = Grid(crs=CRS_M, transform=Affine(0.5, 0, 1000, 0, -0.5, 2080), width=200, height=160)


def _write(tmp_path, geoms, name="fp.geojson"):
    feats = [
        {
            "type": "Feature",
            "properties": {"id": i, "height": 3.0 + i % 5, "use": "house" if i % 3 else None},
            "geometry": None if g is None else shapely.geometry.mapping(g),
        }
        for i, g in enumerate(geoms)
    ]
    crs = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32637"}}
    path = tmp_path / name
    path.write_text(json.dumps({"type": "FeatureCollection", "crs": crs, "features": feats}))
    return path


def _houses(n=180, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(990, 1100, n)  # some beyond the image's right and left edges
    y = rng.uniform(2000, 2080, n)
    w = rng.uniform(3, 9, n)
    return [shapely.box(a, b, a + c, b + c * 0.7) for a, b, c in zip(x, y, w, strict=True)]


@pytest.fixture
def on_file(monkeypatch):
    monkeypatch.setattr(FS, "MAX_IN_MEMORY", 10)
    monkeypatch.setattr(FS, "BATCH", 23)


def _both(path, monkeypatch, tmp_path):
    mem = open_footprints(path, GRID)
    monkeypatch.setattr(FS, "MAX_IN_MEMORY", 10)
    monkeypatch.setattr(FS, "BATCH", 23)
    work = tmp_path / "a work dir #1"  # a space and a URI's fragment mark in the path
    work.mkdir(exist_ok=True)
    fil = open_footprints(path, GRID, work)
    return mem, fil


@pytest.mark.parametrize("whole_b", [0, 64 << 20], ids=["read-by-runs", "read-whole"])
def test_a_file_holds_the_footprints_held_in_memory(tmp_path, monkeypatch, whole_b):
    monkeypatch.setattr(FS, "WHOLE_TEXT_B", whole_b)
    geoms = _houses()
    geoms[5] = None  # no geometry: skipped, and not counted in ``fid``
    geoms[7] = shapely.MultiPolygon(
        [shapely.box(1010, 2010, 1014, 2014), shapely.box(1020, 2010, 1024, 2013)]
    )
    path = _write(tmp_path, geoms)
    with pytest.warns(UserWarning, match="outside the image") as w1:
        mem, fil = _both(path, monkeypatch, tmp_path)
    with fil:
        assert mem.frame is not None and mem.path is None
        assert fil.frame is None and fil.path.exists() and fil.path.is_relative_to(tmp_path)
        # one warning each, with the same count
        msgs = [str(w.message) for w in w1 if "outside" in str(w.message)]
        assert len(msgs) == 2 and msgs[0] == msgs[1]
        ref = read_footprints(path, GRID.crs, GRID.bounds)
        assert len(mem) == len(fil) == len(ref)
        got = pd.concat(list(fil.batches()))
        assert got.index.tolist() == list(range(len(ref)))
        assert (got.geometry.to_wkb().values == ref.geometry.to_wkb().values).all()
        for c in ("id", "height", "fid"):
            assert got[c].tolist() == ref[c].tolist()
        assert got["use"].isna().tolist() == ref["use"].isna().tolist()
        assert fil.columns == mem.columns
        # the multi-polygon's two parts share its ``fid``; the feature without one is skipped
        assert (ref["fid"] == 6).sum() == 2
        runs = [len(b) for b in fil.batches()]
        assert max(runs) == 23 and sum(runs) == len(ref)
        geoms_runs = np.concatenate(list(fil.geometries()))
        assert len(geoms_runs) == len(ref)
    assert not fil.path.exists()


def test_windows_and_tiles_get_the_same_footprints_from_a_file(tmp_path, monkeypatch):
    path = _write(tmp_path, _houses(seed=1))
    with pytest.warns(UserWarning):
        mem, fil = _both(path, monkeypatch, tmp_path)
    with fil:
        cores = [Window(c, r, min(64, 200 - c), min(64, 160 - r)) for r in range(0, 160, 64)
                 for c in range(0, 200, 64)]  # fmt: skip
        a = list(mem.window_footprints(cores, 64))
        b = list(fil.window_footprints(cores, 64))
        assert [[i for i, _ in w] for w in a] == [[i for i, _ in w] for w in b]
        for wa, wb in zip(a, b, strict=True):
            assert all(p.equals_exact(q, 0) for (_, p), (_, q) in zip(wa, wb, strict=True))
        # every footprint in exactly one window
        ids = sorted(i for w in a for i, _ in w)
        assert ids == list(range(len(mem)))
        # near a box: the same polygons that intersect it, by row
        box = shapely.box(30, 40, 90, 100)
        for near in (mem.pixels_near(30, 40, 90, 100), fil.pixels_near(30, 40, 90, 100)):
            hit = near[shapely.intersects(near, box)]
            allpx = np.asarray(
                [p for _, p in sorted((t for w in a for t in w), key=lambda t: t[0])]
            )
            want = allpx[shapely.intersects(allpx, box)]
            assert len(hit) == len(want) > 0
            assert all(p.equals_exact(q, 0) for p, q in zip(hit, want, strict=True))


@pytest.mark.parametrize("whole_b", [0, 64 << 20], ids=["read-by-runs", "read-whole"])
def test_a_bad_run_leaves_no_temporary_file(tmp_path, on_file, monkeypatch, whole_b):
    monkeypatch.setattr(FS, "WHOLE_TEXT_B", whole_b)
    geoms = _houses(40)
    geoms[30] = shapely.LineString([(1010, 2010), (1020, 2020)])  # in the second run
    path = _write(tmp_path, geoms)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(InputError, match="must be polygons"):
        open_footprints(path, GRID, work)
    assert list(work.iterdir()) == []
    far = _write(tmp_path, [shapely.box(5000, 5000, 5010, 5010)] * 30, "far.geojson")
    with pytest.warns(UserWarning), pytest.raises(InputError, match="no building footprint"):
        open_footprints(far, GRID, work)
    assert list(work.iterdir()) == []


def test_damage_by_runs_with_the_scene_references_is_the_damage_of_all():
    rng = np.random.default_rng(3)
    n = 300
    f = pd.DataFrame(
        {
            "valid_fraction": rng.uniform(0.3, 1, n),
            "aln_before": rng.uniform(0.1, 0.6, n),
            "aln_after": rng.uniform(0.0, 0.6, n),
            "colour_angle": rng.uniform(0.5, 4, n),
            "lit_fraction": rng.uniform(0, 1, n),
            "tex_before": rng.uniform(0.5, 2, n),
            "tex_after": rng.uniform(0.5, 4, n),
            **{
                f"shadow_{a}_{d}": rng.normal(0.1, 0.05, n)
                for d in ("before", "after")
                for a in "xy"
            },
        }
    )
    whole = damage_from_features(f, 0.5)
    refs = damage_refs(f)
    assert refs.use_colour and refs.texture is not None and refs.shadow is not None
    runs = pd.concat([damage_from_features(f.iloc[i : i + 37], 0.5, refs) for i in range(0, n, 37)])
    assert runs.equals(whole)
    # a run alone measures its own references: not the scene's
    alone = damage_from_features(f.iloc[:37], 0.5)
    assert not alone["evidence"].equals(whole["evidence"].iloc[:37])
