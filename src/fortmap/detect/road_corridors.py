"""Long, narrow corridors of a mask: line openings in many directions and a width test.

Works on the overview grid of :mod:`fortmap.detect.roads_from_image`; lengths are given in
metres and turned into pixels with the grid's pixel size.
"""

from __future__ import annotations

import math

import numpy as np

from fortmap.detect.closing_kernels import fill_holes_upto
from fortmap.detect.corridor_kernels import or_bit_rows, plane_bit_rows
from fortmap.detect.edt_kernels import edt_above, far_from
from fortmap.detect.morph_kernels import (
    bit_rows_of_transpose,
    open_bits,
    open_packed,
    union_of_bit_rows,
)

#: Length of the straight line that must fit in a corridor, metres (a block is 10-25 m, a
#: road runs on; at 30 m a ring road of 200 m radius bows by half a metre).
CORRIDOR_M = 30.0
#: Widest road, metres (a six-lane avenue with verges); wider uniform areas are plazas, yards,
#: airstrips or fields.
MAX_WIDTH_M = 30.0
#: Largest hole in a surface that is an object on it, not a gap between surfaces, square
#: metres: a 10 m square holds the largest tree crown, a lorry or a kiosk; a city block is larger.
SMALL_HOLE_M2 = 100.0
#: Directions tried by the line openings (a 30 px line at 1/16 of pi apart ends 3 px off).
N_DIRECTIONS = 16


def line_openings(masks: np.ndarray, n: int) -> np.ndarray:
    """Union over ``N_DIRECTIONS`` of openings by an ``n``-pixel line, for a stack of masks.

    A pixel is kept when it lies in a run of at least ``n`` mask pixels, counted along the
    major axis, on a digital straight line in one of the directions (one pass per direction,
    cost independent of ``n``; up to 32 masks share a pass as the bits of one word).

    Args:
        masks: bool (k, rows, cols).
        n: line length, pixels (along the direction's major axis).

    Returns:
        bool (k, rows, cols).

    Example:
        >>> m = np.zeros((1, 9, 40), bool); m[0, 4, 2:38] = True; m[0, 1, 5:10] = True
        >>> int(line_openings(m, 20).sum())
        36
    """
    if masks.shape[0] == 1:
        # one mask: its rows as bits, 64 lines to a word (see open_bits)
        m = np.ascontiguousarray(masks[0], bool)
        a, at = _bit_rows(m), bit_rows_of_transpose(m)
        oy, ox = np.zeros_like(a), np.zeros_like(at)
        for deg in np.linspace(0.0, 180.0, N_DIRECTIONS, endpoint=False):
            t = math.radians(float(deg))
            # as open_lines_packed: lines along the columns are swept on the transposed mask
            if abs(math.cos(t)) >= abs(math.sin(t)):
                open_bits(at, m.shape[0], ox, n, math.tan(t))
            else:
                open_bits(a, m.shape[1], oy, n, 1.0 / math.tan(t))
        return union_of_bit_rows(oy, ox, m)[None]
    out = np.zeros(masks.shape, bool)
    for j0 in range(0, masks.shape[0], 32):
        sub = masks[j0 : j0 + 32]
        packed = np.zeros(masks.shape[1:], np.uint32)
        for j, m in enumerate(sub):
            packed |= m.astype(np.uint32) << np.uint32(j)
        res = open_lines_packed(packed, n)
        for j in range(len(sub)):
            out[j0 + j] = (res >> np.uint32(j)) & np.uint32(1)
    return out & masks


