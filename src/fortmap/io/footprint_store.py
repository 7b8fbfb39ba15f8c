"""A scene's building footprints, held in memory for a district, in a temporary file beyond.

``analyze`` needs the footprints three ways: those whose centroid lies in each window (to score
them), those near a berm tile (to tell a roof from a ridge), and all of them once more to write
the ``buildings`` layer. A district's few thousand footprints are held in memory as a
GeoDataFrame. Beyond :data:`MAX_IN_MEMORY` footprints they are copied, a run of
:data:`BATCH` at a time, into a temporary GeoPackage in the analysis CRS with a spatial
index, and each window reads back only its own: memory then stays bounded by a run and a
window, however many footprints a city has (about 2 KB each when all are held).

Rows are numbered 0..n-1 in file order (multi-polygons split into parts) in both cases, so the
windows, the feature tables and the layer agree whichever way the footprints are held.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely
from rasterio.windows import Window

from fortmap.errors import InputError
from fortmap.io.grids import Grid, mosaic_mask, to_pixel
from fortmap.io.output import FAST_SQLITE, sqlite_options
from fortmap.io.vector import footprint_parts, footprints_inside, read_vector, warn_outside

#: Most footprints held in memory (a 2 km district has about 6,400); more go to a file.
#: Read at call time, so tests can lower it.
MAX_IN_MEMORY = 20_000
#: Footprints read from the input, written to the file, or read back for the layer at a time.
#: Read at call time.
BATCH = 20_000
#: Largest GeoJSON read in one go (bytes; about 40,000 footprints). GeoJSON has no random
#: access, so GDAL scans the whole file for each run of a larger one (a GeoPackage reads
#: faster), but the parse of a whole city's file leaves the heap fragmented: 41 MB of GeoJSON
#: read whole raised the 8 km scene's peak by 60 MB. Read at call time.
WHOLE_TEXT_B = 16 << 20
_LAYER = "footprints"
#: The temporary file's own row key: ``fid`` is the footprint's row number in the input.
_ROW = "fm_row"
_ROLE = "building footprints"
_NEAR_SQL = (
    f"SELECT f.{_ROW}, f.geom FROM {_LAYER} f JOIN rtree_{_LAYER}_geom r ON f.{_ROW} = r.id "
    f"WHERE r.maxx >= ? AND r.minx <= ? AND r.maxy >= ? AND r.miny <= ? ORDER BY f.{_ROW}"
)
#: Bytes of a GeoPackage geometry's envelope, by the envelope code in its header's flags.
_ENVELOPE_B = (0, 32, 48, 48, 64)


def _gpkg_wkb(blob: bytes) -> bytes:
    """The WKB inside a GeoPackage geometry blob (standard, not extended): after the 8-byte
    header ("GP", version, flags, SRS id) and the envelope the flags announce."""
    return blob[8 + _ENVELOPE_B[(blob[3] >> 1) & 7] :]


class FootprintStore:
    """The footprints of a scene (analysis CRS), whole in memory or in a temporary GeoPackage.

    Use :func:`open_footprints`. Pixel coordinates are the analysis grid's.

    Attributes:
        grid: the analysis grid.
        count: number of footprint parts (rows).
        frame: all of them (GeoDataFrame, index = row) when held in memory, else None.
        path: the temporary GeoPackage when not held in memory, else None.
        columns: the attribute columns (the input's plus ``fid``).
    """

    def __init__(
        self,
        grid: Grid,
        frame: gpd.GeoDataFrame | None,
        path: Path | None,
        count: int,
        columns: list[str],
    ) -> None:
        self.grid = grid
        self.frame = frame
        self.path = path
        self.count = count
        self.columns = columns

    def __len__(self) -> int:
        return self.count

    def __getstate__(self) -> dict:
        # pickled with the scene context for Dask workers: a connection does not travel
        return {k: v for k, v in self.__dict__.items() if k != "_con"}

    def close(self) -> None:
        """Remove the temporary file (if any)."""
        con = self.__dict__.pop("_con", None)
        if con is not None:
            con.close()
        if self.path is not None:
            shutil.rmtree(self.path.parent, ignore_errors=True)

    def __enter__(self) -> FootprintStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _in_bounds(
        self, bounds: tuple[float, float, float, float]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows and polygons (analysis CRS), by row, of the footprints whose envelope meets
        ``bounds`` (left, bottom, right, top); from the file, those whose spatial index entry
        does (float32 envelopes rounded outwards: a few more)."""
        if self.frame is not None:
            g = self.frame.geometry.values
            b = shapely.bounds(g)
            hit = (
                (b[:, 0] <= bounds[2])
                & (b[:, 2] >= bounds[0])
                & (b[:, 1] <= bounds[3])
                & (b[:, 3] >= bounds[1])
            )
            return np.flatnonzero(hit), g[hit]
        # straight from SQLite through the GeoPackage's R-tree: a GDAL read per window cost
        # ten times as much (about 5 ms for a few hundred footprints)
        con = self.__dict__.get("_con")
        if con is None:
            con = self._con = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
        got = con.execute(_NEAR_SQL, (bounds[0], bounds[2], bounds[1], bounds[3])).fetchall()
        rows = np.fromiter((r for r, _ in got), np.int64, len(got)) - 1
        return rows, shapely.from_wkb([_gpkg_wkb(g) for _, g in got])

    def _crs_bounds(self, col0: float, row0: float, col1: float, row1: float) -> tuple:
        """Bounds in the analysis CRS of a box of grid pixels, one pixel wider each way."""
        t = self.grid.transform
        cols = np.array([col0 - 1, col1 + 1, col0 - 1, col1 + 1], np.float64)
        rows = np.array([row0 - 1, row0 - 1, row1 + 1, row1 + 1], np.float64)
        xs = t.a * cols + t.b * rows + t.c
        ys = t.d * cols + t.e * rows + t.f
        return (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))

    def window_footprints(
        self, cores: list[Window], window_px: int
    ) -> Iterator[list[tuple[int, shapely.Polygon]]]:
        """For each core in turn, (row, polygon in grid pixels) of the footprints whose centroid
        lies in it, by row.

        A centroid is given to the window of its pixel (clamped to the grid), with windows on a
        lattice of ``window_px`` from the grid's origin, as :func:`fortmap.tiles.windows` cuts
        them.
        """
        g = self.grid
        ncols = int(np.ceil(g.width / window_px))

        def owner(px: list) -> np.ndarray:
            # centroids in one vectorised call: the same points as each polygon's ``centroid``
            cen = shapely.centroid(np.asarray(px, dtype=object))
            cy = np.minimum(shapely.get_y(cen), g.height - 1) // window_px
            cx = np.minimum(shapely.get_x(cen), g.width - 1) // window_px
            return (cy * ncols + cx).astype(int)

        if self.frame is not None:
            px = to_pixel(self.frame.geometry.values, g.transform)
            assign: dict[int, list] = {i: [] for i in range(len(cores))}
            for i, (p, wi) in enumerate(zip(px, owner(px).tolist(), strict=True)):
                assign[wi].append((i, p))
            for k in range(len(cores)):
                yield assign.pop(k)
            return
        for k, core in enumerate(cores):
            c0, r0 = core.col_off, core.row_off
            rows, geoms = self._in_bounds(
                self._crs_bounds(c0, r0, c0 + core.width, r0 + core.height)
            )
            if not len(rows):
                yield []
                continue
            px = to_pixel(geoms, g.transform)
            mine = np.flatnonzero(owner(px) == k)
            yield [(int(rows[i]), px[i]) for i in mine.tolist()]

    def pixels_near(self, col0: float, row0: float, col1: float, row1: float) -> np.ndarray:
        """Polygons (grid pixels, by row) of the footprints whose envelope meets a pixel box;
        a superset of those that intersect it."""
        _, geoms = self._in_bounds(self._crs_bounds(col0, row0, col1, row1))
        return np.asarray(to_pixel(geoms, self.grid.transform), dtype=object)

    def batches(
        self, size: int | None = None, columns: list[str] | None = None
    ) -> Iterator[gpd.GeoDataFrame]:
        """All footprints with their attributes (or only ``columns``), a run of rows at a time,
        in row order."""
        if self.frame is not None:
            yield self.frame
            return
        size = size or BATCH
        for start in range(0, self.count, size):
            gdf = pyogrio.read_dataframe(
                self.path, layer=_LAYER, skip_features=start, max_features=size,
                columns=columns, fid_as_index=True,
            )  # fmt: skip
            gdf.index = gdf.index.astype(np.int64) - 1
            yield gdf

    def mosaic_mask(self, side: int) -> np.ndarray:
        """The footprints burnt on the sample mosaic of the grid
        (:func:`fortmap.io.grids.mosaic_mask`), a run at a time: bool."""
        mask = None
        for geoms in self.geometries():
            m = mosaic_mask(self.grid, side, geoms)
            mask = m if mask is None else mask | m
        return mask

    def geometries(self) -> Iterator[np.ndarray]:
        """All footprint polygons (analysis CRS), a run at a time."""
        for gdf in self.batches(columns=[]):
            yield gdf.geometry.values


