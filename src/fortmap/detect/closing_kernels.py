"""Binary closing kernels of road derivation (numba): the 3x3 cross closing and small holes.

``close_cross`` gives the same pixels as ``scipy.ndimage.binary_closing`` with the cross
(tests compare them) and works on the bit planes of an unsigned array at once;
``fill_holes_upto`` fills the holes of a mask up to a size in pixels of the grid given. The
line openings are in :mod:`fortmap.detect.morph_kernels`.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from fortmap.detect.label_kernels import find_root


@nb.njit(cache=True, nogil=True)
def _cross(x: np.ndarray, dilate: bool) -> np.ndarray:  # pragma: no cover - compiled
    """One dilation (OR) or erosion (AND) by the 3x3 cross, outside the array counting 0."""
    h, w = x.shape
    out = np.empty_like(x)
    zero = np.zeros(w, x.dtype)
    for r in range(h):
        xm = x[r]
        up = x[r - 1] if r > 0 else zero
        dn = x[r + 1] if r < h - 1 else zero
        o = out[r]
        # the first and last columns apart, so the interior loop has no edge tests and
        # vectorises
        for c in (0, w - 1):
            if c >= 0:
                lf = xm[c - 1] if c > 0 else 0
                rt = xm[c + 1] if c < w - 1 else 0
                if dilate:
                    o[c] = xm[c] | up[c] | dn[c] | lf | rt
                else:
                    o[c] = xm[c] & up[c] & dn[c] & lf & rt
        if dilate:
            for c in range(1, w - 1):
                o[c] = xm[c] | up[c] | dn[c] | xm[c - 1] | xm[c + 1]
        else:
            for c in range(1, w - 1):
                o[c] = xm[c] & up[c] & dn[c] & xm[c - 1] & xm[c + 1]
    return out


@nb.njit(cache=True, nogil=True)
def close_cross(x: np.ndarray, iterations: int) -> np.ndarray:  # pragma: no cover - compiled
    """Closing by the 3x3 cross: ``scipy.ndimage.binary_closing(x, iterations=...)``.

    Works bitwise, so an unsigned array closes every bit plane (one mask each) at once, and a
    bool array viewed as uint8 is one mask. Like scipy, both steps count the outside as 0, so
    the closing is False on the outermost ``iterations`` rows and columns.
    """
    d = x
    for _ in range(iterations):
        d = _cross(d, True)
    for _ in range(iterations):
        d = _cross(d, False)
    return d


@nb.njit(cache=True, nogil=True)
def fill_holes_upto(mask: np.ndarray, max_px: float) -> np.ndarray:  # pragma: no cover
    """``mask`` with every hole of at most ``max_px`` pixels filled (bool, same shape).

    A hole is a 4-connected component of False pixels (``ndi.label(~mask)``'s components,
    filled as :func:`fortmap.detect.pixel_kernels.fill_labelled` fills them). The components
    are built from the rows' runs of False pixels, joined where runs of neighbouring rows share
    a column, so the work follows the runs rather than the pixels.
    """
    h, w = mask.shape
    n = 0
    for r in range(h):
        for c in range(w):
            if not mask[r, c] and (c == 0 or mask[r, c - 1]):
                n += 1
    r0 = np.empty(n, np.int32)
    c0 = np.empty(n, np.int32)
    c1 = np.empty(n, np.int32)
    first = np.zeros(h + 1, np.int64)  # runs of row r: first[r] .. first[r + 1] - 1
    k = 0
    for r in range(h):
        first[r] = k
        c = 0
        while c < w:
            if mask[r, c]:
                c += 1
                continue
            s = c
            while c < w and not mask[r, c]:
                c += 1
            r0[k], c0[k], c1[k] = r, s, c
            k += 1
    first[h] = k
    parent = np.arange(n)
    for r in range(1, h):
        a, a_end = first[r - 1], first[r]
        b, b_end = first[r], first[r + 1]
        while a < a_end and b < b_end:
            if c0[a] < c1[b] and c0[b] < c1[a]:
                ra, rb = find_root(parent, a), find_root(parent, b)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
            # the run that ends first can meet no later run of the other row
            if c1[a] < c1[b]:
                a += 1
            else:
                b += 1
    size = np.zeros(n, np.int64)
    for i in range(n):
        size[find_root(parent, i)] += c1[i] - c0[i]
    out = mask.copy()
    for i in range(n):
        if size[find_root(parent, i)] <= max_px:
            for c in range(c0[i], c1[i]):
                out[r0[i], c] = True
    return out
