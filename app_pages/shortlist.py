"""The shortlist page: the filtered links as a sortable table, and exports of exactly those rows.

The table shows its columns under their names and units (:data:`geo.export.LABELS`), resources by
name, quantities, CO2 and euros to 3 significant figures, km and scores to one decimal; its frame
keeps the engine's column names.

The exports (:data:`FORMATS`) are for two kinds of reader. For people: the Excel file and "CSV for
Excel" carry column names, resource names and rounded figures, and the CSV uses semicolons and
decimal commas, which Excel set to Finnish, Swedish or most other European languages opens straight
into columns; the HTML map explains each link. For programs: "CSV" is the file ``python -m geo
match`` writes (commas, decimal points, snake_case names, resource codes), GeoJSON and GeoPackage
keep raw values (the GeoPackage with QGIS styles). The Excel file and the HTML map list the method,
the data and its version, the view and the filters, and the date.

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
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from app_pages import state
from geo.allocation import allocation_totals, totals_text
from geo.errors import GeoError
from geo.export import LABELS, describe_filters, resource_names, significant, write_links
from geo.pipeline import method_notes
from geo.privacy import select_view
from geo.selection import Filters
from layers.html import standalone_map

SHOWN = ["rank", "score", "status", "supply_name", "demand_name", "resource", "quantity", "quantity_range", "unit",
         "distance_km", "distance_source", "travel_time_min", "co2_saved_t_per_yr", "value_eur_per_yr",
         "basis", "score_driver", "precedent_at", "supply_country", "demand_country", "why"]
#: How the table shows its numeric columns (printf formats, or Streamlit's "localized": thousands separators
#: as the browser's language writes them).
NUMBER_FORMATS = {"rank": "%d", "score": "%.1f", "distance_km": "%.1f", "travel_time_min": "%.0f",
                  "quantity": "localized", "co2_saved_t_per_yr": "localized", "value_eur_per_yr": "localized"}
#: Columns shown to 3 significant figures.
SIGNIFICANT = ("quantity", "co2_saved_t_per_yr", "value_eur_per_yr")


@dataclass(frozen=True)
class Export:
    """One export button: its file, and whether the file is for reading (labels) or for programs."""

    suffix: str
    file_name: str
    help: str
    labels: bool = False
    csv_style: str = "plain"


FORMATS = {
    "Excel": Export(".xlsx", "shortlist.xlsx", "Sheets of links, facilities, method and sources, with column "
                    "names, filters and number formats.", labels=True),
    "CSV for Excel": Export(".csv", "shortlist-excel.csv", "Semicolons and decimal commas, as Excel reads them in "
                            "Finland, Sweden and most of Europe; column and resource names for reading.",
                            labels=True, csv_style="nordic"),
    "CSV": Export(".csv", "shortlist.csv", "Commas and decimal points, column names and resource codes as the "
                  "command line writes them: for scripts, or Excel set to English."),
    "GeoJSON": Export(".geojson", "shortlist.geojson", "Links as lines with every figure unrounded."),
    "GeoPackage (QGIS)": Export(".gpkg", "shortlist.gpkg", "Layers of links and facilities that open in QGIS "
                                "with their styles: colour by score, width by quantity."),
    "HTML map (works offline)": Export(".html", "shortlist.html", "One file to email: the map with each link's "
                                       "explanation, a table of the links and the method."),
}
MIME = {".csv": "text/csv", ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ".geojson": "application/geo+json", ".gpkg": "application/geopackage+sqlite3", ".html": "text/html"}

#: The server log's channel for exports that fail (the page shows one line).
log = logging.getLogger("symbiosis.app")


def export_bytes(links: pd.DataFrame, facilities: pd.DataFrame, export: Export, *, method: dict[str, str],
                 breaks: tuple[float, ...] | None = None) -> bytes:
    """The file of one export, built in a temporary folder."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / export.file_name
        if export.suffix == ".html":
            page = standalone_map(facilities, links, title="Industrial symbiosis shortlist", method=method,
                                  breaks=breaks)
            path.write_text(page, encoding="utf-8")
        else:
            write_links(links, path, method=method, facilities=facilities, labels=export.labels,
                        csv_style=export.csv_style, score_breaks=breaks)
        return path.read_bytes()


