"""What happened between the dates: razed buildings, cleared land, barricades, berms, rubble.

``plan_changes`` chooses them as exact vector geometry (the truth), ``apply_changes`` burns
them into a copy of the before surface. Clearing and razing concentrate on one side of town
(the edge that gets cleared), as in real demolition campaigns; barricades sit on avenues
leading into the core and at crossings; berms run around the edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import LineString, Point, Polygon

from fortmap.simulate import raster as R
from fortmap.simulate.layout import City
from fortmap.simulate.noise import Textures
from fortmap.simulate.shapes import _polys

BLOCK_HEIGHT_M = 1.5


@dataclass
class Changes:
    """The truth, in local metres. Buildings are 0-based indexes into ``City.b_geom``."""

    razed: np.ndarray
    cleared: list[Polygon]
    trees_removed: np.ndarray
    barricades: list[dict] = field(default_factory=list)
    berms: list[dict] = field(default_factory=list)
    rubble: list[dict] = field(default_factory=list)
    clear_direction_deg: float = 0.0


def _frame(line: LineString, d: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point, unit tangent and unit normal of ``line`` at distance ``d`` (metres) along it."""
    a = np.asarray(line.interpolate(max(d - 1.0, 0.0)).coords[0])
    b = np.asarray(line.interpolate(min(d + 1.0, line.length)).coords[0])
    t = (b - a) / max(np.hypot(*(b - a)), 1e-9)
    return np.asarray(line.interpolate(d).coords[0]), t, np.array([-t[1], t[0]])


def _to_world(p: np.ndarray, t: np.ndarray, n: np.ndarray, sq: np.ndarray) -> np.ndarray:
    return p[None, :] + sq[:, :1] * t[None, :] + sq[:, 1:] * n[None, :]


def _edge_point(city: City, ang: float, frac: float = 1.0) -> np.ndarray:
    c = np.asarray(city.core)
    ray = LineString([c, c + 2 * city.size_m * np.array([np.cos(ang), np.sin(ang)])])
    hit = ray.intersection(city.city_poly.exterior)
    pts = [np.asarray(g.coords[0]) for g in getattr(hit, "geoms", [hit]) if not g.is_empty]
    edge = min(pts, key=lambda q: np.hypot(*(q - c))) if pts else c
    return c + frac * (edge - c)


