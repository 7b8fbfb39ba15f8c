"""Per-footprint damage scoring: synthetic tiles with known outcomes and the xBD Joplin pair."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numba
import numpy as np
import pandas as pd
import pytest
import shapely
import shapely.affinity
import shapely.wkt
from scipy import ndimage as ndi

from fortmap.detect.footprint_features import _is_ring_end
from fortmap.detect.footprints import (
    FEATURE_COLUMNS,
    damage_from_features,
    footprint_features,
    footprint_halo_px,
)
from fortmap.errors import InputError

GSD = 0.5
PLOT = 64  # pixels per plot (32 m)


def _shared_data() -> Path:
    env = os.environ.get("FORTMAP_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _town(n_side: int = 4, seed: int = 0, shadow: float = 0.5, shadow_px: int = 3):
    """Grey ground with one flat-roofed 12-18 m building per plot; (image (3,H,W), polys, boxes).

    Each building casts a shadow ``shadow_px`` long, ``shadow`` times as bright as the ground.
    """
    rng = np.random.default_rng(seed)
    size = n_side * PLOT
    ground = ndi.gaussian_filter(rng.random((size, size)), 3) * 0.15 + 0.3
    img = np.repeat(ground[None], 3, 0).astype(np.float32)
    polys, boxes = [], []
    for i in range(n_side):
        for j in range(n_side):
            h, w = (int(v) for v in rng.integers(24, 36, 2))
            r0, c0 = i * PLOT + (PLOT - h) // 2, j * PLOT + (PLOT - w) // 2
            img[:, r0 : r0 + h, c0 : c0 + w] = rng.uniform(0.55, 0.85)
            # A shadow strip on the south-east side: what moves when the sun does.
            img[:, r0 + h : r0 + h + shadow_px, c0 + 2 : c0 + w + 2] *= shadow
            polys.append(shapely.box(c0, r0, c0 + w, r0 + h))
            boxes.append((r0, c0, h, w))
    return img, polys, boxes


def _rubble(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Cluttered debris: mixed materials (brick, concrete, wood) at 1-2 px scale, every band
    on its own, so brightness and colour both vary and edges run in every direction."""
    return (ndi.gaussian_filter(rng.random((3, h, w)), (0, 0.8, 0.8)) - 0.5) * 1.2 + 0.45


