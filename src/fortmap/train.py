"""The ``train-change`` job: a change model learned from the analyst's own labelled pairs.

Each pair is read the way ``analyze`` reads one (the after image put onto the before image's
grid and co-registered; each date's values then taken back to its raw values over its data
type's full scale), so the features the model learns from are those ``analyze --change-model``
gives it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from rasterio.enums import Resampling
from rasterio.windows import Window

from fortmap.align.pair import coregister_pair, normalise_pair
from fortmap.detect.change import fit_change_model
from fortmap.detect.learned_change import EPOCHS, MEMBERS, ChangeNet, ModelUnits
from fortmap.detect.learned_training import ThresholdCounts, TrainingSample
from fortmap.errors import InputError, OutputExistsError
from fortmap.io.grids import analysis_grid
from fortmap.io.raster import GridReader, check_overlap, open_info

#: Largest pair read whole for training, megapixels (training pairs are labelled tiles).
MAX_PAIR_MP = 64.0

Progress = Callable[[str, int, int], None]


def read_pair(
    before: str | Path,
    after: str | Path,
    label: str | Path | None = None,
    coregister: str = "auto",
) -> dict:
    """One pair as ``analyze`` sees it, read whole.

    Args:
        before, after: GeoTIFFs of the two dates (any CRS; after is put on before's grid).
        label: a raster of the change (non-zero = change), georeferenced like ``before``
            (warped onto its grid by nearest neighbour).
        coregister: as ``analyze --coregister`` (``auto``, ``shift`` or ``none``).

    Returns:
        dict with ``before``, ``after``, float32 (bands, H, W) in the model's units (see
        :class:`~fortmap.detect.learned_change.ModelUnits`); ``before_read``, ``after_read``,
        the same as ``analyze`` reads them (normalised, for segmenting); ``valid`` and ``label`` bool
        (H, W); ``gsd`` (metres per pixel) and ``dark`` (shade threshold, model units of the
        before image; ``dark_after``, the same in the after image's units).
    """
    binfo = open_info(before, "before image")
    ainfo = open_info(after, "after image")
    check_overlap(binfo, ainfo)
    grid = analysis_grid(binfo)
    if grid.width * grid.height / 1e6 > MAX_PAIR_MP:
        raise InputError(
            f"{binfo.path}: {grid.width} x {grid.height} pixels is more than {MAX_PAIR_MP:g} MP; "
            "train on labelled tiles (crop the pair and its label)"
        )
    if binfo.count != ainfo.count:
        raise InputError(f"{ainfo.path}: {ainfo.count} bands, {binfo.path} has {binfo.count}")
    bands = list(range(1, min(binfo.count, 3) + 1))
    breader = GridReader(binfo.path, grid, bands)
    areader = GridReader(ainfo.path, grid, bands)
    coregister_pair(breader, areader, coregister)
    maps, nb_s, na_s, sv = normalise_pair(breader, areader, grid, 1024, grey=False)
    model = fit_change_model(nb_s, na_s, sv, grid.gsd)
    units = ModelUnits.for_dtype(maps.before_scale, maps.before_offset, binfo.dtype)
    aunits = ModelUnits.for_dtype(maps.after_scale, maps.after_offset, ainfo.dtype)
    whole = Window(0, 0, grid.width, grid.height)
    nb, na = breader.read(whole), areader.read(whole)
    valid = breader.read_valid(whole) & areader.read_valid(whole)
    out = {
        "before": units.apply(nb),
        "after": aunits.apply(na),
        "before_read": nb,
        "after_read": na,
        "valid": valid,
        "gsd": grid.gsd,
        "dark": units.brightness(model.dark),
        "dark_after": aunits.brightness(model.dark),
    }
    if label is not None:
        linfo = open_info(label, "change label")
        check_overlap(binfo, linfo)
        lab = GridReader(linfo.path, grid, [1], resampling=Resampling.nearest)
        out["label"] = (lab.read(whole)[0] != 0) & lab.read_valid(whole)
    return out


def train_change_model(
    pairs: Sequence[tuple[str | Path, str | Path, str | Path]],
    out: str | Path,
    *,
    force: bool = False,
    epochs: int = EPOCHS,
    seed: int = 0,
    coregister: str = "auto",
    swap_dates: bool = False,
    members: int = MEMBERS,
    segments: bool = True,
    progress: Progress | None = None,
) -> ChangeNet:
    """Train a change model on labelled pairs and write it to ``out`` (``.npz``).

    Args:
        pairs: (before, after, label) raster paths.
        out: model file to write; an existing one is kept unless ``force``.
        force: replace an existing ``out``.
        epochs: passes over the training sample.
        seed: random seed (pixel sample, initial weights, minibatch order).
        coregister: as ``analyze --coregister``; use the same when applying the model (pairs
            already registered, as LEVIR-CD's are, are best read with ``none``: resampling the
            after image by a mis-measured shift blurs it by an amount that varies by pair).
        swap_dates: also learn from each pair with its dates swapped (after as before), so
            that a change labelled one way (buildings built) also teaches the other (buildings
            gone): a change label does not depend on the order of the dates.
        members: networks in the ensemble (each on its own resample; outputs averaged).
        segments: average the output over image segments before the threshold
            (:mod:`fortmap.detect.learned_segments`); the threshold is then picked on every
            training pixel so averaged, which reads each pair a second time.
        progress: callback (step, done, total).

    Returns:
        The trained :class:`ChangeNet` (as written).

    Raises:
        InputError: no pairs, an unreadable or mismatched input, or labels with no change.
        OutputExistsError: ``out`` exists and ``force`` is False.
    """
    tell = progress or (lambda step, done, total: None)
    out = Path(out)
    if not pairs:
        raise InputError("train-change: give at least one --pair BEFORE AFTER LABEL")
    if out.is_dir():
        raise OutputExistsError(f"{out}: is a directory; give a model file name (.npz)")
    if out.exists() and not force:
        raise OutputExistsError(f"{out}: exists; use --force to replace it")
    if not out.parent.is_dir():
        raise InputError(f"{out.parent}: output folder does not exist")
    rng = np.random.default_rng(seed)
    sample = TrainingSample()
    bands, gsds = set(), []
    for k, (b, a, lab) in enumerate(pairs):
        tell("reading pairs", k, len(pairs))
        p = read_pair(b, a, lab, coregister)
        bands.add(p["before"].shape[0])
        gsds.append(p["gsd"])
        sample.add_pair(p["before"], p["after"], p["label"], p["valid"], p["gsd"], p["dark"], rng)
        if swap_dates:
            sample.add_pair(p["after"], p["before"], p["label"], p["valid"], p["gsd"],
                            p["dark_after"], rng)  # fmt: skip
    tell("reading pairs", len(pairs), len(pairs))
    if len(bands) != 1:
        raise InputError(f"train-change: pairs have different band counts {sorted(bands)}")
    if sample.changed == 0:
        raise InputError("train-change: the labels mark no change at all; nothing to learn")
    tell("training", 0, epochs * members)
    net = sample.fit(epochs=epochs, seed=seed, bands=bands.pop(), gsd=float(np.median(gsds)),
                     members=members,
                     progress=lambda done, total: tell("training", done, total))  # fmt: skip
    if segments:
        net.segments = True
        net.threshold, f1 = segment_threshold(net, pairs, coregister, swap_dates, tell)
        net.info["training_f1"] = round(f1, 4)
    net.info["pairs"] = [[str(Path(x).resolve()) for x in pair] for pair in pairs]
    net.info["coregister"] = coregister
    net.info["swap_dates"] = swap_dates
    net.info["segments"] = segments
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".npz", dir=out.parent)
    os.close(fd)
    try:
        net.save(tmp)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return net


def segment_threshold(
    net: ChangeNet,
    pairs: Sequence[tuple[str | Path, str | Path, str | Path]],
    coregister: str,
    swap_dates: bool,
    tell: Progress,
) -> tuple[float, float]:
    """Threshold of highest F1 on every training pixel, the output averaged over segments as
    ``analyze`` averages it (the pairs read again, so that none is held while training).

    Returns:
        (threshold, its F1 on the training pixels).
    """
    from fortmap.detect.learned_segments import segment_mean

    counts = ThresholdCounts()
    for k, (b, a, lab) in enumerate(pairs):
        tell("choosing the threshold", k, len(pairs))
        p = read_pair(b, a, lab, coregister)
        views = [(p["before"], p["after"], p["before_read"], p["after_read"], p["dark"])]
        if swap_dates:
            views.append((p["after"], p["before"], p["after_read"], p["before_read"],
                          p["dark_after"]))  # fmt: skip
        for mb, ma, rb, ra, dark in views:
            prob = net.probability(mb, ma, p["valid"], p["gsd"], dark)
            prob = segment_mean(prob, rb, ra, p["valid"], p["gsd"])
            counts.add(prob[p["valid"]], p["label"][p["valid"]])
    tell("choosing the threshold", len(pairs), len(pairs))
    return counts.pick()
