"""Captions in an analyst's register: date, what is seen, how many, and where.

"Where" is the direction and distance from the nearest named place (``--places``), e.g.
"1.2 km north of Kelmar Airfield", or latitude/longitude when no places are given; and, when a
river in ``--places`` runs within :data:`RIVER_NEAR_M` of the findings, which bank they are on
("on the Azra River's western bank"). A river is a LineString (its centreline, drawn in any
direction) or Polygon (its water) feature whose ``kind`` is a water kind, or that carries the
OpenStreetMap tags ``waterway=*`` or ``natural=water``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from pyproj import Transformer

from fortmap.errors import InputError
from fortmap.report.styles import style_for

_COMPASS = (
    "north",
    "north-east",
    "east",
    "south-east",
    "south",
    "south-west",
    "west",
    "north-west",
)

#: kind -> (singular, plural, what happened). Unknown kinds read "<n> <kind words> detected".
PHRASES: dict[str, tuple[str, str, str]] = {
    "razed_building": ("building", "buildings", "razed"),
    "cleared_area": ("area", "areas", "cleared of vegetation or structures"),
    "barricade": ("barricade", "barricades", "built across the road"),
    "berm": ("earth berm", "earth berms", "raised"),
    "rubble": ("rubble pile", "rubble piles", "on the road"),
    "entry_point": ("entry point into the core", "entry points into the core", "cut"),
    "ditch": ("ditch", "ditches", "dug"),
}


def plural(noun: str) -> str:
    """English plural of a simple noun.

    >>> plural("ditch"), plural("berm")
    ('ditches', 'berms')
    """
    return noun + ("es" if noun.endswith(("s", "sh", "ch", "x")) else "s")


def join_words(words: list[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    words = [w for w in words if w]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


#: A river farther than this from the findings (metres) goes unmentioned: past a kilometre
#: "which bank" no longer helps a reader place them.
RIVER_NEAR_M = 1000.0
#: Half-length (metres) of the stretch of centreline whose direction tells which side of the
#: river a point is on: short enough to follow meanders (wavelengths of hundreds of metres),
#: long enough to smooth a digitised line's vertex-to-vertex jitter.
TANGENT_HALF_M = 25.0
#: Half-length (metres) of the reach whose general course names the banks. Readers name a
#: river's banks once for a town ("the west bank"), not bend by bend, so the name comes from
#: the course over a kilometre, while the side comes from the local direction.
REACH_HALF_M = 500.0
#: ``kind`` values (``--places``) that mark a water feature.
WATER_KINDS = frozenset(
    {"river", "stream", "canal", "water", "lake", "riverbank", "waterway", "reservoir"}
)


@dataclass(frozen=True)
class Place:
    """A named point, in the run's CRS (metres)."""

    name: str
    x: float
    y: float


@dataclass(frozen=True)
class River:
    """A named river in the run's CRS (metres): its centreline(s) and/or its water polygon(s).

    Attributes:
        name: the river's name ("" when unnamed).
        lines: centreline as a (Multi)LineString, or None.
        water: water surface as a (Multi)Polygon, or None.
        width_m: channel width in metres when known (NaN otherwise).
    """

    name: str
    lines: shapely.Geometry | None
    water: shapely.Geometry | None
    width_m: float = math.nan


def _read_places(path: str | Path, crs) -> gpd.GeoDataFrame:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: places file not found")
    try:
        gdf = gpd.read_file(p, engine="pyogrio")
    except Exception as exc:  # pyogrio raises several unrelated types for bad files
        raise InputError(f"{p}: cannot read places: {str(exc).splitlines()[0]}") from None
    if "name" not in gdf.columns:
        raise InputError(f"{p}: places file has no 'name' column")
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    if gdf.crs is None:
        gdf = gdf.set_crs("EPSG:4326")
    return gdf.to_crs(crs)


