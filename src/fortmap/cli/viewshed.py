"""``fortmap viewshed``: what an observer can see over a DEM, as a uint8 COG.

Options map onto ``gdal_viewshed``'s: ``--observer X,Y`` = ``-ox X -oy Y``, ``--observer-height``
= ``-oz``, ``--target-height`` = ``-tz``, ``--max-distance`` = ``-md``, ``--refraction K`` =
``-cc 1-K`` and ``--no-curvature`` = ``-cc 1``. Output: 1 visible, 0 not visible, 255 nodata.
"""

from __future__ import annotations

from pathlib import Path

import click

from fortmap.cli.checks import guard_output
from fortmap.cli.options import force_option
from fortmap.cli.progress import one_line_warnings


def _parse_xy(ctx: click.Context, param: click.Parameter, value: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected X,Y in the DEM's CRS (metres), got {value!r}") from None
    return x, y


@click.command("viewshed")
@click.argument("dem", type=click.Path(path_type=Path))
@click.option(
    "--observer",
    required=True,
    callback=_parse_xy,
    help="Observer position X,Y in the DEM's CRS, metres.",
)
@click.option(
    "--observer-height", type=float, default=2.0, show_default=True, help="Eye height, m."
)
@click.option(
    "--target-height", type=float, default=0.0, show_default=True, help="Target height, m."
)
@click.option(
    "--max-distance", type=float, default=None, help="Maximum distance, m (default: no limit)."
)
@click.option(
    "--mode",
    type=click.Choice(["fast", "exact"]),
    default="fast",
    show_default=True,
    help="fast: ray sweep; exact: line of sight to every cell (R3), much slower.",
)
@click.option(
    "--refraction", type=float, default=0.13, show_default=True, help="Refraction coefficient."
)
@click.option(
    "--curvature/--no-curvature",
    default=True,
    show_default=True,
    help="Correct for earth curvature (and refraction).",
)
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Output GeoTIFF (COG).",
)
@force_option
def command(
    dem: Path,
    observer: tuple[float, float],
    observer_height: float,
    target_height: float,
    max_distance: float | None,
    mode: str,
    refraction: float,
    curvature: bool,
    out: Path,
    force: bool,
) -> None:
    """Viewshed of one observer over DEM (a projected CRS in metres).

    \b
    Example:
      fortmap viewshed dem_utm.tif --observer 612400,3621800 --observer-height 10 \\
          --max-distance 5000 --out seen.tif
    """
    import time

    from fortmap.analyze.surface import check_heights
    from fortmap.analyze.viewshed import viewshed_file

    guard_output(out, [dem])
    one_line_warnings(False)
    check_heights(dem, "DEM")
    t = time.perf_counter()
    path = viewshed_file(
        dem,
        observer,
        out,
        observer_height=observer_height,
        target_height=target_height,
        max_distance=max_distance,
        mode=mode,
        refraction=refraction,
        curvature=curvature,
        force=force,
    )
    click.echo(f"wrote {path} ({mode}, {time.perf_counter() - t:.1f} s)")
