"""Which pixels of an overview image are road surface: colour classes that are grey and
mostly lie in corridors (see :mod:`fortmap.detect.roads_from_image`, steps 1 and 2).

Works on the overview grid; metres are turned into pixels with its pixel size.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.cluster.vq import kmeans2
from scipy.spatial.distance import cdist

from fortmap.detect.closing_kernels import close_cross
from fortmap.detect.colour_class_kernels import (
    bit_plane,
    class_bit_count,
    clear_where_not,
    label_table,
    lloyd,
    merge_count,
    nearest_centre,
    nearest_merged,
)
from fortmap.detect.median_kernels import abs_diff_medians_u8, median3, to_bytes
from fortmap.detect.pixel_kernels import class_bit_counts
from fortmap.detect.road_corridors import (
    CORRIDOR_M,
    _not_wide,
    corridors,
    fill_small_holes,
    open_lines_packed,
)
from fortmap.detect.selection_kernels import abs_diff_medians

#: Colour classes of the surface clustering.
N_CLASSES = 16
#: Largest (max - min) / mean over RGB of a grey surface: asphalt and concrete are near flat
#: in the visible bands; water, vegetation and fresh soil are well above.
MAX_CHROMA = 0.2
#: Share of a colour class lying in corridors for it to be a road surface (a majority).
MIN_CORRIDOR_SHARE = 0.5


def road_mask(
    img: np.ndarray, valid: np.ndarray, pixel_m: float, seed: int = 0
) -> tuple[np.ndarray, dict]:
    """Road surface in an overview image (bool (rows, cols)) and what was measured.

    Args:
        img: float or uint8 (bands, rows, cols); the first three bands are taken as RGB, one
            band as grey.
        valid: bool (rows, cols).
        pixel_m: metres per pixel of ``img``.
        seed: seed of the k-means initialisation (results are deterministic).

    Returns:
        (mask, evidence) where evidence lists each colour class's mean, chroma, share of the
        image and share in corridors, and which classes were taken as road.
    """
    rgb = img[:3] if img.shape[0] >= 3 else img[:1]
    if rgb.dtype != np.uint8:
        b8 = np.empty(rgb.shape, np.uint8)
        if to_bytes(np.ascontiguousarray(rgb, np.float32), b8):
            rgb = b8
    # bytes (an overview of a byte image) are filtered and clustered as bytes: the same
    # values, a quarter of the memory traffic
    sm = np.empty(rgb.shape, np.uint8 if rgb.dtype == np.uint8 else np.float32)
    for i, b in enumerate(rgb):
        median3(np.ascontiguousarray(b, sm.dtype), sm[i])
    x = sm.reshape(len(sm), -1).T
    ok = valid.ravel()
    n_ok = int(np.count_nonzero(ok))
    if n_ok < N_CLASSES * 10:
        return np.zeros(valid.shape, bool), {"classes": [], "road_classes": []}
    rng = np.random.default_rng(seed)
    # choosing among n_ok draws the same positions as choosing among the valid indices, which
    # are only listed when some pixel is invalid
    pick = rng.choice(n_ok, min(n_ok, 50_000), replace=False)
    sub = x[pick if n_ok == ok.size else np.flatnonzero(ok)[pick]]
    cent = kmeans_pp(sub.astype(np.float64), N_CLASSES, seed)
    # k-means splits a large uniform surface into sub-classes that differ by noise only;
    # classes closer than 3 sigmas of the raw image's noise (robust, from neighbour
    # differences) are one surface
    med = abs_diff_medians_u8(rgb) if rgb.dtype == np.uint8 else abs_diff_medians(rgb)
    sigma = med / 0.6745 / math.sqrt(2)
    near = np.sqrt((((cent[:, None] - cent[None]) / np.maximum(sigma, 0.5)) ** 2).sum(-1)) < 3
    _, root = _components(near)
    # merged labels (-1 where invalid) and the pixels of each class
    c32 = np.ascontiguousarray(cent.astype(np.float32))
    if x.dtype == np.uint8:
        # bytes hold no NaN: the nearest centre, merged and counted, in one pass
        lab, counts = nearest_merged(x, c32, root, np.ascontiguousarray(ok))
        lab = lab.reshape(valid.shape)
    else:
        lab = _nearest(x, c32).reshape(valid.shape)
        lab, counts = merge_count(lab, root, np.ascontiguousarray(valid))
    cent = np.stack([cent[root == root[k]].mean(0) for k in range(N_CLASSES)])
    share = counts / lab.size
    chroma = (cent.max(1) - cent.min(1)) / np.maximum(cent.mean(1), 1e-6)
    test = [k for k in range(N_CLASSES) if share[k] > 0.002 and chroma[k] < MAX_CHROMA]
    cor = np.zeros(N_CLASSES)
    chosen = []
    if test:
        # filling one-pixel holes (cars, markings, noise) before the openings
        # the shares are measured at about 2 m a pixel: four times cheaper, and a 5 m street
        # is still two pixels across
        f = 2 if pixel_m < 1.5 else 1
        # one contiguous copy: the kernels below run over it seven times, and a strided view
        # keeps their loops from vectorising
        lab_s, valid_s, px_s = np.ascontiguousarray(lab[::f, ::f]), valid[::f, ::f], pixel_m * f
        # one bit per tested class (at most N_CLASSES, under 32): every class is closed and
        # opened in the same passes, in the narrowest word that holds them (a vector
        # instruction then works twice the pixels of the next wider one)
        word = np.uint8 if len(test) <= 8 else np.uint16 if len(test) <= 16 else np.uint32
        # indexed by label + 1: label -1 (invalid) is no class
        bit = np.zeros(N_CLASSES + 1, word)
        bit[np.asarray(test) + 1] = np.uint32(1) << np.arange(len(test), dtype=np.uint32)
        st = clear_where_not(close_cross(label_table(lab_s, bit), 1), valid_s)
        n = max(3, int(round(CORRIDOR_M / px_s)) | 1)
        long_ = open_lines_packed(st, n)
        # every tested class's pixels, and those of them in long runs, in one pass
        bitpos = np.full(N_CLASSES, -1, np.int64)
        bitpos[test] = np.arange(len(test))
        n_all, n_long = class_bit_counts(lab_s, long_, bitpos)
        for j, k in enumerate(test):
            if n_long[k] < MIN_CORRIDOR_SHARE * n_all[k]:
                cor[k] = n_long[k] / n_all[k]
                continue  # widening the test cannot raise the share
            # a tree crown or a car does not make a yard or an open field narrow
            narrow = _not_wide(fill_small_holes(bit_plane(st, j), px_s), px_s)
            cor[k] = class_bit_count(lab_s, k, long_, j, narrow) / n_all[k]
            if cor[k] >= MIN_CORRIDOR_SHARE:
                chosen.append(k)
    classes = [
        {
            "mean": [round(float(v), 1) for v in cent[k]],
            "chroma": round(float(chroma[k]), 3),
            "share": round(float(share[k]), 4),
            "corridor_share": round(float(cor[k]), 3),
        }
        for k in range(N_CLASSES)
    ]
    ev = {"classes": classes, "road_classes": chosen}
    if not chosen:
        return np.zeros(valid.shape, bool), ev
    # a lookup table is np.isin(lab, chosen) in one gather (label -1, invalid, is False)
    is_road = np.zeros(N_CLASSES + 1, np.uint8)
    is_road[np.asarray(chosen) + 1] = 1
    road = clear_where_not(close_cross(label_table(lab, is_road), 2), valid).view(bool)
    return corridors(road, pixel_m), ev


def _nearest(x: np.ndarray, c32: np.ndarray) -> np.ndarray:
    """Nearest centre of each row of ``x`` (int16), as numpy's argmin of float32 squares."""
    if x.dtype == np.uint8:
        return nearest_centre(x, np.ascontiguousarray(c32))
    # a transposed (bands, pixels) view is read as it is: a contiguous copy of a 4 Mpx
    # overview costs more than the search
    x = np.asarray(x, np.float32)
    if np.isnan(x).any():
        lab = np.empty(len(x), np.int16)
        for i in range(0, len(x), 250_000):
            d = ((x[i : i + 250_000, None, :] - c32[None]) ** 2).sum(-1)
            lab[i : i + 250_000] = d.argmin(1)
        return lab
    return nearest_centre(x, np.ascontiguousarray(c32))


