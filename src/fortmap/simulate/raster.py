"""Rasterise the city (and its changes) into surface maps on the scene grid.

A :class:`Surface` is what the ground is on one date: a material class per pixel, which
building/tree/field covers it, and heights in metres. Rendering (``render.py``) turns a
surface into an image; the truth mask compares the two dates' surfaces, so shadows and
illumination can never leak into it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from affine import Affine
from rasterio.features import rasterize
from scipy import ndimage as ndi

from fortmap.simulate.layout import City
from fortmap.simulate.noise import Textures, fbm

# Material classes (uint8). Order of burning = order of listing for ground covers.
GROUND, BARE, FIELD, URBAN, BANK, WATER, PLAZA, MINOR, MAJOR, RUNWAY = range(10)
ROOF, GRADED, RUBBLE, BERM, BLOCK = range(10, 15)
N_CLASSES = 15

#: Height of the ground above the water surface at the banks (m) and of a bridge deck above it.
RIVER_DEPTH_M = 3.0
BRIDGE_DECK_M = 1.0


@dataclass
class Surface:
    """One date's ground on the scene grid (row 0 = north edge).

    Attributes:
        cls: material class per pixel (uint8, constants above).
        bid: building id (1-based, 0 = none), uint16 or int32 (see ``id_dtype``).
        det: rooftop detail index + 1 (0 = none), int32.
        fid: field index + 1 (0 = none), int32.
        obj_h: height above ground of buildings, roof details and blocks (m), float32.
        canopy: tree canopy height above ground (m), float32.
        relief: berms and debris above ground (m), float32; shaded by its slopes.
        ground: terrain height (m), float32, including the river channel and bridge decks.
    """

    cls: np.ndarray
    bid: np.ndarray
    det: np.ndarray
    fid: np.ndarray
    obj_h: np.ndarray
    canopy: np.ndarray
    relief: np.ndarray
    ground: np.ndarray

    def copy(self) -> Surface:
        """A deep copy (the after date starts as the before date)."""
        # Terrain never changes between the dates: share it instead of copying 4 bytes/pixel.
        return Surface(**{k: v if k == "ground" else v.copy() for k, v in self.__dict__.items()})

    def dsm(self) -> np.ndarray:
        """Surface heights in metres (float32): terrain + max(objects, trees) + relief."""
        return self.ground + np.maximum(self.obj_h, self.canopy) + self.relief

    def shade_height(self) -> np.ndarray:
        """Heights whose slopes shade the surface (terrain, canopies, relief; not walls)."""
        return self.ground + self.canopy + self.relief


def id_dtype(n: int) -> type:
    """Smallest id map dtype for ``n`` objects (ids 1..n, 0 = none): halves memory when it can."""
    return np.uint16 if n < 65535 else np.int32


def local_transform(size_m: float, gsd: float) -> Affine:
    """Pixel -> local metres (x east, y north from the south-west corner)."""
    return Affine(gsd, 0.0, 0.0, 0.0, -gsd, size_m)


def burn(out: np.ndarray, shapes, transform: Affine, all_touched: bool = False) -> np.ndarray:
    """Burn ``(geometry, value)`` pairs into ``out`` in place (later shapes win)."""
    shapes = [(g, v) for g, v in shapes if g is not None and not g.is_empty]
    if shapes:
        rasterize(shapes, out=out, transform=transform, all_touched=all_touched)
    return out


def pixel_xy(
    idx: tuple[np.ndarray, np.ndarray], size_m: float, gsd: float
) -> tuple[np.ndarray, np.ndarray]:
    """Local metre coordinates of pixel centres given (rows, cols) index arrays."""
    r, c = idx
    return ((c + 0.5) * gsd).astype(np.float32), (size_m - (r + 0.5) * gsd).astype(np.float32)


def terrain(
    rng: np.random.Generator, city: City, shape: tuple[int, int], gsd: float
) -> tuple[np.ndarray, np.ndarray]:
    """Smooth terrain (m) and the river carve depth (m, 0..RIVER_DEPTH_M), both float32.

    Built on a 8x coarser grid and interpolated up: terrain relief is metres over hundreds
    of metres, so nothing is lost and it costs a fraction of a full-resolution filter.
    """
    f = 8
    ch, cw = int(np.ceil(shape[0] / f)), int(np.ceil(shape[1] / f))
    ct = local_transform(city.size_m, gsd * f)
    coarse = np.zeros((ch, cw), np.float32)
    burn(coarse, [(city.bank_poly, 0.4), (city.river_poly, 1.0)], ct, all_touched=True)
    coarse = ndi.gaussian_filter(coarse, 10.0 / (gsd * f))
    carve = ndi.zoom(coarse, f, order=1)[: shape[0], : shape[1]] * RIVER_DEPTH_M
    ang = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0 : shape[0] : f, 0 : shape[1] : f].astype(np.float32) * gsd
    slope = 0.004 * (np.cos(ang) * xx + np.sin(ang) * yy)
    base = 350.0 + slope + 2.0 * fbm(rng, (ch, cw), 300.0 / (gsd * f), 3)
    z = ndi.zoom(base.astype(np.float32), f, order=1)[: shape[0], : shape[1]]
    return z.astype(np.float32), carve.astype(np.float32)


def rasterize_city(rng: np.random.Generator, city: City, gsd: float, tex: Textures) -> Surface:
    """The before-date surface of ``city`` at ``gsd`` metres per pixel."""
    S = city.size_m
    n = int(round(S / gsd))
    shape = (n, n)
    T = local_transform(S, gsd)
    cls = np.full(shape, GROUND, np.uint8)
    shapes = [(g, BARE) for g in city.bare]
    shapes += [(city.city_poly, URBAN)]
    shapes += [(g, BARE) for g in city.bare if g.intersects(city.city_poly)]
    burn(cls, shapes, T)
    fid = np.zeros(shape, id_dtype(city.f_geom.size))
    burn(fid, [(g, i + 1) for i, g in enumerate(city.f_geom)], T)
    cls[fid > 0] = FIELD
    burn(cls, [(city.bank_poly, BANK), (city.river_poly, WATER), (city.plaza, PLAZA)], T)
    road_shapes = [
        (
            r["geometry"].buffer(r["width_m"] / 2, quad_segs=4),
            MINOR if r["class"] == "minor" else MAJOR,
        )
        for r in sorted(city.roads, key=lambda r: r["class"] == "major")
    ]
    burn(cls, road_shapes, T)
    if city.runway is not None:
        burn(cls, [(city.runway, RUNWAY)], T)
    fid[cls != FIELD] = 0

    bid = np.zeros(shape, id_dtype(city.b_geom.size))
    burn(bid, [(g, i + 1) for i, g in enumerate(city.b_geom)], T)
    det = np.zeros(shape, id_dtype(city.d_geom.size))
    burn(det, [(g, i + 1) for i, g in enumerate(city.d_geom)], T)
    det[bid == 0] = 0
    cls[bid > 0] = ROOF
    obj_h = np.zeros(shape, np.float32)
    on = bid > 0
    obj_h[on] = city.b_height[bid[on] - 1]
    ond = det > 0
    obj_h[ond] += city.d_height[det[ond] - 1]

    canopy = tree_canopy(city.t_x, city.t_y, city.t_r, city.t_h, S, gsd, tex.patch)
    canopy[on] = 0.0
    z, carve = terrain(rng, city, shape, gsd)
    road = (cls == MAJOR) | (cls == MINOR)
    ground = np.where(road & (carve > 0.5 * RIVER_DEPTH_M), z + BRIDGE_DECK_M, z - carve)
    relief = np.zeros(shape, np.float32)
    return Surface(cls, bid, det, fid, obj_h, canopy, relief, ground.astype(np.float32))


def tree_canopy(
    x: np.ndarray,
    y: np.ndarray,
    r: np.ndarray,
    h: np.ndarray,
    size_m: float,
    gsd: float,
    bumps: np.ndarray,
) -> np.ndarray:
    """Canopy heights (m): a dome per tree (top ``h``, rim ``h - r``) with leafy ``bumps`` (noise)."""
    shape = bumps.shape
    import shapely

    tid = np.zeros(shape, np.int32)
    discs = shapely.buffer(shapely.points(np.c_[x, y]), r, quad_segs=6)
    burn(tid, [(g, i + 1) for i, g in enumerate(discs)], local_transform(size_m, gsd))
    idx = np.nonzero(tid)
    k = tid[idx] - 1
    px, py = pixel_xy(idx, size_m, gsd)
    d2 = ((px - x[k]) ** 2 + (py - y[k]) ** 2) / (r[k] ** 2)
    dome = h[k] - r[k] * (1.0 - np.sqrt(np.clip(1.0 - d2, 0.0, 1.0)))
    out = np.zeros(shape, np.float32)
    out[idx] = np.maximum(dome + 0.35 * bumps[idx], 0.5)
    return out
