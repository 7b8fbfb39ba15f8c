"""Ridge lighting: flank samples past the valid data are not judged."""

from __future__ import annotations

import numpy as np
import shapely

from fortmap.detect.berm_lighting import ridge_lighting


def test_flanks_reaching_invalid_pixels_are_not_judged():
    # soil east of column 50, fill west of it; a line along column 52 with the sun in the east
    # looks lit as a ridge (bright sun side, "dark" far side) unless the fill is known
    grey = np.zeros((100, 100), np.float32)
    grey[:, 50:] = 0.6
    line = shapely.LineString([(52, 10), (52, 90)])
    assert ridge_lighting(grey, line, 3.0, 90.0, 40.0) is not None
    valid = grey > 0
    assert ridge_lighting(grey, line, 3.0, 90.0, 40.0, valid=valid) is None
    # away from the edge a lit east flank and a shaded west flank are judged: a ridge
    grey[:, 75:79] = 0.8
    grey[:, 71:75] = 0.3
    lit = ridge_lighting(grey, shapely.LineString([(75, 10), (75, 90)]), 3.0, 90.0, 40.0,
                         valid=valid)  # fmt: skip
    assert lit is not None and lit["consistent"] == 1.0


def _per_offset_refs(grey, line, half, az, valid):
    # the per-offset loops the batched sampling stands in for
    from scipy import ndimage as ndi

    from fortmap.detect.berm_lighting import _stations, _valid_at

    def at(p):
        return ndi.map_coordinates(grey, [p[:, 1] - 0.5, p[:, 0] - 0.5], order=1, mode="nearest")

    a = np.radians(az)
    sun = np.array([np.sin(a), -np.cos(a)])
    pts, nrm = _stations(line, max(4, int(line.length // 2)))
    s1, s2, ok = np.zeros(len(pts)), np.zeros(len(pts)), np.ones(len(pts), bool)
    offs = np.arange(0.5, max(half, 2.0) + 2.0 + 1e-6, 0.5)
    for off in offs:
        p1, p2 = pts + nrm * off, pts - nrm * off
        s1 += at(p1)
        s2 += at(p2)
        ok &= _valid_at(valid, p1) & _valid_at(valid, p2)
    flanks = (s1 / len(offs), s2 / len(offs), nrm @ sun, ok)
    pts, nrm = _stations(line, max(4, int(line.length)))
    nrm *= 1.0 if float(np.sum(nrm @ sun)) >= 0 else -1.0
    offs = np.arange(-2 * half, 2 * half + 1e-6, 0.5)
    prof = np.array([at(pts + nrm * off).mean() for off in offs])
    facing = nrm @ sun
    keep = np.abs(facing) >= 0.17
    pts, nrm = pts[keep], nrm[keep] * np.where(facing[keep] < 0, -1.0, 1.0)[:, None]
    pts, nrm = pts[_valid_at(valid, pts)], nrm[_valid_at(valid, pts)]
    lit, dark = [], []
    for off in np.arange(0.5, max(half, 0.5) + 1e-6, 0.5):
        for sign, acc in ((1.0, lit), (-1.0, dark)):
            acc.append(at(pts + sign * nrm * off))
    return flanks, prof, (lit, dark)


def test_batched_flank_sampling_matches_a_call_per_offset():
    from fortmap.detect.berm_lighting import _flank_samples, _sun_normal_profile, flank_values

    rng = np.random.default_rng(8)
    grey = rng.random((60, 70)).astype(np.float32)
    valid = rng.random((60, 70)) > 0.05
    for _ in range(12):
        xy = rng.uniform(-5, 75, (int(rng.integers(2, 5)), 2))  # may leave the grid
        line = shapely.LineString(xy)
        half, az = float(rng.uniform(0.5, 6)), float(rng.uniform(0, 360))
        (s1, s2, w, ok), prof, (lit, dark) = _per_offset_refs(grey, line, half, az, valid)
        g1, g2, gw, gok = _flank_samples(grey, line, half, az, valid)
        for x, y in ((s1, g1), (s2, g2), (w, gw), (ok, gok)):
            np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(_sun_normal_profile(grey, line, 2 * half, az)[1], prof)
        for stat in (np.median, np.mean):
            want = (float(stat(lit)), float(stat(dark))) if lit[0].size else None
            got = flank_values(grey, line, half, az, valid, stat)
            if want is None:
                assert np.isnan(got).all()
            else:
                assert got == want


def _best_offset_reference(offs, prof, h):
    # crest_offset's search as first written, with numpy's means
    best, best_c = -np.inf, 0.0
    for c in offs[np.abs(offs) <= h]:
        lit = prof[(offs > c) & (offs <= c + h)]
        dark = prof[(offs < c) & (offs >= c - h)]
        if len(lit) and len(dark) and lit.mean() - dark.mean() > best:
            best, best_c = float(lit.mean() - dark.mean()), float(c)
    return best_c


def test_best_offset_kernel_equals_the_numpy_search():
    from fortmap.detect.berm_lighting import _best_offset

    rng = np.random.default_rng(5)
    for t in range(300):
        h = float(rng.choice([0.2, 0.5, 1.5, rng.uniform(1.5, 30)]))
        offs = np.arange(-2 * h, 2 * h + 1e-6, 0.5)
        prof = rng.standard_normal(offs.size) * 0.1 + 0.5
        if t % 7 == 0:
            prof[rng.random(offs.size) < 0.2] = np.nan
        if t % 11 == 0:
            prof[:] = 0.25  # every offset ties: the first wins
        assert _best_offset(offs, prof, h) == _best_offset_reference(offs, prof, h)
    # no offset with values on both sides: no shift
    assert _best_offset(np.array([0.0]), np.array([1.0]), 1.5) == 0.0


def test_lighting_stats_with_before_matches_separate_flank_samples():
    # both images sampled at stations found once must give the values of one call per image
    from fortmap.detect.berm_lighting import MIN_FACING, MIN_JUDGED, lighting_stats

    rng = np.random.default_rng(21)
    after = rng.random((60, 70)).astype(np.float32)
    before = rng.random((60, 70)).astype(np.float32)
    valid = rng.random((60, 70)) > 0.02
    seen = 0
    for _ in range(40):
        xy = rng.uniform(5, 65, (int(rng.integers(2, 4)), 2))
        line = shapely.LineString(xy)
        half, az = float(rng.uniform(0.5, 5)), float(rng.uniform(0, 360))
        (s1, s2, w, ok), _, _ = _per_offset_refs(after, line, half, az, valid)
        (b1, b2, _, _), _, _ = _per_offset_refs(before, line, half, az, valid)
        norm = np.maximum(np.abs(s1) + np.abs(s2), 0.05)
        rel = ((s1 - b1) - (s2 - b2)) / norm
        judged = (np.abs(w) >= MIN_FACING) & ok
        got = lighting_stats(after, line, half, az, before, valid)
        if judged.sum() < 5 or judged.mean() < MIN_JUDGED:
            assert got is None
            continue
        seen += 1
        r, wj = rel[judged], w[judged]
        assert got == {
            "consistent": float(np.mean(r * np.sign(wj) > 0)),
            "contrast": float(np.sum(r * wj) / np.sum(wj * wj)),
            "judged": float(judged.mean()),
        }
    assert seen > 5
