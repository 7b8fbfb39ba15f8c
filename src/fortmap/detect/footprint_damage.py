"""Scene-wide damage classes of footprints from their features (one global step).

Split from :mod:`fortmap.detect.footprints` (which re-exports :func:`damage_from_features`);
see there for the method. The features are those of
:func:`fortmap.detect.footprints.footprint_features`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fortmap.errors import InputError

#: Footprints with less valid (cloud/nodata-free) area than this share of their region are not
#: classified: they come out ``intact`` with score 0 and ``"too_little_valid": true`` in evidence.
MIN_VALID_FRACTION = 0.5
#: Retained structure below this share of a typical standing building: destroyed (half gone).
RETAINED_DESTROYED = 0.5
#: Retained structure above this share: intact; between the two limits: damaged.
RETAINED_INTACT = 0.8
#: Width of the score's logistic around :data:`RETAINED_DESTROYED`, in retained-fraction units.
SCORE_WIDTH = 0.1
#: A building must also have lost this much of its *own* before alignment to be called damaged
#: or destroyed, so a footprint with little structure to begin with (under trees, low-contrast
#: roof) is not flagged when nothing changed. 0.03 is the 5-10th percentile of the loss that
#: nuisance alone (2-3 px shift plus gamma 1.4, or haze plus noise) gives on the unchanged
#: Joplin before image used as its own after image: a null control, not the damage labels.
MIN_LOSS = 0.03
#: Width of the score's logistic around :data:`MIN_LOSS`, alignment units.
LOSS_WIDTH = 0.02
#: Before-image alignment assumed for the scene when no footprint gives one (typical value of a
#: standing house in 0.3-0.6 m imagery; only a fallback).
DEFAULT_REFERENCE = 0.3

#: Structure-and-colour change above which a building is ``destroyed``: it lost a typical
#: standing building's worth of aligned structure with a typical nuisance colour change, or
#: half of it with twice the typical colour change. 1.0 is the natural unit of the product;
#: checked (not fitted) on simulator seeds 1-3, whose label-optimal values were 0.7-0.96.
CHANGE_DESTROYED = 1.0
#: Change above which a building is ``damaged`` (half the destroyed limit).
CHANGE_DAMAGED = 0.5
#: Width of the score's logistic in log(change) around :data:`CHANGE_DESTROYED`.
CHANGE_LOG_WIDTH = 0.3
#: Smallest typical interior colour angle, degrees, at which colour is used: about what 8-bit
#: quantisation and sensor noise alone give on mid-grey roofs. Below it the pair has no colour
#: to compare (grey bands, identical images) and structure alone decides.
MIN_ANGLE_REF = 0.5
#: Largest typical interior colour angle, degrees, at which colour is used at all. Band
#: matching leaves a standing roof's sunlit colour within 1-2 degrees in near-nadir pairs
#: (simulator: 0.7-2.1 from easy to hard); a scene median far above that means the roofs
#: do not sit on their footprints in one of the images. Set between the simulator's values and
#: the 5.2 degrees of xBD Joplin (28 deg off-nadir), after seeing both (no labels involved).
MAX_ANGLE_REF = 3.0
#: Interior lit share below which the colour angle is weighted down in proportion (a median
#: over less than half the roof is mostly what happened to the rest of it, e.g. a shadow edge).
MIN_LIT_FRACTION = 0.5
#: Largest factor by which interior texture or lost shadow may move the structure-and-colour
#: change: CHANGE_DESTROYED / CHANGE_DAMAGED, the width of the damaged band.
CUE_LIMIT = 2.0
#: Two hypotheses per cue, and the evidence is centred between them. Shadow: a standing
#: building keeps its own shadow (loss 0), a razed one loses a typical building's (loss 1).
SHADOW_MIDPOINT = 0.5
#: Texture, in log2 of the after/before ratio over the scene's typical ratio: a standing roof
#: keeps it (0); rubble, lumps at the pixel scale, at least doubles it (1).
TEXTURE_MIDPOINT = 0.5
#: Smallest typical own-shadow harmonic (dark share of the ring, projected on the shadow
#: direction) at which shadows are used: a few per cent of a ring of 100-300 pixels is the
#: level of one footprint's sampling noise.
MIN_SHADOW_CONTRAST = 0.02
#: Fewest usable footprints for a scene median of the texture or shadow cue.
MIN_CUE_FOOTPRINTS = 20


@dataclass(frozen=True)
class DamageRefs:
    """The scene's references for :func:`damage_from_features`, medians over its footprints.

    Measured once over every footprint of the scene (:func:`damage_refs`), they let the
    footprints be classified a run at a time with the same result as all at once.

    Attributes:
        ref: typical before alignment (floored at 0.05).
        angle_ref: typical interior colour angle, degrees (NaN: none).
        use_colour: whether colour is used (``angle_ref`` within its limits).
        texture: typical after/before interior texture ratio, or None (unknown).
        shadow: (direction in radians, typical projected harmonic) of the before and the after
            date's own shadows, or None (no usable shadows).
    """

    ref: float
    angle_ref: float
    use_colour: bool
    texture: float | None
    shadow: tuple[tuple[float, float], tuple[float, float]] | None


def _usable(f: pd.DataFrame) -> np.ndarray:
    """Footprints with enough valid area and both alignments known."""
    missing = [c for c in ("aln_before", "aln_after", "valid_fraction") if c not in f]
    if missing:
        raise InputError(f"footprint features: missing columns {missing}")
    vf = f["valid_fraction"].to_numpy(float)
    ab = f["aln_before"].to_numpy(float)
    aa = f["aln_after"].to_numpy(float)
    return (vf >= MIN_VALID_FRACTION) & np.isfinite(ab) & np.isfinite(aa)


def damage_refs(features: pd.DataFrame) -> DamageRefs:
    """The scene's references (medians over the usable footprints) from all its features.

    Raises:
        InputError: a required column is missing.
    """
    f = features
    usable = _usable(f)
    ab = f["aln_before"].to_numpy(float)
    ref = float(np.median(ab[usable])) if usable.any() else DEFAULT_REFERENCE
    # A scene of featureless footprints would make every ratio explode; keep a sane floor.
    ref = max(ref, 0.05)
    ang = f["colour_angle"].to_numpy(float) if "colour_angle" in f else np.full(len(f), np.nan)
    has_ang = usable & np.isfinite(ang)
    angle_ref = float(np.median(ang[has_ang])) if has_ang.any() else float("nan")
    # A typical footprint whose roof colour moved by more than MAX_ANGLE_REF means the
    # interiors do not compare roof with roof (off-nadir lean, misfit footprints, a scene
    # changed throughout): colour is no evidence there, structure alone decides.
    # Below MIN_ANGLE_REF the images carry no colour to compare (grey in RGB, or identical).
    use_colour = bool(has_ang.any()) and MIN_ANGLE_REF <= angle_ref <= MAX_ANGLE_REF
    return DamageRefs(
        ref, angle_ref, use_colour, _texture_typical(f, usable), _shadow_typical(f, usable)
    )


def damage_from_features(
    features: pd.DataFrame, gsd: float, refs: DamageRefs | None = None
) -> pd.DataFrame:
    """Classify every footprint of the scene from its features (one global step).

    Two in-scene references, both unsupervised medians over the footprints with enough valid
    area: the typical before alignment ``ref`` (before the event the buildings stood) and the
    typical interior colour angle ``angle_ref`` (what nuisance alone does to a roof's colour
    between these two images). A razed building loses its straight edges *and* its roof:

    ``change = max(aln_before - aln_after, 0) / ref * colour_angle / angle_ref``

    that is, the share of a standing building's structure that was lost, times how many times
    more its sunlit interior changed colour than a typical footprint's (the colour term is
    weighted down where less than :data:`MIN_LIT_FRACTION` of the interior is sunlit). Either
    alone is fooled (neighbours' shadows moving with the sun take aligned edges away from an
    intact house; a new shadow or seasonal tint recolours a roof); their product is not. It is
    then multiplied by ``2 ** mean(e_texture, e_shadow)``, each cue in log2 units centred
    between its two hypotheses (:data:`TEXTURE_MIDPOINT`, :data:`SHADOW_MIDPOINT`) and bounded
    to ``+-log2(CUE_LIMIT)``; an unknown cue counts 0. ``destroyed`` above
    :data:`CHANGE_DESTROYED`, ``damaged`` above :data:`CHANGE_DAMAGED`, and a building must
    also have lost :data:`MIN_LOSS` of its own before alignment. Without colour (fewer than 3
    bands) the structure-only rule applies: ``retained = aln_after / ref`` against
    :data:`RETAINED_DESTROYED` and :data:`RETAINED_INTACT`. Footprints with ``valid_fraction``
    below :data:`MIN_VALID_FRACTION` come out ``intact`` with score 0.

    Args:
        features: rows from :func:`footprint_features`, any index (kept).
        gsd: metres per pixel (recorded in the evidence).
        refs: the scene's references, when ``features`` are only some of its footprints
            (default: measured on ``features``).

    Returns:
        Columns ``score`` (0..1, confidence the building is destroyed), ``damage``
        ("intact", "damaged" or "destroyed") and ``evidence`` (JSON string), same index.
    """
    f = features
    usable = _usable(f)
    refs = refs if refs is not None else damage_refs(f)
    ref, angle_ref, use_colour = refs.ref, refs.angle_ref, refs.use_colour
    vf = f["valid_fraction"].to_numpy(float)
    ab = f["aln_before"].to_numpy(float)
    aa = f["aln_after"].to_numpy(float)
    retained = np.where(usable, aa / ref, np.nan)
    loss = np.where(usable, ab - aa, np.nan)
    z2 = np.clip((MIN_LOSS - loss) / LOSS_WIDTH, -50, 50)
    lost = usable & (loss > MIN_LOSS)
    ang = f["colour_angle"].to_numpy(float) if "colour_angle" in f else np.full(len(f), np.nan)
    has_ang = usable & np.isfinite(ang)
    tex_n = shadow_loss = np.full(len(f), np.nan)
    if use_colour:
        # No sunlit interior on either date: no colour evidence either way (factor 1). A
        # median over a sliver of lit roof is noise: weight it by the lit share up to half.
        lit = f["lit_fraction"].to_numpy(float) if "lit_fraction" in f else np.ones(len(f))
        w = np.clip(np.nan_to_num(lit) / MIN_LIT_FRACTION, 0.0, 1.0)
        ang_n = np.where(has_ang, 1.0 + (ang / angle_ref - 1.0) * w, 1.0)
        change = np.where(usable, np.maximum(loss, 0.0) / ref * ang_n, np.nan)
        tex_n = _texture_change(f, usable, refs.texture)
        shadow_loss = _shadow_loss(f, usable, refs.shadow)
        # Rubble's texture and the lost cast shadow, each in log2 units centred between its
        # two hypotheses and bounded to +-log2(CUE_LIMIT), are averaged: together they can
        # carry a building across the damaged band (CHANGE_DAMAGED..CHANGE_DESTROYED) either
        # way, neither can alone, and where a cue is unknown (NaN) it says nothing (0).
        lim = math.log2(CUE_LIMIT)
        with np.errstate(divide="ignore", invalid="ignore"):
            e_tex = np.log2(tex_n) - TEXTURE_MIDPOINT
        e_tex = np.clip(np.nan_to_num(e_tex, nan=0.0), -lim, lim)
        e_sh = np.clip(np.nan_to_num(shadow_loss - SHADOW_MIDPOINT, nan=0.0), -lim, lim)
        change = change * 2.0 ** (0.5 * (e_tex + e_sh))
        z1 = np.clip(
            -np.log(np.maximum(change, 1e-6) / CHANGE_DESTROYED) / CHANGE_LOG_WIDTH, -50, 50
        )
        damage = np.where(
            lost & (change > CHANGE_DESTROYED),
            "destroyed",
            np.where(lost & (change > CHANGE_DAMAGED), "damaged", "intact"),
        )
    else:
        change = np.full(len(f), np.nan)
        z1 = np.clip((retained - RETAINED_DESTROYED) / SCORE_WIDTH, -50, 50)
        damage = np.where(
            lost & (retained < RETAINED_DESTROYED),
            "destroyed",
            np.where(lost & (retained < RETAINED_INTACT), "damaged", "intact"),
        )
    score = np.where(usable, 1.0 / (1.0 + np.exp(z1)) / (1.0 + np.exp(z2)), 0.0)
    damage = np.where(usable, damage, "intact")
    extra = [
        c
        for c in ("edge_before", "edge_after", "grey_diff", "colour_angle", "lit_fraction")
        if c in f
    ]
    # Columns rounded once as Python floats, each written once as its JSON text, and the
    # rows put together by one %-format each: per-row pandas look-ups, per-value calls and
    # per-row dicts through the encoder cost seconds per scene.
    ok_l = usable.tolist()
    ret3 = _rounded_texts(retained, 3, usable)
    loss4 = _rounded_texts(loss, 4, usable)
    cols = [
        ret3, loss4, *(_rj_all(a) for a in (change, ab, aa, tex_n, shadow_loss, vf)),
        *(_rj_all(f[c].to_numpy(float)) for c in extra),
        # the last field: nothing, or the flag of a footprint with too little valid area
        ["" if ok else ',"too_little_valid":true' for ok in ok_l],
    ]  # fmt: skip
    const = {
        "scene_reference": _j(round(ref, 3)),
        "scene_angle_reference": _j(_r(angle_ref)),
        "colour_used": _j(use_colour),
        "gsd_m": _j(round(float(gsd), 3)),
    }
    keys = [
        "retained", "loss", "change", "aln_before", "aln_after", "scene_reference",
        "scene_angle_reference", "colour_used", "texture_change", "shadow_loss",
        "valid_fraction", "gsd_m", *extra,
    ]  # fmt: skip
    parts = [f'"{k}":' + (const[k].replace("%", "%%") if k in const else "%s") for k in keys]
    row = "{" + ",".join(parts) + "%s}"
    evidence = [row % t for t in zip(*cols, strict=True)]
    return pd.DataFrame(
        {"score": score.astype(float), "damage": damage, "evidence": evidence}, index=f.index
    )


def _texture_ratio(f: pd.DataFrame, usable: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """After/before interior texture ratios and where they are known (None: no columns)."""
    if "tex_before" not in f or "tex_after" not in f:
        return None
    tb, ta = f["tex_before"].to_numpy(float), f["tex_after"].to_numpy(float)
    ok = usable & np.isfinite(tb) & np.isfinite(ta) & (tb > 0)
    return np.where(ok, ta / np.where(ok, tb, 1.0), np.nan), ok


def _texture_typical(f: pd.DataFrame, usable: np.ndarray) -> float | None:
    """The scene's median texture ratio, or None (too few footprints, or not positive)."""
    got = _texture_ratio(f, usable)
    if got is None or got[1].sum() < MIN_CUE_FOOTPRINTS:
        return None
    typ = float(np.median(got[0][got[1]]))
    return typ if typ > 0 else None


