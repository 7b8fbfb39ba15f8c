"""Small exact numba kernels of the footprint and road steps (pixel units throughout).

Each replaces a sequence of numpy operations (and its temporaries) with one pass giving the
same numbers bit for bit: the same float operations in the same order, or an exact
selection in place of a sort. The numpy references are kept beside them or in the tests.
The selections and medians themselves live in ``selection_kernels``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from fortmap.detect.selection_kernels import _segment_median, select_inplace


def abs_laplacian_numpy(grey: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Reference of :func:`abs_laplacian_every_other` in numpy (float64)."""
    g = grey.astype(np.float64)
    s = (slice(None, -2, 2), slice(1, -1, 2), slice(2, None, 2))
    lap = (
        g[s[0], s[0]] - 2 * g[s[0], s[1]] + g[s[0], s[2]]
        - 2 * g[s[1], s[0]] + 4 * g[s[1], s[1]] - 2 * g[s[1], s[2]]
        + g[s[2], s[0]] - 2 * g[s[2], s[1]] + g[s[2], s[2]]
    )  # fmt: skip
    v = valid[s[0], s[0]] & valid[s[1], s[1]] & valid[s[2], s[2]]
    return np.abs(lap[v])


@numba.njit(cache=True, nogil=True)
def abs_laplacian_every_other(  # pragma: no cover - compiled
    grey: np.ndarray, valid: np.ndarray
) -> np.ndarray:
    """|Laplacian-difference| at every other pixel whose diagonal is valid, float64, flat.

    The same float64 operations in the same order as :func:`abs_laplacian_numpy` (so the
    same values, in the same row-major order), without its nine strided temporaries. Each
    output row is computed whole, then the valid values kept: a loop without the branch
    vectorises.
    """
    h, w = grey.shape
    nh, nw = (h - 1) // 2, (w - 1) // 2
    out = np.empty(max(nh, 0) * max(nw, 0), np.float64)
    row = np.empty(max(nw, 0), np.float64)
    k = 0
    for i in range(nh):
        r = 2 * i
        g0, g1, g2 = grey[r], grey[r + 1], grey[r + 2]
        for j in range(nw):
            c = 2 * j
            t = np.float64(g0[c]) - 2 * np.float64(g0[c + 1])
            t = t + np.float64(g0[c + 2])
            t = t - 2 * np.float64(g1[c])
            t = t + 4 * np.float64(g1[c + 1])
            t = t - 2 * np.float64(g1[c + 2])
            t = t + np.float64(g2[c])
            t = t - 2 * np.float64(g2[c + 1])
            t = t + np.float64(g2[c + 2])
            row[j] = abs(t)
        v0, v1, v2 = valid[r], valid[r + 1], valid[r + 2]
        for j in range(nw):
            c = 2 * j
            if v0[c] and v1[c + 1] and v2[c + 2]:
                out[k] = row[j]
                k += 1
    return out[:k]


@numba.njit(cache=True, nogil=True)
def band_mean_f32(img: np.ndarray, inv_n: np.float32) -> np.ndarray:  # pragma: no cover
    """Mean of float32 bands (bands, H, W) as float32, non-finite values as ``np.nan_to_num``.

    Bands are added one after another in float32 and the sum scaled by ``inv_n``
    (float32 1/bands), the operations and order of the numpy loop it replaces. Band by band
    along each row, and the clean-up as selects, so that the loops vectorise.
    """
    nb, h, w = img.shape
    out = np.empty((h, w), np.float32)
    big = np.float32(np.finfo(np.float32).max)
    if nb == 3:
        # the usual RGB: one pass per row, the same float32 additions in the same order
        for r in range(h):
            o, s0, s1, s2 = out[r], img[0, r], img[1, r], img[2, r]
            for c in range(w):
                x = ((s0[c] + s1[c]) + s2[c]) * inv_n
                o[c] = np.float32(0.0) if x != x else min(max(x, -big), big)
        return out
    for r in range(h):
        o = out[r]
        src = img[0, r]
        for c in range(w):
            o[c] = src[c]
        for b in range(1, nb):
            src = img[b, r]
            for c in range(w):
                o[c] += src[c]
        for c in range(w):
            x = o[c] * inv_n
            # NaN to 0, +-inf to +-max; finite values (and -0.0) pass unchanged
            x = np.float32(0.0) if x != x else min(max(x, -big), big)
            o[c] = x
    return out


