import json
from pathlib import Path

from fortmap.report.html import write_report
from fortmap.report.sight import visibility_context
from test_report import make_run

SECTORS = [
    {"sector": "N", "azimuth_deg": 0.0, "farthest_before_m": 350.0, "farthest_after_m": 720.4},
    {"sector": "E", "azimuth_deg": 90.0, "farthest_before_m": 400.0, "farthest_after_m": 400.0},
]


def _vis(**kw) -> dict:
    v = {
        "gain_km2": 0.0807, "seen_before_km2": 1.2, "seen_after_km2": 1.2807,
        "newly_seen_km2": 0.1, "no_longer_seen_km2": 0.0193, "max_distance_m": 2000.0,
        "observer_height_m": 2.0, "target_height_m": 1.5, "spacing_m": 50.0,
        "open_ground_km2": {"500m": {"before": 0.2, "after": 0.25}},
        "sectors": SECTORS, "edge_source": "core", "surface_from": "DSMs",
    }  # fmt: skip
    v.update(kw)
    return v


def test_no_visibility_block_gives_nothing() -> None:
    assert visibility_context({}) is None
    assert visibility_context({"visibility": {"skipped": "no surface"}}) is None


def test_dsm_run_has_no_interval_and_sector_changes() -> None:
    c = visibility_context({"visibility": _vis()})
    assert c["headline"] == "+0.081 km²"
    assert "DSMs" in c["caveat"]
    assert [r["delta"] for r in c["sectors"]] == ["+370", "+0"]
    assert any("within 500 m" in line for line in c["lines"])


def test_dem_run_states_the_interval_and_what_it_covers() -> None:
    v = _vis(
        surface_from="DEM plus footprints", gain_km2_low=-0.01, gain_km2_high=0.095,
        gain_interval={"method": "...", "dem_accuracy_m": 1.2},
    )  # fmt: skip
    c = visibility_context({"visibility": v})
    assert c["headline"] == "+0.081 km² (-0.010 to +0.095)"
    assert any("1.2 m RMSE" in line and "DEM's error only" in line for line in c["lines"])
    assert "estimate" in c["caveat"]


def test_report_shows_the_visibility_section(tmp_path: Path) -> None:
    run = make_run(tmp_path / "scene")
    s = json.loads((run / "summary.json").read_text())
    html = write_report(run).read_text()
    assert 'id="visibility"' not in html  # no visibility in this run: no section
    s["visibility"] = _vis()
    (run / "summary.json").write_text(json.dumps(s))
    html = write_report(run).read_text()
    assert 'id="visibility"' in html and "+0.081 km²" in html and "720" in html
