"""The compiled crest search returns the path the networkx graph search found."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.morphology import skeletonize

from fortmap.detect.berm_crest import crest_path


def _crest_nx(sk: np.ndarray) -> np.ndarray | None:
    """The former ``berms._crest`` after the skeleton: a networkx graph of the pixels."""
    rr, cc = np.nonzero(sk)
    if len(rr) < 2:
        return None
    idx = {(r, c): i for i, (r, c) in enumerate(zip(rr, cc, strict=True))}
    g = nx.Graph()
    g.add_nodes_from(range(len(rr)))
    for i, (r, c) in enumerate(zip(rr, cc, strict=True)):
        for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
            j = idx.get((r + dr, c + dc))
            if j is not None:
                g.add_edge(i, j, weight=float(np.hypot(dr, dc)))
    comp = max(nx.connected_components(g), key=len)
    start = next(iter(comp))
    d = nx.single_source_dijkstra_path_length(g, start)
    a = max(d, key=d.get)
    d, paths = nx.single_source_dijkstra(g, a)
    b = max(d, key=d.get)
    path = paths[b]
    return np.c_[rr[path], cc[path]]


@pytest.mark.parametrize("seed", range(6))
def test_crest_path_matches_the_networkx_search(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for t in range(60):
        h, w = rng.integers(2, 70, 2)
        # blobs with loops, several parts, ties between equal paths; and raw noise
        m = rng.random((h, w)) < rng.uniform(0.3, 0.7)
        if t % 3:
            m = ndi.binary_closing(m, np.ones((3, 3), bool))
        sk = skeletonize(m)
        ref, got = _crest_nx(sk), crest_path(sk)
        assert (ref is None) == (got is None)
        if ref is not None:
            np.testing.assert_array_equal(got, ref)


def test_crest_path_of_a_bar_runs_end_to_end() -> None:
    m = np.zeros((9, 40), bool)
    m[3:6, 2:38] = True
    path = crest_path(skeletonize(m))
    assert path is not None
    assert abs(int(path[-1, 1]) - int(path[0, 1])) >= 30
    assert crest_path(np.zeros((5, 5), bool)) is None
