"""The shortlist page: the filtered links as a sortable table, and exports of exactly those rows."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from app_pages import state
from geo.allocation import allocation_totals, totals_text
from geo.export import write_links
from geo.pipeline import method_notes
from layers.html import standalone_map

SHOWN = ["rank", "score", "status", "supply_name", "demand_name", "resource", "quantity", "quantity_range", "unit",
         "distance_km", "distance_source", "travel_time_min", "co2_saved_t_per_yr", "value_eur_per_yr",
         "basis", "score_driver", "precedent_at", "supply_country", "demand_country", "why"]
FORMATS = {"CSV": ".csv", "Excel": ".xlsx", "GeoJSON": ".geojson", "GeoPackage (QGIS)": ".gpkg",
           "HTML map (works offline)": ".html"}
MIME = {".csv": "text/csv", ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ".geojson": "application/geo+json", ".gpkg": "application/geopackage+sqlite3", ".html": "text/html"}


def export_bytes(links: pd.DataFrame, facilities: pd.DataFrame, suffix: str) -> bytes:
    """The file of one export format, built in a temporary folder."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"shortlist{suffix}"
        if suffix == ".html":
            path.write_text(standalone_map(facilities, links, title="Industrial symbiosis shortlist"), encoding="utf-8")
        else:
            write_links(links, path, method=method_notes(), facilities=facilities)
        return path.read_bytes()


loaded = state.data()
filters = state.filter_widgets(loaded)
facilities, links = state.selection(loaded, filters)
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

columns = st.columns(len(FORMATS))
for column, (label, suffix) in zip(columns, FORMATS.items(), strict=True):
    # deferred: a file is built only when its button is pressed, so filtering never waits on five exports
    column.download_button(label, data=functools.partial(export_bytes, links, involved, suffix),
                           file_name=f"shortlist{suffix}",
                           mime=MIME[suffix], key=f"download{suffix}", width="stretch",
                           disabled=links.empty)
