"""Sun azimuth from synthetic building shadows."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from fortmap.detect.sun import estimate_sun_azimuth, sun_from_tags


def _town(sun_az: float) -> tuple[np.ndarray, list[shapely.Polygon]]:
    """Bright square roofs on grey ground, each casting a 5 px shadow away from the sun."""
    img = np.full((400, 400), 0.45, np.float32)
    a = np.radians(sun_az)
    dc, dr = -np.sin(a), np.cos(a)  # away from the sun, in pixel steps
    polys = []
    for r in range(30, 370, 60):
        for c in range(30, 370, 60):
            for k in np.linspace(0, 8, 17):
                rr, cc = int(round(r + dr * k)), int(round(c + dc * k))
                img[rr : rr + 20, cc : cc + 20] = np.minimum(img[rr : rr + 20, cc : cc + 20], 0.12)
            img[r : r + 20, c : c + 20] = 0.8
            polys.append(shapely.box(c, r, c + 20, r + 20))
    return img, polys


def test_azimuth_from_footprints_and_without():
    for az in (150.0, 230.0, 90.0, 300.0):
        img, polys = _town(az)
        v = np.ones(img.shape, bool)
        est = estimate_sun_azimuth(img, v, 0.5, polys)
        assert est is not None and abs((est - az + 180) % 360 - 180) < 15
        est = estimate_sun_azimuth(img, v, 0.5)
        assert est is not None and abs((est - az + 180) % 360 - 180) < 15


def test_no_shadows_gives_none():
    img = np.full((200, 200), 0.45, np.float32)
    img[50:70, 50:70] = 0.8
    assert estimate_sun_azimuth(img, np.ones(img.shape, bool), 0.5) is None


def test_sun_angles_from_common_metadata_names():
    assert sun_from_tags({"SUN_AZIMUTH": "173.9", "SUN_ELEVATION": "43.7"}) == (173.9, 43.7)
    assert sun_from_tags({"IMAGE_1.meanSunAz": "120", "IMAGE_1.meanSunEl": "55"}) == (120.0, 55.0)
    az, el = sun_from_tags({"MEAN_SUN_AZIMUTH_ANGLE": "160", "MEAN_SUN_ZENITH_ANGLE": "40"})
    assert (az, el) == (160.0, 50.0)
    assert sun_from_tags({"view:sun_azimuth": -20}) == (340.0, None)
    assert sun_from_tags({"SUN_AZIMUTH": "nan", "SUN_ELEVATION": "-5", "x": "1"}) == (None, None)


def test_ring_sum_matches_nearest_pixel_shift():
    """The sliced shift must select exactly the pixels ``ndi.shift(order=0)`` does, edges,
    half-pixel ties and shifts beyond the image included, and sum them in the same order."""
    from scipy import ndimage as ndi

    from fortmap.detect.sun import _ring_sum

    rng = np.random.default_rng(3)
    for shape in [(37, 53), (64, 64)]:
        objs = rng.random(shape) > 0.7
        free = rng.random(shape) > 0.3
        grey = rng.random(shape).astype(np.float32)
        shifts = [(dr, dc) for dr in (-9.5, -2.5, -0.5, 0.0, 0.3, 0.5, 1.5, 4.0, 70.0)
                  for dc in (-3.7, -0.5, 0.0, 0.49999, 2.25, 6.0)]  # fmt: skip
        shifts += [(-np.cos(a) * 6, np.sin(a) * 6) for a in np.radians(np.arange(0, 360, 10))]
        for dr, dc in shifts:
            m = (ndi.shift(objs.astype(np.uint8), (dr, dc), order=0) > 0) & free
            assert _ring_sum(grey, objs, free, dr, dc) == (float(grey[m].sum()), int(m.sum()))


def _dense_blocks(sun_az: float) -> tuple[np.ndarray, list[shapely.Polygon]]:
    """Close-set roofs, no brighter than the street, whose 4.5 m shadows fill most of the
    7 m streets: the bright things left are the sunlit patches of street between shadows."""
    size, street, shadow = 30, 14, 9
    w = 12 * (size + street)
    img = np.full((w, w), 0.75, np.float32)
    a = np.radians(sun_az)
    dc, dr = -np.sin(a), np.cos(a)
    rng = np.random.default_rng(1)
    polys = []
    corners = range(street // 2, w - size, size + street)
    for r in corners:
        for c in corners:
            for k in np.linspace(0, shadow, 2 * shadow + 1):
                rr, cc = int(round(r + dr * k)), int(round(c + dc * k))
                if rr >= 0 and cc >= 0:
                    sl = (slice(rr, rr + size), slice(cc, cc + size))
                    img[sl] = np.minimum(img[sl], 0.1)
            polys.append(shapely.box(c, r, c + size, r + size))
    for r in corners:
        for c in corners:
            img[r : r + size, c : c + size] = rng.uniform(0.35, 0.6)
    img += rng.normal(0, 0.02, img.shape).astype(np.float32)
    return img, polys


def test_dense_blocks_with_footprints():
    for az in (150.0, 230.0, 60.0):
        img, polys = _dense_blocks(az)
        v = np.ones(img.shape, bool)
        est = estimate_sun_azimuth(img, v, 0.5, polys)
        assert est is not None and abs((est - az + 180) % 360 - 180) < 15
        # the same roofs burnt on the pixels give the same answer
        burnt = np.zeros(img.shape, bool)
        for p in polys:
            c0, r0, c1, r1 = (int(b) for b in p.bounds)
            burnt[r0:r1, c0:c1] = True
        assert estimate_sun_azimuth(img, v, 0.5, objects=burnt) == pytest.approx(est, abs=1e-6)
        # guessed roofs: a weaker cue, trusted only when the dip is strong
        guess = estimate_sun_azimuth(img, v, 0.5)
        assert guess is None or abs((guess - az + 180) % 360 - 180) < 25


def test_untagged_simulated_city_takes_the_sun_from_footprint_shadows(tmp_path):
    import json

    import rasterio

    from fortmap.analysis import AnalyzeOptions, run_analysis
    from fortmap.simulate import simulate_city

    sc = tmp_path / "scene"
    simulate_city(sc, seed=3, size_m=700, force=True)
    for name in ("before.tif", "after.tif"):
        with rasterio.open(sc / name, "r+") as d:
            d.update_tags(SUN_AZIMUTH="", SUN_ELEVATION="")
    true = json.loads((sc / "scene.json").read_text())["sun"]["after"]["azimuth_deg"]
    s = run_analysis(sc / "before.tif", sc / "after.tif", tmp_path / "out",
                     buildings=sc / "buildings.geojson",
                     options=AnalyzeOptions(report=False))  # fmt: skip
    assert s["sun_azimuth_from"] == "footprint shadows"
    assert abs((s["sun_azimuth_deg"] - true + 180) % 360 - 180) < 15
