"""``fortmap train-change``: learn a change model from labelled pairs of the analyst's imagery."""

from __future__ import annotations

from pathlib import Path

import click

from fortmap.cli.checks import guard_output
from fortmap.cli.options import coregister_option, force_option, quiet_option, seed_option
from fortmap.cli.progress import one_line_warnings, progress_reporter


@click.command("train-change")
@click.option(
    "--pair",
    "pairs",
    type=click.Path(path_type=Path, dir_okay=False),
    nargs=3,
    multiple=True,
    required=True,
    help="BEFORE AFTER LABEL: two dates and a change raster (non-zero = change); repeat.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Model file to write (.npz).",
)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="Passes over the training sample.",
)
@click.option(
    "--swap-dates/--no-swap-dates",
    default=False,
    show_default=True,
    help="Also learn from each pair with its dates swapped: buildings built teach buildings gone.",
)
@click.option(
    "--members",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Networks in the ensemble, each on its own resample of the pixels; outputs averaged.",
)
@click.option(
    "--segments/--no-segments",
    default=True,
    show_default=True,
    help="Average the output over image segments (both dates) before the threshold.",
)
@seed_option
@coregister_option
@force_option
@quiet_option
def command(
    pairs: tuple[tuple[Path, Path, Path], ...],
    out: Path,
    epochs: int,
    swap_dates: bool,
    members: int,
    segments: bool,
    seed: int,
    coregister: str,
    force: bool,
    quiet: bool,
) -> None:
    """Train a change model on labelled pairs, for `fortmap analyze --change-model`.

    \b
    Example:
      fortmap train-change --pair a1.tif b1.tif label1.tif --pair a2.tif b2.tif label2.tif \\
          --out new_buildings.npz
    """
    from fortmap.train import train_change_model

    one_line_warnings(quiet)
    guard_output(out, [p for pair in pairs for p in pair])
    with progress_reporter(quiet) as bar:
        net = train_change_model(list(pairs), out, force=force, epochs=epochs, seed=seed,
                                 coregister=coregister, swap_dates=swap_dates, members=members,
                                 segments=segments, progress=bar)  # fmt: skip
    if not quiet:
        i = net.info
        click.echo(
            f"wrote {out}: {len(pairs)} pair(s), {i['pixels'] / 1e6:.2f} MP, "
            f"{i['changed_pixels']} changed pixels; threshold {net.threshold:.2f} "
            f"(training F1 {i['training_f1']:.3f})"
        )
