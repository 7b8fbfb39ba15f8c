"""Past a block row's ends: whether its new brightness carries on off the road.

Blocks stand on the carriageway and the ground beyond a row's ends does not change; a band
of sunlight between two buildings' shadows brightens the road and the ground on either side
alike. ``past_ends`` gives the points past each end of a row, ``off_road_change`` how
strongly the row's change carries on there. Pixel coordinates are the window's (x = column,
y = row); lengths are in pixels unless named ``_m``.
"""

from __future__ import annotations

import numpy as np

from fortmap.detect.barricade_rows import ALONG_REF_M
from fortmap.detect.change_stats import median_np
from fortmap.detect.roadmask import own_axes
from fortmap.detect.row_stats import nanmedian_rows


def past_ends(rr: np.ndarray, cc: np.ndarray, gsd: float) -> tuple[list[np.ndarray], np.ndarray]:
    """Points 1-3 m past each end of a row along its own long axis, across its middle half.

    Args:
        rr, cc: the row's pixels (window rows and columns).
        gsd: metres per pixel.

    Returns:
        One (n, 2) float array of (x, y) window-pixel points per end, and the unit vector
        across the row (x, y).
    """
    phi, length, thick = own_axes(rr, cc)
    u = np.array([np.cos(phi), np.sin(phi)])
    v = np.array([-u[1], u[0]])
    c = np.array([cc.mean() + 0.5, rr.mean() + 0.5])
    t = np.arange(1.0, 3.01, 0.5) / gsd
    w = np.arange(-thick / 4, thick / 4 + 0.01, 1.0)
    ends = [
        (c + sgn * (length / 2 + t[:, None, None]) * u + w[None, :, None] * v).reshape(-1, 2)
        for sgn in (-1, 1)
    ]
    return ends, v


def off_road_change(
    ga: np.ndarray,
    gb: np.ndarray,
    ok: np.ndarray,
    rr: np.ndarray,
    cc: np.ndarray,
    gsd: float,
    sigma: float,
) -> float:
    """How strongly a row's new brightness carries on past its ends, off the road.

    Blocks stand on the carriageway, and the ground beyond a row's ends (kerb, pavement) does
    not change; a band of sunlight let through between two buildings' shadows brightens the
    road *and* the ground on either side of it. The row's long axis is followed 1-3 m past
    each end, over pixels off the road, and each point is measured as the row itself is: as a
    new ridge against the ground 2.5-4 m on either side of it across the row (the brighter
    side, after less before), so that ground simply leaving a moved shadow there does not
    count. The weaker end's median is returned.

    Args:
        ga, gb: after and before grey levels, box-smoothed over valid pixels (rows, cols).
        ok: bool (rows, cols): valid pixels off the road mask.
        rr, cc: the row's pixels.
        gsd: metres per pixel.
        sigma: the contrast noise (grey levels) to scale by.

    Returns:
        The smaller of the two ends' medians (sigma); 0 where an end has no pixel to look at.
    """
    ends_pts, v = past_ends(rr, cc, gsd)
    h, wd = ga.shape
    ends = []
    for pts in ends_pts:
        x = np.floor(pts[:, 0]).astype(int)
        y = np.floor(pts[:, 1]).astype(int)
        inside = (x >= 0) & (x < wd) & (y >= 0) & (y < h)
        inside[inside] &= ok[y[inside], x[inside]]
        if inside.sum() < 3:
            return 0.0
        pts = pts[inside]
        ridge = []
        for g in (ga, gb):
            best = np.full(len(pts), -np.inf)
            for side in (-1, 1):
                q = pts[:, None, :] + side * np.asarray(ALONG_REF_M)[None, :, None] / gsd * v
                qx = np.clip(np.floor(q[..., 0]).astype(int), 0, wd - 1)
                qy = np.clip(np.floor(q[..., 1]).astype(int), 0, h - 1)
                # np.nanmedian's values, without its masked-array path
                best = np.fmax(best, nanmedian_rows(g[qy, qx]))
            x0, y0 = np.floor(pts[:, 0]).astype(int), np.floor(pts[:, 1]).astype(int)
            ridge.append(g[y0, x0] - best)
        r = np.minimum(ridge[0], ridge[0] - ridge[1]) / sigma
        r = r[np.isfinite(r)]
        if r.size < 3:
            return 0.0
        ends.append(float(median_np(r)))
    return min(ends)
