"""The data page: upload files (append, update by id or replace, after a preview), see every validation
problem, add and edit facilities and flows with forms that cannot misfile them, undo and redo this session's
changes, read the history of every change, and load a road network (with progress) for road distances and
routes.

Every change is one transaction in the workspace (:mod:`geo.workspace`): several people may edit at once,
and a change made from a facility someone else changed meanwhile is refused, saying who changed what.
After a change the page runs again at once, so every list shows what the workspace now holds.
The page's texts are in its language (``?lang=``); the engine's messages (validation problems, refusals,
the journal's summaries of changes) stay in English.
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
from app_pages.state import tr
from geo import settings
from geo.dataset import load_dataset
from geo.errors import EditConflict, GeoError, NetworkError, WorkspaceError
from geo.i18n import resource_name, word
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
from geo.export import column_labels
from geo.i18n import number
from geo.workspace import FACILITY_FIELDS, FLOW_FIELDS, UPLOAD_MODES, Change, Record, UploadPlan, validate_tables
from layers.assets import land_url
from layers.basemap import base_map
TYPES = [s.lstrip(".") for s in SUPPORTED_SUFFIXES]
ROAD_TYPES = ["pbf", "osm", "bz2", "graphml", "npz"]
#: Folder of the road-network files the page offers; default ``roads/`` beside the workspace.
#: Longest stem, in UTF-8 bytes, of the name an upload is saved under (file systems allow 255 bytes a name).
MAX_STEM_BYTES = 100
#: Stages of a road-network build that the progress bar names (catalogue ``stage.<name>``).
STAGES = ("read", "filter", "connect", "contract", "save")


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




#: Location precision of a facility's point (issue 14), and where a flow's quantity comes from; each value is
#: explained by the catalogue's ``precision.<value>`` and ``evidence.<value>``.
PRECISIONS = ("site", "address", "town")
EVIDENCE = ("published", "typical")


def _named(kind: str):
    """A ``format_func`` naming coded values in the page's language, fixed when it is made (a widget may call
    it after the run, where the page's language is no longer known)."""
    lang = state.lang()
    return lambda value: word(kind, value, lang)
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
        message = f"{tr(refused)}: {exc}"
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
    st.error(state.plain(tr("data.has_problems", what=what)), icon=":material/error:")
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
    name.text_input(tr("data.your_name"), key="author_name", on_change=_keep_name, placeholder=me.label)
    undo, redo = ws.next_undo(me), ws.next_redo(me)
    if undo_col.button(tr("data.undo"), key="undo", disabled=undo is None, width="stretch",
                       help=tr("data.undo_help", change=undo.summary) if undo else tr("data.undo_none")):
        ok, change, _ = _change(lambda: ws.undo(author=me), refused="data.not_undone")
        if ok and change is not None:
            _done(tr("data.undone", change=undo.summary))
    if redo_col.button(tr("data.redo"), key="redo", disabled=redo is None, width="stretch",
                       help=tr("data.redo_help", change=redo.summary) if redo else tr("data.redo_none")):
        ok, change, _ = _change(lambda: ws.redo(author=me), refused="data.not_redone")
        if ok and change is not None:
            _done(tr("data.redone", change=redo.summary))
    if undo is not None or redo is not None:
        st.caption(state.plain("; ".join(t for t in (tr("data.would_undo", change=undo.summary) if undo else "",
                                                     tr("data.would_redo", change=redo.summary) if redo else "")
                                         if t)))
    with st.expander(tr("data.history")):
        history = ws.history(limit=200)
        if history.empty:
            st.caption(tr("data.history_empty"))
        else:
            st.dataframe(history, hide_index=True, width="stretch")


# --- upload --------------------------------------------------------------------------------------------------

