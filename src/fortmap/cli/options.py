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
