"""The app's pages under Streamlit's AppTest: no exception, filters act, the URL restores a view."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from geo.workspace import Workspace

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TIMEOUT = 60


@pytest.fixture(autouse=True)
def workspace(tmp_path, monkeypatch):
    """Each test gets its own (empty) workspace, so it starts on the bundled demo."""
    path = tmp_path / "workspace.gpkg"
    monkeypatch.setenv("SYMBIOSIS_WORKSPACE", str(path))
    return Workspace(path)


def app(page: str = "map", **params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for name, value in params.items():
        at.query_params[name] = value
    if page != "map":
        at.switch_page(f"app_pages/{page}.py")
    return at.run()


def test_map_page_shows_the_demo():
    at = app()
    assert not at.exception
    assert "candidate links shown" in at.caption[0].value
    assert at.title[0].value == "Industrial symbiosis opportunities"


def test_filters_change_the_shortlist():
    at = app("shortlist")
    assert not at.exception
    before = len(at.dataframe[0].value)
    at.multiselect(key="f_country").select("EE").run()
    after = len(at.dataframe[0].value)
    assert 0 < after < before
    table = at.dataframe[0].value
    assert ((table["supply_country"] == "EE") | (table["demand_country"] == "EE")).all()
    assert at.query_params["country"] in ("EE", ["EE"])


def test_query_parameters_restore_a_view():
    at = app("shortlist", country="FI", min_score="80")
    assert not at.exception
    table = at.dataframe[0].value
    assert len(table) and (table["score"] >= 80).all()
    assert at.multiselect(key="f_country").value == ["FI"]
    assert at.slider(key="f_min_score").value == 80.0


def test_public_screen_hides_names_and_quantities():
    at = app("shortlist", view="screen")
    table = at.dataframe[0].value
    assert table["supply_name"].str.contains(r"\(NACE ", regex=True).all()
    assert table["quantity"].isna().all() and (table["quantity_range"] != "").all()


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def fill_facility(at: AppTest, **values) -> None:
    labels = {"facility_id": "Id (unique)", "name": "Name", "nace": "NACE code", "country": "Country (2 letters)",
              "cluster": "Cluster"}
    for name, value in values.items():
        next(t for t in at.text_input if t.label == labels[name]).input(value)


def test_data_page_adds_a_facility_and_undoes_it(workspace):
    at = app("data")
    assert not at.exception
    fill_facility(at, facility_id="NEW-1", name="Harbour heat pump <b>test</b>", nace="D35.30", country="FI",
                  cluster="Helsinki")
    button(at, "Add facility").click().run()
    assert not at.exception
    assert any("Saved" in s.value for s in at.success), [e.value for e in at.error]
    assert workspace.exists() and not workspace.can_undo()  # the first save starts from the demo
    # a second change can be undone, back to the first
    at = app("data")
    fill_facility(at, facility_id="NEW-2", name="Second site", nace="C17.12", country="FI", cluster="Helsinki")
    button(at, "Add facility").click().run()
    assert workspace.can_undo()
    at = app("map", q="Second site")  # the map reads the workspace now, and finds the new site
    assert "from workspace.gpkg" in at.caption[0].value and not at.caption[0].value.startswith("0 ")
    at = app("data")
    button(at, "Undo the last change").click().run()
    assert not at.exception and not workspace.can_undo()


def test_data_page_rejects_a_bad_facility_and_names_the_problem(workspace):
    at = app("data")
    fill_facility(at, facility_id="BAD-1", name="Bad code", nace="paper mill", country="FI")
    button(at, "Add facility").click().run()
    assert any("Not saved" in e.value for e in at.error)
    problems = at.dataframe[-1].value  # the refused change's problems, below those of the data in use
    assert (problems["column"] == "nace").any() and problems["row"].notna().all()
    assert not workspace.exists()


def test_presentation_mode_steps_through_links():
    at = app(present="1")
    assert not at.exception
    assert at.markdown[-1].value.startswith("### Link 1 of") or any("Link 1 of" in m.value for m in at.markdown)
    at.button(key="next").click().run()
    assert any("Link 2 of" in m.value for m in at.markdown)
    assert at.query_params["step"] in ("2", ["2"])