def _upload(facilities: pd.DataFrame, flows: pd.DataFrame) -> None:
    st.subheader(tr("data.upload"))
    st.caption(tr("data.upload_help"))
    round_ = st.session_state.get(UPLOAD_ROUND, 0)
    left, right = st.columns(2)
    suffix = f"_{round_}" if round_ else ""  # a new key empties the uploaders once an upload is saved
    fac_file = left.file_uploader(tr("data.facilities_file"), type=TYPES, key=f"upload_facilities{suffix}")
    flow_file = right.file_uploader(tr("data.flows_file"), type=TYPES, key=f"upload_flows{suffix}")
    if fac_file is None:
        return
    dataset = _read_upload(fac_file, flow_file)
    if dataset is None:
        return
    mode = st.radio(tr("data.upload_mode"), list(UPLOAD_MODES), index=None,
                    format_func=_named("upload_mode"), key=f"upload_mode{suffix}")
    if mode is None:
        st.info(tr("data.choose_mode"))
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
        st.info(tr("data.upload_nothing"))
        return
    confirmed = True
    if mode == "replace" and plan.removed:
        confirmed = st.checkbox(tr("data.confirm_replace", count=len(plan.removed)), key=f"upload_confirm{suffix}")
    if st.button(tr(f"data.apply.{mode}"), type="primary", disabled=not confirmed, key="upload_apply"):
        ws = state.workspace()
        ok, _, message = _change(lambda: ws.apply_upload(plan, author=state.author()), refused="data.not_loaded",
                                 show=False)
        st.session_state.pop(UPLOAD_PLAN, None)  # saved, or refused: either way the next preview is worked out anew
        if not ok:  # shown above the preview worked out again, of what the upload would change now
            st.session_state[UPLOAD_REFUSED] = message
            st.rerun()
        st.session_state[UPLOAD_ROUND] = round_ + 1
        _done(tr("data.upload_saved", file=fac_file.name, summary=plan.summary()))


def _read_upload(fac_file: UploadedFile, flow_file: UploadedFile | None):
    """The uploaded files, read and validated; None (with every problem listed) when they cannot be used."""
    with tempfile.TemporaryDirectory() as folder:
        fac_path = _saved_upload(fac_file, Path(folder) / "facilities")
        flow_path = _saved_upload(flow_file, Path(folder) / "flows") if flow_file is not None else None
        lang = state.lang()
        with st.status(tr("data.importing", file=fac_file.name), expanded=True) as status:
            sizes = [number(fac_file.size / 1e6, lang, decimals=1)]
            sizes += [number(flow_file.size / 1e6, lang, decimals=1)] if flow_file else []
            status.write(tr("data.read_mb", sizes=tr("totals.and", first=sizes[0], last=sizes[-1])
                            if len(sizes) > 1 else sizes[0]))
            try:
                dataset = load_dataset(fac_path, flow_path)
            except GeoError as exc:
                status.update(label=tr("data.cannot_read", file=fac_file.name), state="error")
                st.error(state.plain(str(exc)))
                return None
            status.write(tr("data.checked_rows", rows=len(dataset.facilities) + len(dataset.skipped)))
            status.update(label=tr("data.imported", file=fac_file.name),
                          state="complete" if dataset.report.ok else "error", expanded=False)
    problems = dataset.report.to_frame()
    st.write(tr("data.valid_counts", facilities=len(dataset.facilities), flows=len(dataset.flows),
                errors=len(dataset.report.errors), warnings=len(dataset.report.warnings)))
    if len(problems):
        st.dataframe(problems, hide_index=True, width="stretch")
    if not dataset.report.ok:
        st.warning(tr("data.fix_errors"))
        return None
    return dataset


def _preview(plan: UploadPlan) -> None:
    """What the upload would change: counts, and the ids of what is removed or updated."""
    st.markdown(f"**{tr('data.preview')}**")
    cols = st.columns(4)
    for col, (key, ids) in zip(cols, (("added", plan.added), ("updated", plan.updated), ("removed", plan.removed),
                                      ("unchanged", plan.unchanged))):
        col.metric(tr(f"data.preview.{key}"), number(len(ids), state.lang()))
    st.caption(state.plain(tr("data.preview.flows", added=plan.flows_added, removed=plan.flows_removed)))
    for key, ids in (("removed_ids", plan.removed), ("updated_ids", plan.updated)):
        if ids:
            shown = ", ".join(ids[:30]) + (" " + tr("left_out.more", count=len(ids) - 30) if len(ids) > 30 else "")
            st.caption(state.plain(tr(f"data.preview.{key}", ids=shown)))


