"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path

import click

force_option = click.option(
    "--force", is_flag=True, default=False, help="Replace outputs that already exist."
)
quiet_option = click.option("--quiet", "-q", is_flag=True, default=False, help="Print only errors.")
seed_option = click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")


out_dir_option = click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Output directory.",
)

coregister_option = click.option(
    "--coregister",
    type=click.Choice(["auto", "shift", "none"]),
    default="auto",
    show_default=True,
    help="auto: shift plus an affine correction when it clearly helps; none: already aligned.",
)

size_m_option = click.option(
    "--size-m",
    type=float,
    default=2000.0,
    show_default=True,
    help="Side of the square simulated scene, metres.",
)
difficulty_option = click.option(
    "--difficulty",
    default="default",
    show_default=True,
    help="easy|default|hard|extreme, or a number 0..1 (misregistration, illumination, noise, blur).",
)

#: Copernicus GLO-30's relative vertical accuracy, 2 m LE90 (sigma 1.2 m); see
#: :data:`fortmap.analyze.visibility_step.DEFAULT_DEM_ACCURACY_M` (not imported: keeps the CLI
#: start-up light).
_DEM_ACCURACY_M = 1.2
dem_accuracy_option = click.option(
    "--dem-accuracy",
    "dem_accuracy_m",
    type=click.FloatRange(min=0.0),
    default=_DEM_ACCURACY_M,
    show_default=True,
    help="Vertical accuracy of --dem, metres RMSE (default: Copernicus GLO-30's 2 m LE90; "
    "SRTM is about 6; fortmap simulate's dem.tif has 1.2): gives the visibility gain a "
    "5th-95th percentile interval over 10 perturbed DEMs. 0: no interval.",
)
