"""Findings against where the image is cut: a scene analysed whole and cropped (plain script).

An analyst who maps a district and later the city around it expects the district's barricades
and rubble not to change. For each simulated scene this cuts ``K`` pixels off the right and
bottom edges (``rK``: the 1024 px blocks stay where they were on the ground) or off the top and
left ones (``cK``: the blocks move ``K`` px), analyses the whole scene and each crop the same
way (footprints, roads, places, core; no DSMs) and scores both against the simulator's truth
inside the crop, 50 m in from its edges (objects whose centre lies there). Prints a Markdown
table of barricade and rubble F1, whole against crop, and how many crops changed a layer.

    python benchmarks/bench_crop.py [--seeds 1 2 3 4 5] [--cuts r300 r512 c300 c512]
        [--size-m 1000] [--osm ../shared/data/osm/helsinki.osm.pbf]

Without ``--osm`` it lays the cities on the Helsinki extract in ``../shared/data`` when there
(the development scenes of the barricade and rubble rules), else on the simulator's own plan.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import geopandas as gpd
import pyogrio
import rasterio
import shapely
from rasterio.windows import Window

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench-out" / "crop"
KINDS = ("barricades", "rubble")
#: Margin inside the crop's edges, metres: objects cut by the edge are not compared.
MARGIN_M = 50.0


def shared_data() -> Path:
    env = os.environ.get("FORTMAP_SHARED_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


def crop_scene(src: Path, dst: Path, cut: str) -> None:
    """Copy scene ``src`` to ``dst`` with its rasters cut: ``rK`` off the right and bottom,
    ``cK`` off the top and left (K pixels of the before image, the same ground off every
    raster; the DEM is copied whole)."""
    with rasterio.open(src / "before.tif") as d:
        cut_m = int(cut[1:]) * abs(d.transform.a)
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_dir():
            continue
        if f.suffix != ".tif" or f.name == "dem.tif":
            (dst / f.name).write_bytes(f.read_bytes())
            continue
        with rasterio.open(f) as d:
            kk = round(cut_m / abs(d.transform.a))
            off = 0 if cut[0] == "r" else kk
            w = Window(off, off, d.width - kk, d.height - kk)
            data, prof = d.read(window=w), d.profile
            prof.update(width=data.shape[2], height=data.shape[1], transform=d.window_transform(w))
        with rasterio.open(dst / f.name, "w", **prof) as o:
            o.write(data)


def analyse(scene: Path, out: Path) -> None:
    from fortmap.analysis import AnalyzeOptions, run_analysis

    run_analysis(
        scene / "before.tif", scene / "after.tif", out, force=True,
        buildings=scene / "buildings.geojson", roads=scene / "roads.geojson",
        places=scene / "places.geojson", core="Old City", options=AnalyzeOptions(report=False),
    )  # fmt: skip


def _inside(path: Path, layer: str, area: shapely.Geometry) -> list:
    if layer not in [name for name, _ in pyogrio.list_layers(path)]:
        return []
    g = gpd.read_file(path, layer=layer, engine="pyogrio")
    return [x for x in g.geometry if area.contains(x.centroid)]


def interior_f1(truth: Path, run: Path, area: shapely.Geometry, kind: str) -> tuple[float, int]:
    """(F1, findings) of ``kind`` inside ``area`` as ``fortmap score`` matches them."""
    from fortmap.evaluate.match import BARRICADE_DIST_M, RUBBLE_IOU, score_lines, score_polygons

    t = _inside(truth, kind, area)
    p = _inside(run / "findings.gpkg", kind, area)
    if not t and not p:
        return float("nan"), 0
    s = (
        score_lines(t, p, BARRICADE_DIST_M)
        if kind == "barricades"
        else score_polygons(t, p, RUBBLE_IOU)
    )
    return float(s["f1"]), len(p)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--cuts", nargs="+", default=["r300", "r512", "c300", "c512"])
    ap.add_argument("--size-m", type=float, default=1000)
    ap.add_argument("--osm", type=Path, default=None)
    args = ap.parse_args()
    from fortmap.simulate import simulate_city

    osm = args.osm
    if osm is None and (shared_data() / "osm" / "helsinki.osm.pbf").exists():
        osm = shared_data() / "osm" / "helsinki.osm.pbf"
    lines, changed, total = [], dict.fromkeys(KINDS, 0), 0
    for seed in args.seeds:
        tag = osm.name.split(".")[0] if osm else "plan"
        scene = OUT / f"{tag}_{seed}_{int(args.size_m)}"
        if not (scene / "after.tif").exists():
            simulate_city(scene, seed=seed, size_m=args.size_m, force=True, osm=osm)
        whole = scene.with_name(scene.name + "_run")
        analyse(scene, whole)
        for cut in args.cuts:
            crop = scene.with_name(f"{scene.name}_{cut}")
            crop_scene(scene, crop, cut)
            run = crop.with_name(crop.name + "_run")
            analyse(crop, run)
            with rasterio.open(crop / "before.tif") as d:
                area = shapely.box(*d.bounds).buffer(-MARGIN_M, join_style="mitre")
            cells = []
            for kind in KINDS:
                (fw, nw), (fc, nc) = (interior_f1(scene / "truth.gpkg", r, area, kind)
                                      for r in (whole, run))  # fmt: skip
                same = (fw == fc or fw != fw and fc != fc) and nw == nc
                changed[kind] += not same
                cells.append(f"{fw:.3f} ({nw}) | {fc:.3f} ({nc})")
            total += 1
            lines.append(f"| {seed} | {cut} | " + " | ".join(cells) + " |")
            print(f"done seed {seed} {cut}", file=sys.stderr)
    print(f"\nFindings inside each crop ({MARGIN_M:.0f} m in), F1 (findings), whole | crop\n")
    print("| seed | cut | barricades, whole | barricades, crop | rubble, whole | rubble, crop |")
    print("|---|---|---|---|---|---|")
    print("\n".join(lines))
    print(
        "\ncrops that changed the F1 or the count inside: "
        + ", ".join(f"{k} {changed[k]} of {total}" for k in KINDS)
    )


if __name__ == "__main__":
    main()
