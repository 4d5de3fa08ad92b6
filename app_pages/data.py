"""The data page: upload files, see every validation problem, add and edit facilities and flows, undo,
and load a road network (with progress) for road distances and routes."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from app_pages import state
from geo import settings
from geo.dataset import load_dataset
from geo.errors import GeoError, NetworkError
from geo.io import SUPPORTED_SUFFIXES
from geo.network import (
    BUILD_STAGES,
    NETWORK_SUFFIXES,
    area_km2,
    network_area,
    resolve_within,
    road_network,
    save_network,
)
from geo.taxonomy import load_taxonomy
from geo.workspace import FACILITY_FIELDS, FLOW_FIELDS, Workspace

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


def _current_tables(loaded: state.Loaded) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The facilities and flows now in use, in the workspace's column order."""
    flows = loaded.flows[loaded.flows["basis"] == "declared"]
    return loaded.facilities.reindex(columns=FACILITY_FIELDS), flows.reindex(columns=FLOW_FIELDS)


def _validated(facilities: pd.DataFrame, flows: pd.DataFrame):
    """Validate tables through the engine (via a temporary workspace file) before they replace the workspace."""
    with tempfile.TemporaryDirectory() as folder:
        trial = Workspace(Path(folder) / "trial.gpkg")
        trial.save(facilities, flows)
        return load_dataset(trial.path)


def _save(facilities: pd.DataFrame, flows: pd.DataFrame, what: str) -> None:
    dataset = _validated(facilities, flows)
    if not dataset.report.ok:
        st.error(f"Not saved: {what} has problems.")
        problems = dataset.report.to_frame()
        # the check ran on a temporary copy: name the workspace table the user is changing instead
        problems["file"] = problems["file"].str.replace(r"^.*\[", f"{state.workspace().path.name}[", regex=True)
        st.dataframe(problems, hide_index=True, width="stretch")
        return
    state.workspace().save(facilities, flows)
    st.success(f"Saved: {what}. The map and shortlist show it now.")


def _upload() -> None:
    st.subheader("Load your own data")
    st.caption("Facilities and flows in CSV (any delimiter, decimal comma), Excel, GeoJSON or GeoPackage. "
               "A workbook or GeoPackage may hold both tables.")
    left, right = st.columns(2)
    fac_file = left.file_uploader("Facilities", type=TYPES, key="upload_facilities")
    flow_file = right.file_uploader("Flows (optional)", type=TYPES, key="upload_flows")
    if fac_file is None:
        return
    with tempfile.TemporaryDirectory() as folder:
        fac_path = _saved_upload(fac_file, Path(folder) / "facilities")
        flow_path = _saved_upload(flow_file, Path(folder) / "flows") if flow_file is not None else None
        with st.status(f"Importing {fac_file.name} ...", expanded=True) as status:
            status.write(f"Read {fac_file.size / 1e6:.1f} MB" + (f" and {flow_file.size / 1e6:.1f} MB" if flow_file else ""))
            try:
                dataset = load_dataset(fac_path, flow_path)
            except GeoError as exc:
                status.update(label=f"{fac_file.name} cannot be read", state="error")
                st.error(str(exc))
                return
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
        return
    if st.button("Use this data", type="primary"):
        _save(dataset.facilities.reindex(columns=FACILITY_FIELDS), dataset.flows.reindex(columns=FLOW_FIELDS),
              "the uploaded data")


def _add_facility(facilities: pd.DataFrame, flows: pd.DataFrame) -> None:
    st.subheader("Add a facility")
    with st.form("add_facility", clear_on_submit=False):
        a, b = st.columns(2)
        facility_id = a.text_input("Id (unique)")
        name = b.text_input("Name")
        lat = a.number_input("Latitude", value=60.17, format="%.5f")
        lon = b.number_input("Longitude", value=24.94, format="%.5f")
        nace = a.text_input("NACE code", placeholder="C17.12")
        country = b.text_input("Country (2 letters)", max_chars=2)
        cluster = a.text_input("Cluster")
        if st.form_submit_button("Add facility"):
            row = {"facility_id": facility_id.strip(), "name": name, "lat": lat, "lon": lon, "nace": nace,
                   "country": country, "cluster": cluster, "source": "added in the app"}
            _save(pd.concat([facilities, pd.DataFrame([row])], ignore_index=True), flows, f"facility {facility_id!r}")


