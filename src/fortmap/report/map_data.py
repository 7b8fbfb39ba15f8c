"""The data of the report's interactive map: each finding layer's features as SVG path data
(metres from the scene's top-left corner, y down) with their cleaned attributes and colours,
and the affine lon/lat fit of those map metres with true north's angle (``_geo``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import shapely
from pyproj import Transformer

from fortmap.report.styles import style_for
from fortmap.types import VISIBILITY_RES_M, Grid

if TYPE_CHECKING:
    from fortmap.report.html import Run


def _clean(v):
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        return None if not math.isfinite(v) else float(f"{v:.4g}")
    if v is None or isinstance(v, bool | int | str):
        return v
    return str(v)


def _path_d(geom, left: float, top: float, tol: float) -> str | list[float]:
    # Map coordinates: metres from the scene's top-left corner, y down (SVG convention).
    def ring(coords, close: bool) -> str:
        pts = " ".join(f"{x - left:.1f} {top - y:.1f}" for x, y in coords)
        return "M" + pts.replace(" ", ",", 1) + ("Z" if close else "")

    if geom.geom_type == "Point":
        return [round(geom.x - left, 1), round(top - geom.y, 1)]
    g = shapely.simplify(geom, tol, preserve_topology=True)
    out = []
    for part in getattr(g, "geoms", [g]):
        if part.geom_type == "Polygon":
            out.append(ring(part.exterior.coords, True))
            out.extend(ring(r.coords, True) for r in part.interiors)
        elif part.geom_type == "LineString":
            out.append(ring(part.coords, False))
        elif part.geom_type == "Point":
            return [round(part.x - left, 1), round(top - part.y, 1)]
    return "".join(out)


def _map_layers(run: Run) -> list[dict]:
    left, _, _, top = run.grid.bounds
    tol = run.grid.gsd / 2
    out = []
    for name in sorted(run.layers, key=lambda n: (style_for(n).order, n)):
        gdf, st = run.layers[name], style_for(name)
        # Context layers can hold thousands of rows: their long evidence stays in the gpkg.
        drop = {"geometry"} | (
            {"kind", "evidence", "date_before", "date_after"} if st.context else set()
        )
        cols = [c for c in gdf.columns if c not in drop and not gdf[c].isna().all()]
        # visibility polygons trace a coarser raster's cells: half a cell of it is their detail
        layer_tol = max(tol, VISIBILITY_RES_M / 2) if name == "visibility" else tol
        feats = []
        for row, geom in zip(gdf[cols].itertuples(index=False), gdf.geometry, strict=True):
            props = {c: _clean(v) for c, v in zip(cols, row, strict=True)}
            feat = {"g": _path_d(geom, left, top, layer_tol), "p": props}
            colour = st.categories.get(str(props.get(st.category_field)), st.colour)
            if colour != st.colour:
                feat["c"] = colour
            feats.append(feat)
        label = st.label
        if run.left_out.get(name):
            label += (
                f" (damaged and destroyed; {run.left_out[name]:,} intact in findings.gpkg only)"
            )
        out.append(
            {
                "name": name,
                "label": label,
                "colour": st.colour,
                "fill_opacity": st.fill_opacity,
                "width": st.width_px,
                "visible": st.visible,
                "features": feats,
            }
        )
    return out


def _geo(grid: Grid) -> dict:
    """Lon/lat as an affine fit of map metres (x right, y down), and true north's angle."""
    left, bottom, right, top = grid.bounds
    tr = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True)
    xs, ys = np.meshgrid(np.linspace(left, right, 3), np.linspace(bottom, top, 3))
    lon, lat = tr.transform(xs.ravel(), ys.ravel())
    a = np.column_stack([np.ones(9), xs.ravel() - left, top - ys.ravel()])
    clon = np.linalg.lstsq(a, lon, rcond=None)[0]
    clat = np.linalg.lstsq(a, lat, rcond=None)[0]
    cx, cy = (left + right) / 2, (bottom + top) / 2
    lo, la = tr.transform(cx, cy)
    nx, ny = Transformer.from_crs("EPSG:4326", grid.crs, always_xy=True).transform(lo, la + 0.01)
    north = math.degrees(math.atan2(nx - cx, ny - cy))
    return {"lon": clon.tolist(), "lat": clat.tolist(), "north_deg": round(north, 3)}
