"""Checks the commands make before any long work: outputs that would destroy inputs or cannot
be written, and inputs whose CRS units are not ground metres."""

from __future__ import annotations

import warnings
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
    from fortmap.errors import InputError

    target = Path(out).resolve()
    cwd = Path.cwd().resolve()
    if target == cwd or target in cwd.parents:
        raise InputError(f"{out}: {option} is the current folder or above it; name a new folder")
    for p in inputs:
        if p is None or not Path(p).exists():
            continue
        src = Path(p).resolve()
        if src == target or target in src.parents:
            raise InputError(
                f"{out}: {option} would replace the input {p}; write the output elsewhere"
            )
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


#: A projected CRS whose point scale at the image differs from 1 by more than this is called
#: out: UTM's is within 0.1 % across its zone, Web Mercator's is 1/cos(latitude) (27 % at 38
#: degrees), which every length, area and size rule in metres would inherit.
SCALE_TOLERANCE = 0.01


def warn_scale(path: Path | str | None, role: str) -> float | None:
    """Warn when a raster's projected CRS units are not ground metres at the raster's centre.

    Args:
        path: the raster (its header only is read); ``None`` or an unreadable file is skipped
            (the run itself reports those).
        role: what the raster is, for the message (e.g. "before image").

    Returns:
        The CRS's point scale factor at the centre (map metres per ground metre), or ``None``
        when it could not be computed (geographic CRS, no CRS, unreadable file).
    """
    if path is None:
        return None
    try:
        import rasterio
        from pyproj import CRS, Proj, Transformer

        # quietly: rasterio's own warnings on a bad file would come before the run's one-line
        # error about it
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with rasterio.open(path) as ds:
                if ds.crs is None or not ds.crs.is_projected:
                    return None
                crs = CRS.from_wkt(ds.crs.to_wkt())
                x, y = ds.xy(ds.height // 2, ds.width // 2)
        lon, lat = Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True).transform(x, y)
        f = Proj(crs).get_factors(lon, lat)
        # the farther from 1 of the two: they differ on projections that are not conformal
        scale = max((float(f.meridional_scale), float(f.parallel_scale)), key=lambda v: abs(v - 1))
    except Exception:  # noqa: BLE001 - the run reports unreadable inputs with its own message
        return None
    if abs(scale - 1.0) > SCALE_TOLERANCE:
        warnings.warn(
            f"{path}: the {role}'s CRS ({crs.name}) stretches ground metres by {scale:.2f} "
            f"here; lengths, areas and size rules would be off by that factor: reproject it "
            f"to its UTM zone first",
            stacklevel=2,
        )
    return scale
