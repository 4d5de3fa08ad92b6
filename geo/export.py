"""Writing ranked links to CSV, Excel, GeoJSON or GeoPackage, for programs and for people.

:func:`write_links` picks the format from the file suffix and writes
atomically (to a temporary file beside the target, then renamed), so an
interrupted export never leaves half a file where a good one was.

For programs or for people
--------------------------
A script wants stable column names, resource codes and every digit; a person
wants "Supplier", "Fly ash" and "5.8". So a table is written one of two ways:

- **machine-readable** (``labels=False``, the default): the snake_case columns
  of :data:`geo.pipeline.LINK_COLUMNS`, resource codes, ``True``/``False``,
  numbers rounded only to what the data can carry (:data:`MACHINE_DECIMALS`).
  ``python -m geo match --out links.csv`` writes this, so scripts built on the
  command line's files keep working.
- **for reading** (``labels=True``, the app's Excel and CSV-for-Excel
  exports): the column names of :data:`LABELS` (``distance_km`` is
  "Distance (km)"), resources by their short names from the knowledge base
  ("Fly ash", not ``mineral.fly_ash``; :func:`resource_names`), flags as
  yes/no, and numbers rounded for reading (:func:`readable_values`):
  quantities, tonnes of CO2 and euros to 3 significant figures, kilometres,
  scores and precedent counts to one decimal, minutes and counts whole, shares
  (the score's parts, confidence, allocated share, rule strength) as whole
  per cents, coordinates to 5 decimals (about 1 m).

The spatial formats keep the raw values and the snake_case names whatever
``labels`` says, since a GIS computes with them; they add each resource's
name, and the GeoPackage gives QGIS the labels as field aliases.

Languages
---------
Everything written for reading follows ``lang`` (``'en'``, ``'fi'``, ``'sv'``;
:mod:`geo.i18n`): column labels, resource and role names, yes/no, the Excel
sheets' names and the method sheet's items, the GeoPackage's field aliases
and style labels. The machine-readable tables and the spatial formats' field
names are the same in every language. The method notes' texts that the
engine words (:func:`geo.pipeline.method_notes`) stay in English.

Formats
-------
- ``.csv``: UTF-8 with a byte-order mark (Excel then reads Nordic letters
  right), CRLF line ends, no geometry (coordinates are columns). The
  :data:`CSV_STYLES`: ``plain`` (comma, decimal point) and ``nordic``
  (semicolon, decimal comma), which Excel set to Finnish, Swedish, Danish,
  Norwegian, German or Polish opens straight into columns.
- ``.xlsx``: sheets ``links``, ``facilities`` (when given: the columns of
  :data:`FACILITY_COLUMNS`, never the file or row an import came from),
  ``method`` (:func:`method_rows`: the date, the tool's version, the data and
  its version, the view and filters when the caller gives them, the method,
  the sources cited; a folder in a value is cut to its file name) and
  ``sources`` (the knowledge base's references that the links cite). Every
  sheet has a bold, frozen header row with an autofilter, number formats
  per column (thousands separators, one decimal for km) and column widths
  fitted to the text.
- ``.geojson``: layer ``links`` of LineStrings, raw values.
- ``.gpkg``: layer ``links`` (LineStrings), ``facilities`` (points, when
  given) and ``layer_styles``, the table QGIS reads a layer's default style
  from, with one QML style per layer: links coloured by score class and
  wider by quantity class (quartiles within each unit, column
  ``quantity_class``), dashed where the ends are grid cells (a confidential
  link in a public view); facilities filled by role and outlined by NACE
  section, the map's colours. No flows layer: each link already carries both
  flows' attributes, and a table of all flows could hold what a public view hides.

Text stays text
---------------
CSV has no types, so a spreadsheet would evaluate a cell such as
``=cmd|' /C calc'!A1`` that a hostile facility name put there. Following
OWASP's guidance on CSV injection, every CSV text cell that starts with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return, and is not a number,
gets a leading apostrophe (:func:`neutralise_formulas`), in every CSV style,
and every field holding the separator, a quote, CR or LF is quoted, so a line
break inside a name never splits its row. In Excel workbooks such a name is
stored as a string, never a formula. GeoJSON, GeoPackage and XLSX keep the
exact text.
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
import uuid
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from geo import __version__, settings
from geo.errors import InputError
from geo.i18n import DEFAULT, number, resource_names as _resource_names_in, t, texts
from geo.pipeline import link_lines
from geo.privacy import nace_section, sector_label

if TYPE_CHECKING:
    from geo.selection import Filters

__all__ = ["CSV_STYLES", "FACILITY_COLUMNS", "FACILITY_LABELS", "FIXED_DECIMALS", "FORMULA_STARTS", "LABELS",
           "MACHINE_DECIMALS", "OUTPUT_SUFFIXES", "ROLE_NAMES", "SCORE_BREAKS", "SCORE_COLOURS", "CsvStyle", "cell_text",
           "check_output_path", "column_labels", "describe_filters", "facility_labels", "facility_table",
           "method_rows", "neutralise_formulas",
           "readable_links", "readable_values", "resource_names", "significant", "write_links"]

#: First characters that make a spreadsheet read a CSV cell as a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

OUTPUT_SUFFIXES = (".csv", ".xlsx", ".geojson", ".gpkg", ".html")

#: Human name of each column of the links table (and of a public view's extra columns), with its unit, in
#: English: the catalogue's ``col.<column>`` texts (:mod:`geo.i18n`; :func:`column_labels` gives them in
#: another language). Tables and exports for reading use these; the command line's files keep the snake_case names.
LABELS: dict[str, str] = {}  # filled below, from the catalogue

#: Columns of the facilities sheet and layer, in order (those the frame has). Nothing else is
#: written: a frame may carry the file and row an import came from, which name server folders.
FACILITY_COLUMNS = ("facility_id", "name", "role", "sector", "section", "nace", "country", "cluster", "operator",
                    "lat", "lon", "precision", "quay", "source", "notes")
#: The facilities' columns named for reading (the catalogue's ``fcol.<column>``), in English.
FACILITY_LABELS: dict[str, str] = {}
#: A facility's role in the exchanges, in words (the map's legend says the same; catalogue ``role.<role>``).
ROLE_NAMES: dict[str, str] = {}
#: Transport modes of the knowledge base (``transport_modes.csv``), in words (catalogue ``transport.<mode>``).
TRANSPORT_NAMES: dict[str, str] = {}


def _catalogue(prefix: str, lang: str | None) -> dict[str, str]:
    """Every text of the catalogue whose key starts with ``prefix.``, by the rest of its key (English texts for
    keys the language lacks)."""
    keys = [k for k in texts()[DEFAULT] if k.startswith(prefix + ".")]
    return {k[len(prefix) + 1:]: t(k, lang) for k in keys}


def column_labels(lang: str | None = None) -> dict[str, str]:
    """The links' column labels (:data:`LABELS`) in a language: ``distance_km`` is "Etäisyys (km)" in Finnish."""
    return _catalogue("col", lang)


