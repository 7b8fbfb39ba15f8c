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


class StepLog:
    """Records progress events with timestamps and writes them as JSON lines (``--log-json``).

    Each line is ``{"t": seconds since start, "step": name, "done": n, "total": n}``; the last
    line holds the summary's per-stage timings as ``{"step": "timings", "seconds": {...}}``.
    """

    def __init__(self, inner=None) -> None:
        import time

        self._t0 = time.perf_counter()
        self._clock = time.perf_counter
        self.inner = inner
        self.events: list[dict] = []

    def __call__(self, step: str, done: int, total: int) -> None:
        self.events.append(
            {"t": round(self._clock() - self._t0, 3), "step": step, "done": done, "total": total}
        )
        if self.inner is not None:
            self.inner(step, done, total)

    def write(self, path, timings: dict) -> None:
        """Write the events and ``timings`` to ``path`` (via a temporary file and a rename)."""
        import json
        import os
        from pathlib import Path

        p = Path(path)
        tmp = p.with_name(f".{p.name}.tmp")
        lines = [json.dumps(e) for e in self.events]
        lines.append(json.dumps({"step": "timings", "seconds": timings}))
        tmp.write_text("\n".join(lines) + "\n")
        os.replace(tmp, p)
