"""Sun azimuth from building shadows, for images whose metadata lacks it.

A building's shadow lies on the side away from the sun. For each direction on a compass of
``N_DIR`` directions, the image is sampled a few metres beyond the buildings' edge in that
direction (outside the buildings themselves); the mean brightness there, as a function of
direction, dips where the shadows are. The first circular harmonic of that curve gives the
shadow direction; the sun is opposite. Buildings come from footprints when given, otherwise
from bright compact objects (roofs are brighter than their shadows by construction, and
compact bright blobs are mostly roofs in a built-up scene).

The answer is None when the dip is weak against the curve's mean (no shadows, overcast, no
buildings): its relative amplitude must reach ``MIN_RELATIVE_DIP``.

When the metadata has the angles, ``sun_from_tags`` reads them under the names vendors use
(GDAL/fortmap ``SUN_AZIMUTH``, Maxar ``meanSunAz``, Sentinel-2 ``MEAN_SUN_ZENITH_ANGLE``,
STAC ``view:sun_azimuth``, ...), and the shadow estimate is only the fallback.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import numpy as np
import shapely
from rasterio.features import rasterize
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu

#: Compass directions sampled.
N_DIR = 36
#: Distances (m) beyond the building edge where shadows are looked for: a 3 m wall casts a
#: shadow 2-8 m long for sun elevations 20-55 degrees.
SHADOW_DIST_M = (1.0, 2.0, 3.0)
#: Smallest relative amplitude of the first harmonic (dip / mean brightness) that is trusted:
#: shadows are 3-5x darker than lit ground, so a real dip is tens of per cent.
MIN_RELATIVE_DIP = 0.05


def _objects(grey: np.ndarray, valid: np.ndarray, gsd: float) -> np.ndarray:
    """Bright compact objects (likely roofs): above Otsu, 20-2000 m2, opened by 2 m."""
    thr = threshold_otsu(grey[valid])
    m = (grey > thr) & valid
    k = max(1, int(round(2.0 / gsd)))
    m = ndi.binary_opening(m, np.ones((k, k), bool))
    lab, n = ndi.label(m)
    if n == 0:
        return m
    area = ndi.sum(np.ones_like(grey), lab, index=np.arange(1, n + 1)) * gsd * gsd
    keep = np.r_[False, (area >= 20) & (area <= 2000)]
    return keep[lab]


def estimate_sun_azimuth(
    image: np.ndarray,
    valid: np.ndarray,
    gsd: float,
    footprints_px: list[shapely.Polygon] | None = None,
) -> float | None:
    """Sun azimuth (degrees clockwise from north, the direction the sun is in), or None.

    Args:
        image: (bands, rows, cols) or (rows, cols), north up (rows run south), e.g. a sample
            mosaic of the after image.
        valid: bool (rows, cols).
        gsd: metres per pixel.
        footprints_px: building polygons in the image's pixel coordinates (optional).
    """
    grey = image.mean(axis=0) if image.ndim == 3 else image.astype(np.float32)
    if valid.sum() < 1000:
        return None
    if footprints_px:
        objs = rasterize([(p, 1) for p in footprints_px], out_shape=grey.shape).astype(bool)
    else:
        objs = _objects(grey, valid, gsd)
    if objs.sum() < 50:
        return None
    curve = np.zeros(N_DIR)
    angles = np.arange(N_DIR) * 2 * np.pi / N_DIR
    free = valid & ~objs
    for i, a in enumerate(angles):
        dc, dr = np.sin(a), -np.cos(a)  # azimuth a in pixel steps (rows run south)
        vals, cnt = 0.0, 0
        for dist in SHADOW_DIST_M:
            k = dist / gsd
            sh = ndi.shift(objs.astype(np.uint8), (dr * k, dc * k), order=0) > 0
            m = sh & free
            vals += float(grey[m].sum())
            cnt += int(m.sum())
        curve[i] = vals / max(cnt, 1)
    mean = curve.mean()
    c1 = np.sum(curve * np.exp(1j * angles)) * 2 / N_DIR
    amp = abs(c1)
    if mean <= 0 or amp / mean < MIN_RELATIVE_DIP:
        return None
    # curve ~ mean + amp cos(a - phase): brightest side faces the sun, darkest is the shadow.
    phase = float(np.angle(c1))
    return float(np.degrees(phase) % 360.0)


#: Tag names (upper case, letters and digits only, namespace and ``IMAGE_1.`` prefixes dropped)
#: holding the sun's azimuth, elevation or zenith angle, degrees.
_AZIMUTH_KEYS = ("SUNAZIMUTH", "MEANSUNAZ", "SUNAZ", "MEANSUNAZIMUTHANGLE", "SUNAZIMUTHANGLE",
                 "SOLARAZIMUTH", "SOLARAZIMUTHANGLE", "ILLUMINATIONAZIMUTH")  # fmt: skip
_ELEVATION_KEYS = ("SUNELEVATION", "MEANSUNEL", "SUNEL", "SUNELEVATIONANGLE", "SOLARELEVATION",
                   "SOLARELEVATIONANGLE", "ILLUMINATIONELEVATION", "SUNALTITUDE")  # fmt: skip
_ZENITH_KEYS = ("SUNZENITH", "MEANSUNZENITHANGLE", "SUNZENITHANGLE", "SOLARZENITH",
                "SOLARZENITHANGLE")  # fmt: skip


def _norm_key(k: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", str(k).rsplit(":", 1)[-1].rsplit(".", 1)[-1].upper())


def sun_from_tags(tags: Mapping[str, str]) -> tuple[float | None, float | None]:
    """(azimuth, elevation) of the sun in degrees from image metadata, each None when absent.

    Args:
        tags: metadata key/values (e.g. rasterio ``tags()``, merged over namespaces). Azimuth
            is degrees clockwise from north, the direction the sun is in; an elevation is
            also derived from a zenith angle (90 - zenith). Values outside their range
            (azimuth not finite, elevation not in 0-90) count as absent.
    """
    vals: dict[str, float] = {}
    for k, v in tags.items():
        try:
            vals.setdefault(_norm_key(k), float(v))
        except (TypeError, ValueError):
            continue
    az = next((vals[k] for k in _AZIMUTH_KEYS if k in vals), None)
    el = next((vals[k] for k in _ELEVATION_KEYS if k in vals), None)
    if el is None:
        zen = next((vals[k] for k in _ZENITH_KEYS if k in vals), None)
        el = None if zen is None else 90.0 - zen
    if az is not None and not math.isfinite(az):
        az = None
    if el is not None and not (math.isfinite(el) and 0.0 < el <= 90.0):
        el = None
    return (None if az is None else az % 360.0), el
