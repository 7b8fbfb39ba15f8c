"""Per-pixel features of an image pair for a learned change model (:mod:`learned_change`).

Each date contributes colour (brightness, excess green, saturation, red minus blue), and at
four scales in metres: the local mean and spread of brightness, gradient energy, greenness,
saturation and the coherence of the gradients (straight roof edges against scrub); brightness
against its 12 m surroundings; and how much of the neighbourhood is darker than the scene's
shade threshold. The pair adds the after-minus-before difference of every one of these, and the
change vector magnitude at five scales.

Scales are in metres and converted to pixels with the grid's ground sample distance, so a model
trained at 0.5 m can be applied at 0.3 m or 1 m and sees the same ground structures. Features are
computed in row chunks (each with its own halo), so memory is bounded by the chunk, not the
window. A window's core gets the same values as the whole image would give it when the window
has :func:`halo_px` pixels of context on each side.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> b = rng.random((3, 64, 64), dtype=np.float32)
    >>> a = rng.random((3, 64, 64), dtype=np.float32)
    >>> feature_count(3), pixel_features(b, a, gsd=0.5, dark=0.2).shape
    (104, (104, 64, 64))
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy import ndimage as ndi

#: Scales of the local statistics, metres (a roof edge, a car, a house, a block's depth).
SCALES_M = (0.5, 1.0, 2.0, 4.0)
#: Scales of the shade fraction, metres (8 m: the shade beside a house-sized roof; chosen after
#: comparing leave-one-tile-out LEVIR-CD scores of three feature sets, see BENCHMARKS.md).
DARK_SCALES_M = (1.0, 2.0, 4.0, 8.0)
#: Side of the box that brightness is compared with, metres.
CONTEXT_M = 12.0
#: Gaussian kernels are cut at this many sigmas (scipy's ``truncate``).
TRUNCATE = 3.0
#: Rows of a feature chunk (memory: about (rows + 2 halos) x width x 104 x 4 bytes, 150 MB
#: for a 1,100-pixel-wide window at 0.5 m; the halo's share of the work falls as chunks grow).
CHUNK_ROWS = 256


def _sigma_px(scale_m: float, gsd: float) -> float:
    return max(0.5, scale_m / gsd)


def _context_px(gsd: float) -> int:
    return max(3, int(round(CONTEXT_M / gsd)) | 1)


def halo_px(gsd: float) -> int:
    """Pixels of context a window needs on each side for exact features in its core.

    Args:
        gsd: metres per pixel of the grid.
    """
    reach = int(np.ceil(TRUNCATE * _sigma_px(max(SCALES_M + DARK_SCALES_M), gsd) + 0.5))
    return max(reach + 1, _context_px(gsd) // 2 + 1) + 1


def feature_count(bands: int) -> int:
    """Number of features per pixel for images of ``bands`` bands (1 or 3)."""
    per_date = (4 if bands >= 3 else 1) + 6 * len(SCALES_M) + 1 + len(DARK_SCALES_M)
    return 2 * per_date + per_date + 1 + len(SCALES_M)


def _g(x: np.ndarray, s: float) -> np.ndarray:
    return ndi.gaussian_filter(x, s, mode="nearest", truncate=TRUNCATE)


def _date_features(x: np.ndarray, gsd: float, dark: float) -> Iterator[np.ndarray]:
    """One date's features, one (H, W) array at a time (so none is kept longer than needed)."""
    br = x.mean(axis=0)
    yield br
    colour = x.shape[0] >= 3
    if colour:
        r, g, b = x[0], x[1], x[2]
        exg = 2 * g - r - b
        sat = x.max(axis=0) - x.min(axis=0)
        yield exg
        yield sat
        yield r - b
    gx = ndi.sobel(br, 1, mode="nearest")
    gy = ndi.sobel(br, 0, mode="nearest")
    gm = np.hypot(gx, gy)
    jxx, jyy, jxy = gx * gx, gy * gy, gx * gy
    for s_m in SCALES_M:
        s = _sigma_px(s_m, gsd)
        m = _g(br, s)
        yield m
        yield np.sqrt(np.maximum(_g(br * br, s) - m * m, 0))
        yield _g(gm, s)
        yield _g(exg, s) if colour else np.zeros_like(br)
        yield _g(sat, s) if colour else np.zeros_like(br)
        xx, yy, xy = _g(jxx, s), _g(jyy, s), _g(jxy, s)
        yield np.sqrt((xx - yy) ** 2 + 4 * xy * xy) / (xx + yy + 1e-6)
    ctx = ndi.uniform_filter(br, _context_px(gsd), mode="nearest")
    yield br / (ctx + 1e-3)
    shade = (br < dark).astype(np.float32)
    for s_m in DARK_SCALES_M:
        yield _g(shade, _sigma_px(s_m, gsd))


def _features(before: np.ndarray, after: np.ndarray, gsd: float, dark: float) -> np.ndarray:
    """Feature-major (F, H, W) float32, written in place: a stack of per-feature arrays would
    copy them all again, and pixel-major order made that copy a quarter of the run time."""
    nb, h, w = before.shape
    out = np.empty((feature_count(nb), h, w), np.float32)
    k = 0
    for x in (before, after):
        for f in _date_features(x, gsd, dark):
            out[k] = f
            k += 1
    per_date = k // 2
    np.subtract(out[per_date:k], out[:per_date], out=out[k : k + per_date])
    k += per_date
    cv = np.sqrt(((after - before) ** 2).sum(axis=0))
    out[k] = cv
    for s_m in SCALES_M:
        k += 1
        out[k] = _g(cv, _sigma_px(s_m, gsd))
    return out


def pixel_features(
    before: np.ndarray,
    after: np.ndarray,
    gsd: float,
    dark: float,
    rows: tuple[int, int] | None = None,
) -> np.ndarray:
    """Features of every pixel of a pair (or of a band of rows of it), feature-major.

    Args:
        before, after: float32 (bands, H, W) on one grid, values about 0..1 in the model's
            units.
        gsd: metres per pixel of the grid.
        dark: brightness below which a pixel is shade (the scene's threshold).
        rows: (first, stop) rows to return; None for all. Only those rows and a halo around
            them are computed.

    Returns:
        float32 (:func:`feature_count`, rows, W), a view into the chunk's buffer.
    """
    h = before.shape[1]
    r0, r1 = rows if rows is not None else (0, h)
    pad = halo_px(gsd)
    a0, a1 = max(0, r0 - pad), min(h, r1 + pad)
    b = np.ascontiguousarray(before[:, a0:a1], np.float32)
    a = np.ascontiguousarray(after[:, a0:a1], np.float32)
    f = _features(b, a, gsd, np.float32(dark))
    return f[:, r0 - a0 : r1 - a0]


def feature_chunks(h: int) -> list[tuple[int, int]]:
    """Row bands of at most :data:`CHUNK_ROWS` rows covering ``h`` rows."""
    return [(r, min(h, r + CHUNK_ROWS)) for r in range(0, h, CHUNK_ROWS)]
