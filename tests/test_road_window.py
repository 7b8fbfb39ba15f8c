"""Road-window contrasts and their kernels: fused passes give the values of the plain ones."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

from fortmap.detect import along_kernels as AK
from fortmap.detect import class_kernels as CK
from fortmap.detect import fort_kernels as K
from fortmap.detect import masked_box_kernels as MB
from fortmap.detect.road_window import (
    MIN_CLASS_PX,
    RoadWindow,
    along_anomaly,
    illumination_anomaly,
)
from test_barricades import GSD, _blocks, _scene


def _median_ref(vals: list[np.float32]) -> np.float32:
    """The median of the former per-image kernel: an insertion sort (NaN placed as it
    places them), the middle value or the float64 mean of the middle two."""
    s = list(vals)
    for u in range(1, len(s)):
        v, q = s[u], u
        while q > 0 and s[q - 1] > v:
            s[q] = s[q - 1]
            q -= 1
        s[q] = v
    c = len(s)
    if c % 2:
        return s[c // 2]
    return np.float32((np.float64(s[c // 2 - 1]) + s[c // 2]) / 2.0)


def _sides_ref(sm, samp, side, rows, cols, angle, offs, median=_median_ref):
    """One image's ``sides_ab`` in plain Python: sorted medians (or ``median``), one pass
    per image."""
    h, w = samp.shape
    best = np.full(rows.size, np.nan, np.float32)
    hit = np.zeros(rows.size, bool)
    for i in range(rows.size):
        ca, sa = math.cos(angle[i]), math.sin(angle[i])
        b = -np.inf
        for sgn in (-1.0, 1.0):
            vals = []
            for o in offs:
                x = int(math.floor(cols[i] + 0.5 + sgn * o * ca))
                y = int(math.floor(rows[i] + 0.5 + sgn * o * sa))
                if 0 <= x < w and 0 <= y < h and samp[y, x]:
                    vals.append(sm[y, x])
                    hit[i] |= bool(side[y, x])
            if vals:
                med = median(vals)
                if med > b:
                    b = med
        if b > -np.inf:
            best[i] = b
    return best, hit


def test_sides_ab_matches_sorted_medians_per_image() -> None:
    rng = np.random.default_rng(0)
    shape = (40, 50)
    samp = rng.random(shape) < 0.7
    side = samp & (rng.random(shape) < 0.2)
    # quantised levels: ties, and signs of both kinds, where a selection could pick wrongly
    sm_a = (rng.integers(-4, 5, shape) / 8).astype(np.float32)
    sm_b = rng.normal(0, 1, shape).astype(np.float32)
    sm_b[5, :] = np.nan  # the NaN fallback: the insertion sort's own order
    rows, cols = np.nonzero(samp)
    angle = rng.uniform(-np.pi, np.pi, rows.size)
    offs = np.array([2.5, 3.0, 3.5, 4.0, 6.0]) / 0.5  # up to 5 samples a side
    for m in (1, 2, 3, 4, 5):
        got_a, got_b, hit = AK.sides_ab(sm_a, sm_b, samp, side, rows, cols, angle, offs[:m])
        ref_a, ref_hit = _sides_ref(sm_a, samp, side, rows, cols, angle, offs[:m])
        ref_b, _ = _sides_ref(sm_b, samp, side, rows, cols, angle, offs[:m])
        assert np.array_equal(got_a, ref_a, equal_nan=True)
        assert np.array_equal(got_b, ref_b, equal_nan=True)
        assert np.array_equal(hit, ref_hit)


def test_penumbra_matches_a_painted_mask_and_dilation() -> None:
    rng = np.random.default_rng(1)
    shape = (30, 35)
    on = rng.random(shape) < 0.6
    rows, cols = np.nonzero(on)
    dark = rng.random(rows.size) < 0.5
    ref = rng.random(rows.size) < 0.8
    seen = np.zeros(shape, bool)
    seen[rows[~dark & ref], cols[~dark & ref]] = True
    near = ndi.binary_dilation(seen, np.ones((5, 5), bool))[rows, cols]
    got = CK.penumbra_to_bright(dark, ref, rows, cols, *shape, 2)
    assert np.array_equal(got, dark & ~near)
    assert np.array_equal(got, dark & ~K.any_near_at(seen, 2, rows, cols))  # the kernel it replaces


def _shaded_window():
    b, a, v, rr, _ = _scene(_blocks(4), seed=2)
    # a shadow across part of the road on the after date, so there are two classes
    a[0, 85:115, 20:70] -= 0.12
    return b, a, v, rr


def test_illumination_anomaly_matches_the_per_class_loop() -> None:
    b, a, v, rr = _shaded_window()
    rw = RoadWindow.build(b, a, v, rr)
    g, rid, ref, n = rw.level("a", 1), rw.rid, rw.ref, rw.n
    med, t = rw.medians("a", 1), rw.otsu("a", 1)
    assert t is not None
    # the loop the fused version replaced: a median pass per class
    dark = rw.level3("a", 1) <= t
    seen = np.zeros(rw.on.shape, bool)
    seen[rw.rows[~dark & ref], rw.cols[~dark & ref]] = True
    k = np.flatnonzero(dark)
    dark[k] = ~K.any_near_at(seen, 2, rw.rows[k], rw.cols[k])
    want = np.empty_like(g)
    for cls in (dark, ~dark):
        sel = cls & ref
        m = K.road_medians(g[sel], rid[sel], n)
        m = np.where(np.bincount(rid[sel], minlength=n) >= MIN_CLASS_PX, m, med)
        want[cls] = g[cls] - m[rid[cls]]
    got = illumination_anomaly(rw, "a", 1)
    assert dark.any() and (~dark).any()
    assert got.dtype == want.dtype and np.array_equal(got, want)


def test_both_dates_computed_together_match_each_date_alone() -> None:
    # the after image of one window is the before image of the other: each date's along
    # anomaly must not depend on which other image it was computed with
    b, a, v, rr = _shaded_window()
    rw1 = RoadWindow.build(b, a, v, rr)
    rw2 = RoadWindow.build(a, b, v, rr)
    rw3 = RoadWindow.build(a, a, v, rr)
    for kerb in (False, True):
        x = along_anomaly(rw1, "a", GSD, kerb=kerb)
        assert np.isfinite(x).sum() > 1000
        assert np.array_equal(x, along_anomaly(rw2, "b", GSD, kerb=kerb), equal_nan=True)
        assert np.array_equal(x, along_anomaly(rw3, "b", GSD, kerb=kerb), equal_nan=True)
        assert np.array_equal(
            along_anomaly(rw1, "b", GSD, kerb=kerb),
            along_anomaly(rw2, "a", GSD, kerb=kerb),
            equal_nan=True,
        )


def test_uniform_reflect_is_scipys_uniform_filter_bit_for_bit() -> None:
    rng = np.random.default_rng(3)
    for _ in range(120):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        k = int(rng.integers(1, 8))
        # magnitudes 1e-12..1e5 side by side: a direct sum per pixel rounds differently
        # from scipy's running sum on such data, so the test tells the two apart
        g = (rng.normal(size=(h, w)) * 10.0 ** rng.integers(-12, 6, (h, w))).astype(np.float32)
        g[rng.random((h, w)) < 0.1] = 0
        ref = ndi.uniform_filter(g, k)
        np.testing.assert_array_equal(AK.uniform_reflect(g, k).view(np.int32), ref.view(np.int32))


def test_band_mean_is_numpys_mean_bit_for_bit() -> None:
    rng = np.random.default_rng(4)
    for t in range(40):
        nb = int(rng.integers(1, 6))
        h, w = (int(v) for v in rng.integers(1, 50, 2))
        a = rng.normal(size=(nb, h, w)) * 10.0 ** rng.integers(-10, 8, (nb, h, w))
        a = a.astype(np.float32)
        a[rng.random(a.shape) < 0.05] = -0.0
        if t % 5 == 0:
            a[rng.random(a.shape) < 0.05] = np.nan
        ref = a.mean(axis=0)
        np.testing.assert_array_equal(AK.band_mean(a).view(np.int32), ref.view(np.int32))


def test_masked_box_ab_is_masked_box_at_of_each_image() -> None:
    rng = np.random.default_rng(6)
    for _ in range(30):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        ga = rng.normal(size=(h, w)).astype(np.float32)
        gb = (rng.normal(size=(h, w)) * 10.0 ** rng.integers(-6, 6, (h, w))).astype(np.float32)
        m = rng.random((h, w)) < rng.uniform(0.1, 0.9)
        rows, cols = np.nonzero(m)
        got_a, got_b = MB.masked_box_ab(ga, gb, m, 3, rows, cols)
        for g, got in ((ga, got_a), (gb, got_b)):
            want = np.full((h, w), np.nan, np.float32)
            want[rows, cols] = K.masked_box_at(g, m, 3, rows, cols)
            np.testing.assert_array_equal(got.view(np.int32), want.view(np.int32))


def test_otsu_threshold_is_skimages_threshold_otsu() -> None:
    from skimage.filters import threshold_otsu

    from fortmap.detect.road_window import otsu_threshold

    rng = np.random.default_rng(7)
    for t in range(300):
        size = int(rng.integers(2, 2000))
        if t % 3 == 0:  # two illumination classes
            x = np.concatenate([rng.normal(0.2, 0.02, size), rng.normal(0.6, 0.05, size // 3)])
        elif t % 3 == 1:  # few distinct levels: many values on bin edges
            x = rng.integers(0, 7, size) / rng.integers(1, 50)
        else:
            x = rng.normal(size=size) * 10.0 ** rng.integers(-8, 6)
        x = x.astype(np.float32 if t % 4 else np.float64)
        if np.ptp(x) <= 0:
            continue
        assert otsu_threshold(x) == threshold_otsu(x)


def _other_road_ref(on, road_id, rows, cols, angle, offs):
    out = np.zeros(rows.size, bool)
    h, w = on.shape
    for i in range(rows.size):
        own = road_id[rows[i], cols[i]]
        for sgn in (-1.0, 1.0):
            for o in offs:
                x = math.floor(cols[i] + 0.5 + sgn * o * math.cos(angle[i]))
                y = math.floor(rows[i] + 0.5 + sgn * o * math.sin(angle[i]))
                if 0 <= x < w and 0 <= y < h and on[y, x] and road_id[y, x] != own:
                    out[i] = True
    return out


def test_other_road_matches_sampling_every_pixel() -> None:
    # blocks of road ids: most pixels lie far from another road (answered from the tiles),
    # some near one, some at the window's edge
    rng = np.random.default_rng(11)
    shape = (150, 170)
    road_id = np.zeros(shape, np.int32)
    road_id[20:30, :] = 1
    road_id[:, 100:112] = 2
    road_id[90:97, 10:60] = 3
    road_id[140:, 150:] = 4
    on = (road_id > 0) & (rng.random(shape) < 0.95)
    rows, cols = np.nonzero(on)
    angle = np.where(rng.random(rows.size) < 0.5, np.pi / 2, 0.0) + rng.normal(0, 0.1, rows.size)
    for offs in (np.array([5.0, 6.0, 7.0, 8.0]), np.array([5.0, 6.0, 7.0, 8.0, 12.0, 16.0, 20.0])):
        got = AK.other_road(on, road_id, rows, cols, angle, offs)
        assert np.array_equal(got, _other_road_ref(on, road_id, rows, cols, angle, offs))
        assert got.any() and not got.all()


def test_class_groups_is_the_array_expressions() -> None:
    rng = np.random.default_rng(12)
    h, w, n = 30, 40, 6
    rows, cols = np.divmod(np.flatnonzero(rng.random((h, w)) < 0.6), w)
    rid = rng.integers(1, n, rows.size).astype(np.int32)
    g = rng.random(rows.size).astype(np.float32)
    for share in (0.0, 0.2, 0.45, 0.5, 0.7, 1.0):
        dark = rng.random(rows.size) < share
        ref = rng.random(rows.size) < 0.8
        split, grp, g_ref, sel, cnt = CK.class_groups(dark, ref, rid, g, rows, cols, h, w, n, 2)
        lo = dark[ref]
        assert split == (not (lo.all() or not lo.any() or lo.mean() >= 0.5))
        if not split:
            continue
        d = CK.penumbra_to_bright(dark, ref, rows, cols, h, w, 2)
        want = rid.astype(np.int64) + n * ~d
        assert np.array_equal(grp, want)
        assert np.array_equal(g_ref, g[ref]) and np.array_equal(sel, want[ref])
        assert np.array_equal(cnt, np.bincount(want[ref], minlength=2 * n))
        m = rng.random(2 * n).astype(np.float32)
        assert np.array_equal(CK.less_at(g, m, grp), g - m[grp])


def test_road_gathers_are_the_array_expressions() -> None:
    rng = np.random.default_rng(13)
    n = 7
    rid = rng.integers(0, n, 5000).astype(np.int32)
    g = rng.random(5000).astype(np.float32)
    for p in (0.0, 0.3, 1.0):
        mask = rng.random(5000) < p
        gv, rv, cnt = CK.masked_by_road(mask, rid, g, n)
        assert np.array_equal(gv, g[mask]) and np.array_equal(rv, rid[mask])
        assert gv.dtype == g.dtype and rv.dtype == rid.dtype
        assert np.array_equal(cnt, np.bincount(rid[mask], minlength=n))
        keep = rng.random(n) < 0.5
        assert np.array_equal(CK.values_on_roads(mask, rid, keep, g), g[mask & keep[rid]])
