"""The data page: upload files (append, update by id or replace, after a preview), see every validation
problem, add and edit facilities and flows with forms that cannot misfile them, undo and redo this session's
changes, read the history of every change, and load a road network (with progress) for road distances and
routes.

Every change is one transaction in the workspace (:mod:`geo.workspace`): several people may edit at once,
and a change made from a facility someone else changed meanwhile is refused, saying who changed what.
After a change the page runs again at once, so every list shows what the workspace now holds.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import folium
import pandas as pd
import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile
from streamlit_folium import st_folium

from app_pages import state
from geo import settings
from geo.dataset import load_dataset
from geo.errors import EditConflict, GeoError, NetworkError, WorkspaceError
from geo.io import SUPPORTED_SUFFIXES
from geo.nace import nace_codes
from geo.network import (
    BUILD_STAGES,
    NETWORK_SUFFIXES,
    area_km2,
    network_area,
    resolve_within,
    road_network,
    save_network,
)
from geo.schema import normalise_nace
from geo.taxonomy import load_taxonomy
from geo.workspace import FACILITY_FIELDS, FLOW_FIELDS, UPLOAD_MODES, Change, Record, UploadPlan, validate_tables
from layers.assets import land_url
from layers.basemap import base_map
TYPES = [s.lstrip(".") for s in SUPPORTED_SUFFIXES]
ROAD_TYPES = ["pbf", "osm", "bz2", "graphml", "npz"]
#: Folder of the road-network files the page offers; default ``roads/`` beside the workspace.
#: Longest stem, in UTF-8 bytes, of the name an upload is saved under (file systems allow 255 bytes a name).
MAX_STEM_BYTES = 100
STAGE_TEXT = {"read": "Reading the roads", "filter": "Keeping drivable roads", "connect": "Keeping the connected network",
              "contract": "Joining road segments between junctions", "save": "Saving to the cache"}


def _saved_name(name: str) -> str:
    """The file name an upload is saved under, from the name the browser sent.

    Only the part after the last ``/`` or ``\\`` is kept; anything but
    letters, digits, ``-``, ``_``, ``.`` and spaces (NUL and other control
    characters included) becomes ``_``; dots and spaces around the stem go
    (no hidden file, no ``..``); a long stem is cut to :data:`MAX_STEM_BYTES`,
    keeping the type (``.csv``, ``.osm.pbf``) that decides how the file is
    read. The page still shows the name as sent.
    """
    name = re.sub(r"[^\w. -]", "_", re.split(r"[/\\]", name)[-1])
    suffix = re.search(r"(\.\w{1,10}){0,2}\Z", name).group()
    stem = name[: len(name) - len(suffix)].encode()[:MAX_STEM_BYTES].decode(errors="ignore").strip(". ")
    return (stem or "upload") + suffix


def _saved_upload(sent: UploadedFile, folder: Path) -> Path:
    """Write an uploaded file into its own folder under :func:`_saved_name`; its path."""
    folder.mkdir()
    path = folder / _saved_name(sent.name)
    path.write_bytes(sent.getvalue())
    return path




#: Location precision of a facility's point (issue 14), and where a flow's quantity comes from.
PRECISIONS = {"site": "site: the plant itself, within about 300 m", "address": "address: its street address",
              "town": "town: only the town is known"}
EVIDENCE = {"published": "published: a register or report gives it", "typical": "typical: the usual size, estimated"}
# Session-state keys of the page's own bookkeeping (the widgets have theirs).
FLASH = "_data_flash"
PENDING = "_data_pending"
EDIT_BASE = "_edit_base"
EDIT_REFUSED = "_edit_refused"
UPLOAD_PLAN = "_upload_plan"
UPLOAD_ROUND = "_upload_round"
UPLOAD_REFUSED = "_upload_refused"
NEW_FACILITY = {"new_id": "", "new_name": "", "new_lat": None, "new_lon": None, "new_nace": None, "new_country": "",
                "new_cluster": "", "new_precision": None}
NEW_FLOW = {"flow_direction": None, "flow_resource": None, "flow_quantity": None, "flow_evidence": None,
            "flow_confidential": False, "flow_description": ""}


# --- after a change ------------------------------------------------------------------------------------------

def _apply_pending() -> None:
    """Set the widget values the last change asked for (a saved form emptied, the new facility chosen for its
    flows), before any widget of this run is drawn."""
    for key, value in st.session_state.pop(PENDING, {}).items():
        st.session_state[key] = value


def _done(message: str, **widgets: object) -> None:
    """A change was saved: say so on the next run, set these widget values, and run the page again at once,
    so that every list shows what the workspace holds now."""
    st.session_state[FLASH] = message
    st.session_state[PENDING] = widgets
    st.rerun()


def _flash() -> None:
    message = st.session_state.pop(FLASH, None)
    if message:
        st.success(state.plain(message), icon=":material/check_circle:")


def _change(do: Callable[[], Change | None], *, refused: str, show: bool = True) -> tuple[bool, Change | None, str]:
    """Start the workspace from the demo if need be, then make the change.

    Returns (True, the change, '') when it was made (the change is None when
    there was nothing to change), or (False, None, why) when it was refused;
    ``show`` says why on the page at once.
    """
    try:
        state.start_workspace()
        return True, do(), ""
    except EditConflict as exc:
        message = str(exc)
    except WorkspaceError as exc:
        message = f"{refused}: {exc}"
    if show:
        st.error(state.plain(message), icon=":material/sync_problem:")
    return False, None, message


def _problems(facilities: pd.DataFrame, flows: list[dict], row: dict | None) -> pd.DataFrame:
    """The errors the engine finds in a facility being saved (``row``) and in ``flows``, checked with the
    other facilities of the workspace (so partners and ids are checked against them)."""
    fac = facilities
    if row is not None:
        fac = pd.concat([facilities[facilities["facility_id"] != row["facility_id"]], pd.DataFrame([row])],
                        ignore_index=True)
    found = validate_tables(fac, pd.DataFrame(flows, columns=FLOW_FIELDS), name="form").report.to_frame()
    mine = (found["file"] == "form[flows]") | found["row"].isna()
    if row is not None:
        mine |= (found["file"] == "form[facilities]") & (found["row"] == len(fac))
    return found[mine & (found["severity"] == "error")][["column", "value", "message", "hint"]]


def _refuse(what: str, problems: pd.DataFrame) -> None:
    st.error(state.plain(f"Not saved: {what} has problems."), icon=":material/error:")
    st.dataframe(problems, hide_index=True, width="stretch")


# --- who, undo, redo, history --------------------------------------------------------------------------------

def _keep_name() -> None:
    st.session_state["_author_name"] = st.session_state.get("author_name", "")


def _session_bar() -> None:
    """The session's name in the history, undo and redo of its own changes, and everyone's history."""
    ws = state.workspace()
    me = state.author()
    if "author_name" not in st.session_state:
        st.session_state["author_name"] = st.session_state.get("_author_name", "")
    name, undo_col, redo_col = st.columns([2, 1, 1], vertical_alignment="bottom")
    name.text_input("Your name in the history (optional)", key="author_name", on_change=_keep_name,
                    placeholder=me.label)
    undo, redo = ws.next_undo(me), ws.next_redo(me)
    if undo_col.button("Undo", key="undo", disabled=undo is None, width="stretch",
                       help=f"Undo your last change: {undo.summary}" if undo else "You have no change to undo"):
        ok, change, _ = _change(lambda: ws.undo(author=me), refused="Not undone")
        if ok and change is not None:
            _done(f"Undone: {undo.summary}.")
    if redo_col.button("Redo", key="redo", disabled=redo is None, width="stretch",
                       help=f"Make again: {redo.summary}" if redo else "You have no undone change to make again"):
        ok, change, _ = _change(lambda: ws.redo(author=me), refused="Not redone")
        if ok and change is not None:
            _done(f"Made again: {redo.summary}.")
    if undo is not None or redo is not None:
        st.caption(state.plain("; ".join(t for t in (f"Undo would undo: {undo.summary}" if undo else "",
                                                     f"Redo would make again: {redo.summary}" if redo else "") if t)))
    with st.expander("History of changes (everyone's, newest first)"):
        history = ws.history(limit=200)
        if history.empty:
            st.caption("No change yet: the data in use is the bundled demo until the first one.")
        else:
            st.dataframe(history, hide_index=True, width="stretch")


# --- upload --------------------------------------------------------------------------------------------------

def _upload(facilities: pd.DataFrame, flows: pd.DataFrame) -> None:
    st.subheader("Load your own data")
    st.caption("Facilities and flows in CSV (any delimiter, decimal comma), Excel, GeoJSON or GeoPackage. "
               "A workbook or GeoPackage may hold both tables. Nothing changes until you have seen what the "
               "upload adds, updates and removes, and confirmed it.")
    round_ = st.session_state.get(UPLOAD_ROUND, 0)
    left, right = st.columns(2)
    suffix = f"_{round_}" if round_ else ""  # a new key empties the uploaders once an upload is saved
    fac_file = left.file_uploader("Facilities", type=TYPES, key=f"upload_facilities{suffix}")
    flow_file = right.file_uploader("Flows (optional)", type=TYPES, key=f"upload_flows{suffix}")
    if fac_file is None:
        return
    dataset = _read_upload(fac_file, flow_file)
    if dataset is None:
        return
    mode = st.radio("What the upload does to the workspace", list(UPLOAD_MODES), index=None,
                    format_func=UPLOAD_MODES.get, key=f"upload_mode{suffix}")
    if mode is None:
        st.info("Choose what the upload does; nothing changes before you confirm.")
        return
    given = flow_file is not None or Path(fac_file.name).suffix.lower() in (".xlsx", ".gpkg")
    key = (fac_file.file_id, flow_file.file_id if flow_file else None, mode)
    stored = st.session_state.get(UPLOAD_PLAN)
    if stored is None or stored[0] != key:  # the preview is worked out once; applying it checks nothing changed since
        ws = state.workspace()
        plan = ws.plan_upload(dataset.facilities.reindex(columns=FACILITY_FIELDS),
                              dataset.flows.reindex(columns=FLOW_FIELDS) if given else None, mode=mode,
                              start=None if ws.exists() else (facilities, flows))
        st.session_state[UPLOAD_PLAN] = stored = (key, plan)
    plan: UploadPlan = stored[1]
    refused = st.session_state.pop(UPLOAD_REFUSED, None)
    if refused:
        st.error(state.plain(refused), icon=":material/sync_problem:")
    _preview(plan)
    if not plan.changes_anything:
        st.info("The upload changes nothing in the workspace.")
        return
    confirmed = True
    if mode == "replace" and plan.removed:
        confirmed = st.checkbox(f"Yes, remove the {len(plan.removed):,} facilities that are not in the upload, "
                                "with their flows", key=f"upload_confirm{suffix}")
    label = {"append": "Append to the workspace", "update": "Update the workspace",
             "replace": "Replace the workspace"}[mode]
    if st.button(label, type="primary", disabled=not confirmed, key="upload_apply"):
        ws = state.workspace()
        ok, _, message = _change(lambda: ws.apply_upload(plan, author=state.author()), refused="Not loaded",
                                 show=False)
        st.session_state.pop(UPLOAD_PLAN, None)  # saved, or refused: either way the next preview is worked out anew
        if not ok:  # shown above the preview worked out again, of what the upload would change now
            st.session_state[UPLOAD_REFUSED] = message
            st.rerun()
        st.session_state[UPLOAD_ROUND] = round_ + 1
        _done(f"Saved: the upload of {fac_file.name} ({plan.summary()}). The map and shortlist show it now.")


def _read_upload(fac_file: UploadedFile, flow_file: UploadedFile | None):
    """The uploaded files, read and validated; None (with every problem listed) when they cannot be used."""
    with tempfile.TemporaryDirectory() as folder:
        fac_path = _saved_upload(fac_file, Path(folder) / "facilities")
        flow_path = _saved_upload(flow_file, Path(folder) / "flows") if flow_file is not None else None
        with st.status(f"Importing {fac_file.name} ...", expanded=True) as status:
            status.write(f"Read {fac_file.size / 1e6:.1f} MB" + (f" and {flow_file.size / 1e6:.1f} MB" if flow_file else ""))
            try:
                dataset = load_dataset(fac_path, flow_path)
            except GeoError as exc:
                status.update(label=f"{fac_file.name} cannot be read", state="error")
                st.error(state.plain(str(exc)))
                return None
            status.write(f"Checked {len(dataset.facilities) + len(dataset.skipped)} facility rows and every flow row")
            status.update(label=f"Imported {fac_file.name}", state="complete" if dataset.report.ok else "error",
                          expanded=False)
    problems = dataset.report.to_frame()
    st.write(f"{len(dataset.facilities)} valid facilities and {len(dataset.flows)} valid flows; "
             f"{len(dataset.report.errors)} errors and {len(dataset.report.warnings)} warnings.")
    if len(problems):
        st.dataframe(problems, hide_index=True, width="stretch")
    if not dataset.report.ok:
        st.warning("Fix the errors listed (file, row, column and hint) and upload again; nothing was loaded.")
        return None
    return dataset


def _preview(plan: UploadPlan) -> None:
    """What the upload would change: counts, and the ids of what is removed or updated."""
    st.markdown("**What the upload would change**")
    cols = st.columns(4)
    for col, (label, ids) in zip(cols, (("Facilities added", plan.added), ("Facilities updated", plan.updated),
                                        ("Facilities removed", plan.removed), ("Unchanged", plan.unchanged))):
        col.metric(label, f"{len(ids):,}")
    st.caption(state.plain(f"Flows: {plan.flows_added:,} added, {plan.flows_removed:,} removed."))
    for label, ids in (("Removed", plan.removed), ("Updated", plan.updated)):
        if ids:
            shown = ", ".join(ids[:30]) + (f" and {len(ids) - 30:,} more" if len(ids) > 30 else "")
            st.caption(state.plain(f"{label}: {shown}"))


# --- add a facility ------------------------------------------------------------------------------------------

def _nace_select(container, key: str, current: object = None) -> str | None:
    """A searchable list of NACE Rev. 2 activities (code and title); the stored code preselected, if any."""
    codes = nace_codes()
    options = codes.index.tolist()
    normal = normalise_nace(str(current)) if isinstance(current, str) and current.strip() else None
    return container.selectbox("NACE activity", options, index=options.index(normal) if normal in options else None,
                               format_func=lambda c: codes.at[c, "label"], key=key,
                               placeholder="Type a code or words: 35.30, paper, greenhouse ...")


def _nace_text(code: str | None) -> str | None:
    """The code as stored: with its section letter (``D35.30``)."""
    return None if code is None else nace_codes().at[code, "section"] + code


def _pick_on_map() -> None:
    """A small map: a click places the new facility (its latitude and longitude follow)."""
    clicked = (st.session_state.get("new_map") or {}).get("last_clicked")
    if clicked and clicked != st.session_state.get("_new_click"):
        st.session_state["_new_click"] = clicked
        st.session_state["new_lat"] = round(float(clicked["lat"]), 5)
        st.session_state["new_lon"] = round(float(clicked["lng"]), 5)
    lat, lon = st.session_state.get("new_lat"), st.session_state.get("new_lon")
    placed = lat is not None and lon is not None
    marker = folium.FeatureGroup(name="New facility")
    if placed:
        folium.CircleMarker([lat, lon], radius=8, color="#D55E00", weight=2, fill=True, fill_opacity=0.9,
                            tooltip="The new facility").add_to(marker)
    st_folium(base_map(land_url=land_url()), key="new_map", feature_group_to_add=marker,
              returned_objects=["last_clicked"], center=[lat, lon] if placed else None, zoom=11 if placed else None,
              height=300, use_container_width=True)


def _add_facility(facilities: pd.DataFrame) -> None:
    st.subheader("Add a facility")
    st.caption("Click the map to place it, or type its coordinates; nothing is filled in for you.")
    _pick_on_map()
    with st.form("add_facility_form", border=False):  # typing runs nothing until the facility is added
        a, b = st.columns(2)
        a.text_input("Id (unique)", key="new_id")
        b.text_input("Name", key="new_name")
        a.number_input("Latitude", value=None, min_value=-90.0, max_value=90.0, format="%.5f", key="new_lat",
                       placeholder="click the map, or type")
        b.number_input("Longitude", value=None, min_value=-180.0, max_value=180.0, format="%.5f", key="new_lon",
                       placeholder="click the map, or type")
        _nace_select(a, "new_nace")
        b.text_input("Country (2 letters)", max_chars=2, key="new_country")
        a.text_input("Cluster", key="new_cluster")
        b.selectbox("Location precision", list(PRECISIONS), index=None, format_func=PRECISIONS.get,
                    key="new_precision", placeholder="how exact the point is")
        adding = st.form_submit_button("Add facility", type="primary", key="add_facility")
    if adding:
        _save_new_facility(facilities)


def _save_new_facility(facilities: pd.DataFrame) -> None:
    s = st.session_state
    fid, name = (s.get("new_id") or "").strip(), (s.get("new_name") or "").strip()
    needed = [what for what, value in (("an id", fid), ("a name", name), ("a latitude", s.get("new_lat")),
                                       ("a longitude", s.get("new_lon"))) if value in (None, "")]
    if needed:
        st.error(f"Not added: the facility needs {', '.join(needed)}. Click the map to place it, or type its "
                 "coordinates.", icon=":material/error:")
        return
    row = {"facility_id": fid, "name": name, "lat": s["new_lat"], "lon": s["new_lon"],
           "nace": _nace_text(s.get("new_nace")), "country": (s.get("new_country") or "").strip().upper(),
           "cluster": (s.get("new_cluster") or "").strip(), "precision": s.get("new_precision"),
           "source": "added in the app"}
    problems = _problems(facilities, [], row)
    if len(problems):
        _refuse(f"facility {fid!r}", problems)
        return
    ws = state.workspace()
    ok, _, _ = _change(lambda: ws.add_facility(row, author=state.author()), refused="Not added")
    if ok:
        _done(f"Saved: added facility {fid!r} ({name}). Add its flows below (it is chosen there); the map and "
              "shortlist show it now.", **NEW_FACILITY, flow_facility=fid)


# --- edit a facility -----------------------------------------------------------------------------------------

def _edit_base(fid: str, facilities: pd.DataFrame, flows: pd.DataFrame) -> Record:
    """The facility as it was when its form was opened: the form shows it, and a save starts from its version."""
    base = st.session_state.get(EDIT_BASE)
    if base is None or base.facility_id != fid:
        ws = state.workspace()
        base = ws.record(fid) if ws.exists() else Record.of(fid, facilities, flows)
        st.session_state[EDIT_BASE] = base
        st.session_state.pop(EDIT_REFUSED, None)
    return base


def _edit_facility(facilities: pd.DataFrame, flows: pd.DataFrame) -> None:
    """Edit or delete a facility and its flows; ``?edit=<id>`` (the map panel's link) chooses one."""
    st.subheader("Edit a facility")
    ids = facilities["facility_id"].dropna().astype(str).tolist()
    names = dict(zip(facilities["facility_id"], facilities["name"]))
    wanted = st.query_params.get("edit")
    if "edit_id" not in st.session_state and wanted in ids:
        st.session_state["edit_id"] = wanted
    chosen = st.selectbox("Facility to edit", ids, index=None, format_func=lambda f: f"{f} - {_blank(names.get(f))}",
                          placeholder="Choose a facility (type to search)", key="edit_id")
    if chosen is None:
        return
    base = _edit_base(chosen, facilities, flows)
    refused = st.session_state.get(EDIT_REFUSED)
    if refused is not None or base.facility is None:
        st.error(state.plain(refused or f"Facility {chosen!r} is not in the workspace any more."),
                 icon=":material/sync_problem:")
        if st.button(f"Reload facility {chosen}", key="edit_reload"):
            st.session_state.pop(EDIT_BASE, None)
            st.session_state.pop(EDIT_REFUSED, None)
            st.rerun()
        if base.facility is None:
            return
    _edit_form(base, facilities)


def _edit_form(base: Record, facilities: pd.DataFrame) -> None:
    fid, row = base.facility_id, base.facility
    taxonomy = load_taxonomy()
    leaves = taxonomy.leaves.index.tolist()
    own = pd.DataFrame(base.flows, columns=[c for c in FLOW_FIELDS if c != "facility_id"])
    own["confidential"] = own["confidential"].astype(str).str.lower().isin(["true", "1", "yes"])
    tag = f"{fid}_{base.version}"
    with st.form(f"edit_{tag}"):
        a, b = st.columns(2)
        values = {
            "name": a.text_input("Name", _blank(row.get("name")), key=f"edit_name_{tag}"),
            "operator": b.text_input("Operator", _blank(row.get("operator")), key=f"edit_operator_{tag}"),
            "lat": a.number_input("Latitude", value=_number(row.get("lat")), min_value=-90.0, max_value=90.0,
                                  format="%.5f", key=f"edit_lat_{tag}"),
            "lon": b.number_input("Longitude", value=_number(row.get("lon")), min_value=-180.0, max_value=180.0,
                                  format="%.5f", key=f"edit_lon_{tag}"),
        }
        nace = _nace_select(a, f"edit_nace_{tag}", row.get("nace"))
        values |= {
            "country": b.text_input("Country (2 letters)", _blank(row.get("country")), max_chars=2,
                                    key=f"edit_country_{tag}"),
            "cluster": a.text_input("Cluster", _blank(row.get("cluster")), key=f"edit_cluster_{tag}"),
            "precision": b.selectbox("Location precision", list(PRECISIONS),
                                     index=list(PRECISIONS).index(row["precision"]) if row.get("precision") in PRECISIONS
                                     else None, format_func=PRECISIONS.get, key=f"edit_precision_{tag}",
                                     placeholder="how exact the point is"),
            "source": a.text_input("Source", _blank(row.get("source")), key=f"edit_source_{tag}"),
            "notes": st.text_area("Notes", _blank(row.get("notes")), key=f"edit_notes_{tag}"),
        }
        st.caption("Flows of this facility: edit cells, add rows at the bottom, delete rows by selecting them. "
                   "The unit follows the resource.")
        edited = st.data_editor(
            own, num_rows="dynamic", hide_index=True, key=f"flows_{tag}", width="stretch",
            column_config={
                "direction": st.column_config.SelectboxColumn("direction", options=["supply", "demand"], required=True),
                "resource": st.column_config.SelectboxColumn("resource", options=leaves, required=True),
                "quantity": st.column_config.NumberColumn("quantity", min_value=0.0),
                "unit": st.column_config.TextColumn("unit", disabled=True),
                "confidential": st.column_config.CheckboxColumn("confidential", default=False),
                "evidence": st.column_config.SelectboxColumn("evidence", options=list(EVIDENCE)),
            })
        save, delete = st.columns(2)
        saving = save.form_submit_button("Save changes", type="primary")
        deleting = delete.form_submit_button("Delete this facility and its flows")
    if saving:
        _save_edit(base, {**row, **values, "nace": _nace_text(nace) if nace else row.get("nace")}, edited,
                   facilities, taxonomy.units)
    elif deleting:
        ws = state.workspace()
        ok, _, message = _change(lambda: ws.delete_facility(fid, base_version=base.version, author=state.author()),
                                 refused="Not deleted", show=False)
        if not ok:
            _keep_refusal(message)
        st.session_state.pop(EDIT_BASE, None)
        if st.query_params.get("edit") == fid:
            del st.query_params["edit"]
        _done(f"Deleted facility {fid!r} and its flows.", edit_id=None)


def _save_edit(base: Record, row: dict, edited: pd.DataFrame, facilities: pd.DataFrame, units: dict) -> None:
    fid = base.facility_id
    if row.get("lat") is None or row.get("lon") is None:
        st.error("Not saved: the facility needs a latitude and a longitude.", icon=":material/error:")
        return
    table = edited.dropna(how="all", subset=["direction", "resource"]).copy()
    table["unit"] = table["resource"].map(lambda r: units.get(r) or None)
    new_flows = [{k: v for k, v in flow.items() if k in FLOW_FIELDS} for flow in table.to_dict("records")]
    problems = _problems(facilities, [{**f, "facility_id": fid} for f in new_flows], row)
    if len(problems):
        _refuse(f"facility {fid!r}", problems)
        return
    ws = state.workspace()
    ok, change, message = _change(lambda: ws.edit_facility(fid, row, new_flows, base_version=base.version,
                                                           author=state.author()), refused="Not saved", show=False)
    if not ok:
        _keep_refusal(message)
    st.session_state.pop(EDIT_BASE, None)
    _done(f"Saved: {change.summary}. The map and shortlist show it now." if change
          else f"Nothing to save: facility {fid!r} is as it was.")


def _keep_refusal(message: str) -> None:
    """Show a refused edit above its form, with a button to reload the facility, until the user does; the form
    keeps what was typed in it, to copy across."""
    st.session_state[EDIT_REFUSED] = message
    st.rerun()


def _blank(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def _number(value: object) -> float | None:
    return value if isinstance(value, float) and pd.notna(value) else None


# --- add a flow ----------------------------------------------------------------------------------------------

def _add_flow(facilities: pd.DataFrame) -> None:
    st.subheader("Add a flow")
    taxonomy = load_taxonomy()
    leaves, units = taxonomy.leaves, taxonomy.units
    ids = facilities["facility_id"].dropna().astype(str).tolist()
    names = dict(zip(facilities["facility_id"], facilities["name"]))
    fid = st.selectbox("Facility", ids, index=None, format_func=lambda f: f"{f} - {_blank(names.get(f))}",
                       placeholder="Choose the facility (type to search)", key="flow_facility")
    a, b = st.columns(2)
    resource = a.selectbox("Resource", leaves.index.tolist(), index=None, key="flow_resource",
                           format_func=lambda c: f"{c} - {leaves.at[c, 'label']}", placeholder="Choose the resource")
    direction = b.radio("Direction", ["supply", "demand"], index=None, horizontal=True, key="flow_direction")
    unit = units.get(resource, "") if resource else ""
    quantity = b.number_input(f"Quantity per year ({unit})" if unit else "Quantity per year", min_value=0.0, value=None,
                              step=100.0, key="flow_quantity", placeholder="unknown")
    a.caption(f"Unit: {unit} (follows the resource)" if unit else "The unit follows the resource.")
    evidence = a.selectbox("Evidence for the quantity", list(EVIDENCE), index=None, format_func=EVIDENCE.get,
                           key="flow_evidence", placeholder="published or typical")
    confidential = b.checkbox("Confidential (hidden in the public view)", key="flow_confidential")
    description = st.text_input("Description", key="flow_description")
    if not st.button("Add flow", key="add_flow"):
        return
    needed = [what for what, value in (("a facility", fid), ("a direction", direction), ("a resource", resource))
              if value is None]
    if needed:
        st.error(f"Not added: the flow needs {', '.join(needed)}.", icon=":material/error:")
        return
    row = {"facility_id": fid, "direction": direction, "resource": resource, "quantity": quantity, "unit": unit or None,
           "description": description, "confidential": "true" if confidential else "false", "evidence": evidence,
           "source": "added in the app"}
    problems = _problems(facilities, [row], None)
    if len(problems):
        _refuse(f"the {direction} of {resource}", problems)
        return
    ws = state.workspace()
    ok, _, _ = _change(lambda: ws.add_flow(row, author=state.author()), refused="Not added")
    if ok:
        _done(f"Saved: added a {direction} of {resource}" + (f" ({unit})" if unit else "")
              + f" to facility {fid!r} ({_blank(names.get(fid))}).", **NEW_FLOW)


# --- road network --------------------------------------------------------------------------------------------

def _road_network(facilities: pd.DataFrame) -> None:
    """Choose, build (with progress) or download the road network; or go back to straight-line estimates."""
    st.subheader("Road network")
    current = state.network_file()
    if current is not None:
        st.write(f"In use: {current.name}. Links within it have road distances; click a link on the map "
                 "for its route.")
        if st.button("Stop using this road network"):
            state.set_network_file(None)
            st.rerun()
    else:
        st.caption("None loaded: distances are straight-line estimates. Load an OpenStreetMap extract "
                   "(.osm.pbf, for example from Geofabrik), an .osm/.osm.bz2 or .graphml file, or a .npz built "
                   "with 'python -m geo network build'.")
    from_folder, upload, download = st.tabs(["Roads folder", "Upload", "Download (needs internet)"])
    with from_folder:
        folder = _roads_folder()
        names = _road_files(folder)
        st.caption(f"Road-network files in {folder} (set {state.ROADS_ENV} to use another folder); networks built here "
                   "are kept there too.")
        if names:
            name = st.selectbox("Road-network file", names, key="network_file")
            if st.button("Load this file"):
                _build(name, source=folder / name, within=folder)
        else:
            st.info("No road-network file there yet: copy one into the folder, upload one or download an area.")
    with upload:
        sent = st.file_uploader("Road-network file", type=ROAD_TYPES, key="upload_network")
        if sent is not None and st.button("Build from the upload"):
            # only the built network is kept (in the roads folder); the uploaded file goes once it is built
            with tempfile.TemporaryDirectory() as scratch:
                _build(sent.name, source=_saved_upload(sent, Path(scratch) / "upload"))
    with download:
        clusters = sorted(c for c in facilities["cluster"].dropna().unique() if c)
        cluster = st.selectbox("Area: the facilities of", ["all facilities"] + clusters, key="network_area")
        chosen = facilities if cluster == "all facilities" else facilities[facilities["cluster"] == cluster]
        if chosen.empty:
            st.info("No valid facility to download the roads around: add one, or correct the problems above.")
            return
        area = network_area(chosen["lon"].to_numpy(float), chosen["lat"].to_numpy(float))
        size_km2 = area_km2(area)
        st.caption(f"{len(chosen)} facilities; area {size_km2:,.0f} km2 with a {settings.DOWNLOAD_MARGIN_KM:g} km margin.")
        too_big = size_km2 > settings.DOWNLOAD_MAX_AREA_KM2
        if too_big:
            st.warning(f"That area is larger than {settings.DOWNLOAD_MAX_AREA_KM2:,.0f} km2, too much for one Overpass "
                       "download: choose a cluster, or load a regional extract file instead.")
        if st.button("Download the roads of this area", disabled=too_big):
            _build(f"{cluster} roads", bbox=area)


def _roads_folder() -> Path:
    """The folder the page offers road-network files from and keeps built ones in: ``SYMBIOSIS_ROADS_DIR``,
    else ``roads/`` beside the workspace (in ``data/`` for a workspace in PostgreSQL)."""
    return Path(os.environ.get(state.ROADS_ENV) or state.workspace_folder() / "roads")


def _road_files(folder: Path) -> list[str]:
    """Names of the files in the folder that the build reads, hidden ones and links out of it left out."""
    try:
        entries = sorted(folder.iterdir())
    except OSError:  # not made yet (the first build makes it), or not readable
        return []
    names = []
    for entry in entries:
        if entry.name.startswith(".") or not entry.name.lower().endswith(NETWORK_SUFFIXES):
            continue
        try:
            resolve_within(entry, folder)
        except NetworkError:
            continue
        if entry.is_file():
            names.append(entry.name)
    return names


def _built_name(label: str) -> str:
    """The file a built network is kept under in the roads folder: the label's safe name, as ``.npz``."""
    name = _saved_name(label).replace(" ", "_")
    known = next((s for s in sorted(NETWORK_SUFFIXES, key=len, reverse=True) if name.lower().endswith(s)), "")
    return (name[: len(name) - len(known)] or "roads") + ".npz"


def _as_known(message: str, source: Path | None, label: str) -> str:
    """A message with the file named as the user knows it (``label``), not by its path on the server."""
    if source is not None:
        for path in (source.resolve(), source):
            message = message.replace(str(path), label)
    return message


def _build(label: str, *, source: Path | None = None, within: Path | None = None,
           bbox: tuple[float, float, float, float] | None = None) -> None:
    """Build the road network with a progress bar, keep it in the roads folder and use it.

    ``within`` confines ``source`` to a folder (see :func:`geo.network.resolve_within`).
    """
    bar = st.progress(0.0, text=f"{label}: starting ...")

    def on_stage(name: str) -> None:
        done = BUILD_STAGES.index(name) if name in BUILD_STAGES else 0
        bar.progress(done / len(BUILD_STAGES), text=f"{label}: {STAGE_TEXT.get(name, name)} ...")

    try:
        network = road_network(source=source, within=within, bbox=bbox, download=bbox is not None, on_stage=on_stage)
    except NetworkError as exc:
        bar.empty()
        st.error(f"No road network loaded: {_as_known(str(exc), source, label)}")
        return
    chosen_npz = within is not None and source is not None and source.name.lower().endswith(".npz")
    target = source if chosen_npz else _roads_folder() / _built_name(label)
    if not chosen_npz:
        on_stage("save")
        try:
            save_network(network, target)
        except OSError as exc:
            bar.empty()
            reason = exc.strerror or type(exc).__name__
            st.error(f"No road network loaded: it was built but cannot be kept in {target.parent} ({reason})")
            return
    bar.progress(1.0, text=f"{label}: done")
    state.set_network_file(target)
    st.success(f"Road network in use: {network.summary()}")


st.title("Data")
_apply_pending()
workspace = state.workspace()
dataset, source = state.checked()  # validated, not matched: a change here is quick, the map matches when shown
facilities, flows = state.tables()
started = "" if workspace.exists() else " (started from the bundled demo at the first change)"
st.caption(state.plain(f"In use: {source}. Changes are saved to the workspace {workspace.name}{started}, "
                       "one at a time, so several people can edit at once."))
_flash()
problems = dataset.report.to_frame()
if len(problems):
    # rows with errors are left out of the map: say which, rather than drop them silently
    with st.expander(f"{len(problems)} problems in the data in use (rows with errors are left out)"):
        st.dataframe(problems, hide_index=True, width="stretch")
_session_bar()
_upload(facilities, flows)
_add_facility(facilities)
_edit_facility(facilities, flows)
_add_flow(facilities)
_road_network(pd.DataFrame(dataset.facilities.drop(columns="geometry")))