def plan_changes(rng: np.random.Generator, city: City) -> Changes:
    """Choose the changes for ``city`` (counts scale with the scene's side, with minimums)."""
    S = city.size_m
    lin = S / 2000.0
    c = np.asarray(city.core)
    theta = float(rng.uniform(0, 2 * np.pi))
    majors = [r for r in city.roads if r["class"] == "major"]
    major_poly = city.road_polygons("major", extra_m=3.0)
    corridor = city.river_line.buffer(city.river_width_m / 2 + 15)
    keepout = shapely.union_all(
        [major_poly, corridor] + ([city.runway] if city.runway is not None else [])
    )
    b_tree = shapely.STRtree(city.b_geom)
    discs = shapely.buffer(shapely.points(np.c_[city.t_x, city.t_y]), city.t_r, quad_segs=4)
    t_tree = shapely.STRtree(discs)

    # Cleared swaths straddling the city edge on the cleared side.
    cleared: list[Polygon] = []
    razed_set: set[int] = set()
    trees_removed = np.zeros(city.t_x.size, bool)
    n_clear = int(rng.integers(1, 4)) if S >= 1000 else 1
    for _ in range(n_clear):
        for _attempt in range(60):
            area = rng.uniform(2e4, 15e4) * min(1.0, lin * lin * 2.5)
            aspect = rng.uniform(1.2, 2.5)
            ang = theta + rng.normal(0, 0.45)
            p = _edge_point(city, ang, rng.uniform(0.85, 1.1))
            a, b = np.sqrt(area * aspect), np.sqrt(area / aspect)
            sq = (
                np.array(
                    [
                        [-a, -b],
                        [0, -b * 1.05],
                        [a, -b],
                        [a * 1.04, 0],
                        [a, b],
                        [0, b * 0.95],
                        [-a, b],
                        [-a * 0.96, 0],
                    ]
                )
                / 2
            )
            sq += rng.normal(0, 0.04 * b, sq.shape)
            n = np.array([np.cos(ang), np.sin(ang)])
            cand = Polygon(_to_world(p, np.array([-n[1], n[0]]), n, sq))
            inside = cand.intersection(_scene_box(S).buffer(-5))
            if (
                inside.area < 0.7 * cand.area
                or inside.intersects(keepout)
                or any(inside.intersects(g) for g in cleared)
            ):
                continue
            hit_b = b_tree.query(inside, predicate="intersects")
            hit_t = t_tree.query(inside, predicate="intersects")
            razed_set.update(int(i) for i in hit_b)
            trees_removed[hit_t] = True
            poly = shapely.union_all([inside, *city.b_geom[hit_b], *discs[hit_t]])
            cleared.append(max(_polys(poly), key=lambda g: g.area))
            break

    # Razed buildings: 6-10 % of all, most on the cleared side near the edge, some anywhere.
    n_b = city.b_geom.size
    target = int(round(rng.uniform(0.06, 0.10) * n_b))
    rest = np.array([i for i in range(n_b) if i not in razed_set], int)
    k = max(target - len(razed_set), min(1, rest.size))
    if rest.size and k > 0:
        cen = shapely.get_coordinates(shapely.centroid(city.b_geom[rest]))
        phi = np.arctan2(cen[:, 1] - c[1], cen[:, 0] - c[0])
        rr = np.hypot(*(cen - c).T) / (0.4 * S)
        w = np.exp(3.0 * np.cos(phi - theta)) * np.clip(rr, 0.05, 1.5) ** 2
        k_side = min(int(round(0.75 * k)), rest.size)
        side = rng.choice(rest, k_side, replace=False, p=w / w.sum())
        left = np.setdiff1d(rest, side)
        scat = rng.choice(left, min(k - k_side, left.size), replace=False) if left.size else []
        razed_set.update(int(i) for i in side)
        razed_set.update(int(i) for i in scat)
    razed = np.array(sorted(razed_set), int)
    cleared_u = shapely.union_all(cleared) if cleared else Polygon()
    busy = [corridor, cleared_u]

    barricades = _barricades(rng, city, majors, busy, max(2, int(round(rng.uniform(10, 15) * lin))))
    busy += [b["geometry"].buffer(15) for b in barricades]
    berms = _berms(rng, city, busy, max(1, int(round(rng.integers(2, 5) * min(1.0, lin * 1.5)))))
    busy += [b["geometry"].buffer(b["width_m"] / 2 + 5) for b in berms]
    rubble = _rubble(rng, city, busy, max(2, int(round(rng.uniform(6, 10) * lin))))
    return Changes(
        razed, cleared, trees_removed, barricades, berms, rubble, float(np.degrees(theta)) % 360
    )


def _scene_box(S: float) -> Polygon:
    return shapely.box(0, 0, S, S)


