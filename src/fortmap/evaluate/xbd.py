"""xBD labels: read them, georeference xBD PNG pairs from them, and score building damage.

An xBD label JSON lists each building twice: ``features.xy`` (WKT in pixel coordinates of the
PNG) and ``features.lng_lat`` (WKT in WGS84), linked by ``properties.uid``. Their vertices are
ground control points: projected to the local UTM zone, a least-squares affine fit gives the
image's georeference in metres (about 0.45 m a pixel for the Joplin tile, residual well under a
millimetre, since xBD derived the pixel polygons from the same transform).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from affine import Affine
from pyproj import Transformer
from rasterio.crs import CRS

from fortmap.errors import InputError
from fortmap.evaluate.match import iou_pairs
from fortmap.evaluate.metrics import confusion, prf, roc_auc
from fortmap.evaluate.truth import read_json
from fortmap.io.georef import fit_affine_from_gcps, georeference_png, utm_crs_for
from fortmap.types import DAMAGE_CLASSES

#: xBD damage subtypes scored, in order of severity; ``un-classified`` is excluded from scoring.
XBD_CLASSES: tuple[str, ...] = ("no-damage", "minor-damage", "major-damage", "destroyed")
UNCLASSIFIED = "un-classified"


@dataclass
class XbdLabels:
    """The buildings of one xBD label file.

    Attributes:
        path: the JSON file.
        metadata: its ``metadata`` object (sensor, capture_date, width, height...).
        frame: one row per building: ``uid``, ``subtype`` ("" in pre files), geometry in WGS84.
        pixel: the same polygons in pixel coordinates (column, row), same order as ``frame``.
    """

    path: Path
    metadata: dict
    frame: gpd.GeoDataFrame
    pixel: list[shapely.Geometry]

    @property
    def date(self) -> str:
        """Capture date (ISO, date part) or ""."""
        return str(self.metadata.get("capture_date", ""))[:10]


def read_xbd_labels(path: str | Path) -> XbdLabels:
    """Parse an xBD label JSON.

    Raises:
        InputError: missing file, invalid JSON, or not xBD's layout.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: xBD label file not found")
    doc = read_json(p, "xBD labels")
    feats = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(feats, dict) or "lng_lat" not in feats or "xy" not in feats:
        raise InputError(f"{p}: not an xBD label file (no features.lng_lat / features.xy)")
    try:
        xy = {f["properties"]["uid"]: shapely.from_wkt(f["wkt"]) for f in feats["xy"]}
        rows, pixel = [], []
        for f in feats["lng_lat"]:
            props = f["properties"]
            if props.get("feature_type", "building") != "building":
                continue
            uid = props["uid"]
            rows.append(
                {
                    "uid": uid,
                    "subtype": props.get("subtype", ""),
                    "geometry": shapely.from_wkt(f["wkt"]),
                }
            )
            pixel.append(xy.get(uid))
    except (KeyError, TypeError, shapely.errors.GEOSException) as exc:
        raise InputError(f"{p}: malformed xBD feature: {exc!r}") from None
    frame = gpd.GeoDataFrame(
        rows, columns=["uid", "subtype", "geometry"], geometry="geometry", crs="EPSG:4326"
    )
    return XbdLabels(p, dict(doc.get("metadata") or {}), frame, pixel)