# --- add a facility ------------------------------------------------------------------------------------------

def _nace_select(container, key: str, current: object = None) -> str | None:
    """A searchable list of NACE Rev. 2 activities (code and title); the stored code preselected, if any."""
    codes = nace_codes()
    options = codes.index.tolist()
    normal = normalise_nace(str(current)) if isinstance(current, str) and current.strip() else None
    return container.selectbox(tr("data.nace"), options, index=options.index(normal) if normal in options else None,
                               format_func=lambda c: codes.at[c, "label"], key=key,
                               placeholder=tr("data.nace_placeholder"))


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
    marker = folium.FeatureGroup(name=tr("data.new_layer"))
    if placed:
        folium.CircleMarker([lat, lon], radius=8, color="#D55E00", weight=2, fill=True, fill_opacity=0.9,
                            tooltip=tr("data.new_tooltip")).add_to(marker)
    st_folium(base_map(land_url=land_url()), key="new_map", feature_group_to_add=marker,
              returned_objects=["last_clicked"], center=[lat, lon] if placed else None, zoom=11 if placed else None,
              height=300, use_container_width=True)


def _add_facility(facilities: pd.DataFrame) -> None:
    st.subheader(tr("data.add_facility"))
    st.caption(tr("data.add_facility_help"))
    _pick_on_map()
    with st.form("add_facility_form", border=False):  # typing runs nothing until the facility is added
        a, b = st.columns(2)
        a.text_input(tr("data.id"), key="new_id")
        b.text_input(tr("data.name"), key="new_name")
        a.number_input(tr("data.lat"), value=None, min_value=-90.0, max_value=90.0, format="%.5f", key="new_lat",
                       placeholder=tr("data.click_or_type"))
        b.number_input(tr("data.lon"), value=None, min_value=-180.0, max_value=180.0, format="%.5f", key="new_lon",
                       placeholder=tr("data.click_or_type"))
        _nace_select(a, "new_nace")
        b.text_input(tr("data.country"), max_chars=2, key="new_country")
        a.text_input(tr("data.cluster"), key="new_cluster")
        b.selectbox(tr("data.precision"), PRECISIONS, index=None, format_func=_named("precision"),
                    key="new_precision", placeholder=tr("data.precision_placeholder"))
        adding = st.form_submit_button(tr("data.add_facility_button"), type="primary", key="add_facility")
    if adding:
        _save_new_facility(facilities)