def _raze(img: np.ndarray, boxes, which, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = img.copy()
    for k in which:
        r0, c0, h, w = boxes[k]
        # Debris spreads a few metres beyond the walls and the shadow disappears.
        r0, c0, h, w = r0 - 4, c0 - 4, h + 8, w + 8
        out[:, r0 : r0 + h, c0 : c0 + w] = _rubble(rng, h, w)
    return out


def _score(before, after, polys, valid=None):
    if valid is None:
        valid = np.ones(before.shape[1:], bool)
    f = footprint_features(before, after, valid, polys, GSD)
    return f, damage_from_features(f, GSD)


def test_halo_px_covers_lean_allowance():
    assert footprint_halo_px(0.5) >= 8
    assert footprint_halo_px(0.3) > footprint_halo_px(0.5)
    with pytest.raises(InputError):
        footprint_halo_px(0.0)


def test_roof_that_stays_is_intact_and_rubble_is_destroyed():
    before, polys, boxes = _town()
    razed = [1, 4, 6, 11, 13]
    rng = np.random.default_rng(5)
    after = _raze(before, boxes, razed) + rng.normal(0, 0.01, before.shape).astype(np.float32)
    f, d = _score(before, after, polys)
    truth = np.isin(np.arange(len(polys)), razed)
    assert list(d["damage"][truth]) == ["destroyed"] * len(razed)
    assert (d["damage"][~truth] == "intact").all()
    assert d["score"][truth].min() > 0.5 > d["score"][~truth].max()
    # Structure measures agree with what was drawn: rubble has no preferred direction.
    assert f["aln_after"][truth].max() < 0.2 < f["aln_after"][~truth].min()


def test_illumination_change_alone_does_not_flag():
    before, polys, boxes = _town(seed=2)
    after = np.clip(before * 0.7 + 0.15, 0, 1) ** 1.5  # gain, offset (haze) and gamma
    # The sun moved: old shadows gone, new ones on the north-west side.
    after = after.copy()
    for r0, c0, h, w in boxes:
        after[:, r0 + h : r0 + h + 3, c0 + 2 : c0 + w + 2] = after[
            :, r0 + h + 4, c0 + 2, None, None
        ]
        after[:, r0 - 3 : r0, c0 - 2 : c0 + w - 2] *= 0.5
    after += np.random.default_rng(3).normal(0, 0.01, after.shape).astype(np.float32)
    _, d = _score(before, after.astype(np.float32), polys)
    assert (d["damage"] == "intact").all()
    assert d["score"].max() < 0.2


def test_roof_shifted_within_lean_allowance_is_intact():
    before, polys, _ = _town(seed=3)
    # Every roof displaced 3 m (6 px) as in a 25-30 degree off-nadir view, plus 1 px misfit.
    after = np.roll(before, (6, -4), axis=(1, 2))
    _, d = _score(before, after, polys)
    assert (d["damage"] == "intact").all()


def test_output_columns_and_ranges():
    before, polys, boxes = _town(n_side=3, seed=4)
    after = _raze(before, boxes, [0, 4])
    f, d = _score(before, after, polys)
    assert list(f.columns) == list(FEATURE_COLUMNS)
    assert len(f) == len(polys) == len(d)
    assert f["valid_fraction"].between(0, 1).all()
    assert f[["aln_before", "aln_after"]].abs().le(1).all().all()
    assert (f["area_px"] > 0).all()
    assert d["score"].between(0, 1).all()
    assert set(d["damage"]) <= {"intact", "damaged", "destroyed"}
    ev = json.loads(d["evidence"].iloc[0])
    assert {"retained", "loss", "aln_before", "aln_after", "scene_reference"} <= set(ev)


def test_clouded_footprint_is_left_intact_with_zero_score():
    before, polys, boxes = _town(n_side=3, seed=6)
    after = _raze(before, boxes, [0, 4])
    valid = np.ones(before.shape[1:], bool)
    r0, c0, h, w = boxes[4]
    valid[r0 - 12 : r0 + h + 12, c0 - 12 : c0 + w + 12] = False
    f, d = _score(before, after, polys, valid)
    assert f["valid_fraction"].iloc[4] < 0.5
    assert d["damage"].iloc[4] == "intact" and d["score"].iloc[4] == 0.0
    assert json.loads(d["evidence"].iloc[4])["too_little_valid"] is True
    assert d["damage"].iloc[0] == "destroyed"


def test_edge_cases_and_bad_input():
    before, polys, _ = _town(n_side=2)
    valid = np.ones(before.shape[1:], bool)
    empty = footprint_features(before, before, valid, [], GSD)
    assert list(empty.columns) == list(FEATURE_COLUMNS) and len(empty) == 0
    assert len(damage_from_features(empty, GSD)) == 0
    # A footprint hanging over the tile edge is clipped, not an error; a single band works.
    edge = [shapely.box(-10, -10, 20, 20), *polys]
    f = footprint_features(before[:1], before[:1], valid, edge, GSD)
    assert 0 < f["valid_fraction"].iloc[0] <= 1
    with pytest.raises(InputError):
        footprint_features(before, before[:, :-1], valid, polys, GSD)
    with pytest.raises(InputError):
        damage_from_features(pd.DataFrame({"x": [1.0]}), GSD)


@pytest.mark.realdata
def test_joplin_destroyed_versus_rest():
    """xBD Joplin: destroyed vs every other class; nothing is fitted to these labels.

    Measured (see benchmarks/bench_xbd_footprints.py): AUC 0.892, F1 0.866 (P 0.913, R 0.824).
    """
    from PIL import Image

    from fortmap.align.radiometry import fit_band_maps

    root = _shared_data() / "xbd-joplin"
    if not root.exists():
        pytest.skip(f"shared data not available: {root} (set FORTMAP_SHARED_DATA)")
    stem = "joplin-tornado_00000000"

    def img(kind):
        p = root / "images" / f"{stem}_{kind}_disaster.png"
        return np.asarray(Image.open(p).convert("RGB"), np.float32).transpose(2, 0, 1)

    def feats(kind):
        return json.loads((root / "labels" / f"{stem}_{kind}_disaster.json").read_text())[
            "features"
        ]["xy"]

    pre, post = img("pre"), img("post")
    sub = {f["properties"]["uid"]: f["properties"]["subtype"] for f in feats("post")}
    polys = [shapely.wkt.loads(f["wkt"]) for f in feats("pre")]
    labels = np.array([sub[f["properties"]["uid"]] for f in feats("pre")])
    valid = np.ones(pre.shape[1:], bool)
    m = fit_band_maps(pre, post, valid)
    b = pre * m.before_scale[:, None, None] + m.before_offset[:, None, None]
    a = post * m.after_scale[:, None, None] + m.after_offset[:, None, None]
    d = damage_from_features(footprint_features(b, a, valid, polys, 0.45), 0.45)
    keep = labels != "un-classified"
    y = labels[keep] == "destroyed"
    s = d["score"].to_numpy()[keep]
    ranks = pd.Series(s).rank().to_numpy()
    auc = (ranks[y].sum() - y.sum() * (y.sum() + 1) / 2) / (y.sum() * (~y).sum())
    p = (d["damage"] == "destroyed").to_numpy()[keep]
    tp = (p & y).sum()
    f1 = 2 * tp / (p.sum() + y.sum())
    assert auc >= 0.86, auc
    assert f1 >= 0.83, f1
    # The same image as its own after image: nothing may be flagged.
    d0 = damage_from_features(footprint_features(b, b, valid, polys, 0.45), 0.45)
    assert (d0["damage"] != "destroyed").all()


def test_colour_angle_sees_rubble_not_a_moved_shadow():
    before, polys, boxes = _town(seed=7)
    tint = np.array([1.0, 0.9, 0.75], np.float32)[:, None, None]
    before = np.clip(before * tint, 0, 1)  # roofs and ground with some colour
    after = _raze(before, boxes, [2, 9])
    # A neighbour's new shadow over half of roof 5: darker and bluish, nothing razed.
    r0, c0, h, w = boxes[5]
    after[:, r0 : r0 + h // 2, c0 : c0 + w] *= np.array([0.18, 0.2, 0.23])[:, None, None]
    after += np.random.default_rng(8).normal(0, 0.01, after.shape)  # sensor noise
    f, d = _score(before, after.astype(np.float32), polys)
    ang = f["colour_angle"].to_numpy()
    assert ang[[2, 9]].min() > 3 * np.median(ang)
    # Shadowed pixels are left out, so the half-shadowed roof keeps a typical angle.
    assert ang[5] < 2 * np.median(ang)
    assert f["lit_fraction"].iloc[5] < 0.7
    assert list(d["damage"].iloc[[2, 9]]) == ["destroyed", "destroyed"]
    assert d["damage"].iloc[5] == "intact"


def _lookalike_raze(before, boxes, which, contrast: float, seed: int = 4) -> np.ndarray:
    """Rubble of the roof's own colour: brightness lumps at 1-2 px, bands moving together
    (the tan roof razed to tan debris that colour alone barely sees); its shadow is gone."""
    rng = np.random.default_rng(seed)
    after = before.copy()
    for k in which:
        r0, c0, h, w = boxes[k]
        roof = before[:, r0 + h // 2, c0 + w // 2]
        lum = ndi.gaussian_filter(rng.standard_normal((h + 8, w + 8)), 0.8)
        patch = roof[:, None, None] * (1 + contrast * lum / lum.std())[None]
        after[:, r0 - 4 : r0 + h + 4, c0 - 4 : c0 + w + 4] = patch
    return after + rng.normal(0, 0.01, after.shape).astype(np.float32)


def _tinted_town(seed: int):
    before, polys, boxes = _town(n_side=5, seed=seed, shadow=0.25, shadow_px=10)
    tint = np.array([1.0, 0.9, 0.75], np.float32)[:, None, None]
    return np.clip(before * tint, 0, 1).astype(np.float32), polys, boxes


def test_lookalike_rubble_found_by_texture_and_lost_shadow():
    before, polys, boxes = _tinted_town(seed=11)
    razed = [3, 6, 12, 18, 21]
    after = _lookalike_raze(before, boxes, razed, contrast=0.3)
    f, d = _score(before, after, polys)
    truth = np.isin(np.arange(len(polys)), razed)
    ev = pd.DataFrame([json.loads(e) for e in d["evidence"]])
    # Each cue says what was drawn: rubble is rough where the roof was smooth, and the shadow
    # south of the building is gone; standing buildings keep both.
    assert ev["texture_change"][truth].min() > 2.0 > 1.3 > ev["texture_change"][~truth].max()
    assert ev["shadow_loss"][truth].min() > 0.4 > 0.2 > ev["shadow_loss"][~truth].abs().max()
    assert (d["damage"][truth] == "destroyed").all()
    assert (d["damage"][~truth] == "intact").all()
    # Structure and colour alone (the cues unknown) leave these look-alikes in the damaged band.
    cues = ["tex_before", "tex_after"] + [
        f"shadow_{a}_{t}" for a in ("x", "y") for t in ("before", "after")
    ]
    d0 = damage_from_features(f.drop(columns=cues), GSD)
    assert (d0["damage"][truth] == "damaged").all()
    assert (d["score"][truth].to_numpy() > d0["score"][truth].to_numpy()).all()


def test_texture_or_shadow_alone_does_not_flag():
    before, polys, boxes = _tinted_town(seed=12)
    after = before.copy()
    # Building 4 loses its shadow (the ground beside it repaved), building 8 gets a rough
    # roof (gravel), building 15 both. The gravel takes some aligned structure away (a
    # "damaged" call is fair), but with walls and colour kept none may be called destroyed.
    rng = np.random.default_rng(6)
    for k in (4, 15):
        r0, c0, h, w = boxes[k]
        after[:, r0 + h : r0 + h + 10, c0 + 2 : c0 + w + 2] = after[:, r0 + h + 12, c0, None, None]
    for k in (8, 15):
        r0, c0, h, w = boxes[k]
        lum = ndi.gaussian_filter(rng.standard_normal((h - 6, w - 6)), 0.8)
        after[:, r0 + 3 : r0 + h - 3, c0 + 3 : c0 + w - 3] *= (1 + 0.2 * lum / lum.std())[None]
    after += rng.normal(0, 0.01, after.shape).astype(np.float32)
    f, d = _score(before, after, polys)
    ev = pd.DataFrame([json.loads(e) for e in d["evidence"]])
    assert ev["shadow_loss"][[4, 15]].min() > 0.5
    assert ev["texture_change"][[8, 15]].min() > 2.0
    assert (d["damage"] != "destroyed").all()
    assert d["damage"][4] == "intact"


def test_shadow_harmonic_points_away_from_the_sun():
    before, polys, boxes = _tinted_town(seed=13)
    # The after sun is in the south: shadows fall north of each building instead.
    after = before.copy()
    for r0, c0, h, w in boxes:
        after[:, r0 + h : r0 + h + 10, c0 + 2 : c0 + w + 2] = after[:, r0 + h + 12, c0, None, None]
        after[:, r0 - 8 : r0, c0 - 2 : c0 + w - 2] *= 0.25
    after += np.random.default_rng(7).normal(0, 0.01, after.shape).astype(np.float32)
    f, d = _score(before, after, polys)
    # Rows run south (+y): the before shadows lie at +y, the after ones at -y.
    assert (f["shadow_y_before"] > 0.1).all()
    assert (f["shadow_y_after"] < -0.1).all()
    assert (f[["shadow_x_before", "shadow_x_after"]].abs() < 0.05).all().all()
    # Each date is measured against its own shadow direction: nothing lost, nothing flagged.
    ev = pd.DataFrame([json.loads(e) for e in d["evidence"]])
    assert ev["shadow_loss"].abs().max() < 0.3
    assert (d["damage"] == "intact").all()


def _shapes(seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(12):
        x, y = rng.uniform(5, 50, 2)
        b = shapely.box(x, y, x + rng.uniform(3, 12), y + rng.uniform(3, 9))
        out.append(shapely.affinity.rotate(b, rng.uniform(0, 90)))
    out.append(shapely.box(10, 10, 30, 30).difference(shapely.box(15, 15, 20, 20)))  # a hole
    out.append(shapely.MultiPolygon([shapely.box(1, 1, 4, 4), shapely.box(6, 6, 9, 9)]))
    out.append(shapely.Polygon())
    out.append(None)
    return out


def test_gradient_fields_kernel_is_bit_exact_against_scipy_and_numpy():
    from fortmap.detect.footprint_features import _gradient_fields_numpy, gradient_fields

    rng = np.random.default_rng(5)
    for shape in [(1, 1), (2, 7), (9, 3), (40, 61), (3, 200), (75, 2)]:
        signed = rng.normal(0.0, 3.0, shape).astype(np.float32)
        for g in (rng.random(shape).astype(np.float32), np.zeros(shape, np.float32), signed):
            for got, ref in zip(
                gradient_fields(g, 0.7), _gradient_fields_numpy(g, 0.7), strict=True
            ):
                assert got.dtype == ref.dtype
                assert np.array_equal(got.view(np.uint32), ref.view(np.uint32))


def test_flat_rings_and_axis_angles_equal_the_per_footprint_ones():
    from fortmap.detect.footprints import _all_rings, _axis_angle, _axis_angles, _rings

    fps = _shapes()
    only_polygons = [p for p in fps if isinstance(p, shapely.Polygon) and not p.is_empty]
    for some in (fps, only_polygons):  # the general path, and the all-polygon one
        xy, ring_start, fp_ring = _all_rings(some)
        assert len(fp_ring) == len(some) + 1
        for i, p in enumerate(some):
            ref = _rings(p) if p is not None else []
            rings = range(fp_ring[i], fp_ring[i + 1])
            got = [xy[ring_start[r] : ring_start[r + 1]] for r in rings]
            assert len(got) == len(ref)
            assert all(np.array_equal(a, b) for a, b in zip(got, ref, strict=True))
    use = np.array([p is not None and not p.is_empty for p in fps])
    ang = _axis_angles(fps, use)
    assert [ang[i] for i in np.flatnonzero(use)] == [
        _axis_angle(fps[i]) for i in np.flatnonzero(use)
    ]


@numba.njit(cache=True, nogil=True, fastmath=True)
def _region_stats_reference(
    xy: np.ndarray,
    ring_start: np.ndarray,
    c0: int,
    r0: int,
    c1: int,
    r1: int,
    dil: float,
    theta: float,
    fields_b: tuple,
    fields_a: tuple,
    grey_b: np.ndarray,
    grey_a: np.ndarray,
    valid: np.ndarray,
    floor_b: float,
    floor_a: float,
    dark_b: np.ndarray,
    dark_a: np.ndarray,
    ring: float,
):  # pragma: no cover - compiled
    """``region_stats`` pixel by pixel: the crossing test and the segment search redone for
    every pixel, as the module did before (same flags)."""
    # out: n_region, n_valid, wb, wb*cos, wa, wa*cos, n_inside, n_inside_valid, |diff| inside,
    #      n_ring_valid, dark_b*ux, dark_b*uy, dark_a*ux, dark_a*uy
    out = np.zeros(14)
    if r1 <= r0 or c1 <= c0:
        return out
    mag_b, c4_b, s4_b = fields_b
    mag_a, c4_a, s4_a = fields_a
    c4, s4 = math.cos(4.0 * theta), math.sin(4.0 * theta)
    nr = ring_start.shape[0] - 1
    dil2 = dil * dil
    ring2 = min(ring, dil) ** 2
    for r in range(r0, r1):
        py = r + 0.5
        for c in range(c0, c1):
            px = c + 0.5
            inside = False
            for k in range(nr):
                for i in range(ring_start[k], ring_start[k + 1] - 1):
                    y1, y2 = xy[i, 1], xy[i + 1, 1]
                    if (y1 > py) != (y2 > py):
                        x1, x2 = xy[i, 0], xy[i + 1, 0]
                        if px < x1 + (py - y1) * (x2 - x1) / (y2 - y1):
                            inside = not inside
            if not inside:
                best, bx, by = np.inf, 0.0, 0.0
                for i in range(xy.shape[0] - 1):
                    if _is_ring_end(ring_start, i):
                        continue
                    x1, y1 = xy[i, 0], xy[i, 1]
                    dx, dy = xy[i + 1, 0] - x1, xy[i + 1, 1] - y1
                    ll = dx * dx + dy * dy
                    t = 0.0
                    if ll > 0:
                        t = min(1.0, max(0.0, ((px - x1) * dx + (py - y1) * dy) / ll))
                    ex, ey = px - x1 - t * dx, py - y1 - t * dy
                    d2 = ex * ex + ey * ey
                    if d2 < best:
                        best, bx, by = d2, ex, ey
                if best > dil2:
                    continue
                if best <= ring2 and best > 0 and valid[r, c]:
                    inv = 1.0 / math.sqrt(best)
                    out[9] += 1
                    if dark_b[r, c]:
                        out[10] += bx * inv
                        out[11] += by * inv
                    if dark_a[r, c]:
                        out[12] += bx * inv
                        out[13] += by * inv
            out[0] += 1
            if inside:
                out[6] += 1
            if not valid[r, c]:
                continue
            out[1] += 1
            wb = max(mag_b[r, c] - floor_b, 0.0)
            wa = max(mag_a[r, c] - floor_a, 0.0)
            out[2] += wb
            out[3] += wb * (c4_b[r, c] * c4 + s4_b[r, c] * s4)
            out[4] += wa
            out[5] += wa * (c4_a[r, c] * c4 + s4_a[r, c] * s4)
            if inside:
                out[7] += 1
                out[8] += abs(grey_a[r, c] - grey_b[r, c])
    return out


def test_region_stats_all_equals_one_call_per_footprint():
    from fortmap.detect.footprint_features import gradient_fields, region_stats, region_stats_all
    from fortmap.detect.footprints import _all_rings, _axis_angle

    rng = np.random.default_rng(2)
    gb, ga = (rng.random((64, 64)).astype(np.float32) for _ in range(2))
    valid = rng.random((64, 64)) > 0.1
    fb, fa = gradient_fields(gb, 0.7), gradient_fields(ga, 0.7)
    fps = [p for p in _shapes(3) if p is not None and not p.is_empty]
    xy, rs, fr = _all_rings(fps)
    boxes = np.array([[max(int(b[0]) - 3, 0), max(int(b[1]) - 3, 0), 64, 64] for b in
                      shapely.bounds(np.array(fps, dtype=object))], np.int64)  # fmt: skip
    th = np.array([_axis_angle(p) for p in fps])
    args = (fb, fa, gb, ga, valid, 0.01, 0.02, gb < 0.3, ga < 0.3, 6.0)
    got = region_stats_all(xy, rs, fr[:-1], fr[1:], boxes, th, 8.0, *args)
    for i in range(len(fps)):
        p0, p1 = rs[fr[i]], rs[fr[i + 1]]
        one = (xy[p0:p1], rs[fr[i] : fr[i + 1] + 1] - p0, *boxes[i], 8.0, th[i], *args)
        assert np.array_equal(got[i], region_stats(*one))
        # row by row, the same numbers as pixel by pixel
        assert np.array_equal(got[i], _region_stats_reference(*one))


def test_rasterize_shapes_rasterise_like_geo_interface():
    from rasterio import features as rio_features

    from fortmap.io.grids import rasterize_shapes

    fps = [p for p in _shapes(4) if p is not None and not p.is_empty]
    geoms = np.array(fps, dtype=object)
    got = rio_features.rasterize(
        rasterize_shapes(geoms, range(1, len(fps) + 1)), out_shape=(70, 70)
    )
    ref = rio_features.rasterize(
        list(zip(fps, range(1, len(fps) + 1), strict=True)), out_shape=(70, 70)
    )
    assert np.array_equal(got, ref) and got.any()


def test_label_medians_by_selection_equal_the_sorted_middle():
    from fortmap.detect.footprint_features import _label_medians

    rng = np.random.default_rng(11)
    lab = rng.integers(0, 8, (40, 50)).astype(np.int32)
    counts = np.bincount(lab.ravel(), minlength=10)[1:]
    vals = rng.random((40, 50)).round(1)  # ties
    vals[0, :5] = np.nan  # a label with NaN keeps the sort's answer (NaNs sort last)
    med = _label_medians(lab, vals, counts)
    for k in range(1, 10):
        x = np.sort(vals[lab == k])
        ref = 0.5 * (x[(x.size - 1) // 2] + x[x.size // 2]) if x.size else np.nan
        assert np.array_equal(med[k - 1], ref, equal_nan=True)


def test_evidence_strings_equal_one_dumps_per_row():
    # the evidence is built from columns rounded once; it must read as one json.dumps of the
    # row's values rounded one by one (4 decimals, None for NaN)
    rng = np.random.default_rng(5)
    n = 300
    f = pd.DataFrame(rng.random((n, len(FEATURE_COLUMNS))), columns=list(FEATURE_COLUMNS))
    for c in FEATURE_COLUMNS:
        f.loc[rng.random(n) < 0.1, c] = np.nan
    f["valid_fraction"] = rng.random(n)
    d = damage_from_features(f, 0.5)

    def r4(v):
        v = float(v)
        return round(v, 4) if np.isfinite(v) else None

    for i in range(n):
        ev = json.loads(d["evidence"].iloc[i])
        for c in ("aln_before", "aln_after", "valid_fraction", "edge_before", "colour_angle"):
            assert ev[c] == r4(f[c].iloc[i])
        ok = ev.get("too_little_valid") is None
        assert (ev["retained"] is None) != ok
        assert d["evidence"].iloc[i] == json.dumps(ev, separators=(",", ":"))


def test_interior_medians_equal_per_label_numpy_medians():
    from fortmap.detect.pixel_kernels import _interior_medians

    rng = np.random.default_rng(12)
    lab = rng.integers(0, 7, (30, 40)).astype(np.int32)
    lab[lab == 4] = 0  # a label with no pixel: NaN
    counts = np.bincount(lab.ravel(), minlength=8)[1:]
    mb = rng.random((30, 40)).astype(np.float32)
    ma = rng.random((30, 40)).astype(np.float32).round(1)  # ties
    before = rng.random((3, 30, 40)).astype(np.float32)
    after = rng.random((3, 30, 40)).astype(np.float32)
    before[1, 0, :] = np.nan  # a non-finite band counts as 0, as in the angle's definition
    b = np.nan_to_num(before.astype(np.float64), nan=0.0) + 0.01
    a = after.astype(np.float64) + 0.01
    cs = (b * a).sum(0) / np.sqrt(np.maximum((b * b).sum(0) * (a * a).sum(0), 1e-12))
    ang = np.degrees(np.arccos(np.clip(cs, -1.0, 1.0)))
    for angles in (True, False):
        med = _interior_medians(lab, mb, ma, before, after, counts, 0.01, angles)
        for k in range(1, 8):
            on = lab == k
            if not on.any():
                assert np.isnan(med[:, k - 1]).all()
                continue
            assert med[0, k - 1] == np.median(mb[on].astype(np.float64))
            assert med[1, k - 1] == np.median(ma[on].astype(np.float64))
            if angles:
                assert med[2, k - 1] == pytest.approx(np.median(ang[on]), abs=1e-9)
            else:
                assert np.isnan(med[2, k - 1])


def _interior_colour_reference(before, after, valid, fps, erode_px, thr):
    """:func:`interior_colour` with rasterio's labels and numpy's medians (offset 0)."""
    from rasterio import features as rio_features

    from fortmap.detect.footprint_features import ANGLE_EPS, TEXTURE_FLOOR, gradients

    gb, ga = before.mean(0, dtype=np.float32), after.mean(0, dtype=np.float32)
    mb, ma = gradients(gb, 0.7)[0], gradients(ga, 0.7)[0]
    lit = valid & (gb > np.float32(thr[0])) & (ga > np.float32(thr[1]))
    b = before.astype(np.float64) + ANGLE_EPS
    a = after.astype(np.float64) + ANGLE_EPS
    cs = (b * a).sum(0) / np.sqrt(np.maximum((b * b).sum(0) * (a * a).sum(0), 1e-12))
    ang = np.degrees(np.arccos(np.clip(cs, -1.0, 1.0)))
    out = np.full((len(fps), 4), np.nan)
    out[:, 1] = 0.0
    for i, p in enumerate(fps):
        if p is None or p.is_empty:
            continue
        small = shapely.buffer(p, -erode_px, quad_segs=1)
        shape = small if small.area >= 4.0 else p
        on = rio_features.rasterize([(shape, 1)], out_shape=valid.shape).astype(bool)
        # later footprints overwrite earlier ones, as in one rasterisation of all of them
        for q in fps[i + 1 :]:
            if q is not None and not q.is_empty:
                sq = shapely.buffer(q, -erode_px, quad_segs=1)
                sq = sq if sq.area >= 4.0 else q
                on &= ~rio_features.rasterize([(sq, 1)], out_shape=valid.shape).astype(bool)
        n_in, sel = (on & valid).sum(), on & lit
        out[i, 1] = sel.sum() / n_in if n_in else 0.0
        if sel.any():
            out[i, 2] = max(np.median(mb[sel].astype(np.float64)), TEXTURE_FLOOR)
            out[i, 3] = max(np.median(ma[sel].astype(np.float64)), TEXTURE_FLOOR)
            out[i, 0] = np.median(ang[sel])
    return out


def test_interior_colour_equals_rasterio_labels_and_numpy_medians():
    from fortmap.detect.footprint_features import interior_colour

    rng = np.random.default_rng(21)
    before = rng.random((3, 70, 70)).astype(np.float32)
    after = rng.random((3, 70, 70)).astype(np.float32)
    valid = rng.random((70, 70)) > 0.1
    gb, ga = before.mean(0, dtype=np.float32), after.mean(0, dtype=np.float32)
    fps = _shapes(4)
    polygons = [p for p in fps if isinstance(p, shapely.Polygon) and not p.is_empty]
    # plain polygons (the compiled fill) and a mix with a multi-polygon, empty and None
    # (rasterio's fill), some clipped by the border
    polygons.append(shapely.box(60, 62, 75, 80))
    for some in (polygons, fps, []):
        got = interior_colour(before, after, valid, gb, ga, some, (0, 0), 1.0, (0.35, 0.3))
        ref = _interior_colour_reference(before, after, valid, some, 1.0, (0.35, 0.3))
        assert got.shape == (len(some), 4)
        assert np.array_equal(got[:, 1:], ref[:, 1:], equal_nan=True)
        assert np.allclose(got[:, 0], ref[:, 0], atol=1e-9, equal_nan=True)
        assert np.isfinite(got[:, 2]).sum() >= min(len(some), 5)


def test_region_stats_row_search_equals_pixel_search_on_awkward_outlines():
    # repeated vertices (zero-length segments), a hole, a sliver, outlines off the array
    # and boxes cut by the border: the row-wise search against the pixel-by-pixel one
    from fortmap.detect.footprint_features import gradient_fields, region_stats
    from fortmap.detect.footprints import _all_rings, _axis_angle

    rng = np.random.default_rng(8)
    gb, ga = (rng.random((48, 56)).astype(np.float32) for _ in range(2))
    valid = rng.random((48, 56)) > 0.2
    fb, fa = gradient_fields(gb, 0.7), gradient_fields(ga, 0.7)
    fps = [
        shapely.Polygon([(10.3, 5.2), (20.7, 5.2), (20.7, 5.2), (20.7, 17.9), (10.3, 17.9)]),
        shapely.box(20, 20, 40, 40).difference(shapely.box(26.5, 26.5, 31.5, 33.5)),
        shapely.Polygon([(3, 30), (30.5, 31.25), (3, 31)]),
        shapely.affinity.rotate(shapely.box(44, -6, 62, 8), 27),
        shapely.Polygon([(5, 40), (5, 40), (12.25, 46.5), (5, 46.5), (5, 40)]),
    ]
    args = (fb, fa, gb, ga, valid, 0.01, 0.02, gb < 0.4, ga < 0.4, 6.0)
    for p in fps:
        xy, rs, _ = _all_rings([p])
        b = np.floor(np.array(p.bounds)) + [-8, -8, 9, 9]
        c0, r0 = max(int(b[0]), 0), max(int(b[1]), 0)
        c1, r1 = min(int(b[2]), 56), min(int(b[3]), 48)
        one = (xy, rs, c0, r0, c1, r1, 8.0, _axis_angle(p), *args)
        got = region_stats(*one)
        assert got[0] > 0 and got[9] > 0
        assert np.array_equal(got, _region_stats_reference(*one))


def test_rounded_texts_equal_round_then_dumps_per_value():
    from fortmap.detect.footprint_damage import _rounded_texts

    rng = np.random.default_rng(9)
    n = 20000
    mag = 10.0 ** rng.uniform(-7, 12, n)
    v = mag * rng.choice([-1.0, 1.0], n)
    # exact ties at the last kept decimal and just beside them, integers, zeros
    half = (rng.integers(-(10**6), 10**6, 3000) + 0.5) / 10**4
    v = np.concatenate([v, half, np.nextafter(half, 0), np.nextafter(half, 9),
                        rng.integers(-50, 50, 200).astype(float), [0.0, -0.0, 1e-5, -1e-5,
                        5e-5, -5e-5, 0.00005000001, 9.99995, 1e10, -1e10, 1e16, 123456.78905,
                        np.inf, -np.inf, np.nan]])  # fmt: skip
    for nd in (3, 4):
        got = _rounded_texts(v, nd)
        ref = [json.dumps(round(x, nd)) if np.isfinite(x) else "null" for x in v.tolist()]
        assert got == ref
        use = rng.random(len(v)) > 0.2
        got = _rounded_texts(v, nd, use)
        ref = [
            json.dumps(round(x, nd)) if u else "null" for x, u in zip(v.tolist(), use, strict=True)
        ]
        assert got == ref
    assert _rounded_texts(np.zeros(0), 4) == []


def test_scene_measures_replace_the_tiles_own():
    from fortmap.detect.footprint_features import noise_gradient, shadow_threshold
    from fortmap.detect.footprints import SMOOTH_PX, FootprintScene, _grey, footprint_scene

    rng = np.random.default_rng(4)
    before = (0.4 + rng.normal(0, 0.02, (3, 200, 400))).astype(np.float32)
    before[:, 50:90, 50:90] = 0.8  # a roof
    before[:, 90:100, 50:90] = 0.1  # its shadow
    before[:, :, 250:] = 0.05 + rng.normal(0, 0.01, (3, 200, 150))  # dark water far off
    after = before.copy()
    after[:, 50:90, 50:90] = 0.4 + rng.normal(0, 0.1, (3, 40, 40))  # razed
    valid = np.ones((200, 400), bool)
    sc = footprint_scene(before, after, valid)
    assert sc.floor_b == noise_gradient(_grey(before), valid, SMOOTH_PX)
    assert sc.shadow_a == shadow_threshold(_grey(after), valid)
    roof = shapely.box(50, 50, 90, 90)
    other = shapely.box(330, 80, 350, 100)  # a footprint over the water
    # measured on the tile, the roof's features depend on what else the tile's footprints cover
    alone = footprint_features(before, after, valid, [roof], 0.5)
    with_other = footprint_features(before, after, valid, [roof, other], 0.5)
    assert not np.allclose(alone.iloc[0].to_numpy(), with_other.iloc[0].to_numpy())
    # with the scene's measures they do not
    a = footprint_features(before, after, valid, [roof], 0.5, sc)
    b = footprint_features(before, after, valid, [roof, other], 0.5, sc)
    assert np.allclose(a.iloc[0].to_numpy(), b.iloc[0].to_numpy(), equal_nan=True)
    # a scene whose shadows are darker than anything here sees no shadow beside the roof
    dark = FootprintScene(sc.floor_b, sc.floor_a, 0.0, 0.0)
    none = footprint_features(before, after, valid, [roof], 0.5, dark)
    cols = [c for c in a.columns if c.startswith("shadow_")]
    assert np.abs(alone[cols].to_numpy()).sum() > 0
    assert np.abs(none[cols].to_numpy()).sum() == 0