def fit_xbd_transform(labels: XbdLabels, crs: CRS | None = None) -> tuple[Affine, CRS, float]:
    """Fit the pixel -> UTM affine of an xBD image from its label polygons' vertices.

    Args:
        labels: parsed labels (needs at least one building with matching pixel/WGS84 vertices).
        crs: target projected CRS; default the UTM zone of the buildings' centre.

    Returns:
        (affine pixel -> metres, the CRS, RMS residual of the vertices in metres).
    """
    pix, lonlat = [], []
    for g_px, g_ll in zip(labels.pixel, labels.frame.geometry, strict=True):
        if g_px is None:
            continue
        a, b = shapely.get_coordinates(g_px), shapely.get_coordinates(g_ll)
        if len(a) == len(b):
            pix.append(a)
            lonlat.append(b)
    if not pix:
        raise InputError(
            f"{labels.path}: no building with matching pixel and WGS84 vertices to fit a georeference"
        )
    pix_a, ll = np.vstack(pix), np.vstack(lonlat)
    if crs is None:
        crs = utm_crs_for(float(ll[:, 0].mean()), float(ll[:, 1].mean()))
    tr = Transformer.from_crs("EPSG:4326", crs.to_wkt(), always_xy=True)
    x, y = tr.transform(ll[:, 0], ll[:, 1])
    transform, rms = fit_affine_from_gcps(pix_a, np.c_[x, y])
    # Rotation terms that move no pixel by a millimetre across the image are rounding noise;
    # dropping them keeps the GeoTIFF north-up, which GDAL and Grid.bounds handle exactly.
    size = float(max(labels.metadata.get("width", 1024), labels.metadata.get("height", 1024)))
    if abs(transform.b) * size < 1e-3 and abs(transform.d) * size < 1e-3:
        transform = Affine(transform.a, 0.0, transform.c, 0.0, transform.e, transform.f)
    return transform, crs, rms


def affine_gsd(transform: Affine) -> float:
    """Pixel size (CRS units) of an affine that may carry rotation: sqrt of |determinant|."""
    return float(np.sqrt(abs(transform.determinant)))


@dataclass
class XbdScene:
    """An xBD pair written as GeoTIFFs, with footprints and truth for ``analyze`` and ``score``.

    Attributes:
        tile_id: e.g. ``joplin-tornado_00000000``.
        before, after: the pre/post GeoTIFFs (UTM, metres).
        footprints: pre-disaster footprints (GeoJSON, UTM, with ``uid``) for ``--buildings``.
        truth_labels: the post label JSON, the truth ``fortmap score`` reads.
        truth_table: CSV of ``uid, subtype, destroyed`` (post labels).
        crs: the UTM CRS written.
        gsd_m: fitted pixel size of the pre image (m).
        rms_m: RMS residual of the fit, pre and post (m).
        dates: capture dates, pre and post (ISO).
    """

    tile_id: str
    before: Path
    after: Path
    footprints: Path
    truth_labels: Path
    truth_table: Path
    crs: CRS
    gsd_m: float
    rms_m: tuple[float, float]
    dates: tuple[str, str]
    transforms: tuple[Affine, Affine] = field(
        repr=False, default=(Affine.identity(), Affine.identity())
    )


def xbd_to_geotiffs(
    image_dir: str | Path, label_dir: str | Path, tile_id: str, out_dir: str | Path
) -> XbdScene:
    """Georeference an xBD pre/post PNG pair from its labels and write what ``analyze`` needs.

    Args:
        image_dir: folder of ``{tile_id}_{pre,post}_disaster.png``.
        label_dir: folder of ``{tile_id}_{pre,post}_disaster.json``.
        tile_id: e.g. ``joplin-tornado_00000000``.
        out_dir: folder written: ``before.tif``, ``after.tif`` (tagged with capture dates),
            ``footprints.geojson``, ``truth.csv``.

    Raises:
        InputError: a missing or malformed image or label file.
    """
    image_dir, label_dir, out = Path(image_dir), Path(label_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pre = read_xbd_labels(label_dir / f"{tile_id}_pre_disaster.json")
    post = read_xbd_labels(label_dir / f"{tile_id}_post_disaster.json")
    t_pre, crs, rms_pre = fit_xbd_transform(pre)
    # Same UTM zone for both dates so the pair shares one CRS.
    t_post, _, rms_post = fit_xbd_transform(post, crs)
    before = georeference_png(
        image_dir / f"{tile_id}_pre_disaster.png", t_pre, crs, out / "before.tif", pre.date
    )
    after = georeference_png(
        image_dir / f"{tile_id}_post_disaster.png", t_post, crs, out / "after.tif", post.date
    )
    fp = pre.frame[["uid", "geometry"]].to_crs(crs)
    footprints = out / "footprints.geojson"
    fp.to_file(footprints, driver="GeoJSON", engine="pyogrio")
    table = out / "truth.csv"
    with table.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["uid", "subtype", "destroyed"])
        for uid, sub in zip(post.frame.uid, post.frame.subtype, strict=True):
            w.writerow([uid, sub, int(sub == "destroyed")])
    return XbdScene(
        tile_id=tile_id,
        before=before,
        after=after,
        footprints=footprints,
        truth_labels=post.path,
        truth_table=table,
        crs=crs,
        gsd_m=affine_gsd(t_pre),
        rms_m=(rms_pre, rms_post),
        dates=(pre.date, post.date),
        transforms=(t_pre, t_post),
    )


