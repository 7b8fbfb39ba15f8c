"""Binary morphology kernels of road derivation (numba): line openings.

Each kernel gives the same pixels as the plain numpy/scipy code it replaced (tests compare
them); lengths are in pixels of the grid given. Bit-plane kernels treat the bits of an unsigned
array as up to 32 masks worked at once; ``open_bits`` works on one mask held as bits of uint64
words, laid out by ``bit_rows_of_transpose`` and read back by ``union_of_bit_rows``.

The cross closing (``close_cross``) and the filling of small holes (``fill_holes_upto``) are
in :mod:`fortmap.detect.closing_kernels`.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True, inline="always")
def _line_on(mask, o, slope, t, across, x_major):  # pragma: no cover - compiled
    """Is the pixel at step ``t`` of line ``o`` (see :func:`open_along`) in ``mask``?"""
    m = int(math.floor(o + slope * t + 0.5))
    if 0 <= m < across:
        return mask[m, t] if x_major else mask[t, m]
    return False


@nb.njit(cache=True, nogil=True)
def open_along(  # pragma: no cover - compiled
    mask: np.ndarray, out: np.ndarray, n: int, slope: float, x_major: bool
) -> None:
    """OR into ``out`` the pixels of ``mask`` in runs of >= ``n`` along one family of lines.

    The lines are digital: along the major axis ``t`` the minor coordinate is
    ``round(o + slope * t)`` for every integer offset ``o``, so each pixel lies on exactly one
    line of the family, and a run is counted in steps of the major axis.

    A run of ``n`` starting anywhere in ``t .. t + n - 1`` covers step ``t + n - 1``, so where
    that step is off the walk jumps ``n`` steps at once; a run is only walked step by step
    once all its first ``n`` steps are known to be on. Most of a sparse mask is skipped.
    """
    h, w = mask.shape
    length, across = (w, h) if x_major else (h, w)
    lo = min(0, int(math.floor(-slope * (length - 1)))) - 1
    hi = across + max(0, int(math.ceil(-slope * (length - 1)))) + 1
    n = max(n, 1)
    for o in range(lo, hi):
        # the line is inside the image over one interval of t (m is monotonic in t); the
        # interval is widened by a pixel and each t still checked, so no pixel is missed
        if slope > 0:
            ta, tb = (-0.5 - o) / slope, (across - 0.5 - o) / slope
        elif slope < 0:
            ta, tb = (across - 0.5 - o) / slope, (-0.5 - o) / slope
        else:
            ta, tb = (0.0, float(length)) if 0 <= o < across else (1.0, 0.0)
        # clamped in floats first: a near-zero slope puts the ends out of int64's range
        t0 = int(math.floor(min(max(ta, -2.0), length + 2.0))) - 1
        t1 = int(math.ceil(min(max(tb, -2.0), length + 2.0))) + 2
        t0, t1 = max(0, t0), min(length, t1)
        # invariant: step t - 1 is off (or outside the walk); steps known + 1 .. up to the
        # last checked end are known to be on
        t = t0
        known = t - 1
        while t + n - 1 < t1:
            e = t + n - 1
            stop = max(known + 1, t)
            p = e
            while p >= stop and _line_on(mask, o, slope, p, across, x_major):
                p -= 1
            if p >= stop:
                # step p is off: no run of n starts at t .. p
                t = p + 1
                known = e
                continue
            # steps t .. e are all on: a run starts at t; walk to its end
            u = e + 1
            while u < t1 and _line_on(mask, o, slope, u, across, x_major):
                u += 1
            for v in range(t, u):
                m = int(math.floor(o + slope * v + 0.5))
                if x_major:
                    out[m, v] = True
                else:
                    out[v, m] = True
            t = u + 1
            known = t - 1


@nb.njit(cache=True, nogil=True)
def _line_rows(length: int, slope: float) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
    """Per step ``t``: ``round(slope * t)`` and whether ``round(o + slope * t)`` is ``o`` plus
    it for every line ``o`` (it is unless ``slope * t + 0.5`` lies within rounding error of an
    integer, errors here being below 1e-10 px; then each line's own float sum decides)."""
    shift = np.empty(length, np.int64)
    exact = np.empty(length, np.bool_)
    for t in range(length):
        sh = slope * t + 0.5
        f = math.floor(sh)
        exact[t] = 1e-6 < sh - f < 1.0 - 1e-6
        shift[t] = int(f)
    return shift, exact


@nb.njit(cache=True, nogil=True)
def _block_steps(
    o0: int, nw: int, slope: float, length: int, across: int
) -> tuple[int, int]:  # pragma: no cover - compiled
    """Steps ``t0 .. t1 - 1`` outside which none of the lines ``o0 .. o0 + nw - 1`` is in the
    image (``m = round(o + slope * t)`` in ``0 .. across - 1``), widened by two steps."""
    if slope > 0:
        ta, tb = (-0.5 - (o0 + nw - 1)) / slope, (across - 0.5 - o0) / slope
    elif slope < 0:
        ta, tb = (across - 0.5 - o0) / slope, (-0.5 - (o0 + nw - 1)) / slope
    else:
        inside = o0 + nw - 1 >= 0 and o0 < across
        ta, tb = (0.0, float(length)) if inside else (1.0, -4.0)
    # clamped in floats first: a near-zero slope puts the ends out of int64's range
    t0 = int(math.floor(min(max(ta, -4.0), length + 4.0))) - 2
    t1 = int(math.ceil(min(max(tb, -4.0), length + 4.0))) + 3
    return max(0, t0), min(length, t1)


@nb.njit(cache=True, nogil=True)
def open_packed(  # pragma: no cover - compiled
    a: np.ndarray, out: np.ndarray, n: int, slope: float
) -> None:
    """OR into ``out`` the bits of ``a`` in runs of >= ``n`` along one family of lines.

    ``a`` holds up to 8, 16 or 32 masks as bits of uint8, uint16 or uint32, laid out (major
    axis ``t``, minor axis ``m``); the line of offset ``o`` is ``m = round(o + slope * t)``
    (the same expression as :func:`open_along`, so the same pixels; pixels off the image
    count as 0). The opening of every bit at once is an erosion (AND over ``n`` consecutive
    steps) then a dilation (OR), each in three operations a step whatever ``n`` (van Herk /
    Gil-Werman: running ANDs forward and backward within blocks of ``n`` steps). Lines are
    taken 64 (128 in uint16, 256 in uint8: the same bytes) at a time, copied out as columns
    of a small array, so every pass runs along contiguous memory and stays in cache, without
    branches; each group of lines is swept over the steps where one of them is in the image
    only (off it they are 0: no run there, none reaching in), which spares the part of a
    steep family's sweep that lies beside the image.
    """
    length, across = a.shape
    o_min = int(math.floor(-max(slope, 0.0) * (length - 1))) - 3
    o_max = across + int(math.ceil(max(-slope, 0.0) * (length - 1))) + 3
    n = max(n, 1)
    nw_max = 256 // a.itemsize
    shift, exact = _line_rows(length, slope)
    s = np.empty((length, nw_max), a.dtype)
    g = np.empty((length, nw_max), a.dtype)
    hv = np.empty(nw_max, a.dtype)
    dv = np.empty(nw_max, a.dtype)
    for o0 in range(o_min, o_max + 1, nw_max):
        nw = min(nw_max, o_max + 1 - o0)
        t0, t1 = _block_steps(o0, nw, slope, length, across)
        if t1 - t0 < n:
            continue  # no run of n steps fits
        for t in range(t0, t1):
            if exact[t]:
                # lines j of the group in the image: one interval, copied without tests
                base = o0 + shift[t]
                ja = min(max(0, -base), nw)
                jb = max(min(nw, across - base), ja)
                for j in range(ja):
                    s[t, j] = 0
                for j in range(ja, jb):
                    s[t, j] = a[t, base + j]
                for j in range(jb, nw):
                    s[t, j] = 0
            else:
                for j in range(nw):
                    m = int(math.floor((o0 + j) + slope * t + 0.5))
                    s[t, j] = a[t, m] if 0 <= m < across else 0
        # erosion: g[t] = AND of s from t's block start to t; hv = AND of s from t to its
        # block end; AND of s[t .. t + n - 1] = hv(t) & g[t + n - 1], written over g. Blocks
        # of n steps are counted from t0; k is t's place in its block (no division a step)
        k = 0
        for t in range(t0, t1):
            if k == 0:
                for j in range(nw):
                    g[t, j] = s[t, j]
            else:
                for j in range(nw):
                    g[t, j] = g[t - 1, j] & s[t, j]
            k = k + 1 if k < n - 1 else 0
        k_last = (t1 - 1 - t0) % n
        k = k_last
        for t in range(t1 - 1, t0 - 1, -1):
            if k == n - 1 or t == t1 - 1:
                for j in range(nw):
                    hv[j] = s[t, j]
            else:
                for j in range(nw):
                    hv[j] = hv[j] & s[t, j]
            if t + n - 1 < t1:
                for j in range(nw):
                    g[t + n - 1, j] = hv[j] & g[t + n - 1, j]
            k = k - 1 if k > 0 else n - 1
        for t in range(t0, t0 + n - 1):
            for j in range(nw):
                g[t, j] = 0
        # dilation: the OR of the erosion over g[t .. t + n - 1], the same way round
        k = 0
        for t in range(t0, t1):
            if k == 0:
                for j in range(nw):
                    s[t, j] = g[t, j]
            else:
                for j in range(nw):
                    s[t, j] = s[t - 1, j] | g[t, j]
            k = k + 1 if k < n - 1 else 0
        k = k_last
        for t in range(t1 - 1, t0 - 1, -1):
            if k == n - 1 or t == t1 - 1:
                for j in range(nw):
                    hv[j] = g[t, j]
            else:
                for j in range(nw):
                    hv[j] = hv[j] | g[t, j]
            hi = min(t + n - 1, t1 - 1)
            # steps t .. hi reach past t's block (whose last step is t - k + n - 1): the
            # running OR of hi's block up to hi joins in
            d = hv
            if hi > t - k + n - 1:
                for j in range(nw):
                    dv[j] = hv[j] | s[hi, j]
                d = dv
            k = k - 1 if k > 0 else n - 1
            if exact[t]:
                base = o0 + shift[t]
                ja = min(max(0, -base), nw)
                jb = max(min(nw, across - base), ja)
                for j in range(ja, jb):
                    out[t, base + j] |= d[j]
            else:
                for j in range(nw):
                    m = int(math.floor((o0 + j) + slope * t + 0.5))
                    if d[j] and 0 <= m < across:
                        out[t, m] |= d[j]


@nb.njit(cache=True, nogil=True)
def open_bits(  # pragma: no cover - compiled
    A: np.ndarray, across: int, out: np.ndarray, n: int, slope: float
) -> None:
    """:func:`open_packed` of one mask held as bits: 64 lines are opened per word operation.

    ``A`` is uint64 (length, words): bit ``m % 64`` of word ``m // 64`` of row ``t`` is pixel
    (t, m), for ``m < across`` (the rest 0); ``out``, in the same layout, is OR'ed with the
    pixels in runs of >= ``n`` along the lines ``m = round(o + slope * t)``. Where the lines
    of row ``t`` are its pixels shifted by one amount (nearly always: see
    :func:`_line_rows`), the row of lines is the image row shifted by that many bits, so the
    shear, the van Herk / Gil-Werman erosion and dilation along ``t`` and the shear back all
    work on whole words.
    """
    length = A.shape[0]
    o_min = int(math.floor(-max(slope, 0.0) * (length - 1))) - 3
    o_max = across + int(math.ceil(max(-slope, 0.0) * (length - 1))) + 3
    no = o_max - o_min + 1
    nws = (no + 63) // 64
    n = max(n, 1)
    shift, exact = _line_rows(length, slope)
    S = np.zeros((length, nws), np.uint64)
    for t in range(length):
        if exact[t]:
            d = o_min + shift[t]  # S bit i = A bit i + d
            q = d // 64
            r = d - 64 * q
            nwa_ = A.shape[1]
            # words j with j + q or j + q + 1 inside A; S is 0 elsewhere
            ja = max(0, -q - 1)
            jb = min(nws, nwa_ - q)
            if r == 0:
                for j in range(max(ja, -q), jb):
                    S[t, j] = A[t, j + q]
            else:
                ru = np.uint64(r)
                rv = np.uint64(64 - r)
                for j in range(ja, jb):
                    lo = A[t, j + q] if j + q >= 0 else np.uint64(0)
                    hi = A[t, j + q + 1] if j + q + 1 < nwa_ else np.uint64(0)
                    S[t, j] = (lo >> ru) | (hi << rv)
        else:
            for i in range(no):
                m = int(math.floor((i + o_min) + slope * t + 0.5))
                if 0 <= m < across and (A[t, m >> 6] >> np.uint64(m & 63)) & np.uint64(1):
                    S[t, i >> 6] |= np.uint64(1) << np.uint64(i & 63)
    # erosion then dilation by n steps, as in open_packed, on words of 64 lines
    G = np.empty((length, nws), np.uint64)
    hv = np.empty(nws, np.uint64)
    for t in range(length):
        if t % n == 0:
            for j in range(nws):
                G[t, j] = S[t, j]
        else:
            for j in range(nws):
                G[t, j] = G[t - 1, j] & S[t, j]
    for t in range(length - 1, -1, -1):
        if t % n == n - 1 or t == length - 1:
            for j in range(nws):
                hv[j] = S[t, j]
        else:
            for j in range(nws):
                hv[j] = hv[j] & S[t, j]
        if t + n - 1 < length:
            for j in range(nws):
                G[t + n - 1, j] = hv[j] & G[t + n - 1, j]
    for t in range(min(n - 1, length)):
        for j in range(nws):
            G[t, j] = 0
    for t in range(length):
        if t % n == 0:
            for j in range(nws):
                S[t, j] = G[t, j]
        else:
            for j in range(nws):
                S[t, j] = S[t - 1, j] | G[t, j]
    dv = np.empty(nws, np.uint64)
    nwa = A.shape[1]
    for t in range(length - 1, -1, -1):
        if t % n == n - 1 or t == length - 1:
            for j in range(nws):
                hv[j] = G[t, j]
        else:
            for j in range(nws):
                hv[j] = hv[j] | G[t, j]
        hi_t = min(t + n - 1, length - 1)
        if hi_t // n != t // n:
            for j in range(nws):
                dv[j] = hv[j] | S[hi_t, j]
        else:
            for j in range(nws):
                dv[j] = hv[j]
        if exact[t]:
            # out bit m = dv bit m - d
            d = o_min + shift[t]
            q = d // 64
            r = d - 64 * q
            # out word k holds dv bits 64k - d ..: dv words k - q and k - q - 1
            ka = max(0, q)
            kb = min(nwa, nws + q + 1)
            if r == 0:
                for k in range(ka, min(nwa, nws + q)):
                    out[t, k] |= dv[k - q]
            else:
                ru = np.uint64(r)
                rv = np.uint64(64 - r)
                for k in range(ka, kb):
                    lo = dv[k - q] if k - q < nws else np.uint64(0)
                    prev = dv[k - q - 1] if k - q - 1 >= 0 else np.uint64(0)
                    out[t, k] |= (lo << ru) | (prev >> rv)
        else:
            for i in range(no):
                if (dv[i >> 6] >> np.uint64(i & 63)) & np.uint64(1):
                    m = int(math.floor((i + o_min) + slope * t + 0.5))
                    if 0 <= m < across:
                        out[t, m >> 6] |= np.uint64(1) << np.uint64(m & 63)


@nb.njit(cache=True, nogil=True)
def bit_rows_of_transpose(mask: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """The rows of ``mask.T`` as bits (the layout of :func:`open_bits`), without the
    transposed copy: uint64 (cols, ceil(rows / 64)), bit ``r % 64`` of word ``r // 64`` of
    row ``c`` is ``mask[r, c]``."""
    h, w = mask.shape
    nk = (h + 63) // 64
    out = np.zeros((w, nk), np.uint64)
    # each band of 64 rows is gathered into one word per column, a row at a time along the
    # columns (contiguous, no branches: the loop vectorises)
    acc = np.empty(w, np.uint64)
    for k in range(nk):
        acc[:] = 0
        for i in range(min(64, h - 64 * k)):
            row = mask[64 * k + i]
            b = np.uint64(i)
            for c in range(w):
                acc[c] |= np.uint64(row[c]) << b
        for c in range(w):
            out[c, k] = acc[c]
    return out


@nb.njit(cache=True, nogil=True)
def union_of_bit_rows(  # pragma: no cover - compiled
    rows: np.ndarray, cols: np.ndarray, mask: np.ndarray
) -> np.ndarray:
    """``mask`` and (pixel (r, c) of the bit rows ``rows`` or pixel (c, r) of the bit rows
    ``cols``, those of the transposed image): bool (rows, cols) like ``mask``."""
    h, w = mask.shape
    out = np.empty((h, w), np.bool_)
    for r in range(h):
        k = r >> 6
        b = np.uint64(r & 63)
        for c in range(w):
            v = ((rows[r, c >> 6] >> np.uint64(c & 63)) | (cols[c, k] >> b)) & np.uint64(1)
            out[r, c] = mask[r, c] and v != 0
    return out
