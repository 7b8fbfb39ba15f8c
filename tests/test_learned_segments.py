"""Segment averaging of a learned model's output: objects, both dates alike, windows exact."""

from __future__ import annotations

import numpy as np
from rasterio.windows import Window

from conftest import textured_scene
from fortmap.detect.learned_segments import BLOCK_PX, block_aligned, segment_mean, segments


def _pair(size: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    before = textured_scene(size, seed).astype(np.float32)
    after = before.copy()
    for _ in range(6):
        r, c = rng.integers(0, size - 30, 2)
        after[:, r : r + 24, c : c + 30] = rng.uniform(0.6, 0.9)
    prob = rng.random((size, size)).astype(np.float32)
    return before, after, prob


def test_a_uniform_object_gets_its_mean_and_ground_around_it_keeps_its_own():
    img = np.full((3, 60, 60), 0.1, np.float32)
    img[:, 20:40, 20:40] = 0.8
    prob = np.zeros((60, 60), np.float32)
    prob[20:40, 20:30] = 1.0
    out = segment_mean(prob, img, img, np.ones((60, 60), bool), gsd=0.5)
    assert np.allclose(out[20:40, 20:40], 0.5, atol=1e-6)
    assert np.allclose(out[:10], 0.0)


def test_both_dates_count_alike():
    before, after, prob = _pair()
    valid = np.ones(prob.shape, bool)
    ab = segment_mean(prob, before, after, valid, 0.5)
    ba = segment_mean(prob, after, before, valid, 0.5)
    np.testing.assert_allclose(ab, ba, rtol=0, atol=1e-6)
    # a mean of means: within the probability's range, and smoother than it
    assert ab.min() >= 0 and ab.max() <= 1 and ab.std() < prob.std()


def test_invalid_pixels_neither_count_nor_get_a_value():
    before, after, prob = _pair(120, 1)
    valid = np.ones(prob.shape, bool)
    valid[:, :30] = False
    out = segment_mean(prob, before, after, valid, 0.5)
    assert (out[:, :30] == 0).all()
    hidden = prob.copy()
    hidden[:, :30] = 1.0  # what lies under the nodata does not move the valid pixels' means
    np.testing.assert_array_equal(segment_mean(hidden, before, after, valid, 0.5), out)


def test_segments_never_cross_a_block_edge():
    before, _, _ = _pair(300, 2)
    b = 128
    lab = segments(before, 0.5, origin=(0, 0), block=b)
    assert not (set(np.unique(lab[:b, :b])) & set(np.unique(lab[b:, :])))
    assert not (set(np.unique(lab[:, :b])) & set(np.unique(lab[:, b:])))


def test_a_block_aligned_window_gives_the_whole_image_values_in_its_core():
    before, after, prob = _pair(600, 3)
    valid = np.ones(prob.shape, bool)
    b = 128  # small blocks, so that a small scene holds several
    whole = segment_mean(prob, before, after, valid, 0.5, block=b)
    core = Window(300, 280, 120, 100)
    reach = block_aligned(core, 600, 600, b)
    assert reach.col_off % b == 0 and reach.row_off % b == 0
    # the window reaches 20 px beyond the blocks (as a feature halo does), cut at odd places
    r0, c0 = int(reach.row_off) - 20, int(reach.col_off) - 20
    r1 = min(600, int(reach.row_off + reach.height) + 20)
    c1 = min(600, int(reach.col_off + reach.width) + 20)
    part = segment_mean(
        prob[r0:r1, c0:c1],
        before[:, r0:r1, c0:c1],
        after[:, r0:r1, c0:c1],
        valid[r0:r1, c0:c1],
        0.5,
        origin=(r0, c0),
        block=b,
    )
    rs = slice(int(core.row_off) - r0, int(core.row_off + core.height) - r0)
    cs = slice(int(core.col_off) - c0, int(core.col_off + core.width) - c0)
    np.testing.assert_array_equal(
        part[rs, cs],
        whole[int(core.row_off) : int(core.row_off + core.height), 300:420],
    )


def test_blocks_are_the_default_windows():
    from fortmap.analysis import AnalyzeOptions

    b = BLOCK_PX
    assert b == AnalyzeOptions().window_px
    core = Window(b + 44, 10, 50, b + 100)
    assert block_aligned(core, 4 * b, 4 * b) == Window(b, 0, b, 2 * b)
    # cut at the grid's edge
    assert block_aligned(core, b + 300, b + 200) == Window(b, 0, 300, b + 200)
