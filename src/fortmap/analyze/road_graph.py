"""The road graph: roads clipped to the analysed area and split at their junctions.

Junctions are shared vertices (to 1 cm), as in OpenStreetMap, where roads that meet share a
node and a bridge over a road shares none. Line ends that stop within ``snap_m`` of another
road without sharing a vertex (common in hand-drawn or converted data) are joined to it.
Nodes where a road leaves the area are the *outside*: whoever holds the area's edge can come
in there.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import geopandas as gpd
import networkx as nx
import numpy as np
import pyproj
import shapely

from fortmap.errors import InputError

#: Vertices closer than this (m) are one junction.
VERTEX_GRID_M = 0.01
#: Distance (m) under which a node counts as lying on the area's edge.
EDGE_TOL_M = 0.05

_EDGE_ATTRS = ("road_class", "highway", "name", "width_m")


@dataclass
class RoadGraph:
    """Roads as an undirected multigraph of junctions (nodes) and road pieces (edges).

    Oneway tags are ignored: an analyst asks whether a road *can* be driven, not whether it
    may be.

    Attributes:
        nodes: (n, 2) node coordinates in the roads' CRS (metres).
        edges: one row per edge: ``u``, ``v`` (node ids), ``length_m``, the road's
            ``road_class``, ``highway``, ``name``, ``width_m`` and LineString geometry from
            node ``u`` to node ``v``.
        outside: bool per node, True where a road crosses the area's edge.
        area: the analysed area polygon (same CRS).
    """

    nodes: np.ndarray
    edges: gpd.GeoDataFrame
    outside: np.ndarray
    area: shapely.Polygon

    @property
    def crs(self) -> pyproj.CRS | None:
        """CRS of the nodes and edges."""
        return self.edges.crs

    @cached_property
    def graph(self) -> nx.MultiGraph:
        """networkx MultiGraph: node attrs ``x``, ``y``, ``outside``; edge key = edge row,
        edge attrs ``length_m`` and the road attributes."""
        g = nx.MultiGraph()
        g.add_nodes_from(
            (i, {"x": float(x), "y": float(y), "outside": bool(o)})
            for i, ((x, y), o) in enumerate(zip(self.nodes, self.outside, strict=True))
        )
        cols = [self.edges[c].to_numpy() for c in ("u", "v", "length_m", *_EDGE_ATTRS)]
        g.add_edges_from(
            (int(u), int(v), k, {"length_m": float(ln), **dict(zip(_EDGE_ATTRS, a, strict=True))})
            for k, (u, v, ln, *a) in enumerate(zip(*cols, strict=True))
        )
        return g


def _snap_dangles(lines: np.ndarray, snap_m: float) -> np.ndarray:
    """Insert a vertex into a road where another road's free end stops within ``snap_m`` of it,
    and move that end onto it, so T-junctions drawn without a shared vertex connect."""
    if snap_m <= 0 or len(lines) < 2:
        return lines
    coords, idx = shapely.get_coordinates(lines, return_index=True)
    keys = np.round(coords / VERTEX_GRID_M).astype(np.int64)
    _, inv, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    inv = inv.ravel()
    starts = np.r_[0, np.flatnonzero(np.diff(idx)) + 1]
    ends = np.r_[starts[1:] - 1, len(idx) - 1]
    ends_all = np.r_[starts, ends]
    dangling = ends_all[counts[inv[ends_all]] == 1]
    if not len(dangling):
        return lines
    pts = shapely.points(coords[dangling])
    tree = shapely.STRtree(lines)
    pi, li = tree.query(pts, predicate="dwithin", distance=snap_m)
    own = idx[dangling[pi]] == li
    pi, li = pi[~own], li[~own]
    if not len(pi):
        return lines
    out = lines.copy()
    moved: dict[int, list[tuple[int, np.ndarray]]] = {}
    inserts: dict[int, list[float]] = {}
    # each free end joins its nearest road only
    d = shapely.distance(pts[pi], lines[li])
    order = np.lexsort((d, pi))
    seen: set[int] = set()
    for k in order:
        p = int(pi[k])
        if p in seen:
            continue
        seen.add(p)
        line = lines[li[k]]
        at = shapely.line_locate_point(line, pts[p])
        target = shapely.get_coordinates(shapely.line_interpolate_point(line, at))[0]
        inserts.setdefault(int(li[k]), []).append(float(at))
        ci = int(dangling[p])
        moved.setdefault(int(idx[ci]), []).append((ci - int(starts[idx[ci]]), target))
    for li_, pos in inserts.items():
        out[li_] = _insert_vertices(out[li_], pos)
    for li_, mv in moved.items():
        c = shapely.get_coordinates(out[li_]).copy()
        for j, xy in mv:
            c[j] = xy
        out[li_] = shapely.linestrings(c)
    return out


def _insert_vertices(line: shapely.LineString, at: list[float]) -> shapely.LineString:
    """``line`` with extra vertices at the distances ``at`` (m) along it."""
    c = shapely.get_coordinates(line)
    seg = np.r_[0.0, np.cumsum(np.hypot(*np.diff(c, axis=0).T))]
    new = shapely.get_coordinates(shapely.line_interpolate_point(line, at))
    pos = np.r_[seg, np.asarray(at)]
    allc = np.vstack([c, new])
    order = np.argsort(pos, kind="stable")
    return shapely.linestrings(allc[order])


def build_road_graph(
    roads: gpd.GeoDataFrame, area: shapely.Polygon, snap_m: float = 1.0
) -> RoadGraph:
    """Build the road graph of ``roads`` inside ``area``.

    Args:
        roads: LineStrings in a projected CRS (metres) with ``road_class``, ``highway``,
            ``name``, ``width_m`` (as from :func:`fortmap.io.roads.read_roads`; missing columns
            default to minor, "", "", 5 m).
        area: the analysed area (e.g. the image footprint) in the same CRS.
        snap_m: a road end within this distance (m) of another road joins it; 0 disables.

    Returns:
        The :class:`RoadGraph`.

    Raises:
        InputError: no road inside the area.
    """
    if area.is_empty or area.area <= 0:
        raise InputError("area: the analysed area is empty")
    gdf = roads[roads.geometry.notna() & ~roads.geometry.is_empty]
    geoms, src0 = shapely.get_parts(gdf.geometry.to_numpy(), return_index=True)
    near = shapely.intersects(geoms, area.buffer(snap_m + 1.0)) if snap_m > 0 else slice(None)
    geoms, src0 = geoms[near], src0[near]
    # snap before clipping, so ends cut by the area's edge stay exactly on it
    geoms = _snap_dangles(geoms, snap_m)
    inside = shapely.within(geoms, area)
    clipped = geoms.copy()
    clipped[~inside] = shapely.intersection(geoms[~inside], area)
    parts, src1 = shapely.get_parts(clipped, return_index=True)
    keep = (shapely.get_type_id(parts) == 1) & (shapely.length(parts) > 0)
    parts, src = parts[keep], src0[src1[keep]]
    if not len(parts):
        raise InputError("roads: no road lies inside the analysed area")
    attrs = {
        c: (gdf[c].to_numpy() if c in gdf.columns else np.full(len(gdf), d, dtype=object))
        for c, d in zip(_EDGE_ATTRS, ("minor", "", "", 5.0), strict=True)
    }

    coords, li = shapely.get_coordinates(parts, return_index=True)
    keys = np.round(coords / VERTEX_GRID_M).astype(np.int64)
    uniq, vid = np.unique(keys, axis=0, return_inverse=True)
    vid = vid.ravel()
    n = len(coords)
    starts = np.r_[0, np.flatnonzero(np.diff(li)) + 1]
    is_end = np.zeros(n, bool)
    is_end[starts] = True
    is_end[np.r_[starts[1:] - 1, n - 1]] = True
    # a vertex is a junction when it is used more than once (by two roads, or a loop)
    is_node = is_end | (np.bincount(vid, minlength=len(uniq))[vid] > 1)

    # each edge runs from one node vertex to the next within the same line
    node_pos = np.flatnonzero(is_node)
    same_line = li[node_pos[:-1]] == li[node_pos[1:]]
    e_start, e_end = node_pos[:-1][same_line], node_pos[1:][same_line]
    counts = e_end - e_start + 1
    flat = np.repeat(e_start, counts) + (
        np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    )
    edge_geoms = shapely.linestrings(
        coords[flat], indices=np.repeat(np.arange(len(counts)), counts)
    )
    u_v, v_v = vid[e_start], vid[e_end]
    lengths = shapely.length(edge_geoms)
    ok = lengths > 0
    edge_geoms, u_v, v_v, lengths = edge_geoms[ok], u_v[ok], v_v[ok], lengths[ok]
    e_start, e_end = e_start[ok], e_end[ok]

    # renumber nodes to those edges use
    used, inv = np.unique(np.r_[u_v, v_v], return_inverse=True)
    u, v = inv[: len(u_v)], inv[len(u_v) :]
    node_xy = uniq[used] * VERTEX_GRID_M
    # exact coordinates: take them from the edges' own end vertices
    node_xy[u] = coords[e_start]
    node_xy[v] = coords[e_end]
    row = src[li[e_start]]
    edges = gpd.GeoDataFrame(
        {
            "u": u.astype(np.int64),
            "v": v.astype(np.int64),
            "length_m": lengths,
            **{c: attrs[c][row] for c in _EDGE_ATTRS},
        },
        geometry=edge_geoms,
        crs=roads.crs,
    )
    edges["width_m"] = edges["width_m"].astype(float)
    outside = shapely.dwithin(shapely.points(node_xy), area.boundary, EDGE_TOL_M)
    return RoadGraph(nodes=node_xy, edges=edges, outside=np.asarray(outside), area=area)
