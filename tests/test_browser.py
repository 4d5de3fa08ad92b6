"""End to end in a real headless Chromium (Debian's), every non-local request blocked.

The app runs as ``streamlit run app.py`` on a free local port with its own
workspace; Playwright drives ``/usr/bin/chromium`` (no browser download).
Screenshots go to tests/screenshots/ (git-ignored). Skipped when chromium or
the vendored map assets are missing (``make test`` installs both).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from geo.dataset import load_dataset
from geo.workspace import FACILITY_FIELDS, FLOW_FIELDS, Workspace
from layers.assets import vendored
from layers.routes import ROUTE_COLOUR

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
SHOTS = ROOT / "tests" / "screenshots"
HOSTILE = "<img src=x onerror=alert(1)>"
HOSTILE_SCRIPT = "<script>alert(2)</script>Mill"

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not (Path(CHROMIUM).exists() and vendored()),
                                reason="needs Debian's chromium and the vendored map assets (make test installs them)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _hostile_workspace(path: Path) -> None:
    """The demo plus two facilities whose names are script, next to a real mill so they get links."""
    demo = load_dataset(ROOT / "data" / "demo" / "facilities.csv", ROOT / "data" / "demo" / "flows.csv")
    fac = demo.facilities.reindex(columns=FACILITY_FIELDS)
    flows = demo.flows.reindex(columns=FLOW_FIELDS)
    extra = pd.DataFrame([
        {"facility_id": "EVIL-1", "name": HOSTILE, "lat": 61.47, "lon": 23.70, "nace": "D35.30", "country": "FI",
         "cluster": HOSTILE_SCRIPT, "source": "test"},
        {"facility_id": "EVIL-2", "name": HOSTILE_SCRIPT, "lat": 61.48, "lon": 23.72, "nace": "C10.89", "country": "FI",
         "cluster": "Tampere", "source": "test"},
    ])
    extra_flows = pd.DataFrame([
        {"facility_id": "EVIL-1", "direction": "supply", "resource": "heat.hot_water", "quantity": 50000,
         "unit": "MWh/yr", "description": HOSTILE, "confidential": "false"},
        {"facility_id": "EVIL-2", "direction": "demand", "resource": "heat.hot_water", "quantity": 20000,
         "unit": "MWh/yr", "description": HOSTILE_SCRIPT, "confidential": "false"},
    ])
    Workspace(path).save(pd.concat([fac, extra], ignore_index=True), pd.concat([flows, extra_flows], ignore_index=True))


def _start_app(env: dict[str, str]):
    """``streamlit run app.py`` on a free port with these environment variables; yields its URL."""
    port = _free_port()
    # the server's log goes to a file, never a pipe: a pipe nobody reads fills up and then stops the server
    log = tempfile.NamedTemporaryFile(prefix="symbiosis-app-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
            break
        except OSError:
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail("the app did not start: " + Path(log.name).read_text(errors="replace")[-2000:])
    try:
        yield url
    finally:  # also when the generator is closed early
        process.terminate()
        process.wait(timeout=20)
        log.close()
        Path(log.name).unlink(missing_ok=True)


#: What a page may load: the app's server and the browser's own kinds of address; anything else is blocked.
_LOCAL = ("http://127.0.0.1", "http://localhost", "data:", "blob:", "file:", "about:")
#: How long a new app server may take to draw its first map (imports, the first match, a road network read),
#: on a loaded machine. Waited once, by _warm_up, so that the tests' own waits start on a warm server.
WARM_UP_MS = 240_000


def _warm_up(browser, url: str, *, text: str | None = None) -> None:
    """Open the app in a throw-away session and wait for its map (and this text), then close it.

    A server's first session does what later ones find cached; under load that alone can take longer than
    a test's waits for what it checks.
    """
    context = browser.new_context(viewport={"width": 1400, "height": 950})
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(_LOCAL) else route.abort())
    page = context.new_page()
    page.goto(url)
    page.frame_locator("iframe[title='streamlit_folium.st_folium']").locator("path.leaflet-interactive").first \
        .wait_for(state="attached", timeout=WARM_UP_MS)
    if text is not None:
        page.get_by_text(text).first.wait_for(timeout=WARM_UP_MS)
    context.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory, browser):
    workspace = tmp_path_factory.mktemp("app") / "workspace.gpkg"
    _hostile_workspace(workspace)
    with contextlib.closing(_start_app({"SYMBIOSIS_WORKSPACE": str(workspace)})) as app:
        url = next(app)
        _warm_up(browser, url)
        yield url


@pytest.fixture(scope="module")
def road_server(tmp_path_factory, browser):
    """Two sites in central Kotka and pyrosm's bundled Kotka extract as the road network."""
    pyrosm = pytest.importorskip("pyrosm")
    from tests.test_app import _kotka_workspace

    workspace = Workspace(tmp_path_factory.mktemp("roads") / "workspace.gpkg")
    _kotka_workspace(workspace)
    env = {"SYMBIOSIS_WORKSPACE": str(workspace.path), "SYMBIOSIS_NETWORK": pyrosm.get_data("test_pbf")}
    with contextlib.closing(_start_app(env)) as app:
        url = next(app)
        _warm_up(browser, url, text="Road distances from test.osm.pbf")
        yield url


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 950}, accept_downloads=True)
    page = context.new_page()
    page.outside_requests = []
    page.dialogs = []

    def only_local(route):
        url = route.request.url
        if url.startswith(_LOCAL):
            route.continue_()
        else:
            page.outside_requests.append(url)
            route.abort()

    context.route("**/*", only_local)
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    yield page
    context.close()


