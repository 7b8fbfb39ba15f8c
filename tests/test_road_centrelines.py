"""The skeleton graph as flat arrays equals the path-by-path construction it replaced."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.morphology import skeletonize

from fortmap.detect.road_centrelines import _NB8, _prune, _skeleton_graph
from fortmap.detect.skeleton_kernels import order_branch, simple_branches


def _reference_graph(skel: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Paths as a list, each end's first node neighbour inserted one path at a time."""
    nb = ndi.convolve(skel.astype(np.uint8), np.ones((3, 3), np.uint8), mode="constant") - 1
    node = skel & (nb != 2)
    nodes, _ = ndi.label(node, np.ones((3, 3)))
    body, nbody = ndi.label(skel & ~node, np.ones((3, 3)))
    start, order, simple = simple_branches(body, nbody)
    paths = [order[start[i] : start[i + 1]] for i in range(nbody)]
    for i in np.flatnonzero(~simple):
        paths[i] = np.array(order_branch(paths[i]), np.int64).reshape(-1, 2)
    h, w = skel.shape
    out = []
    for p in paths:
        p = [tuple(v) for v in p]
        ends = []
        for r, c in (p[0], p[-1]):
            hit = None
            for a, b in _NB8:
                if 0 <= r + a < h and 0 <= c + b < w and nodes[r + a, c + b]:
                    hit = (r + a, c + b)
                    break
            ends.append(hit)
        n = len(p)
        if ends[0] is not None:
            p.insert(0, ends[0])
        if ends[1] is not None:
            p.insert(n, ends[1])
        out.append(np.array(p, np.int64).reshape(-1, 2))
    return out, nodes


def _reference_prune(paths: list, nodes: np.ndarray, min_px: float) -> list:
    for _ in range(2):
        deg: dict[int, int] = {}
        ends = []
        for p in paths:
            e = [int(nodes[p[0, 0], p[0, 1]]), int(nodes[p[-1, 0], p[-1, 1]])]
            ends.append(e)
            for n in e:
                if n:
                    deg[n] = deg.get(n, 0) + 1
        keep = [
            p
            for p, (a, b) in zip(paths, ends, strict=True)
            if not ((a == 0 or deg[a] == 1 or b == 0 or deg[b] == 1) and len(p) < min_px)
        ]
        if len(keep) == len(paths):
            break
        paths = keep
    return paths


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_flat_skeleton_graph_and_pruning_equal_the_path_lists(seed):
    rng = np.random.default_rng(seed)
    for _ in range(25):
        shape = tuple(int(v) for v in rng.integers(8, 70, 2))
        m = ndi.binary_dilation(rng.random(shape) < 0.03, iterations=int(rng.integers(1, 4)))
        skel = skeletonize(m)
        flat, lens, nodes = _skeleton_graph(skel)
        ref, ref_nodes = _reference_graph(skel)
        assert np.array_equal(nodes, ref_nodes)
        assert lens.tolist() == [len(p) for p in ref]
        assert np.array_equal(flat, np.concatenate(ref) if ref else flat)
        for min_px in (3.0, 8.0):
            f, n = _prune(flat, lens, nodes, min_px)
            want = _reference_prune(ref, nodes, min_px)
            assert n.tolist() == [len(p) for p in want]
            assert np.array_equal(f, np.concatenate(want) if want else f)


def test_n_steps_equals_the_length_of_each_arange():
    from fortmap.detect.road_centrelines import _n_steps

    rng = np.random.default_rng(4)
    lengths = np.concatenate(
        [
            rng.random(2000) * 300,
            np.arange(0.0, 50.0),  # whole numbers: the 1e-9 decides
            np.arange(0.0, 50.0) - 1e-9,
            np.arange(0.0, 50.0) - 2e-9,
            np.nextafter(np.arange(1.0, 50.0), 0),
            [0.0],
        ]
    )
    ref = [len(np.arange(0, ln + 1e-9, 1.0)) for ln in lengths]
    assert np.array_equal(_n_steps(lengths), ref)
    assert _n_steps(np.zeros(0)).shape == (0,)