def _barricades(
    rng: np.random.Generator, city: City, majors: list[dict], busy: list, n: int
) -> list[dict]:
    """Rows of ~1.5 m concrete blocks across roads, mostly avenues near crossings."""
    sites: list[tuple[dict, float]] = []
    others = [r for r in city.roads if r["class"] == "minor"] + majors
    # Only roads that touch can cross; the tree keeps the loop order (and so the draws) as is.
    tree = shapely.STRtree([o["geometry"] for o in others])
    for r in majors:
        line = r["geometry"]
        for oi in np.sort(tree.query(line, predicate="intersects")):
            o = others[oi]
            if o is r:
                continue
            x = line.intersection(o["geometry"])
            for p in getattr(x, "geoms", [x]):
                if isinstance(p, Point) and city.city_poly.contains(p):
                    off = (r["width_m"] / 2 + o["width_m"] / 2 + rng.uniform(3, 10)) * rng.choice(
                        [-1, 1]
                    )
                    sites.append((r, float(np.clip(line.project(p) + off, 0, line.length))))
    rng.shuffle(sites)
    out: list[dict] = []
    pool = sites[: n * 4] + [
        (r, float(rng.uniform(0.1, 0.9) * r["geometry"].length))
        for r in rng.permutation(np.array(majors + others, dtype=object))[: n * 4]
    ]
    for r, d in pool:
        if len(out) >= n:
            break
        p, t, nv = _frame(r["geometry"], d)
        pt = Point(p)
        if any(g.contains(pt) for g in busy) or any(b["geometry"].distance(pt) < 30 for b in out):
            continue
        w = r["width_m"]
        b = rng.uniform(1.4, 1.6)
        gap = rng.uniform(0.0, 1.0)
        span = w * rng.uniform(0.75, 1.0)
        nb = max(2, int((span + gap) // (b + gap)))
        width = nb * b + (nb - 1) * gap
        shift = rng.uniform(-1, 1) * max(w - width, 0) / 2
        q = shift - width / 2 + b / 2 + np.arange(nb) * (b + gap)
        blocks = [
            Polygon(
                _to_world(
                    p,
                    t,
                    nv,
                    np.array(
                        [
                            [-b / 2, qi - b / 2],
                            [b / 2, qi - b / 2],
                            [b / 2, qi + b / 2],
                            [-b / 2, qi + b / 2],
                        ]
                    ),
                )
            )
            for qi in q
        ]
        ends = _to_world(p, t, nv, np.array([[0.0, shift - width / 2], [0.0, shift + width / 2]]))
        out.append(
            {
                "geometry": LineString(ends),
                "n_blocks": nb,
                "width_m": round(float(width), 2),
                "road_name": r["name"],
                "blocks": blocks,
                "block_m": float(b),
            }
        )
    return out


def _berms(rng: np.random.Generator, city: City, busy: list, n: int) -> list[dict]:
    """Earthen ridges along arcs around the town edge, clear of buildings."""
    S = city.size_m
    c = np.asarray(city.core)
    b_tree = shapely.STRtree(city.b_geom)
    out: list[dict] = []
    for _ in range(200):
        if len(out) >= n:
            break
        height, width = rng.uniform(2, 4), rng.uniform(8, 15)
        length = rng.uniform(40, min(400, 0.3 * S))
        ang = rng.uniform(0, 2 * np.pi)
        rad = np.hypot(*(_edge_point(city, ang) - c)) * rng.uniform(0.95, 1.25)
        sweep = length / rad
        a = ang + np.linspace(-sweep / 2, sweep / 2, 12)
        rr = rad + np.cumsum(rng.normal(0, 0.01 * length, 12))
        crest = LineString(np.c_[c[0] + rr * np.cos(a), c[1] + rr * np.sin(a)])
        foot = crest.buffer(width / 2 + 2)
        if (
            not foot.within(_scene_box(S).buffer(-10))
            or b_tree.query(foot, predicate="intersects").size
        ):
            continue
        if city.runway is not None and foot.intersects(city.runway):
            continue
        if any(foot.intersects(g) for g in busy) or any(
            foot.intersects(b["geometry"].buffer(b["width_m"])) for b in out
        ):
            continue
        out.append(
            {
                "geometry": crest,
                "height_m": round(float(height), 2),
                "length_m": round(float(crest.length), 1),
                "width_m": round(float(width), 1),
            }
        )
    return out


def _rubble(rng: np.random.Generator, city: City, busy: list, n: int) -> list[dict]:
    """Debris piles on road surfaces; some block the road, others leave a lane free."""
    roads = city.roads
    lengths = np.array([r["geometry"].length for r in roads])
    out: list[dict] = []
    for _ in range(300):
        if len(out) >= n:
            break
        r = roads[rng.choice(len(roads), p=lengths / lengths.sum())]
        line, w = r["geometry"], r["width_m"]
        if line.length < 30:
            continue
        p, t, nv = _frame(line, rng.uniform(10, line.length - 10))
        pt = Point(p)
        if any(g.distance(pt) < 10 for g in busy) or any(
            o["geometry"].distance(pt) < 25 for o in out
        ):
            continue
        blocked = rng.random() < 0.4
        across = w + 2.0 if blocked else rng.uniform(0.35, 0.7) * w
        area = rng.uniform(30, 300)
        along = float(np.clip(area / min(across, w), 4, 40))
        side = rng.choice([-1, 1])
        s = np.linspace(-along / 2, along / 2, 7)
        top = np.full(7, across)
        top[[0, 6]] *= rng.uniform(0.4, 0.8, 2)
        top[[1, 5]] *= rng.uniform(0.75, 1.0, 2)
        q0 = -w / 2 - 1.0
        sq = np.r_[np.c_[s, np.full(7, q0)], np.c_[s[::-1], q0 + 1.0 + top[::-1]]]
        sq[:, 0] += rng.normal(0, 0.3, len(sq))
        sq[:, 1] *= side
        poly = Polygon(_to_world(p, t, nv, sq)).intersection(line.buffer(w / 2, cap_style="flat"))
        poly = max(_polys(poly), key=lambda g: g.area) if _polys(poly) else None
        if poly is None or poly.area < 20:
            continue
        free = 0.0 if blocked else w - across
        out.append(
            {
                "geometry": poly,
                "area_m2": round(float(poly.area), 1),
                "passable_width_m": round(float(free), 2),
                "height_m": float(rng.uniform(0.6, 1.5)),
                "road_name": r["name"],
            }
        )
    return out


def apply_changes(
    rng: np.random.Generator, before: R.Surface, city: City, ch: Changes, gsd: float, tex: Textures
) -> R.Surface:
    """The after-date surface: ``before`` with the changes burnt in (heights in metres)."""
    S = city.size_m
    T = R.local_transform(S, gsd)
    a = before.copy()
    shape = a.cls.shape
    hf = tex.grain
    # Razed: debris on the footprint and a ragged spill 1-3 m beyond it, off other roofs and water.
    spill = np.zeros(shape, np.uint8)
    R.burn(spill, [(g.buffer(rng.uniform(1, 3), quad_segs=3), 1) for g in city.b_geom[ch.razed]], T)
    lumps = tex.patch
    spill_px = (spill > 0) & (a.bid == 0) & (lumps > 0.0) & (a.cls != R.WATER)
    foot = np.isin(a.bid, ch.razed + 1) if ch.razed.size else np.zeros(shape, bool)
    for m, lo, hi in ((spill_px, 0.1, 0.5), (foot, 0.3, 1.5)):
        a.cls[m] = R.RUBBLE
        a.bid[m] = 0
        a.det[m] = 0
        a.obj_h[m] = 0.0
        a.canopy[m] = 0.0
        a.relief[m] = lo + (hi - lo) * np.clip(
            0.5 + 0.3 * hf[m] + 0.15 * lumps[m] + 0.12 * tex.fine[m], 0, 1
        )
    # Cleared: graded soil over the whole swath.
    m = R.burn(np.zeros(shape, np.uint8), [(g, 1) for g in ch.cleared], T).astype(bool)
    a.cls[m] = R.GRADED
    for arr in (a.bid, a.det, a.fid):
        arr[m] = 0
    for arr in (a.obj_h, a.canopy, a.relief):
        arr[m] = 0.0
    # Berms: parabolic cross-section around the crest, round ends.
    for b in ch.berms:
        x0, y0, x1, y1 = b["geometry"].buffer(b["width_m"] / 2).bounds
        c0, c1 = int(max(x0 / gsd, 0)), int(min(np.ceil(x1 / gsd), shape[1]))
        r0, r1 = int(max((S - y1) / gsd, 0)), int(min(np.ceil((S - y0) / gsd), shape[0]))
        rr, cc = np.mgrid[r0:r1, c0:c1]
        px, py = R.pixel_xy((rr.ravel(), cc.ravel()), S, gsd)
        d = shapely.distance(shapely.points(np.c_[px, py]), b["geometry"]).reshape(rr.shape)
        h = b["height_m"] * np.clip(1 - (2 * d / b["width_m"]) ** 2, 0, None).astype(np.float32)
        h *= 1 + 0.05 * hf[r0:r1, c0:c1]
        on = h > 0.15
        win = (slice(r0, r1), slice(c0, c1))
        a.relief[win] = np.maximum(a.relief[win], h)
        for arr, v in (
            (a.cls, R.BERM),
            (a.bid, 0),
            (a.det, 0),
            (a.fid, 0),
            (a.canopy, 0.0),
            (a.obj_h, 0.0),
        ):
            arr[win][on] = v
    # Rubble on roads.
    for rb in ch.rubble:
        m = R.burn(np.zeros(shape, np.uint8), [(rb["geometry"], 1)], T).astype(bool)
        a.cls[m] = R.RUBBLE
        a.canopy[m] = 0.0
        a.relief[m] = rb["height_m"] * np.clip(0.55 + 0.3 * hf[m] + 0.2 * lumps[m], 0.1, 1)
    # Barricade blocks.
    blocks = [(g, 1) for b in ch.barricades for g in b["blocks"]]
    m = R.burn(np.zeros(shape, np.uint8), blocks, T).astype(bool)
    a.cls[m] = R.BLOCK
    a.obj_h[m] = BLOCK_HEIGHT_M
    a.canopy[m] = 0.0
    return a


def truth_mask(
    before: R.Surface, after: R.Surface, ch: Changes, size_m: float, gsd: float
) -> np.ndarray:
    """1 where structures appeared/disappeared or the ground was reshaped (uint8).

    Compares the two surfaces (material, building id, height), so shadows, illumination and
    seasonal colour never count; barricade rows count whole, gaps between blocks included.
    """
    m = (before.cls != after.cls) | (before.bid != after.bid)
    m |= np.abs(after.dsm() - before.dsm()) > 0.2
    rows = [(b["geometry"].buffer(b["block_m"] / 2, cap_style="flat"), 1) for b in ch.barricades]
    R.burn(m.view(np.uint8), rows, R.local_transform(size_m, gsd))
    return m.astype(np.uint8)
