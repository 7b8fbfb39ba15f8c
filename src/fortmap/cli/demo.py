"""``fortmap demo``: simulate a city, analyse it and score the result, in one go."""

from __future__ import annotations

import json
from pathlib import Path

import click

from fortmap.cli.checks import guard_output
from fortmap.cli.options import (
    difficulty_option,
    force_option,
    quiet_option,
    seed_option,
    size_m_option,
)
from fortmap.cli.progress import one_line_warnings, progress_reporter

#: the simulated city's core district, named in its places.geojson (with its radius_m)
DEMO_CORE = "Old City"


@click.command("demo")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("fortmap-demo"),
    show_default=True,
    help="Output directory.",
)
@seed_option
@size_m_option
@difficulty_option
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON.")
@force_option
@quiet_option
def command(out_dir, seed, size_m, difficulty, as_json, force, quiet):
    """Simulate a city, analyse the two dates and score the findings against the truth.

    \b
    Writes DIR/scene (the simulated inputs and truth) and DIR/analysis (the findings).
    Example:
      fortmap demo --out fortmap-demo
    """
    from fortmap.analysis import run_analysis
    from fortmap.cli.analyze import format_summary
    from fortmap.cli.score import render
    from fortmap.evaluate.score import score_run
    from fortmap.io.output import atomic_dir
    from fortmap.simulate import simulate_city

    one_line_warnings(quiet)
    guard_output(out_dir, [])
    with atomic_dir(out_dir, force) as tmp:
        scene_dir, run_dir = tmp / "scene", tmp / "analysis"
        if not quiet:
            click.echo(
                f"Simulating a {size_m:.0f} m city (seed {seed}, difficulty {difficulty})..."
            )
        simulate_city(scene_dir, seed=seed, size_m=size_m, difficulty=difficulty)
        with progress_reporter(quiet) as progress:
            summary = run_analysis(
                scene_dir / "before.tif",
                scene_dir / "after.tif",
                run_dir,
                buildings=scene_dir / "buildings.geojson",
                roads=scene_dir / "roads.geojson",
                places=scene_dir / "places.geojson",
                core=DEMO_CORE,
                dsm_before=scene_dir / "dsm_before.tif",
                dsm_after=scene_dir / "dsm_after.tif",
                progress=progress,
            )
        scores = score_run(scene_dir / "truth.gpkg", run_dir)
        # name the final paths, not the temporary ones
        scores["truth"] = str(out_dir / "scene" / "truth.gpkg")
        scores["pred"] = str(out_dir / "analysis")
        (tmp / "scores.json").write_text(json.dumps(scores, indent=2))
    if as_json:
        click.echo(json.dumps({"summary": summary, "scores": scores}, indent=2))
    elif not quiet:
        click.echo(format_summary(summary))
        render(scores)
        click.echo(f"Outputs in {out_dir}/ (scene/, analysis/, scores.json)")
