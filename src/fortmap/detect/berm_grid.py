"""Work-grid helpers of the berm detector: block means, and crest lines of mask components.

Split from :mod:`fortmap.detect.berms`; see there for the method. Masks and arrays are on
the work grid (about 2 m a pixel), lines in window pixels (work pixels times the factor).
"""

from __future__ import annotations

import numba
import numpy as np
import shapely
from scipy import ndimage as ndi
from skimage.morphology import skeletonize

from fortmap.detect.berm_crest import crest_path
from fortmap.detect.change_stats import median_np

#: Working resolution of the berm detector (m per pixel).
WORK_GSD_M = 2.0


def work_factor(gsd: float) -> int:
    """Image pixels per work pixel side for ``gsd`` metres per pixel.

    >>> work_factor(0.5), work_factor(3.0)
    (4, 1)
    """
    return max(1, int(round(WORK_GSD_M / gsd)))


def _down(a: np.ndarray, f: int) -> np.ndarray:
    """Block mean by ``f`` (trailing rows/cols that do not fill a block are dropped)."""
    if f == 1:
        return a.astype(np.float32)
    if a.ndim == 2:
        return _block_means(a[None], f)[0]
    return _block_means(a, f)


def _block_means(a: np.ndarray, f: int) -> np.ndarray:
    """(bands, rows // f, cols // f) float32 block means of a (bands, rows, cols) array."""
    if a.dtype == np.bool_:
        a = a.view(np.uint8)
    if a.dtype not in (np.float32, np.float64, np.uint8):
        a = a.astype(np.float32)
    return _block_means_kernel(a, f)


@numba.njit(cache=True, nogil=True)
def _block_means_kernel(a: np.ndarray, f: int) -> np.ndarray:
    # One pass over the window instead of numpy's reshape-mean (a strided copy per band).
    # Per block row, each of its rows adds its f-pixel float64 sums (left to right from 0.0)
    # to the blocks' running float64 totals; the usual factors 2 and 4 are spelt out, which
    # lets the compiler vectorise across blocks (the same additions in the same order).
    nb, h, w = a.shape[0], a.shape[1] // f, a.shape[2] // f
    out = np.zeros((nb, h, w), np.float32)
    acc = np.zeros(w, np.float64)
    inv = 1.0 / (f * f)
    for b in range(nb):
        for i in range(h):
            acc[:] = 0.0
            for r in range(i * f, i * f + f):
                row = a[b, r]
                if f == 4:
                    for j in range(w):
                        c = 4 * j
                        acc[j] += (
                            ((0.0 + np.float64(row[c])) + np.float64(row[c + 1]))
                            + np.float64(row[c + 2])
                        ) + np.float64(row[c + 3])
                elif f == 2:
                    for j in range(w):
                        acc[j] += (0.0 + np.float64(row[2 * j])) + np.float64(row[2 * j + 1])
                else:
                    for j in range(w):
                        s = 0.0
                        for c in range(j * f, j * f + f):
                            s += row[c]
                        acc[j] += s
            for j in range(w):
                out[b, i, j] = acc[j] * inv
    return out


def hysteresis(image: np.ndarray, low: float, high: float) -> np.ndarray:
    """``skimage.filters.apply_hysteresis_threshold(image, low, high)`` of a 2-D image: the
    4-connected components of ``image > low`` that hold a pixel of ``image > high``, grown
    from those pixels in one compiled pass instead of labelling every component."""
    low = np.clip(low, a_min=None, a_max=high)  # as skimage: low never above high
    return _grow_from(image > high, image > low)


@numba.njit(cache=True, nogil=True)
def _grow_from(seed: np.ndarray, mask: np.ndarray) -> np.ndarray:  # pragma: no cover
    # flood fill of ``mask`` (4-connected) from its ``seed`` pixels
    h, w = mask.shape
    out = np.zeros((h, w), np.bool_)
    stack = np.empty(h * w, np.int64)
    for r0 in range(h):
        for c0 in range(w):
            if not seed[r0, c0] or not mask[r0, c0] or out[r0, c0]:
                continue
            out[r0, c0] = True
            stack[0] = r0 * w + c0
            top = 1
            while top:
                top -= 1
                r, c = divmod(stack[top], w)
                if r > 0 and mask[r - 1, c] and not out[r - 1, c]:
                    out[r - 1, c] = True
                    stack[top] = (r - 1) * w + c
                    top += 1
                if r + 1 < h and mask[r + 1, c] and not out[r + 1, c]:
                    out[r + 1, c] = True
                    stack[top] = (r + 1) * w + c
                    top += 1
                if c > 0 and mask[r, c - 1] and not out[r, c - 1]:
                    out[r, c - 1] = True
                    stack[top] = r * w + c - 1
                    top += 1
                if c + 1 < w and mask[r, c + 1] and not out[r, c + 1]:
                    out[r, c + 1] = True
                    stack[top] = r * w + c + 1
                    top += 1
    return out


