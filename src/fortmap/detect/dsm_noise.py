"""Scene-wide quality of the DSM difference, and which DSM rules it can carry.

Two DSMs made independently from stereo pairs differ where nothing changed: by a vertical
offset (each date's bias without ground control, up to metres), a gentle tilt, and random
matching error (0.3-1 m on open ground, correlated over the DSM's posting). The DSM rules of
the fortification step and of route clearance compare the after surface with the before one
at thresholds of decimetres, so this module

* measures the difference once per scene (:func:`estimate_dsm_noise`): the median of
  ``dsm_after - dsm_before`` on sample tiles spread over the scene (most ground did not
  change, so a tile's median is its offset), a plane fitted to the tile medians (the offset
  and tilt, removed from the after DSM by :class:`CorrectedDsm`), and the robust (MAD) spread
  of what is left, per pixel and of means over 1, 4, 16 and 64 m² (how the noise averages
  down depends on how far it is correlated, which is measured, not assumed);
* decides per rule (:func:`dsm_rules`) the rise threshold it must use, no lower than its
  physical floor nor ``K_FALSE`` sigmas of the noise over the area it integrates, and
  whether it can still tell its smallest object from noise: the object must stand
  ``K_MISS`` sigmas above that threshold. A rule that cannot is switched off and its step
  falls back to the image alone.

Thresholds come from the noise model (3 sigmas: 0.13 % one-sided false alarms per test;
2 sigmas: a 2.3 % chance an object reads under the threshold) and the objects' physical
heights; none is fitted to labels. Heights in metres; pixels of the analysis grid.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from rasterio.windows import Window
from scipy import ndimage as ndi

from fortmap.detect.order_stats import robust_sigma
from fortmap.types import Grid

#: Sample tiles: side of a tile (pixels) and most tiles across and down.
TILE_PX = 160
TILES_ACROSS = 6
#: Least share of a tile's pixels with both heights for its median to count.
MIN_TILE_KNOWN = 0.25
#: Height step (m) to a neighbour that marks a wall; walls are left out of the noise (the
#: rules read roads and open ground, and wall pixels' matching error is several times larger).
WALL_STEP_M = 2.0
#: Areas (m²) over which the noise of the mean difference is measured.
NOISE_AREAS_M2 = (1.0, 4.0, 16.0, 64.0)
#: Offset or tilt correction (m) below which the after DSM is read as it is: finer than any
#: rule's threshold, and exact DSMs then give exactly the figures they gave before.
MIN_CORRECTION_M = 0.01
#: Sigmas of the noise a threshold must clear (false alarms), and that an object must stand
#: above the threshold (misses).
K_FALSE = 3.0
K_MISS = 2.0
#: Largest DSM hole (m²) the berm path fills: a hole of up to ~8 m across, well under the
#: shortest berm (30 m), so a crest crossing an occlusion is not cut in two.
MAX_FILL_M2 = 50.0
#: Gaussian sigma (m) of the smoothing the berm path applies to noisy DSMs: a quarter of the
#: narrowest berm (8 m), which lowers its crest by a few percent while averaging the noise
#: of the 2 m cells the berm detector reads over about 50 m².
BERM_SMOOTH_M = 2.0
#: Noise (m, over 4 m²) under which the DSMs are given to the berm path as they are.
BERM_SMOOTH_FROM_M = 0.02
#: MAD to standard deviation for a normal distribution.
MAD_SIGMA = 1.4826


@dataclass(frozen=True)
class DsmNoise:
    """The DSM difference's offset, tilt and noise, measured over a scene.

    Attributes:
        plane: (a, b, c): the after DSM reads ``a + b * col + c * row`` metres too high
            relative to the before DSM at analysis-grid pixel (col, row) (centres).
        offset_m: that plane at the scene's centre (m).
        tilt_m_per_km: the plane's slope (m per km) and ``tilt_azimuth_deg`` its direction of
            steepest rise (degrees clockwise from north).
        sigma_px_m: robust standard deviation (m) of the corrected difference per pixel.
        sigma_area: ((area m², sigma m), ...) of the difference's mean over square patches.
        nodata_fraction: share of the sampled pixels where a DSM holds no value.
        n_px: pixels the noise was measured on.
        corrected: whether :class:`CorrectedDsm` removes the plane.
    """

    plane: tuple[float, float, float]
    offset_m: float
    tilt_m_per_km: float
    tilt_azimuth_deg: float
    sigma_px_m: float
    sigma_area: tuple[tuple[float, float], ...]
    nodata_fraction: float
    n_px: int
    corrected: bool = True

    def sigma_over(self, area_m2: float) -> float:
        """Noise sigma (m) of the difference's mean over ``area_m2`` (m²): interpolated
        log-log between the measured areas, falling as 1 / sqrt(area) beyond the largest."""
        pts = [(a, s) for a, s in self.sigma_area if math.isfinite(s)]
        if not pts:
            return self.sigma_px_m
        if area_m2 <= pts[0][0]:
            return pts[0][1]
        for (a0, s0), (a1, s1) in zip(pts, pts[1:], strict=False):
            if area_m2 <= a1:
                if s0 <= 0 or s1 <= 0:
                    return max(s0, s1)
                t = math.log(area_m2 / a0) / math.log(a1 / a0)
                return math.exp(math.log(s0) + t * (math.log(s1) - math.log(s0)))
        a, s = pts[-1]
        return s * math.sqrt(a / area_m2)

    def as_dict(self) -> dict:
        """Summary entry: offset, tilt, noise per pixel and over 1 m², holes."""
        return {
            "offset_m": round(self.offset_m, 3),
            "tilt_m_per_km": round(self.tilt_m_per_km, 3),
            "tilt_azimuth_deg": round(self.tilt_azimuth_deg, 1),
            "offset_removed": self.corrected,
            "sigma_px_m": round(self.sigma_px_m, 3),
            "sigma_1m2_m": round(self.sigma_over(1.0), 3),
            "sigma_by_area_m": {f"{a:g}m2": round(s, 3) for a, s in self.sigma_area},
            "nodata_fraction": round(self.nodata_fraction, 4),
            "n_px": self.n_px,
        }

    def evidence(self) -> dict:
        """The short form added to each DSM-derived finding's evidence."""
        return {
            "offset_m": round(self.offset_m, 2),
            "tilt_m_per_km": round(self.tilt_m_per_km, 2),
            "sigma_1m2_m": round(self.sigma_over(1.0), 3),
        }


