"""Trees, fields and bare ground of the simulated city: riverside groves, rural scatter,
orchards, courtyard trees, boulevard rows, a rotated lattice of field parcels over the open
country, and bare patches. Local metres (see ``layout``).
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import LineString, Polygon, box
from shapely.geometry.base import BaseGeometry

from fortmap.simulate.shapes import _blob, _polys, _rot

#: Field kinds: 0 green crop, 1 ripe (yellow), 2 ploughed (brown).
FIELD_KINDS = 3


def vegetation(
    rng: np.random.Generator, S: float, c0: tuple[float, float], angle: float,
    city_poly: Polygon, river_line: LineString, rw: float, bank_w: float,
    corridor: BaseGeometry, obstacles: list, road_wide: BaseGeometry, runway: Polygon | None,
    median: LineString | None,
) -> dict:  # fmt: skip
    """Trees (riverside, rural, urban, orchards, ``median`` boulevard rows), fields and bare
    patches in a ``S`` metre scene (local metres); returns :class:`~fortmap.simulate.layout.City`
    keyword arguments.

    ``obstacles`` are the geometries trees keep off; ``road_wide`` the road surfaces plus a
    verge, kept clear of fields.
    """
    scene = box(0, 0, S, S)
    pts = []
    band = river_line.buffer(rw / 2 + bank_w + 35).difference(river_line.buffer(rw / 2 + bank_w))
    for geom, n in (
        (band, int(band.area / 60)),
        (scene.difference(city_poly), int(S * S / 3000)),
        (city_poly, int(city_poly.area / 500)),
    ):
        x = rng.uniform(0, S, n)
        y = rng.uniform(0, S, n)
        ins = shapely.contains_xy(geom, x, y)
        pts.append(np.c_[x[ins], y[ins]])
    med = (
        [median.interpolate(d) for d in np.arange(0, median.length, 9.0)]
        if median is not None
        else []
    )
    pts.append(np.array([[p.x, p.y] for p in med]).reshape(-1, 2))
    xy = np.concatenate(pts)
    r_t = rng.uniform(1.5, 4.5, len(xy))
    on_median = np.zeros(len(xy), bool)
    on_median[len(xy) - len(med) :] = True
    r_t[on_median] = rng.uniform(1.5, 2.3, on_median.sum())

    # Fields: a rotated lattice of parcels over the open country.
    fa = angle + rng.uniform(-0.3, 0.3)
    rural = scene.difference(city_poly.buffer(25)).difference(corridor.buffer(15))
    rural = rural.difference(road_wide)
    if runway is not None:
        rural = rural.difference(runway.buffer(30))
    fu = np.cumsum(np.r_[-S, rng.uniform(60, 170, int(2 * S / 60) + 2)])
    fv = np.cumsum(np.r_[-S, rng.uniform(80, 220, int(2 * S / 80) + 2)])
    fu, fv = fu[fu < S], fv[fv < S]
    gu, gv = np.meshgrid(fu[:-1], fv[:-1], indexing="ij")
    du, dv = np.meshgrid(np.diff(fu), np.diff(fv), indexing="ij")
    cells = shapely.box(
        gu.ravel() + 2 + c0[0],
        gv.ravel() + 2 + c0[1],
        (gu + du).ravel() - 2 + c0[0],
        (gv + dv).ravel() - 2 + c0[1],
    )
    cells = shapely.transform(cells, lambda p: _rot(p, fa, c0))
    cells = cells[shapely.intersects(cells, rural)]
    pieces = shapely.intersection(cells, rural)
    f_geom = np.array([p for g in pieces for p in _polys(g) if p.area > 1500], dtype=object)
    kind = rng.integers(0, FIELD_KINDS + 1, f_geom.size)  # the extra kind = orchard
    orch = f_geom[kind == FIELD_KINDS]
    for g in orch:
        x0, y0, x1, y1 = g.bounds
        sp = rng.uniform(5.5, 7.5)
        gx, gy = np.meshgrid(np.arange(x0, x1, sp), np.arange(y0, y1, sp))
        o = _rot(np.c_[gx.ravel(), gy.ravel()], fa, (float(gx.mean()), float(gy.mean())))
        o = o[shapely.contains_xy(g.buffer(-2), o[:, 0], o[:, 1])]
        xy = np.r_[xy, o + rng.normal(0, 0.3, o.shape)]
        r_t = np.r_[r_t, rng.uniform(1.6, 2.4, len(o))]
        on_median = np.r_[on_median, np.zeros(len(o), bool)]
    f_geom, kind = f_geom[kind < FIELD_KINDS], kind[kind < FIELD_KINDS]
    circles = shapely.buffer(shapely.points(xy), r_t, quad_segs=4)
    hits = shapely.STRtree(np.asarray(obstacles, dtype=object)).query(
        circles, predicate="intersects"
    )
    ok = np.ones(len(xy), bool)
    ok[hits[0]] = False
    ok |= on_median
    t_x, t_y, t_r = xy[ok, 0], xy[ok, 1], r_t[ok]
    t_h = (t_r * rng.uniform(1.6, 2.6, t_r.size) + 1.0).astype(np.float32)

    bare = [
        _blob(rng, *rng.uniform(0, S, 2), rng.uniform(20, 60))
        for _ in range(max(2, int(12 * (S / 2000) ** 2)))
    ]
    f_angle = np.full(f_geom.size, fa) + rng.choice([0, np.pi / 2], f_geom.size)
    return dict(
        t_x=t_x, t_y=t_y, t_r=t_r.astype(np.float32), t_h=t_h, f_geom=f_geom, f_kind=kind,
        f_angle=f_angle, bare=bare,
    )  # fmt: skip
