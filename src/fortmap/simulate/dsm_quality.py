"""Degrade an exact simulated DSM the way a stereo-satellite DSM is degraded.

The simulator's DSMs are exact: a 1.5 m block reads 1.5 m and flat ground reads the same on
both dates. A DSM an analyst gets from a stereo pair (WorldView, Pleiades, 0.3-0.5 m imagery)
is not, and each date's is made independently:

* **Posting and smoothing**: heights are matched on windows of several pixels and posted at
  about 2-4 image pixels (1-2 m for 0.5 m imagery); an object narrower than a few posts is
  flattened. Modelled as a block mean onto the posting grid, a Gaussian of ``smooth_m`` and
  bilinear interpolation back onto the image grid.
* **Random error**: 0.3-0.5 m (1 sigma) on open flat ground for WorldView/Pleiades tri-stereo
  DSMs checked against lidar (e.g. Hu et al. 2016, ISPRS J.; Bagnardi et al. 2016,
  Geophys. Res. Lett.; Rupnik et al. 2018 report 0.4-0.6 m on Pleiades), about 1 m for coarser
  or two-view products; noise is drawn on the posting grid, so it is correlated over a post.
  It is ``edge_gain`` times larger at walls (steep height steps), where matching fails.
* **Holes** (nodata): occlusions beside tall objects and deep shadow, a few percent of a city
  scene; modelled as blobs of ``hole_m`` seeded at random, half of them at height steps.
* **Between dates**: without ground control, each date's absolute height is off by up to a
  few metres (the RPCs' vertical bias; WorldView LE90 ~ 3-5 m without GCPs) and tilted by
  the residual of the bias fit, a few decimetres per kilometre. Drawn per date, uniformly
  within ``offset_m`` and ``tilt_m_per_km``.

Presets (:data:`PRESETS`): ``exact`` leaves the DSM untouched (the figures so far);
``stereo`` is a good tri-stereo product at 1 m posting, 0.4 m noise; ``coarse`` a 2 m posting,
0.9 m noise product. Heights in metres; grids north-up with square pixels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage as ndi

#: Value written for a hole (the usual nodata of DSM products; set as the file's nodata).
NODATA = -9999.0
#: Height step (m) between neighbouring pixels that marks a wall, where stereo matching fails.
WALL_STEP_M = 2.0


@dataclass(frozen=True)
class DsmQuality:
    """How a stereo DSM departs from the true surface (all lengths in metres).

    Attributes:
        name: preset name.
        posting_m: spacing of the DSM's posts (heights are block means over it).
        smooth_m: Gaussian sigma of the matcher's smoothing, on top of the posting.
        noise_m: standard deviation of the random error on open ground, per post.
        edge_gain: factor on the noise at walls (steps over ``WALL_STEP_M``).
        hole_fraction: share of the scene left nodata.
        hole_m: typical diameter of a hole.
        offset_m: a date's vertical offset is drawn uniformly in [-offset_m, offset_m].
        tilt_m_per_km: a date's tilt magnitude is drawn uniformly in [0, tilt_m_per_km].
    """

    name: str
    posting_m: float = 0.0
    smooth_m: float = 0.0
    noise_m: float = 0.0
    edge_gain: float = 1.0
    hole_fraction: float = 0.0
    hole_m: float = 4.0
    offset_m: float = 0.0
    tilt_m_per_km: float = 0.0

    @property
    def exact(self) -> bool:
        """True when the DSM is left as it is."""
        return self == DsmQuality(self.name)

    def as_dict(self) -> dict:
        """The parameters as a JSON-ready dict."""
        return asdict(self)


PRESETS: dict[str, DsmQuality] = {
    "exact": DsmQuality("exact"),
    "stereo": DsmQuality(
        "stereo", posting_m=1.0, smooth_m=0.5, noise_m=0.4, edge_gain=3.0,
        hole_fraction=0.03, hole_m=4.0, offset_m=2.0, tilt_m_per_km=0.3,
    ),
    "coarse": DsmQuality(
        "coarse", posting_m=2.0, smooth_m=1.0, noise_m=0.9, edge_gain=3.0,
        hole_fraction=0.06, hole_m=6.0, offset_m=3.0, tilt_m_per_km=0.5,
    ),
}  # fmt: skip


def resolve_quality(quality: str | DsmQuality) -> DsmQuality:
    """A preset by name (exact | stereo | coarse), or ``quality`` itself.

    Raises:
        ValueError: unknown preset name.
    """
    if isinstance(quality, DsmQuality):
        return quality
    try:
        return PRESETS[quality]
    except KeyError:
        raise ValueError(f"DSM quality {quality!r}: choose one of {', '.join(PRESETS)}") from None


def degrade_dsm(
    dsm: np.ndarray, gsd: float, quality: DsmQuality, rng: np.random.Generator
) -> tuple[np.ndarray, dict]:
    """One date's stereo DSM made from the exact surface ``dsm``.

    Args:
        dsm: exact surface heights (m), float (rows, cols), row 0 north.
        gsd: metres per pixel of ``dsm``.
        quality: the degradation (:class:`DsmQuality`).
        rng: the date's random stream (draw each date's from its own stream).

    Returns:
        (heights in metres, float32, ``NODATA`` in holes; what was drawn: ``offset_m``,
        ``tilt_m_per_km`` and ``tilt_azimuth_deg`` (direction of steepest rise, clockwise from
        north), ``hole_fraction``).
    """
    z = np.asarray(dsm, np.float32)
    if quality.exact:
        return z.copy(), {"offset_m": 0.0, "tilt_m_per_km": 0.0, "hole_fraction": 0.0}
    h, w = z.shape
    step = np.maximum(
        np.abs(np.diff(z, axis=0, append=z[-1:])), np.abs(np.diff(z, axis=1, append=z[:, -1:]))
    )
    wall = ndi.binary_dilation(step > WALL_STEP_M, iterations=max(1, round(0.5 / gsd)))
    k = max(1, int(round(quality.posting_m / gsd)))
    out = _post(z, k)
    if quality.smooth_m > 0:
        out = ndi.gaussian_filter(out, quality.smooth_m / gsd, mode="nearest")
    if quality.noise_m > 0:
        hp, wp = -(-h // k), -(-w // k)
        noise = rng.standard_normal((hp, wp)).astype(np.float32) * np.float32(quality.noise_m)
        noise = _up(noise, k, h, w)
        noise[wall] *= np.float32(quality.edge_gain)
        out += noise
    offset = float(rng.uniform(-quality.offset_m, quality.offset_m))
    tilt = float(rng.uniform(0, quality.tilt_m_per_km))
    az = float(rng.uniform(0, 360))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    east, north = (xx - w / 2) * gsd, -(yy - h / 2) * gsd
    a = np.radians(az)
    out += np.float32(offset) + (east * np.sin(a) + north * np.cos(a)) * np.float32(tilt / 1000)
    holes = _holes(wall, gsd, quality, rng)
    out[holes] = NODATA
    drawn = {
        "offset_m": round(offset, 3),
        "tilt_m_per_km": round(tilt, 4),
        "tilt_azimuth_deg": round(az, 1),
        "hole_fraction": round(float(holes.mean()), 4),
    }
    return out.astype(np.float32), drawn


def _post(z: np.ndarray, k: int) -> np.ndarray:
    """Block means of ``z`` over k x k pixels, interpolated back onto the pixel grid."""
    if k == 1:
        return z.astype(np.float32, copy=True)
    h, w = z.shape
    hp, wp = -(-h // k), -(-w // k)
    pad = np.pad(z, ((0, hp * k - h), (0, wp * k - w)), mode="edge")
    posts = pad.reshape(hp, k, wp, k).mean(axis=(1, 3)).astype(np.float32)
    return _up(posts, k, h, w)


def _up(posts: np.ndarray, k: int, h: int, w: int) -> np.ndarray:
    """Bilinear interpolation of post values (post centres at pixel (k - 1) / 2 + i k)."""
    r = (np.arange(h, dtype=np.float32) - (k - 1) / 2) / k
    c = (np.arange(w, dtype=np.float32) - (k - 1) / 2) / k
    rr, cc = np.meshgrid(r, c, indexing="ij")
    return ndi.map_coordinates(posts, [rr, cc], order=1, mode="nearest").astype(np.float32)


def _holes(
    wall: np.ndarray, gsd: float, quality: DsmQuality, rng: np.random.Generator
) -> np.ndarray:
    """Nodata blobs of about ``hole_m`` covering about ``hole_fraction`` of the scene, half
    of them seeded at walls (occlusions), half anywhere (shadow, water, uniform roofs)."""
    h, w = wall.shape
    if quality.hole_fraction <= 0:
        return np.zeros((h, w), bool)
    rad = max(1.0, quality.hole_m / 2 / gsd)
    n = int(round(quality.hole_fraction * h * w / (np.pi * rad * rad)))
    seeds = np.zeros((h, w), bool)
    wr, wc = np.nonzero(wall)
    n_wall = min(n // 2, wr.size)
    if n_wall:
        i = rng.choice(wr.size, n_wall, replace=False)
        seeds[wr[i], wc[i]] = True
    seeds[rng.integers(0, h, n - n_wall), rng.integers(0, w, n - n_wall)] = True
    return ndi.distance_transform_edt(~seeds) <= rad
