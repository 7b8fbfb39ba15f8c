"""Progress display for long steps: a rich bar on a terminal, nothing otherwise."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import click


@contextmanager
def progress_reporter(quiet: bool = False) -> Iterator:
    """Yield a ``progress(step, done, total)`` callback; rich bars only when stderr is a TTY."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    tasks: dict[str, int] = {}
    with Progress(
        TextColumn("{task.description:<16}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        transient=False,
    ) as bar:

        def update(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=total)
            bar.update(tasks[step], completed=done, total=total)

        yield update


def one_line_warnings(quiet: bool = False) -> None:
    """Print Python warnings as one line each on stderr (none when ``quiet``)."""

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ARG001
        if not quiet:
            click.echo(f"Warning: {message}", err=True)

    warnings.showwarning = show
