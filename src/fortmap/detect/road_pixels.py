"""A window's road pixels and the levels their contrasts share (``RoadWindow``).

Barricades and rubble both compare each road pixel with its road's own surface, on the raw and
on a box-smoothed grey image, with one median or per illumination class (the contrasts are in
``road_window``). A :class:`RoadWindow` holds what those contrasts share (grey images, the
road pixels, per-road medians, smoothed levels, Otsu splits) so each is computed once per
window, and every step works on the list of road pixels (in raster order, so medians and
Otsu's threshold see the same values in the same order as a whole-window computation)
instead of on the whole window. Pixel coordinates are the window's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu

from fortmap.detect import along_kernels as AK
from fortmap.detect import class_kernels as CK
from fortmap.detect import fort_kernels as K
from fortmap.detect.roadmask import RoadRaster

#: Fewest pixels of a road in one illumination class for its own reference level.
MIN_CLASS_PX = 30
#: Fewest road pixels for a window's road contrasts: fewer say nothing about a road's surface.
MIN_ROAD_PX = 50


def grey(img: np.ndarray) -> np.ndarray:
    """Band mean of a (bands, rows, cols) image, or a (rows, cols) image as float32."""
    if img.ndim == 3 and img.dtype == np.float32 and img.shape[0] > 0:
        return AK.band_mean(img)  # numpy's values, in one pass
    return img.mean(axis=0) if img.ndim == 3 else img.astype(np.float32)


def otsu_threshold(vals: np.ndarray) -> float:
    """``skimage.filters.threshold_otsu(vals)`` (256 bins over the values' range) of 1-D
    float values that are not all equal, with the histogram counted in one compiled pass
    (``class_kernels.uniform_counts``, numpy's bins exactly) instead of numpy's passes."""
    lo, hi = vals.min(), vals.max()
    edges = np.histogram_bin_edges(vals, 256, range=(lo, hi))
    counts = CK.uniform_counts(vals, lo, hi, edges)
    return threshold_otsu(hist=(counts, (edges[:-1] + edges[1:]) / 2.0))


def _box(g: np.ndarray, k: int) -> np.ndarray:
    """``ndi.uniform_filter(g, k)``: on a float32 image by ``along_kernels.uniform_reflect``
    (the same values, a few times faster)."""
    if g.dtype == np.float32 and g.ndim == 2:
        return AK.uniform_reflect(g, k)
    return ndi.uniform_filter(g, k)


@dataclass
class RoadWindow:
    """A window's road pixels and the intermediates its road contrasts share.

    Attributes:
        roads: the window's :class:`RoadRaster`.
        valid: bool (rows, cols), pixels with data on both dates.
        ga, gb: float32 (rows, cols) grey levels after / before.
        on: bool (rows, cols): road pixels with data.
        rows, cols: the ``on`` pixels, raster order.
        rid: road id (1-based) of each ``on`` pixel.
        ref: bool per ``on`` pixel: the carriageway (all of ``on`` when it has under
            ``MIN_ROAD_PX`` pixels), which sets the road levels.
        n: road ids are below it.
    """

    roads: RoadRaster
    valid: np.ndarray
    ga: np.ndarray
    gb: np.ndarray
    on: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    rid: np.ndarray
    ref: np.ndarray
    n: int
    _cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls, before: np.ndarray, after: np.ndarray, valid: np.ndarray, roads: RoadRaster
    ) -> RoadWindow:
        """From the window's images ((bands,) rows, cols), valid mask and roads."""
        on = roads.mask & valid
        # raster order, as np.nonzero gives it; one flat gather per per-pixel array
        flat = np.flatnonzero(on)
        rows, cols = np.divmod(flat, on.shape[1])
        rid = np.take(roads.road_id, flat)
        # every ``on`` pixel is valid: the carriageway alone tells the reference pixels
        ref = np.take(roads.carriageway, flat)
        if ref.sum() < MIN_ROAD_PX:
            ref = np.ones(rows.size, bool)
        n = int(roads.road_id.max()) + 1 if roads.road_id.size else 1
        rw = cls(roads, valid, grey(after), grey(before), on, rows, cols, rid, ref, n)
        rw._cache[("flat",)] = flat
        return rw

    @property
    def enough(self) -> bool:
        """Whether the window has road pixels enough for a contrast."""
        return self.rows.size >= MIN_ROAD_PX

    @property
    def flat(self) -> np.ndarray:
        """Flat (raster) indices of the ``on`` pixels: one gather or scatter instead of a
        pair of index arrays."""
        return self._memo(("flat",), lambda: self.rows * self.on.shape[1] + self.cols)

    def cached(self, key: tuple, make: Callable[[], object]):
        """``make()``, built once per window and kept under ``key``: measures that detectors in
        other modules share (the image's and the DSMs' rubble read one road roughness level)."""
        return self._memo(key, make)

    def _memo(self, key: tuple, make: Callable[[], object]):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def full_grey(self, which: str, smooth_px: int) -> np.ndarray:
        """Grey level ``which`` ('a' after, 'b' before), box-smoothed over ``smooth_px``."""
        g = self.ga if which == "a" else self.gb
        if smooth_px <= 1:
            return g
        return self._memo(("full", which, smooth_px), lambda: _box(g, smooth_px))

    def level(self, which: str, smooth_px: int) -> np.ndarray:
        """Grey level on the road pixels (float32 per ``on`` pixel)."""
        return self._memo(
            ("g", which, smooth_px), lambda: np.take(self.full_grey(which, smooth_px), self.flat)
        )

    def level3(self, which: str, smooth_px: int) -> np.ndarray:
        """The same level, further 3x3 box-smoothed (1.5 m at 0.5 m), on the road pixels."""
        return self._memo(
            ("g3", which, smooth_px),
            lambda: K.box_at(self.full_grey(which, smooth_px), 3, self.rows, self.cols),
        )

    def medians(self, which: str, smooth_px: int) -> np.ndarray:
        """Per road id, the lower median of the level over the ``ref`` pixels."""
        return self._memo(
            ("med", which, smooth_px),
            lambda: K.road_medians(self.level(which, smooth_px)[self.ref], self.rid_ref, self.n),
        )

    @property
    def rid_ref(self) -> np.ndarray:
        """Road ids of the ``ref`` pixels (one gather for every level's medians)."""
        return self._memo(("rid_ref",), lambda: self.rid[self.ref])

    def otsu(self, which: str, smooth_px: int) -> float | None:
        """Otsu's threshold of the 3x3-smoothed level over the ``ref`` pixels, or None where
        they are too few or all equal."""

        def make():
            vals = self.level3(which, smooth_px)[self.ref]
            if vals.size < MIN_ROAD_PX or float(np.ptp(vals)) <= 0:
                return None
            return otsu_threshold(vals)

        return self._memo(("otsu", which, smooth_px), make)

    def scatter(self, vals: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """A (rows, cols) float32 array holding ``vals`` on the ``on`` pixels, ``fill`` off."""
        out = np.full(self.on.shape, fill, np.float32)
        out.ravel()[self.flat] = vals
        return out


class PointBox:
    """``barricade_rows.masked_box(g, m, 3)`` evaluated lazily, only at the pixels indexed
    (``box[rows, cols]`` with integer arrays of one shape), as a whole-window array would be."""

    def __init__(self, g: np.ndarray, m: np.ndarray, k: int = 3) -> None:
        self.g, self.m, self.k = g, m, k
        self.shape = g.shape

    def __getitem__(self, idx: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        ys, xs = np.broadcast_arrays(*(np.asarray(i, np.int64) for i in idx))
        v = K.masked_box_at(self.g, self.m, self.k, ys.ravel(), xs.ravel())
        return v.reshape(ys.shape)