def _save_new_facility(facilities: pd.DataFrame) -> None:
    s = st.session_state
    fid, name = (s.get("new_id") or "").strip(), (s.get("new_name") or "").strip()
    needed = [tr(f"data.needs.{what}") for what, value in (("id", fid), ("name", name), ("lat", s.get("new_lat")),
                                                            ("lon", s.get("new_lon"))) if value in (None, "")]
    if needed:
        st.error(tr("data.facility_needs", needed=", ".join(needed)), icon=":material/error:")
        return
    row = {"facility_id": fid, "name": name, "lat": s["new_lat"], "lon": s["new_lon"],
           "nace": _nace_text(s.get("new_nace")), "country": (s.get("new_country") or "").strip().upper(),
           "cluster": (s.get("new_cluster") or "").strip(), "precision": s.get("new_precision"),
           "source": "added in the app"}
    problems = _problems(facilities, [], row)
    if len(problems):
        _refuse(tr("data.the_facility", id=repr(fid)), problems)
        return
    ws = state.workspace()
    ok, _, _ = _change(lambda: ws.add_facility(row, author=state.author()), refused="data.not_added")
    if ok:
        _done(tr("data.facility_added", id=repr(fid), name=name), **NEW_FACILITY, flow_facility=fid)


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
    st.subheader(tr("data.edit_facility"))
    ids = facilities["facility_id"].dropna().astype(str).tolist()
    names = dict(zip(facilities["facility_id"], facilities["name"]))
    wanted = st.query_params.get("edit")
    if "edit_id" not in st.session_state and wanted in ids:
        st.session_state["edit_id"] = wanted
    chosen = st.selectbox(tr("data.facility_to_edit"), ids, index=None,
                          format_func=lambda f: f"{f} - {_blank(names.get(f))}",
                          placeholder=tr("data.choose_facility"), key="edit_id")
    if chosen is None:
        return
    base = _edit_base(chosen, facilities, flows)
    refused = st.session_state.get(EDIT_REFUSED)
    if refused is not None or base.facility is None:
        st.error(state.plain(refused or tr("data.gone", id=repr(chosen))), icon=":material/sync_problem:")
        if st.button(tr("data.reload", id=chosen), key="edit_reload"):
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
            "name": a.text_input(tr("data.name"), _blank(row.get("name")), key=f"edit_name_{tag}"),
            "operator": b.text_input(tr("data.operator"), _blank(row.get("operator")), key=f"edit_operator_{tag}"),
            "lat": a.number_input(tr("data.lat"), value=_number(row.get("lat")), min_value=-90.0, max_value=90.0,
                                  format="%.5f", key=f"edit_lat_{tag}"),
            "lon": b.number_input(tr("data.lon"), value=_number(row.get("lon")), min_value=-180.0, max_value=180.0,
                                  format="%.5f", key=f"edit_lon_{tag}"),
        }
        nace = _nace_select(a, f"edit_nace_{tag}", row.get("nace"))
        values |= {
            "country": b.text_input(tr("data.country"), _blank(row.get("country")), max_chars=2,
                                    key=f"edit_country_{tag}"),
            "cluster": a.text_input(tr("data.cluster"), _blank(row.get("cluster")), key=f"edit_cluster_{tag}"),
            "precision": b.selectbox(tr("data.precision"), PRECISIONS,
                                     index=PRECISIONS.index(row["precision"]) if row.get("precision") in PRECISIONS
                                     else None, format_func=_named("precision"), key=f"edit_precision_{tag}",
                                     placeholder=tr("data.precision_placeholder")),
            "source": a.text_input(tr("data.source"), _blank(row.get("source")), key=f"edit_source_{tag}"),
            "notes": st.text_area(tr("data.notes"), _blank(row.get("notes")), key=f"edit_notes_{tag}"),
        }
        st.caption(tr("data.flows_help"))
        labels = column_labels(state.lang())
        edited = st.data_editor(
            own, num_rows="dynamic", hide_index=True, key=f"flows_{tag}", width="stretch",
            column_config={
                "direction": st.column_config.SelectboxColumn(labels["direction"], options=["supply", "demand"],
                                                              required=True),
                "resource": st.column_config.SelectboxColumn(labels["resource"], options=leaves, required=True),
                "quantity": st.column_config.NumberColumn(labels["quantity"], min_value=0.0),
                "unit": st.column_config.TextColumn(labels["unit"], disabled=True),
                "ewc": st.column_config.TextColumn(labels["ewc"]),
                "description": st.column_config.TextColumn(labels["description"]),
                "max_distance_km": st.column_config.NumberColumn(labels["max_distance_km"], min_value=0.0),
                "partners": st.column_config.TextColumn(labels["partners"]),
                "confidential": st.column_config.CheckboxColumn(labels["confidential"], default=False),
                "source": st.column_config.TextColumn(labels["source"]),
                "evidence": st.column_config.SelectboxColumn(labels["evidence"], options=list(EVIDENCE)),
            })
        save, delete = st.columns(2)
        saving = save.form_submit_button(tr("data.save"), type="primary")
        deleting = delete.form_submit_button(tr("data.delete"))
    if saving:
        _save_edit(base, {**row, **values, "nace": _nace_text(nace) if nace else row.get("nace")}, edited,
                   facilities, taxonomy.units)
    elif deleting:
        ws = state.workspace()
        ok, _, message = _change(lambda: ws.delete_facility(fid, base_version=base.version, author=state.author()),
                                 refused="data.not_deleted", show=False)
        if not ok:
            _keep_refusal(message)
        st.session_state.pop(EDIT_BASE, None)
        if st.query_params.get("edit") == fid:
            del st.query_params["edit"]
        _done(tr("data.deleted", id=repr(fid)), edit_id=None)