def _texture_change(f: pd.DataFrame, usable: np.ndarray, typ: float | None) -> np.ndarray:
    """After/before interior texture ratio over the scene's typical ratio ``typ`` (NaN: unknown).

    The scene median absorbs what blur, noise and haze do to every roof between the dates.
    """
    got = _texture_ratio(f, usable)
    if got is None or typ is None:
        return np.full(len(f), np.nan)
    return got[0] / typ


_SHADOW_COLS = [f"shadow_{a}_{d}" for d in ("before", "after") for a in ("x", "y")]


def _shadow_typical(
    f: pd.DataFrame, usable: np.ndarray
) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """Each date's shadow direction and typical projected harmonic, or None (no usable shadows).

    Each date's shadow direction is the mean of the footprints' shadow harmonics (before the
    event nearly every building stood, and after it most still do); the typical shadow is the
    median of the harmonics projected on it. A date whose typical building shows less than
    :data:`MIN_SHADOW_CONTRAST` has no usable shadows (overcast, sun near zenith, no ring of
    free ground).
    """
    if any(c not in f for c in _SHADOW_COLS):
        return None
    out = []
    for d in ("before", "after"):
        x, y = f[f"shadow_x_{d}"].to_numpy(float), f[f"shadow_y_{d}"].to_numpy(float)
        ok = usable & np.isfinite(x) & np.isfinite(y)
        if ok.sum() < MIN_CUE_FOOTPRINTS:
            return None
        phi = math.atan2(float(y[ok].sum()), float(x[ok].sum()))
        proj = np.where(ok, x * math.cos(phi) + y * math.sin(phi), np.nan)
        typ = float(np.median(proj[ok]))
        if typ < MIN_SHADOW_CONTRAST:
            return None
        out.append((phi, typ))
    return out[0], out[1]


