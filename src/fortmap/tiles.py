"""One window of the scene, processed on its own: the unit of work sent to Dask workers.

A window is a core (the pixels it is responsible for) plus a halo of context. Everything a
window returns is about its core only, so windows can run in any order, on any worker.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

import numpy as np
import pandas as pd
import shapely
from rasterio.windows import Window

from fortmap.detect.cleared import block_stats
from fortmap.detect.learned_change import learned_mask
from fortmap.detect.razed import change_objects
from fortmap.fortifications import (
    FORT_BLOCK_PX,
    FORT_HALO_PX,
    FortContext,
    FortFindings,
    detect_window,
)
from fortmap.io.grids import affine_all
from fortmap.io.raster import GridReader


@dataclass
class SceneContext:
    """What every window needs; picklable (readers reopen their files on the worker).

    Attributes:
        before, after: readers on the analysis grid, scaled and (after) warped.
        change_model: a fitted ``fortmap.detect.change.ChangeModel``.
        gsd: metres per pixel of the analysis grid.
        block: block side in pixels for the cleared-land statistics.
        footprint_halo: pixels of context the footprint scorer needs.
        find_objects: find razed buildings as change objects (no footprints given).
        grey: average the bands to one (the two images have incompatible bands).
        fort: inputs of the barricade, rubble and berm detectors (None: not run).
        footprint_scene: the footprint features' noise floors and shadow thresholds for the
            scene (``fortmap.detect.footprints.FootprintScene``), or None (each window's own).
        change_net: a learned ``fortmap.detect.learned_change.ChangeNet`` that replaces the
            unsupervised change mask (None: the unsupervised mask), and ``learned_units`` the
            (before, after) ``ModelUnits`` its inputs are put in.
    """

    before: GridReader
    after: GridReader
    change_model: object
    gsd: float
    block: int
    footprint_halo: int
    find_objects: bool
    grey: bool = False
    fort: FortContext | None = None
    change_net: object | None = None
    learned_units: object | None = None
    footprint_scene: object | None = None


@dataclass
class WindowResult:
    """What a window hands back, about its core only (pixel coordinates are of the full grid)."""

    core: Window
    change: np.ndarray
    blocks: np.ndarray
    valid_px: int
    footprint_ids: list[int] = field(default_factory=list)
    footprint_features: pd.DataFrame | None = None
    objects: list[shapely.Polygon] = field(default_factory=list)
    object_scores: list[float] = field(default_factory=list)
    object_evidence: list[dict] = field(default_factory=list)
    fort: FortFindings | None = None


def _expand(core: Window, halo: int, width: int, height: int, extra=None) -> Window:
    c0, r0 = core.col_off - halo, core.row_off - halo
    c1, r1 = core.col_off + core.width + halo, core.row_off + core.height + halo
    if extra is not None:
        c0, r0, c1, r1 = min(c0, extra[0]), min(r0, extra[1]), max(c1, extra[2]), max(r1, extra[3])
    c0, r0 = max(0, int(np.floor(c0))), max(0, int(np.floor(r0)))
    c1, r1 = min(width, int(np.ceil(c1))), min(height, int(np.ceil(r1)))
    return Window(c0, r0, c1 - c0, r1 - r0)


def _read(reader: GridReader, w: Window, grey: bool) -> np.ndarray:
    data = reader.read(w)
    return data.mean(axis=0, keepdims=True) if grey else data


def fort_blocks(core: Window, width: int, height: int) -> list[Window]:
    """The fixed ``FORT_BLOCK_PX`` blocks of the grid whose first pixel lies in ``core``: each
    block is handled by exactly one window, whatever the window size."""
    b = FORT_BLOCK_PX
    c0, r0 = -(-int(core.col_off) // b) * b, -(-int(core.row_off) // b) * b
    c1, r1 = int(core.col_off + core.width), int(core.row_off + core.height)
    return [
        Window(c, r, min(b, width - c), min(b, height - r))
        for r in range(r0, r1, b)
        for c in range(c0, c1, b)
    ]


def _fortifications(
    ctx: SceneContext,
    core: Window,
    rw: Window,
    before: np.ndarray,
    after: np.ndarray,
    valid: np.ndarray,
) -> FortFindings:
    """The fortification detectors on the fixed blocks this window handles (``fort_blocks``).

    Each block is given exactly its core and ``FORT_HALO_PX`` of halo, cut from the window
    read ``rw`` where it holds them (the default window is one block) and read otherwise, so
    the findings are the same whatever ``--window`` and whatever else was read for the
    footprints or the change model.
    """
    grid = ctx.before.grid
    out = FortFindings()
    for blk in fort_blocks(core, grid.width, grid.height):
        fw = _expand(blk, FORT_HALO_PX, grid.width, grid.height)
        inside = (
            fw.col_off >= rw.col_off
            and fw.row_off >= rw.row_off
            and fw.col_off + fw.width <= rw.col_off + rw.width
            and fw.row_off + fw.height <= rw.row_off + rw.height
        )
        if fw == rw:
            fb, fa, fv = before, after, valid
        elif inside:
            fc, fr = fw.col_off - rw.col_off, fw.row_off - rw.row_off
            fs = (slice(fr, fr + fw.height), slice(fc, fc + fw.width))
            # copies: the compiled kernels are slower on strided views than the copy costs
            fb = np.ascontiguousarray(before[:, fs[0], fs[1]])
            fa = np.ascontiguousarray(after[:, fs[0], fs[1]])
            fv = np.ascontiguousarray(valid[fs])
        else:
            fb, fa = _read(ctx.before, fw, ctx.grey), _read(ctx.after, fw, ctx.grey)
            fv = ctx.before.read_valid(fw) & ctx.after.read_valid(fw)
        oc, orow = blk.col_off - fw.col_off, blk.row_off - fw.row_off
        found = detect_window(
            ctx.fort, fb, fa, fv, fw,
            (oc, orow, oc + blk.width, orow + blk.height),
            grid.transform, ctx.gsd,
        )  # fmt: skip
        out.barricades += found.barricades
        out.rubble += found.rubble
        out.berms += found.berms
        out.works += found.works
    return out


def process_window(
    ctx: SceneContext,
    core: Window,
    footprints: list[tuple[int, shapely.Polygon]] | None = None,
) -> WindowResult:
    """Change mask, block statistics, footprint features and change objects of one window.

    Args:
        ctx: the scene context.
        core: the window's core on the analysis grid (pixels).
        footprints: (id, polygon in analysis-grid pixel coordinates) of the footprints whose
            centroid lies in the core.
    """
    grid = ctx.before.grid
    halo = int(ctx.change_model.halo_px())
    if ctx.fort is not None:
        halo = max(halo, FORT_HALO_PX)
    if ctx.change_net is not None:
        halo = max(halo, ctx.change_net.halo_px(ctx.gsd))
    extra = None
    if footprints:
        # one vectorised call: the same envelopes as each polygon's ``bounds``
        b = shapely.bounds(np.array([p for _, p in footprints], dtype=object))
        fh = ctx.footprint_halo
        extra = (b[:, 0].min() - fh, b[:, 1].min() - fh, b[:, 2].max() + fh, b[:, 3].max() + fh)
    reach = core
    if ctx.change_net is not None and ctx.change_net.segments:
        from fortmap.detect.learned_segments import block_aligned

        # the whole segmentation blocks the core lies in, so its segments are the whole image's
        reach = block_aligned(core, grid.width, grid.height)
    rw = _expand(reach, halo, grid.width, grid.height, extra)
    before = _read(ctx.before, rw, ctx.grey)
    after = _read(ctx.after, rw, ctx.grey)
    valid = ctx.before.read_valid(rw) & ctx.after.read_valid(rw)
    if ctx.change_net is None:
        evidence = ctx.change_model.evidence(before, after, valid)
        mask = ctx.change_model.mask(evidence, valid).astype(np.uint8, copy=False)
    else:
        evidence, mask = learned_mask(
            ctx.change_net,
            ctx.change_model,
            ctx.learned_units,
            before,
            after,
            valid,
            origin=(int(rw.row_off), int(rw.col_off)),
        )
    mask &= valid  # 0/1 values: clears the invalid pixels in place

    oc, orow = core.col_off - rw.col_off, core.row_off - rw.row_off
    sl = (slice(orow, orow + core.height), slice(oc, oc + core.width))
    change = mask[sl].copy()
    blocks = block_stats(
        before[:, sl[0], sl[1]], after[:, sl[0], sl[1]], valid[sl], change, ctx.block
    )
    result = WindowResult(core=core, change=change, blocks=blocks, valid_px=int(valid[sl].sum()))

    if footprints:
        from fortmap.detect.footprints import footprint_features

        local = affine_all([p for _, p in footprints], [1, 0, 0, 1, -rw.col_off, -rw.row_off])
        result.footprint_ids = [i for i, _ in footprints]
        result.footprint_features = footprint_features(
            before, after, valid, local, ctx.gsd, ctx.footprint_scene
        )
    if ctx.fort is not None:
        result.fort = _fortifications(ctx, core, rw, before, after, valid)
    if ctx.find_objects:
        polys, scores, evs = change_objects(
            mask,
            evidence,
            (oc, orow, oc + core.width, orow + core.height),
            ctx.gsd,
            before=before,
            valid=valid,
        )
        result.objects = affine_all(polys, [1, 0, 0, 1, rw.col_off, rw.row_off])
        result.object_scores = scores
        result.object_evidence = evs
    return result


def map_windows(
    ctx: SceneContext,
    jobs: Iterable[tuple[Window, list]],
    workers: int = 0,
    scheduler: str | None = None,
) -> Iterator[WindowResult]:
    """Each window's result (:func:`process_window` of each (core, footprints) job), in the
    order they finish: in this process, or on a local Dask cluster of ``workers`` processes, or
    on the Dask scheduler at address ``scheduler``.

    With Dask, a few windows per worker are in flight at a time, so the footprints handed to
    the windows are read as they are needed, not all at once.
    """
    if scheduler or workers > 0:
        from dask.distributed import Client, LocalCluster, as_completed

        cluster = None
        if scheduler:
            client = Client(scheduler)
        else:
            cluster = LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            )
            client = Client(cluster)
        try:
            ctx_f = client.scatter(ctx, broadcast=True)
            todo = iter(jobs)
            ahead = 2 * max(1, sum(client.nthreads().values()))
            running = as_completed(
                [
                    client.submit(process_window, ctx_f, w, fp, pure=False)
                    for w, fp in islice(todo, ahead)
                ]
            )
            for fut in running:
                yield fut.result()
                fut.release()
                for w, fp in islice(todo, 1):
                    running.add(client.submit(process_window, ctx_f, w, fp, pure=False))
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    else:
        for w, fp in jobs:
            yield process_window(ctx, w, fp)
