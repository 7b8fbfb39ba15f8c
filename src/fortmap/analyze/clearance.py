"""Passable width of road pieces measured from the height change between two DSMs.

Where both surface models are given, an obstacle on a road need not be recognised in the
image to be measured: new material standing on the carriageway is a rise of the surface.

* **Obstacle**: a pixel whose surface rose by ``OBSTACLE_M`` (0.3 m) or more. A car or light
  truck has 0.15-0.2 m of ground clearance and climbs a kerb of about that height; anything a
  third of a metre high (a concrete block, a debris heap, an earth ridge) stops it. Gaps
  narrower than ``FILL_GAP_M`` (1 m) inside an obstacle are filled (no vehicle uses them:
  the rule asks for 3 m), and obstacles covering under ``MIN_OBSTACLE_M2`` (1 m², less than
  the smallest object in scope, a 1.5 m concrete block) are taken for DSM matching noise.
* **Demolition debris**: rise within ``DEBRIS_M`` (3 m) of a fall of the surface of ``STOREY_M``
  (2.5 m, one storey) or more is the spill of a razed building (the simulator spreads it 1-3 m
  beyond the footprint), reported as that building, not as a road block, as the rubble
  detector leaves debris spilt from a razed building to the razed layer. What stands farther
  out still counts, and the features recognised in the image cut whatever they lie on.
* **Passable width** of a piece: at cross-sections every pixel along its centreline, the
  longest free run across the carriageway (the road's ``width_m``), the smallest over the
  piece. A piece with no obstacle on its carriageway keeps NaN (nothing measured).

Everything is in the DSM grid's CRS (metres); the transform maps pixel (col, row) to it.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from affine import Affine
from rasterio.features import rasterize
from rasterio.windows import Window
from scipy import ndimage as ndi

from fortmap.io.raster import GridReader
from fortmap.types import Grid

#: Surface rise (m) that stops a car or light truck (ground clearance 0.15-0.2 m).
OBSTACLE_M = 0.3
#: Gaps (m) inside an obstacle narrower than this are filled.
FILL_GAP_M = 1.0
#: Obstacles (m²) smaller than this are DSM noise.
MIN_OBSTACLE_M2 = 1.0
#: Surface fall (m) of a razed building: one storey.
STOREY_M = 2.5
#: Reach (m) of a razed building's debris spill beyond its footprint.
DEBRIS_M = 3.0


def obstacle_mask(
    dsm_before: np.ndarray, dsm_after: np.ndarray, pixel_m: float, rise_m: float = OBSTACLE_M
) -> np.ndarray:
    """Pixels where new material stands ``rise_m`` (m) or more above the before surface,
    less the debris within ``DEBRIS_M`` of a razed building's fall (see the module's rules).

    Args:
        dsm_before, dsm_after: surface heights (m) on one grid; NaN where unknown.
        pixel_m: pixel size (m).
        rise_m: height gain (m) that counts as an obstacle.

    Returns:
        Boolean mask on the DSMs' grid.
    """
    with np.errstate(invalid="ignore"):
        m = (dsm_after - dsm_before) >= rise_m
    k = max(1, int(round(FILL_GAP_M / pixel_m)))
    if k > 1:
        m = ndi.binary_closing(m, structure=np.ones((k, k), bool), border_value=0)
    _drop_debris(m, dsm_before, dsm_after, pixel_m)
    lab, n = ndi.label(m)
    if n:
        area = np.bincount(lab.ravel(), minlength=n + 1) * pixel_m**2
        keep = area >= MIN_OBSTACLE_M2
        keep[0] = False
        m = keep[lab]
    return m


def storey_falls(dsm_before: np.ndarray, dsm_after: np.ndarray) -> np.ndarray:
    """Pixels where the surface fell by ``STOREY_M`` (m) or more: a razed building."""
    with np.errstate(invalid="ignore"):
        return (dsm_before - dsm_after) >= STOREY_M


def _drop_debris(
    m: np.ndarray, dsm_before: np.ndarray, dsm_after: np.ndarray, pixel_m: float
) -> None:
    """Clear (in place) the pixels of ``m`` within ``DEBRIS_M`` of a storey-high fall."""
    fall = storey_falls(dsm_before, dsm_after)
    if not fall.any():
        return
    lab, _ = ndi.label(m)
    r = int(np.ceil(DEBRIS_M / pixel_m)) + 1
    h, w = m.shape
    # distances only around each obstacle: a fall farther than r pixels is out of reach
    for sl in ndi.find_objects(lab):
        if sl is None:
            continue
        win = (
            slice(max(0, sl[0].start - r), min(h, sl[0].stop + r)),
            slice(max(0, sl[1].start - r), min(w, sl[1].stop + r)),
        )
        f = fall[win]
        if f.any():
            m[win] &= ndi.distance_transform_edt(~f, sampling=pixel_m) > DEBRIS_M


class SparseMask:
    """A boolean raster held as the sorted flat indices of its True pixels.

    Obstacles are kept only along road corridors, so a city-wide scene costs memory in
    proportion to the obstacles on its roads, not to its pixels. Indexing with integer
    (rows, cols) arrays and ``nonzero()`` behave as on a dense boolean array.

    Example:
        >>> m = SparseMask(np.array([5, 1]), (2, 3))
        >>> m[np.array([0, 1]), np.array([1, 2])].tolist(), m.any()
        ([True, True], True)
    """

    def __init__(self, flat: np.ndarray, shape: tuple[int, int]) -> None:
        self.flat = np.sort(np.asarray(flat, np.int64))
        self.shape = shape

    def any(self) -> bool:
        return bool(self.flat.size)

    def nonzero(self) -> tuple[np.ndarray, np.ndarray]:
        return np.divmod(self.flat, self.shape[1])

    def __getitem__(self, rc: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        r, c = rc
        f = np.asarray(r, np.int64) * self.shape[1] + np.asarray(c, np.int64)
        if not self.flat.size:
            return np.zeros(f.shape, bool)
        i = np.minimum(np.searchsorted(self.flat, f), self.flat.size - 1)
        return self.flat[i] == f


def obstacles_on_grid(
    dsm_before: GridReader,
    dsm_after: GridReader,
    grid: Grid,
    roads: gpd.GeoDataFrame | None = None,
    strip_rows: int = 1024,
    rise_m: float = OBSTACLE_M,
) -> tuple[SparseMask, Affine]:
    """:func:`obstacle_mask` of two DSM readers over the whole ``grid``, read in strips of
    ``strip_rows`` rows (overlapping by the gap filled and the debris reach).

    Args:
        dsm_before, dsm_after: DSM readers on ``grid`` (metres), NaN where unknown (a
            ``dsm_noise.CorrectedDsm``; a plain ``GridReader`` reads nodata as its value).
        grid: the analysis grid.
        roads: road centrelines in the grid's CRS with ``width_m`` (m); only obstacles within
            half a road's width (plus a pixel) of its centreline are kept. None keeps all.
        strip_rows: rows read at once.
        rise_m: height gain (m) that counts as an obstacle: ``OBSTACLE_M``, or more where the
            DSMs' noise asks for it (``fortmap.detect.dsm_noise.DsmRules``).

    Returns:
        (mask, transform) as :func:`fortmap.analyze.routes.analyse_routes` takes.
    """
    h, w = grid.height, grid.width
    px = grid.gsd
    # overlap: the gap filled and the debris reach, so strips join seamlessly
    pad = max(1, int(round(FILL_GAP_M / px)), int(np.ceil(DEBRIS_M / px))) + 1
    corridor = None
    if roads is not None:
        half = roads["width_m"].fillna(10.0).to_numpy(float) / 2 + px
        corridor = [(g, 1) for g in shapely.buffer(roads.geometry.to_numpy(), half)]
    found = []
    for r0 in range(0, h, strip_rows):
        a0, a1 = max(0, r0 - pad), min(h, r0 + strip_rows + pad)
        win = Window(0, a0, w, a1 - a0)
        m = obstacle_mask(dsm_before.read(win)[0], dsm_after.read(win)[0], px, rise_m)
        n = min(strip_rows, h - r0)
        m = m[r0 - a0 : r0 - a0 + n]
        if corridor is not None and m.any():
            t = grid.transform @ Affine.translation(0, r0)
            m &= rasterize(corridor, out_shape=(n, w), transform=t, dtype=np.uint8).astype(bool)
        found.append(np.flatnonzero(m) + r0 * w)
    return SparseMask(np.concatenate(found) if found else np.zeros(0, np.int64), (h, w)), (
        grid.transform
    )


def passable_widths(
    geoms: np.ndarray,
    widths: np.ndarray,
    obstacles: np.ndarray | SparseMask,
    transform: Affine,
) -> np.ndarray:
    """Narrowest free passage (m) across each road piece's carriageway.

    Args:
        geoms: LineString centrelines in the grid's CRS (metres).
        widths: carriageway widths (m), one per piece.
        obstacles: boolean obstacle mask (see :func:`obstacle_mask`), dense or
            :class:`SparseMask`.
        transform: affine transform of the mask (pixel -> CRS metres), north-up.

    Returns:
        Width (m) per piece; NaN where no obstacle touches the carriageway or the piece lies
        off the grid.
    """
    out = np.full(len(geoms), np.nan)
    if not obstacles.any():
        return out
    step = abs(transform.a)
    inv = ~transform
    h, w = obstacles.shape
    # only pieces whose carriageway reaches an obstacle are sampled
    rows, cols = obstacles.nonzero()
    xs, ys = _apply(transform, cols + 0.5, rows + 0.5)
    tree = shapely.STRtree(geoms)
    near = tree.query(shapely.points(xs, ys), predicate="dwithin", distance=float(widths.max()) / 2)
    for i in np.unique(near[1]):
        line, width = geoms[i], float(widths[i])
        n_at = max(2, int(np.ceil(line.length / step)) + 1)
        d = np.linspace(0.0, line.length, n_at)
        p = shapely.get_coordinates(shapely.line_interpolate_point(line, d))
        # direction from neighbouring stations; the normal is the cross-section
        t = np.gradient(p, axis=0)
        t /= np.maximum(np.hypot(t[:, 0], t[:, 1]), 1e-9)[:, None]
        nrm = np.c_[-t[:, 1], t[:, 0]]
        k = max(2, int(np.ceil(width / step)))
        q = (np.arange(k) + 0.5) * (width / k) - width / 2
        sx = p[:, 0, None] + q[None, :] * nrm[:, 0, None]
        sy = p[:, 1, None] + q[None, :] * nrm[:, 1, None]
        c, r = _apply(inv, sx, sy)
        c, r = np.floor(c).astype(np.int64), np.floor(r).astype(np.int64)
        inside = (c >= 0) & (c < w) & (r >= 0) & (r < h)
        blocked = np.zeros(c.shape, bool)
        blocked[inside] = obstacles[r[inside], c[inside]]
        if not blocked.any():
            continue
        out[i] = _longest_free(blocked).min() * (width / k)
    return out


def _apply(t: Affine, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return t.a * x + t.b * y + t.c, t.d * x + t.e * y + t.f


def _longest_free(blocked: np.ndarray) -> np.ndarray:
    """Longest run of False per row of ``blocked`` (samples)."""
    n, k = blocked.shape
    run = np.zeros(n, np.int64)
    best = np.zeros(n, np.int64)
    for j in range(k):
        run = np.where(blocked[:, j], 0, run + 1)
        best = np.maximum(best, run)
    return best
