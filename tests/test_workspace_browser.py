"""Two people adding a facility at the same moment, each in a real browser (Debian's chromium): both are kept.

The app runs as ``streamlit run app.py`` (see tests/test_browser.py) on a GeoPackage workspace of its own;
two browser contexts are two sessions.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from geo.workspace import Workspace
from layers.assets import vendored
from tests.test_browser import CHROMIUM, _start_app

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not (Path(CHROMIUM).exists() and vendored()),
                                reason="needs Debian's chromium and the vendored map assets (make test installs them)")

SITES = pd.DataFrame([
    {"facility_id": "K-1", "name": "Harbour boiler", "lat": 60.5230, "lon": 26.9350, "nace": "D35.30",
     "country": "FI", "cluster": "Kotka", "source": "test"},
])


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app on a GeoPackage workspace holding one site; yields (url, workspace).

    The GeoPackage is where the edits used to be lost (a whole-file rewrite from each session's copy); the
    PostGIS back end runs the same concurrent adds in tests/test_workspace.py and the forms in
    tests/test_workspace_app.py.
    """
    location = str(tmp_path_factory.mktemp("together") / "workspace.gpkg")
    workspace = Workspace(location)
    workspace.create(SITES, pd.DataFrame())
    for url in _start_app({"SYMBIOSIS_WORKSPACE": location}):
        yield url, workspace


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def _session(browser, url: str):
    """A page of its own browser context (its own Streamlit session), on the Data page, local requests only."""
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("http://127.0.0.1")
                  else route.abort())
    page = context.new_page()
    page.goto(f"{url}/data")
    page.get_by_role("button", name="Add facility").wait_for(timeout=60_000)
    return page


def _type(page, label: str, text: str) -> None:
    page.get_by_label(label, exact=True).fill(text)


def _fill(page, fid: str, name: str, lat: str, lon: str) -> None:
    _type(page, "Id (unique)", fid)
    _type(page, "Name", name)
    _type(page, "Latitude", lat)
    _type(page, "Longitude", lon)
    _type(page, "Country (2 letters)", "FI")
    nace = page.get_by_label("NACE activity")  # the searchable list: type a code, take the match
    nace.click()
    page.keyboard.type("35.30")
    page.get_by_role("option", name="D35.30 Steam and air conditioning supply").click()


def test_two_sessions_adding_a_facility_at_the_same_moment_keep_both(served, browser):
    url, workspace = served
    anna, boris = _session(browser, url), _session(browser, url)
    _fill(anna, "A-1", "Anna's heat pump", "60.52", "26.94")
    _fill(boris, "B-1", "Boris's sawmill", "60.55", "26.90")
    anna.get_by_role("button", name="Add facility").click()  # both clicks at once, neither waiting
    boris.get_by_role("button", name="Add facility").click()
    for page, fid, name in ((anna, "A-1", "Anna's heat pump"), (boris, "B-1", "Boris's sawmill")):
        page.get_by_text(f"Saved: added facility '{fid}'").wait_for(timeout=60_000)
        # the flow form opens with this session's own new facility chosen, not the other one
        chosen = page.get_by_role("combobox", name="Facility", exact=True)
        playwright.expect(chosen).to_have_value(f"{fid} - {name}", timeout=30_000)
    stored = dict(zip(*workspace.read().facilities[["facility_id", "name"]].T.values))
    assert stored == {"K-1": "Harbour boiler", "A-1": "Anna's heat pump", "B-1": "Boris's sawmill"}
    actions = workspace.history()["action"].tolist()
    assert actions.count("add facility") == 2
    for page in (anna, boris):
        page.context.close()
