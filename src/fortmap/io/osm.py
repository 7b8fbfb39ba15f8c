"""Read the ``highway`` ways of an OpenStreetMap extract (.osm.pbf, .osm, .osm.bz2, .osm.gz).

Uses pyosmium (``osmium`` on PyPI), which reads every OSM format and resolves node locations.
Only geometry and the few tags fortmap uses are kept; class filtering is done by
:mod:`fortmap.io.roads`.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from fortmap.errors import InputError

#: File name endings read as OpenStreetMap data.
OSM_SUFFIXES: tuple[str, ...] = (".osm.pbf", ".pbf", ".osm", ".osm.bz2", ".osm.gz", ".osc")

#: Tags copied into the frame (missing ones are "").
OSM_TAGS: tuple[str, ...] = ("highway", "name", "width", "lanes", "area")


def is_osm_path(path: str | Path) -> bool:
    """True when ``path``'s name ends like an OpenStreetMap file (by name only)."""
    name = Path(path).name.lower()
    return any(name.endswith(s) for s in OSM_SUFFIXES)


def read_osm_highways(
    path: str | Path, bbox_lonlat: tuple[float, float, float, float] | None = None
) -> gpd.GeoDataFrame:
    """All ``highway`` ways of an OSM file as WGS84 LineStrings, whatever their class.

    A closed way tagged ``area=yes`` is a pedestrian square or similar, not a line, and is
    skipped; so are closed ``highway=platform`` ways (GDAL's OSM driver makes both polygons).
    Node references missing from the extract (ways cut at its edge) are dropped and the way
    keeps its located nodes; a way left with fewer than two is skipped.

    Args:
        path: ``.osm.pbf``, ``.osm``, ``.osm.bz2`` or ``.osm.gz`` file.
        bbox_lonlat: optional (west, south, east, north) in degrees; ways whose bounding box
            misses it are skipped early.

    Returns:
        GeoDataFrame in EPSG:4326 with ``osm_id`` (int) and the string tags of
        :data:`OSM_TAGS` (``""`` when absent). May be empty.

    Raises:
        InputError: missing or unreadable file.
    """
    import osmium  # deferred: only needed for OSM input

    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: roads file not found")
    ids: list[int] = []
    tags: dict[str, list[str]] = {k: [] for k in OSM_TAGS}
    coords: list[np.ndarray] = []
    try:
        fp = (
            osmium.FileProcessor(str(p), osmium.osm.NODE | osmium.osm.WAY)
            .with_locations()
            .with_filter(osmium.filter.KeyFilter("highway"))
            .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
        )
        for way in fp:
            t = way.tags
            closed = way.is_closed()
            if closed and (t.get("area") == "yes" or t.get("highway") == "platform"):
                continue
            xy = np.array(
                [(n.lon, n.lat) for n in way.nodes if n.location.valid()], dtype=float
            ).reshape(-1, 2)
            if len(xy) < 2:
                continue
            if bbox_lonlat is not None:
                w, s, e, n = bbox_lonlat
                if xy[:, 0].max() < w or xy[:, 0].min() > e or xy[:, 1].max() < s:
                    continue
                if xy[:, 1].min() > n:
                    continue
            ids.append(int(way.id))
            for k in OSM_TAGS:
                tags[k].append(t.get(k, ""))
            coords.append(xy)
    except RuntimeError as exc:
        # libosmium reports format and decompression errors as RuntimeError
        raise InputError(
            f"{p}: cannot read OpenStreetMap file: {str(exc).splitlines()[0]}"
        ) from None
    geoms = [shapely.linestrings(c) for c in coords]
    return gpd.GeoDataFrame(
        {"osm_id": np.asarray(ids, dtype=np.int64), **tags},
        geometry=gpd.GeoSeries(geoms, crs="EPSG:4326"),
        crs="EPSG:4326",
    )
