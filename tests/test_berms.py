"""Berms: a DSM ridge, and a ridge seen in the image with sun-consistent flank shading."""

from __future__ import annotations

import numpy as np
import shapely

from fortmap.detect.berms import find_berms, flank_contrast, merge_pieces

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
