"""Captions in an analyst's register: date, what is seen, how many, and where.

"Where" is the direction and distance from the nearest named place (``--places``), e.g.
"1.2 km north of Kelmar Airfield", or latitude/longitude when no places are given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
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


@dataclass(frozen=True)
class Place:
    """A named point, in the run's CRS (metres)."""

    name: str
    x: float
    y: float


def load_places(path: str | Path, crs) -> list[Place]:
    """Named places from a vector file (a ``name`` column), reprojected to ``crs``.

    Raises:
        InputError: the file is missing, unreadable or has no ``name`` column.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: places file not found")
    try:
        gdf = gpd.read_file(p, engine="pyogrio")
    except Exception as exc:  # pyogrio raises several unrelated types for bad files
        raise InputError(f"{p}: cannot read places: {str(exc).splitlines()[0]}") from None
    if "name" not in gdf.columns:
        raise InputError(f"{p}: places file has no 'name' column")
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty & gdf["name"].notna()]
    if gdf.crs is None:
        gdf = gdf.set_crs("EPSG:4326")
    pts = gdf.to_crs(crs).geometry.representative_point()
    return [Place(str(n), float(pt.x), float(pt.y)) for n, pt in zip(gdf["name"], pts, strict=True)]


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
) -> str:
    """One caption for a figure showing the findings in ``groups`` (layer -> rows).

    Args:
        groups: findings in the figure, by layer name (non-empty frames).
        date_before, date_after: ISO dates of the two images.
        centre: figure centre (x, y) in metres, in ``crs``.
        places: named places in ``crs``, or None for coordinates.
        crs: the run's CRS.
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
