"""Berms found on the scene's 2 m work grid, after the window pass, not window by window.

A berm is tens to hundreds of metres long, so most cross a window's edge. Judged inside each
window, a crest is cut into pieces of its own (``berm_image.lit_runs`` cuts 40 m pieces from
the crest's start as the window sees it) and a stub shorter than 30 m at the window's edge is
dropped: the same berm came out whole, in two pieces or short depending on ``--window``
(BENCHMARKS.md, "Findings and the window size"). The berm detector works on 2 m blocks anyway
(``berms.WORK_GSD_M``), a sixteenth of the pixels at 0.5 m. So each window hands back its
core's blocks (:func:`work_part`: block means of both images, the valid share and, with
DSMs, the berm path's surfaces). They are gathered in a scene-wide file (:class:`WorkGrid`,
disk-backed, so memory does not grow with the scene). The berms are then found in large tiles
with a wide halo (:func:`scene_berms`).

With the defaults a tile is 768 work pixels (1.5 km) plus a 128-pixel halo (256 m), so a berm
up to 256 m long is judged whole in any tile that holds a part of it; a grid of up to 1024 work
pixels a side (2 km) is one tile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
import shapely.affinity
from affine import Affine
from rasterio.windows import Window

from fortmap.detect.berm_grid import _down, work_factor
from fortmap.detect.berms import _after_ridge, find_berms_work
from fortmap.detect.dsm_noise import berm_surfaces
from fortmap.detect.dsm_rubble import _berm_body
from fortmap.io.footprint_store import FootprintStore
from fortmap.io.polygon_fill import burn_polygons
from fortmap.io.scene_grid import SceneGrid
from fortmap.io.scene_grid import tiles as grid_tiles

#: Side of a berm tile's core and its halo, work pixels (2 m): 1.5 km and 256 m. A tile read
#: is then at most 1024 work pixels a side, as large as a 2 km scene's whole grid, which is
#: taken as one tile: the detector's arrays (about 50 bytes a work pixel) stay as large as a
#: district's, whatever the scene.
TILE_WORK_PX = 768
HALO_WORK_PX = 128


@dataclass
class WorkPart:
    """A window's blocks of the work grid.

    Attributes:
        row0, col0: the first block's index on the scene's work grid.
        planes: float32 (planes, rows, cols): after bands, before bands, valid share, and with
            DSMs the berm path's before and after surfaces (m).
    """

    row0: int
    col0: int
    planes: np.ndarray


def work_part(
    before: np.ndarray,
    after: np.ndarray,
    valid: np.ndarray,
    read: Window,
    core: Window,
    gsd: float,
    scene_shape: tuple[int, int],
    surfaces: tuple[np.ndarray, np.ndarray] | None = None,
) -> WorkPart | None:
    """The work-grid blocks whose first pixel lies in the core, from a window read.

    Blocks are counted from the scene grid's origin, so each block is the same average of the
    same pixels whatever window computes it. A block straddling the core's far edge is taken
    from the halo (``f - 1`` pixels at most, within the fortification halo).

    Args:
        before, after: normalised float32 (bands, rows, cols) of the read.
        valid: bool (rows, cols) of the read.
        read: the window read, on the analysis grid (pixels).
        core: the window's core on the analysis grid (pixels).
        gsd: metres per pixel.
        scene_shape: (rows, cols) of the analysis grid.
        surfaces: with DSMs, (before, after) surfaces of the read (m, ``dsm_noise.berm_surfaces``).

    Returns:
        :class:`WorkPart`, or None where the core holds no whole block.
    """
    f = work_factor(gsd)
    hb, wb = scene_shape[0] // f, scene_shape[1] // f
    b_r0, b_c0 = -(-int(core.row_off) // f), -(-int(core.col_off) // f)
    b_r1 = min(hb, -(-int(core.row_off + core.height) // f))
    b_c1 = min(wb, -(-int(core.col_off + core.width) // f))
    if b_r1 <= b_r0 or b_c1 <= b_c0:
        return None
    r0, c0 = b_r0 * f - int(read.row_off), b_c0 * f - int(read.col_off)
    n_r, n_c = b_r1 - b_r0, b_c1 - b_c0
    a = after if after.ndim == 3 else after[None]
    b = before if before.ndim == 3 else before[None]
    planes = [a, b, valid[None]] + ([z[None] for z in surfaces] if surfaces is not None else [])
    if r0 % f == 0 and c0 % f == 0:
        # the read starts on a block edge (windows and halos are whole blocks): the read's
        # own blocks, with no copy of the core
        br, bc = r0 // f, c0 // f
        parts = [_down(x, f)[:, br : br + n_r, bc : bc + n_c] for x in planes]
    else:
        sl = (slice(r0, r0 + n_r * f), slice(c0, c0 + n_c * f))
        parts = [_down(np.ascontiguousarray(x[:, sl[0], sl[1]]), f) for x in planes]
    return WorkPart(b_r0, b_c0, np.concatenate(parts).astype(np.float32, copy=False))


class WorkGrid(SceneGrid):
    """The scene's work grid, filled window by window: in memory up to ``scene_grid.MAX_IN_MEMORY_B``,
    else in a temporary file (:class:`fortmap.io.scene_grid.SceneGrid`).

    A 10 km city's grid is 700 MB on disk; a district's (28 MB at 2 km) stays in memory.

    Args:
        shape: (rows, cols) of the analysis grid (image pixels).
        gsd: metres per pixel.
        bands: bands compared per image.
        dsm: whether the DSM surfaces are kept too.
        folder: where the temporary file goes (None: the system's temporary folder).
        max_in_memory_b: largest grid kept in memory, bytes (default
            ``scene_grid.MAX_IN_MEMORY_B``).
    """

    def __init__(
        self,
        shape: tuple[int, int],
        gsd: float,
        bands: int,
        dsm: bool,
        folder: Path | None = None,
        max_in_memory_b: int | None = None,
    ) -> None:
        self.f = work_factor(gsd)
        self.gsd = gsd
        self.image_shape = shape
        self.bands = bands
        self.dsm = dsm
        n = 2 * bands + 1 + (2 if dsm else 0)
        super().__init__(
            (n, shape[0] // self.f, shape[1] // self.f), np.float32, folder, max_in_memory_b,
            prefix="fortmap-berm-grid-",
        )  # fmt: skip

    def add(self, part: WorkPart | None) -> None:
        """Write one window's blocks."""
        if part is not None:
            self.write(part.row0, part.col0, part.planes)

    def tiles(
        self, tile: int = TILE_WORK_PX, halo: int = HALO_WORK_PX
    ) -> list[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]]:
        """(core, read) per tile, each (row0, col0, row1, col1) in work pixels; a grid that
        fits in one tile's read is one tile."""
        h, w = self.shape[1:]
        if h <= tile + 2 * halo and w <= tile + 2 * halo:
            return [((0, 0, h, w), (0, 0, h, w))]
        return grid_tiles((h, w), tile, halo)