def _shadow_loss(
    f: pd.DataFrame,
    usable: np.ndarray,
    typical: tuple[tuple[float, float], tuple[float, float]] | None,
) -> np.ndarray:
    """Share of a typical building's own cast shadow lost between the dates (NaN: unknown).

    Each footprint's shadow is its harmonic projected on the date's shadow direction, in units
    of the scene's typical one (:func:`_shadow_typical`). The difference before minus after is
    about 1 for a building that lost its shadow, 0 for one that kept it.
    """
    if typical is None or any(c not in f for c in _SHADOW_COLS):
        return np.full(len(f), np.nan)
    own = []
    for d, (phi, typ) in zip(("before", "after"), typical, strict=True):
        x, y = f[f"shadow_x_{d}"].to_numpy(float), f[f"shadow_y_{d}"].to_numpy(float)
        ok = usable & np.isfinite(x) & np.isfinite(y)
        proj = np.where(ok, x * math.cos(phi) + y * math.sin(phi), np.nan)
        own.append(proj / typ)
    return own[0] - own[1]


def _r(v: float) -> float | None:
    v = float(v)
    return round(v, 4) if math.isfinite(v) else None


def _j(v: float | bool | None) -> str:
    """``v`` as ``json.dumps`` writes it."""
    return json.dumps(v)


