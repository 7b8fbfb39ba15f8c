"""A scene-wide grid of per-block values, filled window by window, that need not fit in memory.

The window pass hands back coarse summaries of its core (2 m blocks for cleared land and for
berms). Gathered over a whole city they outgrow memory (a 10 km city's cleared-land statistics
are 250 MB at 0.5 m imagery), so a grid larger than ``max_in_memory_b`` lives in a temporary
file. The file is read and written a row piece at a time (``pread``/``pwrite``), never mapped:
a mapping's pages count as the process's memory while it lives, and its read faults bring in
the neighbouring pages too.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Self

import numpy as np

#: Largest grid kept in memory rather than in a temporary file, bytes: a 2 km scene's berm
#: grid (28 MB at 0.5 m) and cleared-land statistics (10 MB) stay in memory, where writing a
#: file for each window would cost 1-2 % of the run.
MAX_IN_MEMORY_B = 32 * 1024 * 1024


class SceneGrid:
    """A (planes, rows, cols) array on a scene's block grid, in memory or in a temporary file.

    A call on the file costs a few milliseconds, so a district's grid stays in memory.

    Args:
        shape: (planes, rows, cols), blocks.
        dtype: the values' type.
        folder: where the temporary file goes (None: the system's temporary folder).
        max_in_memory_b: largest grid kept in memory, bytes (default ``MAX_IN_MEMORY_B``).
        prefix: the temporary file's name prefix.

    Example:
        >>> g = SceneGrid((1, 4, 4), np.uint8, max_in_memory_b=0)
        >>> g.write(1, 2, np.ones((1, 2, 5), np.uint8))  # clipped to the grid
        >>> g.read(0, 0, 4, 4)[0].sum(), g.path is not None
        (np.uint64(4), True)
        >>> g.close()
    """

    def __init__(
        self,
        shape: tuple[int, int, int],
        dtype: np.dtype | type,
        folder: Path | None = None,
        max_in_memory_b: int | None = None,
        prefix: str = "fortmap-grid-",
    ) -> None:
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.path: Path | None = None
        self._mem: np.ndarray | None = None
        size = int(np.prod(self.shape)) * self.dtype.itemsize
        limit = MAX_IN_MEMORY_B if max_in_memory_b is None else max_in_memory_b
        if size <= limit:
            # zeros until a window fills it: a valid share of 0 reads as no data
            self._mem = np.zeros(self.shape, self.dtype)
            return
        with tempfile.NamedTemporaryFile(
            prefix=prefix, suffix=".bin", dir=folder, delete=False
        ) as tmp:
            tmp.truncate(size)  # zeros, a sparse file
        self.path = Path(tmp.name)

    @property
    def in_memory(self) -> bool:
        """Whether the grid is held in memory (else in its temporary file)."""
        return self._mem is not None

    def write(self, row0: int, col0: int, planes: np.ndarray) -> None:
        """Write ``planes`` (planes, rows, cols) from block (``row0``, ``col0``), clipped to
        the grid."""
        _, h, w = planes.shape
        h, w = min(h, self.shape[1] - row0), min(w, self.shape[2] - col0)
        if h <= 0 or w <= 0:
            return
        if self._mem is not None:
            self._mem[:, row0 : row0 + h, col0 : col0 + w] = planes[:, :h, :w]
            return
        part = np.ascontiguousarray(planes[:, :h, :w], self.dtype)
        with open(self.path, "r+b") as f:
            for p, r, off in self._rows(row0, h, col0):
                os.pwrite(f.fileno(), part[p, r].data, off)

    def read(self, r0: int, c0: int, r1: int, c1: int, planes: slice | None = None) -> np.ndarray:
        """A copy of rows ``r0:r1`` and columns ``c0:c1`` (blocks) of ``planes`` (default all)."""
        sel = planes if planes is not None else slice(None)
        if self._mem is not None:
            return np.array(self._mem[sel, r0:r1, c0:c1])
        which = range(self.shape[0])[sel]
        out = np.empty((len(which), r1 - r0, c1 - c0), self.dtype)
        # row pieces read with pread, not through a mapping: a mapping's faults map the
        # neighbouring pages too (the rest of each row), which counted as the process's memory
        with open(self.path, "rb") as f:
            for p, r, off in self._rows(r0, r1 - r0, c0, which):
                os.preadv(f.fileno(), [out[p, r].data], off)
        return out

    def _rows(self, row0: int, rows: int, col0: int, which: range | None = None):  # noqa: ANN202
        """(plane index in the part, row index in the part, byte offset in the file) of each
        row piece from (``row0``, ``col0``)."""
        n, h, w = self.shape
        size = self.dtype.itemsize
        for k, p in enumerate(which if which is not None else range(n)):
            for r in range(rows):
                yield k, r, ((p * h + row0 + r) * w + col0) * size

    def close(self) -> None:
        """Drop the grid (and its file)."""
        self._mem = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def tiles(
    shape: tuple[int, int], tile: int, halo: int
) -> list[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]]:
    """(core, read) per tile of a (rows, cols) grid, each (row0, col0, row1, col1): cores of
    ``tile`` side in row-major order, reads ``halo`` wider, both clipped to the grid.

    Example:
        >>> tiles((5, 3), 4, 1)
        [((0, 0, 4, 3), (0, 0, 5, 3)), ((4, 0, 5, 3), (3, 0, 5, 3))]
    """
    h, w = shape
    out = []
    for r in range(0, h, tile):
        for c in range(0, w, tile):
            core = (r, c, min(h, r + tile), min(w, c + tile))
            read = (
                max(0, r - halo),
                max(0, c - halo),
                min(h, core[2] + halo),
                min(w, core[3] + halo),
            )
            out.append((core, read))
    return out
