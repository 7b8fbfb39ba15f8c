"""Tests of the tree canopy: which crowns stand after and which were felled."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from fortmap.detect.canopy import CanopyThresholds, bare_ground, canopy_heights
from fortmap.io.raster import GridReader
from fortmap.types import Grid

UTM = CRS.from_epsg(32637)
N, GSD = 256, 0.5
TR = Affine(GSD, 0.0, 412000.0, 0.0, -GSD, 3985000.0 + N * GSD)
GROUND = np.array([0.42, 0.38, 0.30])
GRASS = np.array([0.26, 0.33, 0.17])
CROWN = np.array([0.08, 0.16, 0.06])
SOIL = np.array([0.55, 0.48, 0.38])
#: light in full sun and in a building's shadow (sky light only, bluish), as the simulator's
#: render: sun 0.85 x cos(incidence) + sky 0.17, and the sky alone
SUN = 0.8
SHADE = np.array([0.146, 0.164, 0.200])
#: crown centres (px) and radius: a 4 x 4 orchard on the left, grass on the right
TREES = [(40 + 48 * i, 24 + 32 * j) for i in range(4) for j in range(4)]
R_PX = 8
FELLED = (0, 5, 10)  # trees gone after
SHADED = (1, 2, 3, 4, 6, 7)  # trees standing in a shadow after


def _scene(*, after: bool) -> np.ndarray:
    """Radiance (3, N, N): reflectance x light, of the orchard on one date."""
    rr, cc = np.mgrid[0:N, 0:N]
    img = np.broadcast_to(GROUND[:, None, None], (3, N, N)).copy()
    img[:, :, 160:] = (GRASS * (0.8 if after else 1.0) + GROUND * (0.2 if after else 0.0))[
        :, None, None
    ]  # the grass dried a little by the after date (a seasonal change, not a felling)
    for i, (r, c) in enumerate(TREES):
        disc = (rr - r) ** 2 + (cc - c) ** 2 <= R_PX**2
        if after and i in FELLED:
            img[:, disc] = SOIL[:, None]
            continue
        img[:, disc] = CROWN[:, None]
    light = np.full((3, N, N), SUN)
    if after:
        for i in SHADED:
            r, c = TREES[i]
            box = (np.abs(rr - r) <= R_PX + 2) & (np.abs(cc - c) <= R_PX + 2)
            light[:, box] = SHADE[:, None]
    return img * light


def _write(path, refl, gain, offset, gamma, seed) -> None:
    rng = np.random.default_rng(seed)
    dn = np.empty(refl.shape, np.float64)
    for b in range(3):
        v = np.clip(refl[b] * gain[b] + offset[b], 0, 1)
        dn[b] = 255 * v ** (1 / (2.2 * gamma[b])) + rng.normal(0, 1.5, v.shape)
    with rasterio.open(
        path, "w", driver="GTiff", width=N, height=N, count=3, dtype="uint8", crs=UTM,
        transform=TR,
    ) as dst:  # fmt: skip
        dst.write(np.clip(np.rint(dn), 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def orchard(tmp_path_factory):
    d = tmp_path_factory.mktemp("orchard")
    _write(d / "before.tif", _scene(after=False), (1, 1, 1), (0.01, 0.015, 0.025), (1, 1, 1), 0)
    # the after date's colour balance: less green, a bluish haze (as the simulator's seed 3)
    _write(
        d / "after.tif", _scene(after=True), (1.0, 1.06, 1.04), (0.027, 0.032, 0.038),
        (1.07, 0.97, 0.99), 1,
    )  # fmt: skip
    return d


def test_bare_ground_needs_grey_and_bright():
    rgb = np.zeros((3, 4, 4), np.uint8)
    rgb[:, 0] = np.array([90, 120, 70])[:, None]  # lit crown: green, dark
    rgb[:, 1] = np.array([40, 44, 55])[:, None]  # crown in shade: bluish, dark
    rgb[:, 2] = np.array([190, 180, 165])[:, None]  # soil: grey, bright
    rgb[:, 3] = np.array([140, 165, 110])[:, None]  # grass: green, bright

    class Reader:
        def read_raw(self, win):
            return rgb

        def read_valid(self, win):
            return np.ones((4, 4), bool)

    th = CanopyThresholds(exg=0.05, dark=110.0)
    bare = bare_ground(Reader(), Window(0, 0, 4, 4), th, 1)
    assert bare[:, 0].tolist() == [False, False, True, False]
    # without a crown threshold the colour test decides alone: the shaded crown counts as bare
    alone = bare_ground(Reader(), Window(0, 0, 4, 4), CanopyThresholds(0.05, np.nan), 1)
    assert alone[:, 0].tolist() == [False, True, True, False]


def test_felled_trees_found_despite_colour_and_shade_change(orchard):
    grid = Grid(UTM, TR, N, N)
    rb = GridReader(orchard / "before.tif", grid, [1, 2, 3])
    ra = GridReader(orchard / "after.tif", grid, [1, 2, 3])
    hb, ha = canopy_heights(rb, ra, grid, 4, tree_height_m=7.0)
    for i, (r, c) in enumerate(TREES):
        cell = (r // 4, c // 4)  # the crown's centre on the 2 m grid
        assert hb[cell] > 0, i
        if i in FELLED:
            assert ha[cell] == 0, f"tree {i} felled but kept"
        else:
            assert ha[cell] == hb[cell], f"tree {i} standing but felled"
    # no tree on the grass, on either date
    assert not (hb[:, 44:] > 0).any() and not (ha[:, 44:] > 0).any()
