"""Read what is scored: an analysis output directory, and truth in its several forms."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import reproject

from fortmap.errors import InputError
from fortmap.io.plain_raster import read_plain_raster
from fortmap.types import TRUTH_LAYERS

FINDINGS = "findings.gpkg"
CHANGE = "change.tif"
TRUTH_CHANGE = "truth_change.tif"
_MASK_SUFFIXES = {".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp"}


def truth_format(path: str | Path) -> str:
    """Which kind of truth ``path`` is: ``"sim"`` (truth.gpkg), ``"xbd"`` (label JSON) or ``"mask"``.

    Raises:
        InputError: missing, or of no kind fortmap scores against.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: truth not found")
    if p.is_dir():
        raise InputError(
            f"{p}: truth is a directory; give truth.gpkg, an xBD label JSON or a mask image"
        )
    suffix = p.suffix.lower()
    if suffix == ".gpkg":
        return "sim"
    if suffix == ".json":
        return "xbd"
    if suffix in _MASK_SUFFIXES:
        return "mask"
    raise InputError(
        f"{p}: unknown truth format '{suffix}'; expected truth.gpkg, an xBD *.json or a mask PNG/GeoTIFF"
    )


def list_layers(path: Path, role: str) -> dict[str, str]:
    """Layer name -> geometry type of a GeoPackage, as an ``InputError`` when unreadable."""
    try:
        return {str(n): str(t) for n, t in pyogrio.list_layers(path)}
    except (pyogrio.errors.DataSourceError, OSError) as exc:
        raise InputError(f"{path}: cannot read {role}: {str(exc).splitlines()[0]}") from None


def read_layer(path: Path, layer: str, role: str) -> gpd.GeoDataFrame:
    """One layer of a GeoPackage, with an ``InputError`` naming the file when it cannot be read."""
    try:
        gdf = gpd.read_file(path, layer=layer, engine="pyogrio")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError) as exc:
        raise InputError(
            f"{path}: cannot read layer '{layer}' of {role}: {str(exc).splitlines()[0]}"
        ) from None
    if not gdf.empty:
        gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    return gdf


def read_pred_layers(pred_dir: str | Path) -> dict[str, gpd.GeoDataFrame]:
    """All layers of ``pred_dir/findings.gpkg`` (absent layers simply missing from the dict).

    Raises:
        InputError: the directory or its findings.gpkg is missing or unreadable.
    """
    d = Path(pred_dir)
    if not d.is_dir():
        raise InputError(
            f"{d}: prediction directory not found (expected the output of fortmap analyze)"
        )
    gpkg = d / FINDINGS
    if not gpkg.exists():
        raise InputError(f"{gpkg}: not found; is {d} the output directory of fortmap analyze?")
    # non-spatial tables (QGIS ``layer_styles``) are not findings
    return {
        name: read_layer(gpkg, name, "findings")
        for name, gtype in list_layers(gpkg, "findings").items()
        if gtype not in ("None", "")
    }


def read_sim_truth(path: str | Path) -> dict[str, gpd.GeoDataFrame]:
    """The layers of a simulator ``truth.gpkg`` that exist (subset of ``TRUTH_LAYERS``).

    Raises:
        InputError: unreadable, or holding none of the truth layers.
    """
    p = Path(path)
    layers = list_layers(p, "truth")
    known = [n for n in TRUTH_LAYERS if n in layers]
    if not known:
        raise InputError(f"{p}: holds none of the truth layers {', '.join(TRUTH_LAYERS)}")
    return {n: read_layer(p, n, "truth") for n in known}


@dataclass
class Mask:
    """A boolean mask and where it lies.

    Attributes:
        path: the file.
        data: bool (rows, cols), True = change.
        crs: its CRS, or None for a plain image.
        transform: pixel -> CRS affine, or None for a plain image.
    """

    path: Path
    data: np.ndarray
    crs: CRS | None
    transform: Affine | None


def read_mask(path: str | Path, role: str = "mask") -> Mask:
    """Read a single-band change mask (0 = no change, any other value = change).

    Raises:
        InputError: missing, unreadable, or with several bands that disagree.
    """
    p = Path(path)
    r = read_plain_raster(p, role)
    data, crs, transform = r.data, r.crs, r.transform
    if data.shape[0] > 1 and not all(np.array_equal(data[0], b) for b in data[1:]):
        raise InputError(
            f"{p}: {role} has {data.shape[0]} differing bands; expected a single-band mask"
        )
    geo = crs is not None and transform != Affine.identity()
    return Mask(p, data[0] != 0, crs if geo else None, transform if geo else None)


def aligned_masks(pred: Mask, truth: Mask) -> tuple[np.ndarray, np.ndarray]:
    """Prediction and truth on the prediction's pixel grid.

    Two georeferenced masks on different grids: the truth is resampled (nearest) onto the
    prediction's grid. Otherwise the two must have the same shape.

    Raises:
        InputError: shapes differ and the masks cannot be put on one grid.
    """
    if pred.data.shape == truth.data.shape and (
        truth.crs is None
        or pred.crs is None
        or (truth.crs == pred.crs and truth.transform.almost_equals(pred.transform, 1e-6))
    ):
        return pred.data, truth.data
    if truth.crs is None or pred.crs is None:
        raise InputError(
            f"{truth.path}: truth mask is {truth.data.shape[1]}x{truth.data.shape[0]} pixels but "
            f"{pred.path} is {pred.data.shape[1]}x{pred.data.shape[0]} and one is not georeferenced"
        )
    out = np.zeros(pred.data.shape, np.uint8)
    reproject(
        truth.data.astype(np.uint8),
        out,
        src_crs=truth.crs,
        src_transform=truth.transform,
        dst_crs=pred.crs,
        dst_transform=pred.transform,
        resampling=Resampling.nearest,
    )
    return pred.data, out.astype(bool)


def read_json(path: Path, role: str) -> dict:
    """A JSON file as a dict, with an ``InputError`` naming the file when it is not valid JSON."""
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read {role}: {exc}") from None
