"""No page shows a traceback: an engine error is its one line, anything else a short line and the server log;
a workspace whose only facility is invalid names it on every page; broken view values in the URL are noted."""

from __future__ import annotations

import json
import logging
import math
import tomllib
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app_pages import state
from geo.errors import InputError
from geo.workspace import Workspace
from tests.helpers import app

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["map", "shortlist", "data"]
GENERIC = "Something went wrong on this page: RuntimeError. The details are in the server log."
LONELY = {"facility_id": "LONE-1", "name": "Lonely mill", "lat": 60.52, "lon": 26.93, "nace": "C17.12",
          "country": "FI", "cluster": "Kotka", "source": "test"}
LONELY_FLOW = {"facility_id": "LONE-1", "direction": "supply", "resource": "heat.hot_water", "quantity": 20000,
               "unit": "MWh/yr", "confidential": "false", "source": "test"}


@pytest.fixture(autouse=True)
def workspace(tmp_path, monkeypatch) -> Workspace:
    """A workspace of its own for each test, holding one valid facility: the match is cached per data file,
    so a test that breaks the engine gets a file no earlier run has cached."""
    path = tmp_path / "workspace.gpkg"
    monkeypatch.setenv(state.WORKSPACE_ENV, str(path))
    ws = Workspace(path)
    ws.save(pd.DataFrame([LONELY]), pd.DataFrame([LONELY_FLOW]))
    return ws


def page_text(at: AppTest) -> str:
    """Everything the page sends to the browser, main area and sidebar, as text."""
    def walk(node) -> list[str]:
        proto = getattr(node, "proto", None)
        texts = [str(proto)] if proto is not None else []
        for child in getattr(node, "children", {}).values():
            texts += walk(child)
        return texts

    return "\n".join(walk(at.main) + walk(at.sidebar))


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


# --- the guard -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("page", PAGES)
def test_an_engine_error_is_shown_as_its_one_line_message(page, monkeypatch):
    def refuse(*args, **kwargs):
        raise InputError("facilities.xlsx: not an Excel workbook (it is not a zip file)\nsecond line")

    monkeypatch.setattr(state, "load_dataset", refuse)
    at = app(page)
    assert not at.exception
    # shown as plain text: the markdown characters of the message are escaped
    assert errors(at) == [state.plain("facilities.xlsx: not an Excel workbook (it is not a zip file)")]
    assert "second line" not in page_text(at)


@pytest.mark.parametrize("page", PAGES)
def test_an_unexpected_error_is_one_short_line_and_its_traceback_goes_to_the_log(page, monkeypatch, caplog):
    def crash(*args, **kwargs):
        raise RuntimeError("boom /secret/path")

    monkeypatch.setattr(state, "load_dataset", crash)
    with caplog.at_level(logging.ERROR, logger="symbiosis.app"):
        at = app(page)
    assert not at.exception
    assert errors(at) == [GENERIC]
    assert "/secret/path" not in page_text(at) and "Traceback" not in page_text(at)
    logged = [r for r in caplog.records if r.name == "symbiosis.app"]
    assert len(logged) == 1 and logged[0].exc_info is not None
    assert "boom /secret/path" in caplog.text and "in crash" in caplog.text  # the whole traceback


def test_st_rerun_passes_through_the_guard(monkeypatch):
    """The first run asks for a rerun and the second fails: the rerun must happen (a guard that caught it
    would show its generic line) and the second run's error must be caught (no exception element)."""
    runs = []

    def data():
        runs.append(len(runs) + 1)
        if len(runs) == 1:
            st.rerun()
        raise InputError("the second run's error")

    monkeypatch.setattr(state, "data", data)
    at = app("shortlist")
    assert runs == [1, 2]
    assert not at.exception
    assert errors(at) == ["the second run's error"]


def test_the_server_never_sends_error_details_of_an_uncaught_exception():
    """The last line of defence, for an error outside a page (the guard covers the pages): Streamlit
    shows only its generic line ("none"; the legacy value false would still send the traceback)."""
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["client"]["showErrorDetails"] == "none"


# --- a workspace whose only facility is invalid ---------------------------------------------------------------

@pytest.mark.parametrize("change, problem", [
    ({"lat": float("nan")}, "row 1, lat: latitude is empty"),
    ({"lat": "north"}, "row 1, lat: latitude 'north' is not a number"),
    ({"nace": "paper mill"}, "row 1, nace: 'paper mill' is not a NACE Rev. 2 code"),
    ({"name": ""}, "row 1, name: facility name is empty"),
])
def test_a_workspace_whose_only_facility_is_invalid_names_it_on_the_map(workspace, change, problem):
    _written_elsewhere(workspace.path, pd.DataFrame([LONELY | change]), pd.DataFrame([LONELY_FLOW]))
    at = app(view="full")
    assert not at.exception and not errors(at)
    assert at.caption[0].value.startswith("0 facilities and 0 candidate links shown")
    assert [w.value for w in at.warning] == [left_out(problem)]


