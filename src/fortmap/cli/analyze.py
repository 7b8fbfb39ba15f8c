"""``fortmap analyze``: findings from a before/after image pair."""

from __future__ import annotations

from pathlib import Path

import click

from fortmap.cli.checks import check_height_inputs, guard_output
from fortmap.cli.options import (
    coregister_option,
    dem_accuracy_option,
    force_option,
    out_dir_option,
    quiet_option,
)
from fortmap.cli.progress import StepLog, one_line_warnings, progress_reporter


@click.command("analyze")
@click.option(
    "--before",
    "before",
    type=click.Path(path_type=Path),
    required=True,
    help="Earlier image (GeoTIFF/COG, any CRS).",
)
@click.option(
    "--after",
    "after",
    type=click.Path(path_type=Path),
    required=True,
    help="Later image (any CRS; warped onto the before image's grid).",
)
@out_dir_option
@click.option(
    "--buildings",
    type=click.Path(path_type=Path),
    default=None,
    help="Building footprints (GeoJSON/GPKG, any CRS) to classify one by one.",
)
@click.option(
    "--roads",
    type=click.Path(path_type=Path),
    default=None,
    help="Road lines (GeoJSON/GPKG, any CRS) or an OSM extract (.osm.pbf, .osm, .osm.bz2). "
    "Without it, roads are derived from the before image (long, narrow, uniform corridors) "
    "and the summary says so.",
)
@click.option(
    "--core",
    default=None,
    help="Core to reach: a polygon file, LON,LAT,RADIUS_M, or a place name in --places.",
)
@click.option(
    "--places",
    type=click.Path(path_type=Path),
    default=None,
    help="Named places (GeoJSON/GPKG with 'name': points, polygons) and rivers (lines or "
    "polygons with kind=river, waterway=* or natural=water) for captions and --core.",
)
@click.option("--dsm-before", type=click.Path(path_type=Path), default=None, help="DSM, metres.")
@click.option("--dsm-after", type=click.Path(path_type=Path), default=None, help="DSM, metres.")
@click.option(
    "--dsm-obstacles/--no-dsm-obstacles",
    default=True,
    show_default=True,
    help="With both DSMs, also cut roads left under 3 m wide by a surface rise of 0.3 m or more.",
)
@click.option(
    "--dem",
    type=click.Path(path_type=Path),
    default=None,
    help="Ground heights (m) for visibility when no DSMs are given (footprints raised on it).",
)
@dem_accuracy_option
@click.option(
    "--edge",
    type=click.Path(path_type=Path),
    default=None,
    help="Defended edge for visibility (lines/polygons); default: fortification ring or core.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Run windows on a local Dask cluster of N worker processes.",
)
@click.option("--scheduler", default=None, help="Address of a running Dask scheduler.")
@click.option(
    "--window",
    "window_px",
    type=click.IntRange(min=1),
    default=1024,
    show_default=True,
    help="Window side in pixels (rounded down to a multiple of the block size).",
)
@click.option(
    "--min-cleared-ha",
    type=click.FloatRange(min=0.0),
    default=0.5,
    show_default=True,
    help="Smallest cleared area reported, hectares.",
)
@coregister_option
@click.option(
    "--report/--no-report",
    default=True,
    show_default=True,
    help="Write report.html, figures, captions and QGIS styles.",
)
@click.option("--credit", default=None, help="Imagery credit line under each figure.")
@click.option(
    "--change-model",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Model from `fortmap train-change`: replaces the unsupervised change mask.",
)
@click.option(
    "--log-json",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write step events and timings as JSON lines to this file.",
)
@force_option
@quiet_option
def command(
    before,
    after,
    out_dir,
    buildings,
    roads,
    core,
    places,
    dsm_before,
    dsm_after,
    dsm_obstacles,
    dem,
    dem_accuracy_m,
    edge,
    workers,
    scheduler,
    window_px,
    min_cleared_ha,
    coregister,
    report,
    credit,
    change_model,
    log_json,
    force,
    quiet,
):
    """Map razed buildings, cleared land, barricades, berms, rubble and routes between two dates.

    \b
    Example:
      fortmap analyze --before before.tif --after after.tif --buildings buildings.geojson --out run1
    """
    from fortmap.analysis import AnalyzeOptions, run_analysis

    one_line_warnings(quiet)
    inputs = [
        before, after, buildings, roads, places, dsm_before, dsm_after, dem, edge, core,
        change_model,
    ]  # fmt: skip
    guard_output(out_dir, inputs)
    if log_json is not None:
        # checked before the run, not after it: a long run should not end on a bad log path
        guard_output(log_json, inputs, "--log-json")
    check_height_inputs(before, {"before DSM": dsm_before, "after DSM": dsm_after, "DEM": dem})
    opts = AnalyzeOptions(
        window_px=window_px,
        min_cleared_ha=min_cleared_ha,
        workers=workers,
        scheduler=scheduler,
        coregister=coregister,
        report=report,
        credit=credit,
        dem_accuracy_m=dem_accuracy_m,
        dsm_obstacles=dsm_obstacles,
        change_model=change_model,
    )
    with progress_reporter(quiet) as bar:
        progress = StepLog(bar)
        summary = run_analysis(
            before,
            after,
            out_dir,
            buildings=buildings,
            roads=roads,
            core=core,
            places=places,
            dsm_before=dsm_before,
            dsm_after=dsm_after,
            dem=dem,
            edge=edge,
            force=force,
            options=opts,
            progress=progress,
        )
    if log_json is not None:
        log_json.parent.mkdir(parents=True, exist_ok=True)
        progress.write(log_json, summary["timings_s"])
    if not quiet:
        click.echo(format_summary(summary))
        click.echo(f"Wrote {out_dir}/: {', '.join(written(out_dir))}")


