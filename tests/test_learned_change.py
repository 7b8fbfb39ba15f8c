"""The learned change model: features, network, threshold, model files, window masks."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import textured_scene
from fortmap.detect.change import fit_change_model
from fortmap.detect.learned_change import (
    FEATURE_VERSION,
    ChangeNet,
    ModelUnits,
    fit_mlp,
    learned_mask,
)
from fortmap.detect.learned_features import feature_count, halo_px, pixel_features
from fortmap.detect.learned_training import ThresholdCounts, TrainingSample, pick_threshold
from fortmap.errors import InputError


def new_buildings(seed: int, size: int = 192) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(before, after, label): flat grey roofs with a shadow strip appear in the after image;
    elsewhere the after image differs by a gain, noise and a few re-textured (not built) patches
    that are not labelled."""
    rng = np.random.default_rng(seed)
    before = textured_scene(size, seed)
    after = np.clip(before * 0.9 + 0.04 + rng.normal(0, 0.01, before.shape), 0, 1)
    label = np.zeros((size, size), bool)
    for _ in range(8):
        r, c = rng.integers(4, size - 24, 2)
        h, w = rng.integers(12, 20, 2)
        after[:, r : r + h, c : c + w] = rng.uniform(0.55, 0.8)
        after[:, r + h : r + h + 3, c : c + w] *= 0.35  # its shadow
        label[r : r + h, c : c + w] = True
    for _ in range(6):
        r, c = rng.integers(0, size - 20, 2)
        after[:, r : r + 20, c : c + 20] = np.clip(
            after[:, r : r + 20, c : c + 20] + rng.normal(0, 0.05, (3, 20, 20)), 0, 1
        )
    return before.astype(np.float32), after.astype(np.float32), label


def f1(pred: np.ndarray, truth: np.ndarray) -> float:
    tp = (pred & truth).sum()
    return 2 * tp / max(pred.sum() + truth.sum(), 1)


def test_feature_count_matches_the_features():
    b, a, _ = new_buildings(0, 48)
    assert pixel_features(b, a, 0.5, 0.2).shape == (feature_count(3), 48, 48)
    assert pixel_features(b[:1], a[:1], 0.5, 0.2).shape == (feature_count(1), 48, 48)


def test_row_chunks_and_windows_give_the_whole_image_values():
    b, a, _ = new_buildings(1, 160)
    whole = pixel_features(b, a, 0.5, 0.2)
    assert np.array_equal(pixel_features(b, a, 0.5, 0.2, rows=(40, 90)), whole[:, 40:90])
    # a window with the documented halo sees its core exactly as the whole image does
    h = halo_px(0.5)
    r0, r1, c0, c1 = 70 - h, 100 + h, 60 - h, 95 + h
    assert r0 >= 0 and c0 >= 0 and r1 <= 160 and c1 <= 160
    win = pixel_features(b[:, r0:r1, c0:c1], a[:, r0:r1, c0:c1], 0.5, 0.2)
    np.testing.assert_allclose(win[:, h:-h, h:-h], whole[:, 70:100, 60:95], rtol=0, atol=1e-6)
    # too little context does not
    small = pixel_features(b[:, 68:102, 58:97], a[:, 68:102, 58:97], 0.5, 0.2)
    assert not np.allclose(small[:, 2:-2, 2:-2], whole[:, 70:100, 60:95], atol=1e-6)


def test_network_learns_a_rule_a_line_cannot():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (3000, 2)).astype(np.float32)
    y = (x[:, 0] * x[:, 1]) > 0  # XOR of signs
    seen = []
    net = fit_mlp(x, y, epochs=60, hidden=16, progress=lambda d, t: seen.append((d, t)))
    assert ((net.forward(x) > 0.5) == y).mean() > 0.9
    assert seen == [(k, 60) for k in range(1, 61)]
    with pytest.raises(InputError, match="both changed and unchanged"):
        fit_mlp(x, np.ones(len(x), bool))


