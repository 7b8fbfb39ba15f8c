"""``fortmap train-change`` and ``fortmap analyze --change-model`` end to end, on GeoTIFFs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from conftest import write_tif
from fortmap.cli.main import cli
from test_learned_change import f1, new_buildings


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_error_line(res) -> str:
    msg = res.output.strip()
    assert msg.startswith("Error: ") and len(msg.splitlines()) == 1 and "Traceback" not in msg
    return msg


def _pair(folder, seed):
    b, a, lab = new_buildings(seed, 224)
    folder.mkdir()
    return (
        write_tif(folder / "before.tif", b),
        write_tif(folder / "after.tif", a),
        write_tif(folder / "label.tif", lab[None].astype(np.float32)),
        lab,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model trained on two labelled pairs with the command, and a third pair to apply it to."""
    root = tmp_path_factory.mktemp("learned")
    pairs = [_pair(root / f"p{s}", s) for s in (20, 21)]
    model = root / "model.npz"
    args = ["train-change", "--out", model, "--epochs", 15, "--quiet"]
    for b, a, lab, _ in pairs:
        args += ["--pair", b, a, lab]
    res = run(*args)
    assert res.exit_code == 0, res.output
    return root, model, pairs, _pair(root / "new", 22)


def test_trained_model_maps_new_buildings_in_a_new_pair(trained, tmp_path):
    _, model, _, (b, a, _, truth) = trained
    out = tmp_path / "run"
    res = run("analyze", "--before", b, "--after", a, "--out", out, "--change-model", model,
              "--no-report", "--quiet")  # fmt: skip
    assert res.exit_code == 0, res.output
    with rasterio.open(out / "change.tif") as ds:
        change = ds.read(1) > 0
    assert f1(change, truth) > 0.6
    s = json.loads((out / "summary.json").read_text())
    assert s["change_from"]["model"] == str(model.resolve())
    assert s["change_from"]["trained_on"]["changed_pixels"] > 0
    # the unsupervised mask on the same pair, for the record of what the model is for
    plain = tmp_path / "plain"
    assert run("analyze", "--before", b, "--after", a, "--out", plain, "--no-report",
               "--quiet").exit_code == 0  # fmt: skip
    assert json.loads((plain / "summary.json").read_text())["change_from"] == "unsupervised"


def test_existing_model_is_kept_without_force(trained):
    root, model, pairs, _ = trained
    before = model.read_bytes()
    b, a, lab, _ = pairs[0]
    res = run("train-change", "--pair", b, a, lab, "--out", model, "--epochs", 1)
    assert res.exit_code == 3 and "use --force" in one_error_line(res)
    assert model.read_bytes() == before


def test_labels_without_change_are_refused_and_nothing_is_written(tmp_path):
    b, a, lab, _ = _pair(tmp_path / "p", 30)
    empty = write_tif(tmp_path / "empty.tif", np.zeros((1, 224, 224), np.float32))
    out = tmp_path / "m.npz"
    res = run("train-change", "--pair", b, a, empty, "--out", out, "--epochs", 1)
    assert res.exit_code == 2 and "no change at all" in one_error_line(res)
    assert not out.exists() and not list(tmp_path.glob(".m.npz*"))


def test_missing_label_and_bad_model_are_one_line_errors(trained, tmp_path):
    root, model, pairs, _ = trained
    b, a, _, _ = pairs[0]
    res = run("train-change", "--pair", b, a, tmp_path / "nope.tif", "--out", tmp_path / "m.npz")
    assert res.exit_code != 0 and "nope.tif" in one_error_line(res)
    junk = tmp_path / "junk.npz"
    junk.write_text("not a model")
    res = run("analyze", "--before", b, "--after", a, "--out", tmp_path / "r",
              "--change-model", junk, "--no-report")  # fmt: skip
    assert res.exit_code != 0 and "junk.npz: not a change model" in one_error_line(res)
    assert not (tmp_path / "r").exists()


def test_model_for_other_bands_is_refused(trained, tmp_path):
    _, model, pairs, _ = trained
    b, a, _, _ = pairs[0]
    with rasterio.open(b) as ds:
        grey = ds.read().mean(axis=0, keepdims=True) / 255.0
    gb = write_tif(tmp_path / "gb.tif", grey)
    ga = write_tif(tmp_path / "ga.tif", grey)
    res = run("analyze", "--before", gb, "--after", ga, "--out", tmp_path / "r",
              "--change-model", model, "--no-report")  # fmt: skip
    assert res.exit_code != 0 and "trained on 3-band imagery" in one_error_line(res)


