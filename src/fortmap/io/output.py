"""Write an output directory atomically: all or nothing.

Outputs are written into a hidden sibling directory and renamed into place when complete, so a
crash or a bad input never leaves a half-written result, and an existing result is replaced
only when the user says ``--force``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fortmap.errors import OutputExistsError


def check_output_dir(out_dir: str | Path, force: bool) -> Path:
    """Refuse an existing, non-empty ``out_dir`` unless ``force``."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out}: exists and is not a directory")
    if out.exists() and any(out.iterdir()) and not force:
        raise OutputExistsError(f"{out}: output directory exists; use --force to replace it")
    return out


@contextmanager
def atomic_dir(out_dir: str | Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary directory that becomes ``out_dir`` when the block succeeds.

    Example:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> with atomic_dir(root / "run") as tmp:
        ...     _ = (tmp / "a.txt").write_text("x")
        >>> (root / "run" / "a.txt").read_text()
        'x'
    """
    out = check_output_dir(out_dir, force)
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
