"""Captions checked against the simulator's truth: given the true findings of a simulated city,
every count, distance and direction a caption states agrees with truth.gpkg and places.geojson,
computed here independently of the caption code."""

from __future__ import annotations

import math
import re

import geopandas as gpd
import pytest

from fortmap.report.captions import caption, load_places
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

    # the nearest place, its distance and bearing, computed here from places.geojson
    pts = gpd.read_file(small_city / "places.geojson").to_crs(truth.crs)
    d = pts.geometry.distance(c)
    near = pts.loc[d.idxmin()]
    dist = float(d.min())
    if dist < 50:
        assert f"at {near['name']}" in text
        return
    m = re.search(r"([\d.]+) (m|km) ([a-z-]+) of (.+?)\.", text)
    assert m, text
    stated = float(m.group(1)) * (1000 if m.group(2) == "km" else 1)
    tol = 5 if m.group(2) == "m" else 50
    assert abs(stated - dist) <= tol + 1e-6
    bearing = math.degrees(math.atan2(c.x - near.geometry.x, c.y - near.geometry.y)) % 360
    assert m.group(3) == _SECTORS[int((bearing + 22.5) // 45) % 8]
    assert m.group(4) == near["name"]
