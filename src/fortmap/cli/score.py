"""``fortmap score``: precision, recall and F1 of an analysis run against truth."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("score")
@click.option(
    "--truth",
    type=click.Path(path_type=Path),
    required=True,
    help="truth.gpkg from fortmap simulate, an xBD *_post_disaster.json, or a change mask (PNG/GeoTIFF).",
)
@click.option(
    "--pred",
    "pred_dir",
    type=click.Path(path_type=Path),
    required=True,
    help="Output directory of fortmap analyze.",
)
@click.option(
    "--json", "as_json", is_flag=True, default=False, help="Print JSON instead of a table."
)
@click.option(
    "--iou",
    type=float,
    default=0.5,
    show_default=True,
    help="IoU for a predicted building to match a true one.",
)
def command(truth: Path, pred_dir: Path, as_json: bool, iou: float) -> None:
    """Score an analysis run against truth.

    \b
    Example:
      fortmap score --truth sim/truth.gpkg --pred run1
      fortmap score --truth labels/joplin-tornado_00000000_post_disaster.json --pred run2 --json
    """
    from fortmap.evaluate.score import score_run

    result = score_run(truth, pred_dir, iou=iou)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        render(result)


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _detail(kind: str, m: dict) -> str:
    if "status_accuracy" in m:
        return (
            f"{m['n_truth']:.0f} true entries, {m['n_matched']:.0f} matched, "
            f"status right {_fmt(m['status_accuracy'])}"
        )
    if "iou_threshold" in m:
        return f"{m['n_truth']:.0f} true, {m['n_pred']:.0f} predicted, IoU >= {m['iou_threshold']}"
    if "max_dist_m" in m:
        return f"{m['n_truth']:.0f} true, {m['n_pred']:.0f} predicted, within {m['max_dist_m']:g} m"
    if "buffer_m" in m:
        return f"{m['truth_length_m']:.0f} m true, {m['pred_length_m']:.0f} m predicted, {m['buffer_m']:g} m buffer"
    if "truth_area_ha" in m:
        return f"{m['truth_area_ha']:.2f} ha true, {m['pred_area_ha']:.2f} ha predicted, IoU {_fmt(m['iou'])}"
    if "auc" in m:
        return f"{m['tp'] + m['fn']:.0f} destroyed, ROC AUC {_fmt(m['auc'])}"
    if "iou" in m:
        return f"IoU {_fmt(m['iou'])}, {m['tp'] + m['fn']:.0f} true pixels"
    return ""


def render(result: dict) -> None:
    """Print the score as rich tables."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"{result['pred']} vs {result['truth']}")
    for col in ("kind", "precision", "recall", "F1", "detail"):
        table.add_column(col, justify="left" if col in ("kind", "detail") else "right")
    for kind, m in result["kinds"].items():
        table.add_row(
            kind, _fmt(m["precision"]), _fmt(m["recall"]), _fmt(m["f1"]), _detail(kind, m)
        )
    console.print(table)
    conf = result.get("confusion")
    if conf:
        cols = list(next(iter(conf.values())))
        ct = Table(title="xBD damage (rows) vs predicted damage (columns)")
        ct.add_column("truth")
        for c in cols:
            ct.add_column(c, justify="right")
        for t, row in conf.items():
            ct.add_row(t, *(str(row[c]) for c in cols))
        console.print(ct)
    for note in result.get("notes", []):
        console.print(f"note: {note}")
