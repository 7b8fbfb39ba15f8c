"""fortmap.io.heap: freed memory kept in the heap during an analysis, defaults restored."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fortmap.io import heap


def test_yields_and_nests() -> None:
    with heap.keep_freed_memory() as outer:
        assert isinstance(outer, bool)
        with heap.keep_freed_memory() as inner:
            assert inner == outer
        assert heap._depth == 1
    assert heap._depth == 0
    assert heap._tuned is False


def test_huge_page_advice_restored() -> None:
    before = heap._set_huge_pages(True)
    try:
        with heap.keep_freed_memory():
            if before is not None:
                assert heap._set_huge_pages(False) is False  # withdrawn inside
        if before is not None:
            assert heap._set_huge_pages(True) is True  # restored on exit
    finally:
        if before is not None:
            heap._set_huge_pages(before)


def test_restores_on_error() -> None:
    with pytest.raises(RuntimeError), heap.keep_freed_memory():
        raise RuntimeError("boom")
    assert heap._depth == 0


_CHURN = """
import resource, sys
import numpy as np
from fortmap.io import heap
n = 6 * 1024 * 1024 // 4  # 6 MB of float32, like a window band
def churn():
    a = np.ones(n, np.float32)  # touched: every page faulted in once
    del a
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        b = np.ones(n, np.float32)
        del b
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
if sys.argv[1] == "kept":
    with heap.keep_freed_memory() as tuned:
        assert tuned
        print(churn())
else:
    print(churn())
"""


def _child(code: str, *args: str) -> str:
    """stdout of ``code`` run in a fresh Python process (with this one's import path)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.skipif(heap._libc() is None, reason="needs glibc")
def test_freed_arrays_reused_without_page_faults() -> None:
    """A large array freed and allocated again costs no new page faults inside the block; in
    a fresh process without it, each is a new mapping faulted in again (in processes of their
    own: after a run, glibc reuses the free heap left behind anyway)."""

    def faults(mode: str) -> int:
        return int(_child(_CHURN, mode).split()[-1])

    kept, plain = faults("kept"), faults("plain")
    assert kept < 50
    # about 1500 faults of 4 kB pages per array, fewer where numpy asks for huge pages
    assert plain > 4 * kept


# 96 MB freed inside a kept heap, under a small block that keeps it from shrinking at its top
_FREED = """
import numpy as np
from fortmap.io import heap
def rss_mb():
    d = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return int(d["VmRSS"].split()[0]) / 1024
with heap.keep_freed_memory():
    keep = [np.ones(1024 * 1024, np.float64) for _ in range(12)]  # 12 x 8 MB, in the heap
    tail = np.ones(1024, np.float64)  # allocated last: the heap cannot shrink from its top
    del keep
    kept = rss_mb()
"""
_RELEASE = (
    _FREED
    + """
    released = heap.release_free_memory()
    print(released, kept - rss_mb())
"""
)


@pytest.mark.skipif(
    heap._libc() is None or not sys.platform.startswith("linux"), reason="needs glibc on Linux"
)
def test_free_pages_inside_the_heap_are_handed_back() -> None:
    released, dropped_mb = _child(_RELEASE).split()
    assert released == "True"
    assert float(dropped_mb) > 80  # most of the 96 MB freed


def test_plain_heap_nests_inside_the_kept_heap() -> None:
    with heap.plain_heap():  # outside a kept heap: nothing to do
        pass
    with heap.keep_freed_memory() as tuned:
        with heap.plain_heap():
            assert heap._depth == 1
        assert heap._tuned == tuned  # the tuning resumes
    assert heap._depth == 0


_PLAIN = (
    _FREED
    + """
    with heap.plain_heap():
        print(kept - rss_mb())
"""
)


@pytest.mark.skipif(
    heap._libc() is None or not sys.platform.startswith("linux"), reason="needs glibc on Linux"
)
def test_plain_heap_hands_back_the_kept_heaps_free_pages() -> None:
    released = float(_child(_PLAIN))
    assert released > 80  # most of the 96 MB freed in the kept heap went back on entry


# A 16 MB block freed, in a fresh process whose heap holds no free block that large: within a
# kept heap it is carved from the heap and stays there when freed; within a plain heap it is
# mapped and unmapped. (Where a freed block of the heap is large enough, glibc serves even a
# plain heap's request from it, mapped or not by its place in the heap, so the test keeps none.)
_LARGE = """
import sys
import numpy as np
from fortmap.io import heap
def rss_mb():
    d = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return int(d["VmRSS"].split()[0]) / 1024
with heap.keep_freed_memory():
    with heap.plain_heap() if sys.argv[1] == "plain" else heap.keep_freed_memory():
        before = rss_mb()
        big = np.ones(16 * 1024 * 1024 // 8)
        del big
        print(rss_mb() - before)
"""


@pytest.mark.skipif(
    heap._libc() is None or not sys.platform.startswith("linux"), reason="needs glibc on Linux"
)
def test_plain_heap_maps_large_blocks_again() -> None:
    kept, plain = (float(_child(_LARGE, mode)) for mode in ("kept", "plain"))
    assert kept > 12  # kept in the heap when freed
    assert plain < 4  # mapped, and given back when freed
