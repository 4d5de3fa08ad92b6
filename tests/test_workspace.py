"""The workspace as a database several people edit at once, on a GeoPackage and on PostgreSQL/PostGIS.

Every test that is about the data runs on both back ends (the PostGIS one on a
server the tests start, see tests/postgis_server.py); the GeoPackage ones also
check what QGIS and the command line see, and what a killed save leaves.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import time

import pandas as pd
import pyogrio
import pytest

from geo.cli import main
from geo.dataset import load_dataset
from geo.errors import EditConflict, WorkspaceError
from geo.workspace import FLOW_FIELDS, SCRIPT, Author, Workspace
from tests import postgis_server
from tests.helpers import at_once

ANNA = Author("anna-session", "Anna")
BORIS = Author("boris-session", "Boris")

MILL = {"facility_id": "MILL", "name": "Pulp mill", "lat": 61.47, "lon": 23.70, "nace": "C17.11", "country": "FI",
        "cluster": "Tampere", "source": "test", "precision": "site"}
GREENHOUSE = {"facility_id": "GREEN", "name": "Greenhouse", "lat": 61.49, "lon": 23.75, "nace": "A01.13",
              "country": "FI", "cluster": "Tampere", "source": "test", "precision": "town"}
HEAT = {"facility_id": "MILL", "direction": "supply", "resource": "heat.hot_water", "quantity": 50000.0,
        "unit": "MWh/yr", "confidential": "false", "source": "test", "evidence": "typical"}
DEMAND = {"facility_id": "GREEN", "direction": "demand", "resource": "heat.hot_water", "quantity": 8000.0,
          "unit": "MWh/yr", "confidential": "false", "source": "test", "evidence": "published"}


@pytest.fixture(params=["geopackage", "postgis"])
def location(request, tmp_path) -> str:
    """Where a new, empty workspace lives: a file path, or a fresh PostGIS database's URL."""
    if request.param == "geopackage":
        return str(tmp_path / "workspace.gpkg")
    return postgis_server.cluster().new_database()


@pytest.fixture
def workspace(location) -> Workspace:
    """A workspace started with a pulp mill and a greenhouse that exchange heat."""
    ws = Workspace(location)
    ws.create(pd.DataFrame([MILL, GREENHOUSE]), pd.DataFrame([HEAT, DEMAND]), source="the test's tables")
    return ws


def names(ws: Workspace) -> dict[str, str]:
    table = ws.read().facilities
    return dict(zip(table["facility_id"], table["name"], strict=True))


# --- what QGIS, the command line and the engine see ------------------------------------------------------------

def test_a_geopackage_workspace_has_the_two_layers_qgis_and_the_command_line_read(tmp_path):
    ws = Workspace(tmp_path / "workspace.gpkg")
    ws.create(pd.DataFrame([MILL, GREENHOUSE]), pd.DataFrame([HEAT, DEMAND]))
    ws.add_facility({**MILL, "facility_id": "MILL-2", "name": "Second mill", "lon": 23.8}, author=ANNA)
    layers = {name: kind for name, kind in pyogrio.list_layers(ws.path)}
    assert layers == {"facilities": "Point", "flows": None}  # the journal and versions are not layers
    table = pyogrio.read_dataframe(ws.path, layer="facilities")
    assert table.crs.to_epsg() == 4326
    added = table[table["facility_id"] == "MILL-2"].iloc[0]
    assert (added.geometry.x, added.geometry.y) == (23.8, 61.47)
    dataset = load_dataset(ws.path)
    assert dataset.report.ok and len(dataset.facilities) == 3 and len(dataset.flows) == 2
    out = tmp_path / "links.csv"
    assert main(["match", "--facilities", str(ws.path), "--out", str(out)]) == 0
    links = pd.read_csv(out)
    assert set(links["supply_facility_id"]) == {"MILL"} and set(links["demand_facility_id"]) == {"GREEN"}


def test_precision_and_evidence_survive_the_workspace(workspace):
    assert workspace.record("GREEN").facility["precision"] == "town"
    assert workspace.record("MILL").flows[0]["evidence"] == "typical"
    dataset, version = workspace.dataset()
    assert dataset.report.ok and version == 1
    assert dict(zip(dataset.facilities["facility_id"], dataset.facilities["precision"])) == {"MILL": "site",
                                                                                             "GREEN": "town"}
    assert sorted(dataset.flows["evidence"]) == ["published", "typical"]


def test_problems_name_the_workspace_not_a_temporary_file(workspace):
    workspace.add_facility({**MILL, "facility_id": "BAD", "nace": "paper mill"}, author=ANNA)
    dataset, _ = workspace.dataset()
    files = {p.file for p in dataset.report.problems}
    assert files == {f"{workspace.name}[facilities]"}


