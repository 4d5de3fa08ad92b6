"""Reading facilities and flows files into raw text tables.

Every supported format is read into a :class:`RawTable`: all cells as text,
exactly as written (ids keep their leading zeros, names their letters), with
the row number a user would look for and, for spatial formats, the point
geometry. Typing and validation happen later, in :mod:`geo.schema`, so that no
value is lost or guessed at while reading.

Supported: CSV (delimiter ``,`` ``;`` or tab, sniffed; UTF-8, UTF-8 with BOM or
Windows-1252), XLSX (sheets ``facilities`` and ``flows``), GeoJSON, and
GeoPackage (layers ``facilities`` and ``flows``).
"""

from __future__ import annotations

import csv
import io as _io
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio

from geo.errors import InputError, Problem
from geo.settings import WGS84

__all__ = ["RawTable", "read_table", "read_tables", "SUPPORTED_SUFFIXES"]

SUPPORTED_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".geojson", ".json", ".gpkg")
_DELIMITERS = (";", "\t", ",")
_SNIFF_LINES = 200
_DELIMITER_NAMES = {";": "semicolon", "\t": "tab", ",": "comma"}


@dataclass
class RawTable:
    """One table of an input file, all cells as text.

    Attributes
    ----------
    frame : DataFrame
        Columns as named in the file (stripped of surrounding spaces), values
        as ``str`` with ``""`` for empty cells.
    file : str
        How to name the source in messages: the path, plus ``[sheet]`` or
        ``[layer]`` for multi-table files.
    rows : ndarray of int
        The row number of each record as the user finds it: spreadsheet rows
        (header is row 1) for CSV and XLSX, 1-based feature numbers otherwise.
    geometry : GeoSeries or None
        Geometries in EPSG:4326 for GeoJSON and GeoPackage layers that have them.
    decimal_comma : bool
        True when numbers may use a decimal comma (``;``-delimited CSV).
    problems : list of Problem
        Records that could not be split into the header's columns; they are
        not in ``frame`` and validation reports them as errors.
    """

    frame: pd.DataFrame
    file: str
    rows: np.ndarray
    geometry: gpd.GeoSeries | None = None
    decimal_comma: bool = False
    encoding: str = "utf-8"
    delimiter: str | None = None
    problems: list[Problem] = field(default_factory=list)


def read_tables(
    path: str | Path, names: list[str], *, optional: tuple[str, ...] = ()
) -> dict[str, RawTable]:
    """Read several sheets (XLSX) or layers (GeoPackage) of one file, opening it once.

    Names match case-insensitively. A name in ``optional`` that the file
    lacks is left out of the result; any other missing name is an error.

    Raises
    ------
    InputError
        When the file is missing, unreadable, not XLSX or GeoPackage, or lacks
        a required table.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        try:
            book = pd.ExcelFile(path, engine="openpyxl")
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"{path}: not a readable XLSX workbook ({exc})") from None
        with book:
            found = _pick_tables(path, names, book.sheet_names, optional)
            return {name: _read_sheet(book, sheet, path) for name, sheet in found.items()}
    if suffix == ".gpkg":
        try:
            layers = [str(layer) for layer in pyogrio.list_layers(path)[:, 0]]
        except pyogrio.errors.DataSourceError as exc:
            raise InputError(f"{path}: not a readable GeoPackage ({exc})") from None
        found = _pick_tables(path, names, layers, optional)
        return {name: _read_vector(path, layer, f"{path}[{layer}]") for name, layer in found.items()}
    raise InputError(f"{path}: only XLSX workbooks and GeoPackages hold several tables")


def read_table(path: str | Path, *, table: str | None = None) -> RawTable:
    """Read one table of a facilities or flows file as text.

    Parameters
    ----------
    path : str or Path
        CSV, XLSX, GeoJSON or GeoPackage file.
    table : str, optional
        Sheet (XLSX) or layer (GeoPackage) to read, matched case-insensitively.
        Required for those formats; ignored for CSV and GeoJSON.

    Returns
    -------
    RawTable
        The table as text, with row numbers and any geometry.

    Raises
    ------
    InputError
        When the file is missing, of an unsupported kind, not decodable, or
        lacks the requested sheet or layer.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        return _read_csv(path)
    if suffix in (".xlsx", ".gpkg"):
        if table is None:
            raise InputError(f"{path}: name the sheet or layer to read")
        return read_tables(path, [table])[table]
    if suffix in (".geojson", ".json"):
        return _read_vector(path, None, str(path))
    msg = (
        f"{path}: unsupported file type {suffix or '(none)'}; "
        f"use one of {', '.join(SUPPORTED_SUFFIXES)}"
    )
    raise InputError(msg)


def _pick_tables(path: Path, wanted: list[str], present: list[str], optional: tuple[str, ...]) -> dict[str, str]:
    """Map each wanted table name to the file's own spelling of it."""
    by_key = {name.strip().lower(): name for name in present}
    found = {}
    for name in wanted:
        if name.lower() in by_key:
            found[name] = by_key[name.lower()]
        elif name not in optional:
            listed = ", ".join(present) or "none"
            raise InputError(f"{path}: no sheet or layer named {name!r} (found: {listed})")
    return found


