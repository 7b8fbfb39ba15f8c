"""Viewshed: ``fast`` and ``exact`` against a brute-force R3 reference and ``gdal_viewshed``.

Each real DEM of ``../shared/data/dem`` is reprojected to its UTM zone, cropped to a square
inside its footprint and resampled (bilinear) to 1000, 2000 and 4000 cells square. The observer
stands at the centre cell, 10 m above the ground; refraction 0.13 (``gdal_viewshed -cc 0.87``).
The reference is ``reference_r3`` below, a brute-force line-of-sight check of every cell (R3)
written apart from the library's kernels (float stepping, no octants), compiled with numba.
Agreement counts the DEM's valid cells.

Times are CPU seconds (``time.process_time``, all threads; for ``gdal_viewshed`` the child's
user + system time), the median of ``--repeats`` runs, because wall time is noisy on a shared
machine; wall seconds are printed beside them. ``kernel``: :func:`viewshed` on an array in
memory. ``job``: :func:`viewshed_file` in this process, DEM file to COG (read, compute, write
a deflate COG with overviews); ``gdal_viewshed``: its whole command, DEM file to an
uncompressed GeoTIFF without overviews, process start included. Also measured: numba
compilation in a fresh process (with and without the on-disk cache) and a cumulative viewshed
of 1,000 observers over the 4000-square DEM with a 2 km maximum distance.

Peer setup (by hand, once): ``apt-get update && apt-get install -y gdal-bin``; without
``gdal_viewshed`` on PATH the GDAL columns say so and are left empty.

    python benchmarks/bench_viewshed.py [--data ../shared/data] [--sizes 1000 2000 4000]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench-out" / "viewshed"
DEFAULT_DATA = Path(os.environ.get("FORTMAP_SHARED_DATA", ROOT.parent / "shared" / "data"))
OBSERVER_HEIGHT = 10.0
REFRACTION = 0.13

_COMPILE_SNIPPET = """
import time, numpy as np
from affine import Affine
t = time.perf_counter()
from fortmap.analyze.viewshed import viewshed
z = np.zeros((50, 50), np.float32)
for mode in ("fast", "exact"):
    viewshed(z, Affine(10, 0, 0, 0, -10, 500), (255.0, 255.0), mode=mode)
