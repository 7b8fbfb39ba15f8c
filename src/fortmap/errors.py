"""Errors raised by fortmap.

Every error a user can cause derives from :class:`FortmapError`; the CLI prints its message on
one line and exits non-zero. Anything else reaching the CLI is a bug.
"""


class FortmapError(Exception):
    """Base class of every error fortmap raises on purpose."""

    exit_code = 1


class InputError(FortmapError):
    """An input file is missing, unreadable, of the wrong kind or inconsistent."""

    exit_code = 2


class NotGeoreferencedError(InputError):
    """A raster has no CRS or no geotransform."""


class NoOverlapError(InputError):
    """Two inputs do not overlap on the ground."""


class OutputExistsError(FortmapError):
    """An output already exists and ``--force`` was not given."""

    exit_code = 3


class AlignmentError(FortmapError):
    """The images could not be co-registered."""
