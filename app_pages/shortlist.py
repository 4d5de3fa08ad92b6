"""The shortlist page: the filtered links as a sortable table, and exports of exactly those rows.

Every export is built when the page runs (cached per version of the data, the
filters and the view) and handed to its button as bytes, so a click finds its
file waiting and starts no rerun. Streamlit's deferred downloads (a callable
as ``data``) are not used: each run registers a new id for the callable and
the end of the run forgets the old one, so a click whose request reached the
server after a rerun (its own rerun, by default) found nothing ("Deferred file
... not found") and the browser got no file and no message. An export that
cannot be built shows why, in place of its button.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from app_pages import state
from geo.allocation import allocation_totals, totals_text
from geo.errors import GeoError
from geo.export import write_links
from geo.pipeline import method_notes
from geo.privacy import select_view
from layers.html import standalone_map

SHOWN = ["rank", "score", "status", "supply_name", "demand_name", "resource", "quantity", "quantity_range", "unit",
         "distance_km", "distance_source", "travel_time_min", "co2_saved_t_per_yr", "value_eur_per_yr",
         "basis", "score_driver", "precedent_at", "supply_country", "demand_country", "why"]
FORMATS = {"CSV": ".csv", "Excel": ".xlsx", "GeoJSON": ".geojson", "GeoPackage (QGIS)": ".gpkg",
           "HTML map (works offline)": ".html"}
MIME = {".csv": "text/csv", ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ".geojson": "application/geo+json", ".gpkg": "application/geopackage+sqlite3", ".html": "text/html"}

#: The server log's channel for exports that fail (the page shows one line).
log = logging.getLogger("symbiosis.app")


def export_bytes(links: pd.DataFrame, facilities: pd.DataFrame, suffix: str) -> bytes:
    """The file of one export format, built in a temporary folder."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"shortlist{suffix}"
        if suffix == ".html":
            path.write_text(standalone_map(facilities, links, title="Industrial symbiosis shortlist"), encoding="utf-8")
        else:
            write_links(links, path, method=method_notes(), facilities=facilities)
        return path.read_bytes()


@st.cache_data(max_entries=40, show_spinner=False)
def _export(key: str, suffix: str, _links: pd.DataFrame, _facilities: pd.DataFrame) -> bytes:  # noqa: ARG001
    """:func:`export_bytes`, cached per version of the data, filters and view (``key``) and format."""
    return export_bytes(_links, _facilities, suffix)


def _built(key: str, label: str, suffix: str, links: pd.DataFrame, facilities: pd.DataFrame) -> bytes | str:
    """The export's bytes, or a line saying why it could not be built (the traceback goes to the log)."""
    try:
        return _export(key, suffix, links, facilities)
    except GeoError as exc:
        return f"{label}: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
    except Exception as exc:
        log.exception("The %s export failed", label)
        return f"{label} could not be made ({type(exc).__name__}); the details are in the server log."


def _download_buttons(key: str, links: pd.DataFrame, facilities: pd.DataFrame) -> None:
    """One button per format, each holding its file; a format that failed shows its reason instead."""
    columns = st.columns(len(FORMATS))
    with st.spinner("Preparing the exports ..."):
        for column, (label, suffix) in zip(columns, FORMATS.items(), strict=True):
            data = b"" if links.empty else _built(key, label, suffix, links, facilities)
            if isinstance(data, str):
                column.button(label, key=f"failed{suffix}", disabled=True, width="stretch")
                column.error(state.plain(data), icon=":material/error:")
                continue
            # on_click="ignore": a click downloads and starts no rerun, so nothing can take the file away
            column.download_button(label, data=data, file_name=f"shortlist{suffix}", mime=MIME[suffix],
                                   key=f"download{suffix}", on_click="ignore", width="stretch",
                                   disabled=links.empty)


loaded = state.data()
filters = state.filter_widgets(loaded)
facilities, links = select_view(loaded.facilities, loaded.flows, loaded.links, filters)
involved = facilities[facilities["facility_id"].isin(set(links["supply_facility_id"]) | set(links["demand_facility_id"]))]

st.title("Shortlist")
state.show_url_notes()
state.show_left_out(loaded, filters.view)
st.caption(f"{len(links)} links match the filters (of {len(loaded.links)}). Click a column header to sort. "
           "Exports hold exactly these rows, in the chosen view.")
if filters.view == "full" and len(links):  # the public views give no sums that could add up to a hidden flow
    not_running = links[links["status"] != "existing"]
    st.caption("Counted once over the region (competing links share each supply and demand): "
               + totals_text(allocation_totals(not_running).iloc[0]) + ", in the links shown that do not run yet.")
st.dataframe(links[[c for c in SHOWN if c in links]], hide_index=True, width="stretch",
             column_config={"why": st.column_config.TextColumn("why", width="large")})
_download_buttons(f"{state.data_key()}|{filters}", links, involved)
