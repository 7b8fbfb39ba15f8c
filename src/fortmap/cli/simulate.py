"""``fortmap simulate``: write a simulated before/after city pair with exact truth."""

from __future__ import annotations

from pathlib import Path

import click

from fortmap.cli.checks import guard_output
from fortmap.cli.options import (
    difficulty_option,
    force_option,
    out_dir_option,
    quiet_option,
    seed_option,
    size_m_option,
)


@click.command("simulate")
@out_dir_option
@seed_option
@size_m_option
@click.option(
    "--gsd",
    type=float,
    default=0.5,
    show_default=True,
    help="Ground sample distance (metres per pixel).",
)
@difficulty_option
@click.option(
    "--osm",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="OpenStreetMap extract (.osm.pbf, .osm, ...): lay the city on its real streets and "
    "buildings, centred on the extract (--size-m is cut to the extract when larger).",
)
@click.option(
    "--dsm-quality",
    type=click.Choice(["exact", "stereo", "coarse"]),
    default="exact",
    show_default=True,
    help="DSMs as written: exact surfaces, or degraded as a stereo-satellite DSM is "
    "(stereo: 1 m posting, 0.4 m noise; coarse: 2 m, 0.9 m; both with holes and a per-date "
    "offset and tilt). The truth stays exact.",
)
@force_option
@quiet_option
def command(
    out_dir: Path,
    seed: int,
    size_m: float,
    gsd: float,
    difficulty: str,
    osm: Path | None,
    dsm_quality: str,
    force: bool,
    quiet: bool,
) -> None:
    """Simulate a city imaged on two dates (GeoTIFFs, DSMs, vectors, truth.gpkg) in OUT.

    \b
    truth.gpkg also holds the true route status into the core (place "Old City"):
    layers routes and entry_points.
    Example:
      fortmap simulate --out sim --size-m 1000
      fortmap simulate --out hel --osm helsinki.osm.pbf --gsd 0.5
    """
    import sys

    from fortmap.cli.progress import one_line_warnings
    from fortmap.simulate import simulate_city

    one_line_warnings(quiet)
    guard_output(out_dir, [osm])
    if not quiet and sys.stderr.isatty():
        # a 2 km city takes half a minute with nothing else to show for it
        click.echo(f"Simulating a {size_m:.0f} m city (seed {seed})...", err=True)
    scene = simulate_city(
        out_dir,
        seed=seed,
        size_m=size_m,
        gsd=gsd,
        difficulty=difficulty,
        force=force,
        osm=osm,
        dsm_quality=dsm_quality,
    )
    if quiet:
        return
    click.echo(
        f"Wrote {scene.out_dir} ({scene.width}x{scene.height} px) in {scene.seconds:.1f} s: "
        f"{scene.n_buildings} buildings, {scene.n_razed} razed, {scene.n_cleared} cleared areas, "
        f"{scene.n_barricades} barricades, {scene.n_berms} berms, {scene.n_rubble} rubble patches; "
        f"{scene.n_entries} entry routes into the core, {scene.n_entries_cut} cut"
    )