def decode_text(data: bytes, path: Path) -> tuple[str, str]:
    """Decode CSV bytes as UTF-8 (BOM or not), falling back to Windows-1252.

    UTF-8 is tried strictly first: text in another encoding almost never
    decodes as valid UTF-8 by accident, so the fallback is safe for the
    Windows-1252 files that spreadsheet programs still write.
    """
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError as exc:
        msg = (
            f"{path}: cannot decode byte {data[exc.start]:#x} at offset {exc.start}; "
            "save the file as UTF-8"
        )
        raise InputError(msg) from None


def sniff_delimiter(text: str) -> str:
    """Pick the delimiter (``;``, tab or ``,``) that splits the file most consistently.

    Each candidate splits the first lines with the csv module (so quoted
    fields are honoured); the winner gives every record the header's field
    count with the most fields. A file with one column gets ``,``.
    """
    sample_lines = text.splitlines()[:_SNIFF_LINES]
    sample = "\n".join(sample_lines)
    best, best_key = ",", (-1.0, 0)
    for delimiter in _DELIMITERS:
        records = [r for r in csv.reader(_io.StringIO(sample), delimiter=delimiter) if r]
        if not records or len(records[0]) < 2:
            continue
        width = len(records[0])
        consistent = sum(len(r) == width for r in records) / len(records)
        key = (consistent, width)
        if key > best_key:
            best, best_key = delimiter, key
    return best


def _read_csv(path: Path) -> RawTable:
    text, encoding = decode_text(path.read_bytes(), path)
    if not text.strip():
        empty = pd.DataFrame()
        return RawTable(empty, str(path), np.empty(0, dtype=int), encoding=encoding)
    delimiter = sniff_delimiter(text)
    try:
        records = list(csv.reader(_io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise InputError(f"{path}: not a readable CSV file ({exc})") from None
    numbered = [(n, r) for n, r in enumerate(records, start=1) if any(cell.strip() for cell in r)]
    if not numbered:  # separators only: no header and no data
        return RawTable(pd.DataFrame(), str(path), np.empty(0, dtype=int), encoding=encoding)
    (_, header), body = numbered[0], numbered[1:]
    width = len(header)
    problems = [
        Problem(
            str(path), n, None, delimiter.join(r)[:80],
            f"row has {len(r)} fields but the header has {width}",
            f"is there an unquoted {_DELIMITER_NAMES[delimiter]} inside a value?",
        )
        for n, r in body if len(r) != width
    ]
    good = [(n, r) for n, r in body if len(r) == width]
    frame = _clean_columns(pd.DataFrame([r for _, r in good], columns=header, dtype=str), str(path))
    rows = np.array([n for n, _ in good], dtype=int)
    return RawTable(
        frame,
        str(path),
        rows,
        decimal_comma=delimiter == ";",
        encoding=encoding,
        delimiter=delimiter,
        problems=problems,
    )


def _read_sheet(book: pd.ExcelFile, sheet: str, path: Path) -> RawTable:
    frame = pd.read_excel(book, sheet_name=sheet, dtype=object).dropna(how="all")
    rows = frame.index.to_numpy() + 2
    frame = _clean_columns(frame.map(_cell_text).reset_index(drop=True), f"{path}[{sheet}]")
    return RawTable(frame, f"{path}[{sheet}]", rows)


def _cell_text(value: object) -> str:
    """Text of an Excel cell: integral floats without ``.0``, empty for blanks."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _read_vector(path: Path, layer: str | None, label: str) -> RawTable:
    try:
        gdf = pyogrio.read_dataframe(path, layer=layer, fid_as_index=True)
    except pyogrio.errors.DataSourceError as exc:
        raise InputError(f"{label}: not a readable spatial file ({exc})") from None
    has_geometry = isinstance(gdf, gpd.GeoDataFrame) and gdf.geometry.notna().any()
    geometry = None
    if has_geometry:
        if gdf.crs is None:
            raise InputError(f"{label}: the layer has no coordinate reference system")
        geometry = gdf.geometry.to_crs(WGS84).reset_index(drop=True)
    attributes = pd.DataFrame(gdf.drop(columns="geometry", errors="ignore"))
    rows = np.arange(1, len(attributes) + 1)
    frame = _clean_columns(attributes.map(_cell_text).reset_index(drop=True), label)
    return RawTable(frame, label, rows, geometry=geometry)


def _clean_columns(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    """Column names without a byte-order mark or padding, cells as text; a name given twice is refused."""
    frame.columns = [str(c).replace("\ufeff", "").strip() for c in frame.columns]
    seen: dict[str, int] = {}
    for position, name in enumerate(frame.columns, start=1):
        key = name.casefold()
        if key in seen:
            msg = (f"{label}: column {name!r} appears twice (columns {seen[key]} and {position}); "
                   "keep one, or rename the other")
            raise InputError(msg)
        seen[key] = position
    return frame.astype(str) if len(frame.columns) else frame
