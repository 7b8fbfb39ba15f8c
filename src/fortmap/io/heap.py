"""Keep the memory that freed arrays give back in the process's heap during an analysis.

An analysis allocates and frees full-window arrays (a 1200 x 1200 float32 band is 5.8 MB)
thousands of times. glibc's malloc serves blocks that large with a fresh ``mmap`` and unmaps
them when freed, or trims the top of its heap once more than a few hundred kB lie free there,
so the next array of that size is mapped again and the kernel zeroes every page of it on first
touch (page faults took about a tenth of the CPU time of a 2 km scene, half of them on memory
just freed). With the
heap kept (no ``mmap`` below ``MMAP_THRESHOLD_B``, no trimming below ``TRIM_THRESHOLD_B``),
freed blocks are reused as they are; the results are the same, only the pages are not zeroed
again. numpy's advice to back its large arrays with huge pages is withdrawn meanwhile: the
kernel then zeroes 2 MB at the first touch of each, where the heap's growth needs 4 kB pages
(the page faults left are that growth). On exit glibc's default thresholds and numpy's advice
are restored; the free memory stays in the heap for the next allocations, as any freed block
inside glibc's heap does (handing it all back, ``malloc_trim``, cost 0.02 CPU s at 2 km, and
the command line exits right after). Elsewhere than glibc (macOS, Windows, musl) only numpy's
advice changes.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
from collections.abc import Iterator

import numpy as np

#: mallopt parameters (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: Blocks under this many bytes come from the heap (1200 x 1200 x 3 float32, a window with its
#: halo, is 17 MB; the few whole-scene arrays above it are mapped as before).
MMAP_THRESHOLD_B = 32 * 1024 * 1024
#: Free memory at the top of the heap is returned to the system only above this many bytes.
TRIM_THRESHOLD_B = 1024 * 1024 * 1024
#: glibc's defaults, restored on exit (bytes).
DEFAULT_THRESHOLD_B = 128 * 1024

_depth = 0
_tuned = False


def _libc() -> ctypes.CDLL | None:
    """The C library when it is glibc (has ``mallopt``), else None."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c"))
        except OSError:
            return None
    if not all(hasattr(libc, f) for f in ("mallopt", "gnu_get_libc_version")):
        return None
    return libc


@contextlib.contextmanager
def keep_freed_memory() -> Iterator[bool]:
    """Within the block, freed large arrays stay in the heap for the next ones.

    Yields whether the heap is tuned (glibc only). Nested blocks tune once; the outermost
    restores glibc's default thresholds on exit.
    """
    global _depth, _tuned
    outer = _depth == 0
    libc = _libc() if outer else None
    huge = _set_huge_pages(False) if outer else None
    if libc is not None:
        _tuned = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_B)) & bool(
            libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_B)
        )
    _depth += 1
    try:
        yield _tuned
    finally:
        _depth -= 1
        if libc is not None:
            libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_THRESHOLD_B)
            libc.mallopt(M_MMAP_THRESHOLD, DEFAULT_THRESHOLD_B)
            _tuned = False
        if huge is not None:
            _set_huge_pages(huge)


def _set_huge_pages(on: bool) -> bool | None:
    """Set numpy's huge-page advice for large arrays; the previous setting, or None where this
    numpy has no such switch."""
    core = getattr(np, "_core", None) or getattr(np, "core", None)
    switch = getattr(getattr(core, "multiarray", None), "_set_madvise_hugepage", None)
    return None if switch is None else bool(switch(on))


def release_free_memory() -> bool:
    """Hand the free pages inside the heap back to the system (glibc's ``malloc_trim``).

    Called between an analysis's stages: what the next stage allocates then takes fresh pages
    instead of squeezing into the previous stage's freed, fragmented blocks, where a run's
    peak came to depend on how the last windows had left the heap (773 to 833 MB on one 8 km
    scene). Returns whether anything was released (False elsewhere than glibc).

    Example:
        >>> isinstance(release_free_memory(), bool)
        True
    """
    libc = _libc()
    if libc is None or not hasattr(libc, "malloc_trim"):
        return False
    return bool(libc.malloc_trim(0))


@contextlib.contextmanager
def plain_heap() -> Iterator[None]:
    """Within a :func:`keep_freed_memory` block, a stretch with glibc's default thresholds:
    the heap's free pages are handed back first, and large blocks that no freed block of the
    heap can hold are mapped and unmapped again (glibc still carves a request from a large
    enough freed block, whose pages then stay until the next trim). For a step after the hot
    loop (the report): its arrays would otherwise pile onto the windows' fragmented heap (an
    8 km analysis with its report peaked at 1145 MB).
    Outside such a block, or elsewhere than glibc, it does nothing.
    """
    libc = _libc() if _depth > 0 and _tuned else None
    if libc is not None:
        libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_THRESHOLD_B)
        libc.mallopt(M_MMAP_THRESHOLD, DEFAULT_THRESHOLD_B)
        release_free_memory()
    try:
        yield
    finally:
        if libc is not None:
            libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_B)
            libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_B)