@numba.njit(cache=True, nogil=True)
def lit_labels(  # pragma: no cover - compiled
    lab: np.ndarray, valid: np.ndarray, lit: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels per label (1..n) where valid, the labels kept where also lit, and their counts.

    One pass for ``lab[~valid] = 0``, two ``np.bincount`` and ``np.where(lit, lab, 0)``.
    """
    h, w = lab.shape
    n_in = np.zeros(n + 1, np.int64)
    n_lit = np.zeros(n + 1, np.int64)
    lab_lit = np.zeros((h, w), lab.dtype)
    for r in range(h):
        for c in range(w):
            k = lab[r, c]
            if k <= 0 or not valid[r, c]:
                continue
            n_in[k] += 1
            if lit[r, c]:
                lab_lit[r, c] = k
                n_lit[k] += 1
    return n_in[1:], lab_lit, n_lit[1:]


@numba.njit(cache=True, nogil=True)
def _label_starts(counts: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    n = counts.shape[0]
    start = np.zeros(n + 1, np.int64)
    for k in range(n):
        start[k + 1] = start[k] + counts[k]
    return start


@numba.njit(cache=True, nogil=True)
def _label_medians(lab: np.ndarray, values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per-label median of ``values`` over the pixels with label > 0 (counting-sort grouping)."""
    n = counts.shape[0]
    start = _label_starts(counts)
    fill = start[:-1].copy()
    v = np.empty(start[n], np.float64)
    h, w = lab.shape
    for r in range(h):
        for c in range(w):
            k = lab[r, c]
            if k > 0:
                v[fill[k - 1]] = values[r, c]
                fill[k - 1] += 1
    med = np.full(n, np.nan)
    for k in range(n):
        if counts[k] > 0:
            med[k] = _segment_median(v[start[k] : start[k + 1]])
    return med


@numba.njit(cache=True, nogil=True)
def _interior_medians(
    lab, mag_b, mag_a, before, after, counts, eps, angles
):  # pragma: no cover - compiled  # fmt: skip
    """Per-label medians over the pixels with label > 0 of ``mag_b``, ``mag_a`` and, when
    ``angles``, the spectral angle (degrees) of :func:`_spectral_angle`: (3, n), NaN for a
    label without pixels (and for the angles when not asked). One grouping pass fills all
    three, in the pixel order :func:`_label_medians` uses, so the medians are the same."""
    n = counts.shape[0]
    start = _label_starts(counts)
    fill = start[:-1].copy()
    vb = np.empty(start[n], np.float64)
    va = np.empty(start[n], np.float64)
    vg = np.empty(start[n] if angles else 0, np.float64)
    h, w = lab.shape
    for r in range(h):
        for c in range(w):
            k = lab[r, c]
            if k > 0:
                i = fill[k - 1]
                vb[i] = mag_b[r, c]
                va[i] = mag_a[r, c]
                if angles:
                    vg[i] = _spectral_cos(before, after, r, c, eps)
                fill[k - 1] = i + 1
    return _group_medians(vb, va, vg, start, angles)


@numba.njit(cache=True, nogil=True)
def lit_counts(lab, valid, grey_b, grey_a, thr_b, thr_a, n):  # pragma: no cover - compiled
    """Pixels per label (1..n) where ``valid``, and how many of them are lit on both dates
    (``grey_b > thr_b`` and ``grey_a > thr_a``): :func:`lit_labels` without its label image.

    Give float32 thresholds with float32 greys to compare as numpy compares a float32 array
    with a Python float (in float32).
    """
    n_in = np.zeros(n + 1, np.int64)
    n_lit = np.zeros(n + 1, np.int64)
    h, w = lab.shape
    for r in range(h):
        for c in range(w):
            k = lab[r, c]
            if k <= 0 or not valid[r, c]:
                continue
            n_in[k] += 1
            if grey_b[r, c] > thr_b and grey_a[r, c] > thr_a:
                n_lit[k] += 1
    return n_in[1:], n_lit[1:]


@numba.njit(cache=True, nogil=True)
def lit_interior_medians(
    lab, valid, grey_b, grey_a, thr_b, thr_a, mag_b, mag_a, before, after, counts, eps, angles
):  # pragma: no cover - compiled  # fmt: skip
    """:func:`_interior_medians` of the labels kept by :func:`lit_labels` (``counts``: its
    lit counts), read from ``lab``, ``valid`` and the greys in the same pass: no label
    image, no lit mask, the same pixels in the same order, so the same medians."""
    vb, va, vg, start = lit_interior_values(
        lab, valid, grey_b, grey_a, thr_b, thr_a, mag_b, mag_a, before, after, counts, eps, angles
    )
    return _group_medians(vb, va, vg, start, angles)


@numba.njit(cache=True, nogil=True)
def lit_interior_values(
    lab, valid, grey_b, grey_a, thr_b, thr_a, mag_b, mag_a, before, after, counts, eps, angles
):  # pragma: no cover - compiled  # fmt: skip
    """The values :func:`lit_interior_medians` takes medians of, grouped by label: (texture
    before, texture after, spectral cosines (empty unless ``angles``), group starts)."""
    n = counts.shape[0]
    start = _label_starts(counts)
    fill = start[:-1].copy()
    vb = np.empty(start[n], np.float64)
    va = np.empty(start[n], np.float64)
    vg = np.empty(start[n] if angles else 0, np.float64)
    h, w = lab.shape
    for r in range(h):
        for c in range(w):
            k = lab[r, c]
            if k <= 0 or not valid[r, c]:
                continue
            if not (grey_b[r, c] > thr_b and grey_a[r, c] > thr_a):
                continue
            i = fill[k - 1]
            vb[i] = mag_b[r, c]
            va[i] = mag_a[r, c]
            if angles:
                vg[i] = _spectral_cos(before, after, r, c, eps)
            fill[k - 1] = i + 1
    return vb, va, vg, start


@numba.njit(cache=True, nogil=True)
def _group_medians(vb, va, vg, start, angles):  # pragma: no cover - compiled
    """(3, n) medians of the groups ``start[k]:start[k + 1]`` of ``vb``, ``va`` and (angles
    from cosines, when ``angles``) ``vg``; NaN for an empty group or angles not asked."""
    n = start.shape[0] - 1
    med = np.full((3, n), np.nan)
    for k in range(n):
        if start[k + 1] == start[k]:
            continue
        med[0, k] = _segment_median(vb[start[k] : start[k + 1]])
        med[1, k] = _segment_median(va[start[k] : start[k + 1]])
        if angles:
            med[2, k] = _angle_median(vg[start[k] : start[k + 1]])
    return med


@numba.njit(cache=True, nogil=True)
def _angle_median(cs: np.ndarray) -> float:  # pragma: no cover - compiled
    """``np.median`` of the angles (degrees) of the cosines ``cs`` (clamped to -1..1, a
    non-empty float64 segment, reordered in place), taking the arc cosine of the middle
    cosines alone.

    The angle falls as the cosine rises, so the k-th smallest angle is the angle of the k-th
    largest cosine (ties included): the same two values, added in either order, as the
    median of all the angles.
    """
    m = cs.shape[0]
    if np.isnan(cs).any():
        for i in range(m):
            cs[i] = math.degrees(math.acos(cs[i]))
        return _segment_median(cs)
    # ascending cosines: index m // 2 is the angles' (m - 1 - m // 2)-th smallest
    c_mid = select_inplace(cs, m // 2)
    if m % 2:
        a = math.degrees(math.acos(c_mid))
        return 0.5 * (a + a)
    # even: the angles' middle pair are the angles of cosines m // 2 - 1 and m // 2
    c_lo = cs[: m // 2].max()
    return 0.5 * (math.degrees(math.acos(c_mid)) + math.degrees(math.acos(c_lo)))


@numba.njit(cache=True, nogil=True)
def _spectral_angle(before, after, r, c, eps):  # pragma: no cover - compiled
    """Angle (degrees) between the before and after RGB vectors of pixel (r, c)."""
    return math.degrees(math.acos(_spectral_cos(before, after, r, c, eps)))


@numba.njit(cache=True, nogil=True)
def _spectral_cos(before, after, r, c, eps):  # pragma: no cover - compiled
    """Cosine (clamped to -1..1) of :func:`_spectral_angle`."""
    bb = 0.0
    aa = 0.0
    ba = 0.0
    for q in range(3):
        x = np.float64(before[q, r, c])
        y = np.float64(after[q, r, c])
        if not np.isfinite(x):
            x = 0.0
        if not np.isfinite(y):
            y = 0.0
        x += eps
        y += eps
        bb += x * x
        aa += y * y
        ba += x * y
    cs = ba / math.sqrt(max(bb * aa, 1e-12))
    return min(1.0, max(-1.0, cs))


@numba.njit(cache=True, nogil=True)
def class_bit_counts(  # pragma: no cover - compiled
    lab: np.ndarray, bits: np.ndarray, bitpos: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pixels of each class of ``lab`` (labels 0..k-1, negative: none), and how many of them
    have their class's bit (``bitpos[class]``, -1: none) set in ``bits``, in one pass.

    Returns:
        (pixels per class, pixels with the bit set per class), int64 (k,).
    """
    k = bitpos.shape[0]
    total = np.zeros(k, np.int64)
    on = np.zeros(k, np.int64)
    h, w = lab.shape
    for i in range(h):
        for j in range(w):
            c = lab[i, j]
            if c < 0:
                continue
            total[c] += 1
            b = bitpos[c]
            if b >= 0 and (bits[i, j] >> b) & 1:
                on[c] += 1
    return total, on


@numba.njit(cache=True, nogil=True)
def fill_labelled(  # pragma: no cover - compiled
    mask: np.ndarray, holes: np.ndarray, n: int, max_px: float
) -> np.ndarray:
    """``mask`` or'ed with the labelled holes of at most ``max_px`` pixels (bool, same shape).

    The same as ``mask | (np.bincount(holes.ravel()) <= max_px)[holes]`` with label 0 never
    filled, in two passes and without the int64 copy and the gather's temporaries.

    Args:
        mask: bool (rows, cols).
        holes: labels 0..n of the holes (``ndi.label(~mask)``), same shape.
        n: number of labels.
        max_px: largest hole filled, pixels.
    """
    counts = np.zeros(n + 1, np.int64)
    h, w = holes.shape
    for i in range(h):
        for j in range(w):
            counts[holes[i, j]] += 1
    small = np.empty(n + 1, np.bool_)
    for k in range(n + 1):
        small[k] = k > 0 and counts[k] <= max_px
    out = np.empty((h, w), np.bool_)
    for i in range(h):
        for j in range(w):
            out[i, j] = mask[i, j] or small[holes[i, j]]
    return out
