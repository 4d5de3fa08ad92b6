"""The synergy pipeline in the workspace: stages, owners, notes and realised quantities, edited by several people.

Every test about stored data runs on both back ends (a GeoPackage, and a
PostGIS database of the server tests/postgis_server.py starts), as the
workspace's own tests do.
"""

from __future__ import annotations

import sqlite3

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely

from geo import workspace as workspace_module
from geo.errors import EditConflict, WorkspaceError
from geo.pipeline import match
from geo.synergy import (PIPELINE_COLUMNS, STAGES, link_key, link_keys, normalise_stage, pipeline_layer,
                         pipeline_table, split_link_key)
from geo.workspace import Author, Workspace
from tests import postgis_server
from tests.helpers import at_once

ANNA = Author("anna-session", "Anna")
BORIS = Author("boris-session", "Boris")

MILL = {"facility_id": "MILL", "name": "Pulp mill", "lat": 61.47, "lon": 23.70, "nace": "C17.11", "country": "FI",
        "cluster": "Tampere", "source": "test"}
GREENHOUSE = {"facility_id": "GREEN", "name": "Greenhouse", "lat": 61.49, "lon": 23.75, "nace": "A01.13",
              "country": "FI", "cluster": "Tampere", "source": "test"}
HEAT = {"facility_id": "MILL", "direction": "supply", "resource": "heat.hot_water", "quantity": 50000.0,
        "unit": "MWh/yr", "confidential": "false", "source": "test"}
DEMAND = {"facility_id": "GREEN", "direction": "demand", "resource": "heat.hot_water", "quantity": 8000.0,
          "unit": "MWh/yr", "confidential": "false", "source": "test"}
LINK = {"supply_facility_id": "MILL", "demand_facility_id": "GREEN", "resource": "heat.hot_water"}
KEY = "MILL/GREEN/heat.hot_water"


@pytest.fixture(params=["geopackage", "postgis"])
def location(request, tmp_path) -> str:
    if request.param == "geopackage":
        return str(tmp_path / "workspace.gpkg")
    return postgis_server.cluster().new_database()


@pytest.fixture
def workspace(location) -> Workspace:
    """A workspace of a pulp mill whose hot water a greenhouse could use."""
    ws = Workspace(location)
    ws.create(pd.DataFrame([MILL, GREENHOUSE]), pd.DataFrame([HEAT, DEMAND]), source="the test's tables")
    return ws


def stage(ws: Workspace) -> str | None:
    entry = ws.synergy(KEY).entry
    return entry["stage"] if entry else None


# --- keys that survive a re-match ------------------------------------------------------------------------------

def test_a_links_key_survives_a_rematch_although_its_flow_ids_change(workspace):
    dataset, _ = workspace.dataset()
    before = match(dataset).links
    assert list(link_keys(before)) == [KEY]
    workspace.add_synergy(before.iloc[0], author=ANNA)
    # the mill's edit writes its flow anew, after the greenhouse's: the flows are renumbered; a shorter limit is
    # another run
    mill = workspace.record("MILL")
    workspace.edit_facility("MILL", {**mill.facility, "name": "Mill renamed"}, mill.flows, base_version=mill.version,
                            author=BORIS)
    dataset, _ = workspace.dataset()
    after = match(dataset, max_km=15).links
    assert after["supply_flow_id"].iloc[0] != before["supply_flow_id"].iloc[0]
    assert list(link_keys(after)) == [KEY]
    table = pipeline_table(workspace.synergies(), after)
    assert table["in_match"].tolist() == [True]
    assert table["allocated_quantity"].tolist() == pytest.approx([8000.0])


@pytest.mark.parametrize("parts", [("A/1", "B%2F", "mineral.fly_ash"), ("Åkerlund", "x y", "heat.steam"),
                                   ("%", "/", "r")])