class CorrectedDsm:
    """A DSM reader that returns NaN where the DSM holds no value and, for the after date,
    subtracts the offset and tilt measured against the before DSM (picklable).

    Args:
        reader: a ``fortmap.io.raster.GridReader`` of the DSM on the analysis grid.
        plane: (a, b, c) of :attr:`DsmNoise.plane` to subtract, or None.
    """

    def __init__(self, reader, plane: tuple[float, float, float] | None = None) -> None:  # noqa: ANN001
        self.reader = reader
        self.plane = plane

    @property
    def path(self):  # noqa: ANN201
        """The DSM file."""
        return self.reader.path

    def read(self, window: Window) -> np.ndarray:
        """Heights (m) of ``window`` (analysis grid) as float32 (1, rows, cols), NaN unknown."""
        z = self.reader.read(window).astype(np.float32, copy=False)
        valid = self.reader.read_valid(window)
        if not valid.all():
            z = z.copy()
            z[:, ~valid] = np.nan
        if self.plane is not None:
            a, b, c = self.plane
            h, w = z.shape[1:]
            cols = np.arange(w, dtype=np.float64) + window.col_off + 0.5
            rows = np.arange(h, dtype=np.float64) + window.row_off + 0.5
            z = z - (a + b * cols[None, :] + c * rows[:, None]).astype(np.float32)[None]
        return z


def sample_tiles(width: int, height: int) -> list[Window]:
    """Up to ``TILES_ACROSS`` x ``TILES_ACROSS`` tiles of ``TILE_PX``, spread evenly."""
    tw, th = min(TILE_PX, width), min(TILE_PX, height)
    cols = np.unique(np.linspace(0, width - tw, TILES_ACROSS).astype(int))
    rows = np.unique(np.linspace(0, height - th, TILES_ACROSS).astype(int))
    return [Window(int(c), int(r), tw, th) for r in rows for c in cols]


def _walls(z: np.ndarray) -> np.ndarray:
    """Pixels with a step over ``WALL_STEP_M`` to a 4-neighbour (NaN steps are no walls)."""
    with np.errstate(invalid="ignore"):
        dy = np.abs(np.diff(z, axis=0)) > WALL_STEP_M
        dx = np.abs(np.diff(z, axis=1)) > WALL_STEP_M
    m = np.zeros(z.shape, bool)
    m[1:] |= dy
    m[:-1] |= dy
    m[:, 1:] |= dx
    m[:, :-1] |= dx
    return m


