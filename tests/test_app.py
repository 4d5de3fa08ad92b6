"""The app's pages under Streamlit's AppTest: no exception, filters act, the URL restores a view."""

from __future__ import annotations

import shutil

import pytest
from streamlit.testing.v1 import AppTest

from geo.workspace import Workspace
from tests.helpers import APP, TIMEOUT, app  # noqa: F401 - APP and TIMEOUT for other test modules


@pytest.fixture(autouse=True)
def workspace(tmp_path, monkeypatch):
    """Each test gets its own (empty) workspace, so it starts on the bundled demo."""
    path = tmp_path / "workspace.gpkg"
    monkeypatch.setenv("SYMBIOSIS_WORKSPACE", str(path))
    return Workspace(path)


def test_map_page_shows_the_demo():
    at = app()
    assert not at.exception
    assert "candidate links shown" in at.caption[0].value
    assert at.title[0].value == "Industrial symbiosis opportunities"


def test_the_map_page_sends_its_filters_once_the_map_is_drawn():
    at = app()
    assert not at.multiselect and not at.slider  # first the map alone
    assert "once the map is drawn" in at.sidebar.caption[0].value
    _drawn(at)
    assert at.multiselect(key="f_country") and at.slider(key="f_min_score").value == 0.0
    at.slider(key="f_min_score").set_value(80.0).run()
    assert at.query_params["min_score"] in ("80", ["80"])
    assert at.multiselect(key="f_country")  # and they stay


def test_the_filters_can_be_shown_before_the_map_is_drawn():
    at = app(country="FI")
    at.button(key="show_filters").click().run()
    assert not at.exception
    assert at.multiselect(key="f_country").value == ["FI"]


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
    at = app("shortlist", country="FI", min_score="60")
    assert not at.exception
    table = at.dataframe[0].value
    assert len(table) and (table["score"] >= 60).all()
    assert at.multiselect(key="f_country").value == ["FI"]
    assert at.slider(key="f_min_score").value == 60.0


def test_public_screen_hides_names_and_quantities():
    at = app("shortlist", view="screen")
    table = at.dataframe[0].value
    assert table["supply_name"].str.contains(r"\(NACE ", regex=True).all()
    assert table["quantity"].isna().all() and (table["quantity_range"] != "").all()


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def fill_facility(at: AppTest, *, lat: float = 60.17, lon: float = 24.95, nace: str | None = None,
                  **values: str) -> None:
    """Fill the Add a facility form (keys ``new_<field>``); NACE is picked from its list by code."""
    for name, value in values.items():
        at.text_input(key=f"new_{name}").input(value)
    at.number_input(key="new_lat").set_value(lat)
    at.number_input(key="new_lon").set_value(lon)
    if nace is not None:
        at.selectbox(key="new_nace").set_value(nace)


def test_data_page_adds_a_facility_and_undoes_it(workspace):
    at = app("data")
    assert not at.exception
    fill_facility(at, id="NEW-1", name="Harbour heat pump <b>test</b>", nace="35.30", country="FI",
                  cluster="Helsinki")
    at.button(key="add_facility").click().run()
    assert not at.exception
    assert any("Saved" in s.value for s in at.success), [e.value for e in at.error]
    assert workspace.exists()
    assert workspace.history()["action"].tolist() == ["add facility", "start"]  # started from the demo first
    fill_facility(at, id="NEW-2", name="Second site", nace="17.12", country="FI", cluster="Helsinki")
    at.button(key="add_facility").click().run()
    shown = app("map", q="Second site")  # the map reads the workspace now, and finds the new site
    assert "from workspace.gpkg" in shown.caption[0].value and not shown.caption[0].value.startswith("0 ")
    assert app("data").button(key="undo").disabled  # another session has nothing of its own to undo
    at.button(key="undo").click().run()  # this one undoes its last change
    assert not at.exception and workspace.history()["what"].iloc[0] == "undid: added facility 'NEW-2' (Second site)"


def test_data_page_rejects_a_bad_facility_and_names_the_problem(workspace):
    at = app("data")
    fill_facility(at, id="BAD-1", name="Bad code", nace="17.12", country="F1")
    at.button(key="add_facility").click().run()
    assert any("Not saved" in e.value for e in at.error)
    problems = at.dataframe[-1].value  # the refused change's problems, below those of the data in use
    assert problems["column"].tolist() == ["country"]
    assert not workspace.exists()


def test_presentation_mode_steps_through_links():
    at = app(present="1")
    assert not at.exception
    assert at.markdown[-1].value.startswith("### Link 1 of") or any("Link 1 of" in m.value for m in at.markdown)
    at.button(key="next").click().run()
    assert any("Link 2 of" in m.value for m in at.markdown)
    assert at.query_params["step"] in ("2", ["2"])


def _facility_names(workspace: Workspace) -> dict[str, str]:
    import pyogrio
    table = pyogrio.read_dataframe(workspace.path, layer="facilities")
    return dict(zip(table["facility_id"], table["name"], strict=True))


