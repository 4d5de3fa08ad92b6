"""The map in Finnish and in Swedish in a real browser (``?lang=fi``, ``?lang=sv``), every non-local request blocked.

One page per language on one app server: the page's title and caption, the map's legend and layer names,
a facility's tooltip (with its location precision) and the sidebar's filters are in the language, and the
address keeps ``lang`` as the filters change. Screenshots: tests/screenshots/map_fi.png and map_sv.png.
Shares the server start-up and browser of tests/test_browser.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from layers.assets import vendored

playwright = pytest.importorskip("playwright.sync_api")
from layers.facilities import ROLE_COLOURS  # noqa: E402
from tests.test_browser import CHROMIUM, _map_frame, _shot, _start_app, browser  # noqa: E402, F401

pytestmark = pytest.mark.skipif(not (Path(CHROMIUM).exists() and vendored()),
                                reason="needs Debian's chromium and the vendored map assets (make test installs them)")

#: What each language must show: the page title, words of the caption, the legend's heading and its first
#: term, the links layer's name, the tooltip's location row, and the sidebar's filter heading and search label.
EXPECTED = {
    "fi": {"title": "Teollisen symbioosin mahdollisuudet", "caption": "linkkiehdokasta", "legend": "Selite",
           "line": "Viiva", "layer": "Linkkiehdokkaat", "location": "Sijainti", "site": "toimipaikka",
           "filters": "Suodattimet", "search": "Etsi laitos"},
    "sv": {"title": "Möjligheter till industriell symbios", "caption": "kandidatlänkar visas",
           "legend": "Teckenförklaring", "line": "En linje", "layer": "Kandidatlänkar", "location": "Läge",
           "site": "anläggningsplats", "filters": "Filter", "search": "Sök en anläggning"},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workspace = tmp_path_factory.mktemp("i18n") / "workspace.gpkg"  # not there: the app shows the demo
    yield from _start_app({"SYMBIOSIS_WORKSPACE": str(workspace)})


@pytest.mark.parametrize("lang", ["fi", "sv"])
def test_the_map_speaks_finnish_and_swedish(server, browser, lang):
    words = EXPECTED[lang]
    context = browser.new_context(viewport={"width": 1400, "height": 950})
    outside = []

    def only_local(route):
        if route.request.url.startswith(("http://127.0.0.1", "http://localhost", "data:", "blob:", "about:")):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    try:
        page.goto(f"{server}/?lang={lang}")
        frame = _map_frame(page)
        page.get_by_role("heading", name=words["title"]).wait_for(timeout=30_000)
        page.get_by_test_id("stMain").get_by_text(words["caption"], exact=False).first.wait_for(timeout=30_000)
        legend = frame.locator(".sym-legend")
        assert legend.locator("summary").inner_text().strip() == words["legend"]
        assert words["line"] in legend.inner_text()
        assert words["layer"] in frame.locator(".leaflet-control-layers").inner_text()
        # a supplier's tooltip: its role and how exact its point is, in the language
        marker = frame.locator(f"path.leaflet-interactive[fill='{ROLE_COLOURS['supplier']}']").first
        box = marker.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        tooltip = frame.locator(".leaflet-tooltip").first
        tooltip.wait_for(timeout=10_000)
        text = tooltip.inner_text()
        assert "Tarjoaja" in text if lang == "fi" else "Leverantör" in text
        assert words["location"] in text and words["site"] in text
        # the filters follow the map, in the language, and the address keeps it as they change
        page.get_by_text(words["filters"], exact=True).wait_for(timeout=30_000)
        search = page.get_by_label(words["search"])
        search.fill("Kemi")
        search.press("Enter")
        page.wait_for_url(lambda url: "q=Kemi" in url, timeout=30_000)
        assert f"lang={lang}" in page.url
        page.mouse.move(5, 5)  # the tooltip away, for the screenshot
        _shot(page, f"map_{lang}")
        assert all("tile.openstreetmap.org" in u for u in outside), outside[:5]
    finally:
        context.close()
