"""Sun azimuth from building shadows, for images whose metadata lacks it.

A building's shadow lies on the side away from the sun. For each direction on a compass of
``N_DIR`` directions, the image is sampled a few metres beyond the buildings' edge in that
direction (outside the buildings themselves); the mean brightness there, as a function of
direction, dips where the shadows are. The first circular harmonic of that curve gives the
shadow direction; the sun is opposite. Buildings come from footprints when given, otherwise
from bright compact objects (roofs are brighter than their shadows by construction, and
compact bright blobs are mostly roofs in a built-up scene).

The answer is None when the dip is weak against the curve's mean (no shadows, overcast, no
buildings): its relative amplitude must reach ``MIN_RELATIVE_DIP``, or the stricter
``MIN_RELATIVE_DIP_GUESSED`` when the buildings are guessed rather than given.

When the metadata has the angles, ``sun_from_tags`` reads them under the names vendors use
(GDAL/fortmap ``SUN_AZIMUTH``, Maxar ``meanSunAz``, Sentinel-2 ``MEAN_SUN_ZENITH_ANGLE``,
STAC ``view:sun_azimuth``, ...), and the shadow estimate is only the fallback.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping

import numpy as np
import shapely
from rasterio.features import rasterize
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu

#: Compass directions sampled.
N_DIR = 36
#: Distances (m) beyond the building edge where shadows are looked for: a 3 m wall casts a
#: shadow 2-8 m long for sun elevations 20-55 degrees. The first metre is left out: there the
#: ring mixes roof and ground (roof lean, blur and the co-registration residual), which bends the
#: curve towards the buildings' edge normals. On eight simulated cities, 1-3 m gave errors of
#: -9.7..+17.4 degrees and 2-6 m -3.3..+6.0 (chosen on those eight; seeds 5-8, not looked at
#: before, are in BENCHMARKS.md).
SHADOW_DIST_M = (2.0, 4.0, 6.0)
#: Smallest relative amplitude of the first harmonic (dip / mean brightness) that is trusted:
#: shadows are 3-5x darker than lit ground, so a real dip is tens of per cent.
MIN_RELATIVE_DIP = 0.05
#: The same bound when the buildings are guessed (bright compact objects) rather than given.
#: In dense blocks a sunlit patch of street between two shadows passes for a roof, with its
#: shadow on the sun's side; such patches flatten the curve and can turn it round (on two
#: simulated cities without footprints the dip was 0.056 and pointed 150 degrees off, while a
#: town of detached houses gives 0.3-0.6). A guess is trusted only when shadows dominate.
MIN_RELATIVE_DIP_GUESSED = 0.15


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


def _source_index(n: int, shift: float) -> np.ndarray:
    """Source index of each output pixel of ``ndi.shift(x, shift, order=0)`` along an axis
    of ``n`` pixels, -1 where it falls outside (constant mode).

    The same double arithmetic as scipy's ``zoom_shift`` (the coordinate ``kk - shift``,
    outside when below 0 or above ``n - 1``, else rounded as ``floor(cc + 0.5)``), so the
    result is the same pixel for pixel.
    """
    cc = np.arange(n, dtype=np.float64) + (-float(shift))
    idx = np.floor(cc + 0.5).astype(np.int64)
    idx[(cc < 0) | (cc > n - 1)] = -1
    return idx


def _axis_slices(n: int, shift: float) -> tuple[slice, slice] | np.ndarray:
    """(output slice, source slice) of an order-0 shift along one axis of ``n`` pixels, or
    the source index array when the inside part is not one constant offset."""
    idx = _source_index(n, shift)
    inside = np.flatnonzero(idx >= 0)
    if inside.size == 0:
        return slice(0, 0), slice(0, 0)
    o0, o1 = int(inside[0]), int(inside[-1]) + 1
    off = int(idx[o0]) - o0
    if inside.size != o1 - o0 or not np.array_equal(idx[o0:o1] - off, np.arange(o0, o1)):
        return idx
    return slice(o0, o1), slice(o0 + off, o1 + off)


def _ring_sum(
    grey: np.ndarray, objs: np.ndarray, free: np.ndarray, dr: float, dc: float
) -> tuple[float, int]:
    """Sum and count of ``grey`` over ``free`` pixels covered by ``objs`` shifted by
    (``dr``, ``dc``) pixels with nearest-pixel rounding.

    Equal to ``m = (ndi.shift(objs.astype(np.uint8), (dr, dc), order=0) > 0) & free``;
    ``float(grey[m].sum()), int(m.sum())``, but reads only the overlapping rectangle by
    slicing instead of resampling the whole mask (the shift is a constant offset inside it).
    The selected pixels come out in the same order, so the float32 sum is the same.
    """
    rows = _axis_slices(objs.shape[0], dr)
    cols = _axis_slices(objs.shape[1], dc)
    if isinstance(rows, np.ndarray) or isinstance(cols, np.ndarray):
        sh = ndi.shift(objs.astype(np.uint8), (dr, dc), order=0) > 0
        m = sh & free
        return float(grey[m].sum()), int(m.sum())
    (ro, rs), (co, cs) = rows, cols
    m = objs[rs, cs] & free[ro, co]
    return float(grey[ro, co][m].sum()), int(m.sum())


def estimate_sun_azimuth(
    image: np.ndarray,
    valid: np.ndarray,
    gsd: float,
    footprints_px: list[shapely.Polygon] | None = None,
    objects: np.ndarray | None = None,
) -> float | None:
    """Sun azimuth (degrees clockwise from north, the direction the sun is in), or None.

    Args:
        image: (bands, rows, cols) or (rows, cols), north up (rows run south), e.g. a sample
            mosaic of the after image.
        valid: bool (rows, cols).
        gsd: metres per pixel.
        footprints_px: building polygons in the image's pixel coordinates (optional).
        objects: bool (rows, cols), True on buildings (e.g. footprints burnt on the image's
            pixels); used instead of ``footprints_px`` and of the bright-object guess. Known
            buildings make the estimate far more reliable: without them, a sunlit patch of
            street between two buildings' shadows passes for a roof, and in dense blocks such
            patches can outweigh the roofs and turn the answer round.
    """
    grey = image.mean(axis=0) if image.ndim == 3 else image.astype(np.float32)
    if valid.sum() < 1000:
        return None
    guessed = False
    if objects is not None:
        objs = objects.astype(bool, copy=False)
    elif footprints_px:
        objs = rasterize([(p, 1) for p in footprints_px], out_shape=grey.shape).astype(bool)
    else:
        objs = _objects(grey, valid, gsd)
        guessed = True
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
            v, c = _ring_sum(grey, objs, free, dr * k, dc * k)
            vals += v
            cnt += c
        curve[i] = vals / max(cnt, 1)
    mean = curve.mean()
    c1 = np.sum(curve * np.exp(1j * angles)) * 2 / N_DIR
    amp = abs(c1)
    if mean <= 0 or amp / mean < (MIN_RELATIVE_DIP_GUESSED if guessed else MIN_RELATIVE_DIP):
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


def sun_angles(
    tags: Mapping[str, str],
    image: np.ndarray,
    valid: np.ndarray,
    gsd: float,
    roofs: Callable[[], np.ndarray] | None = None,
) -> tuple[float | None, float | None, str | None]:
    """(azimuth, elevation, where the azimuth came from) of the sun for one image, degrees.

    The vendor's angles when the metadata has them (:func:`sun_from_tags`); else the azimuth
    from shadows (:func:`estimate_sun_azimuth`) beside the roofs ``roofs()`` gives (footprints
    burnt on ``image``'s pixels), else beside guessed roofs. The source is ``"image metadata"``,
    ``"footprint shadows"``, ``"bright-object shadows"`` or None (unknown).

    Args:
        tags: the image's metadata.
        image: (bands, rows, cols) or (rows, cols) sample of the image, north up.
        valid: bool (rows, cols).
        gsd: metres per pixel.
        roofs: a function giving the bool (rows, cols) building mask on ``image``'s pixels,
            called only when the metadata lacks the azimuth; or None.

    Example:
        >>> sun_angles({"SUN_AZIMUTH": "150", "SUN_ELEVATION": "40"}, np.zeros((8, 8)),
        ...            np.ones((8, 8), bool), 0.5)
        (150.0, 40.0, 'image metadata')
    """
    az, el = sun_from_tags(tags)
    if az is not None:
        return az, el, "image metadata"
    az = estimate_sun_azimuth(image, valid, gsd, objects=None if roofs is None else roofs())
    if az is None:
        return None, el, None
    return az, el, "footprint shadows" if roofs is not None else "bright-object shadows"