def _map_frame(page):
    """The st_folium iframe, once Leaflet has drawn the facilities."""
    page.wait_for_selector("iframe[title='streamlit_folium.st_folium']", timeout=60_000)
    frame = page.frame_locator("iframe[title='streamlit_folium.st_folium']")
    frame.locator("path.leaflet-interactive").first.wait_for(state="attached", timeout=60_000)
    return frame


def _shot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def _settled_box(page, locator, *, timeout_ms: int = 10_000) -> dict:
    """The element's box once it stops moving: a search or filter flies the map to what it selects, and a
    click made during the flight lands where the marker was."""
    box, waited = locator.bounding_box(), 0
    while waited < timeout_ms:
        page.wait_for_timeout(250)
        waited += 250
        now = locator.bounding_box()
        if now == box:
            return now
        box = now
    return box


def _click_marker(page, frame, fill: str) -> None:
    """Click a circle marker of this fill colour at its centre, as a user would."""
    marker = frame.locator(f"path.leaflet-interactive[fill='{fill}']").first
    box = _settled_box(page, marker)
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def test_the_map_renders_offline_and_a_click_opens_the_panel(server, page):
    page.goto(server)
    frame = _map_frame(page)
    assert frame.locator("path.leaflet-interactive").count() > 100  # facilities and links
    # the land layer, without tiles
    frame.locator(".leaflet-land-pane canvas").first.wait_for(state="attached", timeout=30_000)
    page.get_by_text("Minimum score").wait_for(timeout=30_000)  # the filters follow the drawn map by themselves
    _shot(page, "map")
    # the hostile supplier alone: clicking it opens its panel, its name shown as text
    page.goto(f"{server}/?q=EVIL")
    frame = _map_frame(page)
    _click_marker(page, frame, "#E69F00")
    page.get_by_text("Ranked partners").wait_for(timeout=30_000)
    _shot(page, "panel")
    assert page.locator("img[src='x']").count() == 0 and frame.locator("img[src='x']").count() == 0
    assert page.dialogs == []
    assert all("tile.openstreetmap.org" in u for u in page.outside_requests), page.outside_requests[:5]


def test_reach_circles_are_drawn_under_the_data_and_take_no_clicks(server, page):
    page.goto(f"{server}/?reach=1&group=heat")
    frame = _map_frame(page)
    circles = frame.locator(".leaflet-overlay-pane path[stroke-dasharray='4 4']")
    circles.first.wait_for(state="attached", timeout=30_000)
    assert circles.count() > 10
    assert frame.locator(".leaflet-overlay-pane path.leaflet-interactive[stroke-dasharray='4 4']").count() == 0
    page.get_by_text("Reach of supplies").first.wait_for(timeout=30_000)  # the toggle, on


def test_hostile_names_run_no_script_in_the_app(server, page):
    page.goto(f"{server}/?q=EVIL")
    frame = _map_frame(page)
    for marker in frame.locator("path.leaflet-interactive").all()[:30]:
        marker.hover(force=True)
        marker.click(force=True)
    page.wait_for_timeout(1500)
    assert page.dialogs == []
    assert frame.locator("img[src='x']").count() == 0
    # no <script> element made from the name (Playwright's :text() never matches a script, so ask the DOM)
    map_frame = next(f for f in page.frames if "streamlit_folium" in f.url)
    assert not map_frame.evaluate("[...document.querySelectorAll('script')].some(s => s.textContent.trim() === 'alert(2)')")
    page.goto(f"{server}/shortlist?q=EVIL")
    page.get_by_text("Shortlist").first.wait_for()
    page.wait_for_timeout(2000)
    assert page.dialogs == []


