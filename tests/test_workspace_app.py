"""The Data page's forms and uploads under Streamlit's AppTest: nothing misfiled, nothing replaced unasked,
a stale edit refused with who changed what."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from geo.workspace import Author, Workspace
from tests import postgis_server

APP = str(Path(__file__).resolve().parent.parent / "app.py")
BORIS = Author("boris-session", "Boris")
KOTKA = pd.DataFrame([
    {"facility_id": "K-1", "name": "Harbour boiler", "lat": 60.5230, "lon": 26.9350, "nace": "D35.30",
     "country": "FI", "cluster": "Kotka", "source": "test"},
    {"facility_id": "K-2", "name": "Greenhouse", "lat": 60.5370, "lon": 26.9620, "nace": "A01.13",
     "country": "FI", "cluster": "Kotka", "source": "test"},
])
KOTKA_FLOWS = pd.DataFrame([
    {"facility_id": "K-1", "direction": "supply", "resource": "heat.hot_water", "quantity": 20000, "unit": "MWh/yr",
     "confidential": "false", "source": "test"},
])


@pytest.fixture
def location(request, tmp_path, monkeypatch) -> str:
    """The app's workspace: a GeoPackage of the test's own, or (``postgis`` param) a fresh PostGIS database."""
    backend = getattr(request, "param", "geopackage")
    where = str(tmp_path / "workspace.gpkg") if backend == "geopackage" else postgis_server.cluster().new_database()
    monkeypatch.setenv("SYMBIOSIS_WORKSPACE", where)
    return where


@pytest.fixture
def kotka(location) -> Workspace:
    """A workspace of two sites in Kotka, the boiler supplying heat."""
    ws = Workspace(location)
    ws.create(KOTKA, KOTKA_FLOWS)
    return ws


def data_page(**params: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for name, value in params.items():
        at.query_params[name] = value
    at.switch_page("app_pages/data.py")
    return at.run()


def successes(at: AppTest) -> list[str]:
    return [s.value for s in at.success]


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def test_nothing_is_preselected_and_a_facility_needs_coordinates(location):
    at = data_page()
    assert not at.exception
    for key in ("new_nace", "new_precision", "edit_id", "flow_facility", "flow_resource", "flow_evidence"):
        assert at.selectbox(key=key).value is None, key
    assert at.radio(key="flow_direction").value is None
    assert at.number_input(key="new_lat").value is None and at.number_input(key="new_lon").value is None
    at.text_input(key="new_id").input("NEW-1")
    at.text_input(key="new_name").input("Heat pump")
    at.button(key="add_facility").click().run()
    assert errors(at) == ["Not added: the facility needs a latitude, a longitude. Click the map to place it, or "
                          "type its coordinates."]
    assert not Workspace(location).exists()  # no silent default location, nothing saved


@pytest.mark.parametrize("location", ["geopackage", "postgis"], indirect=True)
def test_a_facility_placed_on_the_map_gets_its_flow_with_the_unit_of_its_resource(kotka):
    at = data_page()
    at.session_state["new_map"] = {"last_clicked": {"lat": 60.5301234, "lng": 26.9412345}}  # a click on the map
    at.run()
    assert (at.number_input(key="new_lat").value, at.number_input(key="new_lon").value) == (60.53012, 26.94123)
    nace = at.selectbox(key="new_nace")
    assert "D35.30 Steam and air conditioning supply" in nace.options  # a searchable list with the titles
    nace.set_value("35.30")
    at.text_input(key="new_id").input("K-3")
    at.text_input(key="new_name").input("Data centre")
    at.text_input(key="new_country").input("FI")
    at.selectbox(key="new_precision").set_value("address")
    at.button(key="add_facility").click().run()
    assert not at.exception and successes(at)[0].startswith("Saved: added facility 'K\\-3'"), errors(at)
    # at once: the lists hold the new facility, its flow form has it chosen, the add form is empty again
    assert at.selectbox(key="flow_facility").value == "K-3"
    assert "K-3 - Data centre" in at.selectbox(key="edit_id").options
    assert at.text_input(key="new_id").value == "" and at.number_input(key="new_lat").value is None
    at.selectbox(key="flow_resource").set_value("heat.low_temperature").run()
    assert at.number_input(key="flow_quantity").label == "Quantity per year (MWh/yr)"
    at.radio(key="flow_direction").set_value("supply")
    at.number_input(key="flow_quantity").set_value(9000.0)
    at.selectbox(key="flow_evidence").set_value("typical")
    at.button(key="add_flow").click().run()
    assert successes(at) == ["Saved: added a supply of heat\\.low\\_temperature \\(MWh/yr\\) to facility 'K\\-3' "
                             "\\(Data centre\\)\\."], errors(at)
    stored = kotka.record("K-3")
    assert stored.facility["nace"] == "D35.30" and stored.facility["precision"] == "address"
    assert stored.flows == [{"direction": "supply", "resource": "heat.low_temperature", "quantity": 9000.0,
                             "unit": "MWh/yr", "ewc": None, "description": None, "max_distance_km": None,
                             "confidential": "false", "partners": None, "source": "added in the app",
                             "evidence": "typical"}]


UPLOAD = ("facility_id;name;lat;lon;nace;country\n"
          "K-1;Harbour boiler (new name);60.5230;26.9350;D35.30;FI\n"
          "K-9;Sawmill;60.5500;26.9000;C16.10;FI\n").encode()


def _upload(at: AppTest, mode: str, *, key: str = "upload_facilities") -> AppTest:
    at.file_uploader(key=key).set_value(("sites.csv", UPLOAD, "text/csv"))
    at.run()
    mode_key = next(r.key for r in at.radio if r.key.startswith("upload_mode"))
    at.radio(key=mode_key).set_value(mode).run()
    return at


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_an_upload_appends_updates_or_replaces_as_chosen_after_a_preview(kotka):
    at = _upload(data_page(), "append")
    assert _metrics(at) == {"Facilities added": "1", "Facilities updated": "0", "Facilities removed": "0",
                            "Unchanged": "1"}
    at.button(key="upload_apply").click().run()
    assert successes(at)[0].startswith("Saved: the upload of sites\\.csv"), errors(at)
    assert dict(zip(*kotka.read().facilities[["facility_id", "name"]].T.values)) == {
        "K-1": "Harbour boiler", "K-2": "Greenhouse", "K-9": "Sawmill"}  # append leaves K-1 as it was
    at = _upload(at, "update", key="upload_facilities_1")  # the saved upload emptied the uploader
    assert _metrics(at)["Facilities updated"] == "1" and _metrics(at)["Facilities added"] == "0"
    assert "Flows: 0 added, 0 removed." in [c.value.replace("\\", "") for c in at.caption]  # no flows file: kept
    at.button(key="upload_apply").click().run()
    assert kotka.record("K-1").facility["name"] == "Harbour boiler (new name)" and len(kotka.record("K-1").flows) == 1
    at = _upload(at, "replace", key="upload_facilities_2")
    assert _metrics(at)["Facilities removed"] == "1"
    assert at.button(key="upload_apply").disabled  # a replace waits for its confirmation
    at.checkbox(key="upload_confirm_2").check().run()
    at.button(key="upload_apply").click().run()
    assert set(kotka.read().facilities["facility_id"]) == {"K-1", "K-9"}
    assert kotka.history()["action"].tolist()[:3] == ["upload (replace)", "upload (update)", "upload (append)"]


def test_a_replace_previewed_before_someone_else_added_a_facility_is_refused(kotka):
    at = _upload(data_page(), "replace")
    at.checkbox(key="upload_confirm").check().run()
    kotka.add_facility({**KOTKA.iloc[0].to_dict(), "facility_id": "K-LATE", "name": "Late site"}, author=BORIS)
    at.button(key="upload_apply").click().run()
    assert errors(at) and errors(at)[0].startswith("Not replaced: facility 'K\\-LATE' was added after the preview "
                                                   "\\(Boris at ")
    assert set(kotka.read().facilities["facility_id"]) == {"K-1", "K-2", "K-LATE"}
    assert _metrics(at)["Facilities removed"] == "2"  # the preview shown now counts the late site


def test_a_stale_edit_is_refused_naming_who_changed_what_and_reload_shows_it(kotka):
    at = data_page(edit="K-2")
    next(t for t in at.text_input if t.key.startswith("edit_operator")).input("Kotka Greens Oy")
    record = kotka.record("K-2")  # meanwhile Boris renames the greenhouse in his own session
    kotka.edit_facility("K-2", {**record.facility, "name": "Greenhouse (Boris)"}, record.flows,
                        base_version=record.version, author=BORIS)
    next(b for b in at.button if b.label == "Save changes").click().run()
    refused = errors(at)[0]
    assert refused.startswith("Not saved: facility 'K\\-2' was changed by Boris at ")
    assert "edited facility 'K\\-2': name" in refused and "Reload facility 'K\\-2'" in refused
    assert kotka.record("K-2").facility["operator"] is None  # nothing of the stale edit was written
    at.button(key="edit_reload").click().run()
    assert not errors(at)
    assert next(t for t in at.text_input if t.key.startswith("edit_name")).value == "Greenhouse (Boris)"


def test_undo_and_redo_on_the_page_step_through_the_sessions_changes_and_the_history_shows_them(kotka):
    at = data_page(edit="K-1")
    next(t for t in at.text_input if t.key.startswith("edit_name")).input("Boiler, renamed")
    next(b for b in at.button if b.label == "Save changes").click().run()
    at.selectbox(key="edit_id").set_value("K-2").run()
    next(b for b in at.button if b.label == "Delete this facility and its flows").click().run()
    assert set(kotka.read().facilities["facility_id"]) == {"K-1"}
    at.button(key="undo").click().run()
    at.button(key="undo").click().run()
    assert successes(at) == ["Undone: edited facility 'K\\-1': name\\."]
    assert kotka.record("K-1").facility["name"] == "Harbour boiler" and kotka.record("K-2").facility is not None
    at.button(key="redo").click().run()
    assert kotka.record("K-1").facility["name"] == "Boiler, renamed"
    history = next(d.value for d in at.dataframe if "what" in d.value.columns)
    assert history["what"].tolist()[:4] == ["redid: edited facility 'K-1': name", "undid: edited facility 'K-1': name",
                                            "undid: deleted facility 'K-2' and its 0 flows",
                                            "deleted facility 'K-2' and its 0 flows"]