def facility_labels(lang: str | None = None) -> dict[str, str]:
    """The facilities' column labels (:data:`FACILITY_LABELS`) in a language."""
    return _catalogue("fcol", lang)


def _gis_labels(lang: str | None) -> dict[str, str]:
    """Names the spatial layers' columns get in QGIS: the labels, and for the columns only they have
    (resource codes beside names, the quantity class) the catalogue's ``gis.<column>``."""
    return {**column_labels(lang), **_catalogue("gis", lang)}


LABELS.update(column_labels(DEFAULT))
FACILITY_LABELS.update(facility_labels(DEFAULT))
ROLE_NAMES.update(_catalogue("role", DEFAULT))
TRANSPORT_NAMES.update(_catalogue("transport", DEFAULT))

#: Decimals of the machine-readable tables: what the data can carry, no more.
MACHINE_DECIMALS = {
    "score": 1, "quantity": 3, "distance_km": 2, "straight_km": 2, "travel_time_min": 1,
    "max_distance_km": 1, "co2_saved_t_per_yr": 1, "value_eur_per_yr": 0,
    "transport_cost_eur_per_yr": 0, "transport_co2_t_per_yr": 2, "avoided_co2_t_per_yr": 1,
    "gross_value_eur_per_yr": 0, "supply_lon": 6, "supply_lat": 6, "demand_lon": 6, "demand_lat": 6,
}

# How each kind of column is rounded for reading (and formatted in Excel).
_SIGNIFICANT = ("quantity", "quantity_low", "quantity_high", "supply_quantity", "demand_quantity",
                "allocated_quantity", "co2_saved_t_per_yr", "value_eur_per_yr", "allocated_co2_saved_t_per_yr",
                "allocated_value_eur_per_yr", "transport_cost_eur_per_yr", "transport_co2_t_per_yr",
                "avoided_co2_t_per_yr", "gross_value_eur_per_yr")
_ONE_DECIMAL = ("score", "distance_km", "straight_km", "sea_km", "max_distance_km", "supply_cell_km",
                "demand_cell_km", "precedent_parks")
_WHOLE = ("rank", "travel_time_min", "competitors")
_SHARES = ("part_co2", "part_value", "part_distance", "part_compatibility", "part_precedent", "confidence",
           "allocated_share", "strength")
_DEGREES = ("supply_lon", "supply_lat", "demand_lon", "demand_lat", "lon", "lat")
_FLAGS = ("existing", "same_operator", "same_site", "confidential", "quay")
_RESOURCES = ("resource", "demand_resource")


class CsvStyle(NamedTuple):
    """How a CSV file separates fields and writes a decimal fraction."""

    delimiter: str
    decimal: str


#: ``plain``: comma and decimal point (scripts, English Excel). ``nordic``: semicolon and decimal
#: comma, as Excel expects where the comma is the decimal mark (Finland, Sweden, Denmark, Norway,
#: Germany, Poland, the Baltic states).
CSV_STYLES = {"plain": CsvStyle(",", "."), "nordic": CsvStyle(";", ",")}

#: Lower bounds of the score classes a GeoPackage's style colours, when the caller gives none
#: (the map's fixed classes), and their colours, lowest first (the map's yellow-to-purple ramp).
SCORE_BREAKS = (0.0, 50.0, 65.0, 80.0, 90.0)
SCORE_COLOURS = ("#fde725", "#5ec962", "#21918c", "#3b528b", "#440154")
#: Fill by role and outline by NACE section of a facility in the GeoPackage's style (the map's colours).
_ROLE_COLOURS = {"supplier": "#E69F00", "receiver": "#0072B2", "both": "#CC79A7", "none": "#999999"}
_SECTION_COLOURS = {"D": "#D55E00", "E": "#009E73", "C": "#333333", "B": "#8C6D31", "A": "#7A9A01"}
_OTHER_SECTION_COLOUR = "#56B4E9"