def _is_water(gdf: gpd.GeoDataFrame) -> np.ndarray:
    """Rows that are rivers: line or polygon features of a water kind or OSM water tags."""

    def col(c: str) -> np.ndarray:
        if c not in gdf:
            return np.full(len(gdf), "", object)
        return gdf[c].astype("string").str.strip().str.lower().fillna("").to_numpy(object)

    water = np.isin(col("kind"), list(WATER_KINDS)) | (col("waterway") != "")
    water |= col("natural") == "water"
    return water & ~gdf.geometry.geom_type.isin(["Point", "MultiPoint"]).to_numpy()


def load_places(path: str | Path, crs) -> list[Place]:
    """Named places from a vector file (a ``name`` column), reprojected to ``crs``.

    Lines and polygons stand for their representative point; rivers (see :func:`load_rivers`)
    are left out, since a distance "from a river" measured to one point of it misleads.

    Raises:
        InputError: the file is missing, unreadable or has no ``name`` column.
    """
    gdf = _read_places(path, crs)
    gdf = gdf[~_is_water(gdf) & gdf["name"].notna()]
    pts = gdf.geometry.representative_point()
    return [Place(str(n), float(pt.x), float(pt.y)) for n, pt in zip(gdf["name"], pts, strict=True)]


def load_rivers(path: str | Path, crs) -> list[River]:
    """Rivers in a places file, reprojected to ``crs``; features of one name make one river.

    Raises:
        InputError: the file is missing, unreadable or has no ``name`` column.
    """
    gdf = _read_places(path, crs)
    gdf = gdf[_is_water(gdf)]
    names = gdf["name"].astype("string").fillna("").str.strip()
    rivers = []
    for name in sorted(set(names)):
        rows = gdf[names == name]
        geoms = shapely.get_parts(shapely.make_valid(rows.geometry.values))
        lines = [g for g in geoms if g.geom_type in ("LineString", "LinearRing")]
        polys = [g for g in geoms if g.geom_type == "Polygon"]
        width = (
            float(np.nanmax(rows["width_m"].astype(float)))
            if "width_m" in rows and rows["width_m"].notna().any()
            else math.nan
        )
        rivers.append(
            River(
                name=name,
                # directed: OSM ways run downstream, and merging must not flip any of them
                lines=shapely.line_merge(shapely.multilinestrings(lines), directed=True)
                if lines
                else None,
                water=shapely.union_all(polys) if polys else None,
                width_m=width,
            )
        )
    return rivers