def scene_berms(
    grid: WorkGrid,
    fc,  # noqa: ANN001  (fortifications.FortContext)
    grid_transform: Affine,
) -> list[tuple[shapely.LineString, float, dict]]:
    """Berms and ditches of the whole scene from its work grid, lines in the analysis CRS.

    Args:
        grid: the filled work grid.
        fc: the fortification context (sun, DSM readers, footprints in scene pixels, bounds).
        grid_transform: affine of the analysis grid (image pixel -> CRS metres).

    Returns:
        (LineString in the analysis CRS, score 0..1, attributes) per crest piece, as
        ``berms.find_berms`` gives them, clipped to the tiles' cores.
    """
    f, gsd, nb = grid.f, grid.gsd, grid.bands
    out = []
    for core, read in grid.tiles():
        r0, c0, r1, c1 = read
        planes = grid.read(r0, c0, r1, c1)
        vd = planes[2 * nb] > 0.99
        if not vd.any():
            continue
        ab, bb = planes[:nb], planes[nb : 2 * nb]
        # image pixels from the tile's origin
        origin = (c0 * f, r0 * f)
        core_px = ((core[1] - c0) * f, (core[0] - r0) * f, (core[3] - c0) * f, (core[2] - r0) * f)
        dh = ridge = footprints = None
        if grid.dsm and fc.dsm_before is not None and fc.dsm_after is not None:
            dh = planes[2 * nb + 2] - planes[2 * nb + 1]

            def ridge(line: shapely.LineString, width_m: float, origin=origin) -> float | None:
                return _line_ridge(line, width_m, origin, fc, gsd, grid.image_shape)

        elif fc.footprints is not None and len(fc.footprints):

            def footprints(origin=origin, shape=vd.shape) -> np.ndarray | None:
                return footprint_labels(fc.footprints, origin, f, shape)

        found = find_berms_work(
            ab, bb, vd, gsd, fc.sun_azimuth, core_px, dh=dh, ridge=ridge,
            sun_elevation_deg=fc.sun_elevation, footprints=footprints, bounds=fc.berm_bounds,
        )  # fmt: skip
        t = grid_transform @ Affine.translation(*origin)
        for g, s, at in found:
            out.append(
                (shapely.affinity.affine_transform(g, [t.a, t.b, t.d, t.e, t.c, t.f]), s, at)
            )
    return out


