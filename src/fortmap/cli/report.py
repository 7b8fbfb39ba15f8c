"""``fortmap report``: the analyst's report of a run directory."""

from __future__ import annotations

from pathlib import Path

import click

from fortmap.cli.options import force_option


@click.command("report")
@click.argument("run", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--places",
    type=click.Path(path_type=Path),
    default=None,
    help="Named places (GeoJSON/GPKG with a 'name' column) and rivers (lines or polygons with "
    "kind=river, waterway=* or natural=water) to say where findings are.",
)
@click.option("--credit", default=None, help="Imagery credit under each figure.")
@click.option("--geojson", is_flag=True, default=False, help="Also write RUN/geojson/*.geojson.")
@force_option
def command(run: Path, places: Path | None, credit: str | None, geojson: bool, force: bool) -> None:
    """Write RUN/report.html (self-contained), RUN/figures/, RUN/captions.md and QGIS styles.

    \b
    Example:
      fortmap report run1 --places places.geojson --credit "Imagery (c) Provider 2024"
    """
    from fortmap.errors import OutputExistsError
    from fortmap.report.html import write_report

    out = run / "report.html"
    if out.exists() and not force:
        raise OutputExistsError(f"{out}: already exists; use --force to replace it")
    path = write_report(run, places=places, credit=credit, geojson=geojson)
    click.echo(f"Report: {path}")
