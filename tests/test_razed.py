"""Tests of building-sized change objects (razed buildings without footprints)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from fortmap.detect.razed import change_objects
from fortmap.errors import InputError

GSD = 0.5
N = 120
CORE = (0, 0, N, N)


def _patch() -> tuple[np.ndarray, np.ndarray, shapely.Polygon]:
    """A 12 m square of rubble: strong evidence at its heart, weaker on a 2 m rim."""
    ev = np.zeros((N, N), np.float32)
    ev[48:72, 48:72] = 0.25
    ev[52:68, 52:68] = 0.8
    mask = (ev >= 0.5).astype(np.uint8)
    truth = shapely.box(48, 48, 72, 72)
    return mask, ev, truth


def _iou(a: shapely.Geometry, b: shapely.Geometry) -> float:
    return a.intersection(b).area / a.union(b).area


def _before(shadow: bool) -> np.ndarray:
    """Textured ground; with ``shadow``, a roof over the patch and its cast shadow beside it."""
    rng = np.random.default_rng(0)
    img = 0.35 + 0.03 * rng.standard_normal((3, N, N)).astype(np.float32)
    if shadow:
        img[:, 48:72, 48:72] = 0.7
        img[:, 48:72, 72:82] = 0.05
    return img


def test_object_is_grown_to_the_rubble_outline() -> None:
    mask, ev, truth = _patch()
    polys, scores, evs = change_objects(mask, ev, CORE, GSD)
    assert len(polys) == 1
    assert _iou(polys[0], truth) > 0.8
    # Without growth only the masked heart is outlined: IoU below the 0.5 match level.
    core_only, _, _ = change_objects(mask, ev, CORE, GSD, grow_evidence=1.0)
    assert _iou(core_only[0], truth) < 0.5
    assert 0 <= scores[0] <= 1 and "solidity" in evs[0]


def test_growth_does_not_cross_into_unseeded_change() -> None:
    mask, ev, _ = _patch()
    ev[0:30, 0:30] = 0.3  # weak change with no masked core: not an object
    polys, _, _ = change_objects(mask, ev, CORE, GSD)
    assert len(polys) == 1 and polys[0].centroid.x > 48


def test_growth_is_bounded() -> None:
    mask, ev, _ = _patch()
    ev[10:110, 10:110] = np.maximum(ev[10:110, 10:110], 0.25)  # weak change all around
    polys, _, _ = change_objects(mask, ev, CORE, GSD, grow_max_m=2.0)
    assert len(polys) == 1
    # At most 2 m (4 px) beyond the 16 px heart on each side.
    assert polys[0].area <= (16 + 2 * 4) ** 2 + 1


def test_object_without_a_before_shadow_is_dropped() -> None:
    mask, ev, _ = _patch()
    kept, _, evs = change_objects(mask, ev, CORE, GSD, before=_before(shadow=True))
    assert len(kept) == 1 and evs[0]["before_shadow_share"] > 0.05
    dropped, _, _ = change_objects(mask, ev, CORE, GSD, before=_before(shadow=False))
    assert dropped == []


def test_thin_strip_is_dropped() -> None:
    ev = np.zeros((N, N), np.float32)
    ev[60:64, 10:110] = 0.9  # 2 m wide, 50 m long: a row of blocks, not a building
    polys, _, _ = change_objects((ev > 0.5).astype(np.uint8), ev, CORE, GSD)
    assert polys == []


def test_object_outside_core_is_left_to_its_window() -> None:
    mask, ev, _ = _patch()
    polys, _, _ = change_objects(mask, ev, (0, 0, 48, 48), GSD)
    assert polys == []


def test_before_of_wrong_shape_is_refused() -> None:
    mask, ev, _ = _patch()
    with pytest.raises(InputError, match="differ in shape"):
        change_objects(mask, ev, CORE, GSD, before=np.zeros((3, 10, 10), np.float32))


def test_empty_mask_gives_nothing() -> None:
    z = np.zeros((N, N), np.uint8)
    assert change_objects(z, z.astype(np.float32), CORE, GSD) == ([], [], [])