def footprint_labels(
    footprints: np.ndarray | FootprintStore,
    origin: tuple[float, float],
    f: int,
    shape: tuple[int, int],
) -> np.ndarray | None:
    """The footprints (polygons in scene pixels, or a store of them) overlapping a grid of
    ``shape`` (rows, cols) whose pixels are ``f`` scene pixels from ``origin`` (col, row), burnt
    on it (int labels, 0 = none), or None where none overlaps."""
    x1, y1 = origin[0] + shape[1] * f, origin[1] + shape[0] * f
    box = shapely.box(origin[0], origin[1], x1, y1)
    if isinstance(footprints, FootprintStore):
        # the store's by row, as the array's: the labels come out the same
        footprints = footprints.pixels_near(origin[0], origin[1], x1, y1)
    sel = footprints[shapely.intersects(footprints, box)]
    if not len(sel):
        return None
    # one vectorised shift (and scale) to the grid's pixels: the same doubles as
    # ``affinity.translate``'s (x * 1 + y * 0 + dx) where f is 1, without a call per footprint
    shift = np.array(origin, np.float64)
    local = shapely.transform(sel, lambda c: (c - shift) / f)
    return burn_polygons(local, np.arange(1, len(local) + 1), shape)


def _line_ridge(
    line: shapely.LineString,
    width_m: float,
    origin: tuple[int, int],
    fc,  # noqa: ANN001
    gsd: float,
    image_shape: tuple[int, int],
) -> float | None:
    """``berms._after_ridge`` for a line in tile pixels, reading the DSMs around it."""
    reach = (width_m / 2 * 4 + 10) / gsd  # the side samples reach four half-widths out
    x0, y0, x1, y1 = line.bounds
    c0, r0 = max(0, math.floor(x0 + origin[0] - reach)), max(0, math.floor(y0 + origin[1] - reach))
    gh, gw = image_shape
    c1 = min(gw, math.ceil(x1 + origin[0] + reach))
    r1 = min(gh, math.ceil(y1 + origin[1] + reach))
    w = Window(c0, r0, c1 - c0, r1 - r0)
    zb, za = berm_surfaces(fc.dsm_before.read(w)[0], fc.dsm_after.read(w)[0], gsd, fc.dsm_noise)
    local = shapely.affinity.translate(line, origin[0] - c0, origin[1] - r0)
    return _after_ridge(local, zb, za, gsd, width_m)


def drop_on_berms(rubble: list, berms: list) -> list:
    """Rubble findings less the piles found on the DSMs that touch a berm's or ditch's body.

    The windows tell DSM piles from berms only where they know the berms
    (``fortifications.detect_window``); with berms found on the work grid afterwards, the
    same rule is applied here.

    Args:
        rubble: (polygon, score, attributes) per pile, analysis CRS (metres).
        berms: (line, score, attributes) per crest piece, analysis CRS.
    """
    if not berms or not rubble:
        return rubble
    bodies = shapely.union_all([_berm_body(g, at, 1.0) for g, _, at in berms])
    return [
        item
        for item in rubble
        if item[2].get("evidence", {}).get("source") != "dsm" or not item[0].intersects(bodies)
    ]
