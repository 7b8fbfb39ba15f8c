"""Training a learned change model: pixel samples drawn from labelled pairs, and the threshold.

The network is fitted on a class-balanced sample of labelled pixels; its decision threshold is
the one of highest F1 on a separate, prior-preserving sample of the training pixels, or, for a
model whose output is averaged over image segments, on every training pixel so averaged
(:func:`fortmap.train.train_change_model`). It is fitted on the training labels, never on the
data scored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fortmap.detect.learned_change import (
    EPOCHS,
    PER_CLASS,
    PER_PAIR_THRESHOLD,
    THRESHOLDS,
    ChangeNet,
    fit_mlp,
)
from fortmap.detect.learned_features import feature_chunks, feature_count, pixel_features
from fortmap.errors import InputError


def pick_threshold(net: ChangeNet, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Threshold of highest F1 on a prior-preserving sample ``x``, ``y`` of training pixels
    (see :class:`ThresholdCounts`).

    Returns:
        (threshold, the F1 it gives on that sample).
    """
    counts = ThresholdCounts()
    counts.add(net.forward(np.asarray(x, np.float32)), np.asarray(y, bool))
    return counts.pick()


@dataclass
class ThresholdCounts:
    """Pixels counted at each candidate threshold, to pick the one of highest F1.

    A network that separates its training pixels well gives the same F1 over a range of
    thresholds; the middle of that plateau (F1 within 0.005 of the best) is taken rather than
    its lowest end, which would keep every doubtful pixel of new imagery.

    Example:
        >>> import numpy as np
        >>> counts = ThresholdCounts()
        >>> counts.add(np.array([0.1, 0.2, 0.7, 0.9]), np.array([False, False, True, True]))
        >>> t, f1 = counts.pick()  # every threshold from 0.2 to 0.65 separates them
        >>> round(t, 2), f1
        (0.45, 1.0)
    """

    hits: np.ndarray = field(default_factory=lambda: np.zeros(THRESHOLDS.size, np.int64))
    predicted: np.ndarray = field(default_factory=lambda: np.zeros(THRESHOLDS.size, np.int64))
    true: int = 0

    def add(self, prob: np.ndarray, label: np.ndarray) -> None:
        """Count pixels of probability ``prob`` and bool ``label`` (any equal shapes)."""
        p, y = np.ravel(prob), np.ravel(label)
        for k, t in enumerate(THRESHOLDS):
            m = p > t
            self.predicted[k] += int(m.sum())
            self.hits[k] += int((m & y).sum())
        self.true += int(y.sum())

    def pick(self) -> tuple[float, float]:
        """(threshold, its F1) over everything counted."""
        scores = 2 * self.hits / np.maximum(self.predicted + self.true, 1)
        plateau = np.flatnonzero(scores >= scores.max() - 0.005)
        k = int(plateau[len(plateau) // 2])
        return float(THRESHOLDS[k]), float(scores[k])


@dataclass
class TrainingSample:
    """Feature rows drawn from labelled pairs: class-balanced for fitting, prior-preserving for
    the threshold."""

    fit_x: list[np.ndarray] = field(default_factory=list)
    fit_y: list[np.ndarray] = field(default_factory=list)
    thr_x: list[np.ndarray] = field(default_factory=list)
    thr_y: list[np.ndarray] = field(default_factory=list)
    pixels: int = 0
    changed: int = 0
    per_class: int = PER_CLASS
    per_pair_threshold: int = PER_PAIR_THRESHOLD

    def add_pair(
        self,
        before: np.ndarray,
        after: np.ndarray,
        label: np.ndarray,
        valid: np.ndarray,
        gsd: float,
        dark: float,
        rng: np.random.Generator,
    ) -> None:
        """Draw pixels of one pair (arrays on one grid, in the model's units)."""
        lab = np.asarray(label, bool) & valid
        pos = np.flatnonzero(lab)
        neg = np.flatnonzero(~lab & valid)
        every = np.flatnonzero(valid)
        take = [
            rng.choice(pos, min(self.per_class, pos.size), replace=False),
            rng.choice(neg, min(self.per_class, neg.size), replace=False),
        ]
        thr = rng.choice(every, min(self.per_pair_threshold, every.size), replace=False)
        idx = np.concatenate(take + [thr])
        feats = _features_at(before, after, gsd, dark, idx)
        n_fit = take[0].size + take[1].size
        self.fit_x.append(feats[:n_fit])
        self.fit_y.append(lab.ravel()[idx[:n_fit]])
        self.thr_x.append(feats[n_fit:])
        self.thr_y.append(lab.ravel()[thr])
        self.pixels += int(valid.sum())
        self.changed += int(lab.sum())

    def fit(
        self, *, epochs: int = EPOCHS, seed: int = 0, bands: int = 3, gsd: float = 0.5,
        members: int = 1, progress=None,
    ):  # fmt: skip
        """Train on everything added (:func:`fit_mlp`); returns a :class:`ChangeNet` with its
        threshold set on the prior-preserving sample. ``progress`` is called with (epochs done,
        epochs x members)."""
        if not self.fit_x:
            raise InputError("change model: no training pairs")
        net = fit_mlp(np.concatenate(self.fit_x), np.concatenate(self.fit_y), epochs=epochs,
                      seed=seed, members=members, progress=progress)  # fmt: skip
        net.threshold, f1 = pick_threshold(net, np.concatenate(self.thr_x),
                                           np.concatenate(self.thr_y))  # fmt: skip
        net.bands, net.gsd = bands, gsd
        net.info = {
            "pixels": self.pixels,
            "changed_pixels": self.changed,
            "training_f1": round(f1, 4),
            "epochs": epochs,
            "seed": seed,
            "members": members,
        }
        return net


def _features_at(
    before: np.ndarray, after: np.ndarray, gsd: float, dark: float, idx: np.ndarray
) -> np.ndarray:
    """Features of the flat pixel indexes ``idx``, computed chunk by chunk."""
    h, w = before.shape[1:]
    rows = idx // w
    out = np.empty((idx.size, feature_count(before.shape[0])), np.float32)
    for r0, r1 in feature_chunks(h):
        sel = np.flatnonzero((rows >= r0) & (rows < r1))
        if not sel.size:
            continue
        f = pixel_features(before, after, gsd, dark, rows=(r0, r1))
        out[sel] = f.reshape(f.shape[0], -1)[:, idx[sel] - r0 * w].T
    return out