def test_threshold_is_the_middle_of_the_best_f1_plateau():
    net = fit_mlp(np.array([[0.0], [1.0]] * 50, np.float32), np.array([0, 1] * 50, bool))
    x = np.linspace(0, 1, 101, dtype=np.float32)[:, None]
    p = net.forward(x)
    grid = np.round(np.arange(0.05, 0.96, 0.05), 2)
    y = p > np.quantile(p, 0.7)
    f1s = np.array([2 * ((p > s) & y).sum() / max((p > s).sum() + y.sum(), 1) for s in grid])
    t, best = pick_threshold(net, x, y)
    assert best >= f1s.max() - 0.005 and best > 0.8
    # perfectly separated: every threshold between the classes ties, and the middle one is taken
    xs = np.array([[0.0]] * 50 + [[1.0]] * 50, np.float32)
    ys = np.array([False] * 50 + [True] * 50)
    ps = net.forward(xs)
    tied = [s for s in grid if ((ps > s) == ys).all()]
    t, best = pick_threshold(net, xs, ys)
    assert best == 1.0 and len(tied) > 2
    assert t == tied[len(tied) // 2]


def test_trained_on_one_pair_finds_new_buildings_in_another():
    sample = TrainingSample(per_class=10_000, per_pair_threshold=5000)
    rng = np.random.default_rng(0)
    for seed in (10, 11):
        b, a, lab = new_buildings(seed)
        sample.add_pair(b, a, lab, np.ones(lab.shape, bool), 0.5, 0.2, rng)
    net = sample.fit(epochs=15)
    b, a, lab = new_buildings(12)
    valid = np.ones(lab.shape, bool)
    model = fit_change_model(b, a, valid, 0.5)
    identity = ModelUnits(np.ones(3), np.zeros(3), 1.0)
    prob, mask = learned_mask(net, model, (identity, identity), b, a, valid)
    assert prob.shape == lab.shape and mask.dtype == np.uint8
    assert f1(mask > 0, lab) > 0.6
    # the re-textured patches and the gain change are not taken for buildings
    assert (mask[~lab] > 0).mean() < 0.03


def test_model_file_round_trip_and_bad_files(tmp_path):
    b, a, lab = new_buildings(3, 96)
    s = TrainingSample(per_class=500, per_pair_threshold=500)
    s.add_pair(b, a, lab, np.ones(lab.shape, bool), 0.5, 0.2, np.random.default_rng(0))
    net = s.fit(epochs=2)
    net.save(tmp_path / "m.npz")
    back = ChangeNet.load(tmp_path / "m.npz")
    x = pixel_features(b, a, 0.5, 0.2).reshape(feature_count(3), -1)
    assert np.array_equal(back.forward(x.T), net.forward(x.T))
    # the folded, feature-major form used on windows computes the same function
    np.testing.assert_allclose(net.forward_columns(x), net.forward(x.T), rtol=0, atol=1e-5)
    assert back.threshold == net.threshold and back.bands == 3 and back.info == net.info
    (tmp_path / "junk.npz").write_bytes(b"not a model")
    with pytest.raises(InputError, match="junk.npz: not a change model"):
        ChangeNet.load(tmp_path / "junk.npz")
    with pytest.raises(InputError, match="not found"):
        ChangeNet.load(tmp_path / "missing.npz")
    import json

    z = dict(np.load(tmp_path / "m.npz"))
    meta = json.loads(str(z["meta"]))
    meta["feature_version"] = FEATURE_VERSION + 1
    z["meta"] = json.dumps(meta)
    np.savez(tmp_path / "old.npz", **z)
    with pytest.raises(InputError, match="train it again"):
        ChangeNet.load(tmp_path / "old.npz")
    with pytest.raises(InputError, match="trained on 3-band"):
        back.probability(b[:1], a[:1], np.ones(lab.shape, bool), 0.5, 0.2)


def test_model_units_undo_the_readers_stretch():
    raw = np.array([[[0.0, 51.0]], [[102.0, 255.0]]], np.float32)  # 2 bands of 8-bit values
    scale, offset = np.array([1 / 200, 1 / 100]), np.array([-0.1, 0.2])
    read = raw * scale[:, None, None].astype(np.float32) + offset[:, None, None].astype(np.float32)
    u = ModelUnits.for_dtype(scale, offset, "uint8")
    np.testing.assert_allclose(u.apply(read), raw / 255, atol=1e-6)
    assert ModelUnits.for_dtype(scale, offset, "uint16").full_scale == 65535
    assert ModelUnits.for_dtype(scale, offset, "float32").full_scale == 1.0
    # a band-mean level maps through the bands' mean map
    assert u.brightness(0.05) == pytest.approx((0.05 - 0.05) / (0.0075 * 255))


def test_ensemble_output_is_its_members_mean_and_progress_counts_them_all():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(600, 4)).astype(np.float32)
    y = x[:, 0] - x[:, 2] > 0
    seen = []
    net = fit_mlp(x, y, epochs=3, hidden=8, members=3, progress=lambda d, t: seen.append((d, t)))
    assert len(net.members) == 3 and seen[-1] == (9, 9) and len(seen) == 9
    alone = [ChangeNet(net.mean, net.scale, [m]).forward(x) for m in net.members]
    np.testing.assert_allclose(net.forward(x), np.mean(alone, axis=0), atol=1e-6)
    # members learnt from different resamples, so they differ
    assert not np.allclose(alone[0], alone[1])
    np.testing.assert_allclose(net.forward_columns(x.T), net.forward(x), atol=1e-5)


def test_threshold_counts_add_up_over_pairs():
    rng = np.random.default_rng(3)
    p, y = rng.random(1000), rng.random(1000) < 0.3
    p[y] = np.clip(p[y] + 0.4, 0, 1)
    one, two = ThresholdCounts(), ThresholdCounts()
    one.add(p, y)
    two.add(p[:400], y[:400])
    two.add(p[400:].reshape(20, 30), y[400:].reshape(20, 30))
    assert one.pick() == two.pick()
    t, f = one.pick()
    assert 0.05 <= t <= 0.95 and f == pytest.approx(
        2 * (y & (p > t)).sum() / ((p > t).sum() + y.sum())
    )


def test_model_files_of_one_network_still_load(tmp_path):
    """Files written before ensembles (weights w0..w5, no members) are one network, no segments."""
    import json

    b, a, lab = new_buildings(4, 64)
    s = TrainingSample(per_class=300, per_pair_threshold=300)
    s.add_pair(b, a, lab, np.ones(lab.shape, bool), 0.5, 0.2, np.random.default_rng(0))
    net = s.fit(epochs=1)
    meta = {"threshold": 0.4, "bands": 3, "gsd": 0.5, "feature_version": FEATURE_VERSION}
    arrays = {f"w{i}": w for i, w in enumerate(net.members[0])}
    np.savez(tmp_path / "v1.npz", mean=net.mean, scale=net.scale, meta=json.dumps(meta), **arrays)
    old = ChangeNet.load(tmp_path / "v1.npz")
    assert len(old.members) == 1 and old.segments is False and old.threshold == 0.4
    x = pixel_features(b, a, 0.5, 0.2).reshape(feature_count(3), -1).T
    np.testing.assert_array_equal(old.forward(x), net.forward(x))
    net.segments = True
    net.save(tmp_path / "v2.npz")
    assert ChangeNet.load(tmp_path / "v2.npz").segments is True