def test_a_value_a_number_column_cannot_hold_is_refused(workspace):
    with pytest.raises(WorkspaceError, match="'north' is not a number"):
        workspace.add_facility({**MILL, "facility_id": "N", "lat": "north"}, author=ANNA)
    assert "N" not in names(workspace)


# --- several sessions at once --------------------------------------------------------------------------------

def test_two_sessions_adding_facilities_at_the_same_moment_keep_both(workspace):
    def adder(author: Author, prefix: str):
        ws = Workspace(workspace.location)  # each session its own object and connections
        return [ws.add_facility({**MILL, "facility_id": f"{prefix}-{i}", "name": f"{prefix} {i}"}, author=author)
                for i in range(10)]

    results = at_once(lambda: adder(ANNA, "A"), lambda: adder(BORIS, "B"))
    assert not [r for r in results if isinstance(r, Exception)], results
    stored = names(workspace)
    assert all(f"{p}-{i}" in stored for p in "AB" for i in range(10))
    versions = [c.id for r in results for c in r]
    assert len(set(versions)) == 20  # every save its own version


def test_a_stale_edit_is_refused_and_says_who_changed_what(workspace):
    opened = workspace.record("MILL")  # Anna opens the mill's form
    boris = Workspace(workspace.location).record("MILL")
    Workspace(workspace.location).edit_facility("MILL", {**boris.facility, "name": "Mill (Boris)"}, boris.flows,
                                                base_version=boris.version, author=BORIS)
    with pytest.raises(EditConflict) as refused:
        workspace.edit_facility("MILL", {**opened.facility, "operator": "Anna's operator"}, opened.flows,
                                base_version=opened.version, author=ANNA)
    message = str(refused.value)
    assert message.startswith("Not saved: facility 'MILL' was changed by Boris at ")
    assert "(edited facility 'MILL': name)" in message and "Reload facility 'MILL'" in message
    assert refused.value.change.author == "Boris"
    assert names(workspace)["MILL"] == "Mill (Boris)"  # Boris's edit stands, Anna's wrote nothing
    assert workspace.record("MILL").facility["operator"] is None


def test_of_two_edits_from_the_same_version_one_is_saved_and_one_refused(workspace):
    base = workspace.record("GREEN")

    def edit(author: Author, name: str):
        return Workspace(workspace.location).edit_facility("GREEN", {**base.facility, "name": name}, base.flows,
                                                           base_version=base.version, author=author)

    results = at_once(lambda: edit(ANNA, "Anna's greenhouse"), lambda: edit(BORIS, "Boris's greenhouse"))
    saved = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, EditConflict)]
    assert len(saved) == 1 and len(refused) == 1
    assert names(workspace)["GREEN"] == f"{saved[0].author}'s greenhouse"


def test_a_flow_for_a_facility_deleted_meanwhile_is_refused(workspace):
    mill = workspace.record("GREEN")
    workspace.delete_facility("GREEN", base_version=mill.version, author=BORIS)
    with pytest.raises(EditConflict, match=r"Not added: facility 'GREEN' is not in the workspace \(Boris at .*"
                                           r"deleted facility 'GREEN' and its 1 flow\)"):
        workspace.add_flow({**DEMAND, "resource": "gas.co2", "unit": "t/yr"}, author=ANNA)


def test_an_id_taken_is_refused_naming_who_took_it(workspace):
    workspace.add_facility({**MILL, "facility_id": "NEW"}, author=BORIS)
    with pytest.raises(EditConflict, match=r"Not added: facility 'NEW' exists already \(Boris at .*added facility"):
        workspace.add_facility({**GREENHOUSE, "facility_id": "NEW"}, author=ANNA)
    assert names(workspace)["NEW"] == "Pulp mill"


# --- undo and redo, per session ------------------------------------------------------------------------------

def test_undo_and_redo_step_through_a_sessions_own_changes(workspace):
    start = names(workspace)
    workspace.add_facility({**MILL, "facility_id": "A1", "name": "first"}, author=ANNA)
    workspace.add_flow({**HEAT, "facility_id": "A1"}, author=ANNA)
    rec = workspace.record("MILL")
    workspace.edit_facility("MILL", {**rec.facility, "name": "renamed"}, rec.flows, base_version=rec.version,
                            author=ANNA)
    workspace.add_facility({**GREENHOUSE, "facility_id": "B1"}, author=BORIS)  # Boris's own, in between
    assert workspace.next_undo(ANNA).summary == "edited facility 'MILL': name"
    for _ in range(3):
        assert workspace.undo(author=ANNA) is not None
    assert workspace.undo(author=ANNA) is None  # the start is not a step to undo
    assert names(workspace) == {**start, "B1": "Greenhouse"}  # Anna's three steps gone, Boris's change kept
    assert workspace.next_redo(ANNA).summary == "added facility 'A1' (first)"
    workspace.redo(author=ANNA)
    workspace.redo(author=ANNA)
    assert len(workspace.record("A1").flows) == 1 and names(workspace)["MILL"] == "Pulp mill"
    workspace.add_facility({**MILL, "facility_id": "A2"}, author=ANNA)  # a new change ends the redo
    assert workspace.next_redo(ANNA) is None and workspace.redo(author=ANNA) is None
    history = workspace.history()
    assert list(history["action"][:3]) == ["add facility", "redo", "redo"]
    assert history["who"].iloc[0] == "Anna"


