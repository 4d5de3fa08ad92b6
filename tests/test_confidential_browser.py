"""In a real browser: trying to re-identify a confidential company in the public views, and the
Shortlist's downloads arriving on every click.

The app runs on the demo plus a made-up smelter whose every flow is
confidential (a name, an id, a place and quantities found nowhere else) and a
public greenhouse that could take its heat. In the public views the test looks
for the smelter's name, id and operator, its place to 3 decimals (as text, or
as the 8-byte floats of a table sent to the browser) and its quantities in the
page's HTML and the map's, in every tooltip of a link, in the panels that
clicks open, in what the server sent over the websocket, and in every export.
The same search in the full view finds the smelter, so it would find a leak.

Then each export is downloaded 50 times from one page; each click must give a
file. Shares the server start-up and browser fixtures of tests/test_browser.py.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
import time
from pathlib import Path

import pandas as pd
import pytest

from geo.dataset import load_dataset
from geo.workspace import FACILITY_FIELDS, FLOW_FIELDS, Workspace
from layers.assets import vendored
from layers.links import APPROXIMATE_DASH
from tests.test_privacy import _leaks, _text_of

ROOT = Path(__file__).resolve().parent.parent
playwright = pytest.importorskip("playwright.sync_api")
from tests.test_browser import CHROMIUM, _map_frame, _start_app, browser, page  # noqa: E402, F401 - fixtures by name
from tests.test_browser import _warm_up  # noqa: E402

pytestmark = pytest.mark.skipif(not (Path(CHROMIUM).exists() and vendored()),
                                reason="needs Debian's chromium and the vendored map assets (make test installs them)")

SECRET = {"facility_id": "CONF-ZX-77", "name": "Zyxwv Confidential Smelting Oy", "lat": 65.8437, "lon": 24.3071,
          "nace": "C24.45", "country": "FI", "cluster": "Kemi-Tornio", "operator": "Zyxwv Holding Qwerty",
          "source": "test"}
SECRET_FLOWS = [
    {"facility_id": SECRET["facility_id"], "direction": "supply", "resource": "heat.hot_water", "quantity": 61873,
     "unit": "MWh/yr", "description": "Zyxwv furnace cooling water", "confidential": "true"},
    {"facility_id": SECRET["facility_id"], "direction": "supply", "resource": "mineral.slag", "quantity": 48317,
     "unit": "t/yr", "description": "Zyxwv slag", "confidential": "true"},
]
GREENHOUSE = {"facility_id": "PUB-GH-1", "name": "Lapland Test Greenhouse", "lat": 65.80, "lon": 24.40,
              "nace": "A01.13", "country": "FI", "cluster": "Kemi-Tornio", "source": "test"}
GREENHOUSE_FLOW = {"facility_id": "PUB-GH-1", "direction": "demand", "resource": "heat.hot_water", "quantity": 20000,
                   "unit": "MWh/yr", "description": "Greenhouse heat", "confidential": "false"}
SECRETS = {"names": [SECRET["name"], SECRET["facility_id"], SECRET["operator"], "Zyxwv"],
           "place": (SECRET["lon"], SECRET["lat"]), "quantities": [61873.0, 48317.0]}
#: Export buttons and the first bytes of their files.
EXPORTS = {"CSV": b"\xef\xbb\xbf", "Excel": b"PK\x03\x04", "GeoJSON": b"{", "GeoPackage (QGIS)": b"SQLite format 3\x00",
           "HTML map (works offline)": b"<!DOCTYPE html>"}
#: The exports clicked CLICKS times each (GeoJSON, built the same way, is clicked in the other tests).
CLICKED = ("CSV", "Excel", "GeoPackage (QGIS)", "HTML map (works offline)")
CLICKS = 50
#: Pause after each download: Chromium drops a page's 11th download within a second (chromedp/chromedp#791),
#: on any page (a static one too), so back-to-back clicks from a script lose one in eleven.
CLICK_PAUSE_MS = 100
#: Clicks made while the page reruns.
RERUN_CLICKS = 10


def _workspace(path: Path) -> None:
    demo = load_dataset(ROOT / "data" / "demo" / "facilities.csv", ROOT / "data" / "demo" / "flows.csv")
    facilities = pd.concat([demo.facilities.reindex(columns=FACILITY_FIELDS), pd.DataFrame([SECRET, GREENHOUSE])],
                           ignore_index=True)
    flows = pd.concat([demo.flows.reindex(columns=FLOW_FIELDS), pd.DataFrame([*SECRET_FLOWS, GREENHOUSE_FLOW])],
                      ignore_index=True)
    Workspace(path).save(facilities, flows)


@pytest.fixture(scope="module")
def server(tmp_path_factory, browser):
    workspace = tmp_path_factory.mktemp("confidential") / "workspace.gpkg"
    _workspace(workspace)
    with contextlib.closing(_start_app({"SYMBIOSIS_WORKSPACE": str(workspace)})) as app:
        url = next(app)
        _warm_up(browser, url)
        yield url


def _listen(page) -> list[bytes]:
    """Collect every websocket frame the server sends this page from now on (tables travel as Arrow bytes)."""
    frames: list[bytes] = []

    def on_socket(socket):
        socket.on("framereceived", lambda payload: frames.append(payload if isinstance(payload, bytes)
                                                                 else payload.encode()))

    page.on("websocket", on_socket)
    return frames


def _everything_shown(page) -> str:
    """The HTML of the page and of every frame in it (the map's GeoJSON, its tooltips' text), and their text."""
    parts = [page.content(), page.inner_text("body")]
    for frame in page.frames:
        try:
            parts.append(frame.content())
        except playwright.Error:  # a frame that went away meanwhile
            continue
    return "\n".join(parts)


def _sent(frames: list[bytes]) -> bytes:
    return b"".join(frames)


def _found(text: str, sent: bytes) -> list[str]:
    """What of the secret company the page shows or the server sent (its bytes, and their text: the map's
    GeoJSON and every string travel as UTF-8 inside the messages)."""
    text = text + "\n" + sent.decode("utf-8", errors="replace")
    found = _leaks(text, sent, SECRETS)
    if re.search(r"\d+ confidential flows?\b", text):  # a count of a facility's hidden flows
        found.append("a count of hidden flows")
    return found


def _dashed_links(frame):
    return frame.locator(f"path.leaflet-interactive[stroke-dasharray='{APPROXIMATE_DASH}']")


def _hidden_links(page, server: str, query: str, tmp_path: Path) -> list[dict[str, str]]:
    """The confidential rows of the view's CSV export: where the map draws them."""
    page.goto(f"{server}/shortlist{query}")
    page.get_by_text("links match the filters").wait_for(timeout=60_000)
    with page.expect_download() as info:
        page.get_by_role("button", name="CSV", exact=True).click()
    path = tmp_path / "view.csv"
    info.value.save_as(path)
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    return [r for r in rows if r["confidential"] == "True"]


