"""Turn a surface into an RGB image: materials, sun shading, cast shadows, then the sensor.

Radiance is linear reflectance x (direct sun x cos(incidence) x lit + sky light). Shadows
are cast from the DSM by marching the height field towards the sun with whole-array shifts
(shadow length = height / tan(sun elevation)). The sensor adds misregistration (global
sub-pixel shift + smooth local warp), PSF blur, per-band gain/offset/gamma with haze, noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from fortmap.simulate import raster as R
from fortmap.simulate.layout import City
from fortmap.simulate.noise import Textures

#: Linear reflectance RGB per material class (rows follow the class constants in raster.py).
ALBEDO = np.array(
    [
        [0.42, 0.38, 0.30],  # GROUND: dry grass and soil
        [0.55, 0.48, 0.38],  # BARE
        [0.30, 0.36, 0.20],  # FIELD (overridden per field)
        [0.53, 0.48, 0.40],  # URBAN: courtyards, dust
        [0.55, 0.50, 0.40],  # BANK: sand and mud
        [0.06, 0.10, 0.11],  # WATER
        [0.62, 0.60, 0.56],  # PLAZA
        [0.27, 0.27, 0.27],  # MINOR road
        [0.17, 0.17, 0.18],  # MAJOR road
        [0.46, 0.46, 0.45],  # RUNWAY
        [0.50, 0.50, 0.50],  # ROOF (overridden per building)
        [0.63, 0.54, 0.42],  # GRADED soil
        [0.47, 0.44, 0.40],  # RUBBLE
        [0.50, 0.40, 0.30],  # BERM: freshly dug earth
        [0.74, 0.74, 0.72],  # BLOCK: concrete
    ],
    np.float32,
)
#: Relative amplitude of fine texture per class (fraction of albedo).
FINE = np.array(
    [0.10, 0.08, 0.06, 0.10, 0.07, 0.02, 0.04, 0.10, 0.09, 0.04, 0.03, 0.03, 0.30, 0.06, 0.03],
    np.float32,
)
#: Relative amplitude of patchy (metre-scale) texture per class.
PATCH = np.array(
    [0.14, 0.08, 0.10, 0.14, 0.08, 0.05, 0.04, 0.08, 0.07, 0.03, 0.04, 0.04, 0.18, 0.05, 0.02],
    np.float32,
)
FIELD_COLOURS = np.array([[0.24, 0.31, 0.15], [0.52, 0.47, 0.31], [0.40, 0.33, 0.26]], np.float32)
VEGETATION = np.array([0.26, 0.33, 0.17], np.float32)
CANOPY = np.array([0.10, 0.19, 0.07], np.float32)
SKY = np.array([0.16, 0.18, 0.22], np.float32)  # sky light reaching shadows: bluish
SUN = np.float32(0.85)


@dataclass(frozen=True)
class Sensor:
    """Radiometry and geometry of one acquisition (all per band R, G, B)."""

    gain: tuple[float, float, float] = (1.0, 1.0, 1.0)
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    gamma: tuple[float, float, float] = (1.0, 1.0, 1.0)
    noise_dn: float = 1.0
    psf_sigma_px: float = 0.4
    shift_px: tuple[float, float] = (0.0, 0.0)
    warp_px: float = 0.0


def sun_vector(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """Unit vector towards the sun in (east, north, up)."""
    a, e = np.radians(azimuth_deg), np.radians(elevation_deg)
    return np.array([np.sin(a) * np.cos(e), np.cos(a) * np.cos(e), np.sin(e)], np.float32)


def cast_shadows(
    dsm: np.ndarray,
    gsd: float,
    azimuth_deg: float,
    elevation_deg: float,
    max_height_m: float | None = None,
) -> np.ndarray:
    """Shadow fraction 0..1 (float32) of each pixel of ``dsm`` (metres) for the given sun.

    For steps k along the ray towards the sun, a pixel is shadowed when the surface k steps
    away rises above the sun ray: ``dsm[p + k u] - k * gsd * tan(elev) > dsm[p]``. Each step
    is one whole-array shifted maximum; steps grow to 2 then 3 px beyond 24 and 64 px
    (features that far along the ray are buildings or trees, many pixels wide), which moves
    the far end of long shadows by under 3 px. ``max_height_m`` (the tallest object above
    the ground) bounds the march; by default the DSM's range, capped at 40 m.
    """
    a = np.radians(azimuth_deg)
    ucol, urow = np.sin(a), -np.cos(a)
    drop = gsd * np.tan(np.radians(elevation_deg))
    reach = float(dsm.max() - dsm.min()) if max_height_m is None else float(max_height_m)
    kmax = int(np.ceil(min(reach, 40.0) / drop))
    ks = (
        list(range(1, min(kmax, 24) + 1))
        + list(range(26, min(kmax, 64) + 1, 2))
        + list(range(67, kmax + 3, 3))
    )
    top = np.full(dsm.shape, -np.inf, np.float32)
    h, w = dsm.shape
    seen = set()
    for k in ks:
        dc, dr = int(round(k * ucol)), int(round(k * urow))
        if (dc, dr) in seen or abs(dc) >= w or abs(dr) >= h:
            continue
        seen.add((dc, dr))
        fall = np.float32(np.hypot(dc, dr) * drop)
        dst = (slice(max(-dr, 0), h - max(dr, 0)), slice(max(-dc, 0), w - max(dc, 0)))
        src = (slice(max(dr, 0), h - max(-dr, 0)), slice(max(dc, 0), w - max(-dc, 0)))
        np.maximum(top[dst], dsm[src] - fall, out=top[dst])
    top -= dsm
    return np.clip(top / np.float32(0.3), 0.0, 1.0)


#: Share of sparse vegetation mixed into each class's colour (ground, courtyards, banks).
VEG_SHARE = np.zeros(R.N_CLASSES, np.float32)
VEG_SHARE[[R.GROUND, R.URBAN, R.BANK]] = (1.0, 0.35, 0.5)


def albedo(
    s: R.Surface,
    city: City,
    tex: Textures,
    field_colours: np.ndarray,
    gsd: float,
    vegetation_dry: float = 0.0,
) -> np.ndarray:
    """Linear reflectance (3, H, W) float32 of every pixel of surface ``s``.

    One colour table indexed by a per-pixel key (class, or the building / roof detail /
    field it belongs to) gives the base colour with three ``take`` calls; textures multiply it.
    """
    nc, nb, nd = R.N_CLASSES, city.b_colour.shape[0], city.d_colour.shape[0]
    table = np.concatenate(
        [ALBEDO, city.b_colour, city.d_colour, field_colours, CANOPY[None, :]]
    ).astype(np.float32)
    key = s.cls.astype(np.int32)
    # Ids may be uint16: widen before adding offsets so nothing wraps around.
    key = np.where(s.fid > 0, s.fid.astype(np.int32) + (nc + nb + nd - 1), key)
    key = np.where(s.bid > 0, s.bid.astype(np.int32) + (nc - 1), key)
    key = np.where(s.det > 0, s.det.astype(np.int32) + (nc + nb - 1), key)
    key = np.where(s.canopy > 0, len(table) - 1, key)
    veg = np.clip(0.45 + 0.6 * tex.broad, 0.0, 1.0) * np.float32(1.0 - vegetation_dry)
    veg *= VEG_SHARE[s.cls]
    mod = 1 + FINE[s.cls] * tex.fine + PATCH[s.cls] * tex.patch
    # Parapets: roof edges catch a bit more light.
    edge = np.zeros(s.cls.shape, bool)
    edge[1:, :] |= s.bid[1:, :] != s.bid[:-1, :]
    edge[:, 1:] |= s.bid[:, 1:] != s.bid[:, :-1]
    edge &= s.bid > 0
    mod[edge] *= 1.12
    canopy = s.canopy > 0
    mod[canopy] = 1 + 0.25 * tex.patch[canopy]
    idx = np.nonzero(s.fid > 0)
    if idx[0].size:
        k = s.fid[idx] - 1
        x, y = R.pixel_xy(idx, city.size_m, gsd)
        ang = city.f_angle[k]
        rows = np.sin(2 * np.pi * (x * np.cos(ang) + y * np.sin(ang)) / 2.5).astype(np.float32)
        mod[idx] = 1 + 0.09 * rows + 0.06 * tex.broad[idx] + 0.03 * tex.fine[idx]
    idx = np.nonzero(s.cls == R.GRADED)
    if idx[0].size:
        # Faint bulldozer track marks along one direction.
        x, y = R.pixel_xy(idx, city.size_m, gsd)
        mod[idx] *= 1 + 0.03 * np.sin(2 * np.pi * (x * 0.6 + y * 0.8) / 3.2).astype(np.float32)
    rub = np.nonzero(s.cls == R.RUBBLE)
    out = np.empty((3,) + s.cls.shape, np.float32)
    for b in range(3):
        band = np.take(table[:, b], key)
        band += veg * (VEGETATION[b] - band)
        band *= mod
        if rub[0].size:
            # Broken concrete: colour speckle between grey and brown.
            sp = (tex.patch[rub], 0.5 * tex.fine[rub], -tex.patch[rub])[b]
            band[rub] *= np.clip(1 + 0.12 * sp, 0.5, 1.5)
        out[b] = np.clip(band, 0.0, 1.0)
    return out


def radiance(
    s: R.Surface, alb: np.ndarray, gsd: float, azimuth_deg: float, elevation_deg: float
) -> np.ndarray:
    """Linear radiance (3, H, W): albedo x (sun x cos incidence x lit + sky)."""
    sun = sun_vector(azimuth_deg, elevation_deg)
    z = s.shade_height()
    gy, gx = np.gradient(z, gsd)  # rows run south, so north slope is -gy
    nz = 1.0 / np.sqrt(gx * gx + gy * gy + 1.0)
    cos_i = np.clip((-gx * sun[0] + gy * sun[1] + sun[2]) * nz, 0.0, 1.0)
    flat = s.obj_h > 0  # roofs and block tops: flat, shaded only by cast shadows
    cos_i[flat] = sun[2]
    tallest = max(float(s.obj_h.max()), float(s.canopy.max()), float(s.relief.max())) + 2.0
    lit = 1.0 - cast_shadows(s.dsm(), gsd, azimuth_deg, elevation_deg, tallest)
    direct = SUN * cos_i * lit
    out = np.empty_like(alb)
    for b in range(3):
        out[b] = alb[b] * (direct + SKY[b] / SKY.mean() * 0.17)
    return out


def sensor(rad: np.ndarray, sen: Sensor, rng: np.random.Generator) -> np.ndarray:
    """Apply misregistration, PSF, radiometry and noise; returns uint8 (3, H, W)."""
    _, h, w = rad.shape
    if sen.shift_px != (0.0, 0.0) or sen.warp_px > 0:
        dx, dy = local_warp(rng, (h, w), sen.warp_px)
        rad = warp(rad, dx + sen.shift_px[0], dy + sen.shift_px[1])
    out = np.empty(rad.shape, np.uint8)
    levels = np.linspace(0.0, 1.0, 4096, dtype=np.float32)
    for b in range(3):
        band = ndi.gaussian_filter(rad[b], sen.psf_sigma_px) if sen.psf_sigma_px > 0 else rad[b]
        band *= np.float32(sen.gain[b] * 4095)
        band += np.float32(sen.offset[b] * 4095)
        np.clip(band, 0, 4095, out=band)
        # Encoding curve through a lookup table: a power on 16 M floats is slow.
        lut = 255.0 * levels ** np.float32(1.0 / (2.2 * sen.gamma[b]))
        v = np.take(lut, band.astype(np.int16))
        v += rng.standard_normal((h, w), dtype=np.float32) * np.float32(sen.noise_dn)
        np.clip(v, 0, 255, out=v)
        out[b] = np.rint(v)
    return out


def local_warp(
    rng: np.random.Generator, shape: tuple[int, int], amp_px: float
) -> tuple[np.ndarray, np.ndarray]:
    """Smooth, zero-mean displacement fields (dx, dy) in pixels, largest magnitude ``amp_px``."""
    h, w = shape
    out = []
    for _ in range(2):
        coarse = rng.standard_normal((5, 5)).astype(np.float32)
        mid = ndi.zoom(coarse, (h / 80, w / 80), order=3, mode="nearest", grid_mode=True)
        f = ndi.zoom(
            mid, (h / mid.shape[0], w / mid.shape[1]), order=1, grid_mode=True, mode="nearest"
        )[:h, :w]
        f -= f.mean()
        out.append(f * np.float32(amp_px / max(np.abs(f).max(), 1e-6)))
    return out[0], out[1]


def warp(img: np.ndarray, dx: np.ndarray, dy: np.ndarray, strip: int = 512) -> np.ndarray:
    """Content moved by (dx, dy) pixels: ``out(p) = img(p - d)`` (bilinear), by row strips."""
    _, h, w = img.shape
    out = np.empty_like(img)
    cols = np.arange(w, dtype=np.float32)
    for r0 in range(0, h, strip):
        r1 = min(r0 + strip, h)
        rows = np.arange(r0, r1, dtype=np.float32)[:, None]
        cr = np.stack([rows - dy[r0:r1], cols[None, :] - dx[r0:r1]])
        for b in range(img.shape[0]):
            out[b, r0:r1] = ndi.map_coordinates(img[b], cr, order=1, mode="nearest")
    return out
