"""Open rasters, check them, and read them by windows on one grid.

Every image is read onto the *before* image's grid: the after image through a GDAL warped
VRT, so nothing is ever loaded whole. Pixel values are returned as float32 reflectance-like
numbers, scaled per band by a constant fixed once per scene so that windows agree.

The numba kernels of the direct reads (sub-pixel shift, scaling) are in
:mod:`fortmap.io.shift_kernels`; whole rasters read without a georeference (``PlainRaster``,
``read_plain_raster``) in :mod:`fortmap.io.plain_raster`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from fortmap.errors import InputError, NoOverlapError, NotGeoreferencedError
from fortmap.io.shift_kernels import bilinear_shift, scale_native
from fortmap.types import DATE_TAG, Grid

#: How to georeference a plain image; shown whenever an input has no CRS or geotransform.
HOW_TO_GEOREFERENCE = (
    "georeference it first, e.g. `gdal_translate -a_srs EPSG:32637 -a_ullr ULX ULY LRX LRY in.png out.tif` "
    "or with ground control points (`gdal_translate -gcp ...` then `gdalwarp`); "
    "fortmap.io.georef has helpers that fit the transform from matching pixel and map coordinates"
)

_SUPPORTED_DTYPES = {"uint8", "uint16", "int16", "uint32", "int32", "float32", "float64"}
_DATE_TAGS = (DATE_TAG, "TIFFTAG_DATETIME", "ACQUISITIONDATETIME", "DATE_ACQUIRED", "capture_date")


@dataclass
class RasterInfo:
    """What fortmap needs to know about an input raster.

    Attributes:
        path: the file.
        grid: its own grid (CRS, transform, shape).
        count: number of bands.
        dtype: numpy dtype name of the pixels.
        nodata: nodata value, or None.
        date: acquisition date (ISO 8601 string) from its tags, or "".
        tags: dataset-level metadata tags.
    """

    path: Path
    grid: Grid
    count: int
    dtype: str
    nodata: float | None
    date: str = ""
    tags: dict[str, str] = field(default_factory=dict)


def _date_from_tags(tags: dict[str, str]) -> str:
    for key in _DATE_TAGS:
        value = tags.get(key, "").strip()
        if value:
            # TIFFTAG_DATETIME is "YYYY:MM:DD HH:MM:SS"; keep the date part as ISO.
            head = value[:10].replace(":", "-")
            if len(head) == 10 and head[4] == "-" and head[7] == "-":
                return head
    return ""


def open_info(path: str | Path, role: str = "raster") -> RasterInfo:
    """Check that ``path`` is a georeferenced raster fortmap can read, and describe it.

    Args:
        path: a GeoTIFF/COG or any raster GDAL reads.
        role: what the file is for (``before image``, ``DSM``...), used in messages.

    Raises:
        InputError: missing, unreadable, not a raster, unsupported pixel type.
        NotGeoreferencedError: no CRS or no geotransform.

    Example:
        >>> info = open_info("before.tif", "before image")  # doctest: +SKIP
        >>> info.grid.gsd  # metres per pixel  # doctest: +SKIP
        0.5
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: {role} not found")
    if p.is_dir():
        raise InputError(f"{p}: {role} is a directory, expected a raster file")
    try:
        with warnings.catch_warnings():
            # we raise our own, clearer error for rasters without a georeference
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            ds = rasterio.open(p)
        with ds:
            crs, transform = ds.crs, ds.transform
            # an alpha band is a mask, not data
            data_bands = [i + 1 for i, ci in enumerate(ds.colorinterp) if ci != ColorInterp.alpha]
            count, dtypes, nodata = len(data_bands), set(ds.dtypes), ds.nodata
            width, height = ds.width, ds.height
            tags = ds.tags()
    except RasterioIOError as exc:
        reason = str(exc).split("\n")[0]
        if "not recognized as" in reason or "not a supported" in reason:
            reason = "not a raster GDAL can read"
        raise InputError(f"{p}: cannot read {role}: {reason}") from None
    if crs is None or transform == Affine.identity():
        what = "no CRS" if crs is None else "no geotransform"
        raise NotGeoreferencedError(
            f"{p}: {role} is not georeferenced ({what}); {HOW_TO_GEOREFERENCE}"
        )
    if len(dtypes) != 1 or not dtypes <= _SUPPORTED_DTYPES:
        raise InputError(f"{p}: {role} has unsupported pixel type {sorted(dtypes)}")
    if count < 1 or width < 2 or height < 2:
        raise InputError(f"{p}: {role} is empty ({count} bands, {width}x{height} pixels)")
    return RasterInfo(
        path=p,
        grid=Grid(crs=crs, transform=transform, width=width, height=height),
        count=count,
        dtype=dtypes.pop(),
        nodata=nodata,
        date=_date_from_tags(tags),
        tags=tags,
    )


