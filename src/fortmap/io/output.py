"""Write an output directory atomically: all or nothing.

Outputs are written into a hidden sibling directory and renamed into place when complete, so a
crash or a bad input never leaves a half-written result, and an existing result is replaced
only when the user says ``--force``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from fortmap.errors import InputError, OutputExistsError


def guard_inputs(
    out: str | Path, inputs: Iterable[str | Path | None] = (), what: str = "the output folder"
) -> None:
    """Refuse an output that would replace or delete an input, or the working folder.

    An output is replaced whole (``force``), so an output folder holding an input, or an
    output file that is an input, would destroy that input; replacing the current folder or
    one above it would pull the ground from under the run.

    Args:
        out: the output folder or file.
        inputs: the input paths; ``None`` entries and strings that are not existing paths
            (such as a core given as ``lon,lat,r``) are skipped.
        what: how the messages name the output ("--out" on the command line).

    Raises:
        InputError: ``out`` is, or contains, an input, or is the current folder or above it.
    """
    target = Path(out).resolve()
    cwd = Path.cwd().resolve()
    if target == cwd or target in cwd.parents:
        raise InputError(f"{out}: {what} is the current folder or above it; name a new folder")
    for p in inputs:
        if p is None or not Path(p).exists():
            continue
        src = Path(p).resolve()
        if src == target or target in src.parents:
            raise InputError(
                f"{out}: {what} would replace the input {p}; write the output elsewhere"
            )


def check_output_dir(
    out_dir: str | Path, force: bool, inputs: Iterable[str | Path | None] = ()
) -> Path:
    """Refuse an existing, non-empty ``out_dir`` unless ``force``, and, even with ``force``,
    one that is or holds one of ``inputs`` or the current folder (see :func:`guard_inputs`).

    Raises:
        InputError: ``out_dir`` would destroy an input or the working folder.
        OutputExistsError: ``out_dir`` exists (not empty) and ``force`` is False, or is a file.
    """
    out = Path(out_dir)
    guard_inputs(out, inputs)
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out}: exists and is not a directory")
    if out.exists() and any(out.iterdir()) and not force:
        raise OutputExistsError(f"{out}: output directory exists; use --force to replace it")
    return out


@contextmanager
def atomic_dir(
    out_dir: str | Path, force: bool = False, inputs: Iterable[str | Path | None] = ()
) -> Iterator[Path]:
    """Yield a temporary directory that becomes ``out_dir`` when the block succeeds.

    ``out_dir`` is checked first with :func:`check_output_dir` (``inputs`` are never replaced).

    Example:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> with atomic_dir(root / "run") as tmp:
        ...     _ = (tmp / "a.txt").write_text("x")
        >>> (root / "run" / "a.txt").read_text()
        'x'
    """
    out = check_output_dir(out_dir, force, inputs)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{tmp.name[-8:]}")
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_files(folder: str | Path, last: str | None = None) -> Iterator[Path]:
    """Yield a hidden staging folder inside ``folder`` whose entries replace ``folder``'s
    same-named ones when the block succeeds; on any failure (SIGTERM included, raised as an
    exception by the CLI) the staging folder is removed and ``folder`` is left as it was.

    For outputs added to an existing folder (a run's report): each entry is swapped in by a
    rename, a subfolder whole, so none is ever seen half-written.

    Args:
        folder: the existing folder the files go into.
        last: the name moved in last (the file whose presence says the rest is complete).
    """
    folder = Path(folder)
    stage = Path(tempfile.mkdtemp(prefix=".staging-", dir=folder))
    try:
        yield stage
        names = sorted(p.name for p in stage.iterdir())
        if last in names:
            names.remove(last)
            names.append(last)
        for name in names:
            _swap_in(stage / name, folder / name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _swap_in(new: Path, target: Path) -> None:
    if new.is_dir() and target.exists():
        old = target.with_name(f".{target.name}.old-{new.parent.name[-8:]}")
        target.rename(old)
        new.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    elif target.is_dir():
        shutil.rmtree(target)
        os.replace(new, target)
    else:
        os.replace(new, target)


#: SQLite settings while the layers are written: no fsync after each transaction and the
#: rollback journal in memory. The GeoPackage's content is the same; only a power loss during
#: the write could leave it corrupt, and fortmap writes its outputs into a temporary folder
#: that replaces the output folder once complete (:func:`atomic_dir`). The syncs cost
#: about a third of the writing's CPU time.
FAST_SQLITE = {"OGR_SQLITE_SYNCHRONOUS": "OFF", "OGR_SQLITE_JOURNAL": "MEMORY"}


@contextmanager
def sqlite_options(options: dict[str, str]) -> Iterator[None]:
    """pyogrio's GDAL configuration ``options`` for the block, restored after it."""
    import pyogrio  # here: the output checks need no GDAL vector driver at start-up

    old = {k: pyogrio.get_gdal_config_option(k) for k in options}
    pyogrio.set_gdal_config_options(options)
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options(old)