print(time.perf_counter() - t)
"""


def _reference_kernel():
    import numba as nb

    @nb.njit(parallel=True, cache=True)
    def reference_r3(z, r0, c0, dx, dy, eye, curv):
        rows, cols = z.shape
        out = np.full((rows, cols), 255, np.uint8)
        for r in nb.prange(rows):
            for c in range(cols):
                if np.isnan(z[r, c]):
                    continue
                dr, dc = r - r0, c - c0
                zt = z[r, c] - curv * ((dr * dy) ** 2 + (dc * dx) ** 2)
                n = max(abs(dr), abs(dc))
                seen = True
                for k in range(1, n):
                    t = k / n
                    fr, fc = r0 + t * dr, c0 + t * dc
                    # the sample lies on a row of cell centres when rows are the major axis
                    if abs(dr) >= abs(dc):
                        ra, ca, rb, cb = round(fr), int(np.floor(fc)), round(fr), 0
                        cb = ca + 1
                        w = fc - ca
                    else:
                        ra, ca, cb = int(np.floor(fr)), round(fc), round(fc)
                        rb = ra + 1
                        w = fr - ra
                    if w < 1e-9:
                        w, rb, cb = 0.0, ra, ca
                    elif w > 1 - 1e-9:
                        w, ra, ca = 0.0, rb, cb
                    ha, hb = z[ra, ca], z[rb, cb]
                    if np.isnan(ha) or np.isnan(hb):
                        continue
                    da = ((ra - r0) * dy) ** 2 + ((ca - c0) * dx) ** 2
                    db = ((rb - r0) * dy) ** 2 + ((cb - c0) * dx) ** 2
                    h = (1 - w) * (ha - curv * da) + w * (hb - curv * db)
                    if h > eye + t * (zt - eye) + 1e-6:
                        seen = False
                        break
                out[r, c] = 1 if seen else 0
        return out

    return reference_r3


def utm_square(src: Path, n: int, out: Path):
    """Reproject ``src`` to its UTM zone on an n x n grid inside its footprint; write ``out``."""
    import rasterio
    from affine import Affine
    from pyproj import CRS
    from rasterio.warp import Resampling, calculate_default_transform, reproject, transform_bounds

    with rasterio.open(src) as ds:
        lon0, lat0, lon1, lat1 = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
        lon, lat = (lon0 + lon1) / 2, (lat0 + lat1) / 2
        epsg = (32600 if lat >= 0 else 32700) + int((lon + 180) // 6) + 1
        crs = CRS.from_epsg(epsg)
        t, w, h = calculate_default_transform(ds.crs, crs, ds.width, ds.height, *ds.bounds)
        # the central 90 % of the warped extent, square: inside the (slightly rotated) footprint
        side = min(t.a * w, -t.e * h) * 0.9
        cx, cy = t.c + t.a * w / 2, t.f + t.e * h / 2
        tr = Affine(side / n, 0, cx - side / 2, 0, -side / n, cy + side / 2)
        z = np.full((n, n), np.nan, np.float32)
        reproject(
            ds.read(1).astype(np.float32),
            z,
            src_transform=ds.transform,
            src_crs=ds.crs,
            src_nodata=ds.nodata,
            dst_transform=tr,
            dst_crs=crs,
            dst_nodata=np.nan,
            resampling=Resampling.bilinear,
        )
    profile = {"driver": "GTiff", "width": n, "height": n, "count": 1, "dtype": "float32"}
    profile.update(crs=crs, transform=tr, nodata=np.nan, tiled=True)
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(z, 1)
    return z, tr


def timed(fn, repeats: int):
    """(result, median CPU seconds, median wall seconds) of ``repeats`` calls of ``fn``."""
    cpu, wall = [], []
    for _ in range(repeats):
        t, w = time.process_time(), time.perf_counter()
        res = fn()
        cpu.append(time.process_time() - t)
        wall.append(time.perf_counter() - w)
    return res, statistics.median(cpu), statistics.median(wall)


def run_gdal(dem: Path, xy: tuple[float, float], out: Path, repeats: int = 1):
    """Run gdal_viewshed as a user would: (1/0 array, median CPU s, median wall s)."""
    import rasterio

    cmd = ["gdal_viewshed", "-q", "-oz", str(OBSERVER_HEIGHT), "-cc", str(1 - REFRACTION)]
    cmd += ["-ox", repr(xy[0]), "-oy", repr(xy[1]), str(dem), str(out)]
    cpu, wall = [], []
    for _ in range(repeats):
        a = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        wall.append(time.perf_counter() - t)
        b = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(b.ru_utime + b.ru_stime - a.ru_utime - a.ru_stime)
    with rasterio.open(out) as ds:
        g = (ds.read(1) == 255).astype(np.uint8)
    return g, statistics.median(cpu), statistics.median(wall)


def compare(pred: np.ndarray, ref: np.ndarray) -> tuple[float, float, float]:
    """(% agreement, % of visible cells missed, % of hidden cells called visible), valid cells."""
    valid = ref != 255
    p, r = pred[valid], ref[valid]
    vis = r == 1
    missed = 100 * np.mean(p[vis] != 1) if vis.any() else 0.0
    extra = 100 * np.mean(p[~vis] == 1) if (~vis).any() else 0.0
    return 100 * float(np.mean(p == r)), float(missed), float(extra)


def compile_times() -> tuple[float, float, float]:
    """Seconds to import and make the first fast+exact calls: no cache, cached, same process."""
    env = dict(os.environ, NUMBA_CACHE_DIR=tempfile.mkdtemp(prefix="numba-cache-"))
    times = []
    for _ in range(2):
        res = subprocess.run(
            [sys.executable, "-c", _COMPILE_SNIPPET], env=env, capture_output=True, text=True
        )
        times.append(float(res.stdout.strip().splitlines()[-1]))
    shutil.rmtree(env["NUMBA_CACHE_DIR"], ignore_errors=True)
    from fortmap.analyze.viewshed import viewshed

    z = np.zeros((50, 50), np.float32)
    from affine import Affine

    for _ in range(2):
        t = time.perf_counter()
        for mode in ("fast", "exact"):
            viewshed(z, Affine(10, 0, 0, 0, -10, 500), (255.0, 255.0), mode=mode)
    return times[0], times[1], time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 4000])
    ap.add_argument("--dems", nargs="+", default=["fort_worth_srtm90", "luxembourg_srtm1km"])
    ap.add_argument("--repeats", type=int, default=3, help="timed runs; the median is kept")
    ap.add_argument("--no-cumulative", action="store_true")
    args = ap.parse_args()
    if not (args.data / "dem").is_dir():
        sys.exit(f"shared data not found at {args.data}/dem")
    import numba

    from fortmap.analyze.viewshed import curvature_coefficient, viewshed, viewshed_file

    reference = _reference_kernel()

    OUT.mkdir(parents=True, exist_ok=True)
    gdal = shutil.which("gdal_viewshed")
    threads = numba.get_num_threads()
    c_cold, c_warm, c_same = compile_times()
    print(f"\nnumba threads: {threads}; gdal_viewshed: {gdal or 'not found, GDAL columns skipped'}")
    print(
        f"first call (import + compile fast and exact) in a fresh process: {c_cold:.1f} s without "
        f"the disk cache, {c_warm:.1f} s with it; {c_same:.3f} s once compiled\n"
    )
    print(
        "| DEM | size | cell (m) | visible % | fast agree % | fast missed vis % | exact agree % "
        "| GDAL agree % | GDAL missed vis % | exact ref wall (s) | fast kernel CPU (s) "
        "| fast job CPU (s) | fast job wall (s) | GDAL CPU (s) | GDAL wall (s) "
        "| job/GDAL CPU | job/GDAL wall |"
    )
    print("|---" * 17 + "|")
    curv = curvature_coefficient(REFRACTION)
    rep = args.repeats

    def f(v, p=3):
        return "-" if v is None else f"{v:.{p}f}"

    for name in args.dems:
        src = args.data / "dem" / f"{name}.tif"
        if not src.exists():
            print(f"| {name} | missing: {src} |")
            continue
        for n in args.sizes:
            dem = OUT / f"{name}_utm_{n}.tif"
            z, tr = utm_square(src, n, dem)
            r0 = c0 = n // 2
            xy = tr * (c0 + 0.5, r0 + 0.5)
            eye = float(z[r0, c0]) + OBSERVER_HEIGHT
            t = time.perf_counter()
            ref = reference(z, r0, c0, tr.a, -tr.e, eye, curv)
            t_ref = time.perf_counter() - t
            kw = {"observer_height": OBSERVER_HEIGHT, "refraction": REFRACTION}
            viewshed(z, tr, xy, **kw)  # warm
            fast, k_cpu, _ = timed(partial(viewshed, z, tr, xy, **kw), rep)
            out = OUT / f"{name}_{n}_fast.tif"
            job = partial(viewshed_file, dem, xy, out, force=True, **kw)
            _, j_cpu, j_wall = timed(job, rep)
            exact = viewshed(z, tr, xy, mode="exact", **kw)
            fa, fm, _ = compare(fast, ref)
            ea, _, _ = compare(exact, ref)
            ga = gm = g_cpu = g_wall = None
            if gdal:
                g, g_cpu, g_wall = run_gdal(dem, xy, OUT / f"{name}_{n}_gdal.tif", rep)
                ga, gm, _ = compare(g, ref)
            vis = 100 * np.mean(ref[ref != 255] == 1)
            r_cpu = None if g_cpu is None else j_cpu / g_cpu
            r_wall = None if g_wall is None else j_wall / g_wall
            print(
                f"| {name} | {n} | {tr.a:.1f} | {vis:.2f} | {fa:.3f} | {fm:.3f} | {ea:.3f} | "
                f"{f(ga)} | {f(gm)} | {t_ref:.2f} | {k_cpu:.3f} | {j_cpu:.3f} | {j_wall:.3f} | "
                f"{f(g_cpu)} | {f(g_wall)} | {f(r_cpu, 2)} | {f(r_wall, 2)} |",
                flush=True,
            )
    if not args.no_cumulative:
        cumulative_bench(args.data / "dem" / f"{args.dems[0]}.tif", max(args.sizes))


def cumulative_bench(src: Path, n: int) -> None:
    """1,000 observers on a circle around the centre, 2 km maximum distance."""
    from shapely.geometry import Point

    from fortmap.analyze.cumulative import cumulative_viewshed, observers_along

    z, tr = utm_square(src, n, OUT / f"cumulative_{n}.tif")
    side = tr.a * n
    centre = tr * (n / 2, n / 2)
    ring = Point(centre).buffer(side / 4, quad_segs=64).exterior
    obs = observers_along(ring, ring.length / 1000 * (1 + 1e-9))
    t = time.perf_counter()
    cumulative_viewshed(z, tr, obs[:2], observer_height=2.0, max_distance=2000.0)
    print(
        f"\ncumulative: first call (2 observers, compile or disk cache) {time.perf_counter() - t:.1f} s"
    )
    t, c = time.perf_counter(), time.process_time()
    counts = cumulative_viewshed(z, tr, obs, observer_height=2.0, max_distance=2000.0)
    dt, dc = time.perf_counter() - t, time.process_time() - c
    print(
        f"cumulative: {len(obs)} observers every {ring.length / 1000:.0f} m on a "
        f"{side / 4 / 1000:.1f} km circle, {n} x {n} DEM ({tr.a:.1f} m cells), 2 km maximum "
        f"distance: {dt:.1f} s wall, {dc:.1f} s CPU; {np.mean(counts > 0) * 100:.1f} % of cells seen by >= 1, "
        f"max count {counts.max()}"
    )


if __name__ == "__main__":
    main()
