"""Image segments for a learned change model: each pixel's change probability averaged over the
segments it lies in, in both dates' images.

A per-pixel network leaves a ragged, speckled probability map: a new roof's edge pixels score
low, a bright patch of bare ground scores high here and there. A building is one object, and an
image segmentation (Felzenszwalb and Huttenlocher's graph method, ``skimage``) cuts the image into
regions of one colour that follow its outlines. Averaging the probability over each region gives
an object its mean score and lets speckle fall away. The average is taken over the segments of
each date's image (a new building is a region of the after image, a razed one of the before
image) and the two means are averaged, so the step treats both dates alike.

So that a window's core gets the values a whole-image run gives it, the image is segmented in
fixed blocks of :data:`BLOCK_PX` pixels laid on the analysis grid from its origin; a window is
read out to whole blocks (:func:`block_aligned`). Segments therefore never cross a block's edge.
The blocks are ``analyze``'s default windows, so that with the default ``--window`` nothing more
is read; smaller windows read more, larger ones are cut into blocks.

The segmentation parameters are skimage's defaults for ``sigma`` and ``min_size`` at 0.5 m, and
a ``scale`` of 100 at 0.5 m (50 and 200 gave lower leave-one-tile-out LEVIR-CD scores, see
BENCHMARKS.md); all are held in metres, so that other ground sample distances see about the same
segments (to first order: an image's texture also changes with its pixel size).

Example:
    >>> import numpy as np
    >>> img = np.zeros((3, 40, 40), np.float32)
    >>> img[:, 10:30, 10:30] = 0.8  # one bright square on dark ground
    >>> prob = np.zeros((40, 40), np.float32)
    >>> prob[10:30, 10:20] = 1.0  # the network saw only its left half
    >>> out = segment_mean(prob, img, img, np.ones((40, 40), bool), gsd=0.5)
    >>> round(float(out[20, 25]), 2)  # the right half gets the square's mean
    0.5
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
from rasterio.windows import Window

#: Side of the fixed blocks the image is segmented in, pixels (``analyze``'s default window;
#: blocks of 256 px at 0.5 m cut enough segments to lower the LEVIR-CD score, 0.581 -> 0.557).
BLOCK_PX = 1024
#: Felzenszwalb's scale per pixel area: ``scale = SCALE_M2 / gsd**2`` (100 at 0.5 m). Larger
#: gives larger segments.
SCALE_M2 = 25.0
#: Gaussian smoothing before segmenting, metres (0.8 px at 0.5 m, skimage's default).
SIGMA_M = 0.4
#: Smallest segment, square metres (20 px at 0.5 m, skimage's default).
MIN_SIZE_M2 = 5.0


def block_aligned(core: Window, width: int, height: int, block: int | None = None) -> Window:
    """``core`` (analysis-grid pixels) grown out to whole segmentation blocks of ``block``
    pixels (default :data:`BLOCK_PX`), within a grid of ``width`` x ``height`` pixels."""
    b = block or BLOCK_PX
    r0 = (int(core.row_off) // b) * b
    c0 = (int(core.col_off) // b) * b
    r1 = min(height, -(-(int(core.row_off) + int(core.height)) // b) * b)
    c1 = min(width, -(-(int(core.col_off) + int(core.width)) // b) * b)
    return Window(c0, r0, c1 - c0, r1 - r0)


def segments(
    image: np.ndarray, gsd: float, origin: tuple[int, int] = (0, 0), block: int | None = None
) -> np.ndarray:
    """Segment labels of an image, block by block.

    Args:
        image: float (bands, H, W), values about 0..1 (the reader's normalised values).
        gsd: metres per pixel.
        origin: (row, col) of ``image[:, 0, 0]`` on the analysis grid, to lay the blocks on it.
        block: side of the blocks, pixels (default :data:`BLOCK_PX`).

    Returns:
        int64 (H, W) labels, unique across blocks.
    """
    from skimage.segmentation import felzenszwalb

    b = block or BLOCK_PX
    scale = SCALE_M2 / gsd**2
    sigma = SIGMA_M / gsd
    min_size = max(1, int(round(MIN_SIZE_M2 / gsd**2)))
    _, h, w = image.shape
    out = np.empty((h, w), np.int64)
    # the first block edges at or after the origin, on the grid's block lattice
    rows = [0, *range((-origin[0]) % b or b, h, b), h]
    cols = [0, *range((-origin[1]) % b or b, w, b), w]
    x = np.moveaxis(image, 0, -1)
    nxt = 0
    for r0, r1 in pairwise(rows):
        for c0, c1 in pairwise(cols):
            lab = felzenszwalb(
                np.asarray(x[r0:r1, c0:c1], np.float64),
                scale=scale,
                sigma=sigma,
                min_size=min_size,
                channel_axis=-1,
            )
            out[r0:r1, c0:c1] = lab + nxt
            nxt += int(lab.max()) + 1
    return out


def _mean_over(labels: np.ndarray, prob: np.ndarray, valid: np.ndarray) -> np.ndarray:
    lab = labels[valid]
    n = int(labels.max()) + 1
    s = np.bincount(lab, prob[valid].astype(np.float64), minlength=n)
    c = np.bincount(lab, minlength=n)
    return (s / np.maximum(c, 1))[labels]


def segment_mean(
    prob: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
    valid: np.ndarray,
    gsd: float,
    origin: tuple[int, int] = (0, 0),
    block: int | None = None,
) -> np.ndarray:
    """Change probability averaged over each date's image segments, then over the two dates.

    Args:
        prob: float32 (H, W) per-pixel change probability.
        before, after: float32 (bands, H, W), the reader's normalised values.
        valid: bool (H, W); invalid pixels neither count in a mean nor get one (0).
        gsd: metres per pixel.
        origin: (row, col) of the arrays' first pixel on the analysis grid; a window's core
            gets whole-image values when the arrays reach out to whole blocks around it.
        block: side of the segmentation blocks, pixels (default :data:`BLOCK_PX`).

    Returns:
        float32 (H, W).
    """
    valid = np.asarray(valid, bool)
    out = np.zeros(prob.shape, np.float64)
    for image in (before, after):
        out += _mean_over(segments(image, gsd, origin, block), prob, valid)
    out *= 0.5
    out[~valid] = 0.0
    return out.astype(np.float32)