def _robust_sigma(v: np.ndarray) -> float:
    v = v[np.isfinite(v)]
    return robust_sigma(v, 0.0) if v.size >= 10 else math.nan


def _fit_plane(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """(a, b, c) of z = a + b x + c y by least squares, refitted up to twice without the tiles
    over 3 robust sigmas off the fit (a tile mostly changed, e.g. razed); the median only
    when fewer than 6 tiles."""
    keep = np.ones(z.size, bool)
    coef = np.array([float(np.median(z)), 0.0, 0.0])
    if z.size < 6:
        return coef
    for _ in range(3):
        A = np.c_[np.ones(keep.sum()), x[keep], y[keep]]
        coef = np.linalg.lstsq(A, z[keep], rcond=None)[0]
        res = z - (coef[0] + coef[1] * x + coef[2] * y)
        s = max(MAD_SIGMA * float(np.median(np.abs(res[keep]))), 0.05)
        new = np.abs(res) <= 3 * s
        if new.sum() < 6 or (new == keep).all():
            break
        keep = new
    return coef


def estimate_dsm_noise(dsm_before, dsm_after, grid: Grid) -> DsmNoise | None:  # noqa: ANN001
    """Offset, tilt and noise of ``dsm_after - dsm_before`` over the scene.

    Args:
        dsm_before, dsm_after: :class:`CorrectedDsm` readers (no plane) on ``grid``.
        grid: the analysis grid (pixels; ``grid.gsd`` metres per pixel).

    Returns:
        :class:`DsmNoise`, or None where no tile holds enough pixels with both heights.
    """
    gsd = grid.gsd
    tiles, meds, diffs = [], [], []
    n_all = n_known = 0
    for win in sample_tiles(grid.width, grid.height):
        b, a = dsm_before.read(win)[0], dsm_after.read(win)[0]
        d = a - b
        d[_walls(b) | _walls(a)] = np.nan
        known = np.isfinite(d)
        n_all += d.size
        n_known += int(np.isfinite(a - b).sum())
        if known.mean() < MIN_TILE_KNOWN:
            continue
        tiles.append((win.col_off + win.width / 2, win.row_off + win.height / 2))
        meds.append(float(np.median(d[known])))
        diffs.append((win, d))
    if not tiles:
        return None
    xy = np.asarray(tiles, float)
    a, b, c = _fit_plane(xy[:, 0], xy[:, 1], np.asarray(meds))
    res = []
    for win, d in diffs:
        cols = np.arange(win.width) + win.col_off + 0.5
        rows = np.arange(win.height) + win.row_off + 0.5
        res.append(d - (a + b * cols[None, :] + c * rows[:, None]))
    sig_px = _robust_sigma(np.concatenate([r.ravel() for r in res]))
    areas = []
    for area in NOISE_AREAS_M2:
        k = max(1, int(round(math.sqrt(area) / gsd)))
        means = []
        for r in res:
            h, w = (r.shape[0] // k) * k, (r.shape[1] // k) * k
            if h and w:
                # NaN in a patch drops it: only patches wholly known are averaged
                means.append(r[:h, :w].reshape(h // k, k, w // k, k).mean(axis=(1, 3)).ravel())
        s = _robust_sigma(np.concatenate(means)) if means else math.nan
        areas.append(((k * gsd) ** 2, s))
    # the plane per metre: b per column east, -c per row north (rows run south)
    ge, gn = b / gsd, -c / gsd
    centre = (grid.width / 2, grid.height / 2)
    offset = a + b * centre[0] + c * centre[1]
    span = abs(b) * grid.width + abs(c) * grid.height
    corrected = abs(offset) + span >= MIN_CORRECTION_M
    return DsmNoise(
        plane=(float(a), float(b), float(c)),
        offset_m=float(offset),
        tilt_m_per_km=float(math.hypot(ge, gn) * 1000),
        tilt_azimuth_deg=float(math.degrees(math.atan2(ge, gn)) % 360),
        sigma_px_m=0.0 if not math.isfinite(sig_px) else sig_px,
        sigma_area=tuple(areas),
        nodata_fraction=1 - n_known / max(n_all, 1),
        n_px=int(sum(np.isfinite(r).sum() for r in res)),
        corrected=bool(corrected),
    )


@dataclass(frozen=True)
class DsmRule:
    """One DSM rule: its physical floor, the area it integrates, its smallest object.

    Attributes:
        name: short name used in the summary.
        floor_m: the physical rise threshold (m) the rule uses with exact DSMs.
        area_m2: the area (m²) over which it reads a rise (a pixel test needing that area).
        object_m: height (m) of the lowest object it must see.
        fixed: True when the caller cannot yet take a raised threshold: the rule then runs
            only while its floor already clears the noise.
    """

    name: str
    floor_m: float
    area_m2: float
    object_m: float
    fixed: bool = False


#: Share of its height a berm's crest keeps after ``berm_surfaces``' smoothing (a Gaussian
#: of 2 m across the narrowest berm, a parabolic bank 8 m wide at its base): 0.77 (the
#: product's own smoothing, unknown, lowers it further).
BERM_SMOOTHED_CREST = 0.77

#: The rules that read both DSMs. Heights from the objects in scope: concrete blocks
#: 1.4-1.6 m; debris piles 0.6-1.5 m at their crest with most of their surface at ~0.6 m;
#: berms 2-4 m; obstacles on a route are blocks or piles (lowest: piles).
RULES: tuple[DsmRule, ...] = (
    # barricade_dsm.dsm_rise_at / dsm_rows: 0.7 m over 1 m² (called from barricades.py)
    DsmRule("block_rows", 0.7, 1.0, 1.4, fixed=True),
    # dsm_rubble._stands_on_dsm and find_dsm_rubble: 0.3 m over 1 m²
    DsmRule("rubble", 0.3, 1.0, 0.6),
    # berms.find_berms: 1 m (in berms.py, so fixed) on its 2 m cells of DSMs that
    # ``berm_surfaces`` smoothed by a Gaussian of BERM_SMOOTH_M: 4 pi (2 m)² ~ 50 m²; the
    # lowest berm (2 m) as that smoothing leaves it (BERM_SMOOTHED_CREST)
    DsmRule("berms", 1.0, 50.0, 2.0 * BERM_SMOOTHED_CREST, fixed=True),
    # analyze.clearance: obstacles 0.3 m over 1 m²
    DsmRule("route_obstacles", 0.3, 1.0, 0.6),
)


@dataclass
class DsmRules:
    """Per rule, its threshold (m) and whether it runs; why the others do not.

    Attributes:
        thresholds: rule name -> rise threshold (m) to use.
        off: rule name -> one-line reason it is switched off.
    """

    thresholds: dict[str, float] = field(default_factory=dict)
    off: dict[str, str] = field(default_factory=dict)

    def on(self, name: str) -> bool:
        """Whether rule ``name`` runs."""
        return name not in self.off

    def threshold(self, name: str) -> float:
        """Rise threshold (m) of rule ``name`` (its floor when the noise is lower)."""
        return self.thresholds[name]

    def as_dict(self) -> dict:
        """Summary entry."""
        return {
            "thresholds_m": {k: round(v, 3) for k, v in self.thresholds.items()},
            "rules_off": dict(self.off),
        }


def rule_threshold(noise: DsmNoise | None, rule: DsmRule) -> float:
    """The rise threshold (m) of ``rule``: its floor, or ``K_FALSE`` sigmas of the noise
    over its area when higher."""
    if noise is None:
        return rule.floor_m
    return max(rule.floor_m, K_FALSE * noise.sigma_over(rule.area_m2))


def dsm_rules(noise: DsmNoise | None) -> DsmRules:
    """Thresholds and on/off of the DSM rules (:data:`RULES`) under ``noise``.

    A rule runs when its lowest object stands ``K_MISS`` sigmas above its threshold; a rule
    whose caller takes only its floor (``fixed``) runs only when the floor clears
    ``K_FALSE`` sigmas. None (not measured) keeps every rule at its floor.
    """
    out = DsmRules()
    for rule in RULES:
        t = rule_threshold(noise, rule)
        out.thresholds[rule.name] = t
        if noise is None:
            continue
        s = noise.sigma_over(rule.area_m2)
        if rule.fixed and t > rule.floor_m:
            out.off[rule.name] = (
                f"noise {s:.2f} m over {rule.area_m2:g} m2 needs a threshold of {t:.2f} m, "
                f"above the rule's {rule.floor_m:g} m"
            )
        elif rule.object_m < t + K_MISS * s:
            out.off[rule.name] = (
                f"noise {s:.2f} m over {rule.area_m2:g} m2: a {rule.object_m:g} m object "
                f"does not clear the {t:.2f} m threshold by {K_MISS:g} sigmas"
            )
    return out


def berm_dsm_resolves(noise: DsmNoise | None) -> bool:
    """Whether the DSM berm path (``berms.find_berms`` with DSMs) can run under ``noise``."""
    return dsm_rules(noise).on("berms")


def measure_dsms(
    before,
    after,
    grid: Grid,  # noqa: ANN001  (fortmap.io.raster.GridReader)
) -> tuple[tuple[CorrectedDsm, CorrectedDsm], DsmNoise | None, DsmRules, dict]:
    """Measure two DSM readers once for a scene and decide which DSM rules run.

    Args:
        before, after: ``GridReader``s of the two dates' DSMs on the analysis grid (metres).
        grid: the analysis grid.

    Returns:
        (the two readers as :class:`CorrectedDsm`, NaN where unknown and the after one's
        offset and tilt removed; the noise or None; the rules; the summary entry
        ``dsm_quality``, with ``cpu_s`` and, when any rule is off, a one-line ``warning``
        naming the DSMs and the reason).
    """
    cpu = time.process_time()
    dsms = (CorrectedDsm(before), CorrectedDsm(after))
    noise = estimate_dsm_noise(*dsms, grid)
    if noise is not None and noise.corrected:
        dsms = (dsms[0], CorrectedDsm(after, noise.plane))
    rules = dsm_rules(noise)
    if noise is None:
        why = "no sample tile holds heights on both dates"
        rules.off = {r.name: why for r in RULES}
    else:
        why = (
            f"difference noise {noise.sigma_over(1.0):.2f} m over 1 m2 after removing a "
            f"{noise.offset_m:+.2f} m offset and a {noise.tilt_m_per_km:.2f} m/km tilt"
        )
    entry = {**(noise.as_dict() if noise is not None else {}), **rules.as_dict()}
    if rules.off:
        entry["warning"] = (
            f"{before.path}, {after.path}: DSMs too coarse or noisy for "
            f"{', '.join(rules.off)} ({why}); those use the image alone"
        )
    entry["cpu_s"] = round(time.process_time() - cpu, 3)
    return dsms, noise, rules, entry


def fill_small_holes(z: np.ndarray, gsd: float, max_m2: float = MAX_FILL_M2) -> np.ndarray:
    """``z`` (m, NaN unknown) with each hole of up to ``max_m2`` (m²) set to the lowest height
    on its rim: a hole beside a wall takes the ground, not the roof, so filling never makes
    a rise that was not measured around the hole. Larger holes stay NaN."""
    hole = np.isnan(z)
    if not hole.any():
        return z
    lab, n = ndi.label(hole)
    area = np.bincount(lab.ravel(), minlength=n + 1) * gsd * gsd
    rim_lab = ndi.grey_dilation(lab, size=(3, 3))
    rim_lab[hole] = 0
    lows = np.asarray(ndi.minimum(np.nan_to_num(z, nan=np.inf), rim_lab, np.arange(1, n + 1)))
    fill = np.r_[np.nan, np.where((area[1:] <= max_m2) & np.isfinite(lows), lows, np.nan)]
    out = z.copy()
    out[hole] = fill[lab[hole]].astype(z.dtype)
    return out


def berm_surfaces(
    dsm_before: np.ndarray, dsm_after: np.ndarray, gsd: float, noise: DsmNoise | None
) -> tuple[np.ndarray, np.ndarray]:
    """The two DSMs (m, window grid) as the berm path should read them: small holes filled
    (:func:`fill_small_holes`) and, where the difference is noisy, smoothed by a Gaussian of
    ``BERM_SMOOTH_M`` (NaN-aware: unknown cells neither count nor spread)."""
    out = []
    smooth = noise is not None and noise.sigma_over(4.0) > BERM_SMOOTH_FROM_M
    for z in (dsm_before, dsm_after):
        z = fill_small_holes(z, gsd)
        if smooth:
            known = np.isfinite(z)
            s = BERM_SMOOTH_M / gsd
            num = ndi.gaussian_filter(np.where(known, z, 0).astype(np.float32), s)
            den = ndi.gaussian_filter(known.astype(np.float32), s)
            with np.errstate(invalid="ignore", divide="ignore"):
                z = np.where(known, num / den, np.nan).astype(np.float32)
        out.append(z)
    return out[0], out[1]
