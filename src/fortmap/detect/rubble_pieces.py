"""Candidate piles of the rubble detector: labelled components of new material on a road,
joined when they lie close on one road, and framed by their road (along and across offsets,
pixels) only when a candidate reaches the tests that need the frame."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from fortmap.detect import fort_kernels as K
from fortmap.detect.barricade_rows import Piece, axis_mean, road_components
from fortmap.detect.roadmask import RoadRaster


def disk(diameter_px: float) -> np.ndarray:
    """Bool disk about ``diameter_px`` pixels across (odd side, 3 at least), centred."""
    k = max(3, int(round(diameter_px)) | 1)
    return np.hypot(*np.mgrid[-(k // 2) : k // 2 + 1, -(k // 2) : k // 2 + 1]) <= k / 2


@dataclass
class Component:
    """A labelled component (or merged group of them) before it is framed: its pixels
    (rows, cols), its road index (0-based) and how to frame it (``frame``). Most
    candidates fail the area test, which needs no frame, so framing waits for the others."""

    rows: np.ndarray
    cols: np.ndarray
    road: int
    rid: np.ndarray | None = None  # road id per pixel (a single component only)
    parts: list[Component] = field(default_factory=list)  # a merged group's components


def pieces(
    lab: np.ndarray,
    n: int,
    roads: RoadRaster,
    pixels: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[Component]:
    """Each labelled component whole, with the road most of it lies on; ``pixels``: the
    labels' pixels when known (``barricade_rows.hysteresis_pixels``)."""
    return [
        Component(rr, cc, int(counts.argmax()) - 1, rid)
        for rr, cc, rid, counts in road_components(lab, roads, n, pixels)
    ]


def frame(c: Component, roads: RoadRaster) -> Piece:
    """A component measured in the frame of its road (a merged group: of its largest part's).

    Unlike a block row, which is framed by the road it crosses, a pile lies along its road
    and may spill into a junction: its pixels on the crossing road stay part of it.
    """
    if c.parts:
        ps = [frame(q, roads) for q in c.parts]
        rr, cc = c.rows, c.cols
        # one road, one frame: the largest piece's axis
        theta = max(ps, key=lambda p: p.rows.size).theta
        along = (cc + 0.5) * np.cos(theta) + (rr + 0.5) * np.sin(theta)
        across = np.concatenate([p.across for p in ps])
        return Piece(rr, cc, c.road, theta, along, across, ps[0].width_px)
    rr, cc, rid, road = c.rows, c.cols, c.rid, c.road + 1
    theta = axis_mean(roads.axis[rr, cc][rid == road].astype(float))
    along = (cc + 0.5) * np.cos(theta) + (rr + 0.5) * np.sin(theta)
    across = (cc + 0.5) * -np.sin(theta) + (rr + 0.5) * np.cos(theta)
    # across offsets in the pile's own road frame, centred on that road's axis
    own = rid == road
    ra = roads.across[rr, cc][own]
    if own.sum() >= 2 and np.corrcoef(across[own], ra)[0, 1] < 0:
        across = -across
    across = across - float(np.median(across[own] - ra))
    across[own] = ra
    return Piece(rr, cc, road - 1, theta, along, across, roads.widths_px[road - 1])


def merge(ps: list[Component], shape: tuple[int, int], gap_px: float) -> list[Component]:
    """Join pieces on the same road whose pixels come within ``gap_px`` of each other."""
    if len(ps) < 2:
        return ps
    se = disk(gap_px)
    pad = se.shape[0] // 2 + 1
    h, w = shape
    # Each piece's bounding box grown by the disk's radius plus one: pieces whose boxes do not
    # overlap cannot meet (their dilations stay two pixels apart at least), so the dilation
    # and its components are computed per cluster of overlapping boxes, over the cluster's
    # box: the same grouping as over all the pieces' box, on a fraction of its pixels.
    box = np.array(
        [
            (
                max(int(p.rows.min()) - pad, 0),
                max(int(p.cols.min()) - pad, 0),
                min(int(p.rows.max()) + pad + 1, h),
                min(int(p.cols.max()) + pad + 1, w),
            )
            for p in ps
        ]
    )
    hit = (
        (box[:, None, 0] < box[None, :, 2])
        & (box[None, :, 0] < box[:, None, 2])
        & (box[:, None, 1] < box[None, :, 3])
        & (box[None, :, 1] < box[:, None, 3])
    )
    # clusters of overlapping boxes (union-find: the root is the cluster's first piece)
    cluster = list(range(len(ps)))

    def root(i: int) -> int:
        while cluster[i] != i:
            i = cluster[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(hit, 1)), strict=True):
        a, b = root(int(i)), root(int(j))
        cluster[max(a, b)] = min(a, b)
    cluster = [root(i) for i in range(len(ps))]
    label = np.zeros(len(ps), np.intp)
    for k in set(cluster):
        idx = [i for i in range(len(ps)) if cluster[i] == k]
        if len(idx) == 1:
            continue  # a piece alone in its box is a group of its own
        r0, c0 = box[idx, 0].min(), box[idx, 1].min()
        r1, c1 = box[idx, 2].max(), box[idx, 3].max()
        m = np.zeros((r1 - r0, c1 - c0), bool)
        for i in idx:
            m[ps[i].rows - r0, ps[i].cols - c0] = True
        lab, _ = ndi.label(K.dilate(m, se), np.ones((3, 3), bool))
        for i in idx:
            # a piece is connected, and so is its dilation: all its pixels share a label
            label[i] = lab[ps[i].rows[0] - r0, ps[i].cols[0] - c0]
    groups: dict[tuple[int, int, int], list[Component]] = {}
    for i, p in enumerate(ps):
        groups.setdefault((int(cluster[i]), int(label[i]), p.road), []).append(p)
    out = []
    for g in groups.values():
        if len(g) == 1:
            out.append(g[0])
            continue
        rr = np.concatenate([p.rows for p in g])
        cc = np.concatenate([p.cols for p in g])
        out.append(Component(rr, cc, g[0].road, parts=g))
    return out