def _rj_all(a: np.ndarray) -> list[str]:
    """``_j(_r(v))`` of every value of a float array: 4 decimals, ``null`` if not finite."""
    return _rounded_texts(np.asarray(a, float), 4)


#: Largest magnitude formatted by ``%.Nf``: below it a double's spacing is far finer than
#: 1e-4, so the N-decimal text is also the shortest one that reads back as the same double.
_FIXED_MAX = 1e10


def _rounded_texts(a: np.ndarray, nd: int, use: np.ndarray | None = None) -> list[str]:
    """``json.dumps(round(v, nd))`` of every value of a float array (``nd`` <= 4), ``null``
    where ``use`` is False or, without ``use``, where the value is not finite.

    One ``%``-format of the whole column instead of a ``round`` and ``repr`` per value: both
    round the exact binary value to ``nd`` decimals (half to even), and for magnitudes below
    :data:`_FIXED_MAX` (0 or at least 1e-4 once rounded, so never in exponent form) that text
    less its trailing zeros is what ``repr`` writes. Other values go the old way.
    """
    v = np.asarray(a, np.float64).ravel()
    n = v.shape[0]
    if n == 0:
        return []
    fin = np.isfinite(v)
    easy = fin & (np.abs(np.where(fin, v, 0.0)) < _FIXED_MAX)
    if use is not None:
        easy &= use
    text = (f"%.{nd}f," * n) % tuple(np.where(easy, v, 0.0).tolist())
    # every number has a point, so the zeros before a comma are trailing decimals
    out = re.sub("0+,", ",", text).replace(".,", ".0,")[:-1].split(",")
    for i in np.flatnonzero(~easy).tolist():
        if use is not None and not use[i]:
            out[i] = "null"
        elif use is None and not fin[i]:
            out[i] = "null"
        else:
            out[i] = _j(round(float(v[i]), nd))
    return out
