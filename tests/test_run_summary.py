"""fortmap.run_summary: pieces of analyze's summary."""

from __future__ import annotations

import numba
import numpy as np

from fortmap.run_summary import compile_timer


def test_compile_timer_times_a_kernels_first_compilation_only() -> None:
    @numba.njit(cache=False)
    def twice(x):
        return 2 * x

    with compile_timer() as first:
        assert twice(np.float32(1.5)) == 3.0
    assert first.done and first.duration > 0
    with compile_timer() as again:  # compiled already: nothing to time
        assert twice(np.float32(2.0)) == 4.0
    assert not again.done