def open_footprints(
    path: str | Path,
    grid: Grid,
    work_dir: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> FootprintStore:
    """Read building footprints (any CRS) onto the analysis grid's CRS, keeping those mostly
    inside it (see :func:`fortmap.io.vector.read_footprints`).

    Files of up to :data:`MAX_IN_MEMORY` features are held in memory; beyond, the parts are
    copied into a temporary GeoPackage in a new folder under ``work_dir`` (the system's
    temporary folder if None), removed by :meth:`FootprintStore.close`.

    Args:
        path: polygons (GeoJSON/GPKG...) in any CRS.
        grid: the analysis grid (CRS and bounds).
        work_dir: where the temporary file goes, if one is needed.
        progress: called as ``progress(features read, features in the file)`` after each run
            copied to the file (a city's: a district's are read at once).

    Raises:
        InputError: unreadable, not polygons, or none inside the image.
    """
    limit = MAX_IN_MEMORY
    p = Path(path)
    # GDAL scans a GeoJSON whole for every read, whatever part of it is asked for: one up to
    # WHOLE_TEXT_B is read once, a larger one by runs
    text = p.suffix.lower() in (".geojson", ".json") and p.is_file()
    whole = text and p.stat().st_size <= WHOLE_TEXT_B
    if text and not whole:
        warnings.warn(
            f"{path}: a {p.stat().st_size / 2**20:.0f} MB GeoJSON is read {BATCH:,} footprints at "
            "a time, each read a scan of the whole file; as a GeoPackage it reads several times "
            "faster",
            stacklevel=2,
        )
    first = read_vector(path, _ROLE, max_features=None if whole else limit + 1)
    if len(first) <= limit:
        gdf = footprints_inside(first, grid.crs, grid.bounds, path)
        cols = [c for c in gdf.columns if c != "geometry"]
        return FootprintStore(grid, gdf, None, len(gdf), cols)
    folder = Path(tempfile.mkdtemp(prefix=".fortmap-footprints-", dir=work_dir))
    out = folder / "footprints.gpkg"
    try:
        # GDAL counts a GeoJSON's features with one more scan: a small price for a city's bar
        total = int(pyogrio.read_info(path)["features"]) if progress is not None else 0
        runs = _runs(path, first, whole, limit + 1)
        count, cols = _spool(
            path, runs, grid, out, lambda n: progress(n, total) if progress else None
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FootprintStore(grid, None, out, count, cols)


def _runs(
    path: str | Path, first: gpd.GeoDataFrame, whole: bool, want: int
) -> Iterator[gpd.GeoDataFrame]:
    """The file's features a run of :data:`BATCH` at a time: slices of ``first`` when it is the
    whole file, else ``first`` (``want`` asked for) and the runs read after it."""
    if whole:
        for start in range(0, len(first), BATCH):
            yield first.iloc[start : start + BATCH]
        return
    gdf, skip = first, 0
    while True:
        yield gdf
        skip += len(gdf)
        if len(gdf) < want:
            return
        gdf, want = read_vector(path, _ROLE, skip_features=skip, max_features=BATCH), BATCH
        if gdf.empty:
            return


def _spool(
    path: str | Path,
    runs: Iterator[gpd.GeoDataFrame],
    grid: Grid,
    out: Path,
    tell: Callable[[int], None],
) -> tuple[int, list]:
    """Copy the footprints' parts into ``out``, a run at a time, calling ``tell(features read)``
    after each; (count, attribute columns)."""
    count = fid0 = n_out = n_read = 0
    cols: list[str] | None = None
    with sqlite_options(FAST_SQLITE):
        for gdf in runs:
            n_read += len(gdf)
            fid_next = fid0 + int((gdf.geometry.notna() & ~gdf.geometry.is_empty).sum())
            parts, out_n = footprint_parts(gdf, grid.crs, grid.bounds, path, fid0)
            fid0, n_out = fid_next, n_out + out_n
            if parts.empty:
                tell(n_read)
                continue
            if cols is None:
                cols = [c for c in parts.columns if c != "geometry"]
            # columns in the first run's order: a later run may lack one (all null)
            for c in cols:
                if c not in parts:
                    parts[c] = None
            pyogrio.write_dataframe(
                parts[[*cols, "geometry"]],
                out,
                layer=_LAYER,
                driver="GPKG",
                append=count > 0,
                promote_to_multi=False,
                geometry_type="Polygon",
                # the key, the geometry column and its R-tree that ``_NEAR_SQL`` reads
                layer_options={"FID": _ROW, "GEOMETRY_NAME": "geom", "SPATIAL_INDEX": "YES"},
            )
            count += len(parts)
            tell(n_read)
    warn_outside(path, n_out)
    if count == 0:
        raise InputError(f"{path}: no building footprint lies inside the image")
    return count, cols or []
