"""Time the route analysis on a synthetic street grid of about 50,000 road pieces.

The grid has ``n`` east-west and ``n`` north-south streets ``spacing`` metres apart, each one
long LineString sharing a vertex with every street it crosses (as in OpenStreetMap), so the
graph is built by the same junction detection real data goes through. The core is a circle
in the middle; barricades and berms are dropped at random across streets, and rubble on a
few. Prints the timings (s) of building the graph and of the analysis (median of repeats),
and the summary.

    python benchmarks/bench_routes.py [--n 159] [--spacing 50] [--cuts 2000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import geopandas as gpd
import numpy as np
import shapely

from fortmap.analyze.road_graph import build_road_graph
from fortmap.analyze.routes import analyse_routes

CRS = "EPSG:32637"


def grid_roads(n: int, spacing: float) -> gpd.GeoDataFrame:
    """``n`` x ``n`` street grid, one LineString per street, vertices at every crossing."""
    t = np.arange(n) * spacing
    rows = [shapely.linestrings(np.c_[t, np.full(n, y)]) for y in t]
    cols = [shapely.linestrings(np.c_[np.full(n, x), t]) for x in t]
    major = [i % 10 == 0 for i in range(n)] * 2
    return gpd.GeoDataFrame(
        {
            "road_class": np.where(major, "major", "minor"),
            "highway": np.where(major, "secondary", "residential"),
            "name": [f"street {i}" for i in range(2 * n)],
            "width_m": np.where(major, 8.0, 6.0),
        },
        geometry=rows + cols,
        crs=CRS,
    )


def random_cuts(
    n: int, spacing: float, k: int, rng: np.random.Generator
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """``k`` barricades, ``k // 4`` berms and ``k // 4`` rubble piles across random streets."""

    def across(m: int) -> list[shapely.LineString]:
        i = rng.integers(0, n, m) * spacing
        s = (rng.integers(0, n - 1, m) + rng.uniform(0.2, 0.8, m)) * spacing
        vertical = rng.random(m) < 0.5
        out = []
        for a, b, v in zip(i, s, vertical, strict=True):
            out.append(
                shapely.LineString([(a - 6, b), (a + 6, b)] if v else [(b, a - 6), (b, a + 6)])
            )
        return out

    bar = gpd.GeoDataFrame({"score": rng.uniform(0.5, 1, k)}, geometry=across(k), crs=CRS)
    berm = gpd.GeoDataFrame(geometry=across(k // 4), crs=CRS)
    piles = [g.buffer(4) for g in across(k // 4)]
    rub = gpd.GeoDataFrame(
        {"passable_width_m": rng.uniform(0, 6, len(piles))}, geometry=piles, crs=CRS
    )
    return bar, berm, rub


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=159, help="streets each way (159: ~50k pieces)")
    ap.add_argument("--spacing", type=float, default=50.0, help="street spacing, metres")
    ap.add_argument("--cuts", type=int, default=2000, help="number of barricades")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    roads = grid_roads(args.n, args.spacing)
    side = (args.n - 1) * args.spacing
    # the area sits half a block inside the grid, so streets cross its edge
    area = shapely.box(args.spacing / 2, args.spacing / 2, side - args.spacing / 2, side)
    core = shapely.Point(side / 2, side / 2).buffer(side / 8)
    bar, berm, rub = random_cuts(args.n, args.spacing, args.cuts, rng)

    t = time.perf_counter()
    graph = build_road_graph(roads, area)
    t_build = time.perf_counter() - t
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        res = analyse_routes(graph, core, area, barricades=bar, berms=berm, rubble=rub)
        times.append(time.perf_counter() - t)
    s = dict(res.summary)
    s.pop("cut_entries")
    print(f"edges in graph: {len(graph.edges)}  nodes: {len(graph.nodes)}")
    print(f"build_road_graph: {t_build:.2f} s")
    print(f"analyse_routes:   {statistics.median(times):.2f} s (median of {args.repeat})")
    print(json.dumps(s, indent=1))


if __name__ == "__main__":
    main()
