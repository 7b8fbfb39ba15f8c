"""Which road pieces are cut, and by what: the cut rules of :mod:`fortmap.analyze.routes`.

A piece is cut by a barricade or berm line crossing its centreline, by rubble leaving less
than the narrowest passable width (metres), or, with both DSMs, by a surface rise leaving
too narrow a passage (:mod:`fortmap.analyze.clearance`). Widths and distances are in metres
(the road graph's projected CRS).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from affine import Affine

from fortmap.analyze.clearance import passable_widths

#: ``cut_by`` kind of a cut measured from the DSMs with no recognised feature on it.
DSM_KIND = "dsm_obstacle"


def cut_features(gdf: gpd.GeoDataFrame | None, kind: str, crs) -> gpd.GeoDataFrame | None:  # noqa: ANN001
    """``gdf``'s features in ``crs`` labelled ``kind:id`` with their ``score`` (1 when
    none), and for rubble its ``passable_width_m`` (m, NaN when not given); None when empty."""
    if gdf is None or len(gdf) == 0:
        return None
    if gdf.crs is not None and crs is not None and gdf.crs != crs:
        gdf = gdf.to_crs(crs)
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    ids = gdf["id"].astype(str) if "id" in gdf.columns else pd.Series(gdf.index.astype(str))
    out = gpd.GeoDataFrame(
        {
            "label": [f"{kind}:{i}" for i in ids],
            "score": gdf["score"].to_numpy(float) if "score" in gdf.columns else 1.0,
        },
        geometry=gdf.geometry.to_numpy(),
        crs=gdf.crs,
    )
    if kind == "rubble":
        pw = (
            pd.to_numeric(gdf["passable_width_m"], errors="coerce").to_numpy(float)
            if "passable_width_m" in gdf.columns
            else np.full(len(gdf), np.nan)
        )
        out["passable_width_m"] = pw
    return out


def _rubble_passable(edge: shapely.LineString, width: float, rub: shapely.Geometry) -> float:
    """Width (m) left by rubble without a measured ``passable_width_m``: road width less the
    mean width the rubble covers over the stretch of road it spans."""
    corridor = edge.buffer(width / 2, cap_style="flat")
    part = rub.intersection(corridor)
    covered = part.area
    # the stretch of road it spans: its extent projected onto the centreline
    at = shapely.line_locate_point(edge, shapely.points(shapely.get_coordinates(part)))
    span = float(np.ptp(at)) if len(at) else 0.0
    if covered <= 0 or span <= 0:
        return width
    return max(0.0, width - min(width, covered / span))


def find_cuts(
    geoms: np.ndarray,
    widths: np.ndarray,
    feats: list[gpd.GeoDataFrame],
    min_passable_m: float,
) -> tuple[np.ndarray, list[list[str]], np.ndarray, np.ndarray]:
    """Per piece: cut flag, cutting feature labels, their best score, narrowest passage (m)."""
    n = len(geoms)
    cut = np.zeros(n, bool)
    by: list[list[str]] = [[] for _ in range(n)]
    score = np.zeros(n)
    passable = np.full(n, np.nan)
    tree = shapely.STRtree(geoms)
    half = float(np.nanmax(widths)) / 2 if n else 0.0
    for f in feats:
        fg = f.geometry.to_numpy()
        if "passable_width_m" in f.columns:
            fi, ei = tree.query(fg, predicate="dwithin", distance=half)
            near = shapely.distance(geoms[ei], fg[fi]) <= widths[ei] / 2
            fi, ei = fi[near], ei[near]
            pw = f["passable_width_m"].to_numpy(float)[fi]
            for k in np.flatnonzero(np.isnan(pw)):
                pw[k] = _rubble_passable(geoms[ei[k]], widths[ei[k]], fg[fi[k]])
            # pieces narrower than the rubble's measured gap keep their own width
            pw = np.minimum(pw, widths[ei])
            np.fmin.at(passable, ei, pw)
            hit = pw < min_passable_m
            fi, ei = fi[hit], ei[hit]
        else:
            fi, ei = tree.query(fg, predicate="intersects")
        labels = f["label"].to_numpy()
        sc = f["score"].to_numpy(float)
        for a, b in zip(fi, ei, strict=True):
            cut[b] = True
            by[b].append(labels[a])
            score[b] = max(score[b], sc[a])
    return cut, by, score, passable


def measured_cuts(
    geoms: np.ndarray,
    widths: np.ndarray,
    obstacles: tuple[np.ndarray, Affine],
    min_passable_m: float,
    cuts: tuple[np.ndarray, list[list[str]], np.ndarray, np.ndarray],
) -> None:
    """Add the cuts measured from the DSMs' obstacle mask to ``cuts`` (in place): a piece whose
    free passage is under ``min_passable_m`` is cut even where no feature was recognised; the
    features found keep cutting where they do (the image sees what the DSM may not, e.g. a
    row of blocks under a tree's crown)."""
    cut, cut_by, score, passable = cuts
    pw = passable_widths(geoms, widths, *obstacles)
    for i in np.flatnonzero((pw < min_passable_m) & ~cut):
        cut[i] = True
        cut_by[i].append(f"{DSM_KIND}:{i}")
        score[i] = 1.0
    np.fmin(passable, pw, out=passable)
