"""Score an analysis output directory against truth: simulator truth, xBD labels or a change mask.

Matching rules (all distances in metres, in the truth's CRS, or its UTM zone if geographic):

=================  =========================================================================
razed_buildings    one-to-one polygon matching (Hungarian on IoU), IoU >= ``iou`` (0.5)
rubble             the same with IoU >= ``rubble_iou`` (0.25: rubble fields have soft edges)
barricades         one-to-one line matching, mean symmetric distance <= ``barricade_m`` (10)
berms              length-weighted precision/recall within a ``berm_m`` (5) buffer
cleared_areas      area precision/recall/F1/IoU of the union of predictions vs union of truth
entry_points       one-to-one point matching within ``entry_m`` (15); status (open/cut) accuracy
                   over matched entries, precision/recall/F1 with ``cut`` positive
change_pixels      pixel precision/recall/F1/IoU of ``change.tif`` vs the truth mask
=================  =========================================================================

The thresholds are conventions fixed before seeing any result (0.5 IoU is the object-detection
norm; the 10 m and 5 m tolerances are a few pixels of metre-class imagery plus the width of the
objects), never tuned on scores.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import geopandas as gpd

from fortmap.errors import InputError
from fortmap.evaluate.extent import check_same_ground, core_note, layers_bounds, raster_bounds
from fortmap.evaluate.match import (
    BARRICADE_DIST_M,
    BERM_BUFFER_M,
    BUILDING_IOU,
    RUBBLE_IOU,
    score_area,
    score_lengths,
    score_lines,
    score_polygons,
)
from fortmap.evaluate.metrics import pixel_scores
from fortmap.evaluate.routes import ENTRY_DIST_M, score_entry_points
from fortmap.evaluate.truth import (
    CHANGE,
    TRUTH_CHANGE,
    aligned_masks,
    list_layers,
    read_layer,
    read_mask,
    read_pred_layers,
    read_sim_truth,
    truth_format,
)


def clean_nan(obj: Any) -> Any:
    """``obj`` with every NaN float replaced by None, so it serialises as strict JSON."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: clean_nan(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean_nan(v) for v in obj]
    return obj


def _score_change(pred_dir: Path, truth_mask: Path) -> dict[str, float]:
    pred = read_mask(pred_dir / CHANGE, "change mask")
    truth = read_mask(truth_mask, "truth mask")
    p, t = aligned_masks(pred, truth)
    return pixel_scores(p, t)


def _score_sim(
    truth: Path, pred_dir: Path, iou: float, rubble_iou: float, barricade_m: float, berm_m: float
) -> dict:
    tl = read_sim_truth(truth)
    pl = read_pred_layers(pred_dir)
    crs = next((g.crs for g in tl.values() if g.crs is not None), None)
    if crs is None:
        raise InputError(f"{truth}: truth layers have no CRS")
    if crs.is_geographic:
        crs = next(iter(tl.values())).estimate_utm_crs()
    tb, pb = layers_bounds(tl, crs), layers_bounds(pl, crs)
    check_same_ground(
        truth,
        [raster_bounds(truth.parent / TRUTH_CHANGE), (tb, crs) if tb else None],
        pred_dir,
        [raster_bounds(pred_dir / CHANGE), (pb, crs) if pb else None],
        crs,
    )
    notes: list[str] = []

    def geoms(gdf: gpd.GeoDataFrame | None, where: Path) -> list:
        if gdf is None or gdf.empty:
            return []
        if gdf.crs is None:
            raise InputError(f"{where}: a layer has no CRS")
        return list(gdf.to_crs(crs).geometry.values)

    kinds: dict[str, dict] = {}
    for name, tgdf in tl.items():
        t = geoms(tgdf, truth)
        if name not in pl:
            # an analysis that does not look for a kind has nothing to be scored on for it
            notes.append(f"{name}: not in the prediction (not analysed), not scored")
            continue
        pred = pl.get(name)
        if name == "berms" and pred is not None and "kind" in pred.columns:
            # ditches share the berms layer (told apart by ``kind``); the truth holds berms only
            pred = pred[pred["kind"] != "ditch"]
        p = geoms(pred, pred_dir)
        if name == "razed_buildings":
            kinds[name] = score_polygons(t, p, iou)
        elif name == "rubble":
            kinds[name] = score_polygons(t, p, rubble_iou)
        elif name == "barricades":
            kinds[name] = score_lines(t, p, barricade_m)
        elif name == "berms":
            kinds[name] = score_lengths(t, p, berm_m)
        elif name == "cleared_areas":
            kinds[name] = score_area(t, p)
    _score_routes(truth, pred_dir, pl, crs, kinds, notes)
    mask = truth.parent / TRUTH_CHANGE
    if not mask.exists():
        notes.append(f"{mask}: not found, change pixels not scored")
    elif not (pred_dir / CHANGE).exists():
        notes.append(f"{pred_dir / CHANGE}: not found, change pixels not scored")
    else:
        kinds["change_pixels"] = _score_change(pred_dir, mask)
    return {"kinds": kinds, "notes": notes}


