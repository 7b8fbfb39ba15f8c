"""The skeleton kernels give scikit-image's skeleton, and scipy's labels of its nodes and branches."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.morphology import skeletonize

from fortmap.detect.skeleton_kernels import simple_branches, skeleton_branches, skeletonize_zhang


def _masks(seed: int):
    rng = np.random.default_rng(seed)
    for t in range(40):
        h, w = (int(v) for v in rng.integers(1, 50, 2))
        m = rng.random((h, w)) < rng.uniform(0.3, 0.95)
        if t % 3 == 0:
            m = ndi.binary_dilation(m, iterations=int(rng.integers(1, 4)))
        elif t % 3 == 1:
            m = ndi.binary_opening(m)
        yield m
    # thick bars and a ring: many thinning passes
    m = np.zeros((60, 80), bool)
    m[10:25, 5:75] = True
    m[5:55, 30:42] = True
    yy, xx = np.mgrid[:60, :80]
    m |= np.abs(np.hypot(yy - 40, xx - 60) - 12) < 3
    yield m
    yield np.ones((7, 9), bool)


@pytest.mark.parametrize("seed", [0, 1])
def test_skeletonize_zhang_equals_scikit_image(seed):
    for m in _masks(seed):
        assert np.array_equal(skeletonize_zhang(m), skeletonize(m))


@pytest.mark.parametrize("seed", [2, 3])
def test_skeleton_branches_equal_convolution_labels_and_simple_branches(seed):
    for m in _masks(seed):
        for skel in (skeletonize(m), m):  # thin skeletons, and blobs full of junctions
            nb = ndi.convolve(skel.astype(np.uint8), np.ones((3, 3), np.uint8), mode="constant")
            node = skel & (nb - 1 != 2)
            nodes, _ = ndi.label(node, np.ones((3, 3)))
            body, n_body = ndi.label(skel & ~node, np.ones((3, 3)))
            start, order, simple, got_nodes = skeleton_branches(skel)
            want = simple_branches(body, n_body)
            assert got_nodes.dtype == nodes.dtype and np.array_equal(got_nodes, nodes)
            for got, ref in zip((start, order, simple), want, strict=True):
                assert np.array_equal(got, ref)


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (3, 3), (0, 4), (61, 47)])
def test_skeletonize_zhang_of_views_and_edge_shapes_equals_scikit_image(shape):
    # the image is copied in and out as bytes: strided views, empty and one-pixel images,
    # and a bool, C-ordered result like scikit-image's
    rng = np.random.default_rng(sum(shape))
    big = ndi.binary_dilation(rng.random((2 * shape[0] + 1, 2 * shape[1] + 1)) > 0.8, iterations=2)
    for m in (big[::2, ::2], np.zeros(shape, bool), np.ones(shape, bool)):
        got = skeletonize_zhang(m)
        assert got.dtype == np.bool_ and got.shape == m.shape and got.flags.c_contiguous
        if m.size:
            assert np.array_equal(got, skeletonize(m))