def test_keys_of_ids_holding_slashes_or_percent_signs_are_distinct_and_split_back(parts):
    key = link_key(*parts)
    assert split_link_key(key) == parts
    frame = pd.DataFrame([dict(zip(["supply_facility_id", "demand_facility_id", "resource"], parts))])
    assert link_keys(frame).iloc[0] == key
    assert link_key("A", "1/B%2F", "mineral.fly_ash") != link_key("A/1", "B%2F", "mineral.fly_ash")


# --- stages ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "stored"), [("In_Discussion", "in discussion"), (" agreed ", "agreed"),
                                              ("in-discussion", "in discussion"), ("RUNNING", "running")])
def test_stages_are_read_whatever_their_spelling(text, stored):
    assert normalise_stage(text) == stored


def test_a_link_goes_through_the_stages_with_owner_notes_and_realised_quantity(workspace):
    added = workspace.add_synergy(LINK, author=ANNA, owner="Anna", note="Seen at the workshop")
    assert added.kind == "synergy" and added.facility_ids == (KEY,)
    assert added.summary == "took MILL → GREEN (heat.hot_water) into the pipeline at stage 'idea'"
    for next_stage in STAGES[1:6]:
        record = workspace.synergy(KEY)
        workspace.update_synergy(KEY, stage=next_stage, base_version=record.version, author=ANNA)
    record = workspace.synergy(KEY)
    workspace.update_synergy(KEY, realised_quantity=6500, realised_unit="MWh/yr", owner="Boris",
                             note="Pipe in use since May", base_version=record.version, author=ANNA)
    entry = workspace.synergy(KEY).entry
    assert entry["stage"] == "running" and entry["owner"] == "Boris"
    assert (entry["realised_quantity"], entry["realised_unit"]) == (6500.0, "MWh/yr")
    assert [n["text"] for n in entry["notes"]] == ["Seen at the workshop", "Pipe in use since May"]
    assert all(n["author"] == "Anna" and n["at"].endswith("Z") for n in entry["notes"])
    history = workspace.synergy_history(KEY)
    assert list(history["action"]) == ["pipeline edit", *["pipeline move"] * 5, "pipeline add"]
    assert history["what"].iloc[0] == ("MILL → GREEN (heat.hot_water): owner Boris (was Anna), realised quantity "
                                       "6,500 MWh/yr, a note added")
    assert history["what"].iloc[1] == "moved MILL → GREEN (heat.hot_water) from 'agreed' to 'running'"
    frame = workspace.synergies()
    assert list(frame["link_key"]) == [KEY] and frame["version"].iloc[0] == workspace.version()


def test_moving_back_is_allowed_and_journaled_as_a_move_back(workspace):
    workspace.add_synergy(LINK, author=ANNA, stage="agreed")
    workspace.update_synergy(KEY, stage="contacted", base_version=workspace.synergy(KEY).version, author=BORIS)
    assert stage(workspace) == "contacted"
    last = workspace.history(limit=1).iloc[0]
    assert (last["action"], last["who"]) == ("pipeline move back", "Boris")
    assert last["what"] == "moved MILL → GREEN (heat.hot_water) back from 'agreed' to 'contacted'"
    workspace.update_synergy(KEY, stage="stopped", base_version=workspace.synergy(KEY).version, author=BORIS)
    workspace.update_synergy(KEY, stage="idea", base_version=workspace.synergy(KEY).version, author=BORIS)
    assert list(workspace.synergy_history(KEY)["action"][:2]) == ["pipeline restart", "pipeline stop"]


def test_an_unknown_stage_is_refused_naming_the_stages_and_nothing_is_written(workspace):
    workspace.add_synergy(LINK, author=ANNA)
    version = workspace.version()
    with pytest.raises(WorkspaceError, match=r"Unknown stage 'signed'; a pipeline stage is one of: idea, contacted, "
                                             r"in discussion, feasibility, agreed, running, stopped"):
        workspace.update_synergy(KEY, stage="signed", base_version=workspace.synergy(KEY).version, author=ANNA)
    with pytest.raises(WorkspaceError, match="Unknown stage 'maybe'"):
        workspace.add_synergy({**LINK, "resource": "heat.steam"}, author=ANNA, stage="maybe")
    assert workspace.version() == version and stage(workspace) == "idea"


