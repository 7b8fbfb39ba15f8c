"""report.html in headless Chromium with every network request blocked and counted.

Needs Debian's ``chromium`` (/usr/bin/chromium) and Playwright for Python (``pip install
playwright``; its own browser download is not used). Skips when either is absent.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from fortmap.report.html import write_report
from test_report import XSS, make_run

CHROMIUM = os.environ.get("FORTMAP_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture()
def page(tmp_path: Path):
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright not installed (pip install playwright)"
    )
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        pytest.skip(f"chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    with sync_api.sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # new, empty user data dir
            executable_path=CHROMIUM,
            args=ARGS,
            headless=True,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            yield ctx.new_page()
        finally:
            ctx.close()


def test_report_in_browser(tmp_path: Path, page) -> None:
    run = make_run(tmp_path / "scene")
    html = write_report(run, places=run.parent / "places.geojson", credit=XSS)
    url = html.resolve().as_uri()
    requests: list[str] = []
    errors: list[str] = []
    dialogs: list[str] = []

    def route(r) -> None:
        u = r.request.url
        if u.startswith(("data:", "about:")) or u == url:
            r.continue_()
        else:
            requests.append(u)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(url)
    page.wait_for_load_state("load")

    layers = page.eval_on_selector_all("#layers input", "els => els.map(e => e.dataset.layer)")
    assert layers == ["razed_buildings", "barricades"]
    for name in layers:
        box = page.locator(f'#layers input[data-layer="{name}"]')
        group = page.locator(f'g.layer[data-layer="{name}"]')
        assert group.evaluate("g => getComputedStyle(g).display") != "none"
        box.click()
        assert group.evaluate("g => getComputedStyle(g).display") == "none"
        box.click()
        assert group.evaluate("g => getComputedStyle(g).display") != "none"

    page.locator('g.layer[data-layer="razed_buildings"] .f').first.click(force=True)
    table = page.locator("#attr-table")
    assert "Razed buildings" in table.inner_text() and "razed_building" in table.inner_text()

    # image modes, swipe and zoom run without error
    page.locator('#image-mode input[value="swipe"]').check()
    page.locator("#swipe").fill("30")
    page.locator('#image-mode input[value="before"]').check()
    page.locator("#zoom-in").click()
    assert page.locator("#scalebar-text").inner_text().endswith("m")
    page.locator("#zoom-reset").click()

    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 10_000
    assert "alert(1)" in page.locator("footer").inner_text()  # the credit shows as text
    assert dialogs == [], dialogs
    assert errors == [], errors
    assert requests == [], requests