def written(out_dir: Path) -> list[str]:
    """What a run wrote: the names in ``out_dir``, folders with a trailing slash, main ones first
    (whatever the options made, e.g. the visibility rasters, rather than a fixed list)."""
    first = {"findings.gpkg": 0, "change.tif": 1, "summary.json": 2}
    names = [p.name + ("/" if p.is_dir() else "") for p in out_dir.iterdir()]
    return sorted(names, key=lambda n: (first.get(n, 3), n))


def _coregistration_line(c: dict) -> str:
    shift = f"shift {c['shift_m'][0]:+.2f} m, {c['shift_m'][1]:+.2f} m"
    residual = f"residual {c['residual_m']:.2f} m ({c['tiles_used']} tiles)"
    if c.get("mode") == "none":
        # with --coregister none the shift is measured and reported but not applied
        return f"Co-registration: none applied (--coregister none); measured {shift}, {residual}"
    return f"Co-registration: {shift}; {residual}"


def format_summary(summary: dict) -> str:
    """A few lines for a person: counts, areas, co-registration, speed."""
    c = summary["coregistration"]
    lines = [
        f"Dates: {summary['dates']['before'] or '?'} -> {summary['dates']['after'] or '?'}; "
        f"area {summary['grid']['area_km2']} km2 at {summary['grid']['gsd_m']} m",
        _coregistration_line(c),
        "Findings: "
        + ", ".join(
            f"{k.replace('_', ' ')} {v}"
            for k, v in summary["counts"].items()
            if k not in ("routes", "visibility")
        ),
        f"Cleared land: {summary['areas']['cleared_ha']} ha; changed {summary['areas']['changed_ha']} ha",
    ]
    v = summary.get("visibility") or {}
    if "gain_km2" in v:
        interval = (
            f" ({v['gain_km2_low']:+.3f} to {v['gain_km2_high']:+.3f} from the DEM's error)"
            if "gain_km2_low" in v
            else ""
        )
        lines.append(
            f"Visibility from the edge ({v.get('edge_source')}): gain {v['gain_km2']:.3f} km2"
            + interval
        )
    r = summary.get("routes")
    if r:
        cut = ", ".join(f"{e['name'] or 'entry ' + str(e['entry_id'])} ({e['cut_by']})"
                        for e in r.get("cut_entries", [])[:6])  # fmt: skip
        more = len(r.get("cut_entries", [])) - 6
        cut += f" and {more} more" if more > 0 else ""
        before_m, after_m = r.get("shortest_route_before_m"), r.get("shortest_route_after_m")
        lengths = ""
        if before_m is not None:
            after_txt = f"{after_m:.0f} m" if after_m is not None else "none open"
            lengths = f"; shortest open route {before_m:.0f} m -> {after_txt}"
        lines.append(
            f"Routes into the core: {r['entries_before']} entries before, "
            f"{r['entries_after']} open after, {r['entries_cut']} cut"
            + (f" ({cut})" if cut else "")
            + ("; the core is SEALED" if r.get("sealed") else "")
            + lengths
        )
    b = summary.get("buildings")
    if b:
        lines.append(
            "Buildings: "
            + ", ".join(f"{v} {k}" for k, v in b.items() if k != "total")
            + f" (of {b['total']})"
        )
    t = summary["timings_s"]
    first = t.get("compiling_kernels", 0.0)
    lines.append(
        f"Time: {t['total']} s ({summary['megapixels_per_second']} megapixels/s)"
        + (f", of which {first:.0f} s compiling fortmap's kernels on first use (cached for later "
           "runs)" if first >= 1 else "")
    )  # fmt: skip
    return "\n".join(lines)