def _written_elsewhere(path, facilities: pd.DataFrame, flows: pd.DataFrame) -> None:
    """The tables as QGIS or another program would write them: a text in a number column is kept as text (the
    workspace itself refuses one)."""
    import geopandas as gpd
    import pyogrio

    path.unlink()
    lon, lat = (pd.to_numeric(facilities[c], errors="coerce") for c in ("lon", "lat"))
    points = gpd.GeoSeries(gpd.points_from_xy(lon, lat)).where(lon.notna() & lat.notna(), None)
    pyogrio.write_dataframe(gpd.GeoDataFrame(facilities, geometry=points, crs="EPSG:4326"), path, layer="facilities")
    pyogrio.write_dataframe(flows, path, layer="flows")


def left_out(problem: str) -> str:
    """The note on the lonely facility, left out with its flow because of ``problem``."""
    return state.plain(f"1 facility left out because of an error: LONE-1 ({problem}). 1 flow left out as well. "
                       "The Data page lists every problem.")


def test_a_workspace_whose_only_facility_is_invalid_opens_every_page(workspace):
    workspace.save(pd.DataFrame([LONELY | {"lat": float("nan")}]), pd.DataFrame([LONELY_FLOW]))
    at = app("shortlist", view="full")
    assert not at.exception and not errors(at)
    assert [w.value for w in at.warning] == [left_out("row 1, lat: latitude is empty")]
    assert at.dataframe[0].value.empty
    at = app("data")
    assert not at.exception
    problems = at.dataframe[0].value
    assert ((problems["column"] == "lat") & (problems["message"] == "latitude is empty")).any()


def test_the_valid_rest_is_mapped_beside_the_note_on_an_invalid_facility(workspace):
    receiver, demand = _receiver()
    broken = LONELY | {"facility_id": "LONE-3", "name": "Mill without a place", "lat": "", "lon": ""}
    workspace.save(pd.DataFrame([LONELY, receiver, broken]), pd.DataFrame([LONELY_FLOW, demand]))
    at = app(view="full")
    assert not at.exception and not errors(at)
    assert at.caption[0].value.startswith("2 facilities and 1 candidate links shown")
    assert [w.value for w in at.warning] == [state.plain(
        "1 facility left out because of an error: LONE-3 (row 3, lat: latitude is empty). "
        "The Data page lists every problem.")]


@pytest.mark.parametrize("view", ["public", "screen"])
def test_the_public_views_count_left_out_facilities_without_naming_them(workspace, view):
    """A facility left out may be one whose flows are confidential: the views shown to an audience only count."""
    workspace.save(pd.DataFrame([LONELY | {"name": "", "facility_id": "SECRET-1"}]), pd.DataFrame())
    at = app("shortlist", view=view)
    assert [w.value for w in at.warning] == [state.plain(
        "1 facility left out because of an error. The Data page lists every problem.")]


# --- broken view values in the URL (the filters' own are in test_app.py) ---------------------------------------

def map_view(at: AppTest) -> tuple[list[float], int]:
    """The centre and zoom the map page hands to the browser's map."""
    args = json.loads(at.get("component_instance")[0].proto.json_args)
    return args["center"], args["zoom"]


def test_a_latitude_that_is_not_a_number_is_noted_and_the_map_is_fitted_instead():
    at = app(lat="NaN", lon="25", zoom="inf")
    assert not at.exception
    assert [w.value for w in at.warning] == [
        "lat='NaN' in the address is not a number; the map is fitted to the facilities."]
    center, zoom = map_view(at)
    # no view from the address: the page hands no centre (the browser fits the map to the facilities), never NaN
    assert center is None or (all(math.isfinite(c) for c in center) and center != [25.0, 25.0])
    assert "lat" not in at.query_params  # a copied URL no longer carries it, and the note is shown once
    at.run()
    assert not at.warning


def test_an_infinite_zoom_is_noted_and_the_default_used():
    at = app(lat="61", lon="25", zoom="inf")
    assert [w.value for w in at.warning] == ["zoom='inf' in the address is not a number; 9 is used."]
    assert map_view(at) == ([61.0, 25.0], 9)


def test_an_out_of_range_view_is_clamped_and_written_back():
    at = app(lat="95", lon="25", zoom="40")
    assert [w.value for w in at.warning] == ["lat=95 in the address is outside -85-85; 85 is used.",
                                             "zoom=40 in the address is outside 1-18; 18 is used."]
    assert map_view(at) == ([85.0, 25.0], 18)
    assert at.query_params["lat"] in ("85", ["85"]) and at.query_params["zoom"] in ("18", ["18"])


def test_a_presentation_step_that_is_not_a_number_starts_at_the_first_link(workspace):
    _two_linked_sites(workspace)
    at = app(present="1", step="abc")
    assert [w.value for w in at.warning] == ["step='abc' in the address is not a number; 1 is used."]
    assert any("Link 1 of" in m.value for m in at.markdown)
    assert at.query_params["step"] in ("1", ["1"])


def _receiver() -> tuple[dict, dict]:
    """A greenhouse near the lonely mill, and its demand for the mill's heat."""
    receiver = LONELY | {"facility_id": "LONE-2", "name": "Greenhouse", "lat": 60.537, "lon": 26.962, "nace": "A01.13"}
    demand = LONELY_FLOW | {"facility_id": "LONE-2", "direction": "demand", "quantity": 8000}
    return receiver, demand


def _two_linked_sites(workspace: Workspace) -> None:
    receiver, demand = _receiver()
    workspace.save(pd.DataFrame([LONELY, receiver]), pd.DataFrame([LONELY_FLOW, demand]))
