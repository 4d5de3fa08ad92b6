"""Presentation mode (``?present=1``) in a real browser, at a projector's 1280x720 and 1920x1080.

The app runs on the bundled demo (a workspace not yet made), every non-local
request blocked. The presented link must be drawn highlighted within the
window (not below the fold), its two companies labelled; the buttons must be
right at the title, the first, second and last links and the summary; the
arrow keys and a clicker's PageUp/PageDown must step through the links from
the page and from inside the map; a click on a link must present it.
Shares the server start-up and browser of tests/test_browser.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from layers.assets import vendored
from layers.present import PRESENTED_CLASS

playwright = pytest.importorskip("playwright.sync_api")
from tests.test_browser import CHROMIUM, SHOTS, _LINK_MIDDLES, _SITES, _map_frame, _start_app, browser  # noqa: E402, F401

pytestmark = pytest.mark.skipif(not (Path(CHROMIUM).exists() and vendored()),
                                reason="needs Debian's chromium and the vendored map assets (make test installs them)")

#: Links stepped through (app_pages.map.TOP_STEPS): the demo has more than this many.
STEPS = 20


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workspace = tmp_path_factory.mktemp("present") / "workspace.gpkg"  # not there: the app shows the demo
    yield from _start_app({"SYMBIOSIS_WORKSPACE": str(workspace)})


def _screen(browser, width: int, height: int):
    context = browser.new_context(viewport={"width": width, "height": height})
    outside = []

    def only_local(route):
        url = route.request.url
        if url.startswith(("http://127.0.0.1", "http://localhost", "data:", "blob:", "about:")):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    page.outside_requests = outside
    return context, page


@pytest.fixture
def projector(browser):
    context, page = _screen(browser, 1280, 720)
    yield page
    context.close()


def _heading(page, text: str) -> None:
    page.get_by_role("heading", name=re.compile(text)).wait_for(timeout=30_000)


def _map_of(page):
    return next(f for f in page.frames if "streamlit_folium" in f.url)


def _presented(page) -> dict:
    """The presented link's line and labels, in the page's pixels, once drawn and fitted."""
    frame = page.frame_locator("iframe[title='streamlit_folium.st_folium']")
    line = frame.locator(f"path.{PRESENTED_CLASS}")
    line.wait_for(state="visible", timeout=30_000)
    page.wait_for_timeout(400)  # the second fit, once the frame has its size
    labels = frame.locator(".sym-label")
    return {"line": line.bounding_box(), "stroke": line.get_attribute("stroke"),
            "labels": [labels.nth(i).inner_text() for i in range(labels.count())],
            "label_boxes": [labels.nth(i).bounding_box() for i in range(labels.count())],
            "map": frame.locator(".leaflet-container").bounding_box()}


def _inside(box: dict, outer: dict, margin: float = 1.0) -> bool:
    return (outer["x"] - margin <= box["x"] and box["x"] + box["width"] <= outer["x"] + outer["width"] + margin
            and outer["y"] - margin <= box["y"] and box["y"] + box["height"] <= outer["y"] + outer["height"] + margin)


@pytest.mark.parametrize(("width", "height", "theme"), [(1280, 720, "bright"), (1920, 1080, "dark")])
def test_the_presented_link_is_fitted_highlighted_and_labelled_in_the_window(server, browser, width, height, theme):
    context, page = _screen(browser, width, height)
    try:
        page.goto(f"{server}/?present=1&theme={theme}")
        _map_frame(page)
        for step in (1, 2):
            _heading(page, f"Link {step} of {STEPS}")
            shown = _presented(page)
            window = {"x": 0, "y": 0, "width": width, "height": height}
            assert _inside(shown["map"], window, margin=2)  # the whole map on screen, nothing below the fold
            assert _inside(shown["line"], shown["map"]) and shown["line"]["width"] + shown["line"]["height"] > 40
            assert shown["stroke"] not in {"#fde725", "#5ec962", "#21918c", "#3b528b", "#440154"}  # no score's colour
            names = page.locator("[data-testid='stMarkdownContainer'] strong").all_inner_texts()[:2]
            assert [label.split("\n", 1)[-1].strip() for label in shown["labels"]] == names
            assert all(_inside(box, shown["map"]) for box in shown["label_boxes"])
            page.screenshot(path=str(SHOTS / f"present_{width}x{height}_{step}.png"))
            if step == 1:
                page.get_by_role("button", name="Next").click()
        sea = _map_of(page).evaluate("() => getComputedStyle(map_div.getContainer()).backgroundColor")
        assert (sea == "rgb(15, 27, 39)") == (theme == "dark")
        assert all("tile.openstreetmap.org" in u for u in page.outside_requests), page.outside_requests[:5]
    finally:
        context.close()


def test_the_buttons_are_right_at_every_step(server, projector):
    page = projector
    SHOTS.mkdir(exist_ok=True)
    page.goto(f"{server}/?present=1&step=0")
    _map_frame(page)
    previous, following = page.get_by_role("button", name="Previous"), page.get_by_role("button", name="Next")
    _heading(page, "Industrial symbiosis opportunities")
    page.get_by_text(f"The best {STEPS} of").wait_for(timeout=30_000)
    page.screenshot(path=str(SHOTS / "present_title.png"))
    assert previous.is_disabled() and following.is_enabled()
    following.click()
    _heading(page, f"Link 1 of {STEPS}")
    assert previous.is_enabled() and following.is_enabled()
    following.click()
    _heading(page, f"Link 2 of {STEPS}")  # before, Previous stayed disabled here: the buttons lagged one step
    assert previous.is_enabled() and following.is_enabled()
    assert "step=2" in page.url
    page.goto(f"{server}/?present=1&step={STEPS}")
    _heading(page, f"Link {STEPS} of {STEPS}")
    assert previous.is_enabled() and following.is_enabled()  # on to the summary
    following.click()
    _heading(page, "Summary")
    page.get_by_text("Together:").wait_for(timeout=30_000)
    page.screenshot(path=str(SHOTS / "present_summary.png"))
    assert previous.is_enabled() and following.is_disabled()
    previous.click()
    _heading(page, f"Link {STEPS} of {STEPS}")


def test_keys_and_a_clicker_step_through_the_links(server, projector):
    page = projector
    page.goto(f"{server}/?present=1")
    _map_frame(page)
    _heading(page, f"Link 1 of {STEPS}")
    _presented(page)
    for key, step in (("ArrowRight", 2), ("PageDown", 3), ("PageUp", 2), ("ArrowLeft", 1), ("ArrowDown", 2)):
        page.keyboard.press(key)
        _heading(page, f"Link {step} of {STEPS}")
    # with the focus inside the map (a click on it), the keys still step, and do not pan the map
    frame = page.frame_locator("iframe[title='streamlit_folium.st_folium']")
    frame.locator(".leaflet-container").focus()
    frame.locator(".leaflet-container").press("PageDown")
    _heading(page, f"Link 3 of {STEPS}")
    _presented(page)
    frame.locator(".leaflet-container").press("ArrowLeft")
    _heading(page, f"Link 2 of {STEPS}")


def test_a_click_on_a_link_presents_it(server, projector):
    page = projector
    page.goto(f"{server}/?present=1&step=0")  # the title: every presented link in view
    _map_frame(page)
    _heading(page, "Industrial symbiosis opportunities")
    page.wait_for_timeout(800)
    map_frame = _map_of(page)
    box = page.locator("iframe[title='streamlit_folium.st_folium']").bounding_box()
    legend = page.frame_locator("iframe[title='streamlit_folium.st_folium']").locator(".sym-legend").bounding_box()
    links = map_frame.evaluate(_LINK_MIDDLES)
    sites = [{"x": x, "y": y} for x, y in map_frame.evaluate(_SITES)]
    free = [li for li in links
            if 30 < li["x"] < box["width"] - 30 and 30 < li["y"] < legend["y"] - box["y"] - 10 and li["rank"] > 1]
    # a link whose middle lies clear of every other link and facility, so that the click is on it alone
    link = next(li for li in sorted(free, key=lambda li: li["rank"])
                if all(abs(li["x"] - o["x"]) + abs(li["y"] - o["y"]) > 14 for o in links + sites if o is not li))
    page.mouse.click(box["x"] + link["x"], box["y"] + link["y"])
    expected = f"Link {link['rank']} of {STEPS}" if link["rank"] <= STEPS else rf"Link #{link['rank']} \(beyond"
    _heading(page, expected)
    shown = _presented(page)
    assert _inside(shown["line"], shown["map"])