def check_overlap(a: RasterInfo, b: RasterInfo) -> float:
    """Fraction of ``a``'s area that ``b`` covers, computed in ``a``'s CRS.

    Raises:
        NoOverlapError: when they do not overlap at all.
    """
    from rasterio.warp import transform_bounds

    ab = a.grid.bounds
    try:
        bb = transform_bounds(b.grid.crs, a.grid.crs, *b.grid.bounds, densify_pts=21)
    except Exception as exc:  # pyproj/GDAL transform failures
        raise NoOverlapError(
            f"{b.path}: cannot transform its bounds to {a.path}'s CRS: {exc}"
        ) from None
    w = min(ab[2], bb[2]) - max(ab[0], bb[0])
    h = min(ab[3], bb[3]) - max(ab[1], bb[1])
    if w <= 0 or h <= 0:
        raise NoOverlapError(f"{b.path}: does not overlap {a.path} on the ground")
    return float(w * h / ((ab[2] - ab[0]) * (ab[3] - ab[1])))


class GridReader:
    """Reads one raster by windows of a target grid, warping it onto that grid when needed.

    The source is opened lazily (so a reader can be pickled to a Dask worker). ``read`` returns
    float32 values mapped per band as ``raw * scale + offset``. ``set_pixel_warp`` displaces the
    read by a small affine warp in target pixels: ``read(w)`` then returns the source as seen at
    ``target(warp(col, row))``, which is how co-registration is applied with a single resampling.

    Args:
        path: the raster file.
        grid: the grid to read on (usually the before image's).
        bands: 1-based band indexes to read (default: all, up to 3 for RGB imagery is the caller's choice).
        resampling: GDAL resampling used when warping.
    """

    def __init__(
        self,
        path: str | Path,
        grid: Grid,
        bands: list[int] | None = None,
        resampling: Resampling = Resampling.bilinear,
    ) -> None:
        self.path = Path(path)
        self.grid = grid
        self.bands = bands
        self.resampling = resampling
        self.scale: np.ndarray | None = None
        self.offset: np.ndarray | None = None
        self.offset_px: Affine = Affine.identity()
        #: read straight from the file when the grids match (False forces GDAL's warper)
        self.direct = True
        self._ds = None
        self._vrt = None
        # (dataset, grid, warp, direct flag, offset) of the last ``_direct_offset`` and
        # (dataset, every pixel valid) of the last mask check: a window reads them several
        # times, and comparing CRSs or listing mask flags costs more than the check itself
        self._direct_memo: tuple | None = None
        self._valid_memo: tuple | None = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_ds"] = None
        state["_vrt"] = None
        state["_direct_memo"] = None
        state["_valid_memo"] = None
        return state

    def _all_valid(self, ds) -> bool:
        """Whether ``ds`` has no nodata, alpha or mask band (every pixel is valid)."""
        memo = self.__dict__.get("_valid_memo")
        if memo is None or memo[0] is not ds:
            memo = (ds, all(f == [MaskFlags.all_valid] for f in ds.mask_flag_enums))
            self._valid_memo = memo
        return memo[1]

    def set_pixel_warp(self, warp: Affine) -> None:
        """Apply ``warp`` (target pixel -> displaced target pixel) before reading."""
        self.offset_px = warp
        # Only the warped view depends on the warp. The file itself stays open, so the blocks
        # GDAL has already decompressed (co-registration reads the same tiles before and
        # after setting the shift) stay in its block cache instead of being decoded again.
        if self._vrt is not None and self._vrt is not self._ds:
            self._vrt.close()
        self._vrt = None

    def close(self) -> None:
        """Close the underlying dataset (reopened on the next read)."""
        if self._vrt is not None:
            self._vrt.close()
        if self._ds is not None:
            self._ds.close()
        self._ds = self._vrt = None

    def _direct_offset(self) -> tuple[float, float] | None:
        """Source pixel offset (x, y) when the source is on the grid's CRS and pixel size and
        the warp is a translation: then a window is read straight from the file and shifted by
        bilinear interpolation, which is much cheaper than GDAL's general warper."""
        if not self.direct:
            return None
        if self._ds is None:
            self._ds = rasterio.open(self.path)
        memo = self.__dict__.get("_direct_memo")
        if (
            memo is not None
            and memo[0] is self._ds
            and memo[1] is self.grid
            and memo[2] == self.offset_px
        ):
            return memo[3]
        off = self._find_direct_offset()
        self._direct_memo = (self._ds, self.grid, self.offset_px, off)
        return off

    def _find_direct_offset(self) -> tuple[float, float] | None:
        ds, g, w = self._ds, self.grid.transform, self.offset_px
        if ds.crs != self.grid.crs or w.b or w.d or w.a != 1 or w.e != 1:
            return None
        t = ds.transform
        if t.b or t.d or g.b or g.d:
            return None
        if abs(t.a - g.a) > 1e-9 * abs(g.a) or abs(t.e - g.e) > 1e-9 * abs(g.e):
            return None
        src = ~t @ (g @ w)
        return (src.c, src.f)

    def _read_padded(
        self, bands: list[int], col: int, row: int, width: int, height: int, dtype=np.float32
    ) -> tuple[np.ndarray, np.ndarray]:
        """Source pixels [row:row+height, col:col+width] with zeros outside the raster, and a
        bool mask of the pixels that exist and are valid. With no ``bands``, only the mask."""
        ds = self._ds
        c0, r0 = max(col, 0), max(row, 0)
        c1, r1 = min(col + width, ds.width), min(row + height, ds.height)
        all_valid = self._all_valid(ds)
        if width > 0 and height > 0 and (c0, r0, c1, r1) == (col, row, col + width, row + height):
            # wholly inside the raster (every window but those at the scene's edges): GDAL
            # reads straight into the array, with no zero fill and no copy
            w = Window(col, row, width, height)
            data = np.empty((len(bands), height, width), dtype)
            if bands and data.dtype == np.dtype(ds.dtypes[0]):
                ds.read(bands, window=w, out=data)
            elif bands:
                # another pixel type: numpy's conversion, as below
                data[:] = ds.read(bands, window=w)
            if all_valid:
                return data, np.ones((height, width), bool)
            return data, ds.dataset_mask(window=w) > 0
        data = np.zeros((len(bands), height, width), dtype)
        valid = np.zeros((height, width), bool)
        if c1 > c0 and r1 > r0:
            w = Window(c0, r0, c1 - c0, r1 - r0)
            sl = (slice(r0 - row, r1 - row), slice(c0 - col, c1 - col))
            if bands:
                data[:, sl[0], sl[1]] = ds.read(bands, window=w)
            if all_valid:
                valid[sl] = True
            else:
                valid[sl] = ds.dataset_mask(window=w) > 0
        return data, valid

    def _read_direct(
        self,
        window: Window,
        off: tuple[float, float],
        bands: list[int],
        scale: np.ndarray | None = None,
        offset: np.ndarray | None = None,
    ):
        ox, oy = off
        c = int(window.col_off) + ox
        r = int(window.row_off) + oy
        ic, ir = int(np.floor(c)), int(np.floor(r))
        fx, fy = c - ic, r - ir
        w, h = int(window.width), int(window.height)
        # Native pixels (uint8 mostly) go straight into one numba pass: no float32 copy of the
        # source and no four full-size temporaries.
        native = np.dtype(self._ds.dtypes[0]) if bands else np.float32
        if native not in (np.uint8, np.uint16, np.int16, np.float32):
            native = np.float32
        nb = len(bands)
        # float64 like numpy's in-place ``float32 *= float64`` (then rounded to float32); for
        # float32 scales the result is the float32 product, rounded once, all the same
        sc = np.ones(nb) if scale is None else np.asarray(scale, np.float64)
        of = np.zeros(nb) if offset is None else np.asarray(offset, np.float64)
        if not bands and (fx >= 1e-6 or fy >= 1e-6):
            # validity alone: a shifted pixel is valid where its four source pixels are,
            # which needs no pass at all where every source pixel is
            _, v = self._read_padded(bands, ic, ir, w + 1, h + 1)
            if not v.all():
                v = v[:-1, :-1] & v[:-1, 1:] & v[1:, :-1] & v[1:, 1:]
                return np.zeros((0, h, w), np.float32), v
            return np.zeros((0, h, w), np.float32), np.ones((h, w), bool)
        if fx < 1e-6 and fy < 1e-6:
            if not bands:
                data, valid = self._read_padded(bands, ic, ir, w, h)
                return data, valid
            a, valid = self._read_padded(bands, ic, ir, w, h, native)
            out = scale_native(a, sc, of, scale is not None, offset is not None)
            return out, valid
        a, v = self._read_padded(bands, ic, ir, w + 1, h + 1, native)
        out, valid = bilinear_shift(
            a, v, np.float32((1 - fx) * (1 - fy)), np.float32(fx * (1 - fy)),
            np.float32((1 - fx) * fy), np.float32(fx * fy), sc, of,
            scale is not None, offset is not None,
        )  # fmt: skip
        return out, valid

    def _dataset(self):
        if self._vrt is not None:
            return self._vrt
        if self._ds is None:
            self._ds = rasterio.open(self.path)
        ds = self._ds
        transform = self.grid.transform @ self.offset_px
        same = (
            ds.crs == self.grid.crs
            and ds.transform.almost_equals(transform, precision=1e-9)
            and (ds.width, ds.height) == (self.grid.width, self.grid.height)
        )
        if same:
            self._vrt = ds
        else:
            self._vrt = WarpedVRT(
                ds,
                crs=self.grid.crs,
                transform=transform,
                width=self.grid.width,
                height=self.grid.height,
                resampling=self.resampling,
                src_nodata=ds.nodata,
                nodata=ds.nodata,
                add_alpha=ds.nodata is None and ColorInterp.alpha not in ds.colorinterp,
            )
        return self._vrt

    @property
    def band_indexes(self) -> list[int]:
        """1-based indexes of the bands read."""
        if self.bands is not None:
            return self.bands
        if self._ds is None:
            self._ds = rasterio.open(self.path)
        return [i + 1 for i, ci in enumerate(self._ds.colorinterp) if ci != ColorInterp.alpha]

    def read_raw(self, window: Window, out_shape: tuple[int, int] | None = None) -> np.ndarray:
        """Pixel values of ``window`` (target grid) as float32 (bands, rows, cols), unscaled."""
        if out_shape is None:
            off = self._direct_offset()
            if off is not None:
                return self._read_direct(window, off, self.band_indexes)[0]
        if out_shape is not None:
            return self.read_decimated(window, out_shape).astype(np.float32, copy=False)
        ds = self._dataset()
        return ds.read(self.band_indexes, window=window, boundless=False).astype(
            np.float32, copy=False
        )

    def read_decimated(self, window: Window, out_shape: tuple[int, int]) -> np.ndarray:
        """Block averages of ``window`` (target grid) in ``out_shape`` (rows, cols) pixels, in
        the raster's own pixel type (GDAL rounds the averages of integers), unscaled: what
        :meth:`read_raw` with ``out_shape`` returns before its float32 conversion."""
        ds = self._dataset()
        return ds.read(
            self.band_indexes,
            window=window,
            boundless=False,
            out_shape=(len(self.band_indexes), *out_shape),
            resampling=Resampling.average,
        )

    def read(self, window: Window, out_shape: tuple[int, int] | None = None) -> np.ndarray:
        """Scaled float32 (bands, rows, cols) of ``window`` on the target grid."""
        if out_shape is None:
            off = self._direct_offset()
            if off is not None:
                sc = self.scale
                of = self.offset if sc is not None else None
                return self._read_direct(window, off, self.band_indexes, sc, of)[0]
        data = self.read_raw(window, out_shape)
        if self.scale is not None:
            data *= self.scale[:, None, None]
            if self.offset is not None:
                data += self.offset[:, None, None]
        return data

    def read_valid(self, window: Window, out_shape: tuple[int, int] | None = None) -> np.ndarray:
        """bool (rows, cols): True where the raster has data (not nodata, not masked, inside it)."""
        if out_shape is None:
            off = self._direct_offset()
            if off is not None:
                return self._read_direct(window, off, [])[1]
        ds = self._dataset()
        shape = out_shape or (int(window.height), int(window.width))
        if ds is self._ds and self._all_valid(ds):
            # no nodata, alpha or mask band: every pixel of the raster is valid
            return np.ones(shape, dtype=bool)
        kw = {}
        if out_shape is not None:
            kw = {"out_shape": out_shape, "resampling": Resampling.nearest}
        mask = ds.dataset_mask(window=window, **kw)
        return mask > 0
