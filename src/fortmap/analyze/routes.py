"""Routes into the core: which roads lead in before, which are cut after, and by what.

Rules (all geometric, no fitted thresholds):

* **Entry point**: a node where a road crosses the core's boundary, i.e. where a road piece
  inside the core meets one outside it (or the area's edge, where the core touches it).
  Roads are split at the core's boundary first, so each crossing is one node.
* **Entry route**: an entry point reachable from the outside (any node on the analysed area's
  edge) through road pieces *outside* the core, a path through the core to another gate
  being no separate way in. Each entry point counts once, however many paths reach it.
* **Cut edge**: a road piece crossed by a barricade or berm line (the line intersects the
  road's centreline: a barrier that stops short of the centreline leaves at least half the
  carriageway open), or narrowed by rubble to less than ``min_passable_m`` (3 m, the width
  of a car or light truck with its mirrors). Rubble counts on a piece when it comes within
  half the road's width of its centreline; its ``passable_width_m`` is used when given, else
  the road width less the mean width the rubble covers along the piece. With both DSMs, the
  free width is also measured on the surface's rise (:mod:`fortmap.analyze.clearance`), so
  an obstacle the imagery missed still cuts.
* **Entry cut after**: every path from the outside to it crosses a cut piece, or every road
  piece leading from it into the core is cut (a block at the gate). *Cut by*: the cut nearest
  the entry along the entry's shortest route before (the gate first), with all the features
  on that piece.
* **Sealed**: the core had at least one entry route before and has none after.

Route lengths are measured along the roads from the area's edge to the entry point, in metres.

The cut rules (which pieces are cut, and by what; ``DSM_KIND``) are in
:mod:`fortmap.analyze.route_cuts`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from affine import Affine
from scipy import sparse
from scipy.sparse.csgraph import dijkstra
from shapely.ops import substring

from fortmap.analyze.road_graph import EDGE_TOL_M, RoadGraph, build_road_graph
from fortmap.analyze.route_cuts import cut_features, find_cuts, measured_cuts
from fortmap.errors import InputError
from fortmap.report.layers import findings_frame

#: Narrowest passage (m) a car or light truck gets through.
MIN_PASSABLE_M = 3.0

_ROAD_ATTRS = ("road_class", "highway", "name", "width_m")


@dataclass
class RoutesResult:
    """Output of :func:`analyse_routes`.

    Attributes:
        routes: findings layer ``routes``: one row per road piece with ``status`` (open|cut),
            ``cut_by`` (``kind:id`` of the features cutting it, ``;``-separated), ``in_core``,
            ``passable_m`` (narrowest passage left by rubble, NaN where none) and the road's
            ``road_class``, ``highway``, ``name``, ``width_m``.
        entry_points: findings layer ``entry_points``: one Point per entry route with
            ``entry_id``, ``status`` (open|cut), ``cut_by``, the road's attributes,
            ``route_before_m`` and ``route_after_m`` (shortest route from the area's edge;
            NaN after when cut).
        summary: counts, lengths (m) and ``sealed``; JSON-serialisable.
    """

    routes: gpd.GeoDataFrame
    entry_points: gpd.GeoDataFrame
    summary: dict


@dataclass
class _Pieces:
    u: np.ndarray
    v: np.ndarray
    geoms: np.ndarray
    parent: np.ndarray
    nodes: np.ndarray


def _split_at_core(graph: RoadGraph, core: shapely.Polygon) -> _Pieces:
    """Split every edge crossing the core's boundary there; new nodes are appended."""
    e = graph.edges
    geoms = e.geometry.to_numpy()
    u, v = e["u"].to_numpy(), e["v"].to_numpy()
    bnd = core.boundary
    cross = np.flatnonzero(shapely.intersects(geoms, bnd))
    keep = np.ones(len(geoms), bool)
    nodes = [graph.nodes]
    nid = len(graph.nodes)
    new_u, new_v, new_g, new_p = [], [], [], []
    for i in cross:
        line = geoms[i]
        length = line.length
        hit = shapely.get_coordinates(line.intersection(bnd))
        d = np.unique(shapely.line_locate_point(line, shapely.points(hit)))
        d = d[(d > 1e-6) & (d < length - 1e-6)]
        if not len(d):
            continue
        keep[i] = False
        pts = shapely.get_coordinates(shapely.line_interpolate_point(line, d))
        ids = np.arange(nid, nid + len(d))
        nid += len(d)
        nodes.append(pts)
        ends = np.r_[u[i], ids, v[i]]
        cuts = np.r_[0.0, d, length]
        for k in range(len(cuts) - 1):
            new_u.append(ends[k])
            new_v.append(ends[k + 1])
            new_g.append(substring(line, cuts[k], cuts[k + 1]))
            new_p.append(i)
    idx = np.flatnonzero(keep)
    return _Pieces(
        u=np.r_[u[idx], np.asarray(new_u, dtype=np.int64)].astype(np.int64),
        v=np.r_[v[idx], np.asarray(new_v, dtype=np.int64)].astype(np.int64),
        geoms=np.r_[geoms[idx], np.asarray(new_g, dtype=object)],
        parent=np.r_[idx, np.asarray(new_p, dtype=np.int64)].astype(np.int64),
        nodes=np.vstack(nodes),
    )