@pytest.mark.parametrize("block", [None, 96])
def test_model_mask_does_not_depend_on_the_windows(trained, tmp_path, monkeypatch, block):
    """Windows read out to whole segmentation blocks; with blocks smaller than the scene (96 px
    here, 1024 in use), windows of 64 px cut it otherwise than the blocks do."""
    from fortmap.detect import learned_segments

    if block is not None:
        monkeypatch.setattr(learned_segments, "BLOCK_PX", block)
    _, model, _, (b, a, _, _) = trained
    masks = []
    for window in (1024, 64):
        out = tmp_path / f"w{window}"
        res = run("analyze", "--before", b, "--after", a, "--out", out, "--change-model", model,
                  "--window", window, "--no-report", "--quiet")  # fmt: skip
        assert res.exit_code == 0, res.output
        with rasterio.open(out / "change.tif") as ds:
            masks.append(ds.read(1))
    assert masks[0].any() and np.array_equal(masks[0], masks[1])


def test_swapped_dates_teach_buildings_gone(trained, tmp_path):
    """Trained on new buildings with --swap-dates, the model also maps buildings removed."""
    root, plain, pairs, (b, a, _, truth) = trained
    swapped = tmp_path / "swapped.npz"
    args = ["train-change", "--out", swapped, "--epochs", 15, "--quiet", "--swap-dates"]
    for pb, pa, lab, _ in pairs:
        args += ["--pair", pb, pa, lab]
    res = run(*args)
    assert res.exit_code == 0, res.output
    with np.load(swapped) as z:
        assert json.loads(str(z["meta"]))["info"]["swap_dates"] is True
    scores = {}
    for name, model in (("plain", plain), ("swapped", swapped)):
        out = tmp_path / f"gone-{name}"
        # the new pair read backwards: the buildings are there before and gone after
        res = run("analyze", "--before", a, "--after", b, "--out", out, "--change-model", model,
                  "--no-report", "--quiet")  # fmt: skip
        assert res.exit_code == 0, res.output
        with rasterio.open(out / "change.tif") as ds:
            scores[name] = f1(ds.read(1) > 0, truth)
    assert scores["swapped"] > 0.6
    assert scores["swapped"] >= scores["plain"] - 0.05, scores


def test_one_network_without_segments(trained, tmp_path):
    _, _, pairs, (b, a, _, truth) = trained
    model = tmp_path / "plain.npz"
    args = ["train-change", "--out", model, "--epochs", 15, "--quiet", "--members", 1]
    for pb, pa, lab, _ in pairs:
        args += ["--pair", pb, pa, lab]
    assert run(*args, "--no-segments").exit_code == 0
    with np.load(model) as z:
        meta = json.loads(str(z["meta"]))
    assert meta["members"] == 1 and meta["segments"] is False
    out = tmp_path / "run"
    res = run("analyze", "--before", b, "--after", a, "--out", out, "--change-model", model,
              "--no-report", "--quiet")  # fmt: skip
    assert res.exit_code == 0, res.output
    with rasterio.open(out / "change.tif") as ds:
        assert f1(ds.read(1) > 0, truth) > 0.6


def test_another_coregister_than_the_models_is_warned(trained, tmp_path):
    _, model, _, (b, a, _, _) = trained  # trained with the default, --coregister auto
    res = CliRunner().invoke(cli, ["analyze", "--before", str(b), "--after", str(a), "--out",
                                   str(tmp_path / "run"), "--change-model", str(model),
                                   "--coregister", "none", "--no-report"])  # fmt: skip
    assert res.exit_code == 0, res.output
    warned = [x for x in res.output.splitlines() if "trained with --coregister auto" in x]
    assert len(warned) == 1 and "--coregister none" in warned[0]
    same = CliRunner().invoke(cli, ["analyze", "--before", str(b), "--after", str(a), "--out",
                                    str(tmp_path / "same"), "--change-model", str(model),
                                    "--no-report"])  # fmt: skip
    assert same.exit_code == 0 and "trained with --coregister" not in same.output
