"""Block statistics of the cleared-land step against a per-pixel reference."""

from __future__ import annotations

import numpy as np
import pytest

from fortmap.detect.cleared import BLOCK_FIELDS, block_stats


def _reference(before, after, valid, change, block):
    """The statistics pixel by pixel, each grey level summed where it is used (float64)."""
    nb, h, w = before.shape
    bh, bw = h // block, w // block
    out = np.zeros((len(BLOCK_FIELDS), bh, bw), np.float32)
    for bi in range(bh):
        for bj in range(bw):
            n = chg = tb = ta = 0.0
            sb, sa = np.zeros(nb), np.zeros(nb)
            for i in range(bi * block, (bi + 1) * block):
                for j in range(bj * block, (bj + 1) * block):
                    if not valid[i, j]:
                        continue
                    n += 1.0
                    chg += change[i, j]
                    gb = ga = gbr = gar = gbd = gad = 0.0
                    for k in range(nb):
                        sb[k] += before[k, i, j]
                        sa[k] += after[k, i, j]
                        gb += float(before[k, i, j])
                        ga += float(after[k, i, j])
                        if j + 1 < w:
                            gbr += float(before[k, i, j + 1])
                            gar += float(after[k, i, j + 1])
                        if i + 1 < h:
                            gbd += float(before[k, i + 1, j])
                            gad += float(after[k, i + 1, j])
                    if j + 1 < w:
                        tb += abs(gbr - gb) / nb
                        ta += abs(gar - ga) / nb
                    if i + 1 < h:
                        tb += abs(gbd - gb) / nb
                        ta += abs(gad - ga) / nb
            out[0, bi, bj] = n / (block * block)
            if n < 0.5 * block * block:
                continue
            d = sum((sa[k] / n - sb[k] / n) ** 2 for k in range(nb))
            out[1:, bi, bj] = (chg / n, np.sqrt(d), tb / n, ta / n)
    return out


@pytest.mark.parametrize(
    ("nb", "h", "w", "block"),
    [(3, 13, 17, 4), (1, 8, 8, 4), (3, 9, 5, 2), (3, 8, 12, 4), (3, 6, 6, 3), (3, 5, 9, 1)],
)
def test_block_stats_match_the_per_pixel_sums(nb, h, w, block):
    rng = np.random.default_rng(nb * 100 + h)
    before = rng.random((nb, h, w)).astype(np.float32)
    after = rng.random((nb, h, w)).astype(np.float32)
    valid = rng.random((h, w)) > 0.2
    valid[:block, :block] = False  # an all-invalid block keeps zeros but its valid share
    change = (rng.random((h, w)) > 0.7).astype(np.uint8)
    got = block_stats(before, after, valid, change, block)
    assert got.shape == (len(BLOCK_FIELDS), h // block, w // block)
    assert np.array_equal(got, _reference(before, after, valid, change, block))
    assert got[0, 0, 0] == 0 and got[1:, 0, 0].max() == 0 and got[3].max() > 0


def test_block_stats_read_a_strided_core_in_place():
    rng = np.random.default_rng(3)
    before = rng.random((3, 20, 24)).astype(np.float32)
    after = rng.random((3, 20, 24)).astype(np.float32)
    valid = np.ones((20, 24), bool)
    change = np.zeros((20, 24), np.uint8)
    sl = (slice(2, 18), slice(3, 21))
    got = block_stats(before[:, sl[0], sl[1]], after[:, sl[0], sl[1]], valid[sl], change[sl], 4)
    ref = _reference(before[:, sl[0], sl[1]], after[:, sl[0], sl[1]], valid[sl], change[sl], 4)
    assert np.array_equal(got, ref)


def test_extract_cleared_keeps_the_large_clearing_with_its_label_means():
    from affine import Affine
    from scipy import ndimage as ndi

    from fortmap.detect.cleared import extract_cleared

    rng = np.random.default_rng(4)
    h, w = 120, 140
    stats = np.zeros((len(BLOCK_FIELDS), h, w), np.float32)
    stats[0] = 1.0
    stats[2] = 0.02 + 0.01 * rng.random((h, w))
    stats[3] = 0.1
    stats[4] = 0.1
    big, small = (slice(20, 70), slice(30, 80)), (slice(90, 102), slice(100, 112))
    for sl in (big, small):
        stats[1][sl] = 0.6 + 0.4 * rng.random((sl[0].stop - sl[0].start, sl[1].stop - sl[1].start))
        stats[2][sl] = 0.5
        stats[4][sl] = 0.02
    polys, scores, ev = extract_cleared(stats, Affine(2.0, 0, 0, 0, -2.0, 0), 2.0)
    assert len(polys) == 1 and len(scores) == 1  # 1 ha kept, 0.06 ha dropped
    assert abs(polys[0].area - 50 * 50 * 4.0) < 0.05 * 50 * 50 * 4.0
    region = np.zeros((h, w), int)
    region[big] = 1
    assert ev[0]["changed_fraction"] == round(float(ndi.mean(stats[1], region, 1)), 3)
