"""Colour-class kernels of road derivation (numba): nearest k-means centre of every pixel,
the k-means iterations, merging and counting classes."""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True, inline="always")
def _block_nearest(xt, ct, i0, m, best, bi):  # pragma: no cover - compiled
    """Nearest centre (``bi[:m]``) of pixels ``i0 .. i0 + m - 1`` of ``xt`` (bands, n)."""
    nb_, k = ct.shape
    for i in range(m):
        best[i] = np.float32(np.inf)
        bi[i] = 0
    for j in range(k):
        jj = np.int16(j)
        if nb_ == 3:
            x0, x1, x2 = xt[0, i0 : i0 + m], xt[1, i0 : i0 + m], xt[2, i0 : i0 + m]
            c0, c1, c2 = ct[0, j], ct[1, j], ct[2, j]
            for i in range(m):
                d = np.float32(x0[i]) - c0
                s = d * d
                d = np.float32(x1[i]) - c1
                s = s + d * d
                d = np.float32(x2[i]) - c2
                s = s + d * d
                # strictly less: the first centre keeps a tie
                lt = s < best[i]
                best[i] = s if lt else best[i]
                bi[i] = jj if lt else bi[i]
        else:
            for i in range(m):
                d = np.float32(xt[0, i0 + i]) - ct[0, j]
                s = d * d
                for q in range(1, nb_):
                    d = np.float32(xt[q, i0 + i]) - ct[q, j]
                    s = s + d * d
                lt = s < best[i]
                best[i] = s if lt else best[i]
                bi[i] = jj if lt else bi[i]


@nb.njit(cache=True, nogil=True)
def nearest_centre(x: np.ndarray, cent: np.ndarray) -> np.ndarray:  # pragma: no cover
    """Index of the nearest centre of each row of ``x`` (float32 or uint8 (n, bands), e.g. the
    transposed view of a (bands, n) stack, which is read as it lies; bytes are taken as
    float32).

    Squared differences summed in band order in float32, first minimum on ties: the same
    numbers as ``((x[:, None] - cent[None]) ** 2).sum(-1).argmin(1)`` in numpy. Pixels are
    taken in blocks and each centre is tried on a whole block before the next, so the inner
    loop runs along pixels without branches and vectorises.
    """
    n = x.shape[0]
    xt = x.T
    ct = np.ascontiguousarray(cent.T)
    lab = np.empty(n, np.int16)
    blk = 1024
    best = np.empty(blk, np.float32)
    bi = np.empty(blk, np.int16)
    for i0 in range(0, n, blk):
        m = min(blk, n - i0)
        _block_nearest(xt, ct, i0, m, best, bi)
        lab[i0 : i0 + m] = bi[:m]
    return lab