def _shortest(
    n: int, u: np.ndarray, v: np.ndarray, w: np.ndarray, sources: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Multi-source Dijkstra: distance (m) from the nearest source and predecessor per node."""
    if not len(sources):
        return np.full(n, np.inf), np.full(n, -9999)
    # sparse matrices sum duplicates: keep the shortest of parallel edges
    a, b = np.minimum(u, v), np.maximum(u, v)
    order = np.lexsort((w, b, a))
    a, b, w = a[order], b[order], w[order]
    first = np.r_[True, (a[1:] != a[:-1]) | (b[1:] != b[:-1])] & (a != b)
    # zero-length pieces would vanish from a sparse matrix
    wt = np.maximum(w[first], 1e-9)
    m = sparse.coo_matrix((wt, (a[first], b[first])), shape=(n, n)).tocsr()
    dist, pred, _ = dijkstra(
        m, directed=False, indices=sources, min_only=True, return_predecessors=True
    )
    return dist, pred


def _pair_table(u: np.ndarray, v: np.ndarray, cut: np.ndarray) -> dict[tuple[int, int], list[int]]:
    """(node, node) -> piece indices between them, cut pieces last."""
    table: dict[tuple[int, int], list[int]] = {}
    for i in np.argsort(cut, kind="stable"):
        a, b = int(u[i]), int(v[i])
        table.setdefault((min(a, b), max(a, b)), []).append(int(i))
    return table


def analyse_routes(
    graph: RoadGraph,
    core: shapely.Polygon,
    area: shapely.Polygon | None = None,
    barricades: gpd.GeoDataFrame | None = None,
    berms: gpd.GeoDataFrame | None = None,
    rubble: gpd.GeoDataFrame | None = None,
    min_passable_m: float = MIN_PASSABLE_M,
    *,
    obstacles: tuple[np.ndarray, Affine] | None = None,
    date_before: str = "",
    date_after: str = "",
) -> RoutesResult:
    """Entry routes into ``core`` before and after, and what cuts them.

    Args:
        graph: road graph from :func:`fortmap.analyze.road_graph.build_road_graph`.
        core: the core polygon in the graph's CRS (metres), e.g. from
            :func:`fortmap.analyze.core.parse_core`.
        area: the analysed area (graph's CRS); its edge is the outside. Defaults to
            ``graph.area``.
        barricades, berms: LineStrings across roads (any CRS; reprojected), optional ``score``
            and ``id`` columns.
        rubble: polygons with ``passable_width_m`` (m; NaN to estimate from the geometry).
        obstacles: (mask, transform) from :func:`fortmap.analyze.clearance.obstacle_mask`
            when both DSMs are given: pieces whose free passage measured on it is under
            ``min_passable_m`` are cut too (``cut_by`` ``dsm_obstacle:<piece>``).
        min_passable_m: narrowest passage (m) that keeps a road open.
        date_before, date_after: ISO dates copied into the layers.

    Returns:
        :class:`RoutesResult` with layers ``routes`` and ``entry_points`` and a summary dict.

    Raises:
        InputError: core not a polygon or outside the area, or no road reaching the area's edge.
    """
    area = graph.area if area is None else area
    if core.geom_type != "Polygon":
        raise InputError(f"core: must be a polygon, got {core.geom_type}")
    if not core.intersects(area):
        raise InputError("core: lies outside the analysed area")
    crs = graph.crs
    p = _split_at_core(graph, core)
    n_nodes, n_pieces = len(p.nodes), len(p.geoms)
    edges = graph.edges
    attrs = {c: edges[c].to_numpy()[p.parent] for c in _ROAD_ATTRS}
    widths = attrs["width_m"].astype(float)
    lengths = shapely.length(p.geoms)
    mids = shapely.line_interpolate_point(p.geoms, 0.5, normalized=True)
    in_core = shapely.within(mids, core)
    outside = np.flatnonzero(shapely.dwithin(shapely.points(p.nodes), area.boundary, EDGE_TOL_M))
    if not len(outside):
        raise InputError("roads: no road reaches the edge of the analysed area")

    feats = [
        f
        for f in (
            cut_features(barricades, "barricade", crs),
            cut_features(berms, "berm", crs),
            cut_features(rubble, "rubble", crs),
        )
        if f is not None
    ]
    cut, cut_by, cut_score, passable = find_cuts(p.geoms, widths, feats, min_passable_m)
    if obstacles is not None:
        measured_cuts(
            p.geoms, widths, obstacles, min_passable_m, (cut, cut_by, cut_score, passable)
        )

    # gates: nodes where a piece inside the core meets one outside it, or the area's edge
    deg_in = np.bincount(np.r_[p.u[in_core], p.v[in_core]], minlength=n_nodes)
    deg_in_open = np.bincount(np.r_[p.u[in_core & ~cut], p.v[in_core & ~cut]], minlength=n_nodes)
    deg_out = np.bincount(np.r_[p.u[~in_core], p.v[~in_core]], minlength=n_nodes)
    is_out = np.zeros(n_nodes, bool)
    is_out[outside] = True
    gates = np.flatnonzero((deg_in > 0) & ((deg_out > 0) | is_out))

    ext = ~in_core
    dist_b, pred_b = _shortest(n_nodes, p.u[ext], p.v[ext], lengths[ext], outside)
    ok = ext & ~cut
    dist_a, _ = _shortest(n_nodes, p.u[ok], p.v[ok], lengths[ok], outside)

    entries = gates[np.isfinite(dist_b[gates])]
    open_after = np.isfinite(dist_a[entries]) & (deg_in_open[entries] > 0)
    pairs = _pair_table(p.u[ext], p.v[ext], cut[ext])
    ext_idx = np.flatnonzero(ext)
    inc_in: dict[int, list[int]] = {}
    for i in np.flatnonzero(in_core):
        inc_in.setdefault(int(p.u[i]), []).append(int(i))
        inc_in.setdefault(int(p.v[i]), []).append(int(i))

    rows = []
    for k, node in enumerate(entries):
        gate = inc_in[int(node)]
        # the road into the core at this gate: the most major, widest piece
        g = max(gate, key=lambda i: (attrs["road_class"][i] == "major", widths[i]))
        blockers: list[str] = []
        score = 1.0
        if not open_after[k]:
            blocking = _blocking_piece(int(node), gate, cut, pred_b, pairs, ext_idx)
            if blocking:
                blockers = sorted({lab for i in blocking for lab in cut_by[i]})
                score = float(max(cut_score[i] for i in blocking))
        rows.append(
            {
                "entry_id": k,
                "status": "open" if open_after[k] else "cut",
                "cut_by": ";".join(blockers),
                **{c: attrs[c][g] for c in _ROAD_ATTRS},
                "route_before_m": float(dist_b[node]),
                "route_after_m": float(dist_a[node]) if open_after[k] else math.nan,
                "_score": score,
            }
        )
    ent = pd.DataFrame(
        rows,
        columns=[
            "entry_id",
            "status",
            "cut_by",
            *_ROAD_ATTRS,
            "route_before_m",
            "route_after_m",
            "_score",
        ],
    )
    entry_layer = findings_frame(
        "entry_points",
        list(shapely.points(p.nodes[entries])),
        ent["_score"].to_numpy(float),
        crs,
        date_before=date_before,
        date_after=date_after,
        evidence=[
            {"cut_by": r.cut_by.split(";") if r.cut_by else [], "route_before_m": r.route_before_m}
            for r in ent.itertuples()
        ],
        extra={c: ent[c].to_numpy() for c in ent.columns if c != "_score"},
    )
    cut_list = [";".join(sorted(set(b))) for b in cut_by]
    routes_layer = findings_frame(
        "routes",
        list(p.geoms),
        np.where(cut, cut_score, 1.0),
        crs,
        date_before=date_before,
        date_after=date_after,
        evidence=[{"cut_by": c.split(";")} if c else {} for c in cut_list],
        extra={
            "status": np.where(cut, "cut", "open"),
            "cut_by": cut_list,
            "in_core": in_core,
            "passable_m": passable,
            **attrs,
        },
    )
    summary = _summary(ent, cut, cut_list, core, n_pieces, len(gates), min_passable_m)
    return RoutesResult(routes=routes_layer, entry_points=entry_layer, summary=summary)


def _blocking_piece(
    node: int,
    gate: list[int],
    cut: np.ndarray,
    pred: np.ndarray,
    pairs: dict[tuple[int, int], list[int]],
    ext_idx: np.ndarray,
) -> list[int]:
    """Pieces holding the cut nearest ``node`` along its shortest route before: the gate's
    pieces into the core when all are cut, else the first pair of nodes on the route whose
    pieces are all cut."""
    if all(cut[i] for i in gate):
        return gate
    cur = node
    while pred[cur] >= 0:
        prev = int(pred[cur])
        ids = [int(ext_idx[i]) for i in pairs[(min(cur, prev), max(cur, prev))]]
        if all(cut[i] for i in ids):
            return ids
        cur = prev
    return []


def _summary(
    ent: pd.DataFrame,
    cut: np.ndarray,
    cut_list: list[str],
    core: shapely.Polygon,
    n_pieces: int,
    n_gates: int,
    min_passable_m: float,
) -> dict:
    before = len(ent)
    open_ = ent[ent.status == "open"]
    kinds: dict[str, int] = {}
    for labels in cut_list:
        for lab in filter(None, labels.split(";")):
            k = lab.split(":", 1)[0]
            kinds[k] = kinds.get(k, 0) + 1
    sb = float(ent.route_before_m.min()) if before else None
    sa = float(open_.route_after_m.min()) if len(open_) else None
    return {
        "core_area_m2": float(core.area),
        "road_pieces": int(n_pieces),
        "road_pieces_cut": int(cut.sum()),
        "cuts_by_kind": kinds,
        "core_crossings": int(n_gates),
        "entries_before": int(before),
        "entries_after": int(len(open_)),
        "entries_cut": int(before - len(open_)),
        "cut_entries": [
            {"entry_id": int(r.entry_id), "name": str(r.name), "cut_by": r.cut_by}
            for r in ent[ent.status == "cut"].itertuples()
        ],
        "shortest_route_before_m": sb,
        "shortest_route_after_m": sa,
        "sealed": bool(before > 0 and len(open_) == 0),
        "min_passable_m": float(min_passable_m),
    }


def routes_summary_json(result: RoutesResult) -> str:
    """The summary as one JSON line (for logs and the run summary)."""
    return json.dumps(result.summary, separators=(",", ":"))


def routes_in_area(
    roads: gpd.GeoDataFrame,
    bounds: tuple[float, float, float, float],
    core: shapely.Polygon,
    obstacles: dict[str, gpd.GeoDataFrame | None],
    clearance: tuple[np.ndarray, Affine] | None = None,
    **dates: str,
) -> RoutesResult:
    """Routes into ``core`` over ``roads`` within the rectangle ``bounds`` (metres), cut by
    ``obstacles`` (``barricades``, ``berms``, ``rubble`` layers): what ``analyze`` and the
    simulator's truth both run. ``clearance``: the DSMs' (obstacle mask, transform), see
    :func:`analyse_routes`; the truth runs without it."""
    area = shapely.box(*bounds)
    return analyse_routes(
        build_road_graph(roads, area),
        core,
        area,
        barricades=obstacles.get("barricades"),
        berms=obstacles.get("berms"),
        rubble=obstacles.get("rubble"),
        obstacles=clearance,
        **dates,
    )