def _hover_and_click(page, frame, line) -> list[str]:
    """Hover a link and click it at its middle, as a user would; the tooltip's and the panel's text."""
    box = line.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    tip = frame.locator(".leaflet-tooltip").first
    tip.wait_for(timeout=10_000)
    texts = [tip.inner_text()]
    page.mouse.click(x, y)
    page.get_by_text(re.compile(r"^Link #\d+$")).wait_for(timeout=30_000)
    page.wait_for_function("() => document.body.innerHTML.includes('approximate: grid cells of')", timeout=30_000)
    texts.append(page.inner_text("body") + "\n" + page.content())  # the panel's table is in a (hidden) grid
    return texts


@pytest.mark.parametrize("view", ["public", "screen"])
def test_the_confidential_company_cannot_be_found_in_a_public_view(server, page, view, tmp_path):
    frames = _listen(page)
    query = "" if view == "public" else "?view=screen"
    hidden = _hidden_links(page, server, query, tmp_path)
    assert hidden  # the smelter's heat for the greenhouse, drawn between grid cells
    seen = []
    for row in hidden:
        lat = (float(row["supply_lat"]) + float(row["demand_lat"])) / 2
        lon = (float(row["supply_lon"]) + float(row["demand_lon"])) / 2
        page.goto(f"{server}/{query}{'&' if query else '?'}lat={lat:.4f}&lon={lon:.4f}&zoom=10")
        frame = _map_frame(page)
        page.get_by_text("Minimum score").wait_for(timeout=30_000)
        dashed = _dashed_links(frame)
        dashed.first.wait_for(state="attached", timeout=30_000)
        texts = _hover_and_click(page, frame, dashed.first)
        assert "places approximate" in texts[0] and "approximate: grid cells of" in texts[1]
        seen += texts + [_everything_shown(page)]
    assert _found("\n".join(seen), _sent(frames)) == []
    # the greenhouse that could take the smelter's heat: its panel lists its own flow and no count of others
    if view == "public":
        page.goto(f"{server}/?q=Lapland+Test+Greenhouse")
        frame = _map_frame(page)
        marker = frame.locator("path.leaflet-interactive[fill='#0072B2']").first
        box = marker.bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.get_by_text("Ranked partners").wait_for(timeout=30_000)
        assert "Lapland Test Greenhouse" in page.inner_text("body")
        assert _found(_everything_shown(page), _sent(frames)) == []
    # searching for the company by name or id finds nothing (the search box then holds what was typed)
    for text in ("Zyxwv", SECRET["facility_id"]):
        page.goto(f"{server}/{query}{'&' if query else '?'}q={text}")
        page.get_by_text("0 facilities and 0 candidate links shown").wait_for(timeout=60_000)
        assert SECRET["name"] not in _everything_shown(page)