def test_shortlist_csv_downloads_the_filtered_rows(server, page):
    page.goto(f"{server}/shortlist?country=EE")
    page.get_by_text("links match the filters").wait_for(timeout=60_000)
    caption = page.get_by_text("links match the filters").inner_text()
    expected = int(caption.split()[0])
    with page.expect_download() as info:
        page.get_by_role("button", name="CSV", exact=True).click()
    data = Path(info.value.path()).read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM, for Excel
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert len(rows) == expected > 0
    assert all("EE" in (r["supply_country"], r["demand_country"]) for r in rows)


def test_html_export_is_self_contained_and_safe(server, page, tmp_path):
    page.goto(f"{server}/shortlist?q=EVIL")
    page.get_by_text("links match the filters").wait_for(timeout=60_000)
    with page.expect_download() as info:
        page.get_by_role("button", name="HTML map (works offline)", exact=True).click()
    exported = tmp_path / "shortlist.html"
    shutil.copy(info.value.path(), exported)
    text = exported.read_text(encoding="utf-8")
    assert "<script src=" not in text and "cdn.jsdelivr" not in text
    page.goto(exported.as_uri())
    page.locator("path.leaflet-interactive").first.wait_for(state="attached", timeout=30_000)
    for marker in page.locator("path.leaflet-interactive").all():
        marker.hover(force=True)
    page.wait_for_timeout(500)
    _shot(page, "export")
    assert page.dialogs == []
    assert all("tile.openstreetmap.org" in u for u in page.outside_requests)


def _view_of(page) -> tuple[float, float, int]:
    map_frame = next(f for f in page.frames if "streamlit_folium" in f.url)
    view = map_frame.evaluate("(() => { const c = map_div.getCenter(); return [c.lat, c.lng, map_div.getZoom()]; })()")
    return view[0], view[1], view[2]


def _query(url: str) -> dict[str, list[str]]:
    from urllib.parse import parse_qs, urlparse
    return parse_qs(urlparse(url).query)


def test_the_map_view_lives_in_the_url(server, page):
    page.goto(f"{server}/?country=FI")
    frame = _map_frame(page)
    box = frame.locator(".leaflet-container").first.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x - 180, y + 120, steps=8)
    page.mouse.up()
    page.mouse.wheel(0, -300)  # zoom in
    page.wait_for_function("() => new URLSearchParams(location.search).has('lat')", timeout=10_000)
    page.wait_for_timeout(800)
    lat, lon, zoom = _view_of(page)
    query = _query(page.url)
    assert abs(float(query["lat"][0]) - lat) < 1e-3 and abs(float(query["lon"][0]) - lon) < 1e-3
    assert int(query["zoom"][0]) == zoom and query["country"] == ["FI"]
    # a search moves the map to what it selects, and the URL follows the map
    page.get_by_label("Find a facility").fill("Tampere")
    page.get_by_label("Find a facility").press("Enter")
    page.wait_for_function("() => new URLSearchParams(location.search).get('q') === 'Tampere'", timeout=30_000)
    map_frame = next(f for f in page.frames if "streamlit_folium" in f.url)
    map_frame.wait_for_function(f"() => Math.abs(map_div.getCenter().lat - {lat}) > 0.01", timeout=30_000)
    page.wait_for_timeout(800)
    lat, lon, zoom = _view_of(page)
    assert map_frame.evaluate("""() => { const view = map_div.getBounds(); let inside = 0, all = 0;
        map_div.eachLayer(l => { if (l.feature && l.feature.properties.facility_id !== undefined) {
            all += 1; inside += view.contains(l.getLatLng()) ? 1 : 0; } });
        return all > 0 && inside === all; }""")  # every facility the search keeps is in view
    page.wait_for_function(f"() => new URLSearchParams(location.search).get('zoom') === '{zoom}'", timeout=10_000)
    query = _query(page.url)
    assert abs(float(query["lat"][0]) - lat) < 1e-3 and abs(float(query["lon"][0]) - lon) < 1e-3
    # the copied URL opens the same view
    copied = page.url
    other = page.context.new_page()
    other.goto(copied)
    _map_frame(other)
    other.wait_for_timeout(500)
    lat2, lon2, zoom2 = _view_of(other)
    degrees_per_pixel = 360 / (256 * 2 ** zoom)  # the frame may settle a scrollbar's width later: allow a few pixels
    assert zoom2 == zoom
    assert abs(lat2 - lat) < 8 * degrees_per_pixel and abs(lon2 - lon) < 8 * degrees_per_pixel
    other.close()


