"""``simulate_city``: plan, rasterise, change, render and write a simulated before/after pair."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import rasterio
import shapely
from affine import Affine
from rasterio.crs import CRS

from fortmap.errors import InputError
from fortmap.io.output import atomic_dir
from fortmap.simulate import raster as R
from fortmap.simulate import render
from fortmap.simulate.changes import Changes, apply_changes, plan_changes, truth_mask
from fortmap.simulate.difficulty import Difficulty, resolve_difficulty
from fortmap.simulate.dsm_quality import NODATA as DSM_NODATA
from fortmap.simulate.dsm_quality import degrade_dsm, resolve_quality
from fortmap.simulate.layout import City, plan_city
from fortmap.simulate.noise import make_textures
from fortmap.simulate.truth_routes import junction_vertices, write_true_routes
from fortmap.simulate.vegetation import FIELD_KINDS
from fortmap.types import DATE_TAG

#: The scene's CRS (UTM 37N) and the south-west corner of the scene in it (metres).
CRS_EPSG = 32637
ORIGIN_EN = (412000.0, 3985000.0)
DATE_BEFORE, DATE_AFTER = "2024-03-11", "2024-10-02"
#: Cell size (m) of the bare-earth DEM written beside the images: 1 arc-second, as SRTM and
#: Copernicus GLO-30, the free DEMs an analyst has.
DEM_CELL_M = 30.0
#: Standard deviation (m) of the random height error added to each DEM cell: GLO-30's
#: relative vertical accuracy is specified as under 2 m LE90 on gentle slopes (sigma 1.2 m);
#: SRTM's is coarser. The absolute offset of a real DEM is left out: a constant shift of
#: ground and observers alike changes no sight line.
DEM_NOISE_M = 1.2
TRUTH_GEOMETRY = {
    "razed_buildings": "Polygon",
    "cleared_areas": "Polygon",
    "barricades": "LineString",
    "berms": "LineString",
    "rubble": "Polygon",
}


@dataclass
class SimulatedScene:
    """Paths written by :func:`simulate_city` and a few counts.

    Attributes:
        out_dir: the output directory; every other path lies in it.
        seconds: wall-clock time the simulation took (s).
    """

    out_dir: Path
    before: Path
    after: Path
    dsm_before: Path
    dsm_after: Path
    buildings: Path
    roads: Path
    places: Path
    truth: Path
    truth_change: Path
    scene_json: Path
    width: int
    height: int
    n_buildings: int
    n_razed: int
    n_cleared: int
    n_barricades: int
    n_berms: int
    n_rubble: int
    seconds: float
    n_entries: int = 0
    n_entries_cut: int = 0
    dem: Path | None = None


def simulate_city(
    out_dir: Path,
    *,
    seed: int = 0,
    size_m: float = 2000.0,
    gsd: float = 0.5,
    difficulty: str | float | Difficulty = "default",
    force: bool = False,
    osm: Path | str | None = None,
    dsm_quality: str = "exact",
) -> SimulatedScene:
    """Write a deterministic simulated city pair (images, DSMs, vectors, truth) to ``out_dir``.

    ``truth.gpkg`` holds the changes (:data:`fortmap.types.TRUTH_LAYERS`) and the true route
    status into the core district "Old City" (layers ``routes`` and ``entry_points``).
    ``dem.tif`` is the bare-earth terrain (no buildings, trees, berms or debris) as a public
    DEM gives it (:func:`public_dem`), for ``fortmap analyze --dem``.

    Args:
        out_dir: directory to create (written atomically via a temporary sibling).
        seed: random seed; the same seed gives the same files.
        size_m: side of the square scene in metres.
        gsd: ground sample distance in metres per pixel.
        difficulty: preset (easy|default|hard|extreme), a level 0..1, or a Difficulty.
        force: replace ``out_dir`` if it exists.
        osm: an OpenStreetMap extract (.osm.pbf, .osm, ...): lay the city on its real streets
            and buildings, centred on the extract, in its UTM zone; ``size_m`` is cut to the
            extract's extent when larger (with a warning).
        dsm_quality: exact | stereo | coarse: how the written DSMs are degraded from the true
            surface (:mod:`fortmap.simulate.dsm_quality`); the truth stays exact.

    Raises:
        InputError: size, gsd or difficulty out of range; unreadable or roadless ``osm``.
        OutputExistsError: ``out_dir`` exists and ``force`` is False.
    """
    t0 = time.perf_counter()
    diff = resolve_difficulty(difficulty)
    try:
        dsm_q = resolve_quality(dsm_quality)
    except ValueError as exc:
        raise InputError(f"{out_dir}: {exc}") from None
    if not 200.0 <= float(size_m) <= 10000.0:
        raise InputError(f"{out_dir}: size_m {size_m} outside 200..10000 m")
    if not 0.1 <= float(gsd) <= 5.0:
        raise InputError(f"{out_dir}: gsd {gsd} outside 0.1..5 m per pixel")
    site = None
    if osm is not None:
        from fortmap.simulate.osm_city import load_osm_site

        site = load_osm_site(Path(osm), float(size_m), float(gsd))
        size_m = site.size_m
    n = int(round(size_m / gsd))
    if n > 20000:
        raise InputError(f"{out_dir}: {n}x{n} pixels is too large; raise gsd or lower size_m")
    size_m = n * float(gsd)
    # spawned streams depend on their index only: the DEM's (8th) leaves the others unchanged
    r_plan, r_change, r_ras, r_tex, r_sun, r_before, r_after, r_dem = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(8)
    )
    if site is None:
        city = plan_city(r_plan, size_m)
        crs, (x0, y0) = CRS.from_epsg(CRS_EPSG), ORIGIN_EN
    else:
        from fortmap.simulate.osm_city import plan_osm_city

        city = plan_osm_city(r_plan, site)
        crs, (x0, y0) = site.crs, site.origin_en
    ch = plan_changes(r_change, city)
    tex = make_textures(r_tex, (n, n), gsd)
    before = R.rasterize_city(r_ras, city, gsd, tex)
    after = apply_changes(r_ras, before, city, ch, gsd, tex)
    truth = truth_mask(before, after, ch, size_m, gsd)

    sun_b = (float(r_sun.uniform(125, 165)), float(r_sun.uniform(45, 62)))
    d_az = diff.sun_azimuth_change_deg * r_sun.uniform(0.8, 1.0) * r_sun.choice([-1, 1])
    d_el = diff.sun_elevation_change_deg * r_sun.uniform(0.8, 1.0)
    sun_a = (float((sun_b[0] + d_az) % 360), float(max(sun_b[1] - d_el, 20.0)))
    phi = r_sun.uniform(0, 2 * np.pi)
    shift = (float(diff.misreg_px * np.cos(phi)), float(diff.misreg_px * np.sin(phi)))
    sen_b = render.Sensor(
        gain=tuple(1 + r_sun.uniform(-0.03, 0.03, 3)),
        offset=(0.01, 0.015, 0.025),
        noise_dn=1.0,
        psf_sigma_px=0.45,
    )
    haze = diff.haze * np.array([0.6, 0.8, 1.0])
    sen_a = render.Sensor(
        gain=tuple(1 + r_sun.uniform(-1, 1, 3) * diff.gain_jitter),
        offset=tuple(0.01 + haze),
        gamma=tuple(1 + r_sun.uniform(-1, 1, 3) * diff.gamma_jitter),
        noise_dn=diff.noise_dn,
        psf_sigma_px=diff.psf_sigma_px,
        shift_px=shift,
        warp_px=diff.local_warp_px,
    )
    fc_b = render.FIELD_COLOURS[city.f_kind] * r_sun.uniform(
        0.9, 1.1, (city.f_kind.size, 1)
    ).astype(np.float32)
    ripen = (diff.seasonal * r_sun.uniform(0, 1, city.f_kind.size)).astype(np.float32)[:, None]
    fc_a = fc_b * (1 - ripen) + render.FIELD_COLOURS[(city.f_kind + 1) % FIELD_KINDS] * ripen

    transform = Affine(gsd, 0.0, x0, 0.0, -gsd, y0 + size_m)
    names = {
        "before": "before.tif", "after": "after.tif", "dsm_before": "dsm_before.tif",
        "dsm_after": "dsm_after.tif", "buildings": "buildings.geojson", "roads": "roads.geojson",
        "places": "places.geojson", "truth": "truth.gpkg", "truth_change": "truth_change.tif",
        "scene_json": "scene.json", "dem": "dem.tif",
    }  # fmt: skip
    out_dir = Path(out_dir)
    with atomic_dir(out_dir, force=force) as tmp:
        # Write each product as soon as it exists and drop it: keeps the peak memory down.
        _write_band(tmp / names["truth_change"], truth, crs, transform, {"MEANING": "1 = changed"})
        change_fraction = float(truth.mean())
        del truth
        # each date's DSM degraded from its own streams (9th, 10th: the others unchanged)
        r_dsm = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(10)[8:]]
        dsm_drawn = {}
        for surf, date, name, r in (
            (before, DATE_BEFORE, "dsm_before", r_dsm[0]),
            (after, DATE_AFTER, "dsm_after", r_dsm[1]),
        ):
            tags = {DATE_TAG: date, "UNITS": "metre"}
            if dsm_q.exact:
                _write_band(tmp / names[name], surf.dsm(), crs, transform, tags)
                continue
            z, dsm_drawn[name] = degrade_dsm(surf.dsm(), gsd, dsm_q, r)
            tags["DSM_QUALITY"] = dsm_q.name
            _write_band(tmp / names[name], z, crs, transform, tags, nodata=DSM_NODATA)
        dem, dem_transform = public_dem(before.ground, transform, r_dem)
        tags = {"UNITS": "metre", "SOURCE": f"simulated bare earth, {DEM_CELL_M:g} m cells"}
        _write_band(tmp / names["dem"], dem, crs, dem_transform, tags)
        alb = render.albedo(before, city, tex, fc_b, gsd)
        img = render.sensor(render.radiance(before, alb, gsd, *sun_b), sen_b, r_before)
        del alb, before
        _write_image(tmp / names["before"], img, crs, transform, DATE_BEFORE, sun_b)
        alb = render.albedo(after, city, tex, fc_a, gsd, 0.3 * diff.seasonal)
        del tex
        img = render.sensor(render.radiance(after, alb, gsd, *sun_a), sen_a, r_after)
        del alb, after
        _write_image(tmp / names["after"], img, crs, transform, DATE_AFTER, sun_a)
        del img
        _write_vectors(tmp, names, city, ch, crs, (x0, y0), junctions=site is None)
        bounds = (x0, y0, x0 + size_m, y0 + size_m)
        routes = write_true_routes(
            tmp / names["truth"], tmp / names["roads"], tmp / names["places"], crs, bounds
        )
        meta = {
            "seed": seed,
            "size_m": size_m,
            "gsd_m": gsd,
            "width_px": n,
            "height_px": n,
            "crs": f"EPSG:{crs.to_epsg()}",
            "osm": None if site is None else site.meta(),
            "origin_en": [x0, y0],
            "dates": {"before": DATE_BEFORE, "after": DATE_AFTER},
            "difficulty": diff.as_dict(),
            "dsm_quality": {**dsm_q.as_dict(), "drawn": dsm_drawn},
            "misregistration": {
                "dx_px": round(shift[0], 4),
                "dy_px": round(shift[1], 4),
                "convention": "after minus before, in before-grid pixels: +dx = content further east (right), +dy = further south (down)",
                "local_warp_max_px": round(diff.local_warp_px, 4),
                "applies_to": "after.tif only; the DSMs and truth_change are on the before grid, unshifted",
            },
            "sun": {
                "before": {"azimuth_deg": round(sun_b[0], 3), "elevation_deg": round(sun_b[1], 3)},
                "after": {"azimuth_deg": round(sun_a[0], 3), "elevation_deg": round(sun_a[1], 3)},
            },
            "sensor": {"before": _sensor_dict(sen_b), "after": _sensor_dict(sen_a)},
            "counts": _counts(city, ch),
            "clear_direction_deg": round(ch.clear_direction_deg, 2),
            "truth_change_fraction": round(change_fraction, 6),
            "routes": routes,
        }
        (tmp / names["scene_json"]).write_text(json.dumps(meta, indent=2) + "\n")
    counts = meta["counts"]
    return SimulatedScene(
        out_dir=out_dir,
        **{k: out_dir / v for k, v in names.items()},
        width=n,
        height=n,
        n_buildings=counts["buildings"],
        n_razed=counts["razed_buildings"],
        n_cleared=counts["cleared_areas"],
        n_barricades=counts["barricades"],
        n_berms=counts["berms"],
        n_rubble=counts["rubble"],
        seconds=round(time.perf_counter() - t0, 2),
        n_entries=routes["entries_before"],
        n_entries_cut=routes["entries_cut"],
    )


def public_dem(
    ground: np.ndarray, transform: Affine, rng: np.random.Generator
) -> tuple[np.ndarray, Affine]:
    """The bare-earth ``ground`` as a free public DEM shows it: 30 m cells, metres of noise.

    Each :data:`DEM_CELL_M` cell holds the mean of the ground pixels it covers (a DEM posting
    stands for its cell; the river channel and bridge decks are smeared into it), plus
    Gaussian noise of :data:`DEM_NOISE_M`. The cells start at the scene's north-west corner
    and cover it whole; the last row and column run past it and average what they cover.

    Args:
        ground: terrain heights (m) on the scene grid, row 0 north.
        transform: the scene grid's affine transform (metres).
        rng: random stream for the noise.

    Returns:
        (heights in metres, float32, and the DEM's affine transform in the scene's CRS).
    """
    f = max(1, int(round(DEM_CELL_M / abs(transform.a))))
    h, w = ground.shape
    ch, cw = -(-h // f), -(-w // f)
    pad = np.full((ch * f, cw * f), np.nan, np.float32)
    pad[:h, :w] = ground
    cells = np.nanmean(pad.reshape(ch, f, cw, f), axis=(1, 3))
    cells += rng.normal(0.0, DEM_NOISE_M, cells.shape)
    return cells.astype(np.float32), transform @ Affine.scale(f)


def _sensor_dict(s: render.Sensor) -> dict:
    return {
        k: (np.round(np.asarray(v, float), 4).tolist() if not isinstance(v, float) else round(v, 4))
        for k, v in asdict(s).items()
    }


def _counts(city: City, ch: Changes) -> dict[str, int]:
    return {
        "buildings": int(city.b_geom.size),
        "roads": len(city.roads),
        "trees": int(city.t_x.size),
        "razed_buildings": int(ch.razed.size),
        "cleared_areas": len(ch.cleared),
        "barricades": len(ch.barricades),
        "berms": len(ch.berms),
        "rubble": len(ch.rubble),
    }


_GTIFF = {
    "driver": "GTiff",
    "tiled": True,
    "blockxsize": 512,
    "blockysize": 512,
    "compress": "deflate",
    "zlevel": 4,
    "num_threads": "all_cpus",
}


def _write_image(
    path: Path, img: np.ndarray, crs: CRS, transform: Affine, date: str, sun: tuple[float, float]
) -> None:
    prof = dict(
        _GTIFF,
        count=3,
        dtype="uint8",
        width=img.shape[2],
        height=img.shape[1],
        crs=crs,
        transform=transform,
        photometric="RGB",
        predictor=2,
    )
    with rasterio.open(path, "w", **prof) as ds:
        ds.write(img)
        ds.update_tags(
            **{
                DATE_TAG: date,
                "TIFFTAG_DATETIME": f"{date.replace('-', ':')} 08:10:00",
                "SUN_AZIMUTH": f"{sun[0]:.3f}",
                "SUN_ELEVATION": f"{sun[1]:.3f}",
            }
        )


def _write_band(
    path: Path,
    arr: np.ndarray,
    crs: CRS,
    transform: Affine,
    tags: dict[str, str],
    nodata: float | None = None,
) -> None:
    prof = dict(
        _GTIFF,
        count=1,
        dtype=arr.dtype.name,
        width=arr.shape[1],
        height=arr.shape[0],
        crs=crs,
        transform=transform,
    )
    if arr.dtype == np.float32:
        prof["predictor"] = 3
    if nodata is not None:
        prof["nodata"] = nodata
    with rasterio.open(path, "w", **prof) as ds:
        ds.write(arr, 1)
        ds.update_tags(**tags)


def _to_crs(geoms, offset: tuple[float, float]) -> np.ndarray:
    return shapely.transform(np.asarray(geoms, dtype=object), lambda xy: xy + np.asarray(offset))


def _write_vectors(
    tmp: Path,
    names: dict[str, str],
    city: City,
    ch: Changes,
    crs: CRS,
    off: tuple[float, float],
    junctions: bool,
) -> None:

    def frame(rows: list[dict], geom_type: str) -> gpd.GeoDataFrame:
        geoms = _to_crs([r.pop("geometry") for r in rows], off) if rows else []
        return gpd.GeoDataFrame(rows, geometry=gpd.GeoSeries(geoms, crs=crs))

    bld = [
        {"id": i + 1, "height": round(float(h), 2), "geometry": g}
        for i, (g, h) in enumerate(zip(city.b_geom, city.b_height, strict=True))
    ]
    pyogrio.write_dataframe(frame(bld, "Polygon"), tmp / names["buildings"], driver="GeoJSON")
    lines = [r["geometry"] for r in city.roads]
    if junctions:
        lines = junction_vertices(lines)
    roads = [
        {
            "class": r["class"],
            "name": r["name"],
            "width_m": r["width_m"],
            **({"highway": r["highway"]} if "highway" in r else {}),
            "geometry": g,
        }
        for r, g in zip(city.roads, lines, strict=True)
    ]
    pyogrio.write_dataframe(frame(roads, "LineString"), tmp / names["roads"], driver="GeoJSON")
    places = [
        {
            "name": p["name"],
            "kind": p["kind"],
            "radius_m": p.get("radius_m", np.nan),
            "width_m": p.get("width_m", np.nan),
            "geometry": p["geometry"],
        }
        for p in city.places
    ]
    # points, and the river's centreline (a LineString): GeoJSON mixes geometry types freely
    pyogrio.write_dataframe(frame(places, "Unknown"), tmp / names["places"], driver="GeoJSON")

    cleared_u = shapely.union_all(ch.cleared) if ch.cleared else None
    layers = {
        "razed_buildings": [
            {
                "id": int(i) + 1,
                "height": round(float(city.b_height[i]), 2),
                "cause": "cleared"
                if cleared_u is not None and cleared_u.contains(city.b_geom[i])
                else "razed",
                "geometry": city.b_geom[i],
            }
            for i in ch.razed
        ],
        "cleared_areas": [{"area_ha": round(g.area / 1e4, 3), "geometry": g} for g in ch.cleared],
        "barricades": [
            {k: b[k] for k in ("n_blocks", "width_m", "road_name", "geometry")}
            for b in ch.barricades
        ],
        "berms": [
            {k: b[k] for k in ("height_m", "length_m", "width_m", "geometry")} for b in ch.berms
        ],
        "rubble": [
            {k: b[k] for k in ("area_m2", "passable_width_m", "road_name", "geometry")}
            for b in ch.rubble
        ],
    }
    empty_cols = {"razed_buildings": {"id": "int64", "height": "float64", "cause": "object"}, "cleared_areas": {"area_ha": "float64"},
                  "barricades": {"n_blocks": "int64", "width_m": "float64", "road_name": "object"},
                  "berms": {"height_m": "float64", "length_m": "float64", "width_m": "float64"},
                  "rubble": {"area_m2": "float64", "passable_width_m": "float64", "road_name": "object"}}  # fmt: skip
    for name, rows in layers.items():
        df = frame(rows, TRUTH_GEOMETRY[name])
        if not rows:
            for col, dt in empty_cols[name].items():
                df[col] = np.array([], dtype=dt)
        pyogrio.write_dataframe(
            df,
            tmp / names["truth"],
            layer=name,
            driver="GPKG",
            geometry_type=TRUTH_GEOMETRY[name],
            append=(tmp / names["truth"]).exists(),
        )
