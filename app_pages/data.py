"""The data page: upload files, see every validation problem, add facilities and flows, undo."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from app_pages import state
from geo.dataset import load_dataset
from geo.errors import GeoError
from geo.io import SUPPORTED_SUFFIXES
from geo.taxonomy import load_taxonomy
from geo.workspace import FACILITY_FIELDS, FLOW_FIELDS, Workspace

TYPES = [s.lstrip(".") for s in SUPPORTED_SUFFIXES]


def _current_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The facilities and flows now in use, in the workspace's column order."""
    loaded = state.data()
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
        fac_path = Path(folder) / Path(fac_file.name).name
        fac_path.write_bytes(fac_file.getvalue())
        flow_path = None
        if flow_file is not None:
            flow_path = Path(folder) / ("flows-" + Path(flow_file.name).name)
            flow_path.write_bytes(flow_file.getvalue())
        try:
            dataset = load_dataset(fac_path, flow_path)
        except GeoError as exc:
            st.error(str(exc))
            return
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
facilities, flows = _current_tables()
_upload()
_add_facility(facilities, flows)
_add_flow(facilities, flows)