def score_xbd(
    truth_json: str | Path, pred: dict[str, gpd.GeoDataFrame], pred_path: Path, min_iou: float = 0.5
) -> dict:
    """Score the predicted ``buildings`` layer, destroyed versus the rest, against xBD post labels.

    Each classified truth footprint takes the predicted footprint of highest IoU (IoU >= ``min_iou``);
    a truth footprint without one counts as predicted intact with score 0. ``un-classified``
    buildings are excluded and counted.

    Returns:
        ``destroyed``: precision, recall, f1 (+counts) of damage == destroyed; ``auc`` of ``score``;
        ``confusion``: xBD subtype -> predicted damage class (or ``unmatched``) counts; counts.

    Raises:
        InputError: no ``buildings`` layer in the prediction.
    """
    labels = read_xbd_labels(truth_json)
    bl = pred.get("buildings")
    if bl is None:
        raise InputError(
            f"{pred_path}: has no 'buildings' layer; run fortmap analyze with --buildings to score against xBD"
        )
    truth = labels.frame
    n_unclassified = int((truth.subtype == UNCLASSIFIED).sum())
    truth = truth[truth.subtype.isin(XBD_CLASSES)].reset_index(drop=True)
    if truth.empty:
        raise InputError(
            f"{labels.path}: no classified building to score (post-disaster label file expected)"
        )
    if bl.crs is None:
        raise InputError(f"{pred_path}: buildings layer has no CRS")
    crs = bl.crs if bl.crs.is_projected else truth.estimate_utm_crs()
    t_geom = truth.to_crs(crs).geometry.values
    p_geom = bl.to_crs(crs).geometry.values if len(bl) else np.array([], dtype=object)
    ti, pi, iou = iou_pairs(t_geom, p_geom)
    best = np.full(len(truth), -1)
    best_iou = np.zeros(len(truth))
    for i, j, v in zip(ti, pi, iou, strict=True):
        if v >= min_iou and v > best_iou[i]:
            best[i], best_iou[i] = j, v
    matched = best >= 0
    damage = np.array(["unmatched"] * len(truth), dtype=object)
    score = np.zeros(len(truth))
    if len(bl):
        damage[matched] = bl["damage"].to_numpy()[best[matched]]
        score[matched] = bl["score"].to_numpy(dtype=float)[best[matched]]
    y = (truth.subtype == "destroyed").to_numpy()
    yhat = damage == "destroyed"
    out = prf(int(np.sum(y & yhat)), int(np.sum(~y & yhat)), int(np.sum(y & ~yhat)))
    return {
        "format": "xbd",
        "truth": str(labels.path),
        "destroyed": out,
        "auc": roc_auc(y, score),
        "confusion": confusion(
            truth.subtype.tolist(), damage.tolist(), XBD_CLASSES, (*DAMAGE_CLASSES, "unmatched")
        ),
        "n_truth": int(len(truth)),
        "n_truth_destroyed": int(y.sum()),
        "n_matched": int(matched.sum()),
        "n_pred_buildings": int(len(bl)),
        "n_unclassified_excluded": n_unclassified,
        "iou_threshold": float(min_iou),
    }
