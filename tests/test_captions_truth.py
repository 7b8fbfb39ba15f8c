"""Captions checked against the simulator's truth: given the true findings of a simulated city,
every count, distance, direction and river bank a caption states agrees with truth.gpkg and
places.geojson (whose river is the simulator's own centreline), computed here independently of
the caption code."""

from __future__ import annotations

import math
import re

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from shapely.ops import split

from fortmap.report.captions import caption, load_places, load_rivers
from fortmap.types import LAYER_KINDS, TRUTH_LAYERS

_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
          "nine": 9, "ten": 10}  # fmt: skip
_SECTORS = [
    "north",
    "north-east",
    "east",
    "south-east",
    "south",
    "south-west",
    "west",
    "north-west",
]


def _count(text: str, noun_pattern: str) -> int:
    m = re.search(rf"(\d[\d,]*|{'|'.join(_WORDS)}|an?) {noun_pattern}", text)
    assert m, f"no count before {noun_pattern!r} in: {text}"
    w = m.group(1)
    return 1 if w in ("a", "an") else _WORDS.get(w) or int(w.replace(",", ""))


@pytest.mark.parametrize(
    "layer, noun",
    [
        ("razed_buildings", r"buildings?"),
        ("cleared_areas", r"areas?"),
        ("barricades", r"barricades?"),
        ("berms", r"earth berms?"),
        ("rubble", r"rubble piles?"),
    ],
)
def test_caption_counts_distance_and_direction_match_truth(small_city, layer, noun):
    assert layer in TRUTH_LAYERS
    truth = gpd.read_file(small_city / "truth.gpkg", layer=layer)
    if truth.empty:
        pytest.skip(f"the small city has no {layer}")
    truth["kind"] = LAYER_KINDS[layer]
    truth["score"] = 1.0
    places = load_places(small_city / "places.geojson", truth.crs)
    c = truth.union_all().centroid
    text = caption(
        {layer: truth},
        date_before="2024-03-11",
        date_after="2024-10-02",
        centre=(c.x, c.y),
        places=places,
        crs=truth.crs,
    )
    assert _count(text, noun) == len(truth)
    assert "11 March 2024" in text and "2 October 2024" in text

    # the nearest place, its distance and bearing, computed here from places.geojson; the
    # river is a line there, and a distance is measured from a place, not from a river
    pts = gpd.read_file(small_city / "places.geojson").to_crs(truth.crs)
    pts = pts[pts.geom_type == "Point"]
    d = pts.geometry.distance(c)
    near = pts.loc[d.idxmin()]
    dist = float(d.min())
    if dist < 50:
        assert f"at {near['name']}" in text
        return
    m = re.search(r"([\d.]+) (m|km) ([a-z-]+) of (.+?)[.,]", text)
    assert m, text
    stated = float(m.group(1)) * (1000 if m.group(2) == "km" else 1)
    tol = 5 if m.group(2) == "m" else 50
    assert abs(stated - dist) <= tol + 1e-6
    bearing = math.degrees(math.atan2(c.x - near.geometry.x, c.y - near.geometry.y)) % 360
    assert m.group(3) == _SECTORS[int((bearing + 22.5) // 45) % 8]
    assert m.group(4) == near["name"]


_BANK = re.compile(
    r", (?:on the ([^,]+?)'s ([a-z-]+)ern bank|on both banks of the ([^,]+?)|over the ([^,]+?))\."
)


def _river(city):
    """The simulator's river (centreline, width) and the two sides of the scene it divides."""
    p = gpd.read_file(city / "places.geojson")
    rv = p[p["kind"] == "river"]
    assert len(rv) == 1 and set(rv.geom_type) <= {"LineString", "MultiLineString"}
    line = rv.geometry.iloc[0]
    with rasterio.open(city / "before.tif") as src:
        sides = list(split(shapely.box(*src.bounds), line).geoms)
    return line, float(rv["width_m"].iloc[0]), rv["name"].iloc[0], sides, p.crs


def _side(sides, pt) -> int:
    return next(i for i, g in enumerate(sides) if g.covers(pt))


def test_caption_river_bank_of_each_finding_matches_truth(small_city):
    line, width, name, sides, crs = _river(small_city)
    assert len(sides) >= 2, "the river should cross the scene"
    rivers = load_rivers(small_city / "places.geojson", crs)
    places = load_places(small_city / "places.geojson", crs)
    assert [r.name for r in rivers] == [name] and name not in {p.name for p in places}
    words: dict[int, set[str]] = {}
    checked = 0
    for layer in TRUTH_LAYERS:
        truth = gpd.read_file(small_city / "truth.gpkg", layer=layer)
        truth["kind"], truth["score"] = LAYER_KINDS[layer], 1.0
        near_sides = set()
        for i in range(len(truth)):
            row = truth.iloc[[i]]
            pt = row.geometry.representative_point().iloc[0]
            text = caption({layer: row}, date_before="2024-03-11", date_after="2024-10-02",
                           centre=(pt.x, pt.y), places=places, crs=crs, rivers=rivers)  # fmt: skip
            m = _BANK.search(text)
            d = line.distance(pt)
            if d > 1000:
                assert m is None, text
                continue
            assert m, text
            if d <= width / 2:
                assert m.group(4) == name, text
                continue
            assert m.group(1) == name, text
            # the stated bank must point from the river's nearest point towards the finding:
            # within the named eighth of the compass (22.5 deg) plus as much again for the
            # river's general course differing from its course at this point
            q = shapely.get_coordinates(shapely.shortest_line(line, pt))[0]
            v = np.array([pt.x - q[0], pt.y - q[1]])
            k = _SECTORS.index(m.group(2))
            u = np.array([math.sin(math.radians(45 * k)), math.cos(math.radians(45 * k))])
            angle = math.degrees(math.acos(np.clip(u @ v / np.linalg.norm(v), -1, 1)))
            assert angle <= 67.5, f"{text} (finding lies {angle:.0f} deg from the stated bank)"
            side = _side(sides, pt)
            words.setdefault(side, set()).add(m.group(2))
            near_sides.add(side)
            checked += 1
        if near_sides:
            # all of the layer in one caption: both banks exactly when truth has both
            pt = truth.union_all().centroid
            text = caption({layer: truth}, date_before="2024-03-11", date_after="2024-10-02",
                           centre=(pt.x, pt.y), places=places, crs=crs, rivers=rivers)  # fmt: skip
            m = _BANK.search(text)
            assert m and (m.group(3) == name) == (len(near_sides) > 1), text
    assert checked >= 10
    # one name per bank across the scene, and the two banks never share one
    assert len(words) >= 2 and all(len(w) == 1 for w in words.values()), words
    assert len(set.union(*words.values())) == len(words), words