def check_output_path(path: str | Path) -> Path:
    """Refuse an output path of an unknown kind or in a missing folder, before any work."""
    path = Path(path)
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        msg = f"{path}: output must end in one of {', '.join(OUTPUT_SUFFIXES)}"
        raise InputError(msg)
    if not path.parent.exists():
        raise InputError(f"{path}: folder {path.parent} does not exist")
    if path.is_dir():
        raise InputError(f"{path}: is a folder; give a file name ending in {path.suffix}")
    return path


def write_links(links: pd.DataFrame, path: str | Path, *, method: dict[str, str] | None = None,
                facilities: pd.DataFrame | None = None, labels: bool = False, csv_style: str = "plain",
                score_breaks: tuple[float, ...] | None = None, lang: str = DEFAULT) -> Path:
    """Write links to ``path``; the suffix decides the format (the module describes each).

    Parameters
    ----------
    links : DataFrame or GeoDataFrame
        Ranked links (:data:`geo.pipeline.LINK_COLUMNS`, and a public view's
        ``quantity_range``, ``supply_cell_km``, ``demand_cell_km``); without
        geometry, LineStrings are drawn from ``supply_lon``/``supply_lat`` to
        ``demand_lon``/``demand_lat`` for the spatial formats.
    path : str or Path
        ``.csv``, ``.xlsx``, ``.geojson`` or ``.gpkg``.
    method : dict, optional
        The run's assumptions, data and filters (item to text), for the Excel
        ``method`` sheet (:func:`method_rows` adds the date, version and sources).
    facilities : DataFrame, optional
        The facilities the links involve (``facility_id``, ``name``, ``lat``,
        ``lon``, ``role``, ...), for the Excel ``facilities`` sheet and the
        GeoPackage ``facilities`` layer.
    labels : bool
        Tables (CSV, Excel) for reading: :data:`LABELS`, resource names and
        rounded numbers. By default machine-readable (codes, snake_case).
    csv_style : str
        A key of :data:`CSV_STYLES`: ``'plain'`` (comma, decimal point) or
        ``'nordic'`` (semicolon, decimal comma).
    score_breaks : tuple of float, optional
        Lower bounds of the five score classes the GeoPackage's style colours
        (pass the map's, so QGIS shows the same colours); :data:`SCORE_BREAKS` by default.
    lang : str
        Language of what is written for reading (``'en'``, ``'fi'``, ``'sv'``): the labels, names and
        method items of the tables, the Excel sheets' names, the GeoPackage's aliases and style labels.

    Returns
    -------
    Path
        The file written.
    """
    path = check_output_path(path)
    suffix = path.suffix.lower()
    if suffix == ".html":
        raise InputError(f"{path}: an HTML map is drawn by layers.html.write_standalone_map, not written here")
    if csv_style not in CSV_STYLES:
        msg = f"CSV style {csv_style!r} is not one of {', '.join(CSV_STYLES)}"
        raise InputError(msg)
    table = pd.DataFrame(links.drop(columns="geometry", errors="ignore"))
    with _atomic(path) as tmp:
        if suffix == ".csv":
            _write_csv(_table(table, labels=labels, lang=lang), tmp, CSV_STYLES[csv_style],
                       columns=list(table.columns), labels=labels)
        elif suffix == ".xlsx":
            _write_xlsx(table, tmp, labels=labels,
                        method=method_rows(method, links=table, facilities=facilities, lang=lang),
                        facilities=facilities, lang=lang)
        elif suffix == ".geojson":
            pyogrio.write_dataframe(_spatial_links(links, lang), tmp, driver="GeoJSON", layer="links")
        else:
            _write_gpkg(_spatial_links(links, lang), facilities, tmp, breaks=score_breaks or SCORE_BREAKS, lang=lang)
    return path


# --- values for reading ----------------------------------------------------------------

def significant(values, digits: int = 3) -> np.ndarray:
    """``values`` rounded to ``digits`` significant figures (61,873 to 61,900; 0.01234 to 0.0123); NaN stays NaN."""
    x = np.asarray(values, dtype=float)
    out = x.copy()
    ok = np.isfinite(x) & (x != 0)
    places = digits - 1 - np.floor(np.log10(np.abs(x[ok]))).astype(int)
    scale = 10.0 ** np.abs(places)
    # dividing by an exact power of ten gives the double nearest the decimal, so 0.0123 prints as 0.0123
    out[ok] = np.where(places >= 0, np.round(x[ok] * scale) / scale, np.round(x[ok] / scale) * scale)
    return out


def resource_names(codes: pd.Series, lang: str = DEFAULT) -> pd.Series:
    """Short names of resource codes: the knowledge base's label up to the first bracket, or its translation.

    ``mineral.fly_ash`` becomes "Fly ash" ("Lentotuhka" in Finnish,
    :func:`geo.i18n.resource_name`); a code the knowledge base does not know
    (or a blank) stays as it is.
    """
    return _resource_names_in(codes, lang)


def readable_values(frame: pd.DataFrame, lang: str = DEFAULT) -> pd.DataFrame:
    """A copy of a links (or facilities) frame with values for reading; the column names stay.

    Resources by name, transport modes and roles in words, flags as yes/no
    (all in ``lang``), numbers rounded as the module describes, shares as
    per cents. Columns this does not know are left as they are. A geometry
    column is dropped.
    """
    out = pd.DataFrame(frame.drop(columns="geometry", errors="ignore")).copy()
    for column in out.columns:
        out[column] = _readable(column, out[column], lang)
    return out