def _save_edit(base: Record, row: dict, edited: pd.DataFrame, facilities: pd.DataFrame, units: dict) -> None:
    fid = base.facility_id
    if row.get("lat") is None or row.get("lon") is None:
        st.error(tr("data.needs_place"), icon=":material/error:")
        return
    table = edited.dropna(how="all", subset=["direction", "resource"]).copy()
    table["unit"] = table["resource"].map(lambda r: units.get(r) or None)
    new_flows = [{k: v for k, v in flow.items() if k in FLOW_FIELDS} for flow in table.to_dict("records")]
    problems = _problems(facilities, [{**f, "facility_id": fid} for f in new_flows], row)
    if len(problems):
        _refuse(tr("data.the_facility", id=repr(fid)), problems)
        return
    ws = state.workspace()
    ok, change, message = _change(lambda: ws.edit_facility(fid, row, new_flows, base_version=base.version,
                                                           author=state.author()), refused="data.not_saved", show=False)
    if not ok:
        _keep_refusal(message)
    st.session_state.pop(EDIT_BASE, None)
    _done(tr("data.saved", change=change.summary) if change else tr("data.unchanged", id=repr(fid)))


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
    st.subheader(tr("data.add_flow"))
    taxonomy = load_taxonomy()
    leaves, units = taxonomy.leaves, taxonomy.units
    ids = facilities["facility_id"].dropna().astype(str).tolist()
    names = dict(zip(facilities["facility_id"], facilities["name"]))
    fid = st.selectbox(tr("data.facility"), ids, index=None, format_func=lambda f: f"{f} - {_blank(names.get(f))}",
                       placeholder=tr("data.choose_facility"), key="flow_facility")
    a, b = st.columns(2)
    lang = state.lang()
    resource = a.selectbox(tr("data.resource"), leaves.index.tolist(), index=None, key="flow_resource",
                           format_func=lambda c: f"{c} - {resource_name(c, lang)}",
                           placeholder=tr("data.choose_resource"))
    direction = b.radio(tr("data.direction"), ["supply", "demand"], index=None, horizontal=True, key="flow_direction",
                        format_func=_named("direction"))
    unit = units.get(resource, "") if resource else ""
    quantity = b.number_input(tr("data.quantity_unit", unit=unit) if unit else tr("data.quantity"), min_value=0.0,
                              value=None, step=100.0, key="flow_quantity", placeholder=tr("data.unknown"))
    a.caption(tr("data.unit_is", unit=unit) if unit else tr("data.unit_follows"))
    evidence = a.selectbox(tr("data.evidence"), EVIDENCE, index=None, format_func=_named("evidence"),
                           key="flow_evidence", placeholder=tr("data.evidence_placeholder"))
    confidential = b.checkbox(tr("data.confidential"), key="flow_confidential")
    description = st.text_input(tr("data.description"), key="flow_description")
    if not st.button(tr("data.add_flow_button"), key="add_flow"):
        return
    needed = [tr(f"data.needs.{what}") for what, value in (("facility", fid), ("direction", direction),
                                                            ("resource", resource)) if value is None]
    if needed:
        st.error(tr("data.flow_needs", needed=", ".join(needed)), icon=":material/error:")
        return
    row = {"facility_id": fid, "direction": direction, "resource": resource, "quantity": quantity, "unit": unit or None,
           "description": description, "confidential": "true" if confidential else "false", "evidence": evidence,
           "source": "added in the app"}
    problems = _problems(facilities, [row], None)
    if len(problems):
        _refuse(tr("data.the_flow", direction=state.value_name("direction", direction), resource=resource), problems)
        return
    ws = state.workspace()
    ok, _, _ = _change(lambda: ws.add_flow(row, author=state.author()), refused="data.not_added")
    if ok:
        _done(tr("data.flow_added", direction=state.value_name("direction", direction), resource=resource,
                 unit=f" ({unit})" if unit else "", id=repr(fid), name=_blank(names.get(fid))), **NEW_FLOW)


# --- road network --------------------------------------------------------------------------------------------