def _components(adj: np.ndarray) -> tuple[int, np.ndarray]:
    """Connected components of a symmetric boolean adjacency matrix: (count, root per node)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    n, lab = connected_components(csr_matrix(adj), directed=False)
    # the smallest member stands for its component, so a class keeps its own index when alone
    first = {c: int(np.flatnonzero(lab == c)[0]) for c in range(n)}
    return n, np.array([first[c] for c in lab])


def kmeans_pp(data: np.ndarray, k: int, seed: int) -> np.ndarray:
    """``kmeans2(data, k, seed=seed, minit="++")[0]``, the same centres (float64 (k, bands)).

    scipy's k-means++ seeding measures every point against all centres chosen so far at each
    step; here each step measures against the newest centre only and keeps the running
    minimum (the same numbers: a minimum is exact), drawing from the same random stream
    (``seed=`` is a ``RandomState`` there). The iterations are scipy's, run by
    :func:`fortmap.detect.colour_class_kernels.lloyd` (the same sums in the same order).
    """
    rng = np.random.RandomState(seed)
    init = np.empty((k, data.shape[1]))
    d2 = None
    for i in range(k):
        if i == 0:
            idx = rng.randint(0, data.shape[0], dtype=np.int64)
        else:
            row = cdist(init[i - 1 : i], data, metric="sqeuclidean")[0]
            d2 = row if d2 is None else np.minimum(d2, row)
            idx = int(np.searchsorted((d2 / d2.sum()).cumsum(), rng.uniform()))
        init[i] = data[idx]
    if not np.isfinite(data).all():
        # scipy refuses these (ValueError): keep its answer
        return kmeans2(data, init, minit="matrix")[0]
    cent, empty = lloyd(np.ascontiguousarray(data, np.float64), init, 10)
    for _ in range(empty):
        # scipy's warning, once per iteration that left a class empty
        warnings.warn(
            "One of the clusters is empty. Re-run kmeans with a different initialization.",
            stacklevel=2,
        )
    return cent