def _add_flow(facilities: pd.DataFrame, flows: pd.DataFrame) -> None:
    st.subheader("Add a flow")
    leaves = load_taxonomy().leaves
    with st.form("add_flow"):
        a, b = st.columns(2)
        facility_id = a.selectbox("Facility", facilities["facility_id"].tolist(),
                                  format_func=lambda f: f"{f} - {facilities.set_index('facility_id').at[f, 'name']}")
        direction = b.radio("Direction", ["supply", "demand"], horizontal=True)
        resource = a.selectbox("Resource", leaves.index.tolist(), format_func=lambda c: f"{c} - {leaves.at[c, 'label']}")
        quantity = b.number_input("Quantity per year (0 = unknown)", min_value=0.0, step=100.0)
        unit = a.text_input("Unit", placeholder="t/yr or MWh/yr")
        confidential = b.checkbox("Confidential (hidden in the public view)")
        description = st.text_input("Description")
        if st.form_submit_button("Add flow"):
            row = {"facility_id": facility_id, "direction": direction, "resource": resource,
                   "quantity": quantity or None, "unit": unit, "description": description,
                   "confidential": "true" if confidential else "false", "source": "added in the app"}
            _save(facilities, pd.concat([flows, pd.DataFrame([row])], ignore_index=True),
                  f"{direction} of {resource} at {facility_id}")


def _edit_facility(facilities: pd.DataFrame, flows: pd.DataFrame) -> None:
    """Edit or delete a facility and its flows; ``?edit=<id>`` (the map panel's link) preselects one."""
    st.subheader("Edit a facility")
    ids = facilities["facility_id"].tolist()
    names = facilities.set_index("facility_id")["name"]
    wanted = st.query_params.get("edit")
    chosen = st.selectbox("Facility to edit", ids, index=ids.index(wanted) if wanted in ids else None,
                          format_func=lambda f: f"{f} - {names.get(f, '')}", placeholder="Choose a facility",
                          key="edit_id")
    if chosen is None:
        return
    row = facilities[facilities["facility_id"] == chosen].iloc[0]
    own = flows[flows["facility_id"] == chosen].drop(columns="facility_id").reset_index(drop=True)
    own["confidential"] = own["confidential"].astype(str).str.lower().isin(["true", "1", "yes"])
    leaves = load_taxonomy().leaves.index.tolist()
    with st.form(f"edit_{chosen}"):
        a, b = st.columns(2)
        values = {
            "name": a.text_input("Name", str(row["name"])),
            "operator": b.text_input("Operator", _blank(row.get("operator"))),
            "lat": a.number_input("Latitude", value=float(row["lat"]), format="%.5f"),
            "lon": b.number_input("Longitude", value=float(row["lon"]), format="%.5f"),
            "nace": a.text_input("NACE code", _blank(row.get("nace"))),
            "country": b.text_input("Country (2 letters)", _blank(row.get("country")), max_chars=2),
            "cluster": a.text_input("Cluster", _blank(row.get("cluster"))),
            "source": b.text_input("Source", _blank(row.get("source"))),
            "notes": st.text_area("Notes", _blank(row.get("notes"))),
        }
        st.caption("Flows of this facility: edit cells, add rows at the bottom, delete rows by selecting them.")
        edited = st.data_editor(
            own, num_rows="dynamic", hide_index=True, key=f"flows_{chosen}", width="stretch",
            column_config={
                "direction": st.column_config.SelectboxColumn("direction", options=["supply", "demand"], required=True),
                "resource": st.column_config.SelectboxColumn("resource", options=leaves, required=True),
                "quantity": st.column_config.NumberColumn("quantity", min_value=0.0),
                "confidential": st.column_config.CheckboxColumn("confidential", default=False),
            })
        save, delete = st.columns(2)
        saving = save.form_submit_button("Save changes", type="primary")
        deleting = delete.form_submit_button("Delete this facility and its flows")
    if saving:
        changed = facilities.copy()
        for column, value in values.items():
            changed.loc[changed["facility_id"] == chosen, column] = value
        ticked = edited["confidential"].fillna(False).astype(bool)
        new_flows = edited.assign(facility_id=chosen, confidential=ticked.map({True: "true", False: "false"}))
        new_flows = new_flows.reindex(columns=FLOW_FIELDS)
        _save(changed, pd.concat([flows[flows["facility_id"] != chosen], new_flows], ignore_index=True),
              f"facility {chosen!r}")
    elif deleting:
        _save(facilities[facilities["facility_id"] != chosen], flows[flows["facility_id"] != chosen],
              f"deletion of facility {chosen!r}")


def _blank(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


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
    else ``roads/`` beside the workspace."""
    return Path(os.environ.get(state.ROADS_ENV) or state.workspace().path.parent / "roads")


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
workspace = state.workspace()
loaded = state.data()
st.caption(f"In use: {loaded.source}. Changes are saved to the workspace {workspace.path}.")
if len(loaded.problems):
    # rows with errors are left out of the map: say which, rather than drop them silently
    with st.expander(f"{len(loaded.problems)} problems in the data in use (rows with errors are left out)"):
        st.dataframe(loaded.problems, hide_index=True, width="stretch")
if workspace.can_undo() and st.button("Undo the last change"):
    workspace.undo()
    st.rerun()
facilities, flows = _current_tables(loaded)
_upload()
_add_facility(facilities, flows)
_edit_facility(facilities, flows)
_add_flow(facilities, flows)
_road_network(facilities)
