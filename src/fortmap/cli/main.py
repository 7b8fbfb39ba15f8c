"""The ``fortmap`` command: a click group with one module per sub-command."""

from __future__ import annotations

import importlib
import importlib.util
import os

# Before numpy loads: OpenBLAS's worker threads spin on small matrix products (phase
# correlation, band fits) and, on a laptop's few busy cores, cost more than they save.
# A user's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import click  # noqa: E402

from fortmap import __version__
from fortmap.errors import FortmapError

#: sub-command name -> module under fortmap.cli exposing a click command named ``command``.
COMMANDS: dict[str, str] = {
    "simulate": "fortmap.cli.simulate",
    "analyze": "fortmap.cli.analyze",
    "score": "fortmap.cli.score",
    "demo": "fortmap.cli.demo",
    "viewshed": "fortmap.cli.viewshed",
    "report": "fortmap.cli.report",
}


class _LazyGroup(click.Group):
    """Imports a sub-command's module only when it is run, so ``fortmap --help`` is quick."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(n for n, m in COMMANDS.items() if importlib.util.find_spec(m) is not None)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or importlib.util.find_spec(COMMANDS[name]) is None:
            return None
        return importlib.import_module(COMMANDS[name]).command

    def invoke(self, ctx: click.Context):
        # A FortmapError is the user's to fix: one line on stderr and an exit code, no traceback.
        try:
            return super().invoke(ctx)
        except FortmapError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=_LazyGroup)
@click.version_option(__version__, prog_name="fortmap")
def cli() -> None:
    """Map razed buildings, cleared land and field fortifications between two image dates."""


def main() -> None:
    """Console entry point."""
    cli()


if __name__ == "__main__":
    main()