def test_data_page_edits_and_deletes_a_facility(workspace):
    at = app("data", edit="FA-KT-SMA")
    assert not at.exception
    name = next(t for t in at.text_input if t.label == "Name" and t.value.startswith("SMA Mineral"))
    name.input("SMA Mineral Tornio lime kiln (renamed)")
    next(t for t in at.text_input if t.label == "Operator" and t.value).input("SMA Mineral Oy (edited)")
    button(at, "Save changes").click().run()
    assert not at.exception and any("Saved" in s.value for s in at.success), [e.value for e in at.error]
    names = _facility_names(workspace)
    assert names["FA-KT-SMA"] == "SMA Mineral Tornio lime kiln (renamed)" and len(names) >= 100
    at_map = app("map", q="renamed")  # the map reads the edited name at once
    assert at_map.caption[0].value.startswith("1 facilities")
    at.selectbox(key="edit_id").set_value("FA-KT-SMA").run()
    button(at, "Delete this facility and its flows").click().run()
    assert "FA-KT-SMA" not in _facility_names(workspace)
    at.button(key="undo").click().run()  # this session's last change
    assert "FA-KT-SMA" in _facility_names(workspace)


def _kotka_workspace(workspace: Workspace, *extra_flows: dict) -> None:
    """Two sites in central Kotka (pyrosm's bundled extract) that exchange heat (and these flows)."""
    import pandas as pd
    facilities = pd.DataFrame([
        {"facility_id": "K-1", "name": "Harbour boiler", "lat": 60.5230, "lon": 26.9350, "nace": "D35.30",
         "country": "FI", "cluster": "Kotka", "source": "test"},
        {"facility_id": "K-2", "name": "Greenhouse", "lat": 60.5370, "lon": 26.9620, "nace": "A01.13",
         "country": "FI", "cluster": "Kotka", "source": "test"},
    ])
    flows = pd.DataFrame([
        {"facility_id": "K-1", "direction": "supply", "resource": "heat.hot_water", "quantity": 20000, "unit": "MWh/yr",
         "confidential": "false", "source": "test"},
        {"facility_id": "K-2", "direction": "demand", "resource": "heat.hot_water", "quantity": 8000, "unit": "MWh/yr",
         "confidential": "false", "source": "test"},
        *extra_flows,
    ])
    workspace.save(facilities, flows)


def test_a_road_network_loads_with_progress_and_draws_the_route_of_a_clicked_link(workspace):
    pyrosm = pytest.importorskip("pyrosm")
    _kotka_workspace(workspace)
    roads = workspace.path.parent / "roads"
    roads.mkdir()
    shutil.copy(pyrosm.get_data("test_pbf"), roads / "kotka.osm.pbf")
    at = app("data")
    at.selectbox(key="network_file").set_value("kotka.osm.pbf").run()
    button(at, "Load this file").click().run()
    assert not at.exception, at.exception
    assert any("Road network in use" in s.value for s in at.success), [e.value for e in at.error]
    at = app("shortlist")
    table = at.dataframe[0].value
    assert (table["distance_source"] == "road").all()
    straight = table["distance_km"].iloc[0]
    at = app("map")
    assert "Road distances from" in at.caption[0].value
    at.session_state["map"] = {"last_active_drawing": {"properties": {"rank": 1}}}
    at.run()
    assert not at.exception
    route = next(m.value for m in at.markdown if m.value.startswith("**Road route**"))
    assert f"{straight:.1f} km" in route  # the route the link's distance was measured on
    # going back to straight lines
    at = app("data")
    button(at, "Stop using this road network").click().run()
    table = app("shortlist").dataframe[0].value
    assert (table["distance_source"] == "estimate").all()


def _drawn(at: AppTest) -> AppTest:
    """The run after the map says it is drawn in the browser (the filters then follow)."""
    at.session_state["map"] = {"last_active_drawing": None, "drawn": True}
    return at.run()


def test_reach_circles_follow_the_url_and_leave_out_confidential_supplies(workspace):
    _kotka_workspace(workspace, {"facility_id": "K-2", "direction": "supply", "resource": "mineral.fly_ash",
                                 "quantity": 900, "unit": "t/yr", "confidential": "true", "source": "test"})
    at = _drawn(app(reach="1"))
    assert not at.exception, at.exception
    assert at.toggle(key="f_reach").value
    legend = " ".join(m.value for m in at.sidebar.markdown)
    assert "Heat" in legend and "Mineral" not in legend  # the confidential supply has no circle in the public view
    at.radio(key="f_view").set_value("full").run()
    assert "Mineral" in " ".join(m.value for m in at.sidebar.markdown)
    at.toggle(key="f_reach").set_value(False).run()
    assert "reach" not in at.query_params
    assert "Heat" not in " ".join(m.value for m in at.sidebar.markdown)


@pytest.mark.parametrize("params, shown, slider, number", [
    ({"min_score": "500"}, "min_score=500 in the address is outside 0-100; 100 is used.", 100.0, 0.0),
    ({"min_score": "nan"}, "min_score='nan' in the address is not a number; 0 is used.", 0.0, 0.0),
    ({"max_km": "-1"}, "max_km=-1 in the address is outside 0-1000; 0 is used.", 0.0, 0.0),
    ({"max_km": "inf"}, "max_km='inf' in the address is not a number; 0 is used.", 0.0, 0.0),
])
def test_url_values_out_of_range_are_clamped_or_ignored_with_a_note(params, shown, slider, number):
    at = app("shortlist", **params)
    assert not at.exception
    assert shown in [w.value for w in at.warning]
    assert at.slider(key="f_min_score").value == slider
    assert at.number_input(key="f_max_km").value == number


@pytest.mark.parametrize("params", [{"lat": "NaN", "lon": "25", "zoom": "inf"}, {"zoom": "abc", "lat": "61", "lon": "x"},
                                    {"present": "1", "step": "abc"}, {"present": "1", "step": "-4"}])
def test_map_survives_broken_view_values_in_the_url(params):
    at = app(**params)
    assert not at.exception
    assert at.warning  # the broken value is named, not silently dropped