@pytest.mark.parametrize(("quantity", "unit", "message"), [
    (100, "MWh/yr", "given once the exchange runs; .* is at stage 'feasibility'"),
    (-5, "MWh/yr", "must be a number of 0 or more"),
    ("lots", "MWh/yr", "'lots' is not a number"),
    (100, "GWh", "needs its unit, one of t/yr, MWh/yr, m3/yr; got 'GWh'"),
])
def test_a_realised_quantity_that_cannot_be_taken_is_refused(workspace, quantity, unit, message):
    workspace.add_synergy(LINK, author=ANNA, stage="feasibility")
    with pytest.raises(WorkspaceError, match=message):
        workspace.update_synergy(KEY, realised_quantity=quantity, realised_unit=unit,
                                 base_version=workspace.synergy(KEY).version, author=ANNA)
    assert workspace.synergy(KEY).entry["realised_quantity"] is None


def test_a_link_whose_facility_is_gone_or_already_in_the_pipeline_is_refused(workspace):
    with pytest.raises(EditConflict, match="facility 'NOWHERE' of MILL → NOWHERE .* is not in the workspace"):
        workspace.add_synergy({**LINK, "demand_facility_id": "NOWHERE"}, author=ANNA)
    Workspace(workspace.location).add_synergy(LINK, author=BORIS)
    with pytest.raises(EditConflict, match=r"Not added: MILL → GREEN \(heat.hot_water\) is in the pipeline already "
                                           r"\(Boris at .* UTC: took MILL → GREEN"):
        workspace.add_synergy(LINK, author=ANNA, stage="contacted")
    assert stage(workspace) == "idea"


# --- two sessions ------------------------------------------------------------------------------------------------

def test_a_stage_move_from_a_stale_version_is_refused_and_says_who_moved_it(workspace):
    workspace.add_synergy(LINK, author=ANNA)
    anna = workspace.synergy(KEY)  # both open the entry at the same version
    boris_ws = Workspace(workspace.location)
    boris = boris_ws.synergy(KEY)
    boris_ws.update_synergy(KEY, stage="contacted", base_version=boris.version, author=BORIS)
    with pytest.raises(EditConflict) as refused:
        workspace.update_synergy(KEY, stage="feasibility", base_version=anna.version, author=ANNA)
    message = str(refused.value)
    assert message.startswith(f"Not saved: pipeline link '{KEY}' was changed by Boris at ")
    assert "(moved MILL → GREEN (heat.hot_water) from 'idea' to 'contacted')" in message
    assert "nothing of yours was written" in message and refused.value.change.author == "Boris"
    assert stage(workspace) == "contacted"
    # reloaded, Anna's move goes through
    workspace.update_synergy(KEY, stage="feasibility", base_version=workspace.synergy(KEY).version, author=ANNA)
    assert stage(workspace) == "feasibility"


def test_two_sessions_moving_one_link_at_the_same_moment_one_wins_the_other_is_told(workspace):
    workspace.add_synergy(LINK, author=ANNA)
    version = workspace.synergy(KEY).version
    moves = {ANNA: "contacted", BORIS: "agreed"}
    results = at_once(*[lambda a=a, s=s: Workspace(workspace.location).update_synergy(
        KEY, stage=s, base_version=version, author=a) for a, s in moves.items()])
    refused = [r for r in results if isinstance(r, EditConflict)]
    saved = [r for r in results if not isinstance(r, Exception)]
    assert len(refused) == 1 and len(saved) == 1, results
    assert stage(workspace) == moves[ANNA if saved[0].author == "Anna" else BORIS]


