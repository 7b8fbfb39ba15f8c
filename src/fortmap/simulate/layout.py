"""The city plan: river, roads, blocks, buildings, trees, fields, airfield and named places.

Everything is vector geometry in *local metres*: x east and y north from the scene's
south-west corner, so the scene is the box (0, 0, size_m, size_m). ``scene.py`` translates to
the UTM CRS on writing. Major roads radiate from the core to the scene edges (so the network
is connected edge to core); minor streets follow a perturbed grid clipped to the built-up area.
Trees, fields and bare ground are laid by ``vegetation``; the small geometry helpers live in
``shapes``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import LineString, Point, Polygon, box
from shapely.geometry.base import BaseGeometry

from fortmap.simulate.shapes import _blob, _lines, _polys, _rot, _walk
from fortmap.simulate.vegetation import vegetation

#: Roof colours (linear reflectance RGB) and their probabilities: greys, beige, light, red, blue.
ROOF_PALETTE = np.array(
    [
        [0.50, 0.50, 0.49],
        [0.62, 0.57, 0.48],
        [0.74, 0.73, 0.70],
        [0.52, 0.30, 0.24],
        [0.32, 0.40, 0.52],
        [0.36, 0.36, 0.37],
    ],
    np.float32,
)
ROOF_P = np.array([0.33, 0.30, 0.15, 0.11, 0.05, 0.06])

#: Radius of the "Old City" core district as a fraction of the scene's side: inside the Ring
#: Boulevard (0.19-0.21 of the side), so the core's ways in are the avenues and streets that
#: cross the ring, not the ring itself.
CORE_RADIUS_FRACTION = 0.15


@dataclass
class City:
    """The before-date city. Lengths in metres, coordinates in local metres (see module doc).

    Buildings, roof details, trees and fields are parallel numpy arrays (shapely geometries
    in object arrays) so they can be rasterised and filtered without Python loops.
    """

    size_m: float
    core: tuple[float, float]
    city_poly: Polygon
    grid_angle: float
    river_line: LineString
    river_poly: BaseGeometry
    bank_poly: BaseGeometry
    river_width_m: float
    river_name: str
    roads: list[dict]
    plaza: Polygon
    b_geom: np.ndarray
    b_height: np.ndarray
    b_colour: np.ndarray
    d_geom: np.ndarray
    d_height: np.ndarray
    d_building: np.ndarray
    d_colour: np.ndarray
    t_x: np.ndarray
    t_y: np.ndarray
    t_r: np.ndarray
    t_h: np.ndarray
    f_geom: np.ndarray
    f_kind: np.ndarray
    f_angle: np.ndarray
    bare: list[BaseGeometry]
    runway: Polygon | None
    places: list[dict] = field(default_factory=list)
    core_radius_m: float = 0.0

    def road_polygons(self, cls: str | None = None, extra_m: float = 0.0) -> BaseGeometry:
        """Union of road surfaces (of one ``cls`` or all), widened by ``extra_m`` each side."""
        geoms = [
            r["geometry"].buffer(r["width_m"] / 2 + extra_m, quad_segs=4)
            for r in self.roads
            if cls is None or r["class"] == cls
        ]
        return shapely.union_all(geoms) if geoms else Polygon()


def _river(rng: np.random.Generator, S: float, core: np.ndarray) -> tuple[LineString, float]:
    axis = rng.uniform(0, np.pi)
    a = np.array([np.cos(axis), np.sin(axis)])
    n = np.array([-a[1], a[0]])
    off = rng.choice([-1, 1]) * rng.uniform(0.22, 0.36) * S
    s = np.linspace(-1.2 * S, 1.2 * S, 241)
    wl = rng.uniform(0.5, 0.9) * S
    mean = off + 0.05 * S * np.sin(2 * np.pi * s / wl + rng.uniform(0, 6.3))
    mean += 0.02 * S * np.sin(2 * np.pi * s / (wl / 2.7) + rng.uniform(0, 6.3))
    pts = core[None, :] + s[:, None] * a[None, :] + mean[:, None] * n[None, :]
    width = float(np.clip(0.03 * S, 18.0, 70.0) * rng.uniform(0.85, 1.15))
    return LineString(pts), width


def _buildings(
    rng: np.random.Generator, blocks: list[Polygon], angle: float, core: np.ndarray, r_city: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Footprints laid out on a per-block cell lattice in the street grid's frame.

    Returns footprints (object array), heights (m), and the oriented rectangles' centre,
    size and whether they are notched (for rooftop details).
    """
    c0 = (float(core[0]), float(core[1]))
    out_g, centre, size = [], [], []
    for blk in blocks:
        bl = Polygon(_rot(np.asarray(blk.exterior.coords), -angle, c0))
        inner = bl.buffer(-1.0)
        if inner.is_empty:
            continue
        u0, v0, u1, v1 = inner.bounds
        dist = Point(blk.representative_point()).distance(Point(c0)) / r_city
        cw, ch = rng.uniform(9, 24 if dist < 0.6 else 16, 2)
        ou, ov = rng.uniform(0, 1, 2)
        nu, nv = int((u1 - u0) // cw) + 1, int((v1 - v0) // ch) + 1
        uu, vv = np.meshgrid(u0 + (np.arange(nu) + ou) * cw, v0 + (np.arange(nv) + ov) * ch)
        uu, vv = uu.ravel(), vv.ravel()
        keep = rng.random(uu.size) > 0.03 + 0.22 * min(dist, 1.0)
        uu, vv = uu[keep], vv[keep]
        m = rng.uniform(0.4, 2.0, (uu.size, 4))
        lo_u, hi_u = uu - cw / 2 + m[:, 0], uu + cw / 2 - m[:, 1]
        lo_v, hi_v = vv - ch / 2 + m[:, 2], vv + ch / 2 - m[:, 3]
        ok = (hi_u - lo_u > 5) & (hi_v - lo_v > 5)
        lo_u, hi_u, lo_v, hi_v = lo_u[ok], hi_u[ok], lo_v[ok], hi_v[ok]
        if lo_u.size == 0:
            continue
        rects = shapely.box(lo_u, lo_v, hi_u, hi_v)
        # Buildings front onto the street: cells cut by the block edge are clipped to it.
        clipped = shapely.intersection(rects, inner)
        area = shapely.area(clipped)
        good = (
            (area > 0.6 * shapely.area(rects)) & (area > 30) & (shapely.get_type_id(clipped) == 3)
        )
        out_g.append(clipped[good])
        centre.append(np.c_[(lo_u + hi_u) / 2, (lo_v + hi_v) / 2][good])
        size.append(np.c_[hi_u - lo_u, hi_v - lo_v][good])
    if not out_g:
        empty = np.empty((0, 2))
        return np.empty(0, object), np.empty(0, np.float32), empty, empty, np.empty(0, bool)
    geoms = np.concatenate(out_g)
    centre_g, size_g = np.concatenate(centre), np.concatenate(size)
    # Notch a corner off some larger footprints (L-shapes); rectangles stay the majority.
    notch = (
        (rng.random(geoms.size) < 0.2)
        & (size_g.min(1) > 12)
        & (shapely.get_num_coordinates(geoms) == 5)
    )
    for i in np.flatnonzero(notch):
        x0, y0, x1, y1 = geoms[i].bounds
        nw, nh = rng.uniform(0.3, 0.5, 2) * (x1 - x0, y1 - y0)
        geoms[i] = Polygon(
            [(x0, y0), (x1, y0), (x1, y1 - nh), (x1 - nw, y1 - nh), (x1 - nw, y1), (x0, y1)]
        )
    geoms = shapely.transform(geoms, lambda xy: _rot(xy, angle, c0))
    world_c = _rot(centre_g, angle, c0)
    r = np.hypot(*(world_c - core).T) / r_city
    floors = 1 + rng.poisson(np.clip(0.6 + 5.5 * (1 - np.clip(r, 0, 1)) ** 2, 0.1, None))
    tower = (r < 0.35) & (rng.random(r.size) < 0.05)
    floors = np.where(tower, rng.integers(7, 10, r.size), floors)
    heights = np.clip(floors * 3.1 + rng.uniform(0.0, 1.0, r.size), 3.0, 30.0).astype(np.float32)
    return geoms, heights, world_c, size_g, notch


def plan_city(rng: np.random.Generator, size_m: float) -> City:
    """Lay out a city in a ``size_m`` x ``size_m`` metre square (local metres)."""
    S = float(size_m)
    scene = box(0, 0, S, S)
    core = np.array([S / 2, S / 2]) + rng.uniform(-0.08, 0.08, 2) * S
    c0 = (float(core[0]), float(core[1]))
    r_city = 0.40 * S
    th = np.linspace(0, 2 * np.pi, 73)[:-1]
    rr = r_city * (
        1 + sum(rng.uniform(0.03, 0.1) * np.sin(k * th + rng.uniform(0, 6.3)) for k in (2, 3, 5))
    )
    city_poly = Polygon(np.c_[core[0] + rr * np.cos(th), core[1] + rr * np.sin(th)]).intersection(
        scene
    )

    river_line, rw = _river(rng, S, core)
    river_poly = river_line.buffer(rw / 2, quad_segs=8).intersection(scene)
    bank_w = rng.uniform(5, 10)
    bank_poly = (
        river_line.buffer(rw / 2 + bank_w, quad_segs=8).intersection(scene).difference(river_poly)
    )
    corridor = river_line.buffer(rw / 2 + bank_w + 2.0)

    roads: list[dict] = []
    n_rad = int(rng.integers(5, 8)) if S >= 1000 else int(rng.integers(3, 5))
    base = rng.uniform(0, 2 * np.pi)
    for k in range(n_rad):
        heading = base + 2 * np.pi * k / n_rad + rng.normal(0, 0.15)
        step = max(S / 50, 8.0)
        line = _walk(rng, core, heading, step, int(1.6 * S / step)).intersection(scene)
        for part in _lines(line):
            roads.append(
                {
                    "geometry": part,
                    "class": "major",
                    "name": f"Avenue {k + 1}",
                    "width_m": round(float(rng.uniform(12, 18)), 1),
                }
            )
    ring_r = 0.5 * r_city * (1 + 0.06 * np.sin(3 * th + rng.uniform(0, 6.3)))
    ring = LineString(
        np.r_[
            np.c_[core[0] + ring_r * np.cos(th), core[1] + ring_r * np.sin(th)],
            [[core[0] + ring_r[0], core[1]]],
        ]
    )
    for part in _lines(ring.intersection(scene)):
        roads.append(
            {"geometry": part, "class": "major", "name": "Ring Boulevard", "width_m": 20.0}
        )

    # Minor streets: a jittered lattice in a rotated frame, some segments dropped.
    angle = float(rng.uniform(0, np.pi / 2))
    R = 1.3 * r_city
    us = np.cumsum(np.r_[-R, rng.uniform(60, 110, int(2 * R / 60) + 2)])
    vs = np.cumsum(np.r_[-R, rng.uniform(60, 110, int(2 * R / 60) + 2)])
    uu, vv = np.meshgrid(us[us <= R], vs[vs <= R], indexing="ij")
    uu = uu + rng.normal(0, 6, uu.shape) + core[0]
    vv = vv + rng.normal(0, 6, vv.shape) + core[1]
    nodes = _rot(np.c_[uu.ravel(), vv.ravel()], angle, c0).reshape(uu.shape + (2,))
    minor_zone = city_poly.difference(corridor)
    n_street = 0
    for lines in (nodes, nodes.transpose(1, 0, 2)):
        for row in lines:
            kept = rng.random(len(row) - 1) > 0.12
            run: list[np.ndarray] = [row[0]]
            for i in range(len(row) - 1):
                if kept[i]:
                    run.append(row[i + 1])
                if (not kept[i] or i == len(row) - 2) and len(run) > 1:
                    n_street += 1
                    width = round(float(rng.uniform(5, 8)), 1)
                    for part in _lines(LineString(run).intersection(minor_zone)):
                        roads.append(
                            {
                                "geometry": part,
                                "class": "minor",
                                "name": f"Street {n_street}",
                                "width_m": width,
                            }
                        )
                if not kept[i]:
                    run = [row[i + 1]]

    plaza = _blob(rng, *c0, rng.uniform(28, 40), 24)
    tmp = City.__new__(City)
    tmp.roads = roads
    road_all = tmp.road_polygons(extra_m=1.5)
    urban = city_poly.difference(road_all).difference(corridor).difference(plaza)
    blocks = [p for p in _polys(urban) if p.area > 150]
    b_geom, b_height, b_centre, b_size, _ = _buildings(rng, blocks, angle, core, r_city)
    n_b = b_geom.size
    choice = rng.choice(len(ROOF_PALETTE), n_b, p=ROOF_P)
    b_colour = np.clip(ROOF_PALETTE[choice] * rng.uniform(0.88, 1.12, (n_b, 1)), 0, 1).astype(
        np.float32
    )

    # Rooftop details: tanks, stair boxes, AC units, on footprints larger than 8 m.
    n_det = np.where(b_size.min(1) > 8, rng.integers(0, 4, n_b), 0) if n_b else np.zeros(0, int)
    d_b = np.repeat(np.arange(n_b), n_det)
    dsz = rng.uniform(1.0, 3.0, (d_b.size, 2))
    room = np.maximum(b_size[d_b] / 2 - dsz / 2 - 1.0, 0.0)
    duv = _rot(b_centre[d_b], -angle, c0) + rng.uniform(-1, 1, (d_b.size, 2)) * room
    d_geom = (
        shapely.transform(
            shapely.box(*(duv - dsz / 2).T, *(duv + dsz / 2).T), lambda xy: _rot(xy, angle, c0)
        )
        if d_b.size
        else np.empty(0, object)
    )
    d_height = rng.uniform(0.8, 2.5, d_b.size).astype(np.float32)
    d_colour = np.clip(b_colour[d_b] * rng.uniform(0.7, 1.35, (d_b.size, 1)), 0, 1).astype(
        np.float32
    )

    # Airfield in the open country, clear of town and river; at most one avenue ends at it.
    runway = None
    avoid = shapely.union_all([city_poly.buffer(60), corridor.buffer(20)])
    majors = [r for r in roads if r["class"] == "major"]
    if S >= 1000:
        length = min(0.45 * S, 1500.0)
        for attempt in range(1000):
            if attempt and attempt % 200 == 0:
                length *= 0.8
            c = rng.uniform(0.1 * S, 0.9 * S, 2)
            a = rng.uniform(0, np.pi)
            d = np.array([np.cos(a), np.sin(a)]) * length / 2
            cand = LineString([c - d, c + d]).buffer(22.0, cap_style="flat")
            if not cand.within(scene.buffer(-15)) or cand.intersects(avoid):
                continue
            cut = [r for r in majors if r["geometry"].distance(cand) < 25]
            if len(cut) <= 1:
                runway = cand
                for r in cut:
                    parts = _lines(r["geometry"].difference(cand.buffer(25)))
                    r["geometry"] = min(parts, key=lambda g: g.distance(Point(c0)))
                    r["name"] = "Airport Road"
                break

    # Trees: riverside groves, rural scatter, orchards, courtyards, boulevard medians.
    obstacles = (
        list(b_geom)
        + [road_all, river_poly, bank_poly, plaza]
        + ([runway] if runway is not None else [])
    )
    veg = vegetation(
        rng, S, c0, angle, city_poly, river_line, rw, bank_w, corridor, obstacles,
        tmp.road_polygons(extra_m=4.0), runway, ring,
    )  # fmt: skip
    places = _places(rng, S, core, city_poly, river_line, rw, runway, roads)
    return City(
        size_m=S, core=c0, city_poly=city_poly, grid_angle=angle, river_line=river_line.intersection(scene),
        river_poly=river_poly, bank_poly=bank_poly, river_width_m=rw, river_name="Azra River", roads=roads,
        plaza=plaza, b_geom=b_geom, b_height=b_height, b_colour=b_colour, d_geom=d_geom, d_height=d_height,
        d_building=d_b, d_colour=d_colour, **veg, runway=runway, places=places, core_radius_m=CORE_RADIUS_FRACTION * S,
    )  # fmt: skip


def _places(
    rng: np.random.Generator, S: float, core: np.ndarray, city_poly: Polygon,
    river: LineString, width_m: float, runway: Polygon | None, roads: list[dict],
) -> list[dict]:  # fmt: skip
    scene = box(0, 0, S, S)
    inside = river.intersection(scene)
    places = [
        {
            "name": "Old City",
            "kind": "district",
            "geometry": Point(core),
            "radius_m": round(CORE_RADIUS_FRACTION * S, 1),
        },
        {"name": "Central Square", "kind": "square", "geometry": Point(core + 1.0)},
        # The river as its centreline, not a point: captions say which bank a finding is on,
        # and that needs the river's local direction. Users give real rivers the same way.
        {"name": "Azra River", "kind": "river", "geometry": inside, "width_m": round(width_m, 1)},
    ]
    for name, ang in (
        ("North Quarter", 90),
        ("East Gardens", 0),
        ("South Market", 270),
        ("West End", 180),
    ):
        p = Point(
            core + 0.65 * 0.4 * S * np.array([np.cos(np.radians(ang)), np.sin(np.radians(ang))])
        )
        if city_poly.contains(p):
            places.append({"name": name, "kind": "district", "geometry": p})
    if runway is not None:
        places.append({"name": "Kelmar Airfield", "kind": "airport", "geometry": runway.centroid})
    else:
        # No room for a runway: the airfield lies just beyond the scene edge farthest from town.
        corners = np.array([[0, 0], [S, 0], [0, S], [S, S]], float)
        far = corners[np.argmax(np.hypot(*(corners - core).T))]
        places.append(
            {
                "name": "Kelmar Airfield",
                "kind": "airport",
                "geometry": Point(0.95 * far + 0.05 * core),
            }
        )
    n_bridge = 0
    for r in roads:
        if r["class"] == "major":
            x = r["geometry"].intersection(river)
            for p in getattr(x, "geoms", [x]):
                if isinstance(p, Point):
                    n_bridge += 1
                    places.append({"name": f"Bridge {n_bridge}", "kind": "bridge", "geometry": p})
    return places


__all__ = ["CORE_RADIUS_FRACTION", "City", "plan_city"]
