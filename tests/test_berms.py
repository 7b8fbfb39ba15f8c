"""Berms: a DSM ridge, and a ridge seen in the image with sun-consistent flank shading."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from scipy import ndimage as ndi

from conftest import shared
from fortmap.detect.berm_grid import _block_means, _edge_distance
from fortmap.detect.berm_image import standing_distance
from fortmap.detect.berm_lighting import max_flank_contrast
from fortmap.detect.berms import (
    BermBounds,
    change_threshold,
    crest_offset,
    find_berms,
    flank_contrast,
    merge_pieces,
    min_flank_contrast,
    scene_berm_bounds,
)

GSD = 0.5


def _ridge(height: float, length_px: int = 100, width_px: float = 20.0) -> np.ndarray:
    """Heights (m) of a ridge along row 150, cols 100..100+length_px, parabolic section."""
    rows, cols = np.mgrid[0:300, 0:300].astype(np.float32)
    d = np.abs(rows + 0.5 - 150)
    inside = (cols >= 100) & (cols < 100 + length_px)
    return np.where(inside, height * np.clip(1 - (2 * d / width_px) ** 2, 0, None), 0.0)


def test_dsm_ridge_2m_over_50m():
    flat = np.full((300, 300), 350.0, np.float32)
    after = flat + _ridge(2.0)
    img = np.full((3, 300, 300), 0.4, np.float32)
    out = find_berms(img, img, np.ones((300, 300), bool), GSD, None, (0, 0, 300, 300),
                     dsm_before=flat, dsm_after=after)  # fmt: skip
    berms = [o for o in out if o[2]["kind"] == "berm"]
    assert len(berms) == 1
    line, score, attrs = berms[0]
    assert attrs["source"] == "dsm"
    assert 1.5 <= attrs["height_m"] <= 2.2
    assert 40 <= line.length * GSD <= 55
    assert line.distance(shapely.Point(150, 150)) < 4


def test_dsm_trench_is_a_ditch_and_a_low_mound_is_nothing():
    flat = np.full((300, 300), 350.0, np.float32)
    img = np.full((3, 300, 300), 0.4, np.float32)
    v = np.ones((300, 300), bool)
    out = find_berms(img, img, v, GSD, None, (0, 0, 300, 300), flat, flat - _ridge(1.8))
    assert [o[2]["kind"] for o in out] == ["ditch"]
    assert find_berms(img, img, v, GSD, None, (0, 0, 300, 300), flat, flat + _ridge(0.6)) == []


def test_flank_contrast_follows_the_sun():
    # a ridge along x with its south flank lit: sun to the south (azimuth 180)
    grey = np.full((100, 100), 0.4, np.float32)
    grey[51:58, :] = 0.6  # south flank (rows run south)
    grey[43:50, :] = 0.2  # north flank in shade
    line = shapely.LineString([(10, 50), (90, 50)])
    assert flank_contrast(grey, line, 8, 180.0) > 0.1
    assert flank_contrast(grey, line, 8, 0.0) < -0.1
    # sun along the ridge: flanks tell nothing
    assert abs(flank_contrast(grey, line, 8, 90.0)) < 0.05


def test_merge_pieces_joins_touching_crests():
    a = shapely.LineString([(0, 0), (10, 0)])
    b = shapely.LineString([(10, 0), (20, 0)])
    merged = merge_pieces([a, b])
    assert len(merged) == 1 and abs(merged[0].length - 20) < 1e-6


def _scene(
    sun_az: float,
    ridge: bool = True,
    width_m: float = 10.0,
    height_m: float = 3.0,
    elev: float = 40.0,
    old_ridge: bool = False,
):
    """Grass before; after a soil ridge (or a flat soil strip) along row 200, 0.5 m pixels,
    shaded Lambertian-wise under a sun at ``sun_az``, elevation ``elev`` deg. ``old_ridge``:
    the same ridge stood there before, grassed."""
    rng = np.random.default_rng(0)
    n = 400
    grass = np.array([0.26, 0.33, 0.17], np.float32)[:, None, None]
    soil = np.array([0.50, 0.40, 0.30], np.float32)[:, None, None]
    before = np.broadcast_to(grass, (3, n, n)).copy()
    before += rng.normal(0, 0.01, before.shape).astype(np.float32)
    rows, cols = np.mgrid[0:n, 0:n].astype(np.float32)
    d = (rows + 0.5 - 200) * GSD  # metres south of the crest
    half = width_m / 2
    on = (np.abs(d) < half) & (cols >= 80) & (cols < 320)
    h = height_m * np.clip(1 - (d / half) ** 2, 0, None) if ridge else np.zeros_like(d)
    dzdn = np.gradient(np.where(on, h, 0.0), GSD, axis=0) * -1  # slope towards north
    a, e = np.radians(sun_az), np.radians(elev)
    cos_i = (dzdn * -np.cos(a) * np.cos(e) + np.sin(e)) / np.sqrt(dzdn**2 + 1)
    light = 0.85 * np.clip(cos_i, 0, 1) + 0.17
    flat = 0.85 * np.sin(e) + 0.17
    after = before.copy()
    after[:, on] = (soil * light[None])[:, on]
    if old_ridge:
        before[:, on] = (grass * light[None] / flat)[:, on]
    return before, after


def _image_berms(before, after, sun_az, elev=40.0):
    v = np.ones(before.shape[1:], bool)
    return find_berms(before, after, v, GSD, sun_az, (0, 0, 400, 400), sun_elevation_deg=elev)


def test_image_ridge_lit_from_the_sun_side_is_a_berm():
    before, after = _scene(180.0)
    out = _image_berms(before, after, 180.0)
    assert len(out) == 1
    line, score, attrs = out[0]
    assert attrs["source"] == "image" and attrs["kind"] == "berm"
    assert line.length * GSD >= 80
    assert line.hausdorff_distance(shapely.LineString([(80, 200), (320, 200)])) < 20


def test_image_ridge_lit_against_the_sun_or_flat_soil_is_not():
    before, after = _scene(180.0)
    assert _image_berms(before, after, 0.0) == []  # lit flank faces away from the stated sun
    before, after = _scene(180.0, ridge=False)
    assert _image_berms(before, after, 180.0) == []  # fresh soil, but no relief
    before, after = _scene(180.0, width_m=60.0)
    assert _image_berms(before, after, 180.0) == []  # too wide: cleared ground


def test_a_ridge_lit_so_in_the_before_image_too_is_not_new():
    # an old grassed embankment freshly stripped to soil: the colour changed, the relief not
    before, after = _scene(180.0, old_ridge=True)
    assert _image_berms(before, after, 180.0) == []


def test_a_step_steeper_than_soil_can_stand_is_no_berm():
    # under a 65 deg sun a 3 m ridge's flanks stay within what earth at its angle of repose
    # shows; a fresh soil strip whose sun side is in full light and whose far side lies in a
    # wall's cast shadow (sky light only) is brighter against darker than any earthwork
    assert max_flank_contrast(65.0) < 0.5 and max_flank_contrast(40.0) == float("inf")
    before, after = _scene(180.0, elev=65.0)
    assert len(_image_berms(before, after, 180.0, elev=65.0)) == 1
    before, after = _scene(180.0, ridge=False, width_m=20.0, elev=65.0)
    soil = after[:, 180:220, 80:320] / (0.85 * np.sin(np.radians(65.0)) + 0.17)
    after[:, 200:220, 80:320] = soil[:, 20:]
    after[:, 180:200, 80:320] = 0.12 * soil[:, :20]
    assert _image_berms(before, after, 180.0, elev=65.0) == []


def test_a_grey_far_flank_is_not_the_soil_body():
    # the shaded side is concrete (a wall's foot, a road's kerb): shading keeps a material's
    # colour, so a grey flank beside a red one is two materials, not one ridge
    # (under a sun higher than the soil's angle of repose: no flank lies in its own shadow)
    before, after = _scene(180.0, elev=50.0)
    assert len(_image_berms(before, after, 180.0, elev=50.0)) == 1
    after[:, 180:200, 80:320] = after[:, 180:200, 80:320].mean(axis=0)[None]
    assert _image_berms(before, after, 180.0, elev=50.0) == []


def test_a_berm_running_along_the_sun_is_found_from_soil_and_change():
    # sun due east, ridge east-west: both flanks lit alike, lighting cannot tell
    before, after = _scene(90.0)
    out = _image_berms(before, after, 90.0)
    assert len(out) == 1 and out[0][0].length * GSD >= 80
    assert out[0][2]["evidence"]["lit_pieces"].startswith("0/")
    # the same strip where a cast shadow lay before: the light changed as a shadow's does
    before[:, 185:216, 80:320] *= 0.2
    assert _image_berms(before, after, 90.0) == []


def test_a_crest_does_not_run_on_over_a_road_left_bare():
    # the ridge stops either side of a road that stays clear asphalt: no berm across it
    before, after = _scene(180.0)
    asphalt = np.array([0.12, 0.12, 0.13], np.float32)[:, None, None]
    before[:, :, 190:210] = asphalt
    after[:, :, 190:210] = asphalt
    out = _image_berms(before, after, 180.0)
    assert len(out) == 2
    road = shapely.box(192, 0, 208, 400)
    assert all(not g.intersects(road) for g, _, _ in out)
    # covered with the berm's soil, the road is crossed
    before, after = _scene(180.0)
    before[:, :, 190:210] = asphalt
    out = _image_berms(before, after, 180.0)
    assert len(out) == 1 and out[0][0].intersects(road)


def test_min_flank_contrast_is_lower_under_a_high_sun():
    assert min_flank_contrast(70.0) < min_flank_contrast(45.0) < min_flank_contrast(20.0)
    assert 0.05 < min_flank_contrast(None) < 0.12


def test_ridge_running_obliquely_towards_the_sun_is_a_berm():
    # sun 75 deg off the ridge's normal (facing 0.26): both flanks nearly alike, but the
    # contrast per unit facing is still a 3 m ridge's
    before, after = _scene(255.0)
    out = _image_berms(before, after, 255.0)
    assert len(out) == 1
    assert out[0][0].length * GSD >= 80
    # the same scene judged under a sun on the other side is no ridge
    assert _image_berms(before, after, 75.0) == []


def test_crest_offset_moves_a_stray_line_back_onto_the_crest():
    _, after = _scene(180.0)
    grey = after.mean(axis=0)
    # a line 6 px (3 m) north of the crest (row 200), half-width 10 px: the crest is south,
    # towards the sun
    line = shapely.LineString([(100, 194), (300, 194)])
    shift = crest_offset(grey, line, 10.0, 180.0)
    assert 4.0 <= shift <= 8.0
    line = shapely.LineString([(100, 205), (300, 205)])
    assert -7.0 <= crest_offset(grey, line, 10.0, 180.0) <= -3.0


def test_change_threshold_needs_a_changed_population():
    rng = np.random.default_rng(2)
    noise = np.abs(rng.normal(0, 0.02, 20000))
    assert change_threshold(noise) is None  # Otsu would split the noise itself
    changed = np.r_[noise, rng.normal(0.4, 0.05, 1000)]
    thr = change_threshold(changed)
    assert thr is not None and 0.05 < thr < 0.4  # above the bulk, below the changes


def test_a_component_cut_by_the_image_edge_is_not_narrowed_by_it():
    # a 30 px wide band whose west part lies past the valid data: its crest's distance to the
    # component's edge must not be measured to the invalid pixels
    m = np.zeros((60, 60), bool)
    m[:, 5:35] = True
    valid = np.ones((60, 60), bool)
    valid[:, :8] = False
    m &= valid
    sl = (slice(0, 60), slice(0, 60))
    assert _edge_distance(m, sl, None)[30, 10] <= 3
    assert _edge_distance(m, sl, valid)[30, 10] >= 20


def test_a_berm_running_past_a_wide_changed_field_is_still_found():
    # a ploughed block wider than any berm touches the ridge's north flank near its east end:
    # one changed component, whose skeleton would wander into the block
    before, after = _scene(180.0)
    block = np.array([0.45, 0.36, 0.28], np.float32)[:, None]
    after[:, 60:192, 250:400] = block[:, :, None] + 0.01 * np.random.default_rng(1).normal(
        size=(3, 132, 150)
    ).astype(np.float32)
    out = _image_berms(before, after, 180.0)
    assert out, "the ridge beside the block is lost"
    near = [g for g, _, _ in out if g.distance(shapely.LineString([(80, 200), (240, 200)])) < 6]
    assert sum(g.length for g in near) * GSD >= 50


def _read01(path):
    import rasterio

    with rasterio.open(path) as ds:
        return ds.read().astype(np.float32) / 255.0, float(ds.res[0])


@pytest.mark.parametrize("sun", [None, 0.0, 90.0, 180.0, 270.0])
def test_no_berms_on_the_real_puerto_rico_pair(sun):
    # Hurricane Maria: roofs torn, debris; nothing built up as a ridge
    before, gsd = _read01(shared("puerto-rico", "pre_tile_0_107.tif"))
    after, _ = _read01(shared("puerto-rico", "post_tile_0_107.tif"))
    v = np.ones(before.shape[1:], bool)
    assert find_berms(before, after, v, gsd, sun, (0, 0, 512, 512)) == []


@pytest.mark.parametrize("sun", [None, 0.0, 90.0, 180.0, 270.0])
def test_no_berms_on_a_real_image_against_itself_plain_or_shifted(sun):
    img, gsd = _read01(shared("imagery", "gangwon_korea_0p6m_rgb.tif"))
    v = np.ones(img.shape[1:], bool)
    core = (0, 0, img.shape[2], img.shape[1])
    assert find_berms(img, img, v, gsd, sun, core) == []
    # a residual misregistration of (2.4, 1.3) px: every edge changes, nothing is new soil
    shifted = np.stack([ndi.shift(b, (2.4, 1.3), order=1, mode="nearest") for b in img])
    vs = v.copy()
    vs[:3], vs[:, :2] = False, False
    assert find_berms(img, shifted, vs, gsd, sun, core) == []


def _ridge_dsms(trees_before: bool, new: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """DSMs for ``_scene``'s 10 m wide, 3 m high ridge (row 200, cols 80..320): before flat
    (or under 8 m trees where the ridge now stands), after the ridge (or ``new=False``: the
    ridge stood there before too)."""
    n = 400
    rows, cols = np.mgrid[0:n, 0:n].astype(np.float32)
    d = (rows + 0.5 - 200) * GSD
    on = (cols >= 80) & (cols < 320)
    ridge = np.where(on, 3.0 * np.clip(1 - (d / 5.0) ** 2, 0, None), 0.0).astype(np.float32)
    ground = np.full((n, n), 350.0, np.float32)
    after = ground + ridge
    before = ground + np.where(on & (np.abs(d) < 7.0), 8.0, 0.0) if trees_before else ground
    return (after.copy() if not new else before.astype(np.float32)), after


def test_image_berm_where_trees_stood_is_kept_by_the_after_ridge():
    # felled trees and a berm: the surface lost height, yet a 3 m ridge now stands there
    before, after = _scene(180.0)
    db, da = _ridge_dsms(trees_before=True)
    v = np.ones(before.shape[1:], bool)
    out = find_berms(before, after, v, GSD, 180.0, (0, 0, 400, 400), dsm_before=db,
                     dsm_after=da, sun_elevation_deg=40.0)  # fmt: skip
    berms = [o for o in out if o[2]["kind"] == "berm"]
    assert len(berms) == 1 and berms[0][2]["source"] == "both"
    assert berms[0][2]["height_m"] == pytest.approx(3.0, abs=0.5)


@pytest.mark.parametrize("case", ["flat", "old_ridge"])
def test_image_berm_is_dropped_where_the_dsms_show_no_new_ridge(case):
    before, after = _scene(180.0)
    if case == "flat":  # soil-coloured strip, surface unchanged and flat
        db = da = np.full(before.shape[1:], 350.0, np.float32)
    else:  # the ridge was there before: nothing new by elevation
        db, da = _ridge_dsms(trees_before=False, new=False)
    v = np.ones(before.shape[1:], bool)
    out = find_berms(before, after, v, GSD, 180.0, (0, 0, 400, 400), dsm_before=db,
                     dsm_after=da, sun_elevation_deg=40.0)  # fmt: skip
    assert [o for o in out if o[2]["kind"] == "berm"] == []


def _with_footprints(fp: np.ndarray) -> list:
    before, after = _scene(180.0)
    v = np.ones(before.shape[1:], bool)
    return find_berms(
        before, after, v, GSD, 180.0, (0, 0, 400, 400), sun_elevation_deg=40.0, footprints=fp
    )


def test_an_image_crest_whose_body_would_overlap_a_standing_building_is_dropped():
    # the ridge's body reaches 5 m either side of row 200; a roof edge 3 m north of the crest
    near = np.zeros((400, 400), np.int32)
    near[150:194, 100:300] = 1
    assert _with_footprints(near) == []
    # the same building 20 m away leaves the ridge as found without footprints
    far = np.zeros((400, 400), np.int32)
    far[100:160, 100:300] = 1
    found = _with_footprints(far)
    assert len(found) == 1 and found[0][0].length * GSD >= 80


def test_footprints_given_lazily_are_read_only_where_a_crest_needs_them():
    near = np.zeros((400, 400), np.int32)
    near[150:194, 100:300] = 1
    calls = []

    def lazy() -> np.ndarray:
        calls.append(1)
        return near

    # the same answer as the array itself, read once for the window's crest
    assert _with_footprints(lazy) == _with_footprints(near) == []
    assert len(calls) == 1
    # a window with no change has no crest: the footprints are never read
    img = np.full((3, 400, 400), 0.4, np.float32)
    v = np.ones((400, 400), bool)
    assert find_berms(img, img, v, GSD, 180.0, (0, 0, 400, 400), footprints=lazy) == []
    assert len(calls) == 1


def test_a_footprint_whose_plot_mostly_changed_is_razed_notstanding_distance():
    labels = np.zeros((50, 50), np.int64)
    labels[5:15, 5:15] = 1  # standing: unchanged
    labels[30:40, 30:40] = 2  # razed: changed all over
    changed = np.zeros((50, 50), bool)
    changed[30:40, 30:40] = True
    changed[5:7, 5:15] = True  # a moved shadow along one edge
    dist = standing_distance(labels, changed, np.ones((50, 50), bool))
    assert dist is not None
    assert dist[10, 10] == 0 and dist[35, 35] > 10
    assert standing_distance(labels * (labels == 2), changed, np.ones((50, 50), bool)) is None


def _block_means_ref(a: np.ndarray, f: int) -> np.ndarray:
    """Block means with the kernel's arithmetic in plain Python: per block, its rows' f-pixel
    float64 sums (from 0.0) added in order, times 1 / f²."""
    nb, h, w = a.shape[0], a.shape[1] // f, a.shape[2] // f
    out = np.zeros((nb, h, w), np.float32)
    for b in range(nb):
        for i in range(h):
            for j in range(w):
                acc = 0.0
                for r in range(i * f, i * f + f):
                    s = 0.0
                    for c in range(j * f, j * f + f):
                        s += float(a[b, r, c])
                    acc += s
                out[b, i, j] = acc * (1.0 / (f * f))
    return out


@pytest.mark.parametrize("f", [2, 3, 4, 5])
def test_block_means_match_the_plain_sums(f: int) -> None:
    rng = np.random.default_rng(f)
    a = rng.normal(size=(2, 23, 29)) * 10.0 ** rng.integers(-8, 8, (2, 23, 29))
    for arr in (a.astype(np.float32), a, rng.random((1, 23, 29)) < 0.5):
        ref = _block_means_ref(arr.view(np.uint8) if arr.dtype == bool else arr, f)
        np.testing.assert_array_equal(_block_means(arr, f), ref)


@pytest.mark.parametrize("seed", range(6))
def test_hysteresis_kernel_equals_skimage(seed):
    from skimage.filters import apply_hysteresis_threshold

    from fortmap.detect.berm_grid import hysteresis

    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(1, 80)), int(rng.integers(1, 80))
    img = ndi.uniform_filter(rng.random((h, w)), 3).astype(np.float32)
    if seed % 3 == 0:
        img[rng.random((h, w)) < 0.05] = np.nan  # NaN is neither low nor high
    for low, high in ((0.45, 0.55), (0.5, 0.5), (0.6, 0.4), (2.0, 3.0), (-1.0, 0.0)):
        want = apply_hysteresis_threshold(img, low, high)
        got = hysteresis(img, low, high)
        np.testing.assert_array_equal(got, want)
    # components reaching the borders, and a chain joined only diagonally (not 4-connected)
    img = np.zeros((5, 5), np.float32)
    img[0, :] = 0.6
    img[0, 4] = 0.9
    img[1, 0], img[2, 1] = 0.6, 0.6
    np.testing.assert_array_equal(
        hysteresis(img, 0.5, 0.8), apply_hysteresis_threshold(img, 0.5, 0.8)
    )
    assert hysteresis(img, 0.5, 0.8)[1, 0] and not hysteresis(img, 0.5, 0.8)[2, 1]


def test_change_threshold_otsu_equals_skimage():
    from skimage.filters import threshold_otsu

    from fortmap.detect.berms import change_bound

    rng = np.random.default_rng(3)
    for t in range(60):
        mag = rng.gamma(0.5 + t % 4, 0.05, int(rng.integers(50, 4000))).astype(np.float32)
        thr, bound = change_threshold(mag), change_bound(mag)
        want = float(threshold_otsu(mag))
        assert thr == (None if bound is not None and want < bound else want)
    # all equal: skimage's answer (the value itself) below no bound
    assert change_threshold(np.full(10, 0.25, np.float32)) == pytest.approx(0.25)


@pytest.mark.parametrize("seed", range(6))
def test_mask_morphology_kernels_equal_scipy(seed):
    from fortmap.detect.berm_grid import dilate3x3, open2x2

    rng = np.random.default_rng(seed)
    cases = [np.zeros((0, 4), bool), np.zeros((1, 1), bool), np.ones((1, 7), bool)]
    cases += [np.zeros((9, 5), bool), np.ones((6, 8), bool)]  # empty and full, to the edges
    for _ in range(20):
        h, w = int(rng.integers(1, 40)), int(rng.integers(1, 40))
        cases.append(rng.random((h, w)) < rng.uniform(0.05, 0.9))
    for m in cases:
        np.testing.assert_array_equal(open2x2(m), ndi.binary_opening(m, np.ones((2, 2), bool)))
        np.testing.assert_array_equal(dilate3x3(m), ndi.binary_dilation(m, np.ones((3, 3), bool)))
    # the 2x2 opening is not centred: a lone 2x2 block survives, a 1-px line does not
    m = np.zeros((5, 5), bool)
    m[1:3, 1:3] = True
    m[4, :] = True
    assert open2x2(m).sum() == 4 and not open2x2(m)[4].any()


def test_standing_distance_matches_the_ndimage_sums() -> None:
    # per-label counts from bincounts, as ndi.sum over labels 1..n gave them
    from scipy import ndimage as ndi

    rng = np.random.default_rng(4)
    for _ in range(20):
        labels = rng.integers(0, 9, (40, 50))
        labels[rng.random(labels.shape) < 0.4] = 0
        changed = rng.random(labels.shape) < rng.uniform(0.2, 0.8)
        vd = rng.random(labels.shape) > 0.1
        n = int(labels.max())
        ids = np.arange(1, n + 1)
        inside = ndi.sum(vd, labels, ids)
        share = ndi.sum(changed & vd, labels, ids) / np.maximum(inside, 1)
        stand = np.r_[False, (share < 0.5) & (inside > 0)][labels]
        got = standing_distance(labels, changed, vd)
        if n == 0 or not stand.any():
            assert got is None
        else:
            np.testing.assert_array_equal(got, ndi.distance_transform_edt(~stand))
    assert standing_distance(np.zeros((5, 5), np.int64), np.ones((5, 5), bool), None) is None


def test_scene_bounds_are_the_change_threshold_and_redness_bound_of_the_work_grid():
    before, after = _scene(180.0)
    # the after image's own noise, so that the unchanged ground has a spread
    after = after + np.random.default_rng(5).normal(0, 0.01, after.shape).astype(np.float32)
    v = np.ones(before.shape[1:], bool)
    b = scene_berm_bounds(before, after, v, GSD)
    ab, bb = _block_means(after, 4), _block_means(before, 4)
    mag = np.sqrt(((ab - bb) ** 2).sum(axis=0)).ravel()
    assert b.change == pytest.approx(change_threshold(mag), rel=1e-6)
    assert b.red_gain is not None
    # an image against itself holds no changed population: each window measures its own
    assert scene_berm_bounds(before, before, v, GSD) is None
    # too few valid pixels to measure: each window measures its own
    assert scene_berm_bounds(before, after, np.zeros_like(v), GSD) is None


def test_scene_bounds_set_the_image_path_whatever_the_window_holds():
    before, after = _scene(180.0)
    v = np.ones(before.shape[1:], bool)
    core = (0, 0, 400, 400)
    own = find_berms(before, after, v, GSD, 180.0, core, sun_elevation_deg=40.0)
    scene = scene_berm_bounds(before, after, v, GSD)
    given = find_berms(before, after, v, GSD, 180.0, core, sun_elevation_deg=40.0, bounds=scene)
    assert len(own) == len(given) == 1
    assert given[0][0].equals(own[0][0])
    # a scene whose changes are stronger than the window's has no berm here
    high = BermBounds(change=1.0, red_gain=None)
    assert find_berms(before, after, v, GSD, 180.0, core, sun_elevation_deg=40.0, bounds=high) == []
