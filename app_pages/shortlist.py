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
the data and its version, the view and the filters, and the date. The page, the column labels of the
exports for people and the HTML map are in the page's language (``?lang=``).

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
from app_pages.state import tr
from geo.allocation import allocation_totals
from geo.errors import GeoError
from geo.export import column_labels, describe_filters, significant, write_links
from geo.i18n import resource_names, t
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
    """One export button: its file, and whether the file is for reading (labels) or for programs. Its button's
    label and help are the catalogue's ``export.<name>`` and ``export.<name>.help``."""

    suffix: str
    file_name: str
    labels: bool = False
    csv_style: str = "plain"


FORMATS = {
    "excel": Export(".xlsx", "shortlist.xlsx", labels=True),
    "csv_excel": Export(".csv", "shortlist-excel.csv", labels=True, csv_style="nordic"),
    "csv": Export(".csv", "shortlist.csv"),
    "geojson": Export(".geojson", "shortlist.geojson"),
    "gpkg": Export(".gpkg", "shortlist.gpkg"),
    "html": Export(".html", "shortlist.html"),
}
MIME = {".csv": "text/csv", ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ".geojson": "application/geo+json", ".gpkg": "application/geopackage+sqlite3", ".html": "text/html"}

#: The server log's channel for exports that fail (the page shows one line).
log = logging.getLogger("symbiosis.app")


def export_bytes(links: pd.DataFrame, facilities: pd.DataFrame, export: Export, *, method: dict[str, str],
                 breaks: tuple[float, ...] | None = None, lang: str = "en") -> bytes:
    """The file of one export in a language (its labels, names and notes), built in a temporary folder."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / export.file_name
        if export.suffix == ".html":
            page = standalone_map(facilities, links, title=t("export.html_title", lang), method=method,
                                  breaks=breaks, lang=lang)
            path.write_text(page, encoding="utf-8")
        else:
            write_links(links, path, method=method, facilities=facilities, labels=export.labels,
                        csv_style=export.csv_style, score_breaks=breaks, lang=lang)
        return path.read_bytes()


@st.cache_data(max_entries=40, show_spinner=False)
def _export(key: str, name: str, lang: str, _links: pd.DataFrame, _facilities: pd.DataFrame,  # noqa: ARG001 - key
            _method: dict[str, str], _breaks: tuple[float, ...]) -> bytes:
    """:func:`export_bytes`, cached per version of the data, filters and view (``key``), export and language."""
    return export_bytes(_links, _facilities, FORMATS[name], method=_method, breaks=_breaks, lang=lang)


def _built(key: str, name: str, links: pd.DataFrame, facilities: pd.DataFrame, method: dict[str, str],
           breaks: tuple[float, ...]) -> bytes | str:
    """The export's bytes, or a line saying why it could not be built (the traceback goes to the log)."""
    label = tr(f"export.{name}")
    try:
        return _export(key, name, state.lang(), links, facilities, method, breaks)
    except GeoError as exc:
        return f"{label}: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
    except Exception as exc:
        log.exception("The %s export failed", name)
        return tr("export.failed", export=label, kind=type(exc).__name__)


def _download_buttons(key: str, links: pd.DataFrame, facilities: pd.DataFrame, method: dict[str, str],
                      breaks: tuple[float, ...]) -> None:
    """One button per export, each holding its file; an export that failed shows its reason instead."""
    columns = st.columns(len(FORMATS))
    with st.spinner(tr("export.preparing")):
        for column, (name, export) in zip(columns, FORMATS.items(), strict=True):
            label = tr(f"export.{name}")
            data = b"" if links.empty else _built(key, name, links, facilities, method, breaks)
            if isinstance(data, str):
                column.button(label, key=f"failed{export.file_name}", disabled=True, width="stretch")
                column.error(state.plain(data), icon=":material/error:")
                continue
            # on_click="ignore": a click downloads and starts no rerun, so nothing can take the file away
            column.download_button(label, data=data, file_name=export.file_name, mime=MIME[export.suffix],
                                   key=f"download{export.file_name}", on_click="ignore", width="stretch",
                                   disabled=links.empty, help=tr(f"export.{name}.help"))
    st.caption(tr("export.caption"))


def _method(loaded: state.Loaded, filters: Filters) -> dict[str, str]:
    """What the exports say about how their links were found: the data and its version, view, filters, method
    (the items are the engine's; the exports name them in their language, :func:`geo.export.method_rows`)."""
    notes = method_notes(network=state.network() if loaded.network else None)
    for item in ("facilities", "flows"):  # file paths of the command line; the data item below names them
        notes.pop(item, None)
    return {"data": _data_version(loaded),
            "road network": Path(loaded.network).name if loaded.network else "",
            "view": state.view_name(filters.view),
            "filters": describe_filters(filters, lang=state.lang()), **notes}


def _data_version(loaded: state.Loaded) -> str:
    """The data by name and version: the workspace and its last change, or the bundled demo."""
    workspace = state.workspace()
    if workspace.data_key():
        return tr("export.data_workspace", source=loaded.source, version=workspace.version())
    return tr("export.data_demo", source=loaded.source)


def _table(links: pd.DataFrame) -> pd.DataFrame:
    """The columns shown, resources by name and large figures to 3 significant figures (names unchanged);
    coded values (status, distance source, basis) in words of the page's language."""
    table = links[[c for c in SHOWN if c in links]].copy()
    if "resource" in table:
        table["resource"] = resource_names(table["resource"], state.lang())
    for column in ("status", "distance_source", "basis"):
        if column in table:
            table[column] = table[column].map(lambda v, c=column: state.value_name(c, v) if isinstance(v, str) else v)
    for column in SIGNIFICANT:
        if column in table:
            table[column] = significant(pd.to_numeric(table[column], errors="coerce"))
    return table


def _column_config(columns) -> dict:
    """Each column under its label and unit (in the page's language); numbers in their format, the
    explanation wide."""
    labels = column_labels(state.lang())
    config = {}
    for column in columns:
        label = labels.get(column, column)
        if column in NUMBER_FORMATS:
            config[column] = st.column_config.NumberColumn(label, format=NUMBER_FORMATS[column])
        else:
            config[column] = st.column_config.TextColumn(label, width="large" if column == "why" else None)
    return config


loaded = state.data()
filters = state.filter_widgets(loaded)
facilities, links = select_view(loaded.facilities, loaded.flows, loaded.links, filters)
involved = facilities[facilities["facility_id"].isin(set(links["supply_facility_id"]) | set(links["demand_facility_id"]))]

st.title(tr("page.shortlist"))
state.show_url_notes()
state.show_left_out(loaded, filters.view)
st.caption(tr("shortlist.caption", links=len(links), total=links.attrs.get("of", len(links))))
if filters.view == "full" and len(links):  # the public views give no sums that could add up to a hidden flow
    not_running = links[links["status"] != "existing"]
    st.caption(tr("shortlist.totals", totals=state.totals_text(allocation_totals(not_running).iloc[0])))
shown = _table(links)
st.dataframe(shown, hide_index=True, width="stretch", column_config=_column_config(shown.columns))
_download_buttons(f"{state.data_key()}|{filters}", links, involved, _method(loaded, filters), loaded.score_breaks)