def test_undo_is_refused_when_someone_else_changed_the_facility_since(workspace):
    rec = workspace.record("MILL")
    workspace.edit_facility("MILL", {**rec.facility, "name": "Anna's name"}, rec.flows, base_version=rec.version,
                            author=ANNA)
    workspace.add_flow({**HEAT, "resource": "gas.co2", "unit": "t/yr", "quantity": 100.0}, author=BORIS)
    with pytest.raises(EditConflict, match=r"Cannot undo 'edited facility 'MILL': name': facility 'MILL' was "
                                           r"changed after it by Boris at .*added a supply of gas.co2"):
        workspace.undo(author=ANNA)
    assert names(workspace)["MILL"] == "Anna's name" and len(workspace.record("MILL").flows) == 2
    assert workspace.undo(author=BORIS).summary.startswith("undid: added a supply")
    assert workspace.undo(author=ANNA).summary == "undid: edited facility 'MILL': name"  # now it can
    assert names(workspace)["MILL"] == "Pulp mill"


# --- uploads -------------------------------------------------------------------------------------------------

def test_upload_modes_append_update_and_replace(workspace):
    new = {**GREENHOUSE, "facility_id": "NEW", "name": "New site"}
    renamed = {**MILL, "name": "Mill, renamed"}
    upload = pd.DataFrame([renamed, new])
    flows = pd.DataFrame([{**HEAT, "quantity": 60000.0}, {**DEMAND, "facility_id": "NEW"}])

    append = workspace.plan_upload(upload, flows, mode="append")
    assert (append.added, append.updated, append.unchanged, append.removed) == (["NEW"], [], ["MILL"], [])
    assert append.summary() == "1 facility added, 0 updated, 0 removed; 1 flow added, 0 removed"
    update = workspace.plan_upload(upload, flows, mode="update")
    assert (update.added, update.updated, update.removed) == (["NEW"], ["MILL"], [])
    assert (update.flows_added, update.flows_removed) == (2, 1)  # the mill's flow replaced, the new site's added
    replace = workspace.plan_upload(upload, None, mode="replace")
    assert (replace.added, replace.updated, replace.removed) == (["NEW"], ["MILL"], ["GREEN"])
    assert (replace.flows_added, replace.flows_removed) == (0, 2)

    workspace.apply_upload(update, author=ANNA)
    assert names(workspace) == {"MILL": "Mill, renamed", "GREEN": "Greenhouse", "NEW": "New site"}
    assert workspace.record("MILL").flows[0]["quantity"] == 60000.0
    with pytest.raises(EditConflict, match="changed by Anna"):  # planned before the update: stale
        workspace.apply_upload(replace, author=ANNA)
    workspace.undo(author=ANNA)
    assert names(workspace) == {"MILL": "Pulp mill", "GREEN": "Greenhouse"}


def test_a_replace_keeps_what_the_upload_has_unchanged_and_removes_the_rest(workspace):
    plan = workspace.plan_upload(pd.DataFrame([MILL, {**GREENHOUSE, "facility_id": "NEW"}]), pd.DataFrame([HEAT]),
                                 mode="replace")
    assert (plan.added, plan.updated, plan.unchanged, plan.removed) == (["NEW"], [], ["MILL"], ["GREEN"])
    workspace.apply_upload(plan, author=ANNA)
    assert set(names(workspace)) == {"MILL", "NEW"} and workspace.record("MILL").flows[0]["evidence"] == "typical"


def test_a_replace_is_refused_when_a_facility_was_added_after_its_preview(workspace):
    plan = workspace.plan_upload(pd.DataFrame([MILL]), pd.DataFrame([HEAT]), mode="replace")
    assert plan.removed == ["GREEN"]
    workspace.add_facility({**MILL, "facility_id": "LATE"}, author=BORIS)
    with pytest.raises(EditConflict, match="Not replaced: facility 'LATE' was added after the preview"):
        workspace.apply_upload(plan, author=ANNA)
    assert set(names(workspace)) == {"MILL", "GREEN", "LATE"}


