from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
from rasterio.crs import CRS

from fortmap.errors import InputError
from fortmap.io.vector import read_footprints, read_vector

CRS_M = CRS.from_epsg(32637)


def _write(tmp_path, polys):
    feats = [
        {"type": "Feature", "properties": {"id": i}, "geometry": shapely.geometry.mapping(p)}
        for i, p in enumerate(polys)
    ]
    crs = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32637"}}
    path = tmp_path / "fp.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "crs": crs, "features": feats}))
    return path


def test_parts_kept_by_the_share_of_their_area_inside(tmp_path):
    bounds = (1000.0, 2000.0, 1100.0, 2100.0)
    polys = [
        shapely.box(1010, 2010, 1020, 2020),  # inside
        shapely.box(1095, 2050, 1103, 2060),  # 5/8 inside the right edge: kept
        shapely.box(1097, 2050, 1105, 2060),  # 3/8 inside: dropped
        shapely.box(1200, 2050, 1210, 2060),  # outside
        shapely.box(1000, 2000, 1100, 2100),  # the whole area, bounds on the edges: kept
    ]
    with pytest.warns(UserWarning, match="2 footprint part"):
        got = read_footprints(_write(tmp_path, polys), CRS_M, bounds)
    assert got["id"].tolist() == [0, 1, 4]
    box = shapely.box(*bounds)
    frac = shapely.area(shapely.intersection(got.geometry.values, box)) / got.area
    assert np.all(frac >= 0.5)


def test_none_inside_is_an_input_error(tmp_path):
    with (
        pytest.raises(InputError, match="no building footprint lies inside"),
        pytest.warns(UserWarning),
    ):
        read_footprints(
            _write(tmp_path, [shapely.box(0, 0, 5, 5)]), CRS_M, (1000.0, 2000.0, 1100.0, 2100.0)
        )


def test_unreadable_files_get_a_plain_one_line_reason(tmp_path):
    empty = tmp_path / "empty.geojson"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="file is empty"):
        read_vector(empty, "building footprints")
    text = tmp_path / "notes.geojson"
    text.write_text("not a vector file\n")
    with pytest.raises(InputError) as info:
        read_vector(text, "building footprints")
    msg = str(info.value)
    assert "\n" not in msg and "It might help" not in msg and str(text) in msg
