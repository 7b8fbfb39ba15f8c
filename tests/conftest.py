"""Shared fixtures: small real GeoTIFF pairs written with rasterio, and the shared data folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

# As the CLI does (fortmap.cli.main), before numpy loads: OpenBLAS's threads spin on small
# matrix products and, on the test machine's two busy cores, made a network's training 20x slower.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest
import rasterio
from affine import Affine
from scipy import ndimage as ndi

UTM_HALF_METRE = Affine(0.5, 0, 500000, 0, -0.5, 4000000)

SHARED_DATA = Path(
    os.environ.get(
        "FORTMAP_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )
)


def shared(*parts: str) -> Path:
    """A path under the shared data folder; skips the test when it is absent."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared data not available: {p} (set FORTMAP_SHARED_DATA)")
    return p


def textured_scene(size: int = 384, seed: int = 0) -> np.ndarray:
    """A float32 (3, size, size) 0..1 scene with roof-like blocks, roads and texture."""
    rng = np.random.default_rng(seed)
    base = ndi.gaussian_filter(rng.random((size, size)), 3) * 0.6 + 0.2
    img = np.repeat(base[None], 3, axis=0)
    img[1] *= 1.1
    for _ in range(size // 12):
        r, c = rng.integers(10, size - 30, 2)
        h, w = rng.integers(8, 24, 2)
        img[:, r : r + h, c : c + w] = rng.uniform(0.3, 0.9)
    img += rng.normal(0, 0.01, img.shape)
    return np.clip(img, 0, 1).astype(np.float32)


def rubble(rows: int, cols: int, seed: int = 1) -> np.ndarray:
    """(3, rows, cols) debris-like texture: blobs of 1-2 px, broken greys and browns, 0.1..0.9."""
    rng = np.random.default_rng(seed)
    t = ndi.gaussian_filter(rng.random((3, rows, cols)), (0, 1.0, 1.0))
    t = (t - t.min()) / (t.max() - t.min() + 1e-9)
    return (0.1 + 0.8 * t).astype(np.float32)


def write_tif(
    path: Path,
    data: np.ndarray,
    crs: str | None = "EPSG:32637",
    transform: Affine | None = UTM_HALF_METRE,
    dtype: str = "uint8",
    nodata: float | None = None,
    tags: dict | None = None,
) -> Path:
    """Write (bands, rows, cols) 0..1 data scaled to ``dtype`` as a GeoTIFF."""
    scale = {"uint8": 255, "uint16": 4000, "float32": 1.0}[dtype]
    arr = (data * scale).astype(dtype) if dtype != "float32" else data.astype("float32")
    profile = {
        "driver": "GTiff",
        "width": data.shape[2],
        "height": data.shape[1],
        "count": data.shape[0],
        "dtype": dtype,
    }
    if crs is not None:
        profile.update(crs=crs, transform=transform)
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr)
        if tags:
            dst.update_tags(**tags)
    return path


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    """before.tif / after.tif: the after is shifted by (dx, dy) = (2.4, -1.6) px, gain-changed,
    and has one 30 x 30 px block replaced by rubble-like texture at rows 100-130, cols 200-230."""
    img = textured_scene()
    after = ndi.shift(img, (0, -1.6, 2.4), order=1, mode="nearest")
    after[:, 100:130, 200:230] = rubble(30, 30)
    after = np.clip(after * 0.8 + 0.05, 0, 1)
    b = write_tif(tmp_path / "before.tif", img, tags={"ACQUISITION_DATE": "2024-03-01"})
    a = write_tif(tmp_path / "after.tif", after, tags={"ACQUISITION_DATE": "2024-09-01"})
    return b, a, img


@pytest.fixture(scope="session")
def small_city(tmp_path_factory) -> Path:
    """A 500 m simulated city (seed 2), shared by the tests that need a whole scene."""
    from fortmap.simulate import simulate_city

    out = tmp_path_factory.mktemp("city") / "scene"
    simulate_city(out, seed=2, size_m=500)
    return out


def terminate_when(
    args: list[str], ready: Callable[[], bool], poll_s: float = 0.02
) -> tuple[int, str]:
    """Run ``python -m fortmap.cli.main ARGS``, send it SIGTERM once ``ready()`` holds (within
    60 s) and return its exit code and stderr; fails the test if it ends before that."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "fortmap.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not ready() and time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{args[0]} ended before it could be signalled: {proc.stderr.read()}")
        time.sleep(poll_s)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err