def test_clicking_a_link_draws_its_road_route(road_server, page):
    page.goto(road_server)
    frame = _map_frame(page)
    page.get_by_text("Road distances from test.osm.pbf").wait_for(timeout=60_000)
    line = frame.locator("path.leaflet-interactive:not([fill-opacity='0.9'])[fill='none']").first
    box = line.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.get_by_text("Road route").first.wait_for(timeout=30_000)
    route = frame.locator(f"path.leaflet-interactive[stroke='{ROUTE_COLOUR}']")
    route.first.wait_for(state="attached", timeout=30_000)
    _shot(page, "route")
    # the drawn route follows the roads: many more vertices than the straight link's two
    assert route.first.get_attribute("d").count("L") > 10
    # and the offline base map draws the network's roads, zoomed in as the map is on two sites in one town
    map_frame = next(f for f in page.frames if "streamlit_folium" in f.url)
    map_frame.wait_for_function("() => window.__symbiosisOffline && window.__symbiosisOffline.roads", timeout=30_000)
    roads = map_frame.evaluate("() => map_div.hasLayer(__symbiosisOffline.roads) && __symbiosisOffline.roads.getLayers().length")
    assert roads > 100


#: Browser script: every link drawn, with the point halfway along its line (a vertex of an arc) and points a
#: third and two thirds of the way, in the map's pixels; and every facility's point.
_LINK_MIDDLES = """() => {
    const out = [];
    map_div.eachLayer(l => {
        if (!l.feature || l.feature.properties.rank === undefined || !l.getLatLngs) { return; }
        const points = l.getLatLngs(), last = points.length - 1;
        const along = t => points.length > 2 ? points[Math.round(t * last)]
            : L.latLng(points[0].lat + t * (points[1].lat - points[0].lat),
                       points[0].lng + t * (points[1].lng - points[0].lng));
        const [third, middle, twoThirds] = [1 / 3, 1 / 2, 2 / 3].map(t => map_div.latLngToContainerPoint(along(t)));
        out.push({rank: l.feature.properties.rank, title: l.feature.properties.link, x: middle.x, y: middle.y,
                  others: [[third.x, third.y], [twoThirds.x, twoThirds.y]],
                  ends: [points[0].lat, points[0].lng, points[last].lat, points[last].lng]});
    });
    return out;
}"""
_SITES = """() => { const out = []; map_div.eachLayer(l => {
    if (l.feature && l.feature.properties.facility_id !== undefined) {
        const at = map_div.latLngToContainerPoint(l.getLatLng()); out.push([at.x, at.y]); } });
    return out; }"""


def _clear_point(link: dict, sites: list) -> dict:
    """The point of a link's line (its middle, else a third or two thirds along) farthest from every facility."""
    points = [[link["x"], link["y"]], *link["others"]]
    def room(p):
        return min((abs(p[0] - s[0]) + abs(p[1] - s[1]) for s in sites), default=1e9)
    best = max(points, key=room)
    return {**link, "x": best[0], "y": best[1]}


def _map_box(page):
    return page.locator("iframe[title='streamlit_folium.st_folium']").bounding_box()


def _fold_legend(page) -> None:
    map_frame = next(f for f in page.frames if "streamlit_folium" in f.url)
    map_frame.evaluate("() => document.querySelectorAll('.sym-legend').forEach(d => { d.open = false; })")


def _hover(page, frame, box, link) -> tuple[str, dict]:
    """Hover a link halfway along its line; its tooltip's text and box."""
    page.mouse.move(box["x"] + link["x"], box["y"] + link["y"])
    tip = frame.locator(".leaflet-tooltip").last
    tip.wait_for(timeout=10_000)
    return tip.inner_text().strip(), tip.bounding_box()


