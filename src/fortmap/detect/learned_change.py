"""A change model learned from labelled pairs: a small neural network on per-pixel features.

The unsupervised model of :mod:`fortmap.detect.change` flags every kind of change the issue asks
for (structures and reshaped ground). An analyst who has labelled a few pairs of their own kind of
imagery with the change they care about (new buildings, say) can instead train this model with
``fortmap train-change`` and apply it with ``fortmap analyze --change-model``. It is an ensemble
of multilayer perceptrons (two hidden layers of :data:`HIDDEN` units, ReLU; outputs averaged) on
the features of :mod:`fortmap.detect.learned_features`, each trained with Adam on a bootstrap
resample of a class-balanced sample of labelled pixels (:mod:`learned_training`). The output may
then be averaged over image segments (:mod:`learned_segments`). Its decision threshold is the one
that maximises F1 on training pixels: it is fitted on the training labels, never on the data
scored.

The model is saved as one ``.npz`` file (weights, feature scaling, threshold, whether segments
are used, the bands and the ground sample distance it was trained at, and what it was trained
on).

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
#: Networks in an ensemble trained by ``train-change`` (outputs averaged).
MEMBERS = 5
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
        members: the networks whose outputs are averaged, each [W1, b1, W2, b2, W3, b3].
        threshold: output above which a pixel is change (0..1).
        bands: image bands the model was trained on (1 or 3).
        gsd: metres per pixel of the training imagery (for the record; features are in metres).
        info: what it was trained on (pairs, pixels, training F1).
        segments: the output is averaged over image segments (:mod:`learned_segments`) before
            the threshold, which was picked on so averaged training pixels.
    """

    mean: np.ndarray
    scale: np.ndarray
    members: list[list[np.ndarray]]
    threshold: float = 0.5
    bands: int = 3
    gsd: float = 0.5
    info: dict = field(default_factory=dict)
    segments: bool = False

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Change probability of feature rows ``x`` (N, F) -> (N,): the members' mean."""
        z = (x - self.mean) / self.scale
        out = np.zeros(len(z), np.float64)
        for w1, b1, w2, b2, w3, b3 in self.members:
            h = np.maximum(z @ w1 + b1, 0)
            h = np.maximum(h @ w2 + b2, 0)
            out += _sigmoid(h @ w3 + b3)[:, 0]
        return (out / len(self.members)).astype(np.float32)

    def forward_columns(self, x: np.ndarray) -> np.ndarray:
        """Change probability of feature columns ``x`` (F, N) -> (N,): the same function as
        :meth:`forward` (to float rounding), with the standardisation folded into the first
        layer so the features are read once."""
        out = np.zeros(x.shape[1], np.float32)
        for w1, b1, w2, b2, w3, b3 in self.members:
            w1s = (w1 / self.scale[:, None]).astype(np.float32)
            b1s = (b1 - (self.mean / self.scale) @ w1).astype(np.float32)
            h = w1s.T @ x
            h += b1s[:, None]
            np.maximum(h, 0, out=h)
            h2 = w2.T @ h
            h2 += b2[:, None]
            np.maximum(h2, 0, out=h2)
            out += _sigmoid(w3.T @ h2 + b3[:, None])[0].astype(np.float32)
        out /= np.float32(len(self.members))
        return out

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
        arrays = {f"w{m}_{i}": w for m, ws in enumerate(self.members) for i, w in enumerate(ws)}
        meta = {
            "members": len(self.members),
            "segments": self.segments,
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
                if "members" in meta:
                    members = [[z[f"w{m}_{i}"].astype(np.float32) for i in range(6)]
                               for m in range(int(meta["members"]))]  # fmt: skip
                else:  # written before ensembles: one network, no segments
                    members = [[z[f"w{i}"].astype(np.float32) for i in range(6)]]
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
        if mean.shape != (feature_count(meta["bands"]),) or any(
            ws[0].shape[0] != mean.size for ws in members
        ):
            raise InputError(f"{p}: change model's weights do not match its feature count")
        return cls(mean, scale, members, float(meta["threshold"]), int(meta["bands"]),
                   float(meta["gsd"]), meta.get("info", {}),
                   bool(meta.get("segments", False)))  # fmt: skip


def fit_mlp(
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int = EPOCHS,
    hidden: int = HIDDEN,
    seed: int = 0,
    members: int = 1,
    progress=None,
) -> ChangeNet:
    """Train the network (or an ensemble) on feature rows ``x`` (N, F) and labels ``y`` (N,),
    classes balanced.

    Args:
        x: float32 features.
        y: bool labels (True = change).
        epochs: passes over the sample, per member.
        hidden: units per hidden layer.
        seed: random seed (initial weights, minibatch order, resamples).
        members: networks to train; with more than one, each learns from its own bootstrap
            resample of the rows and their outputs are averaged (bagging: a few labelled pairs
            give networks that differ much with their start, and their mean varies less).
        progress: called with (epochs done, epochs x members) after each epoch.

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
    nets = []
    for m in range(members):
        rows = np.arange(len(y)) if members == 1 else rng.integers(0, len(y), len(y))
        if y[rows].all() or not y[rows].any():
            rows = np.arange(len(y))

        def tell(done, total, m=m):
            if progress is not None:
                progress(m * epochs + done, members * epochs)

        nets.append(_train(z[rows], y[rows], epochs, hidden, rng, tell))
    return ChangeNet(mean.astype(np.float32), scale.astype(np.float32), nets)


def _train(z, y, epochs, hidden, rng, progress) -> list[np.ndarray]:
    """One network's weights, trained with Adam on standardised rows ``z`` and labels ``y``."""
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
        progress(epoch + 1, epochs)
    return params


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
    origin: tuple[int, int] = (0, 0),
) -> tuple[np.ndarray, np.ndarray]:
    """Change probability and mask of a window from a learned model.

    The mask keeps pixels above the model's threshold (after averaging over image segments, for
    a model trained so: :mod:`fortmap.detect.learned_segments`), then drops objects and holes
    smaller than the unsupervised mask's smallest object.

    Args:
        net: the learned model.
        model: the scene's fitted ``fortmap.detect.change.ChangeModel`` (shade threshold, gsd,
            smallest object).
        units: how the readers' values map to the model's units, before and after.
        before, after: float32 (bands, H, W) of the window (with halo), as read.
        valid: bool (H, W).
        origin: (row, col) of the window's first pixel on the analysis grid (where the
            segmentation blocks lie).

    Returns:
        (probability float32 (H, W), mask uint8 (H, W) with 1 = change).
    """
    from fortmap.detect.change_kernels import hysteresis_mask

    ub, ua = units
    dark = ub.brightness(model.dark)
    prob = net.probability(ub.apply(before), ua.apply(after), valid, model.gsd, dark)
    if net.segments:
        from fortmap.detect.learned_segments import segment_mean

        prob = segment_mean(prob, before, after, valid, model.gsd, origin)
    # a plain threshold (seed and grow levels equal), then the same clean-up as the
    # unsupervised mask
    thr = np.float32(net.threshold)
    above = np.where(prob > thr, prob, np.float32(0.0))
    min_px = max(1, int(round(model.min_area_m2 / model.gsd**2)))
    mask = hysteresis_mask(above, np.ascontiguousarray(valid, bool), thr, thr, min_px)
    return prob, mask.astype(np.uint8, copy=False)