def test_notes_two_sessions_add_at_the_same_moment_are_both_kept(workspace):
    workspace.add_synergy(LINK, author=ANNA)
    results = at_once(*[lambda a=a: Workspace(workspace.location).add_synergy_note(KEY, f"note of {a.name}",
                                                                                     author=a) for a in (ANNA, BORIS)])
    assert not [r for r in results if isinstance(r, Exception)], results
    notes = workspace.synergy(KEY).entry["notes"]
    assert sorted((n["author"], n["text"]) for n in notes) == [("Anna", "note of Anna"), ("Boris", "note of Boris")]
    with pytest.raises(WorkspaceError, match="A note needs some text"):
        workspace.add_synergy_note(KEY, "   ", author=ANNA)


# --- undo and redo ---------------------------------------------------------------------------------------------

def test_undo_and_redo_step_through_pipeline_and_facility_changes_in_order(workspace):
    workspace.add_synergy(LINK, author=ANNA)
    mill = workspace.record("MILL")
    workspace.edit_facility("MILL", {**mill.facility, "name": "Mill renamed"}, mill.flows, base_version=mill.version,
                            author=ANNA)
    workspace.update_synergy(KEY, stage="contacted", base_version=workspace.synergy(KEY).version, author=ANNA)
    workspace.add_synergy_note(KEY, "Called them", author=ANNA)

    assert workspace.undo(author=ANNA).summary == "undid: MILL → GREEN (heat.hot_water): a note added"
    assert workspace.synergy(KEY).entry["notes"] == []
    assert workspace.undo(author=ANNA).summary.startswith("undid: moved MILL → GREEN")
    assert stage(workspace) == "idea"
    workspace.undo(author=ANNA)  # the facility edit
    assert workspace.record("MILL").facility["name"] == "Pulp mill" and stage(workspace) == "idea"
    workspace.undo(author=ANNA)
    assert stage(workspace) is None and workspace.synergies().empty
    assert workspace.undo(author=ANNA) is None

    workspace.redo(author=ANNA)
    assert stage(workspace) == "idea"
    workspace.redo(author=ANNA)
    workspace.redo(author=ANNA)
    assert stage(workspace) == "contacted" and workspace.record("MILL").facility["name"] == "Mill renamed"
    # the version follows each step: a stale edit after an undo is still refused
    with pytest.raises(EditConflict):
        workspace.update_synergy(KEY, stage="agreed", base_version=0, author=BORIS)
    workspace.update_synergy(KEY, stage="agreed", base_version=workspace.synergy(KEY).version, author=ANNA)
    assert workspace.next_redo(ANNA) is None  # a new change ends the redo


def test_undo_is_refused_when_someone_else_moved_the_link_since(workspace):
    workspace.add_synergy(LINK, author=ANNA)
    workspace.update_synergy(KEY, stage="contacted", base_version=workspace.synergy(KEY).version, author=ANNA)
    workspace.update_synergy(KEY, stage="feasibility", base_version=workspace.synergy(KEY).version, author=BORIS)
    with pytest.raises(EditConflict, match=r"Cannot undo 'moved MILL → GREEN \(heat.hot_water\) from 'idea' to "
                                           rf"'contacted'': pipeline link '{KEY}' was changed after it by Boris at "):
        workspace.undo(author=ANNA)
    assert workspace.undo(author=BORIS).summary.startswith("undid: moved")
    assert workspace.undo(author=ANNA) is not None and stage(workspace) == "idea"


def test_a_removed_link_comes_back_with_its_notes_on_undo(workspace):
    workspace.add_synergy(LINK, author=ANNA, note="first")
    workspace.add_synergy_note(KEY, "second", author=BORIS)
    workspace.remove_synergy(KEY, base_version=workspace.synergy(KEY).version, author=ANNA)
    assert workspace.synergies().empty
    with pytest.raises(EditConflict, match="is not in the pipeline"):
        workspace.add_synergy_note(KEY, "third", author=BORIS)
    workspace.undo(author=ANNA)
    assert [n["text"] for n in workspace.synergy(KEY).entry["notes"]] == ["first", "second"]


# --- what other tools see, and older workspaces --------------------------------------------------------------------

