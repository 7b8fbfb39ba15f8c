"""Checks the commands make before any long work: outputs that would destroy inputs or cannot
be written."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def guard_output(out: Path, inputs: Iterable[Path | str | None], option: str = "--out") -> None:
    """Refuse an output that would replace or delete an input, or the working folder, or that
    cannot be written.

    ``--force`` replaces the output whole, so an output folder holding an input (or an output
    file that is an input) would destroy that input, and replacing the current folder or one
    above it would pull the ground from under the run.

    Args:
        out: the output folder or file named by the user.
        inputs: the input paths (``None`` entries are skipped; strings that are not existing
            paths, such as ``--core`` given as ``lon,lat,r``, are ignored).
        option: the option's name, for the message.

    Raises:
        InputError: ``out`` is, or contains, an input, is the current folder or above it, or
            its folder cannot be written in.
    """
    from fortmap.io.output import guard_inputs

    # the same check the library makes when it prepares its output (fortmap.io.output)
    guard_inputs(out, inputs, option)
    _check_writable(Path(out), option)


def _check_writable(out: Path, option: str) -> None:
    """Try writing where ``out`` will be written (its nearest existing folder), before any long
    run: outputs go through a hidden temporary beside ``out``, whose name would otherwise be
    the one an error names. A real write, not ``os.access``: root passes that on read-only
    file systems."""
    import tempfile

    from fortmap.errors import InputError

    folder = next((a for a in out.absolute().parents if a.exists()), None)
    if folder is None:
        return
    if not folder.is_dir():
        raise InputError(f"{out}: {option}: {folder} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise InputError(f"{out}: {option}: cannot write in {folder}: {exc.strerror}") from None


def check_height_inputs(before: Path | str, heights: dict[str, Path | str | None]) -> None:
    """Check the DEM and DSMs up front: one band each, and overlapping the before image's
    analysis grid (``fortmap.io.grids.analysis_grid``), before any long work.

    Args:
        before: the before image; when it cannot be opened nothing is checked here (the run
            reports that with its own message).
        heights: role ("DEM", "before DSM", "after DSM") -> path or None.

    Raises:
        InputError: a height raster is missing, unreadable or has several bands.
        NoOverlapError: a height raster does not overlap the images.
    """
    from fortmap.analyze.surface import check_heights
    from fortmap.errors import InputError
    from fortmap.io.grids import analysis_grid
    from fortmap.io.raster import open_info

    given = {role: p for role, p in heights.items() if p is not None}
    if not given:
        return
    try:
        grid = analysis_grid(open_info(before, "before image"))
    except InputError:
        return
    for role, p in given.items():
        check_heights(p, role, grid)
