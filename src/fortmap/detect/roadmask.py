"""Roads rasterised into one window: which road each pixel is on, its axis, its width.

Barricade and rubble detection look only at road pixels and measure objects in the road's own
frame (along / across the axis), so each road pixel carries the road's index, the direction of
the segment it lies on and the carriageway width in pixels.

Coordinates here are the window's pixel coordinates (x = column, y = row, origin at the
window's top-left corner, y down). ``roads_to_pixels`` turns roads in CRS metres into them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import geopandas as gpd
import numba
import numpy as np
import shapely
from affine import Affine

from fortmap.io.polygon_fill import burn_polygons

#: Margin (m) added on each side of the carriageway: kerbside objects (blocks pushed to the
#: edge, rubble spilling from a facade) still belong to the road, and road widths are nominal.
ROAD_MARGIN_M = 1.0


@dataclass
class RoadRaster:
    """Roads of one window, per pixel.

    Attributes:
        road_id: int32 (rows, cols): index into the roads frame + 1, 0 off road.
        axis: float32 (rows, cols): direction of the road axis at the pixel, radians in pixel
            coordinates (``atan2(drow, dcol)``, modulo pi); NaN off road.
        width_px: float32 (rows, cols): carriageway width in pixels; 0 off road.
        across: float32 (rows, cols): signed distance of the pixel centre from the road axis,
            pixels (positive to the left of the axis direction); NaN off road.
        names: road name per road index ("" when unnamed).
        classes: ``major`` / ``minor`` per road index.
        widths_px: carriageway width in pixels per road index.
    """

    road_id: np.ndarray
    axis: np.ndarray
    width_px: np.ndarray
    across: np.ndarray
    names: list[str]
    classes: list[str]
    widths_px: np.ndarray

    _masks: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def mask(self) -> np.ndarray:
        """bool (rows, cols): True on road pixels (carriageway plus margin). Computed once:
        the arrays are not to be changed after construction."""
        if "mask" not in self._masks:
            self._masks["mask"] = self.road_id > 0
        return self._masks["mask"]

    @property
    def carriageway(self) -> np.ndarray:
        """bool (rows, cols): True on the carriageway itself (margin excluded). Computed
        once, on the road pixels only."""
        if "cw" not in self._masks:
            idx = np.flatnonzero(self.mask)
            cw = np.zeros(self.road_id.shape, bool)
            half = self.width_px.ravel()[idx] / 2 + 0.5
            cw.ravel()[idx] = np.abs(self.across.ravel()[idx]) <= half
            self._masks["cw"] = cw
        return self._masks["cw"]


def roads_to_pixels(roads: gpd.GeoDataFrame, transform: Affine, gsd: float) -> gpd.GeoDataFrame:
    """Roads (CRS metres) in the pixel coordinates of a window.

    Args:
        roads: frame from ``fortmap.io.roads.read_roads`` (``width_m`` in metres).
        transform: the window's affine transform (window pixel -> CRS metres).
        gsd: metres per pixel.

    Returns:
        A copy with geometry in window pixels and a ``width_px`` column (pixels).
    """
    inv = ~transform
    out = roads.copy()
    out["width_px"] = roads["width_m"].to_numpy(float) / gsd
    geoms = shapely.transform(
        roads.geometry.values,
        lambda xy: np.c_[
            inv.a * xy[:, 0] + inv.b * xy[:, 1] + inv.c, inv.d * xy[:, 0] + inv.e * xy[:, 1] + inv.f
        ],
    )
    return out.set_geometry(gpd.GeoSeries(geoms, index=roads.index), crs=None)


def roads_in_window(
    roads_px: gpd.GeoDataFrame, shape: tuple[int, int], margin_px: float = 2.0
) -> RoadRaster:
    """Rasterise roads given in window pixel coordinates.

    Args:
        roads_px: LineStrings in window pixels with ``width_px`` (pixels), and optionally
            ``name`` and ``road_class`` columns (see ``roads_to_pixels``).
        shape: (rows, cols) of the window.
        margin_px: pixels added on each side of the carriageway (``ROAD_MARGIN_M`` / gsd).

    Returns:
        The window's :class:`RoadRaster`. Majors are burnt last, so at crossings the pixel
        belongs to the major road (the one a barricade usually closes).
    """
    h, w = shape
    n = len(roads_px)
    widths = roads_px["width_px"].to_numpy(float) if n else np.zeros(0)
    names = [str(v) for v in roads_px["name"]] if "name" in roads_px else [""] * n
    names = ["" if v in ("None", "nan") else v for v in names]
    classes = (
        [str(v) for v in roads_px["road_class"]] if "road_class" in roads_px else ["minor"] * n
    )

    def empty() -> RoadRaster:
        nan = np.full(shape, np.nan, np.float32)
        return RoadRaster(np.zeros(shape, np.int32), nan, np.zeros(shape, np.float32),
                          nan.copy(), names, classes, widths)  # fmt: skip

    if n == 0:
        return empty()
    pad = margin_px + float(widths.max())
    box = shapely.box(-pad, -pad, w + pad, h + pad)
    order = np.array(sorted(range(n), key=lambda i: classes[i] == "major"), np.int64)
    geoms = roads_px.geometry.to_numpy()[order]
    # every road's segments in one pass (roads in burning order, segments in line order), as
    # the loop over roads gave them: a window holds hundreds of roads
    near = shapely.intersects(geoms, box)
    geoms, order = geoms[near], order[near]
    xy, owner = shapely.get_coordinates(geoms, return_index=True)
    # a segment joins consecutive vertices of one geometry
    inside = np.flatnonzero(owner[:-1] == owner[1:])
    segs = shapely.linestrings(np.stack([xy[inside], xy[inside + 1]], axis=1))
    keep = (shapely.length(segs) != 0) & shapely.intersects(segs, box)
    segs, inside = segs[keep], inside[keep]
    seg_road = order[owner[inside]]
    if not len(segs):
        return empty()
    # Round joins so consecutive segments leave no notch at bends.
    seg_polys = shapely.buffer(segs, widths[seg_road] / 2 + margin_px, quad_segs=4)
    a, b = xy[inside], xy[inside + 1]
    seg_angle = np.arctan2(b[:, 1] - a[:, 1], b[:, 0] - a[:, 0])
    # GDAL's fill, without handing it hundreds of polygons one Python mapping at a time
    seg = burn_polygons(seg_polys, np.arange(1, len(seg_polys) + 1), shape)
    # Per segment the values its pixels take (numpy's elementwise functions, so the same
    # values as per pixel); one pass then writes every array, road and off road.
    out = RoadRaster(
        np.empty(shape, np.int32),
        np.empty(shape, np.float32),
        np.empty(shape, np.float32),
        np.empty(shape, np.float32),
        names,
        classes,
        widths,
    )
    mask = np.empty(shape, np.bool_)
    cw = np.empty(shape, np.bool_)
    _burn(
        seg,
        seg_road.astype(np.int64),
        (seg_angle % np.pi).astype(np.float32),
        widths.astype(np.float32),
        np.sin(seg_angle),
        np.cos(seg_angle),
        np.ascontiguousarray(a[:, 0]),
        np.ascontiguousarray(a[:, 1]),
        out.road_id,
        out.axis,
        out.width_px,
        out.across,
        mask,
        cw,
    )
    # the road mask and the carriageway come out of the same pass
    out._masks["mask"], out._masks["cw"] = mask, cw
    return out


@numba.njit(cache=True, nogil=True)
def _burn(
    seg, seg_road, seg_axis, widths, sin, cos, x0, y0, road_id, axis, width_px, across, mask, cw
):  # pragma: no cover - compiled
    # ``roads_in_window``'s arrays from the segment labels ``seg`` (0 off road): the road
    # id, axis, width and signed offset ``-(x - x0) sin + (y - y0) cos`` of each pixel
    # centre from its segment's start, with the arithmetic of the former numpy passes; and
    # ``RoadRaster.mask`` and ``.carriageway`` (float32 ``|across| <= width / 2 + 0.5``).
    h, w = seg.shape
    two, half = np.float32(2.0), np.float32(0.5)
    for r in range(h):
        for c in range(w):
            k = seg[r, c] - 1
            if k < 0:
                road_id[r, c] = 0
                axis[r, c] = np.nan
                width_px[r, c] = 0.0
                across[r, c] = np.nan
                mask[r, c] = False
                cw[r, c] = False
                continue
            road = seg_road[k]
            road_id[r, c] = road + 1
            axis[r, c] = seg_axis[k]
            width_px[r, c] = widths[road]
            acr = np.float32(
                -(np.float64(c) + 0.5 - x0[k]) * sin[k] + (np.float64(r) + 0.5 - y0[k]) * cos[k]
            )
            across[r, c] = acr
            mask[r, c] = road + 1 > 0
            cw[r, c] = abs(acr) <= widths[road] / two + half


def own_axes(rows: np.ndarray, cols: np.ndarray) -> tuple[float, float, float]:
    """Long axis of a set of pixels, from their second moments.

    Returns:
        (direction of the long axis, radians in pixel coordinates; length along it, px;
        thickness across it, px). Length and thickness are percentile extents (1-99 and
        5-95) plus one pixel, so 1-px tails of misregistration do not count.
    """
    x = np.c_[cols, rows].astype(float)
    x -= x.mean(axis=0)
    if len(x) < 3:
        return 0.0, float(len(x)), 1.0
    _, vec = np.linalg.eigh(x.T @ x)
    major, minor = vec[:, 1], vec[:, 0]
    pm, pn = x @ major, x @ minor
    # np.percentile's Python overhead cost more than the sort for the few hundred pixels of a
    # piece; the kernel repeats its linear interpolation bit for bit
    sm, sn = np.sort(pm), np.sort(pn)
    length = float(_pct(sm, 0.99) - _pct(sm, 0.01)) + 1
    thick = float(_pct(sn, 0.95) - _pct(sn, 0.05)) + 1
    return float(np.arctan2(major[1], major[0])), length, thick


@numba.njit(cache=True, nogil=True)
def _pct(s: np.ndarray, q: float) -> float:  # pragma: no cover - compiled
    """Quantile ``q`` (0..1) of sorted float64 ``s``, as ``np.percentile``'s default (linear)
    method computes it: the same index, weight and two-sided interpolation."""
    n = s.size
    vi = (n - 1) * q
    if vi >= n - 1:
        return s[n - 1]
    p = math.floor(vi)
    g = vi - p
    a, b = s[int(p)], s[int(p) + 1]
    d = b - a
    if g >= 0.5:
        return b - d * (1 - g)
    return a + d * g


def segment_frame(line: shapely.LineString, x: float, y: float) -> tuple[float, np.ndarray]:
    """Direction (radians, pixel coordinates) and start of the segment of ``line`` nearest to
    (x, y): the frame ``roads_in_window`` gives that segment's pixels."""
    xy = np.asarray(line.coords, float)
    a, b = xy[:-1], xy[1:]
    d = b - a
    t = np.clip(
        ((x - a[:, 0]) * d[:, 0] + (y - a[:, 1]) * d[:, 1]) / np.maximum((d**2).sum(1), 1e-12), 0, 1
    )
    near = np.hypot(a[:, 0] + t * d[:, 0] - x, a[:, 1] + t * d[:, 1] - y)
    k = int(near.argmin())
    return float(np.arctan2(d[k, 1], d[k, 0])), a[k]