@pytest.mark.parametrize("view", ["public", "screen"])
def test_no_export_of_a_public_view_gives_the_confidential_company_away(server, page, view, tmp_path):
    page.goto(f"{server}/shortlist" + ("" if view == "public" else "?view=screen"))
    page.get_by_text("links match the filters").wait_for(timeout=60_000)
    for label in EXPORTS:
        button = page.get_by_role("button", name=label, exact=True)
        button.wait_for(timeout=60_000)
        with page.expect_download() as info:
            button.click()
        path = tmp_path / info.value.suggested_filename
        info.value.save_as(path)
        blob = path.read_bytes()
        assert _leaks(_text_of(path, blob), blob, SECRETS) == [], label


def test_the_same_search_finds_the_company_in_the_full_view(server, page, tmp_path):
    frames = _listen(page)
    page.goto(f"{server}/?view=full")
    _map_frame(page)
    page.get_by_text("Minimum score").wait_for(timeout=30_000)
    found = _found(_everything_shown(page), _sent(frames))
    assert {SECRET["name"], SECRET["facility_id"], "place as text"} <= set(found)
    page.goto(f"{server}/shortlist?view=full&q=Zyxwv")
    page.get_by_text("links match the filters").wait_for(timeout=60_000)
    with page.expect_download() as info:
        page.get_by_role("button", name="CSV", exact=True).click()
    path = tmp_path / "full.csv"
    info.value.save_as(path)
    blob = path.read_bytes()
    found = set(_leaks(_text_of(path, blob), blob, SECRETS))
    assert {SECRET["name"], "place as text", "quantity 61,873 as text"} <= found


def test_every_click_on_an_export_gives_its_file(server, page):
    page.goto(f"{server}/shortlist")
    page.get_by_text("links match the filters").wait_for(timeout=60_000)
    buttons = {label: page.get_by_role("button", name=label, exact=True) for label in CLICKED}
    for button in buttons.values():
        button.wait_for(timeout=60_000)
    started = time.perf_counter()
    received = {label: 0 for label in CLICKED}
    for _ in range(CLICKS):
        for label in CLICKED:
            with page.expect_download(timeout=15_000) as info:
                buttons[label].click()
            data = Path(info.value.path()).read_bytes()
            received[label] += data.startswith(EXPORTS[label]) and len(data) > 1000
            page.wait_for_timeout(CLICK_PAUSE_MS)
    seconds = time.perf_counter() - started
    print(f"{CLICKS} x {len(CLICKED)} downloads in {seconds:.1f} s")
    assert received == {label: CLICKS for label in CLICKED}


@pytest.mark.xfail(reason="regression of 2026-12-03 (commit 540612f, the languages): the tenth click, made as the "
                          "minimum score returns to 0, gets a download Chromium reports 'canceled'; the same "
                          "steps pass on ebcf110. Open in issue 15 until found; the 50 plain clicks of each export "
                          "above still pass", strict=False)
def test_a_click_while_the_page_reruns_still_gets_a_file(server, page):
    """The failure of deferred downloads: a click while the page runs again. Here the filter changes just
    before each click, so the click lands on the button of the run before (its file is kept a run longer)."""
    page.goto(f"{server}/shortlist")
    page.get_by_text("links match the filters").wait_for(timeout=60_000)
    slider = page.get_by_role("slider").first  # the minimum score: each step is a rerun with new exports
    for i in range(RERUN_CLICKS):
        slider.focus()
        slider.press("ArrowRight" if i < RERUN_CLICKS // 2 else "ArrowLeft")
        label = list(EXPORTS)[i % len(EXPORTS)]
        with page.expect_download(timeout=30_000) as info:
            page.get_by_role("button", name=label, exact=True).click()
        assert Path(info.value.path()).read_bytes().startswith(EXPORTS[label]), label
        page.wait_for_timeout(CLICK_PAUSE_MS)
