"""What the report says about lines of sight from the defended edge.

Reads the ``visibility`` block of ``summary.json`` (areas in km2 within the maximum distance,
distances in metres from the edge) and turns it into short sentences and a sector table.
"""

from __future__ import annotations

EDGE_TEXT = {
    "edge_file": "the defended edge given (--edge)",
    "core": "the boundary of the core",
    "fortification_ring": "the ring of barricades and berms found",
}


def _signed(x: float) -> str:
    return f"{x:+.3f}"


def visibility_context(summary: dict) -> dict | None:
    """Sentences and rows for the report's visibility section, or None when not computed.

    Args:
        summary: the run's ``summary.json`` as a dict.

    Returns:
        ``headline`` (km2 gained, with the interval when there is one), ``lines`` (sentences),
        ``sectors`` (rows of compass sector, farthest distance before and after in metres),
        ``caveat`` (what the surface was built from and what that means for the figure).

    Example:
        >>> v = {"gain_km2": 0.05, "seen_before_km2": 1.0, "seen_after_km2": 1.05,
        ...      "max_distance_m": 2000.0, "edge_source": "core", "surface_from": "DSMs"}
        >>> visibility_context({"visibility": v})["headline"]
        '+0.050 km²'
    """
    v = summary.get("visibility") or {}
    if "gain_km2" not in v:
        return None
    headline = f"{_signed(v['gain_km2'])} km²"
    lines = []
    edge = EDGE_TEXT.get(v.get("edge_source"), v.get("edge_source") or "the edge")
    lines.append(
        f"Ground seen from {edge}, within {v.get('max_distance_m', 0) / 1000:.1f} km: "
        f"{v.get('seen_before_km2', 0):.3f} km² before, {v.get('seen_after_km2', 0):.3f} km² after "
        f"(observers {v.get('observer_height_m', 2):g} m above the surface every "
        f"{v.get('spacing_m', 0):g} m, targets {v.get('target_height_m', 0):g} m tall)."
    )
    if "newly_seen_km2" in v:
        lines.append(
            f"Newly seen {v['newly_seen_km2']:.3f} km², no longer seen "
            f"{v.get('no_longer_seen_km2', 0):.3f} km²."
        )
    for d, og in (v.get("open_ground_km2") or {}).items():
        dist = f"{d[:-1]} m" if d.endswith("m") and d[:-1].isdigit() else d
        lines.append(
            f"Open ground seen within {dist} of the edge: {og['before']:.3f} km² before, "
            f"{og['after']:.3f} km² after."
        )
    if "gain_km2_low" in v:
        headline += f" ({_signed(v['gain_km2_low'])} to {_signed(v['gain_km2_high'])})"
        acc = (v.get("gain_interval") or {}).get("dem_accuracy_m")
        lines.append(
            f"The gain lies between {_signed(v['gain_km2_low'])} and "
            f"{_signed(v['gain_km2_high'])} km² (5th-95th percentile over DEMs perturbed by "
            f"their stated error{f', {acc:g} m RMSE' if acc is not None else ''}); "
            "this interval covers the DEM's error only."
        )
    surface = v.get("surface_from") or "unknown"
    if surface == "DSMs":
        caveat = "Surfaces: the DSMs given for each date."
    else:
        caveat = (
            f"Surfaces built from {surface}: footprints raised to their height, trees found in "
            "the images, the berms and razed buildings found. Small roof structures, walls and "
            "ground error are not in them, so the gain is an estimate: with a 1 m DEM error it "
            "can be off by tens of percent on a simulated city (BENCHMARKS.md)."
        )
    sectors = [
        {
            "sector": r["sector"],
            "before": f"{r['farthest_before_m']:.0f}",
            "after": f"{r['farthest_after_m']:.0f}",
            "delta": f"{r['farthest_after_m'] - r['farthest_before_m']:+.0f}",
        }
        for r in v.get("sectors", [])
    ]
    return {"headline": headline, "lines": lines, "sectors": sectors, "caveat": caveat}
