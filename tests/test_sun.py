"""Sun azimuth from synthetic building shadows."""

from __future__ import annotations

import numpy as np
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
