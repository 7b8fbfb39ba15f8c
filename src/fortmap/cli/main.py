"""The ``fortmap`` command: a click group with one module per sub-command."""

from __future__ import annotations

import importlib
import importlib.util
import os
import signal

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
    "train-change": "fortmap.cli.train_change",
}


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM, so that outputs being written are removed on the
    way out (as on Ctrl-C) rather than left half-written by an abrupt exit."""


def _raise_terminated(signum, frame) -> None:  # noqa: ARG001
    raise Terminated()


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
            _fail(ctx, str(exc), exc.exit_code)
        except click.UsageError as exc:
            # click's default is three lines (usage, hint, error); keep the promised one line
            sub = exc.ctx is not None and exc.ctx.parent is not None
            where = f"fortmap {exc.ctx.info_name}" if sub else "fortmap"
            _fail(ctx, f"{exc.format_message()} (see '{where} --help')", exc.exit_code)
        except KeyboardInterrupt:
            _fail(ctx, "interrupted (Ctrl-C)", 130)
        except Terminated:
            _fail(ctx, "terminated (SIGTERM)", 143)
        except OSError as exc:
            # the machine's to fix (permissions, disk full, a folder missing, a Dask scheduler
            # that does not answer): name the file when there is one
            where = f"{exc.filename}: " if exc.filename is not None else ""
            _fail(ctx, where + " ".join(str(exc.strerror or exc).split()), 1)


def _fail(ctx: click.Context, message: str, code: int) -> None:
    click.echo(f"Error: {message}", err=True)
    ctx.exit(code)


@click.group(cls=_LazyGroup)
@click.version_option(__version__, prog_name="fortmap")
def cli() -> None:
    """Map razed buildings, cleared land and field fortifications between two image dates."""


def main() -> None:
    """Console entry point."""
    # The default SIGTERM action kills the process at once, leaving the hidden temporary
    # output folder behind; as an exception it unwinds through the atomic writers instead.
    signal.signal(signal.SIGTERM, _raise_terminated)
    cli()


if __name__ == "__main__":
    main()
