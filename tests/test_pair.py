"""Aligning a pair: the co-registration modes and the radiometric maps set on the readers."""

from __future__ import annotations

import numpy as np
import pytest

from fortmap.align.pair import coregister_pair, normalise_pair
from fortmap.errors import InputError
from fortmap.io.grids import analysis_grid
from fortmap.io.raster import GridReader, open_info


def _readers(b, a):
    grid = analysis_grid(open_info(b))
    return grid, GridReader(b, grid), GridReader(a, grid)


@pytest.mark.parametrize("mode", ["auto", "shift", "none"])
def test_modes_measure_the_shift_and_apply_what_they_say(pair, mode):
    b, a, _ = pair
    _, br, ar = _readers(b, a)
    co = coregister_pair(br, ar, mode)
    assert co.mode == mode
    # the after image was shifted by (2.4, -1.6) px: measured whatever the mode
    assert (co.dx, co.dy) == (pytest.approx(2.4, abs=0.2), pytest.approx(-1.6, abs=0.2))
    if mode == "none":
        assert co.warp.is_identity
    if mode == "shift":
        assert (co.warp.c, co.warp.f) == (co.dx, co.dy)


def test_normalise_sets_maps_that_undo_the_gain(pair):
    b, a, _ = pair
    grid, br, ar = _readers(b, a)
    coregister_pair(br, ar)
    maps, nb, na, sv = normalise_pair(br, ar, grid, 256, grey=False)
    assert nb.shape == na.shape and sv.shape == nb.shape[1:]
    assert br.scale is not None and ar.scale is not None
    # after = 0.8 before + 0.05: normalised, the two samples agree where nothing changed
    d = np.abs(nb - na)[:, sv]
    assert np.median(d) < 0.05 * max(np.ptp(nb[:, sv]), 1e-6)


def test_no_overlapping_valid_pixels_is_refused(tmp_path):
    from conftest import textured_scene, write_tif

    img = textured_scene(128)
    b = write_tif(tmp_path / "b.tif", img)
    a = write_tif(tmp_path / "a.tif", np.zeros_like(img), nodata=0)
    grid, br, ar = _readers(b, a)
    with pytest.raises(InputError, match="a.tif: no valid pixels overlap"):
        normalise_pair(br, ar, grid, 64, grey=False)