def readable_links(links: pd.DataFrame, lang: str = DEFAULT) -> pd.DataFrame:
    """:func:`readable_values` of the links, with the column names of :data:`LABELS` (in ``lang``)."""
    return readable_values(links, lang).rename(columns=column_labels(lang))


def _readable(column: str, values: pd.Series, lang: str = DEFAULT) -> pd.Series:
    if column in _SIGNIFICANT:
        return pd.Series(significant(_numbers(values)), index=values.index)
    if column in _ONE_DECIMAL:
        return _numbers(values).round(1)
    if column in _WHOLE:
        return _numbers(values).round(0)
    if column in _SHARES:
        return (_numbers(values) * 100).round(0)
    if column in _DEGREES:
        return _numbers(values).round(5)
    if column in _FLAGS:
        words = {True: t("value.yes", lang), False: t("value.no", lang)}
        return values.map(lambda v: words.get(_flag(v), "")).astype(object)
    if column in _RESOURCES:
        return resource_names(values, lang)
    if column == "transport_mode":
        modes = _catalogue("transport", lang)
        return values.map(lambda m: modes.get(m, m.replace("_", " ")) if isinstance(m, str) else m)
    if column == "role":
        roles = _catalogue("role", lang)
        return values.map(lambda r: roles.get(r, r) if isinstance(r, str) else r)
    if column in _CODED:
        words = _catalogue(column, lang)
        return values.map(lambda v: words.get(v, v) if isinstance(v, str) else v)
    return values


#: Columns of coded words (``new``, ``estimate``, ``site``) that the catalogue words per language
#: (keys ``<column>.<value>``); a value it does not know stays as it is.
_CODED = ("status", "distance_source", "basis", "supply_basis", "demand_basis")


def _numbers(values: pd.Series) -> pd.Series:
    """The column as floats (a public view blanks figures as '' or None: those become NaN)."""
    return pd.to_numeric(values.replace("", np.nan), errors="coerce").astype(float)


