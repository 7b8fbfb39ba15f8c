"""Bit planes of packed class masks as rows of bits, and back (numba, pixels).

:func:`fortmap.detect.road_corridors.open_lines_packed` opens each class mask held as one bit
of a packed (rows, cols) array. One mask as rows of bits opens 64 lines per word operation
(:func:`fortmap.detect.morph_kernels.open_bits`), where the packed words open one line of up
to 8, 16 or 32 masks per byte, half-word or word; these kernels move a mask between the two
layouts without a bool copy of it.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True)
def plane_bit_rows(
    packed: np.ndarray, b: int
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """Bit ``b`` of ``packed`` (rows, cols) as the bit rows of the mask and of its transpose.

    Returns:
        (rows uint64 (rows, ceil(cols / 64)), cols uint64 (cols, ceil(rows / 64))): pixel
        (r, c) is bit ``c % 64`` of word ``c // 64`` of row ``r`` in the first and bit
        ``r % 64`` of word ``r // 64`` of row ``c`` in the second (the layouts of
        ``road_corridors._bit_rows`` and ``morph_kernels.bit_rows_of_transpose``), the bits
        past the image 0.
    """
    h, w = packed.shape
    nw, nk = (w + 63) // 64, (h + 63) // 64
    rows = np.zeros((h, nw), np.uint64)
    cols = np.zeros((w, nk), np.uint64)
    bb = packed.dtype.type(b)
    one = packed.dtype.type(1)
    acc = np.zeros(w, np.uint64)
    for r in range(h):
        row = packed[r]
        k = r >> 6
        if (r & 63) == 0:
            acc[:] = 0
        sh = np.uint64(r & 63)
        # along the columns, contiguous and without branches: the loop vectorises
        for c in range(w):
            acc[c] |= np.uint64((row[c] >> bb) & one) << sh
        for j in range(nw):
            word = np.uint64(0)
            for i in range(min(64, w - 64 * j)):
                word |= np.uint64((row[64 * j + i] >> bb) & one) << np.uint64(i)
            rows[r, j] = word
        if (r & 63) == 63 or r == h - 1:
            for c in range(w):
                cols[c, k] = acc[c]
    return rows, cols


@nb.njit(cache=True, nogil=True)
def or_bit_rows(out: np.ndarray, rows: np.ndarray, b: int) -> None:  # pragma: no cover - compiled
    """Set bit ``b`` of ``out`` (rows, cols) where pixel (r, c) is set in the bit rows
    ``rows`` (the layout of :func:`plane_bit_rows`: bit ``c % 64`` of word ``c // 64``).

    Called on the transposed output with the transposed bit rows, it writes along rows too:
    both halves of an opening are merged in contiguous, branch-free passes.
    """
    h, w = out.shape
    bb = out.dtype.type(b)
    one = out.dtype.type(1)
    for r in range(h):
        o = out[r]
        for j in range(rows.shape[1]):
            word = rows[r, j]
            if word == 0:
                continue  # most of a class's words: no run of it there
            for i in range(min(64, w - 64 * j)):
                o[64 * j + i] |= (out.dtype.type((word >> np.uint64(i)) & np.uint64(1)) & one) << bb