def compass(dx: float, dy: float) -> str:
    """Eight-point compass direction of the vector (dx east, dy north), e.g. ``"north-east"``.

    >>> compass(0, 1), compass(1, -1), compass(-5, 0.1)
    ('north', 'south-east', 'west')
    """
    bearing = math.degrees(math.atan2(dx, dy)) % 360.0
    return _COMPASS[int((bearing + 22.5) // 45) % 8]


def distance_text(d_m: float) -> str:
    """A distance in metres as an analyst writes it: "350 m", "1.2 km".

    >>> distance_text(347), distance_text(1234), distance_text(15400)
    ('350 m', '1.2 km', '15 km')
    """
    if d_m < 1000:
        return f"{max(10, round(d_m, -1)):.0f} m"
    if d_m < 10000:
        return f"{d_m / 1000:.1f} km"
    return f"{d_m / 1000:.0f} km"


def where(x: float, y: float, places: list[Place] | None, crs) -> str:
    """Where (x, y) (metres, in ``crs``) lies: relative to the nearest place, else lat/lon."""
    if places:
        d = [math.hypot(x - p.x, y - p.y) for p in places]
        p = places[int(np.argmin(d))]
        dist = min(d)
        if dist < 50:
            return f"at {p.name}"
        return f"{distance_text(dist)} {compass(x - p.x, y - p.y)} of {p.name}"
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(x, y)
    return f"at {abs(lat):.4f}\u00b0{'N' if lat >= 0 else 'S'} {abs(lon):.4f}\u00b0{'E' if lon >= 0 else 'W'}"


def _river_distance(r: River, pt: shapely.Point) -> float:
    return min(g.distance(pt) for g in (r.lines, r.water) if g is not None)


def _bank_at(r: River, x: float, y: float) -> tuple[str, str] | None:
    """(side key, bank word) of (x, y) metres, or None where the point is on the water.

    The side key tells opposite banks apart: "left"/"right" of a centreline's local direction,
    or the bank word itself beside a water polygon. The bank word names the bank by the
    compass direction pointing from the river to the point's side, square to the course of the
    reach (:data:`REACH_HALF_M`), or straight out from the nearest shore of a water polygon.
    """
    pt = shapely.Point(x, y)
    if r.water is not None and (r.lines is None or r.water.distance(pt) <= r.lines.distance(pt)):
        if r.water.covers(pt):
            return None
        # the nearest point of the shore; from it the point lies straight out from the water
        qx, qy = shapely.get_coordinates(shapely.shortest_line(r.water.boundary, pt))[0]
        word = _bank_word(x - qx, y - qy)
        return word, word
    parts = shapely.get_parts(r.lines)
    line = parts[int(np.argmin(shapely.distance(parts, pt)))]
    d = line.distance(pt)
    if d < 1.0 or (r.width_m == r.width_m and d <= r.width_m / 2):
        return None
    s = line.project(pt)
    tx, ty = _course(line, s, TANGENT_HALF_M)
    q = line.interpolate(s)
    cross = tx * (y - q.y) - ty * (x - q.x)
    if cross == 0:  # on the line's extension past an end: no course to be left or right of
        return None
    left = cross > 0
    cx, cy = _course(line, s, REACH_HALF_M)
    if cx * tx + cy * ty < 0.5 * math.hypot(cx, cy) * math.hypot(tx, ty):
        # a tight loop: the reach's course is no guide to this bend's sides
        cx, cy = tx, ty
    # the normal to the course on the point's side, pointing away from the river
    nx, ny = (-cy, cx) if left else (cy, -cx)
    return ("left" if left else "right"), _bank_word(nx, ny)


def _course(line: shapely.LineString, s: float, half: float) -> tuple[float, float]:
    """Direction (dx, dy) of ``line`` from ``half`` metres before to ``half`` after ``s``."""
    h = min(half, line.length / 2)
    a = line.interpolate(max(0.0, min(s - h, line.length - 2 * h)))
    b = line.interpolate(min(line.length, max(s + h, 2 * h)))
    return b.x - a.x, b.y - a.y


def _bank_word(dx: float, dy: float) -> str:
    """ "western" for a vector pointing west, "north-eastern"; eight points, as for distances."""
    return compass(dx, dy) + "ern"


def _the(name: str) -> str:
    if not name:
        return "the river"
    return name if name.lower().startswith("the ") else f"the {name}"


def bank(points: list[tuple[float, float]], rivers: list[River] | None) -> str:
    """Which bank of the nearest river ``points`` (x, y metres, run CRS) lie on, or "".

    Returns e.g. "on the Azra River's western bank", "on both banks of the Azra River",
    "over the Azra River" (every point on the water, as on a bridge), or "" when no river
    runs within :data:`RIVER_NEAR_M` of the points' centre.
    """
    if not rivers or not points:
        return ""
    cx, cy = float(np.mean([p[0] for p in points])), float(np.mean([p[1] for p in points]))
    centre = shapely.Point(cx, cy)
    dist = [_river_distance(r, centre) for r in rivers]
    r = rivers[int(np.argmin(dist))]
    if min(dist) > RIVER_NEAR_M:
        return ""
    near = [p for p in points if _river_distance(r, shapely.Point(p)) <= RIVER_NEAR_M]
    found = [(p, b) for p in near if (b := _bank_at(r, *p)) is not None]
    if not found:
        return f"over {_the(r.name)}"
    sides = {b[0] for _, b in found}
    # beside a water polygon the side key is the bank's compass word: banks 135 deg or more
    # apart face each other across the water
    k = [_COMPASS.index(w.removesuffix("ern")) for w in sides - {"left", "right"}]
    facing = any(min((i - j) % 8, (j - i) % 8) >= 3 for i in k for j in k)
    if {"left", "right"} <= sides or facing:
        return f"on both banks of {_the(r.name)}"
    # the bank's name where the findings are: at the one closest to their centre
    p, b = min(found, key=lambda pb: math.hypot(pb[0][0] - cx, pb[0][1] - cy))
    owner = _the(r.name)
    return f"on {owner}'s {b[1]} bank"


def date_text(iso: str) -> str:
    """ISO date as "2 October 2024"; the input unchanged when it is not a date."""
    try:
        d = date.fromisoformat(iso[:10])
    except (TypeError, ValueError):
        return iso or "an unknown date"
    return f"{d.day} {d.strftime('%B %Y')}"


def _names(values) -> str:
    return join_words(sorted({str(v) for v in values if isinstance(v, str) and v.strip()}))


def kind_phrase(kind: str, rows: gpd.GeoDataFrame) -> str:
    """What the rows of one kind show, e.g. "12 buildings razed (about 1,100 m² of footprint)"."""
    n = len(rows)
    sing, plur, verb = PHRASES.get(kind, (kind.replace("_", " "), "", "detected"))
    noun = sing if n == 1 else (plur or plural(sing))
    text = f"{'one' if n == 1 else n} {noun} {verb}"
    area = float(np.nansum(rows["area_m2"])) if "area_m2" in rows else 0.0
    length = float(np.nansum(rows["length_m"])) if "length_m" in rows else 0.0
    road = _names(rows["road_name"]) if "road_name" in rows else ""
    if kind == "barricade" and road:
        text = text.replace("the road", road)
    elif road:
        text += f" ({road})"
    if kind == "razed_building" and area > 0:
        text += f" (about {area:,.0f} m\u00b2 of footprint)"
    elif kind == "cleared_area" and area > 0:
        text += f" ({area / 1e4:.1f} ha)"
    elif kind == "berm" and length > 0:
        text += f" ({length:,.0f} m in all)"
    return text


def caption(
    groups: dict[str, gpd.GeoDataFrame],
    *,
    date_before: str,
    date_after: str,
    centre: tuple[float, float],
    places: list[Place] | None,
    crs,
    rivers: list[River] | None = None,
) -> str:
    """One caption for a figure showing the findings in ``groups`` (layer -> rows).

    Args:
        groups: findings in the figure, by layer name (non-empty frames, geometry in ``crs``).
        date_before, date_after: ISO dates of the two images.
        centre: figure centre (x, y) in metres, in ``crs``.
        places: named places in ``crs``, or None for coordinates.
        crs: the run's CRS.
        rivers: rivers in ``crs`` (from :func:`load_rivers`); the bank the findings are on is
            stated when one runs within :data:`RIVER_NEAR_M`.
    """
    parts = []
    scores = []
    for layer, rows in groups.items():
        if rows.empty:
            continue
        # One layer may hold several kinds (berms and ditches): one phrase per kind.
        kinds = rows["kind"].astype(str) if "kind" in rows else None
        for kind in kinds.unique() if kinds is not None else [layer]:
            sub = rows[kinds == kind] if kinds is not None else rows
            parts.append(kind_phrase(kind, sub))
        scores.extend(rows["score"].tolist() if "score" in rows else [])
    if not parts:
        seen = "no change detected"
    elif len(parts) == 1:
        seen = parts[0]
    else:
        seen = "; ".join(parts[:-1]) + "; and " + parts[-1]
    loc = where(centre[0], centre[1], places, crs)
    pts = [
        (float(p.x), float(p.y))
        for rows in groups.values()
        if not rows.empty
        for p in rows.geometry.representative_point()
    ]
    side = bank(pts or [centre], rivers)
    if side:
        loc += f", {side}"
    conf = ""
    if scores:
        lo, hi = min(scores), max(scores)
        conf = (
            f" Detector confidence {lo:.2f}."
            if abs(hi - lo) < 0.005
            else f" Detector confidence {lo:.2f}\u2013{hi:.2f}."
        )
    return (
        f"Imagery of {date_text(date_after)}, compared with {date_text(date_before)}, "
        f"shows {seen}, {loc}.{conf}"
    )


def layer_label(layer: str) -> str:
    """The human label of a layer (from its style)."""
    return style_for(layer).label