@numba.njit(cache=True, nogil=True)
def open2x2(m: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """``ndi.binary_opening(m, np.ones((2, 2), bool))`` of a 2-D bool mask, bit for bit.

    scipy's even-sized structure erodes over the pixel and its up-left neighbours and
    dilates back over the pixel and its down-right ones; pixels past the edge are False.
    """
    h, w = m.shape
    ero = np.zeros((h, w), np.bool_)
    for i in range(1, h):
        for j in range(1, w):
            ero[i, j] = m[i - 1, j - 1] and m[i - 1, j] and m[i, j - 1] and m[i, j]
    out = np.zeros((h, w), np.bool_)
    for i in range(h):
        for j in range(w):
            v = ero[i, j]
            if i + 1 < h:
                v = v or ero[i + 1, j]
                if j + 1 < w:
                    v = v or ero[i + 1, j + 1]
            if j + 1 < w:
                v = v or ero[i, j + 1]
            out[i, j] = v
    return out


@numba.njit(cache=True, nogil=True)
def dilate3x3(m: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """``ndi.binary_dilation(m, np.ones((3, 3), bool))`` of a 2-D bool mask, bit for bit."""
    h, w = m.shape
    out = np.zeros((h, w), np.bool_)
    for i in range(h):
        for j in range(w):
            if m[i, j]:
                for y in range(max(i - 1, 0), min(i + 2, h)):
                    for x in range(max(j - 1, 0), min(j + 2, w)):
                        out[y, x] = True
    return out


def _crest(mask: np.ndarray) -> np.ndarray | None:
    """Longest path (rows, cols) through the skeleton of one component (from a node of its
    largest part to the farthest node, then to the farthest from there; see
    ``berm_crest.crest_path``)."""
    return crest_path(skeletonize(mask))


def _edge_distance(m: np.ndarray, sl: tuple[slice, slice], valid: np.ndarray | None) -> np.ndarray:
    """Distance (pixels) from each pixel of component ``m`` (the crop ``sl`` of the grid) to
    the nearest pixel outside it; invalid pixels and the grid's edge do not count as outside
    (the image's edge cuts a component short, it does not make it narrow)."""
    if valid is None:
        return ndi.distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1]
    # the crop grown by a pixel where the grid allows, which holds the component's edge
    r0, c0 = max(sl[0].start - 1, 0), max(sl[1].start - 1, 0)
    r1, c1 = min(sl[0].stop + 1, valid.shape[0]), min(sl[1].stop + 1, valid.shape[1])
    inside = ~valid[r0:r1, c0:c1]
    rs, cs = slice(sl[0].start - r0, sl[0].stop - r0), slice(sl[1].start - c0, sl[1].stop - c0)
    inside[rs, cs] |= m
    edt = ndi.distance_transform_edt(np.pad(inside, 1, constant_values=True))[1:-1, 1:-1]
    return edt[rs, cs]


def _lines(
    mask: np.ndarray,
    f: int,
    min_len_px: float,
    max_width_px: float,
    crest_width: bool = False,
    valid: np.ndarray | None = None,
) -> list[tuple[shapely.LineString, np.ndarray, float]]:
    """Crest lines (window pixels) of elongated components of ``mask`` (work pixels).

    The width (work pixels) is the component's area over its crest length, or with
    ``crest_width`` twice the median distance from the crest to the component's edge (which a
    wide blob with a wiggly skeleton cannot fake); an edge there is a ``valid`` pixel outside
    the component (the image's edge cuts a component, it does not bound it). Returns (line,
    component mask, width) per component kept.
    """
    lab, n = ndi.label(mask, np.ones((3, 3), bool))
    # every component's area in one count: most are specks, dropped before any crop of them
    areas = np.bincount(lab.ravel(), minlength=n + 1)
    out = []
    for k, sl in enumerate(ndi.find_objects(lab), start=1):
        if sl is None or areas[k] < min_len_px:
            continue
        m = lab[sl] == k
        area = areas[k]
        path = _crest(m)
        if path is None:
            continue
        xy = np.c_[path[:, 1] + sl[1].start + 0.5, path[:, 0] + sl[0].start + 0.5] * f
        line = shapely.LineString(xy).simplify(f)
        length = line.length / f
        # a crest too short is dropped whatever its width: no distance transform for it
        if length < min_len_px:
            continue
        if crest_width:
            edt = _edge_distance(m, sl, valid)
            width = 2 * float(median_np(edt[path[:, 0], path[:, 1]]))
        else:
            width = area / max(length, 1.0)
        if width > max_width_px:
            continue
        full = np.zeros(mask.shape, bool)
        full[sl] = m
        out.append((line, full, float(width)))
    return out


def _clip(line: shapely.LineString, core_px: tuple[int, int, int, int]) -> list:
    part = line.intersection(shapely.box(*core_px))
    return [
        g for g in getattr(part, "geoms", [part]) if g.geom_type == "LineString" and g.length > 0
    ]
