"""The fast kernels of road derivation give exactly what their plain references give."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
from scipy import ndimage as ndi

from fortmap.detect.closing_kernels import close_cross
from fortmap.detect.edt_kernels import edt
from fortmap.detect.median_kernels import median3
from fortmap.detect.road_corridors import N_DIRECTIONS, line_openings
from fortmap.detect.road_surface import _nearest
from fortmap.detect.skeleton_kernels import order_branch, simple_branches

SHAPES = [(1, 1), (1, 6), (7, 1), (2, 3), (31, 17), (64, 90)]


@pytest.mark.parametrize("shape", SHAPES)
def test_median3_equals_scipy(shape):
    rng = np.random.default_rng(sum(shape))
    for x in (
        rng.random(shape).astype(np.float32),
        np.round(rng.random(shape) * 3).astype(np.float32),  # many ties
    ):
        ref = ndi.median_filter(x, 3, mode="nearest")
        assert np.array_equal(median3(x), ref)
        stack = np.full((2, *shape), -1.0, np.float32)
        assert np.shares_memory(median3(x, stack[1]), stack)  # written into a stack's band
        assert np.array_equal(stack[1], ref) and (stack[0] == -1).all()


@pytest.mark.parametrize("shape", SHAPES)
def test_median3_with_ties_and_signed_zeros_equals_the_insertion_reference(shape):
    from fortmap.detect.median_kernels import _median3_insertion

    rng = np.random.default_rng(5 + sum(shape))
    x = np.round(rng.random(shape) * 2 - 1).astype(np.float32)  # ties, 0.0 and -0.0
    x[rng.random(shape) < 0.3] = -0.0
    assert np.array_equal(median3(x), _median3_insertion(x))


def test_median3_with_nan_does_not_fail():
    x = np.ones((5, 5), np.float32)
    x[2, 2] = np.nan
    assert median3(x).shape == (5, 5)


@pytest.mark.parametrize("shape", SHAPES[2:])
@pytest.mark.parametrize("p", [0.05, 0.6, 0.97])
def test_edt_equals_scipy(shape, p):
    m = np.random.default_rng(7).random(shape) < p
    m[0, 0] = False
    assert np.array_equal(edt(m), ndi.distance_transform_edt(m))


def test_edt_without_background_follows_scipy():
    m = np.ones((4, 5), bool)
    assert np.array_equal(edt(m), ndi.distance_transform_edt(m))


def test_nearest_centre_equals_numpy_argmin():
    rng = np.random.default_rng(3)
    x = np.round(rng.random((20_000, 3)) * 64).astype(np.float32) * 4  # ties on purpose
    c = np.round(rng.random((16, 3)) * 64).astype(np.float32) * 4
    ref = ((x[:, None, :] - c[None]) ** 2).sum(-1).argmin(1)
    assert np.array_equal(_nearest(x, c), ref)
    # a (bands, pixels) stack's transposed view, as road_mask passes it
    assert np.array_equal(_nearest(np.ascontiguousarray(x.T).T, c), ref)
    # one band (grey), a length that is not a whole number of blocks
    g = x[:3001, :1]
    assert np.array_equal(
        _nearest(g, c[:, :1]), ((g[:, None] - c[None, :, :1]) ** 2).sum(-1).argmin(1)
    )


def _openings_reference(mask: np.ndarray, n: int) -> np.ndarray:
    """Pure-Python line openings: every offset of every direction walked end to end."""
    h, w = mask.shape
    out = np.zeros_like(mask)
    for deg in np.linspace(0.0, 180.0, N_DIRECTIONS, endpoint=False):
        t = math.radians(float(deg))
        x_major = abs(math.cos(t)) >= abs(math.sin(t))
        slope = math.tan(t) if x_major else 1.0 / math.tan(t)
        length, across = (w, h) if x_major else (h, w)
        lo = min(0, math.floor(-slope * (length - 1))) - 1
        hi = across + max(0, math.ceil(-slope * (length - 1))) + 1
        for o in range(lo, hi):
            run = []
            for s in range(length + 1):
                m = math.floor(o + slope * s + 0.5) if s < length else -1
                px = (m, s) if x_major else (s, m)
                if 0 <= m < across and mask[px]:
                    run.append(px)
                    continue
                if len(run) >= n:
                    for q in run:
                        out[q] = True
                run = []
    return out & mask


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_line_openings_equal_the_plain_walk(seed):
    rng = np.random.default_rng(seed)
    m = ndi.binary_dilation(rng.random((37, 53)) > 0.97, iterations=2)
    m[5, :] = True
    m[:, 40] = True
    assert np.array_equal(line_openings(m[None], 9)[0], _openings_reference(m, 9))


@pytest.mark.parametrize("n", [1, 2, 9, 60])
@pytest.mark.parametrize("density", [0.05, 0.5, 0.95])
def test_line_openings_skipping_ahead_equal_the_plain_walk(n, density):
    # sparse masks let the walk jump n steps at a time; dense ones hold long runs, broken
    # here and there just short of n
    rng = np.random.default_rng(int(density * 100) + n)
    m = ndi.binary_dilation(rng.random((29, 47)) < density / 9, iterations=1)
    m |= rng.random(m.shape) < density / 2
    m[3, 2 : 2 + n] = True
    m[10, 5 : 5 + max(n - 1, 1)] = True
    assert np.array_equal(line_openings(m[None], n)[0], _openings_reference(m, n))


def _order_networkx(pix: np.ndarray) -> list[tuple[int, int]]:
    """The networkx ordering that :func:`order_branch` replaces."""
    nb8 = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]
    g = nx.Graph()
    pts = [(int(r), int(c)) for r, c in pix]
    pset = set(pts)
    for p in pts:
        g.add_node(p)
        for a, b in nb8:
            q = (p[0] + a, p[1] + b)
            if q in pset:
                g.add_edge(p, q, weight=math.hypot(a, b))
    if len(pts) == 1:
        return pts
    ends = [p for p in pts if g.degree(p) == 1]
    if not ends:
        p = pts[0]
        q = next(iter(g[p]))
        g.remove_edge(p, q)
        return nx.shortest_path(g, p, q, weight="weight")
    d = nx.single_source_dijkstra_path_length(g, ends[0], weight="weight")
    far = max(d, key=d.get)
    d2, paths = nx.single_source_dijkstra(g, far, weight="weight")
    return paths[max(d2, key=d2.get)]


def test_order_branch_equals_networkx():
    from skimage.draw import circle_perimeter, line
    from skimage.morphology import skeletonize

    img = np.zeros((60, 60), bool)
    img[line(2, 3, 40, 55)] = True
    img[line(40, 55, 50, 10)] = True  # a bend with staircase corners
    ring = np.zeros((60, 60), bool)
    ring[circle_perimeter(30, 30, 12)] = True
    blob = skeletonize(ndi.binary_dilation(img, iterations=2))
    for m in (img, ring, blob, np.eye(1, dtype=bool)):
        pix = np.argwhere(m)
        assert order_branch(pix) == _order_networkx(pix)


@pytest.mark.parametrize("seed", [0, 1])
def test_packed_line_openings_of_many_masks_equal_the_walk_of_each(seed):
    rng = np.random.default_rng(seed)
    masks = np.stack(
        [ndi.binary_dilation(rng.random((41, 57)) > 0.96, iterations=2) for _ in range(5)]
    )
    masks[1, 7, :] = True
    masks[3, :, 11] = True
    got = line_openings(masks, 9)
    for k in range(len(masks)):
        assert np.array_equal(got[k], _openings_reference(masks[k], 9))


@pytest.mark.parametrize("iterations", [1, 2])
def test_close_cross_equals_scipy_binary_closing(iterations):
    rng = np.random.default_rng(iterations)
    planes = rng.random((3, 23, 31)) > 0.6
    for m in planes:
        ref = ndi.binary_closing(m, iterations=iterations)
        assert np.array_equal(close_cross(m.view(np.uint8), iterations).view(bool), ref)
    packed = (planes.astype(np.uint32) << np.arange(3, dtype=np.uint32)[:, None, None]).sum(0)
    got = close_cross(packed.astype(np.uint32), iterations)
    for k, m in enumerate(planes):
        assert np.array_equal((got >> k) & 1 == 1, ndi.binary_closing(m, iterations=iterations))


def test_simple_branches_order_like_order_branch():
    from skimage.draw import line
    from skimage.morphology import skeletonize

    img = np.zeros((70, 70), bool)
    img[line(2, 3, 40, 55)] = True
    img[line(40, 55, 60, 10)] = True
    img[line(5, 60, 65, 62)] = True
    img[30, 5] = True  # a single pixel
    img |= skeletonize(ndi.binary_dilation(np.eye(70, dtype=bool)[::-1], iterations=2))
    body, n = ndi.label(img, np.ones((3, 3)))
    start, order, simple = simple_branches(body, n)
    assert simple.any()
    for i in range(n):
        pix = np.argwhere(body == i + 1)
        got = order[start[i] : start[i + 1]]
        if simple[i]:
            assert [tuple(p) for p in got] == order_branch(pix)
        else:
            assert np.array_equal(got, pix)  # left in row-major order for order_branch


def test_edt_above_equals_thresholded_edt():
    from fortmap.detect.edt_kernels import edt, edt_above

    rng = np.random.default_rng(4)
    for shape in [(1, 1), (6, 9), (120, 97)]:
        for p in (0.5, 0.95, 1.0):
            m = rng.random(shape) < p
            for r in (0.0, 0.5, 1.0, 2**0.5, 2.0, 7.5, 15.0, 17.0):
                assert np.array_equal(edt_above(m, r), edt(m) > r)


def test_edt_above_with_empty_columns_and_long_reach_equals_squared_edt():
    # columns and rows with no background, and a reach beyond every distance: the capped
    # kernel must still answer as the squared distances compared with the bar
    from fortmap.detect.edt_kernels import _sq_edt, _sq_edt_capped, edt, edt_above

    m = np.ones((40, 60), bool)
    m[5, 7] = m[33, 50] = False
    rng = np.random.default_rng(9)
    for mask in (m, rng.random((70, 31)) < 0.97):
        for t in (0, 1, 2, 5, 50, 400, 10_000, 2**30):
            for dt in (np.int32, np.int64):
                got = _sq_edt_capped(mask, t, np.empty(mask.shape, dt)) >= t
                assert np.array_equal(got, _sq_edt(mask) >= t)
        for r in (3.0, 60.0, 2.0**20):
            assert np.array_equal(edt_above(mask, r), edt(mask) > r)


def test_packed_line_openings_use_every_bit_of_the_word():
    # 33 masks fill one word's 32 bits (the last is bit 31) and spill into a second word;
    # each must open as the single-mask walk opens it
    rng = np.random.default_rng(5)
    masks = np.stack(
        [ndi.binary_dilation(rng.random((23, 31)) > 0.9, iterations=1) for _ in range(33)]
    )
    masks[31, 4, :] = masks[30, :, 6] = True
    got = line_openings(masks, 7)
    for k in range(len(masks)):
        assert np.array_equal(got[k], line_openings(masks[k : k + 1], 7)[0]), k


@pytest.mark.parametrize(
    "slope", [0.0, 0.5, -0.5, 0.25, -1.0, 0.1, 0.5 - 2.0**-52, -0.5 + 2.0**-52]
)
def test_open_packed_equals_the_walk_at_slopes_with_half_pixel_rounding(slope):
    # at these slopes o + slope * t lands on (or within rounding of) k + 0.5 for many rows:
    # the rows where a line's own float sum decides its pixel
    from fortmap.detect.morph_kernels import open_along, open_packed

    m = np.random.default_rng(11).random((60, 45)) < 0.7
    ref = np.zeros(m.shape, bool)
    open_along(m, ref, 4, slope, False)
    got = np.zeros(m.shape, np.uint32)
    open_packed(m.astype(np.uint32) * np.uint32(5), got, 4, slope)
    assert ref.any()
    assert np.array_equal(got == 5, ref) and np.array_equal(got != 0, ref)


@pytest.mark.parametrize("word", [np.uint8, np.uint16])
def test_packed_line_openings_in_narrow_words_equal_uint32(word):
    # road_mask packs its classes in the narrowest word that holds them
    from fortmap.detect.road_corridors import open_lines_packed

    rng = np.random.default_rng(3)
    nbits = np.iinfo(word).bits
    masks = [ndi.binary_dilation(rng.random((37, 29)) > 0.93) for _ in range(nbits)]
    masks[-1][5, :] = masks[0][:, 9] = True  # the top and bottom bits have long lines
    packed = sum(m.astype(np.uint32) << np.uint32(j) for j, m in enumerate(masks))
    ref = open_lines_packed(packed.astype(np.uint32), 7)
    got = open_lines_packed(packed.astype(word), 7)
    assert got.dtype == word and ref.any()
    assert np.array_equal(got.astype(np.uint32), ref)
    # and each bit as the walk of its own mask
    for j, m in enumerate(masks):
        assert np.array_equal((got >> j) & 1 == 1, _openings_reference(m, 7)), j