def test_link_tooltips_wrap_and_stay_inside_the_map_and_sectors_have_their_colours(server, page):
    page.goto(f"{server}/?country=FI")
    frame = _map_frame(page)
    page.get_by_text("Minimum score").wait_for(timeout=30_000)
    page.wait_for_timeout(500)
    map_frame = next(f for f in page.frames if "streamlit_folium" in f.url)
    box = _map_box(page)
    width, height = box["width"], box["height"]
    links = [li for li in map_frame.evaluate(_LINK_MIDDLES) if 5 < li["x"] < width - 5 and 5 < li["y"] < height - 5]
    # the links nearest each edge first (where a tooltip would stick out), then the rest
    links.sort(key=lambda li: min(li["x"], width - li["x"], li["y"], height - li["y"]))
    hovered = 0
    for link in links[:16]:
        text, tip = _hover(page, frame, box, link)
        hovered += text.startswith("#")
        assert tip["width"] <= min(width, 340), text  # wrapped at a bounded width (it was 949 px in a 697 px map)
        assert box["x"] - 1 <= tip["x"] and tip["x"] + tip["width"] <= box["x"] + width + 1, text
        assert box["y"] - 1 <= tip["y"] and tip["y"] + tip["height"] <= box["y"] + height + 1, text
    assert hovered >= 8  # some middles lie under a facility, whose tooltip is checked the same way
    _shot(page, "tooltip")
    # the km scale is in the map and not under the legend
    scale = frame.locator(".leaflet-control-scale").bounding_box()
    legend = frame.locator(".sym-legend").bounding_box()
    assert scale["y"] >= legend["y"] + legend["height"] - 1 and scale["y"] + scale["height"] <= box["y"] + height
    # facilities are outlined by their sector: codes stored without the letter still find it
    strokes = frame.locator("path.leaflet-interactive[fill-opacity='0.9']").evaluate_all(
        "(paths) => paths.map(p => p.getAttribute('stroke'))")
    assert {"#333333", "#D55E00", "#009E73"} <= set(strokes)


def test_every_link_between_the_same_two_places_can_be_hovered(server, page):
    page.goto(server)
    frame = _map_frame(page)
    map_frame = next(f for f in page.frames if "streamlit_folium" in f.url)
    _fold_legend(page)
    groups: dict[tuple, list] = {}
    for link in map_frame.evaluate(_LINK_MIDDLES):
        ends = link["ends"]
        if (ends[0], ends[1]) != (ends[2], ends[3]):  # a link within one site has no line to hover
            groups.setdefault(tuple(sorted([(ends[0], ends[1]), (ends[2], ends[3])])), []).append(link["rank"])
    pair = max(groups.values(), key=len)
    assert len(pair) >= 3  # the demo has four links between two plants of Kalundborg, and more pairs like it
    map_frame.evaluate("""(ranks) => { const bounds = L.latLngBounds([]);
        map_div.eachLayer(l => {
            if (l.feature && ranks.includes(l.feature.properties.rank)) { bounds.extend(l.getBounds()); } });
        map_div.fitBounds(bounds, {padding: [120, 120], animate: false}); }""", pair)
    page.wait_for_timeout(500)
    box = _map_box(page)
    sites = map_frame.evaluate(_SITES)
    seen = []
    for link in [_clear_point(li, sites) for li in map_frame.evaluate(_LINK_MIDDLES) if li["rank"] in pair]:
        text, _ = _hover(page, frame, box, link)
        seen.append(text.split(":")[0])
        page.mouse.move(box["x"] + 5, box["y"] + box["height"] / 2)  # off the line, so the next tooltip is its own
        page.wait_for_timeout(150)
    _shot(page, "parallel")
    assert sorted(seen) == sorted(f"#{rank}" for rank in pair)


def test_the_offline_base_map_shows_lakes_towns_and_coast_when_zoomed_in(server, page):
    page.goto(f"{server}/?lat=61.4991&lon=23.7871&zoom=13")  # Tampere, between two lakes: once blank beige
    _map_frame(page)
    map_frame = next(f for f in page.frames if "streamlit_folium" in f.url)
    map_frame.wait_for_function("() => window.__symbiosisOffline && __symbiosisOffline.land && __symbiosisOffline.lakes"
                                " && __symbiosisOffline.towns", timeout=60_000)
    counts = map_frame.evaluate("""() => { const view = map_div.getBounds(), o = __symbiosisOffline;
        const inView = g => g.getLayers().filter(l => view.intersects(l.getBounds())).length;
        return {land: inView(o.land), lakes: inView(o.lakes), lakesLoaded: o.lakes.getLayers().length,
                towns: o.towns.features}; }""")
    assert counts["land"] >= 1 and counts["lakes"] >= 1 and counts["towns"] > 5_000, counts
    map_frame.wait_for_function("() => [...document.querySelectorAll('.sym-town')].some(t => t.textContent === 'Tampere')",
                                timeout=10_000)
    _shot(page, "offline_zoom13")
    assert all("tile.openstreetmap.org" in u for u in page.outside_requests), page.outside_requests[:5]
