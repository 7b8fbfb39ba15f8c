"""fortmap.io.heap: freed memory kept in the heap during an analysis, defaults restored."""

from __future__ import annotations

import resource
import sys

import numpy as np
import pytest

from fortmap.io import heap


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


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


@pytest.mark.skipif(heap._libc() is None, reason="needs glibc")
def test_freed_arrays_reused_without_page_faults() -> None:
    """A large array freed and allocated again costs no new page faults inside the block."""
    n = 6 * 1024 * 1024 // 4  # 6 MB of float32, like a window band

    def churn() -> int:
        a = np.ones(n, np.float32)  # touched: every page faulted in once
        del a
        f0 = _faults()
        for _ in range(5):
            b = np.ones(n, np.float32)
            del b
        return _faults() - f0

    with heap.keep_freed_memory() as tuned:
        assert tuned
        inside = churn()
    outside = churn()
    # outside, each array is a fresh mapping (about 1500 faults of 4 kB pages, fewer with
    # huge pages); inside, the freed block is reused as it is
    assert inside < 50
    assert outside > inside or sys.platform != "linux"