def test_the_pipeline_is_not_a_layer_of_the_geopackage(tmp_path):
    ws = Workspace(tmp_path / "workspace.gpkg")
    ws.create(pd.DataFrame([MILL, GREENHOUSE]), pd.DataFrame([HEAT, DEMAND]))
    ws.add_synergy(LINK, author=ANNA)
    assert {name for name, _ in pyogrio.list_layers(ws.path)} == {"facilities", "flows"}


def _make_format_1(ws: Workspace) -> None:
    """Take a workspace back to the bookkeeping of format 1: no pipeline tables, no journal kind."""
    statements = ["DROP TABLE workspace_synergies", "DROP TABLE workspace_synergy_versions",
                  "ALTER TABLE workspace_journal DROP COLUMN kind"]
    if ws.path is not None:
        with sqlite3.connect(ws.path) as con:
            for sql in statements:
                con.execute(sql)
        return
    import psycopg

    with psycopg.connect(ws.location) as con:
        for sql in statements:
            con.execute(sql)
        con.execute("UPDATE workspace_meta SET value = '1' WHERE key = 'format'")
    workspace_module._PG_READY.discard(ws.location)


def test_a_workspace_of_the_previous_format_gets_the_pipeline_and_keeps_its_undo(workspace):
    mill = workspace.record("MILL")
    workspace.edit_facility("MILL", {**mill.facility, "name": "Old name"}, mill.flows, base_version=mill.version,
                            author=ANNA)
    _make_format_1(workspace)
    ws = Workspace(workspace.location)
    assert ws.synergies().empty
    ws.add_synergy(LINK, author=ANNA)
    assert ws.undo(author=ANNA).summary.startswith("undid: took")
    assert ws.undo(author=ANNA).summary == "undid: edited facility 'MILL': name"
    assert ws.record("MILL").facility["name"] == "Pulp mill"


# --- exports -----------------------------------------------------------------------------------------------------

def test_the_pipeline_table_and_layer_carry_the_entries_with_a_line_between_the_facilities(workspace, tmp_path):
    dataset, _ = workspace.dataset()
    links = match(dataset).links
    workspace.add_synergy(links.iloc[0], author=ANNA, stage="contacted", owner="Anna", note="Called <b>them</b>")
    workspace.add_synergy({**LINK, "resource": "heat.steam"}, author=BORIS)  # not a link of the match
    entries = workspace.synergies()
    table = pipeline_table(entries, links)
    assert list(table.columns) == PIPELINE_COLUMNS
    assert list(table["stage"]) == ["idea", "contacted"]  # in stage order
    steam, heat = table.iloc[0], table.iloc[1]
    assert not steam["in_match"] and pd.isna(steam["allocated_quantity"])
    assert heat["in_match"] and heat["supply_name"] == "Pulp mill" and heat["demand_cluster"] == "Tampere"
    assert heat["notes"].endswith("Anna: Called <b>them</b>") and heat["notes_count"] == 1

    layer = pipeline_layer(entries, workspace.read().facilities, links=links)
    assert layer.crs.to_epsg() == 4326
    assert all(line.equals(shapely.LineString([(23.70, 61.47), (23.75, 61.49)])) for line in layer.geometry)
    path = tmp_path / "pipeline.gpkg"
    layer.to_file(path, layer="pipeline", driver="GPKG")
    back = gpd.read_file(path, layer="pipeline")
    assert sorted(back["stage"]) == ["contacted", "idea"] and back.geometry.geom_type.unique().tolist() == [
        "LineString"]


def test_the_layer_has_no_line_for_a_facility_without_a_place(workspace):
    workspace.add_synergy(LINK, author=ANNA)
    facilities = workspace.read().facilities
    facilities.loc[facilities["facility_id"] == "GREEN", "lat"] = float("nan")
    layer = pipeline_layer(workspace.synergies(), facilities)
    assert layer.geometry.isna().tolist() == [True]
    assert layer["demand_name"].tolist() == ["Greenhouse"]  # named from the facilities without a match
