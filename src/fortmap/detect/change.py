"""Pixel change mask: where structures appeared or disappeared or the ground was reshaped.

Unsupervised and fitted per scene. The scene-wide part (:func:`fit_change_model`) runs once on a
sample of the whole scene; the per-window part (:meth:`ChangeModel.evidence` and
:meth:`ChangeModel.mask`) runs on windows with a halo of :meth:`ChangeModel.halo_px` pixels.

Evidence combines two cues, both computed at a working resolution of about 1 m (block means):

* **structure change**: a morphological building index (MBI: mean white top-hat of brightness
  over several building-sized scales, Huang & Zhang 2011) and its dark counterpart, compared
  between dates with a +-1 pixel tolerance so residual misregistration does not count. Building
  roofs, rubble heaps, berms and trenches all change these indices; smooth illumination changes do
  not, because top-hats remove anything wider than the largest scale. Each date's indices are
  weighted by how much its pixels look like built material (greyer than the scene's median
  saturation, not greener than its median excess-green), so bright patches of soil or grass
  count less than roofs, concrete and rubble.
* **colour change**: per-band difference after histogram matching of the after image onto the
  before image (global gain, offset and gamma) and a colour-conditional shift table (expected
  after - before given the before colour, fitted on the scene: material-dependent haze and
  seasonal shifts), again with a +-1 pixel tolerance. Pixels vegetated in both dates are dropped.

Shadows: a pixel darker than the in-scene shadow threshold on either date (or beside one) gives
no evidence at all, and before the top-hats each date's sky-lit (dark and bluish) shade is
filled with the scene's ground level, so a shadow that moved with the sun is neither a dark
object nor the edge that makes a roof stand out.

Every threshold is either a first-principles noise multiple of an in-scene robust scale (median
absolute deviation of the cue on the sample), an in-scene Otsu split, or a physical size in
metres, except the hysteresis seed and grow fractions, fixed on simulated scenes
(seeds 1-3). None was fitted to labelled data. The kernels live in :mod:`fortmap.detect.change_cues`
and, fused per window, in :mod:`fortmap.detect.change_kernels` and
:mod:`fortmap.detect.change_finish`; the scene statistics in :mod:`fortmap.detect.change_stats`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from fortmap.detect.change_colour import colour_cue
from fortmap.detect.change_cues import (
    apply_maps,
    block_mean,
    exg,
    map_luts,
    saturation,
    tophats,
)
from fortmap.detect.change_finish import finish_evidence, upsample_masked
from fortmap.detect.change_kernels import (
    block_any_dilated,
    colour_prep,
    dilate3_or,
    hysteresis_mask,
    tolerant_stack,
)
from fortmap.detect.change_stats import (
    fit_colour_shift,
    interp_sorted,
    mad_sigma,
    median,
    otsu,
    percentiles,
)
from fortmap.detect.change_structure import structure_inputs, weighted_pair
from fortmap.errors import InputError

#: Working resolution (metres a pixel) of the colour cue.
WORK_GSD_M = 1.0
#: Structure cue resolution as a multiple of the colour working pixel (2 m: top-hats dominate
#: the run time and a 6 m object still spans 3 pixels).
STRUCT_FACTOR = 2
#: Top-hat scales in metres: a small hut / vehicle-sized heap up to a large house.
MBI_SCALES_M = (6.0, 12.0, 20.0)
#: Smallest change object kept, in square metres (a small building or a short berm).
MIN_AREA_M2 = 30.0
#: Cue values are mapped to evidence between these multiples of the scene noise scale (robust
#: sigma): below Z0 is indistinguishable from noise, above Z1 certain (Gaussian tails).
Z0, Z1 = 2.0, 6.0
#: Excess-green index above which a pixel is vegetation ((2G-R-B)/(R+G+B); bare soil, roofs and
#: roads are below ~0.02 in natural-colour imagery).
EXG_VEG = 0.05
#: Weight of dark (black top-hat) objects against bright ones in the structure cue.
DARK_WEIGHT = 0.5
#: Floor on the noise scales (reflectance units): two acquisitions, even after normalisation,
#: differ by about 1 % (8-bit quantisation is 0.4 %, sensor and atmospheric residuals more), so
#: a perfectly clean scene must not make every faint edge residual significant.
NOISE_FLOOR = 0.01
#: Lowest hysteresis seed on evidence (0.7 = 4.8 noise sigmas) and the grow threshold as a
#: fraction of the seed; both fixed on simulated scenes (seeds 1-3), not on any scored data.
SEED_FLOOR = 0.7
GROW_FRACTION = 0.5
#: Shade is darker than this fraction of the scene's median brightness.
SHADOW_RATIO = 0.6
#: Blue fraction above the scene's lit median that marks sky-lit shade (Rayleigh sky light
#: is bluer than sunlight; 0.02 is about three times the scatter of lit ground).
BLUE_MARGIN = 0.02
#: Bins a band of the colour-conditional shift table (before colour -> expected after - before).
SHIFT_BINS = 12
#: Number of quantiles kept for histogram matching.
N_QUANTILES = 101


def _check(before: np.ndarray, after: np.ndarray, valid: np.ndarray) -> None:
    if before.ndim != 3 or after.shape != before.shape:
        raise InputError(
            f"change: before {before.shape} and after {after.shape} must be (bands, H, W) alike"
        )
    if valid.shape != before.shape[1:]:
        raise InputError(f"change: valid mask {valid.shape} does not match {before.shape[1:]}")


def _fit_band_map(src: np.ndarray, dst: np.ndarray, qs: np.ndarray) -> tuple:
    """Monotone map src -> dst (gain, offset and gamma) by histogram matching on unchanged pixels.

    Plain histogram matching is shifted by real change (a large new roof pushes the after
    image's top quantiles up), so the match is redone on the pixels the first match left
    within 2.5 robust sigmas: the same pixels in both images, mostly unchanged.
    """
    keep = None
    for it in range(3):
        # the first round matches every pixel: no selection to copy them through
        sq = percentiles(src if keep is None else src[keep], qs)
        dq = percentiles(dst if keep is None else dst[keep], qs)
        sq = np.maximum.accumulate(sq + np.arange(sq.size) * 1e-7)
        if it == 2:
            # the last round's quantiles are the answer: a new selection would go unused
            break
        r = interp_sorted(src, sq, dq)
        r -= dst
        # mad_sigma(r) with r's median computed once (it is also the centre of the test);
        # the deviations overwrite r, which nothing reads after its median
        r -= median(r)
        d = np.abs(r, out=r)
        keep = d < 2.5 * (max(1.4826 * median(d), 1e-4) if r.size else 1e-3)
        if keep.sum() < 100:
            break
    return sq.astype(np.float32), dq.astype(np.float32)


@dataclass
class ChangeModel:
    """Scene-wide change parameters (picklable), applied per window.

    Attributes:
        gsd: ground sample distance of the full-resolution grid, metres a pixel.
        src_q: per-band quantiles of the after image (unchanged pixels), (bands, N_QUANTILES).
        dst_q: the matching quantiles of the before image, (bands, N_QUANTILES).
        dark: brightness below which a pixel counts as shadow (in-scene Otsu of the dark tail).
        color_loc, color_sigma: robust location (median) and scale (1.4826 MAD) of the colour
            cue over the scene sample: what unchanged ground looks like.
        struct_loc, struct_sigma: the same for the structure cue.
        sat_ref: median saturation of the scene (both dates): what "coloured ground" means
            here, against which grey roofs, concrete and rubble stand out.
        exg_ref: median excess-green of the scene (both dates), so a green cast of one
            sensor or season is not taken for vegetation.
        high: hysteresis seed threshold on evidence (0..1).
        low: hysteresis grow threshold on evidence (0..1).
        min_area_m2: smallest change object kept, square metres.
    """

    gsd: float
    src_q: np.ndarray
    dst_q: np.ndarray
    dark: float
    color_loc: float = 0.0
    color_sigma: float = 0.02
    struct_loc: float = 0.0
    struct_sigma: float = 0.01
    high: float = 0.5
    low: float = 0.25
    sat_ref: float = 0.15
    exg_ref: float = 0.0
    min_area_m2: float = MIN_AREA_M2
    ground: float = 0.5
    blue_ref: float = 1.0 / 3.0
    shift_lo: np.ndarray | None = None
    shift_hi: np.ndarray | None = None
    shift_lut: np.ndarray | None = None
    stats: dict = field(default_factory=dict)
    luts: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.luts = map_luts(self.src_q, self.dst_q)

    @property
    def factor(self) -> int:
        """Full-resolution pixels a working pixel spans (per side)."""
        return max(1, int(round(WORK_GSD_M / self.gsd)))

    def _scales_px(self) -> tuple[int, ...]:
        wgsd = self.gsd * self.factor * STRUCT_FACTOR
        return tuple(max(3, int(round(s / wgsd)) | 1) for s in MBI_SCALES_M)

    def halo_px(self) -> int:
        """Context (full-resolution pixels) needed around a window; a multiple of the factor."""
        f = self.factor
        # top-hat reach (struct pixels) + tolerant diff and smoothing (working pixels)
        work = (max(self._scales_px()) + 2) * STRUCT_FACTOR + 4
        obj = int(np.ceil(np.sqrt(self.min_area_m2) / (self.gsd * f))) * 2
        return int((work + obj) * f)

    def _structure_weight(self, x: np.ndarray) -> np.ndarray:
        """How much a working pixel looks like built material rather than soil or plants (0..1).

        Roofs, concrete, asphalt and rubble are greyer than the scene's typical ground (soil,
        dry grass) and not greener than it; both terms are relative to the scene's own medians.
        """
        g = np.clip(1.5 - saturation(x) / max(self.sat_ref, 1e-3), 0.0, 1.0)
        if x.shape[0] < 3:
            return g.astype(np.float32)
        nv = np.clip((self.exg_ref + EXG_VEG - exg(x)) / EXG_VEG, 0.0, 1.0)
        return (g * nv).astype(np.float32)

    def _shift_args(self, nb: int) -> tuple:
        """Colour-shift cube parameters as the fused kernel takes them (float32 like numpy)."""
        if self.shift_lut is None:
            z = np.zeros(nb, np.float32)
            return z, z, np.zeros((nb, 1), np.float32), False
        # n / max(hi - lo, 1e-6) is a float32 scalar in numpy's arithmetic (colour_bins)
        fac = np.array(
            [
                np.float32(SHIFT_BINS / max(self.shift_hi[k] - self.shift_lo[k], 1e-6))
                for k in range(nb)
            ],
            np.float32,
        )
        return np.asarray(self.shift_lo, np.float32), fac, self.shift_lut, True

    def _cue_parts(
        self, before: np.ndarray, after: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Colour cue, structure cue, and the before and mapped after images, all at working
        resolution."""
        f = self.factor
        b = np.ascontiguousarray(block_mean(before, f), np.float32)
        a_raw = np.ascontiguousarray(block_mean(after, f), np.float32)
        slo, sfac, slut, has_shift = self._shift_args(b.shape[0])
        lo, step, table = self.luts
        consts = (
            lo, step, table, slo, sfac, slut, SHIFT_BINS, has_shift,
            np.float32(self.dark), np.float32(self.blue_ref + BLUE_MARGIN),
        )  # fmt: skip
        # A pixel in shadow on either date (or beside one: penumbra, blur, misregistration)
        # says nothing about the ground: its colour and structure are the sun's doing.
        if b.shape[0] == 3:
            # the block mean of after is a new array (factor > 1) and may be mapped in place
            a = a_raw if f > 1 and a_raw is not after else np.empty_like(a_raw)
            col, unlit, sh_b, sh_a, sk_b, sk_a = colour_cue(b, a_raw, a, *consts)
        else:
            a, cb, ca, sh_b, sh_a, sk_b, sk_a = colour_prep(b, a_raw, *consts)
            unlit = dilate3_or(sh_b, sh_a)
            col = tolerant_stack(cb, ca)
            col[unlit] = 0.0
        # Structure: building-sized bright and dark objects of built material appearing or
        # vanishing, on the brightest band, at STRUCT_FACTOR coarser.
        sf = STRUCT_FACTOR
        xb = block_mean(b, sf)
        xa = block_mean(a, sf)
        scales = self._scales_px()
        # Shadows are filled with the scene's typical ground level before the top-hats, so a
        # roof stands out against ground on both dates whatever side its shadow falls on,
        # and a shadow is no dark object.
        fb = block_any_dilated(sh_b, sk_b, sf)
        fa = block_any_dilated(sh_a, sk_a, sf)
        # (the one-pass form of np.where(fb, ground, xb.max(axis=0)) and _structure_weight)
        args = (
            np.float32(self.ground),
            np.float32(max(self.sat_ref, 1e-3)),
            np.float32(self.exg_ref + EXG_VEG),
            np.float32(EXG_VEG),
        )
        lb, sb = structure_inputs(xb, fb, *args)
        la, sa = structure_inputs(xa, fa, *args)
        wb, kb = tophats(lb, scales)
        wa, ka = tophats(la, scales)
        # Dark objects count half: a new dark object is as often a moved shadow as a pit.
        dw = np.float32(DARK_WEIGHT)
        st = tolerant_stack(weighted_pair(wb, kb, sb, dw), weighted_pair(wa, ka, sa, dw))
        if sf == 1:
            st[unlit] = 0.0
        else:
            # upsample, zero where unlit: one pass instead of two
            h, w = col.shape
            st = upsample_masked(np.ascontiguousarray(st, np.float32), sf, h, w, ~unlit)
        return col, st, b, a

    def _cues(
        self, before: np.ndarray, after: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Colour cue, structure cue and both-vegetated flag, all at working resolution."""
        col, st, b, a = self._cue_parts(before, after)
        veg = (exg(b) > self.exg_ref + EXG_VEG) & (exg(a) > self.exg_ref + EXG_VEG)
        return col, st, veg

    def evidence(self, before: np.ndarray, after: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Per-pixel change evidence for a window (plus halo).

        Args:
            before, after: float32 (bands, H, W), same grid, values about 0..1.
            valid: bool (H, W), False where either image has no data.

        Returns:
            float32 (H, W), 0 (no change) .. 1 (certain change); 0 where invalid.
        """
        _check(before, after, valid)
        col, st, b, a = self._cue_parts(before, after)
        # Structure carries the decision; colour change confirms it or, when very strong on its
        # own (graded land, new pavement), stands alone.
        ev = finish_evidence(
            col, st, b, a,
            np.float32(self.color_loc), np.float32(self.color_sigma),
            np.float32(self.struct_loc), np.float32(self.struct_sigma),
            np.float32(Z0), np.float32(Z1 - Z0), np.float32(self.exg_ref + EXG_VEG),
        )  # fmt: skip
        valid = np.ascontiguousarray(valid, bool)
        if self.factor == 1:
            return np.where(valid, ev, np.float32(0.0))
        return upsample_masked(ev, self.factor, valid.shape[0], valid.shape[1], valid)

    def mask(self, evidence: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Binary change mask from evidence: hysteresis, then small objects and holes removed.

        Args:
            evidence: float32 (H, W) from :meth:`evidence`.
            valid: bool (H, W).

        Returns:
            uint8 (H, W), 1 = change, 0 = no change or invalid.
        """
        if evidence.shape != valid.shape:
            raise InputError(f"change: evidence {evidence.shape} and valid {valid.shape} differ")
        min_px = max(1, int(round(self.min_area_m2 / self.gsd**2)))
        # thresholds in float32, as numpy compares a float32 array with a Python float
        return hysteresis_mask(
            np.ascontiguousarray(evidence, np.float32),
            np.ascontiguousarray(valid, bool),
            np.float32(self.low),
            np.float32(self.high),
            min_px,
        )


def _scene_refs(before: np.ndarray, after: np.ndarray, valid: np.ndarray) -> dict:
    """Scene medians of saturation and excess-green over both dates (valid pixels)."""
    sat = np.concatenate([saturation(before)[valid], saturation(after)[valid]])
    green = np.concatenate([exg(before)[valid], exg(after)[valid]])
    return {
        "sat_ref": float(max(median(sat), 0.02)) if before.shape[0] > 1 else 0.15,
        "exg_ref": float(median(green)),
    }


def fit_change_model(
    before: np.ndarray,
    after: np.ndarray,
    valid: np.ndarray,
    gsd: float,
    sample_step: int = 1,
) -> ChangeModel:
    """Fit the scene-wide change parameters on a sample of the scene.

    Args:
        before, after: float32 (bands, H, W) on one grid, values about 0..1 (the whole scene or a
            decimated read of it).
        valid: bool (H, W), True where both images have data.
        gsd: full-resolution ground sample distance, metres a pixel.
        sample_step: full-resolution pixels one sample pixel spans (1 = full resolution).

    Returns:
        The fitted :class:`ChangeModel` (for the full-resolution grid).
    """
    _check(before, after, valid)
    if not gsd > 0:
        raise InputError(f"change: gsd must be positive metres a pixel, got {gsd}")
    if valid.sum() < 100:
        raise InputError("change: fewer than 100 valid pixels to fit the change model on")
    nb = before.shape[0]
    qs = np.linspace(0.0, 100.0, N_QUANTILES)
    src_q = np.empty((nb, N_QUANTILES), np.float32)
    dst_q = np.empty((nb, N_QUANTILES), np.float32)
    for i in range(nb):
        src_q[i], dst_q[i] = _fit_band_map(after[i][valid], before[i][valid], qs)
    lum = before.mean(axis=0)[valid]
    # Shadow threshold: Otsu split of the darker half of the brightness distribution.
    # one selection for both uses of the median (a partial sort of the whole sample)
    lum_med = median(lum)
    lo_half = lum[lum <= lum_med]
    hi = float(lo_half.max()) if lo_half.size else 1.0
    dark = otsu(np.clip(lo_half / max(hi, 1e-6), 0, 1)) * hi if lo_half.size > 10 else 0.0
    # Otsu always splits; shade only counts when it is physically dark: lit by the sky alone
    # (10-30 % of clear-sky irradiance), it is under half the brightness of sunlit ground.
    dark = min(dark, SHADOW_RATIO * float(lum_med))
    ref = _scene_refs(before, after, valid)
    mx = before.max(axis=0)[valid]
    lit = lum > dark
    any_lit = bool(lit.any())
    ref["ground"] = float(median(mx[lit])) if any_lit else 0.5
    if nb >= 3:
        bf = (before[2] / (before.sum(axis=0) + 1e-3))[valid]
        ref["blue_ref"] = float(median(bf[lit])) if any_lit else 1 / 3
    model = ChangeModel(gsd=float(gsd), src_q=src_q, dst_q=dst_q, dark=float(dark), **ref)
    # Noise scales come from the sample at the working resolution the windows will use.
    sample_gsd = gsd * sample_step
    f_sample = max(1, int(round(WORK_GSD_M / sample_gsd)))
    probe = ChangeModel(gsd=sample_gsd, src_q=src_q, dst_q=dst_q, dark=float(dark), **ref)
    bw = block_mean(before, f_sample)
    aw = apply_maps(block_mean(after, f_sample), probe.luts)
    vw = block_mean(valid.astype(np.float32), f_sample) > 0.99
    lo, hi, lut = fit_colour_shift(bw, aw, vw, SHIFT_BINS)
    for mdl in (model, probe):
        mdl.shift_lo, mdl.shift_hi, mdl.shift_lut = lo, hi, lut
    col, st, veg = probe._cues(before, after)
    keep = vw & ~veg
    col_s = ndi.uniform_filter(col, 3)[keep]
    st_s = ndi.uniform_filter(st, 3)[keep]
    # Robust z-scores against the scene itself: most of any scene is unchanged, so the median
    # and MAD of each cue describe unchanged ground (noise, texture, residual misregistration).
    model.color_loc = float(median(col_s)) if col_s.size else 0.0
    model.struct_loc = float(median(st_s)) if st_s.size else 0.0
    model.color_sigma = max(mad_sigma(col_s), NOISE_FLOOR)
    model.struct_sigma = max(mad_sigma(st_s), NOISE_FLOOR)
    # Hysteresis: seeds at the in-scene Otsu split of the evidence among pixels above the noise
    # floor (never below 0.5, i.e. 4 sigma), grow at half of it.
    zc = (col_s - model.color_loc) / model.color_sigma
    zs = (st_s - model.struct_loc) / model.struct_sigma
    ec = np.clip((zc - Z0) / (Z1 - Z0), 0, 1)
    es = np.clip((zs - Z0) / (Z1 - Z0), 0, 1)
    ev = np.maximum(es * (0.5 + 0.5 * ec), ec * ec * 0.75)
    above = ev[ev > 0]
    high = max(SEED_FLOOR, otsu(above)) if above.size > 100 else SEED_FLOOR
    model.high = float(high)
    model.low = float(high * GROW_FRACTION)
    model.stats = {
        "color_loc": model.color_loc,
        "color_sigma": model.color_sigma,
        "struct_loc": model.struct_loc,
        "struct_sigma": model.struct_sigma,
        "dark": model.dark,
        "high": model.high,
        "low": model.low,
        "fraction_above_noise": float(above.size / max(ev.size, 1)),
    }
    return model