def _bit_rows(mask: np.ndarray) -> np.ndarray:
    """Each row of a bool (rows, cols) mask as bits, uint64 (rows, ceil(cols / 64)), pixel
    ``c`` in bit ``c % 64`` of word ``c // 64``, the bits past ``cols`` 0."""
    h, w = mask.shape
    out = np.zeros((h, (w + 63) // 64 * 8), np.uint8)
    out[:, : (w + 7) // 8] = np.packbits(mask, axis=1, bitorder="little")
    return out.view(np.uint64)


def open_lines_packed(packed: np.ndarray, n: int) -> np.ndarray:
    """:func:`line_openings` of the masks held as the bits of an unsigned (rows, cols) array
    (uint8, uint16 or uint32: up to 8, 16 or 32 masks; other types are taken as uint32)."""
    if packed.dtype not in (np.uint8, np.uint16):
        packed = packed.astype(np.uint32, copy=False)
    packed = np.ascontiguousarray(packed)
    out = np.zeros_like(packed)
    out_t = np.zeros((packed.shape[1], packed.shape[0]), packed.dtype)
    # each mask on its own as rows of bits: 64 lines per word operation, against one line
    # per byte of the packed words (the same pixels: see test_roads_kernels); 13 classes of
    # a 1000 px overview open in half the time, and a bit no pixel has costs nothing
    present = int(np.bitwise_or.reduce(packed, axis=None)) if packed.size else 0
    h, w = packed.shape
    for b in range(8 * packed.itemsize):
        if not (present >> b) & 1:
            continue
        a, at = plane_bit_rows(packed, b)
        oy, ox = np.zeros_like(a), np.zeros_like(at)
        for deg in np.linspace(0.0, 180.0, N_DIRECTIONS, endpoint=False):
            t = math.radians(float(deg))
            # as in line_openings: lines along the columns are swept on the transposed mask
            if abs(math.cos(t)) >= abs(math.sin(t)):
                open_bits(at, h, ox, n, math.tan(t))
            else:
                open_bits(a, w, oy, n, 1.0 / math.tan(t))
        or_bit_rows(out, oy, b)
        or_bit_rows(out_t, ox, b)
    return (out | out_t.T) & packed


def open_lines_words(packed: np.ndarray, n: int) -> np.ndarray:
    """:func:`open_lines_packed` swept on the packed words themselves (one line of every
    mask per word operation); the reference the per-mask sweep is tested against."""
    if packed.dtype not in (np.uint8, np.uint16):
        packed = packed.astype(np.uint32, copy=False)
    packed = np.ascontiguousarray(packed)
    # lines running along the columns are swept on the transposed array, so that a sweep
    # always reads along rows
    pt = np.ascontiguousarray(packed.T)
    ox, oy = np.zeros_like(pt), np.zeros_like(packed)
    for deg in np.linspace(0.0, 180.0, N_DIRECTIONS, endpoint=False):
        t = math.radians(float(deg))
        # rows grow downwards: a direction of +deg from the column axis is a negative
        # row step; the sign does not matter over a half-turn of directions
        if abs(math.cos(t)) >= abs(math.sin(t)):
            open_packed(pt, ox, n, math.tan(t))
        else:
            open_packed(packed, oy, n, 1.0 / math.tan(t))
    return (oy | ox.T) & packed


def _not_wide(mask: np.ndarray, pixel_m: float) -> np.ndarray:
    """False within 2 pixels of any disk ``MAX_WIDTH_M`` across that fits inside ``mask``."""
    r = MAX_WIDTH_M / 2 / pixel_m
    # the opening by a disk of radius r is the r-neighbourhood of the centres deeper than r
    centres = edt_above(mask, r)
    if not centres.any():
        return np.ones(mask.shape, bool)
    return far_from(centres, r + 2)


def fill_small_holes(mask: np.ndarray, pixel_m: float, max_m2: float = SMALL_HOLE_M2) -> np.ndarray:
    """``mask`` with its holes of at most ``max_m2`` square metres filled (bool, same shape).

    Args:
        mask: bool (rows, cols).
        pixel_m: metres per pixel of ``mask``.
        max_m2: largest hole filled, square metres.
    """
    # holes are 4-connected, as ndi.label(~mask) counts them
    return fill_holes_upto(np.ascontiguousarray(mask, bool), float(max_m2 / pixel_m**2))


def corridors(mask: np.ndarray, pixel_m: float) -> np.ndarray:
    """Pixels of ``mask`` in long, narrow corridors (bool, same shape).

    A pixel is kept when a ``CORRIDOR_M`` line inside ``mask`` covers it in some direction and
    no disk ``MAX_WIDTH_M`` across inside ``mask`` comes within 2 pixels of it.
    """
    n = max(3, int(round(CORRIDOR_M / pixel_m)) | 1)
    return line_openings(mask[None], n)[0] & _not_wide(mask, pixel_m)