@nb.njit(cache=True, nogil=True)
def nearest_merged(  # pragma: no cover - compiled
    x: np.ndarray, cent: np.ndarray, root: np.ndarray, valid: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`nearest_centre` then :func:`merge_count` in one pass over the pixels.

    Args:
        x: float32 or uint8 (n, bands), as :func:`nearest_centre` takes it.
        cent: float32 (k, bands) centres.
        root: int (k,) the class each class merges into (0..k-1).
        valid: bool (n,).

    Returns:
        (int16 (n,) merged labels, -1 where not ``valid``; int64 (k,) valid pixels per
        merged class).
    """
    n = x.shape[0]
    xt = x.T
    ct = np.ascontiguousarray(cent.T)
    lab = np.empty(n, np.int16)
    counts = np.zeros(root.shape[0], np.int64)
    blk = 1024
    best = np.empty(blk, np.float32)
    bi = np.empty(blk, np.int16)
    for i0 in range(0, n, blk):
        m = min(blk, n - i0)
        _block_nearest(xt, ct, i0, m, best, bi)
        for i in range(m):
            if valid[i0 + i]:
                q = root[bi[i]]
                lab[i0 + i] = q
                counts[q] += 1
            else:
                lab[i0 + i] = -1
    return lab, counts


@nb.njit(cache=True, nogil=True)
def merge_count(  # pragma: no cover - compiled
    lab: np.ndarray, root: np.ndarray, valid: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Labels mapped through ``root`` (-1 where not ``valid``) and the pixels of each, one pass.

    The same as ``out = root[lab]; out[~valid] = -1`` and
    ``np.bincount(out[valid], minlength=len(root))``, without the int64 copies.

    Args:
        lab: int16 (rows, cols) class labels 0..k-1.
        root: int (k,) the class each class merges into (0..k-1).
        valid: bool (rows, cols).

    Returns:
        (int16 (rows, cols) merged labels, int64 (k,) valid pixels per merged class).
    """
    h, w = lab.shape
    out = np.empty((h, w), np.int16)
    counts = np.zeros(root.shape[0], np.int64)
    for r in range(h):
        for c in range(w):
            if valid[r, c]:
                k = root[lab[r, c]]
                out[r, c] = k
                counts[k] += 1
            else:
                out[r, c] = -1
    return out, counts


@nb.njit(cache=True, nogil=True)
def bit_plane(a: np.ndarray, j: int) -> np.ndarray:  # pragma: no cover - compiled
    """Bit ``j`` of an unsigned (rows, cols) array as a bool mask: ``(a >> j) & 1``."""
    h, w = a.shape
    out = np.empty((h, w), np.bool_)
    for r in range(h):
        for c in range(w):
            out[r, c] = (a[r, c] >> j) & 1
    return out


@nb.njit(cache=True, nogil=True)
def class_bit_count(  # pragma: no cover - compiled
    lab: np.ndarray, k: int, bits: np.ndarray, j: int, keep: np.ndarray
) -> int:
    """Pixels of class ``k`` in ``lab`` with bit ``j`` of ``bits`` set and ``keep`` True:
    ``((lab == k) & ((bits >> j) & 1 == 1) & keep).sum()`` without the temporaries."""
    h, w = lab.shape
    n = 0
    jj = bits.dtype.type(j)
    one = bits.dtype.type(1)
    kk = lab.dtype.type(k)
    for r in range(h):
        # counted without branches, so the loop vectorises (a class's pixels are scattered:
        # the tests would mispredict)
        for c in range(w):
            n += np.int64((lab[r, c] == kk) & keep[r, c] & (((bits[r, c] >> jj) & one) != 0))
    return n


@nb.njit(cache=True, nogil=True)
def lloyd(  # pragma: no cover - compiled
    data: np.ndarray, code_book: np.ndarray, iters: int
) -> tuple[np.ndarray, int]:
    """``iters`` k-means iterations as ``scipy.cluster.vq.kmeans2(data, code_book, iters,
    minit="matrix")`` runs them: the same centres bit for bit.

    scipy's assignment (``_vq.vq`` below five features) sums ``(centre - point) ** 2`` over
    the features in float64 and keeps the first centre of the smallest sum; each mean is the
    features summed in point order, divided by the count. Here each centre is tried on a
    block of points before the next (the points' features laid out as rows), so the loop
    over points vectorises; every sum is still taken in scipy's order.

    Args:
        data: float64 (n, features), finite.
        code_book: float64 (k, features), the starting centres.
        iters: iterations (at least 1).

    Returns:
        (float64 (k, features) centres, iterations that left some centre without points;
        scipy warns for each and keeps such a centre where it was).
    """
    n, nf = data.shape
    k = code_book.shape[0]
    dt = np.ascontiguousarray(data.T)
    cb = code_book.copy()
    lab = np.empty(n, np.int32)
    blk = 512
    best = np.empty(blk, np.float64)
    bi = np.empty(blk, np.int32)
    empty = 0
    for _ in range(iters):
        for i0 in range(0, n, blk):
            m = min(blk, n - i0)
            best[:m] = np.inf
            bi[:m] = 0
            for j in range(k):
                jj = np.int32(j)
                if nf == 3:
                    # written out for three bands: a loop over the features does not vectorise
                    x0, x1, x2 = dt[0, i0 : i0 + m], dt[1, i0 : i0 + m], dt[2, i0 : i0 + m]
                    c0, c1, c2 = cb[j, 0], cb[j, 1], cb[j, 2]
                    for i in range(m):
                        d = c0 - x0[i]
                        s = d * d
                        d = c1 - x1[i]
                        s = s + d * d
                        d = c2 - x2[i]
                        s = s + d * d
                        lt = s < best[i]
                        best[i] = s if lt else best[i]
                        bi[i] = jj if lt else bi[i]
                    continue
                for i in range(m):
                    s = 0.0
                    for f in range(nf):
                        d = cb[j, f] - dt[f, i0 + i]
                        s += d * d
                    lt = s < best[i]
                    best[i] = s if lt else best[i]
                    bi[i] = jj if lt else bi[i]
            lab[i0 : i0 + m] = bi[:m]
        new = np.zeros((k, nf))
        count = np.zeros(k, np.int64)
        for i in range(n):
            c = lab[i]
            for f in range(nf):
                new[c, f] += data[i, f]
            count[c] += 1
        missing = False
        for j in range(k):
            if count[j] > 0:
                for f in range(nf):
                    new[j, f] /= count[j]
            else:
                new[j] = cb[j]
                missing = True
        empty += missing
        cb = new
    return cb, empty


@nb.njit(cache=True, nogil=True)
def label_table(lab: np.ndarray, table: np.ndarray) -> np.ndarray:  # pragma: no cover
    """``table[lab + 1]`` for labels -1..k-1 (-1: none, ``table[0]``), in ``table``'s dtype,
    without numpy's int16 fancy-indexing (several times slower on a 4 Mpx overview)."""
    h, w = lab.shape
    out = np.empty((h, w), table.dtype)
    for r in range(h):
        for c in range(w):
            out[r, c] = table[lab[r, c] + 1]
    return out


@nb.njit(cache=True, nogil=True)
def clear_where_not(a: np.ndarray, keep: np.ndarray) -> np.ndarray:  # pragma: no cover
    """``a[~keep] = 0`` in place (``a`` returned), in one pass without the inverted mask."""
    h, w = a.shape
    for r in range(h):
        for c in range(w):
            if not keep[r, c]:
                a[r, c] = 0
    return a
