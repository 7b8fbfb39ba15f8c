"""The analyst's report: one self-contained ``report.html`` per run, plus figures and styles.

``report.html`` makes no network request at all: images are inline ``data:`` URIs, the map is
the package's own small JavaScript (``report/static``), and every string that came from an
input (file names, place and road names, credits) is escaped by Jinja2's autoescape or, inside
the embedded JSON, by :func:`script_json`. The map's data (the layers as SVG paths, the lon/lat
fit) is built in ``map_data``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import geopandas as gpd
import jinja2
import numpy as np
import pyogrio
import rasterio
from affine import Affine
from markupsafe import Markup

from fortmap import __version__
from fortmap.errors import InputError
from fortmap.io.gdal_cache import gdal_cache_b
from fortmap.io.output import atomic_files
from fortmap.report import captions as cap
from fortmap.report import figures as figs
from fortmap.report.layers import write_geojson
from fortmap.report.map_data import _geo, _map_layers
from fortmap.report.sight import visibility_context
from fortmap.report.styles import style_for, write_layer_styles
from fortmap.types import Grid

#: Largest side, pixels, of the overview images the HTML map shows, for scenes up to
#: :data:`REFERENCE_KM2` (1.4 m per pixel on a 2 km scene).
OVERVIEW_MAX_PX = 1400
#: Larger scenes keep that ground resolution, up to this many pixels a side.
OVERVIEW_MAX_PX_CAP = 2800
#: Target size of report.html, bytes, for scenes up to :data:`REFERENCE_KM2` (the issue asks
#: under 5 MB for the default scene); the overview images get what the rest leaves.
HTML_BUDGET = 4_700_000
#: Larger scenes' budget grows with their area up to this (the issue allows 25 MB at 16 km2).
HTML_BUDGET_CAP = 20_000_000
#: Area (km2) of the default simulated scene, the one the base budget and size are set for.
REFERENCE_KM2 = 4.0
#: The overviews never get less than this, bytes (a huge findings set may then pass 5 MB).
OVERVIEW_MIN = 600_000
FIGURE_DPI = 300
#: Most footprints the report's map draws: past this many (a city), the intact ones are left
#: out of the map and of the report's memory (the damaged and destroyed are all drawn); the
#: whole layer stays in findings.gpkg, and the legend says how many were left out.
MAP_INTACT_MAX = 20_000
HTML_FIGURE_DPI = 90


@dataclass
class Run:
    """What a run directory holds, read once."""

    dir: Path
    summary: dict
    grid: Grid
    layers: dict[str, gpd.GeoDataFrame]
    before: Path | None
    after: Path | None
    warp: Affine | None
    #: layer name -> features left out of ``layers`` (intact footprints of a city, see
    #: :data:`MAP_INTACT_MAX`); the whole layer is in findings.gpkg.
    left_out: dict[str, int] = field(default_factory=dict)


def _find_input(p: str | None, run_dir: Path) -> Path | None:
    # summary.json keeps paths as typed, relative to where analyze ran: try the likely bases.
    if not p:
        return None
    cand = Path(p)
    bases = [Path.cwd(), run_dir, *run_dir.resolve().parents]
    for c in [cand] if cand.is_absolute() else [b / cand for b in bases]:
        if c.is_file():
            return c
    return None


def load_run(run_dir: str | Path) -> Run:
    """Read ``summary.json``, the grid (from ``change.tif``) and every spatial findings layer.

    Raises:
        InputError: the directory, its summary.json or findings.gpkg is missing or unreadable.
    """
    d = Path(run_dir)
    if not d.is_dir():
        raise InputError(f"{d}: run directory not found (expected the output of fortmap analyze)")
    sp = d / "summary.json"
    try:
        summary = json.loads(sp.read_text())
    except FileNotFoundError:
        raise InputError(f"{sp}: not found; is {d} the output of fortmap analyze?") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{sp}: unreadable: {exc}") from None
    inputs = summary.get("inputs", {})
    before, after = _find_input(inputs.get("before"), d), _find_input(inputs.get("after"), d)
    ref = d / "change.tif" if (d / "change.tif").is_file() else before
    if ref is None:
        raise InputError(f"{d}: neither change.tif nor the before image can be found")
    with rasterio.open(ref) as src:
        grid = Grid(src.crs, src.transform, src.width, src.height)
    gpkg = d / "findings.gpkg"
    if not gpkg.is_file():
        raise InputError(f"{gpkg}: not found; is {d} the output of fortmap analyze?")
    layers: dict[str, gpd.GeoDataFrame] = {}
    left_out: dict[str, int] = {}
    try:
        for name, gtype in pyogrio.list_layers(gpkg):
            if gtype is None:  # non-spatial tables such as layer_styles
                continue
            kw = {}
            if name == "buildings":
                info = pyogrio.read_info(gpkg, layer=name)
                if info["features"] > MAP_INTACT_MAX and "damage" in info["fields"]:
                    # a city's intact footprints: in findings.gpkg, not in the report's memory
                    kw["where"] = "damage <> 'intact'"
            gdf = gpd.read_file(gpkg, layer=name, engine="pyogrio", **kw)
            if kw:
                left_out[str(name)] = int(info["features"]) - len(gdf)
            gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
            if gdf.crs is not None and grid.crs is not None and gdf.crs != grid.crs:
                # a geographic or Web Mercator image's findings are in its own CRS, while
                # change.tif is on the UTM grid the analysis ran on: draw them on that grid
                gdf = gdf.to_crs(grid.crs)
            layers[str(name)] = gdf
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise InputError(f"{gpkg}: unreadable: {str(exc).splitlines()[0]}") from None
    warp = None
    coreg = summary.get("coregistration") or {}
    if coreg.get("affine_px") and len(coreg["affine_px"]) == 6:
        warp = Affine(*coreg["affine_px"])
    return Run(d, summary, grid, layers, before, after, warp, left_out)


def script_json(obj) -> Markup:
    """JSON safe to embed in ``<script type="application/json">``: ``<``, ``>``, ``&`` escaped.

    >>> str(script_json({"a": "</script>"}))
    '{"a":"\\\\u003c/script\\\\u003e"}'
    """
    s = json.dumps(obj, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    s = s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    s = s.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return Markup(s)


def _stretches(run: Run) -> dict[str, figs.Stretch]:
    """Display stretch of each image, from a coarse read of the whole scene."""
    g = run.grid
    k = min(1.0, 512 / max(g.width, g.height))
    shape = (max(1, round(g.height * k)), max(1, round(g.width * k)))
    out = {}
    for key, path, warp in (("before", run.before, None), ("after", run.after, run.warp)):
        if path is not None:
            out[key] = figs.fit_stretch(*figs.read_on_grid(path, g, g.bounds, shape, warp))
    return out


def _budget(grid: Grid) -> tuple[int, int]:
    """(report.html budget in bytes, overview side cap in pixels) for a scene of this size."""
    area_km2 = grid.width * grid.height * grid.res[0] * grid.res[1] / 1e6
    k = max(1.0, area_km2 / REFERENCE_KM2)
    return (
        int(min(HTML_BUDGET_CAP, HTML_BUDGET * k)),
        int(min(OVERVIEW_MAX_PX_CAP, OVERVIEW_MAX_PX * math.sqrt(k))),
    )


def _overviews(
    run: Run, stretches: dict[str, figs.Stretch], budget: int, max_px: int = OVERVIEW_MAX_PX
) -> dict[str, str]:
    """Data URIs of the before/after overviews (at most ``max_px`` a side), shrunk until both
    fit in ``budget`` bytes."""
    g = run.grid
    uris: dict = {}
    scale = min(1.0, max_px / max(g.width, g.height))
    while True:
        shape = (max(1, round(g.height * scale)), max(1, round(g.width * scale)))
        for key, path, warp in (("before", run.before, None), ("after", run.after, run.warp)):
            if path is not None:
                data, valid = figs.read_on_grid(path, g, g.bounds, shape, warp, native=True)
                uris[key] = figs.png_data_uri(figs.to_rgb(data, valid, stretches[key]), 256)
        total = sum(len(u) for u in uris.values())
        if total <= budget or scale < 0.05:
            return uris
        scale *= math.sqrt(budget / total) * 0.95


def _summary_rows(run: Run) -> list[dict]:
    rows = []
    for name in sorted(run.layers, key=lambda n: (style_for(n).order, n)):
        gdf = run.layers[name]
        area = float(np.nansum(gdf["area_m2"])) if "area_m2" in gdf else 0.0
        length = float(np.nansum(gdf["length_m"])) if "length_m" in gdf else 0.0
        measure = ""
        if area > 0:
            measure = f"{area / 1e4:,.2f} ha" if area >= 5000 else f"{area:,.0f} m\u00b2"
        elif length > 0:
            measure = f"{length:,.0f} m"
        sc = gdf["score"].to_numpy(float) if "score" in gdf else np.array([])
        out = run.left_out.get(name, 0)
        if out:
            measure = f"{out:,} intact not drawn"
        rows.append(
            {
                "label": style_for(name).label,
                "layer": name,
                "colour": style_for(name).colour,
                "count": len(gdf) + out,
                "measure": measure,
                "sure": int((sc >= 0.5).sum()),
                # over the drawn ones only, were some left out: not the layer's mean
                "mean_score": f"{np.nanmean(sc):.2f}" if sc.size and not out else "",
                "context": style_for(name).context,
            }
        )
    return rows


def _benchmarks(layers: list[str]) -> dict[str, list[str]]:
    """Rows of BENCHMARKS.md tables (source checkout) that name each layer, as "col: value"."""
    path = Path(__file__).resolve().parents[3] / "BENCHMARKS.md"
    if not path.is_file():
        return {}
    rows: list[str] = []
    header: list[str] = []
    for ln in path.read_text(errors="replace").splitlines():
        if not ln.startswith("|"):
            header = []
            continue
        cells = [c.strip() for c in ln.strip().strip("|").split("|")]
        if not header:
            header = cells
        elif not all(set(c) <= set("-: ") for c in cells):
            rows.append("; ".join(f"{h}: {c}" for h, c in zip(header, cells, strict=False)))
    out: dict[str, list[str]] = {}
    for layer in layers:
        keys = {layer, layer.rstrip("s"), style_for(layer).label.lower()}
        hits = [r for r in rows if any(k in r.lower() for k in keys)]
        if hits:
            out[layer] = hits[:4]
    return out


def _limitations(run: Run) -> dict:
    s = run.summary
    gsd = run.grid.gsd
    valid = s.get("valid_fraction")
    coreg = s.get("coregistration") or {}
    return {
        "gsd": f"{gsd:.2g}",
        "min_object_m": f"{3 * gsd:.2g}",
        "invalid_pct": None if valid is None else f"{100 * (1 - valid):.1f}",
        "not_analysed": [style_for(n).label for n in s.get("not_analysed", [])],
        "residual_m": coreg.get("residual_m"),
        "benchmarks": {style_for(k).label: v for k, v in _benchmarks(list(run.layers)).items()},
    }


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("fortmap.report", "templates"),
        autoescape=True,
        undefined=jinja2.ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def _static(name: str) -> Markup:
    # Our own script/stylesheet, trusted; the only '</' they could hold would end the tag.
    text = resources.files("fortmap.report").joinpath("static", name).read_text()
    return Markup(text.replace("</", "<\\/"))


def write_report(
    run_dir: str | Path,
    *,
    places: str | Path | None = None,
    credit: str | None = None,
    geojson: bool = False,
    name: str | None = None,
) -> Path:
    """Write ``report.html``, ``figures/*.png``, ``captions.md`` and QGIS styles for a run.

    Args:
        run_dir: output directory of ``fortmap analyze``.
        name: the run's name in titles (default: the directory's name; ``analyze`` writes into
            a temporary directory and passes the final name).
        places: named places and rivers (vector file with a ``name`` column, any CRS) for
            captions (see :mod:`fortmap.report.captions`);
            None uses the run's own ``--places`` when recorded, else coordinates.
        credit: imagery credit printed under each figure; default "Imagery: <file names>".
        geojson: also write one RFC 7946 GeoJSON per layer (WGS84) to ``run_dir/geojson``.

    Returns:
        Path of ``report.html``.

    Raises:
        InputError: the run directory or the places file is missing or unreadable.
    """
    # a bounded block cache: the whole-scene overviews decode every block of both images
    with rasterio.Env(GDAL_CACHEMAX=gdal_cache_b()):
        return _write_report(run_dir, places, credit, geojson, name)


def _write_report(
    run_dir: str | Path,
    places: str | Path | None,
    credit: str | None,
    geojson: bool,
    name: str | None,
) -> Path:
    run = load_run(run_dir)
    run_name = name or run.dir.resolve().name
    s = run.summary
    crs = run.grid.crs
    places = places or _find_input(s.get("inputs", {}).get("places"), run.dir)
    place_list = cap.load_places(places, crs) if places else None
    rivers = cap.load_rivers(places, crs) if places else None
    names = [p.name for p in (run.before, run.after) if p is not None] or [
        Path(v).name for k, v in s.get("inputs", {}).items() if k in ("before", "after") and v
    ]
    credit = credit or ("Imagery: " + ", ".join(names) if names else "Imagery: unknown source")
    geo = _geo(run.grid)

    stretches = _stretches(run)
    # everything is written into a staging folder and swapped in at the end (report.html
    # last): an interrupted report leaves the run as it was, not an empty figures/
    with atomic_files(run.dir, last="report.html") as stage:
        _write_all(run, stage, run_name, stretches, place_list, rivers, credit, geo, geojson)
    return run.dir / "report.html"


def _write_all(
    run: Run,
    stage: Path,
    run_name: str,
    stretches: dict,
    place_list: list | None,
    rivers: object,
    credit: str,
    geo: dict,
    geojson: bool,
) -> None:
    """The report's files, written into ``stage`` (see :func:`write_report`)."""
    s = run.summary
    crs = run.grid.crs
    dates = s.get("dates", {})
    d0, d1 = dates.get("before", ""), dates.get("after", "")
    fig_dir = stage / "figures"
    fig_dir.mkdir()
    figures = []
    sites = figs.select_sites(run.layers, run.grid.bounds)
    for i, site in enumerate(sites, 1):
        text = cap.caption(
            site.groups,
            date_before=d0,
            date_after=d1,
            centre=site.centre,
            places=place_list,
            crs=crs,
            rivers=rivers,
        )
        what = cap.join_words([style_for(n).label.lower() for n in site.groups])
        title = f"Figure {i}. {what[0].upper() + what[1:]}"
        side_px = (site.bounds[2] - site.bounds[0]) / run.grid.gsd
        n = int(min(700, max(64, side_px)))
        crops = []
        for key, path, warp in (("before", run.before, None), ("after", run.after, run.warp)):
            if path is None:
                crops.append(np.zeros((n, n, 4), np.uint8))
                continue
            data, valid = figs.read_on_grid(path, run.grid, site.bounds, (n, n), warp, native=True)
            crops.append(figs.to_rgb(data, valid, stretches[key]))
        kw = {
            "title": title,
            "labels": (f"Before: {cap.date_text(d0)}", f"After: {cap.date_text(d1)}"),
            "credit": credit,
            "north_deg": geo["north_deg"],
        }
        png = fig_dir / f"fig_{i:02d}.png"
        fig = figs.draw_figure(site, crops[0], crops[1], caption=text, **kw)
        png.write_bytes(figs.fig_bytes(fig, FIGURE_DPI))
        figs.plt.close(fig)
        # The HTML prints the caption as text (searchable, copyable): panels only here.
        fig = figs.draw_figure(site, crops[0], crops[1], caption=None, **kw)
        uri = figs.fig_data_uri(fig, HTML_FIGURE_DPI)
        figs.plt.close(fig)
        figures.append(
            {
                "title": title,
                "caption": text,
                "uri": uri,
                "file": f"figures/{png.name}",
                "bounds": [
                    site.bounds[0] - run.grid.bounds[0],
                    run.grid.bounds[3] - site.bounds[3],
                    site.bounds[2] - site.bounds[0],
                ],
            }
        )
    lines = [f"# Figures: {run_name}", ""]
    for f in figures:
        lines += [f"## {f['title']}", "", f"![{f['title']}]({f['file']})", "", f["caption"], ""]
        lines += [f"*{credit}*", ""]
    if not figures:
        lines += ["No finding was significant enough for a figure.", ""]
    (stage / "captions.md").write_text("\n".join(lines))

    # in place: one SQLite transaction, all or nothing by itself
    write_layer_styles(run.dir / "findings.gpkg")
    if geojson:
        whole = {
            n: gpd.read_file(run.dir / "findings.gpkg", layer=n, engine="pyogrio")
            for n in run.left_out
        }
        write_geojson({**run.layers, **whole}, stage / "geojson")

    n_findings = sum(len(g) for n, g in run.layers.items() if not style_for(n).context)
    map_layers = _map_layers(run)
    used = len(str(script_json(map_layers))) + sum(len(f["uri"]) for f in figures) + 80_000
    budget, max_px = _budget(run.grid)
    uris = _overviews(run, stretches, max(OVERVIEW_MIN, budget - used), max_px)
    payload = {
        "width_m": run.grid.bounds[2] - run.grid.bounds[0],
        "height_m": run.grid.bounds[3] - run.grid.bounds[1],
        "images": uris,
        "labels": {"before": cap.date_text(d0), "after": cap.date_text(d1)},
        "layers": map_layers,
        "geo": geo,
        "sites": [f["bounds"] for f in figures],
    }
    html = (
        _env()
        .get_template("report.html.j2")
        .render(
            title=f"Change report: {run_name}",
            s=s,
            dates={"before": cap.date_text(d0), "after": cap.date_text(d1)},
            grid=run.grid,
            area_km2=run.grid.width * run.grid.height * run.grid.res[0] * run.grid.res[1] / 1e6,
            rows=_summary_rows(run),
            n_findings=n_findings,
            routes=s.get("routes"),
            sight=visibility_context(s),
            coreg=s.get("coregistration") or {},
            figures=figures,
            credit=credit,
            lim=_limitations(run),
            places_used=place_list is not None,
            missing_images=[k for k in ("before", "after") if k not in uris],
            payload=script_json(payload),
            css=_static("report.css"),
            js=_static("map.js"),
            version=__version__,
            generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        )
    )
    (stage / "report.html").write_text(html, encoding="utf-8")