def _flag(value) -> bool | None:
    """A flag's truth (a bool, or the text ``true``/``false``); None when it is neither."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


#: Decimals always shown for a column's numbers (scores and km with one, even 95.0), where fixed.
FIXED_DECIMALS = {**{c: 1 for c in _ONE_DECIMAL}, **{c: 0 for c in _WHOLE}}


def cell_text(value, *, decimals: int | None = None, decimal: str = ".", thousands: str = ",") -> str:
    """A cell as a reader sees it: numbers with thousands separators, blanks empty.

    Meant for values :func:`readable_values` has rounded: ``61900.0`` gives
    "61,900" and ``5.8`` "5.8" (no trailing zeros), or with ``decimals=1``
    ``95.0`` gives "95.0" (a column's :data:`FIXED_DECIMALS`).
    """
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
        if not np.isfinite(number):
            return ""
        text = f"{number:.{decimals}f}" if decimals is not None else np.format_float_positional(number, trim="-")
        whole, _, fraction = text.partition(".")
        sign = "-" if whole.startswith("-") else ""
        digits = whole.lstrip("-")
        grouped = f"{int(digits):,}".replace(",", thousands)
        return sign + grouped + (decimal + fraction if fraction else "")
    return str(value)


# --- the method sheet -------------------------------------------------------------------

def method_rows(method: dict[str, str] | None = None, *, links: pd.DataFrame | None = None,
                facilities: pd.DataFrame | None = None, exported: datetime | None = None,
                lang: str = DEFAULT) -> dict[str, str]:
    """The method notes of an export, item to text, as the Excel sheet and the HTML map list them.

    First the date of the export (UTC) and the tool's version, then the items
    of ``method`` in their order (blank ones left out, each item named by the
    catalogue's ``method.<item>`` in ``lang`` where it has one, else with its
    first letter capitalised; any absolute path cut to its file name so that
    no server folder is written), then the sources the links cite: the
    knowledge base's keys (``rule_source``) and the data's (the facilities'
    ``source``; past :data:`_LISTED_KEYS` of them, their number).
    """
    when = (exported or datetime.now(timezone.utc)).astimezone(timezone.utc)
    items = _catalogue("method", lang)
    rows = {items["exported"]: when.strftime("%Y-%m-%d %H:%M UTC"),
            items["tool"]: t("method.tool_name", lang, version=__version__)}
    for item, text in (method or {}).items():
        if text is None or not str(text).strip():
            continue
        rows[items.get(item, item[:1].upper() + item[1:])] = _without_paths(str(text))
    knowledge = _cited(links, "rule_source", r"\[(K\d+)\]")
    if knowledge:
        rows[items["knowledge_cited"]] = t("method.knowledge_keys", lang, keys=", ".join(f"[{k}]" for k in knowledge))
    data = _cited(facilities, "source", r"\[([^\[\]]+)\]")
    if data:
        listed = (", ".join(f"[{k}]" for k in data) if len(data) <= _LISTED_KEYS
                  else t("method.key_count", lang, count=len(data)))
        rows[items["data_cited"]] = t("method.data_keys", lang, keys=listed)
    return rows


#: Most data source keys the method notes list one by one (past that, their number).
_LISTED_KEYS = 20


def describe_filters(filters: Filters, *, lang: str = DEFAULT) -> str:
    """The filters in words, for the method notes: ``'countries FI, SE; score at least 60'`` (in ``lang``;
    resource groups by name)."""
    parts = []
    groups = [str(_resource_names_in(pd.Series([g]), lang).iloc[0]) for g in filters.groups]
    for name, chosen in (("countries", filters.countries), ("clusters", filters.clusters),
                         ("groups", groups), ("bases", [t(f"basis.{b}", lang) if f"basis.{b}" in texts()[DEFAULT]
                                                        else b for b in filters.bases])):
        if chosen:
            parts.append(t(f"describe.{name}", lang, chosen=", ".join(chosen)))
    if filters.min_score:
        parts.append(t("describe.min_score", lang, score=f"{filters.min_score:g}"))
    if filters.max_km:
        parts.append(t("describe.max_km", lang, km=number(filters.max_km, lang, decimals=_decimals(filters.max_km))))
    if filters.search.strip():
        parts.append(t("describe.search", lang, search=filters.search.strip()))
    return "; ".join(parts) if parts else t("describe.none", lang)


def _decimals(value: float) -> int:
    """Decimals a number needs to be written without loss, up to 3 (25.5 needs 1)."""
    return next((d for d in range(4) if round(value, d) == value), 3)


#: An absolute path (POSIX or Windows) inside a text; group 1 is its last part.
_PATH = re.compile(r"(?<![\w.~:/\\])(?:/|[A-Za-z]:\\)(?:[^/\\\s,;()'\"]+[/\\])+([^/\\\s,;()'\"]+)")


def _without_paths(text: str) -> str:
    return _PATH.sub(r"\1", text)


def _cited(frame: pd.DataFrame | None, column: str, pattern: str) -> list[str]:
    """The distinct keys a text column cites, in natural order ([K2] before [K10])."""
    if frame is None or column not in frame or frame.empty:
        return []
    keys = set(frame[column].dropna().astype(str).str.findall(pattern).explode().dropna())
    return sorted(keys, key=lambda k: [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", k)])


@functools.lru_cache(maxsize=1)
def _knowledge_references() -> dict[str, str]:
    """The references of ``data/knowledge/SOURCES.md`` by key (markdown emphasis removed)."""
    path = settings.KNOWLEDGE_DIR / "SOURCES.md"
    if not path.is_file():
        return {}
    found = re.findall(r"^- \[(K\d+)\] (.+)$", path.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {key: text.replace("*", "").strip() for key, text in found}


# --- tables: CSV and Excel ----------------------------------------------------------------

def _table(links: pd.DataFrame, *, labels: bool, lang: str = DEFAULT) -> pd.DataFrame:
    """The links as a table: for reading (labels, names, rounded, in ``lang``) or for programs (rounded to what
    they carry)."""
    return readable_links(links, lang) if labels else _machine(links)


def _machine(links: pd.DataFrame) -> pd.DataFrame:
    out = links.copy()
    for column, decimals in MACHINE_DECIMALS.items():
        if column in out.columns:
            out[column] = _numbers(out[column]).round(decimals)
    return out


def facility_table(facilities: pd.DataFrame, *, labels: bool = False, lang: str = DEFAULT) -> pd.DataFrame:
    """The facilities to write: the columns of :data:`FACILITY_COLUMNS` the frame has, plus the sector.

    ``sector`` and ``section`` are worked out from ``nace`` ("Manufacturing
    (NACE C)", ``C``). With ``labels``, values for reading and the names of
    :data:`FACILITY_LABELS`, in ``lang`` (the sector's name stays English: :func:`geo.privacy.sector_label`).
    """
    out = pd.DataFrame(facilities.drop(columns="geometry", errors="ignore"))
    if "nace" in out:
        out = out.assign(sector=out["nace"].map(lambda n: sector_label(n, section_only=True)),
                         section=out["nace"].map(nace_section))
    out = out[[c for c in FACILITY_COLUMNS if c in out.columns]]
    return readable_values(out, lang).rename(columns=facility_labels(lang)) if labels else out


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy in which no text cell would be read as a formula by a spreadsheet.

    A text cell that starts with one of :data:`FORMULA_STARTS` gets a leading
    apostrophe, unless the whole cell is a number (``-12.5`` stays as it is).
    Numeric columns are left alone; other text is unchanged.
    """
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_numeric_dtype(out[column]) or pd.api.types.is_bool_dtype(out[column]):
            continue
        values = out[column].to_numpy(dtype=object)
        text = pd.Series(values, dtype=object).where(pd.notna(values), "").astype(str)
        starts = np.flatnonzero(text.str.startswith(FORMULA_STARTS).to_numpy(dtype=bool))  # vectorised first pass
        risky = [i for i in starts if isinstance(values[i], str) and not _is_number(values[i])]
        if risky:
            values = values.copy()
            values[risky] = ["'" + values[i] for i in risky]
            out[column] = pd.Series(values, index=out.index, dtype=object)
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _write_csv(table: pd.DataFrame, path: str, style: CsvStyle, *, columns: list[str], labels: bool) -> None:
    """``columns``: the snake_case names of ``table``'s columns (a table for reading has labels)."""
    out = neutralise_formulas(table)  # text columns only: the numbers written below are ours, never formulas
    if labels:
        out = _numbers_as_text(out, columns, decimal=style.decimal)
    # CRLF ends a record, so the csv module quotes any field holding a CR or an LF (and the separator)
    out.to_csv(path, sep=style.delimiter, decimal=style.decimal, index=False, encoding="utf-8-sig",
               lineterminator="\r\n")


def _numbers_as_text(frame: pd.DataFrame, columns: list[str], *, decimal: str) -> pd.DataFrame:
    """Numeric columns written for reading: a column's :data:`FIXED_DECIMALS` (95.0, 12.3), else no
    trailing zero (61900, 0.0123); the decimal mark as given; blanks empty."""
    out = frame.copy()
    for label, column in zip(frame.columns, columns, strict=True):
        values = frame[label]
        if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
            continue
        numbers = values.astype(float)
        decimals = FIXED_DECIMALS.get(column)
        if decimals is not None:
            text = pd.Series(np.char.mod(f"%.{decimals}f", numbers.fillna(0).to_numpy()), index=values.index)
        else:
            text = numbers.astype(str).str.replace(r"\.0$", "", regex=True)
        out[label] = text.str.replace(".", decimal, regex=False).where(numbers.notna(), "")
    return out


def _write_xlsx(links: pd.DataFrame, path: str, *, labels: bool, method: dict[str, str],
                facilities: pd.DataFrame | None, lang: str = DEFAULT) -> None:
    """The workbook; its sheets' names and the method and sources sheets' headers in ``lang``."""
    book = Workbook()
    sheet = book.active
    sheet.title = t("sheet.links", lang)
    _fill(sheet, _table(links, labels=labels, lang=lang), list(links.columns), labels=labels)
    if facilities is not None:
        plain = facility_table(facilities)
        _fill(book.create_sheet(t("sheet.facilities", lang)), facility_table(facilities, labels=labels, lang=lang),
              list(plain.columns), labels=labels)
    value = t("sheet.value", lang)
    items = pd.DataFrame({t("sheet.item", lang): list(method), value: list(method.values())})
    _fill(book.create_sheet(t("sheet.method", lang)), items, ["item", "value"], labels=labels, wrap=(value,))
    cited = [k for k in _cited(links, "rule_source", r"\[(K\d+)\]") if k in _knowledge_references()]
    if cited:
        reference = t("sheet.reference", lang)
        references = pd.DataFrame({t("sheet.key", lang): [f"[{k}]" for k in cited],
                                   reference: [_knowledge_references()[k] for k in cited]})
        _fill(book.create_sheet(t("sheet.sources", lang)), references, ["key", "reference"], labels=labels,
              wrap=(reference,))
    book.save(path)


def _fill(sheet, frame: pd.DataFrame, columns: list[str], *, labels: bool, wrap: tuple[str, ...] = ()) -> None:
    """One table sheet: bold frozen header with an autofilter, values, number formats and column widths.

    ``columns`` are the snake_case names of ``frame``'s columns, which decide the number formats.
    """
    sheet.append([str(c) for c in frame.columns])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for values in frame.itertuples(index=False):
        sheet.append([None if _blank(v) else (v.item() if hasattr(v, "item") else v) for v in values])
    formats = [_number_format(c, labels=labels) for c in columns]
    for row in sheet.iter_rows(min_row=2):
        for cell, number_format in zip(row, formats, strict=True):
            if cell.data_type == "f":
                cell.data_type = "s"  # text that starts with "=" stays text
            elif cell.data_type == "n" and cell.value is not None and number_format:
                cell.number_format = _cell_format(number_format, cell.value)
    sheet.freeze_panes = "A2"
    last = get_column_letter(max(len(frame.columns), 1))
    sheet.auto_filter.ref = f"A1:{last}{len(frame) + 1}"
    for i, column in enumerate(frame.columns, start=1):
        letter = get_column_letter(i)
        if column in wrap:
            sheet.column_dimensions[letter].width = 100
            for cell in sheet[letter][1:]:
                cell.alignment = Alignment(wrap_text=True, vertical="top")
            continue
        shown = [cell_text(v) for v in frame[column].head(200)]
        width = max([len(str(column)), *(len(s) for s in shown)])
        sheet.column_dimensions[letter].width = min(max(width + 2, 8), 60)


def _number_format(column: str, *, labels: bool) -> str:
    """Excel's number format of a column (by its snake_case name); '' for General."""
    if column in _SIGNIFICANT:
        return "significant"  # decided per cell: whole numbers with separators, else up to 4 decimals
    if column in _ONE_DECIMAL:
        return "#,##0.0"
    if column in _WHOLE:
        return "#,##0"
    if column in _SHARES:
        return "0" if labels else "0%"
    if column in _DEGREES:
        return "0.00000"
    return ""


def _cell_format(number_format: str, value: float) -> str:
    if number_format != "significant":
        return number_format
    return "#,##0" if float(value).is_integer() else "#,##0.0###"


def _blank(value) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


# --- spatial formats ------------------------------------------------------------------------

def _spatial_links(links: pd.DataFrame, lang: str = DEFAULT) -> gpd.GeoDataFrame:
    """The links as LineStrings in EPSG:4326 with raw values, resource names (in ``lang``) and quantity classes."""
    spatial = links.copy() if isinstance(links, gpd.GeoDataFrame) else link_lines(links)
    for column in _RESOURCES:
        if column in spatial:
            spatial.insert(spatial.columns.get_loc(column) + 1, f"{column}_name",
                           resource_names(spatial[column], lang))
    if "quantity" in spatial:
        units = spatial["unit"] if "unit" in spatial else pd.Series("", index=spatial.index)
        spatial["quantity_class"] = _quantity_classes(_numbers(spatial["quantity"]), units)
    return spatial.to_crs(settings.WGS84)


def _quantity_classes(quantity: pd.Series, unit: pd.Series) -> pd.Series:
    """Quartile (1-4) of each quantity among the links of its unit (t/yr are not ranked against MWh/yr);
    empty where the quantity is unknown or its unit has fewer than four."""
    out = pd.Series(pd.NA, index=quantity.index, dtype="Int64")
    known = quantity.notna() & (quantity > 0)
    for _, group in quantity[known].groupby(unit[known].fillna("")):
        if len(group) >= 4:
            edges = np.quantile(group.to_numpy(), [0.25, 0.5, 0.75])
            out[group.index] = np.searchsorted(edges, group.to_numpy(), side="right") + 1
    return out


def _facility_points(facilities: pd.DataFrame) -> gpd.GeoDataFrame:
    table = facility_table(facilities)
    points = gpd.points_from_xy(_numbers(table["lon"]), _numbers(table["lat"]), crs=settings.WGS84)
    return gpd.GeoDataFrame(table, geometry=points, crs=settings.WGS84)


def _write_gpkg(links: gpd.GeoDataFrame, facilities: pd.DataFrame | None, path: str, *,
                breaks: tuple[float, ...], lang: str = DEFAULT) -> None:
    """Layers ``links`` and ``facilities`` and the ``layer_styles`` table QGIS loads their styles from (their
    labels, aliases and descriptions in ``lang``; the layers' and fields' names the same in every language)."""
    options = {"GEOMETRY_NAME": _GEOMETRY_COLUMN}
    pyogrio.write_dataframe(links, path, driver="GPKG", layer="links", geometry_type="LineString",
                            layer_options=options)
    styles = [_style_row("links", _links_qml(list(links.columns.drop("geometry")), breaks, lang),
                         t("style.links", lang))]
    if facilities is not None:
        points = _facility_points(facilities)
        pyogrio.write_dataframe(points, path, driver="GPKG", layer="facilities", geometry_type="Point",
                                layer_options=options)
        styles.append(_style_row("facilities", _facilities_qml(list(points.columns.drop("geometry")), lang),
                                 t("style.facilities", lang)))
    # the table QGIS itself creates when it saves a style in a GeoPackage (an attributes table, FID "id")
    pyogrio.write_dataframe(pd.DataFrame(styles), path, driver="GPKG", layer="layer_styles",
                            layer_options={"FID": "id"})


#: Name of the geometry column of the GeoPackage layers (GDAL's default, written out for the styles).
_GEOMETRY_COLUMN = "geom"


def _style_row(layer: str, qml: str, description: str) -> dict:
    return {"f_table_catalog": "", "f_table_schema": "", "f_table_name": layer,
            "f_geometry_column": _GEOMETRY_COLUMN, "styleName": layer, "styleQML": qml, "styleSLD": "",
            "useAsDefault": True, "description": description, "owner": "", "ui": "",
            "update_time": pd.Timestamp.now(tz="UTC")}


# --- QGIS styles (QML) ------------------------------------------------------------------------

def _links_qml(columns: list[str], breaks: tuple[float, ...], lang: str = DEFAULT) -> str:
    """Rule-based style of the links: one rule per score class, best drawn on top."""
    renderer = ET.Element("renderer-v2", type="RuleRenderer", symbollevels="0", forceraster="0",
                          enableorderby="1", referencescale="-1")
    rules = ET.SubElement(renderer, "rules", key=_key("links"))
    symbols = ET.Element("symbols")
    width = 'coalesce(0.2 + 0.45 * "quantity_class", 0.5)'  # mm: classes 1-4 give 0.65-2 mm
    dashed = None
    if "supply_cell_km" in columns and "demand_cell_km" in columns:
        dashed = ("CASE WHEN \"supply_cell_km\" IS NOT NULL OR \"demand_cell_km\" IS NOT NULL "
                  "THEN 'dash' ELSE 'solid' END")
    bounds = [*breaks, None]
    for i in reversed(range(len(breaks))):
        low, high = bounds[i], bounds[i + 1]
        condition = f'"score" >= {low:g}' + (f' AND "score" < {high:g}' if high is not None else "")
        label = (t("style.score_range", lang, low=f"{low:g}", high=f"{high:g}") if high is not None
                 else t("style.score_over", lang, low=f"{low:g}"))
        ET.SubElement(rules, "rule", key=_key(f"links{i}"), symbol=str(i), label=label, filter=condition)
        symbols.append(_line_symbol(str(i), SCORE_COLOURS[min(i, len(SCORE_COLOURS) - 1)], width, dashed))
    ET.SubElement(rules, "rule", key=_key("links-else"), symbol=str(len(breaks)), label=t("style.no_score", lang),
                  filter="ELSE")
    symbols.append(_line_symbol(str(len(breaks)), "#999999", width, dashed))
    renderer.append(symbols)
    order = ET.SubElement(renderer, "orderby")
    ET.SubElement(order, "orderByClause", asc="1", nullsFirst="1").text = '"score"'
    return _qml(renderer, columns, geometry_type=1, lang=lang)


def _facilities_qml(columns: list[str], lang: str = DEFAULT) -> str:
    """Categorised style of the facilities: fill by role, outline by NACE section."""
    renderer = ET.Element("renderer-v2", type="categorizedSymbol", attr="role", symbollevels="0",
                          forceraster="0", enableorderby="0", referencescale="-1")
    categories = ET.SubElement(renderer, "categories")
    symbols = ET.Element("symbols")
    outline = ("CASE " + " ".join(f"WHEN \"section\" = '{s}' THEN '{c}'" for s, c in _SECTION_COLOURS.items())
               + f" ELSE '{_OTHER_SECTION_COLOUR}' END") if "section" in columns else None
    roles = _catalogue("role", lang)
    for i, (role, colour) in enumerate(_ROLE_COLOURS.items()):
        ET.SubElement(categories, "category", value=role, symbol=str(i), label=roles[role], render="true")
        symbols.append(_marker_symbol(str(i), colour, outline))
    other = len(_ROLE_COLOURS)
    ET.SubElement(categories, "category", value="", symbol=str(other), label=t("style.other", lang), render="true")
    symbols.append(_marker_symbol(str(other), "#999999", outline))
    renderer.append(symbols)
    return _qml(renderer, columns, geometry_type=0, lang=lang)


def _qml(renderer: ET.Element, columns: list[str], *, geometry_type: int, lang: str = DEFAULT) -> str:
    """A QML document: the renderer, the labels as field aliases (in ``lang``) and the geometry type
    (0 point, 1 line)."""
    root = ET.Element("qgis", version="3.28.0-Firenze", styleCategories="Symbology|Fields")
    root.append(renderer)
    aliases = ET.SubElement(root, "aliases")
    gis = _gis_labels(lang)
    names = {**gis, **facility_labels(lang)} if geometry_type == 0 else gis
    for i, column in enumerate(columns, start=1):  # field 0 is the GeoPackage's fid
        if column in names:
            ET.SubElement(aliases, "alias", field=column, index=str(i), name=names[column])
    ET.SubElement(root, "layerGeometryType").text = str(geometry_type)
    return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + ET.tostring(root, encoding="unicode")


def _line_symbol(name: str, colour: str, width: str, dashed: str | None) -> ET.Element:
    symbol = ET.Element("symbol", type="line", name=name, alpha="0.9", clip_to_extent="1", force_rhr="0")
    _data_defined(symbol, {})
    layer = ET.SubElement(symbol, "layer", {"class": "SimpleLine", "enabled": "1", "locked": "0", "pass": "0"})
    _properties(layer, {
        "line_color": _rgba(colour), "line_width": "0.5", "line_width_unit": "MM", "line_style": "solid",
        "capstyle": "round", "joinstyle": "round", "offset": "0", "offset_unit": "MM", "use_custom_dash": "0",
        "customdash": "5;2", "customdash_unit": "MM", "draw_inside_polygon": "0",
    })
    _data_defined(layer, {"outlineWidth": width, **({"outlineStyle": dashed} if dashed else {})})
    return symbol


def _marker_symbol(name: str, colour: str, outline: str | None) -> ET.Element:
    symbol = ET.Element("symbol", type="marker", name=name, alpha="1", clip_to_extent="1", force_rhr="0")
    _data_defined(symbol, {})
    layer = ET.SubElement(symbol, "layer", {"class": "SimpleMarker", "enabled": "1", "locked": "0", "pass": "0"})
    _properties(layer, {
        "name": "circle", "color": _rgba(colour), "outline_color": _rgba(_OTHER_SECTION_COLOUR),
        "outline_style": "solid", "outline_width": "0.6", "outline_width_unit": "MM", "size": "3.2",
        "size_unit": "MM", "angle": "0", "offset": "0,0", "offset_unit": "MM", "scale_method": "diameter",
        "joinstyle": "bevel", "horizontal_anchor_point": "1", "vertical_anchor_point": "1",
    })
    _data_defined(layer, {"outlineColor": outline} if outline else {})
    return symbol


def _properties(layer: ET.Element, values: dict[str, str]) -> None:
    """A symbol layer's properties, as QGIS 3.26 and later read them (an Option map) and as earlier ones do."""
    options = ET.SubElement(layer, "Option", type="Map")
    for key, value in values.items():
        ET.SubElement(options, "Option", type="QString", name=key, value=value)
    for key, value in values.items():
        ET.SubElement(layer, "prop", k=key, v=value)


def _data_defined(parent: ET.Element, expressions: dict[str, str]) -> None:
    """Data-defined properties (property key to QGIS expression) of a symbol or a symbol layer."""
    holder = ET.SubElement(parent, "data_defined_properties")
    collection = ET.SubElement(holder, "Option", type="Map")
    ET.SubElement(collection, "Option", type="QString", name="name", value="")
    properties = ET.SubElement(collection, "Option", name="properties")
    if expressions:
        properties.set("type", "Map")
    for key, expression in expressions.items():
        prop = ET.SubElement(properties, "Option", type="Map", name=key)
        ET.SubElement(prop, "Option", type="bool", name="active", value="true")
        ET.SubElement(prop, "Option", type="QString", name="expression", value=expression)
        ET.SubElement(prop, "Option", type="int", name="type", value="3")  # 3: an expression
    ET.SubElement(collection, "Option", type="QString", name="type", value="collection")


def _rgba(colour: str) -> str:
    """'#e69f00' as QGIS writes a colour: '230,159,0,255'."""
    red, green, blue = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"{red},{green},{blue},255"


def _key(name: str) -> str:
    """A rule's key: a UUID in braces, the same for the same rule in every file."""
    return "{" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"symbiosis-style:{name}")) + "}"


@contextmanager
def _atomic(path: Path):
    """Yield a temporary path beside ``path`` that replaces it only on success."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # writers (GDAL) want to create the file themselves
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
