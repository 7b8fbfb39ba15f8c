"""A change model learned from labelled pairs: a small neural network on per-pixel features.

The unsupervised model of :mod:`fortmap.detect.change` flags every kind of change the issue asks
for (structures and reshaped ground). An analyst who has labelled a few pairs of their own kind of
imagery with the change they care about (new buildings, say) can instead train this model with
``fortmap train-change`` and apply it with ``fortmap analyze --change-model``. It is a multilayer
perceptron (two hidden layers of :data:`HIDDEN` units, ReLU) on the features of
:mod:`fortmap.detect.learned_features`, trained with Adam on a class-balanced sample of labelled
pixels. Its decision threshold is the one that maximises F1 on a separate, prior-preserving
sample of the training pixels: it is fitted on the training labels, never on the data scored.

The model is saved as one ``.npz`` file (weights, feature scaling, threshold, the bands and the
ground sample distance it was trained at, and what it was trained on).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> x = rng.normal(size=(4000, 3)).astype(np.float32)
    >>> y = x[:, 0] + x[:, 1] > 0
    >>> net = fit_mlp(x, y, epochs=60, hidden=8)
    >>> bool(((net.forward(x) > 0.5) == y).mean() > 0.95)
    True
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fortmap.detect.learned_features import (
    feature_chunks,
    feature_count,
    halo_px,
    pixel_features,
)
from fortmap.errors import InputError

#: Units of each hidden layer.
HIDDEN = 64
#: Passes over the training sample.
EPOCHS = 30
#: Adam step size, minibatch size and L2 weight decay.
LEARNING_RATE = 2e-3
BATCH = 1024
WEIGHT_DECAY = 1e-4
#: Labelled pixels drawn per pair and class (changed / unchanged) for training, and pixels drawn
#: per pair, without regard to the label, for choosing the threshold.
PER_CLASS = 30_000
PER_PAIR_THRESHOLD = 20_000
#: Candidate thresholds on the network's output.
THRESHOLDS = np.round(np.arange(0.05, 0.96, 0.05), 2)
#: Version of the feature set a saved model expects.
FEATURE_VERSION = 1


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


@dataclass
class ChangeNet:
    """A trained network and what it needs to be applied.

    Attributes:
        mean, scale: per-feature standardisation (feature - mean) / scale.
        weights: [W1, b1, W2, b2, W3, b3].
        threshold: output above which a pixel is change (0..1).
        bands: image bands the model was trained on (1 or 3).
        gsd: metres per pixel of the training imagery (for the record; features are in metres).
        info: what it was trained on (pairs, pixels, training F1).
    """

    mean: np.ndarray
    scale: np.ndarray
    weights: list[np.ndarray]
    threshold: float = 0.5
    bands: int = 3
    gsd: float = 0.5
    info: dict = field(default_factory=dict)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Change probability of feature rows ``x`` (N, F) -> (N,)."""
        w1, b1, w2, b2, w3, b3 = self.weights
        z = (x - self.mean) / self.scale
        h = np.maximum(z @ w1 + b1, 0)
        h = np.maximum(h @ w2 + b2, 0)
        return _sigmoid(h @ w3 + b3)[:, 0].astype(np.float32)

    def forward_columns(self, x: np.ndarray) -> np.ndarray:
        """Change probability of feature columns ``x`` (F, N) -> (N,): the same function as
        :meth:`forward` (to float rounding), with the standardisation folded into the first
        layer so the features are read once."""
        w1, b1, w2, b2, w3, b3 = self.weights
        w1s = (w1 / self.scale[:, None]).astype(np.float32)
        b1s = (b1 - (self.mean / self.scale) @ w1).astype(np.float32)
        h = w1s.T @ x
        h += b1s[:, None]
        np.maximum(h, 0, out=h)
        h2 = w2.T @ h
        h2 += b2[:, None]
        np.maximum(h2, 0, out=h2)
        return _sigmoid(w3.T @ h2 + b3[:, None])[0].astype(np.float32)

    def halo_px(self, gsd: float) -> int:
        """Context pixels a window needs on a grid of ``gsd`` metres per pixel."""
        return halo_px(gsd)

    def probability(
        self, before: np.ndarray, after: np.ndarray, valid: np.ndarray, gsd: float, dark: float
    ) -> np.ndarray:
        """Per-pixel change probability of a window (with halo).

        Args:
            before, after: float32 (bands, H, W) in the model's units (:class:`ModelUnits`).
            valid: bool (H, W).
            gsd: metres per pixel.
            dark: the scene's shade threshold on brightness.

        Returns:
            float32 (H, W), 0 where invalid.
        """
        if before.shape[0] != self.bands:
            raise InputError(
                f"change model: trained on {self.bands}-band imagery, given {before.shape[0]} bands"
            )
        h, w = valid.shape
        out = np.zeros((h, w), np.float32)
        for r0, r1 in feature_chunks(h):
            f = pixel_features(before, after, gsd, dark, rows=(r0, r1))
            out[r0:r1] = self.forward_columns(f.reshape(f.shape[0], -1)).reshape(r1 - r0, w)
        out[~valid] = 0.0
        return out

    def save(self, path: str | Path) -> None:
        """Write the model to ``path`` (``.npz``)."""
        arrays = {f"w{i}": w for i, w in enumerate(self.weights)}
        meta = {
            "threshold": self.threshold,
            "bands": self.bands,
            "gsd": self.gsd,
            "feature_version": FEATURE_VERSION,
            "info": self.info,
        }
        with open(path, "wb") as fh:
            np.savez(fh, mean=self.mean, scale=self.scale, meta=json.dumps(meta), **arrays)

    @classmethod
    def load(cls, path: str | Path) -> ChangeNet:
        """Read a model written by :meth:`save`.

        Raises:
            InputError: the file is missing, not a model, or of another feature version.
        """
        p = Path(path)
        if not p.is_file():
            raise InputError(f"{p}: change model not found")
        try:
            with np.load(p, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                weights = [z[f"w{i}"].astype(np.float32) for i in range(6)]
                mean, scale = z["mean"].astype(np.float32), z["scale"].astype(np.float32)
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(
                f"{p}: not a change model written by fortmap train-change ({exc})"
            ) from None
        if meta.get("feature_version") != FEATURE_VERSION:
            raise InputError(
                f"{p}: change model of feature version {meta.get('feature_version')}, this "
                f"fortmap reads version {FEATURE_VERSION}: train it again"
            )
        if mean.shape != (feature_count(meta["bands"]),) or weights[0].shape[0] != mean.size:
            raise InputError(f"{p}: change model's weights do not match its feature count")
        return cls(mean, scale, weights, float(meta["threshold"]), int(meta["bands"]),
                   float(meta["gsd"]), meta.get("info", {}))  # fmt: skip


def fit_mlp(
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int = EPOCHS,
    hidden: int = HIDDEN,
    seed: int = 0,
    progress=None,
) -> ChangeNet:
    """Train the network on feature rows ``x`` (N, F) and labels ``y`` (N,), classes balanced.

    Args:
        x: float32 features.
        y: bool labels (True = change).
        epochs: passes over the sample.
        hidden: units per hidden layer.
        seed: random seed (initial weights and minibatch order).
        progress: called with (epochs done, epochs) after each epoch.

    Returns:
        A :class:`ChangeNet` with threshold 0.5 (see :func:`pick_threshold`).
    """
    rng = np.random.default_rng(seed)
    x = np.asarray(x, np.float32)
    y = np.asarray(y, bool)
    if len(y) < 10 or y.all() or not y.any():
        raise InputError("change model: training needs both changed and unchanged pixels")
    mean = x.mean(axis=0)
    scale = x.std(axis=0) + np.float32(1e-6)
    z = (x - mean) / scale
    d = z.shape[1]
    params = [
        rng.normal(0, np.sqrt(2 / d), (d, hidden)).astype(np.float32),
        np.zeros(hidden, np.float32),
        rng.normal(0, np.sqrt(2 / hidden), (hidden, hidden)).astype(np.float32),
        np.zeros(hidden, np.float32),
        rng.normal(0, np.sqrt(1 / hidden), (hidden, 1)).astype(np.float32),
        np.zeros(1, np.float32),
    ]
    m1 = [np.zeros_like(p) for p in params]
    m2 = [np.zeros_like(p) for p in params]
    pos = y.mean()
    cw = np.where(y, 0.5 / pos, 0.5 / (1 - pos)).astype(np.float32)
    yf = y.astype(np.float32)
    t = 0
    for epoch in range(epochs):
        order = rng.permutation(len(y))
        for i in range(0, len(y), BATCH):
            j = order[i : i + BATCH]
            xb, yb, wb = z[j], yf[j, None], cw[j, None]
            w1, b1, w2, b2, w3, b3 = params
            z1 = xb @ w1 + b1
            a1 = np.maximum(z1, 0)
            z2 = a1 @ w2 + b2
            a2 = np.maximum(z2, 0)
            g3 = wb * (_sigmoid(a2 @ w3 + b3) - yb) / len(j)
            g2 = (g3 @ w3.T) * (z2 > 0)
            g1 = (g2 @ w2.T) * (z1 > 0)
            grads = [xb.T @ g1, g1.sum(0), a1.T @ g2, g2.sum(0), a2.T @ g3, g3.sum(0)]
            t += 1
            for k in range(6):
                g = grads[k] + (WEIGHT_DECAY * params[k] if k % 2 == 0 else 0)
                m1[k] = 0.9 * m1[k] + 0.1 * g
                m2[k] = 0.999 * m2[k] + 0.001 * g * g
                step = (
                    LEARNING_RATE
                    * (m1[k] / (1 - 0.9**t))
                    / (np.sqrt(m2[k] / (1 - 0.999**t)) + 1e-8)
                )
                params[k] = (params[k] - step).astype(np.float32)
        if progress is not None:
            progress(epoch + 1, epochs)
    return ChangeNet(mean.astype(np.float32), scale.astype(np.float32), params)


def pick_threshold(net: ChangeNet, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Threshold of highest F1 on a prior-preserving sample ``x``, ``y`` of training pixels.

    A network that separates its training pixels well gives the same F1 over a range of
    thresholds; the middle of that plateau (F1 within 0.005 of the best) is taken rather than
    its lowest end, which would keep every doubtful pixel of new imagery.

    Returns:
        (threshold, the F1 it gives on that sample).
    """
    p = net.forward(np.asarray(x, np.float32))
    y = np.asarray(y, bool)
    n_true = int(y.sum())
    scores = []
    for t in THRESHOLDS:
        m = p > t
        scores.append(2 * int((m & y).sum()) / max(int(m.sum()) + n_true, 1))
    scores = np.array(scores)
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
        progress=None,
    ):  # fmt: skip
        """Train on everything added; returns a :class:`ChangeNet` with its threshold set.
        ``progress`` is called with (epochs done, epochs)."""
        if not self.fit_x:
            raise InputError("change model: no training pairs")
        net = fit_mlp(np.concatenate(self.fit_x), np.concatenate(self.fit_y), epochs=epochs,
                      seed=seed, progress=progress)  # fmt: skip
        net.threshold, f1 = pick_threshold(net, np.concatenate(self.thr_x),
                                           np.concatenate(self.thr_y))  # fmt: skip
        net.bands, net.gsd = bands, gsd
        net.info = {
            "pixels": self.pixels,
            "changed_pixels": self.changed,
            "training_f1": round(f1, 4),
            "epochs": epochs,
            "seed": seed,
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


@dataclass
class ModelUnits:
    """The units a learned model sees for one date: its raw values over the data type's full
    scale (1/255 for 8-bit).

    ``analyze`` reads both images normalised: each band of the before image stretched between
    its own 0.5 and 99.5 percentiles, the after image mapped onto it. A per-scene, per-band
    stretch changes colours with the scene's content, and so does matching the after image to
    the before one where most of a scene changed (scrub built over). On four LEVIR-CD tiles, a
    model trained on stretched values ranked the fifth tile's pixels no better than chance (AUC
    0.54 on test_101, against 0.75 on raw values), and one trained on matched values missed
    nearly every new building of the small tiles. So each date's own map is undone: the model
    learns whatever radiometric differences between dates its training pairs hold.

    Attributes:
        scale, offset: the date's per-band map (normalised = raw * scale + offset).
        full_scale: the data type's full scale (255 for uint8, 65535 for uint16, 1 for floats).
    """

    scale: np.ndarray
    offset: np.ndarray
    full_scale: float

    @classmethod
    def for_dtype(cls, scale, offset, dtype: str) -> ModelUnits:
        """Units for images of numpy ``dtype`` read with the before map ``scale``, ``offset``."""
        dt = np.dtype(dtype)
        full = float(np.iinfo(dt).max) if np.issubdtype(dt, np.integer) else 1.0
        return cls(np.asarray(scale, np.float64), np.asarray(offset, np.float64), full)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Normalised (bands, H, W) values -> model units (float32)."""
        k = 1.0 / (self.scale * self.full_scale)
        return ((x - self.offset[:, None, None]) * k[:, None, None]).astype(np.float32)

    def brightness(self, level: float) -> float:
        """A brightness level (band mean) in normalised units -> model units (approximately:
        through the bands' mean map)."""
        return float((level - self.offset.mean()) / (self.scale.mean() * self.full_scale))


def learned_mask(
    net: ChangeNet,
    model,
    units: tuple[ModelUnits, ModelUnits],
    before: np.ndarray,
    after: np.ndarray,
    valid: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Change probability and mask of a window from a learned model.

    The mask keeps pixels above the model's threshold, then drops objects and holes smaller than
    the unsupervised mask's smallest object.

    Args:
        net: the learned model.
        model: the scene's fitted ``fortmap.detect.change.ChangeModel`` (shade threshold, gsd,
            smallest object).
        units: how the readers' values map to the model's units, before and after.
        before, after: float32 (bands, H, W) of the window (with halo), as read.
        valid: bool (H, W).

    Returns:
        (probability float32 (H, W), mask uint8 (H, W) with 1 = change).
    """
    from fortmap.detect.change_kernels import hysteresis_mask

    ub, ua = units
    dark = ub.brightness(model.dark)
    prob = net.probability(ub.apply(before), ua.apply(after), valid, model.gsd, dark)
    # a plain threshold (seed and grow levels equal), then the same clean-up as the
    # unsupervised mask
    thr = np.float32(net.threshold)
    above = np.where(prob > thr, prob, np.float32(0.0))
    min_px = max(1, int(round(model.min_area_m2 / model.gsd**2)))
    mask = hysteresis_mask(above, np.ascontiguousarray(valid, bool), thr, thr, min_px)
    return prob, mask.astype(np.uint8, copy=False)
