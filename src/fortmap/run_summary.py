"""Pieces of ``analyze``'s ``summary.json``, and the learned change model's set-up."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd

from fortmap.errors import InputError
from fortmap.types import Grid


def inputs_entry(**paths: str | Path | None) -> dict:
    """Each input's absolute path (None where not given)."""
    return {k: (str(Path(v).resolve()) if v is not None else None) for k, v in paths.items()}


def grid_entry(grid: Grid) -> dict:
    """The analysis grid: CRS, size in pixels, GSD (metres a pixel) and area (km2)."""
    gsd = grid.gsd
    return {
        "crs": grid.crs.to_string(),
        "width": grid.width,
        "height": grid.height,
        "gsd_m": round(gsd, 4),
        "area_km2": round(grid.width * grid.height * gsd * gsd / 1e6, 4),
    }


def change_entry(net, path: str | Path | None) -> str | dict:
    """Where ``change.tif`` came from: the unsupervised mask, or a learned model."""
    if net is None:
        return "unsupervised"
    return {"model": str(Path(path).resolve()), "threshold": net.threshold, "trained_on": net.info}


@contextmanager
def compile_timer() -> Iterator:
    """Within the block, numba's compilation of kernels in this process is timed: fortmap's
    kernels are compiled on their first use and loaded from numba's cache after that, so a
    first run's time is mostly compiling (64 s of a fresh install's 72 s 2 km demo analysis on
    the 2-core test machine). Yields a listener: ``.done`` whether anything was compiled, then
    ``.duration`` in seconds."""
    from numba.core.event import TimingListener, install_listener

    listener = TimingListener()
    with install_listener("numba:compile", listener):
        yield listener


def load_change_net(path: str | Path | None, binfo, ainfo, coregister: str | None = None):
    """The learned change model of ``--change-model`` (None without one), checked against the
    images' bands before any work is done; a warning when it was trained with another
    ``--coregister`` than ``coregister`` (the model learned pairs read one way: LEVIR-CD's
    registered tiles scored pooled F1 0.564 trained and read with ``none``, 0.417 with
    ``auto``)."""
    if path is None:
        return None
    from fortmap.detect.learned_change import ChangeNet

    net = ChangeNet.load(path)
    bands = min(binfo.count, ainfo.count, 3)
    if net.bands != bands:
        raise InputError(
            f"{path}: change model trained on {net.bands}-band imagery; "
            f"{binfo.path} and {ainfo.path} give {bands}"
        )
    trained = net.info.get("coregister")
    if coregister is not None and trained is not None and trained != coregister:
        warnings.warn(
            f"{path}: change model trained with --coregister {trained}, this run reads the "
            f"pair with --coregister {coregister}; give the same to score as it was trained",
            stacklevel=2,
        )
    return net


def model_units(path, maps, binfo, ainfo, grey: bool) -> tuple:
    """(before, after) units the learned model's inputs are put in (see ``ModelUnits``)."""
    from fortmap.detect.learned_change import ModelUnits

    if grey:
        raise InputError(f"{path}: a change model needs two images with the same bands")
    return (
        ModelUnits.for_dtype(maps.before_scale, maps.before_offset, binfo.dtype),
        ModelUnits.for_dtype(maps.after_scale, maps.after_offset, ainfo.dtype),
    )


def building_counts(bl: gpd.GeoDataFrame | None) -> dict | None:
    if bl is None:
        return None
    counts = bl["damage"].value_counts().to_dict()
    return {"total": int(len(bl)), **{k: int(v) for k, v in counts.items()}}


def roads_entry(
    roads: str | Path | None,
    roads_from: str | None,
    road_lines: gpd.GeoDataFrame | None,
    derived_ev: dict | None,
) -> str | None:
    """The summary's ``roads``: the file given, or what the before image gave."""
    if roads is not None:
        return str(roads)
    if roads_from is None:
        return "derived from the before image: none found"
    km = float(road_lines.length.sum()) / 1000
    px = derived_ev["pixel_m"] if derived_ev else None
    return (
        f"derived from the before image: {len(road_lines)} lines, {km:.1f} km "
        f"(at {px} m a pixel; names unknown, class from width)"
    )


def scene_measures_entry(road_noise, berm_bounds, footprint_scene) -> dict:  # noqa: ANN001
    """The levels measured once for the scene that the detectors compare against (grey levels
    on the normalised 0..1 scale), so that a run can be read and repeated: the road contrasts'
    noise (``detect.road_noise.RoadNoise``), the berm image path's change bounds
    (``detect.berm_bounds.BermBounds``) and the footprints' noise floors and shadow thresholds
    (``detect.footprints.FootprintScene``); None where not measured (each window's own)."""

    def r(v: float | None) -> float | None:
        return None if v is None else round(float(v), 5)

    return {
        "road_noise": None
        if road_noise is None
        else {"road": r(road_noise.road), "along": r(road_noise.along),
              "shade": r(road_noise.shade), "road_pixels": int(road_noise.n_px)},
        "berm_bounds": None
        if berm_bounds is None
        else {"change": r(berm_bounds.change), "red_gain": r(berm_bounds.red_gain)},
        "footprints": None
        if footprint_scene is None
        else {"noise_floor_before": r(footprint_scene.floor_b),
              "noise_floor_after": r(footprint_scene.floor_a),
              "shadow_before": r(footprint_scene.shadow_b),
              "shadow_after": r(footprint_scene.shadow_a)},
    }  # fmt: skip