def test_an_upload_starts_a_workspace_that_does_not_exist_yet(location):
    ws = Workspace(location)
    assert not ws.exists()
    plan = ws.plan_upload(pd.DataFrame([MILL]), pd.DataFrame([HEAT]), mode="append")
    started = ws.apply_upload(plan, author=ANNA)
    assert started.action == "start" and names(ws) == {"MILL": "Pulp mill"}
    assert ws.next_undo(ANNA) is None


# --- files of older versions, and what a killed save leaves ---------------------------------------------------

def test_an_older_workspace_file_is_completed_and_its_temporary_files_removed(tmp_path):
    import geopandas as gpd

    path = tmp_path / "workspace.gpkg"
    old = gpd.GeoDataFrame(pd.DataFrame([MILL]).drop(columns="precision"),
                           geometry=gpd.points_from_xy([23.70], [61.47]), crs="EPSG:4326")
    pyogrio.write_dataframe(old, path, layer="facilities")
    pyogrio.write_dataframe(pd.DataFrame([HEAT]).drop(columns="evidence"), path, layer="flows")
    leftover = tmp_path / ".workspace-k2j4_x9q.gpkg"  # what a killed whole-file save of an older version left
    leftover.write_bytes(b"partial")
    ws = Workspace(path)
    ws.add_facility({**GREENHOUSE}, author=ANNA)
    assert ws.record("GREEN").facility["precision"] == "town"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["workspace.gpkg"]
    assert load_dataset(path).report.ok


def _save_forever(path: str, started) -> None:
    """Child process: replace the workspace's 100 facilities again and again, naming each round in them."""
    ws = Workspace(path)
    for round_ in range(1, 10**6):
        started.value = round_
        ws.save(_round(round_), pd.DataFrame(columns=FLOW_FIELDS))


def _round(number: int) -> pd.DataFrame:
    return pd.DataFrame([{**MILL, "facility_id": f"F{i:03d}", "name": f"round {number}", "lon": 20 + i / 100}
                         for i in range(100)])


def _rounds_stored(ws: Workspace) -> set[int]:
    return {int(name.split()[1]) for name in ws.read().facilities["name"]}


@pytest.mark.parametrize("delay_s", [0.05, 0.2])
def test_a_save_killed_midway_leaves_the_old_or_the_new_state_and_no_temporary_files(location, tmp_path, delay_s):
    Workspace(location).save(_round(0), pd.DataFrame(columns=FLOW_FIELDS))
    fork = multiprocessing.get_context("fork")
    started = fork.Value("i", 0)
    child = fork.Process(target=_save_forever, args=(location, started))
    child.start()
    deadline = time.monotonic() + 30
    while started.value < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(delay_s)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    last = started.value
    reopened = Workspace(location)
    assert _rounds_stored(reopened) in ({last - 1}, {last})  # one whole round, never a mix
    if reopened.path is not None:
        with sqlite3.connect(reopened.path) as con:
            assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["workspace.gpkg"]
    assert reopened.history(limit=1)["action"].iloc[0] in ("upload (replace)", "start")


def _create(path: str) -> None:
    Workspace(path).create(_round(1).assign(notes="x" * 2000), pd.DataFrame(columns=FLOW_FIELDS))


@pytest.mark.parametrize("delay_s", [0.06])
def test_a_start_killed_midway_leaves_no_workspace_or_a_whole_one_and_no_temporary_files(tmp_path, delay_s):
    path = str(tmp_path / "workspace.gpkg")
    child = multiprocessing.get_context("fork").Process(target=_create, args=(path,))
    child.start()
    time.sleep(delay_s)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    ws = Workspace(path)
    if ws.exists():
        assert _rounds_stored(ws) == {1}
    else:
        assert ws.create(_round(2), pd.DataFrame(columns=FLOW_FIELDS)) is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["workspace.gpkg"]


def test_two_sessions_starting_the_workspace_at_once_give_one(location):
    results = at_once(lambda: Workspace(location).create(pd.DataFrame([MILL]), pd.DataFrame([HEAT]), author=ANNA),
                       lambda: Workspace(location).create(pd.DataFrame([GREENHOUSE]), pd.DataFrame([DEMAND]),
                                                          author=BORIS))
    assert sum(r is not None for r in results) == 1, results
    assert set(names(Workspace(location))) in ({"MILL"}, {"GREEN"})
    assert Workspace(location).history()["action"].tolist() == ["start"]


def test_tables_with_an_id_twice_are_refused_before_anything_is_written(workspace):
    with pytest.raises(WorkspaceError, match="facility row 2: id 'MILL' is given twice"):
        workspace.save(pd.DataFrame([MILL, MILL]), pd.DataFrame([HEAT]), author=SCRIPT)
    assert set(names(workspace)) == {"MILL", "GREEN"}