def _road_network(facilities: pd.DataFrame) -> None:
    """Choose, build (with progress) or download the road network; or go back to straight-line estimates."""
    st.subheader(tr("roads.title"))
    current = state.network_file()
    if current is not None:
        st.write(state.plain(tr("roads.in_use", name=current.name)))
        if st.button(tr("roads.stop")):
            state.set_network_file(None)
            st.rerun()
    else:
        st.caption(tr("roads.none"))
    from_folder, upload, download = st.tabs([tr("roads.tab_folder"), tr("roads.tab_upload"), tr("roads.tab_download")])
    with from_folder:
        folder = _roads_folder()
        names = _road_files(folder)
        st.caption(state.plain(tr("roads.folder", folder=str(folder), env=state.ROADS_ENV)))
        if names:
            name = st.selectbox(tr("roads.file"), names, key="network_file")
            if st.button(tr("roads.load")):
                _build(name, source=folder / name, within=folder)
        else:
            st.info(tr("roads.folder_empty"))
    with upload:
        sent = st.file_uploader(tr("roads.file"), type=ROAD_TYPES, key="upload_network")
        if sent is not None and st.button(tr("roads.build_upload")):
            # only the built network is kept (in the roads folder); the uploaded file goes once it is built
            with tempfile.TemporaryDirectory() as scratch:
                _build(sent.name, source=_saved_upload(sent, Path(scratch) / "upload"))
    with download:
        clusters = sorted(c for c in facilities["cluster"].dropna().unique() if c)
        everything, every_label = "", tr("roads.all_facilities")  # every facility (a cluster's name is never empty)
        cluster = st.selectbox(tr("roads.area"), [everything] + clusters, key="network_area",
                               format_func=lambda c: c or every_label)
        chosen = facilities if cluster == everything else facilities[facilities["cluster"] == cluster]
        if chosen.empty:
            st.info(tr("roads.no_facility"))
            return
        area = network_area(chosen["lon"].to_numpy(float), chosen["lat"].to_numpy(float))
        size_km2 = area_km2(area)
        lang = state.lang()
        st.caption(tr("roads.area_size", facilities=state.count(len(chosen), "facility"), km2=number(size_km2, lang),
                      margin=f"{settings.DOWNLOAD_MARGIN_KM:g}"))
        too_big = size_km2 > settings.DOWNLOAD_MAX_AREA_KM2
        if too_big:
            st.warning(tr("roads.too_big", km2=number(settings.DOWNLOAD_MAX_AREA_KM2, lang)))
        if st.button(tr("roads.download"), disabled=too_big):
            _build(f"{cluster or 'all facilities'} roads", bbox=area)


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
    bar = st.progress(0.0, text=f"{label}: {tr('stage.start')} ...")

    def on_stage(name: str) -> None:
        done = BUILD_STAGES.index(name) if name in BUILD_STAGES else 0
        text = tr(f"stage.{name}") if name in STAGES else name
        bar.progress(done / len(BUILD_STAGES), text=f"{label}: {text} ...")

    try:
        network = road_network(source=source, within=within, bbox=bbox, download=bbox is not None, on_stage=on_stage)
    except NetworkError as exc:
        bar.empty()
        st.error(state.plain(tr("roads.not_loaded", why=_as_known(str(exc), source, label))))
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
            st.error(state.plain(tr("roads.not_kept", folder=str(target.parent), reason=reason)))
            return
    bar.progress(1.0, text=f"{label}: {tr('stage.done')}")
    state.set_network_file(target)
    st.success(state.plain(tr("roads.in_use_now", summary=network.summary())))


st.title(tr("page.data"))
_apply_pending()
workspace = state.workspace()
dataset, source = state.checked()  # validated, not matched: a change here is quick, the map matches when shown
facilities, flows = state.tables()
started = "" if workspace.exists() else " " + tr("data.started_from_demo")
st.caption(state.plain(tr("data.in_use", source=source, workspace=workspace.name, started=started)))
_flash()
problems = dataset.report.to_frame()
if len(problems):
    # rows with errors are left out of the map: say which, rather than drop them silently
    with st.expander(tr("data.problems", count=len(problems))):
        st.dataframe(problems, hide_index=True, width="stretch")
_session_bar()
_upload(facilities, flows)
_add_facility(facilities)
_edit_facility(facilities, flows)
_add_flow(facilities)
_road_network(pd.DataFrame(dataset.facilities.drop(columns="geometry")))
