"""How hard the simulated pair is: misregistration, illumination change, haze, noise, blur.

One number ``level`` in 0..1 drives every parameter linearly, so presets and a continuous
scale are the same thing. The ranges come from what real very-high-resolution pairs show:
orthorectified products from different passes disagree by 1-5 m (2-10 px at 0.5 m), sun
azimuths differ by tens of degrees between seasons, and a hazy day adds a bluish offset of a
few percent of full scale.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from fortmap.errors import InputError

#: Named presets -> level in 0..1.
PRESETS: dict[str, float] = {"easy": 0.15, "default": 0.45, "hard": 0.75, "extreme": 1.0}


@dataclass(frozen=True)
class Difficulty:
    """Parameters of the between-dates differences; all derive from ``level``.

    Attributes:
        level: 0 (near-identical acquisitions) .. 1 (very different ones).
        misreg_px: magnitude of the global misregistration of the after image (pixels).
        local_warp_px: largest displacement of the smooth, zero-mean local warp (pixels).
        sun_azimuth_change_deg: change of sun azimuth between the dates (degrees).
        sun_elevation_change_deg: change of sun elevation between the dates (degrees).
        haze: path-radiance offset added to the after image (fraction of full scale, blue band).
        gain_jitter: largest relative change of a band's gain.
        gamma_jitter: largest relative change of a band's gamma.
        noise_dn: standard deviation of the after image's sensor noise (digital numbers).
        psf_sigma_px: Gaussian PSF sigma of the after image (pixels).
        seasonal: 0..1, how much fields change colour between the dates (not a change in truth).
    """

    level: float
    misreg_px: float
    local_warp_px: float
    sun_azimuth_change_deg: float
    sun_elevation_change_deg: float
    haze: float
    gain_jitter: float
    gamma_jitter: float
    noise_dn: float
    psf_sigma_px: float
    seasonal: float

    @classmethod
    def from_level(cls, level: float) -> Difficulty:
        """Difficulty at ``level`` in 0..1 (``default`` is 0.45: ~2.5 px misregistration)."""
        t = float(level)
        if not 0.0 <= t <= 1.0:
            raise InputError(f"difficulty {level!r}: expected a preset or a number in 0..1")
        return cls(
            level=t,
            misreg_px=0.3 + 5.0 * t,
            local_warp_px=0.2 + 1.0 * t,
            sun_azimuth_change_deg=5.0 + 45.0 * t,
            sun_elevation_change_deg=2.0 + 16.0 * t,
            haze=0.005 + 0.05 * t,
            gain_jitter=0.02 + 0.12 * t,
            gamma_jitter=0.02 + 0.15 * t,
            noise_dn=1.0 + 5.0 * t,
            psf_sigma_px=0.4 + 0.9 * t,
            seasonal=t,
        )

    def as_dict(self) -> dict[str, float]:
        """Plain dict for ``scene.json`` (values rounded to 4 decimals)."""
        return {k: round(float(v), 4) for k, v in asdict(self).items()}


def resolve_difficulty(value: str | float | Difficulty) -> Difficulty:
    """A :class:`Difficulty` from a preset name, a number 0..1 (or its string), or itself.

    Raises:
        InputError: unknown preset or a number outside 0..1.
    """
    if isinstance(value, Difficulty):
        return value
    if isinstance(value, str):
        key = value.strip().lower()
        if key in PRESETS:
            return Difficulty.from_level(PRESETS[key])
        try:
            level = float(key)
        except ValueError:
            names = "|".join(PRESETS)
            raise InputError(
                f"difficulty {value!r}: expected {names} or a number in 0..1"
            ) from None
        return Difficulty.from_level(level)
    return Difficulty.from_level(float(value))