def _score_routes(
    truth: Path, pred_dir: Path, pl: dict, crs: object, kinds: dict, notes: list[str]
) -> None:
    """Route status of entry points, when both the truth and the prediction hold them."""
    if "entry_points" not in list_layers(truth, "truth"):
        notes.append(f"{truth}: no true entry_points layer, route status not scored")
    elif "entry_points" not in pl:
        notes.append("entry_points: not in the prediction (no --core), route status not scored")
    else:
        t = read_layer(truth, "entry_points", "truth")
        kinds["entry_points"] = score_entry_points(t, pl["entry_points"], ENTRY_DIST_M, crs=crs)
        # a run with another core has its entries on another boundary: say so rather than
        # let "0 matched" read as missed entries
        note = core_note(truth, pred_dir)
        if note:
            notes.append(note)


def score_run(
    truth: Path,
    pred_dir: Path,
    *,
    iou: float = BUILDING_IOU,
    rubble_iou: float = RUBBLE_IOU,
    barricade_m: float = BARRICADE_DIST_M,
    berm_m: float = BERM_BUFFER_M,
) -> dict:
    """Score the output directory of ``fortmap analyze`` against truth; prints nothing.

    Args:
        truth: simulator ``truth.gpkg`` (with ``truth_change.tif`` beside it), an xBD
            ``*_post_disaster.json``, or a change mask (PNG/GeoTIFF, 0 = no change).
        pred_dir: the analysis output directory (``findings.gpkg``, ``change.tif``).
        iou: IoU for a building to match (also the xBD footprint matching threshold).
        rubble_iou: IoU for a rubble polygon to match.
        barricade_m: barricade matching distance (m).
        berm_m: berm buffer (m).

    Returns:
        ``{"format", "truth", "pred", "kinds": {kind: {precision, recall, f1, ...}}, "notes"}``
        plus, for xBD, ``auc``, ``confusion`` and counts. Undefined ratios are None.

    Raises:
        InputError: missing/unreadable truth or prediction, or rasters that cannot be compared.
    """
    truth, pred_dir = Path(truth), Path(pred_dir)
    fmt = truth_format(truth)
    if not 0.0 < iou <= 1.0 or not 0.0 < rubble_iou <= 1.0:
        raise InputError(f"--iou {iou}: must be in (0, 1]")
    if not pred_dir.is_dir():
        raise InputError(
            f"{pred_dir}: prediction directory not found (expected the output of fortmap analyze)"
        )
    result: dict[str, Any] = {"format": fmt, "truth": str(truth), "pred": str(pred_dir)}
    if fmt == "sim":
        result.update(_score_sim(truth, pred_dir, iou, rubble_iou, barricade_m, berm_m))
    elif fmt == "xbd":
        from fortmap.evaluate.xbd import score_xbd

        pl = read_pred_layers(pred_dir)
        xb = score_xbd(truth, pl, pred_dir / "findings.gpkg", iou)
        result["kinds"] = {"destroyed_buildings": xb.pop("destroyed")}
        result["kinds"]["destroyed_buildings"]["auc"] = xb["auc"]
        result.update({k: v for k, v in xb.items() if k not in ("format", "truth")})
        result["notes"] = [
            f"{xb['n_unclassified_excluded']} un-classified building(s) excluded",
            f"{xb['n_truth'] - xb['n_matched']} truth footprint(s) without a predicted footprint "
            f"of IoU >= {iou} counted as predicted intact",
        ]
    else:
        if not (pred_dir / CHANGE).exists():
            raise InputError(
                f"{pred_dir / CHANGE}: not found; is {pred_dir} the output directory of fortmap analyze?"
            )
        tr = raster_bounds(truth)
        if tr is not None:
            check_same_ground(truth, [tr], pred_dir, [raster_bounds(pred_dir / CHANGE)], tr[1])
        result["kinds"] = {"change_pixels": _score_change(pred_dir, truth)}
        result["notes"] = []
    return clean_nan(result)