@st.cache_data(max_entries=40, show_spinner=False)
def _export(key: str, label: str, _links: pd.DataFrame, _facilities: pd.DataFrame, _method: dict[str, str],
            _breaks: tuple[float, ...]) -> bytes:  # noqa: ARG001 - key
    """:func:`export_bytes`, cached per version of the data, filters and view (``key``) and export."""
    return export_bytes(_links, _facilities, FORMATS[label], method=_method, breaks=_breaks)


def _built(key: str, label: str, links: pd.DataFrame, facilities: pd.DataFrame, method: dict[str, str],
           breaks: tuple[float, ...]) -> bytes | str:
    """The export's bytes, or a line saying why it could not be built (the traceback goes to the log)."""
    try:
        return _export(key, label, links, facilities, method, breaks)
    except GeoError as exc:
        return f"{label}: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
    except Exception as exc:
        log.exception("The %s export failed", label)
        return f"{label} could not be made ({type(exc).__name__}); the details are in the server log."


def _download_buttons(key: str, links: pd.DataFrame, facilities: pd.DataFrame, method: dict[str, str],
                      breaks: tuple[float, ...]) -> None:
    """One button per export, each holding its file; an export that failed shows its reason instead."""
    columns = st.columns(len(FORMATS))
    with st.spinner("Preparing the exports ..."):
        for column, (label, export) in zip(columns, FORMATS.items(), strict=True):
            data = b"" if links.empty else _built(key, label, links, facilities, method, breaks)
            if isinstance(data, str):
                column.button(label, key=f"failed{export.file_name}", disabled=True, width="stretch")
                column.error(state.plain(data), icon=":material/error:")
                continue
            # on_click="ignore": a click downloads and starts no rerun, so nothing can take the file away
            column.download_button(label, data=data, file_name=export.file_name, mime=MIME[export.suffix],
                                   key=f"download{export.file_name}", on_click="ignore", width="stretch",
                                   disabled=links.empty, help=export.help)
    st.caption("CSV for Excel has semicolons and decimal commas, as Excel reads them in Finland, Sweden and most of "
               "Europe; CSV has commas, decimal points and the command line's column names and resource codes.")


def _method(loaded: state.Loaded, filters: Filters) -> dict[str, str]:
    """What the exports say about how their links were found: the data and its version, view, filters, method."""
    notes = method_notes(network=state.network() if loaded.network else None)
    for item in ("facilities", "flows"):  # file paths of the command line; the data item below names them
        notes.pop(item, None)
    return {"data": _data_version(loaded),
            "road network": Path(loaded.network).name if loaded.network else "",
            "view": state.VIEWS.get(filters.view, filters.view),
            "filters": describe_filters(filters), **notes}


def _data_version(loaded: state.Loaded) -> str:
    """The data by name and version: the workspace and its last change, or the bundled demo."""
    workspace = state.workspace()
    if workspace.data_key():
        return f"{loaded.source}, change {workspace.version()}"
    return f"the bundled demo ({loaded.source})"


def _table(links: pd.DataFrame) -> pd.DataFrame:
    """The columns shown, resources by name and large figures to 3 significant figures (names unchanged)."""
    table = links[[c for c in SHOWN if c in links]].copy()
    if "resource" in table:
        table["resource"] = resource_names(table["resource"])
    for column in SIGNIFICANT:
        if column in table:
            table[column] = significant(pd.to_numeric(table[column], errors="coerce"))
    return table


def _column_config(columns) -> dict:
    """Each column under its label and unit; numbers in their format, the explanation wide."""
    config = {}
    for column in columns:
        label = LABELS.get(column, column)
        if column in NUMBER_FORMATS:
            config[column] = st.column_config.NumberColumn(label, format=NUMBER_FORMATS[column])
        else:
            config[column] = st.column_config.TextColumn(label, width="large" if column == "why" else None)
    return config


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
shown = _table(links)
st.dataframe(shown, hide_index=True, width="stretch", column_config=_column_config(shown.columns))
_download_buttons(f"{state.data_key()}|{filters}", links, involved, _method(loaded, filters), loaded.score_breaks)
