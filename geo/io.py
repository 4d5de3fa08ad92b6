"""Reading facilities and flows files into raw text tables.

Every supported format is read into a :class:`RawTable`: all cells as text,
exactly as written (ids keep their leading zeros, names their letters), with
the row number a user would look for and, for spatial formats, the point
geometry. Typing and validation happen later, in :mod:`geo.schema`, so that no
value is lost or guessed at while reading.

Supported: CSV (delimiter ``,`` ``;`` or tab, sniffed), XLSX (sheets
``facilities`` and ``flows``), GeoJSON, and GeoPackage (layers ``facilities``
and ``flows``). ``docs/INPUT_POLICY.md`` tells users what is read and what is
refused; in short:

- CSV text is UTF-8 (with or without a byte-order mark), UTF-16 or UTF-32
  with a byte-order mark, or wholly Windows-1252 (read with a warning). A file
  that is UTF-8 except for some bytes (a row pasted from another encoding) is
  refused, naming the first such row, column and byte.
- Anything a reader cannot make sense of (a workbook that is not a zip or
  declares an XML document type, a field longer than the CSV limit, bytes no
  parser accepts) is an :class:`~geo.errors.InputError` of one line naming
  the file and the cause, never another exception.
- GDAL cuts text at a NUL character, so GeoJSON and GeoPackage cells holding
  one are read again in full; validation then refuses them by row and column,
  as it does control characters in every format.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io as _io
import itertools
import json
import re
import sqlite3
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from xml.parsers import expat

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio

from geo.errors import GeoError, InputError, Problem
from geo.settings import WGS84

__all__ = [
    "CONTROL_CHARACTERS",
    "MAX_XLSX_UNPACKED_BYTES",
    "RawTable",
    "SUPPORTED_SUFFIXES",
    "decode_text",
    "read_table",
    "read_tables",
    "sniff_delimiter",
]

SUPPORTED_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".geojson", ".json", ".gpkg")
_DELIMITERS = (";", "\t", ",")
_SNIFF_LINES = 200
_DELIMITER_NAMES = {";": "semicolon", "\t": "tab", ",": "comma"}

#: Characters no cell may hold: C0 controls other than tab, line feed and carriage return (which a cell may
#: hold: a quoted tab, a line break made with Alt+Enter), DEL, and the C1 controls. A regular-expression class.
CONTROL_CHARACTERS = "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
_CONTROL_RE = re.compile(CONTROL_CHARACTERS)

#: Largest total size of the files inside an XLSX workbook (a zip archive) that is unpacked. Spreadsheet XML
#: compresses about 10 to 100 times; a larger workbook is refused before it is opened, so that a zip bomb of a
#: few kB cannot fill the memory. Large tables belong in CSV.
MAX_XLSX_UNPACKED_BYTES = 256 * 2**20

# Byte-order marks, longest first: the UTF-32 LE mark begins with the UTF-16 LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Bytes that no encoding of the policy could decode, kept by errors="surrogateescape" as U+DC80..U+DCFF.
_UNDECODED = re.compile("[\udc80-\udcff]")
# Characters that only a valid UTF-8 sequence of two or more bytes gives: evidence that a file is UTF-8.
_MULTIBYTE = re.compile("[\u0080-\udc7f\udd00-\U0010ffff]")


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
    encoding : str
        How a CSV file was decoded: ``utf-8`` (with or without a byte-order
        mark), ``utf-16``, ``utf-32`` or ``cp1252``.
    delimiter : str or None
        The CSV delimiter found.
    problems : list of Problem
        Records that could not be split into the header's columns (errors;
        they are not in ``frame``), and warnings about the whole file (such as
        a Windows-1252 encoding).
    numbers : DataFrame or None
        For XLSX, GeoJSON and GeoPackage: the value of each cell the file
        stored as a number (NaN elsewhere), same shape and columns as
        ``frame``. Validation takes these as they are, whatever the decimal
        mark of the text cells. None for CSV, whose cells are all text.
    """

    frame: pd.DataFrame
    file: str
    rows: np.ndarray
    geometry: gpd.GeoSeries | None = None
    encoding: str = "utf-8"
    delimiter: str | None = None
    problems: list[Problem] = field(default_factory=list)
    numbers: pd.DataFrame | None = None


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
        _check_workbook(path)
        with _unreadable(path, str(path), "XLSX workbook"):
            book = pd.ExcelFile(path, engine="openpyxl")
        with book:
            found = _pick_tables(path, names, book.sheet_names, optional)
            return {name: _read_sheet(book, sheet, path) for name, sheet in found.items()}
    if suffix == ".gpkg":
        with _unreadable(path, str(path), "GeoPackage"):
            layers = [str(layer) for layer in pyogrio.list_layers(path)[:, 0]]
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


@contextlib.contextmanager
def _unreadable(path: Path, label: str, kind: str) -> Iterator[None]:
    """Turn any exception of a third-party parser into one line: ``label: not a readable <kind> (cause)``.

    openpyxl, pandas and GDAL raise many kinds of exception on damaged or
    hostile files (``BadZipFile``, ``ParseError``, ``KeyError``,
    ``DataSourceError``, ``MemoryError`` ...). Each is a fact about the file,
    so the user gets the project's own error; only calls into those parsers
    are wrapped, never the project's own code. The cause names the file by
    its name only, as the label already gives its path.
    """
    try:
        yield
    except GeoError:
        raise
    except Exception as exc:  # noqa: BLE001 - the boundary to third-party parsers of untrusted files
        cause = _cause(exc).replace(str(path), path.name)
        raise InputError(f"{label}: not a readable {kind} ({cause})") from None


def _cause(exc: BaseException) -> str:
    """The first line of the innermost exception that ``exc`` was raised from, with its type."""
    seen = [exc]
    while (inner := seen[-1].__cause__ or seen[-1].__context__) is not None and inner not in seen:
        seen.append(inner)
    root = seen[-1]
    text = (str(root).strip().splitlines() or [""])[0][:200]
    return f"{type(root).__name__}: {text}" if text else type(root).__name__


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


# -- CSV ------------------------------------------------------------------------------


def decode_text(data: bytes, path: Path) -> tuple[str, str]:
    """Decode the bytes of a text file by the project's encoding policy.

    A byte-order mark decides: UTF-8, UTF-16 or UTF-32. Without one the
    file is UTF-8 when it decodes as UTF-8, or when it holds any valid UTF-8
    sequence of two or more bytes (letters such as ``ä``): then bytes that
    are not UTF-8 are a mixed encoding. A file without any such sequence is
    Windows-1252, the encoding spreadsheet programs in the region still write.
    Bytes that fit neither are returned as lone surrogates (U+DC80 to
    U+DCFF) so that the caller can name the row and column holding them.

    Returns
    -------
    text : str
        The text, byte-order mark removed.
    encoding : str
        ``utf-8``, ``utf-16``, ``utf-32`` or ``cp1252``.

    Raises
    ------
    InputError
        For UTF-16 or UTF-32 text that is not valid, and for text that looks
        like UTF-16 without a byte-order mark.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            if encoding == "utf-8":
                return data[len(bom):].decode("utf-8", errors="surrogateescape"), encoding
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError as exc:
                msg = (f"{path}: not valid {encoding.upper()} text (bytes {exc.start} to {exc.end}); "
                       "save the file as CSV UTF-8")
                raise InputError(msg) from None
    if _looks_like_utf16(data):
        msg = (f"{path}: looks like UTF-16 text without a byte-order mark, or is not a text file; "
               "save it as CSV UTF-8")
        raise InputError(msg)
    text = data.decode("utf-8", errors="surrogateescape")
    if not _UNDECODED.search(text) or _MULTIBYTE.search(text):
        return text, "utf-8"
    return data.decode("cp1252", errors="surrogateescape"), "cp1252"


def _looks_like_utf16(data: bytes) -> bool:
    """True when NUL bytes fill every other byte of the file's start, as ASCII letters in UTF-16 do."""
    head = data[:1024]
    if len(head) < 8:
        return False
    even, odd = head[0::2], head[1::2]
    return even.count(0) > len(even) // 2 or odd.count(0) > len(odd) // 2


def sniff_delimiter(text: str) -> str:
    """Pick the delimiter (``;``, tab or ``,``) that splits the file most consistently.

    Each candidate splits the first lines with the csv module (so quoted
    fields are honoured); the winner gives every record the header's field
    count with the most fields. A file with one column gets ``,``.
    """
    sample = "".join(itertools.islice(_io.StringIO(text, newline=""), _SNIFF_LINES))
    best, best_key = ",", (-1.0, 0)
    for delimiter in _DELIMITERS:
        try:
            records = [r for r in csv.reader(_io.StringIO(sample, newline=""), delimiter=delimiter) if r]
        except csv.Error:  # a field over the csv module's limit: reported when the file is read
            continue
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
    problems = []
    if encoding == "cp1252":
        problems.append(Problem(
            str(path), None, None, None, "the file is not UTF-8, so it was read as Windows-1252",
            "if letters such as ä, ö or å look wrong, save the file as CSV UTF-8 and load it again",
            severity="warning",
        ))
    if not text.strip():
        empty = pd.DataFrame()
        return RawTable(empty, str(path), np.empty(0, dtype=int), encoding=encoding, problems=problems)
    delimiter = sniff_delimiter(text)
    records = _split_records(text, delimiter, path)
    if _UNDECODED.search(text):
        _refuse_undecoded(records, path, encoding)
    numbered = [(n, r) for n, r in enumerate(records, start=1) if any(cell.strip() for cell in r)]
    if not numbered:  # separators only: no header and no data
        return RawTable(pd.DataFrame(), str(path), np.empty(0, dtype=int), encoding=encoding, problems=problems)
    (_, header), body = numbered[0], numbered[1:]
    width = len(header)
    problems += [
        Problem(
            str(path), n, None, delimiter.join(r)[:80],
            f"row has {len(r)} fields but the header has {width}",
            f"is there an unquoted {_DELIMITER_NAMES[delimiter]} inside a value?",
        )
        for n, r in body if len(r) != width
    ]
    good = [(n, r) for n, r in body if len(r) == width]
    keep = [i for i, name in enumerate(header) if name.strip() or any(r[i].strip() for _, r in good)]
    records = [r for _, r in good]
    if len(keep) < width:  # the empty columns of trailing delimiters carry nothing
        records = [[r[i] for i in keep] for r in records]
    frame = _clean_columns(pd.DataFrame(records, columns=[header[i] for i in keep], dtype=str), str(path))
    rows = np.array([n for n, _ in good], dtype=int)
    return RawTable(frame, str(path), rows, encoding=encoding, delimiter=delimiter, problems=problems)


def _split_records(text: str, delimiter: str, path: Path) -> list[list[str]]:
    """Split CSV text into records; a field over the csv module's size limit is refused with its row."""
    records: list[list[str]] = []
    try:
        for record in csv.reader(_io.StringIO(text, newline=""), delimiter=delimiter):
            records.append(record)
    except csv.Error as exc:
        row = len(records) + 1
        if "field larger than field limit" in str(exc):
            msg = (f"{path}, row {row}: a value is longer than {csv.field_size_limit():,} characters; "
                   "is a quotation mark left open?")
        else:
            msg = f"{path}, row {row}: not readable as CSV ({exc})"
        raise InputError(msg) from None
    return records


def _refuse_undecoded(records: list[list[str]], path: Path, encoding: str) -> None:
    """Refuse a file holding bytes its encoding cannot decode, naming the first row, column and byte."""
    header = None
    for n, record in enumerate(records, start=1):
        for position, cell in enumerate(record):
            found = _UNDECODED.search(cell)
            if found is None:
                continue
            byte = ord(found.group()) - 0xDC00
            named = header[position].strip() if header and position < len(header) else ""
            column = repr(named) if named and not _UNDECODED.search(named) else str(position + 1)
            if encoding == "utf-8":
                why = ("is not UTF-8 while the rest of the file is: the row was probably pasted from a file "
                       "in another encoding; save the file as CSV UTF-8 and check the letters of that row")
            else:
                why = "is neither UTF-8 nor Windows-1252; save the file as CSV UTF-8"
            raise InputError(f"{path}, row {n}, column {column}: byte 0x{byte:02X} {why}")
        if header is None and any(cell.strip() for cell in record):
            header = record


# -- XLSX -----------------------------------------------------------------------------


def _check_workbook(path: Path) -> None:
    """Refuse a workbook that is not a zip archive, would unpack to more than the limit, or declares a DTD.

    The last check does not depend on defusedxml (which openpyxl uses when
    it is installed): without it, expat would expand a billion laughs in a
    sheet to some hundred MB before its own limit stops it.
    """
    with _unreadable(path, str(path), "XLSX workbook"):
        if not zipfile.is_zipfile(path):
            msg = f"{path}: not an XLSX workbook (not a zip archive); save it as .xlsx from the spreadsheet program"
            raise InputError(msg)
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
            if unpacked > MAX_XLSX_UNPACKED_BYTES:
                msg = (f"{path}: the workbook unpacks to {unpacked / 2**20:,.0f} MiB, more than the "
                       f"{MAX_XLSX_UNPACKED_BYTES / 2**20:,.0f} MiB read at most; save large tables as CSV")
                raise InputError(msg)
            for info in archive.infolist():
                if _declares_doctype(archive, info):
                    msg = (f"{path}: refused: its part {info.filename} declares an XML document type, as XML bombs "
                           "and external-entity attacks do; spreadsheet programs never write one")
                    raise InputError(msg)


class _PrologRead(Exception):
    """Raised by the expat handlers below to stop reading a part once its prolog has been seen."""


def _declares_doctype(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    """True when a part of the archive is XML with a ``<!DOCTYPE>``; only its prolog is parsed, entities never."""
    def stop(*_args: object) -> None:
        raise _PrologRead

    def doctype(*_args: object) -> None:
        found.append(True)
        raise _PrologRead

    found = []
    parser = expat.ParserCreate()
    parser.StartElementHandler = stop  # the root element: past the prolog, where a DTD would have to be
    parser.StartDoctypeDeclHandler = doctype  # called before any entity of the DTD is read
    with archive.open(info) as part:
        try:
            while chunk := part.read(65536):
                parser.Parse(chunk, False)
        except _PrologRead:
            pass
        except expat.ExpatError:  # not XML (an image), or broken XML that openpyxl then refuses
            pass
    return bool(found)


def _read_sheet(book: pd.ExcelFile, sheet: str, path: Path) -> RawTable:
    """Read a sheet whose first non-blank row is the header; empty rows and columns carry nothing and are dropped.

    The header is read as cells like any other row (not by pandas, which
    would rename a name given twice to ``name.1``), so that a repeated name
    is refused as in CSV.
    """
    label = f"{path}[{sheet}]"
    with _unreadable(path, label, "XLSX sheet"):
        cells = pd.read_excel(book, sheet_name=sheet, header=None, dtype=object)
    cells = cells.dropna(how="all").dropna(axis=1, how="all")
    if cells.empty:
        return RawTable(pd.DataFrame(), label, np.empty(0, dtype=int), numbers=pd.DataFrame())
    header, body = cells.iloc[0], cells.iloc[1:]
    rows = body.index.to_numpy() + 1  # pandas numbers the sheet's rows from 0
    body = body.set_axis([_cell_text(name) for name in header], axis=1).reset_index(drop=True)
    frame = _clean_columns(body.map(_cell_text), label)
    numbers = body.map(_stored_number).set_axis(frame.columns, axis=1)
    return RawTable(frame, label, rows, numbers=numbers)


def _cell_text(value: object) -> str:
    """Text of an Excel cell: integral floats without ``.0``, empty for blanks."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _stored_number(value: object) -> float:
    """The value of a cell stored as a number; NaN for text, dates, booleans and blanks."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return np.nan
    try:
        return float(value)
    except OverflowError:  # an integer beyond the range of floats
        return np.inf if value > 0 else -np.inf


# -- GeoJSON and GeoPackage -------------------------------------------------------------


def _read_vector(path: Path, layer: str | None, label: str) -> RawTable:
    """Read a GeoJSON file (``layer`` None) or a GeoPackage layer with GDAL, geometry in EPSG:4326.

    Texts GDAL cut at a NUL are put back whole, for validation to refuse.
    """
    kind = "GeoPackage layer" if layer is not None else "GeoJSON file"
    full_text = _geojson_cells_with_nul(path, label) if layer is None else {}
    with _unreadable(path, label, kind):
        gdf = pyogrio.read_dataframe(path, layer=layer, fid_as_index=True)
        has_geometry = isinstance(gdf, gpd.GeoDataFrame) and gdf.geometry.notna().any()
        geometry = None
        if has_geometry:
            if gdf.crs is None:
                raise InputError(f"{label}: the layer has no coordinate reference system")
            geometry = gdf.geometry.to_crs(WGS84).reset_index(drop=True)
    if layer is not None:
        full_text = _geopackage_cells_with_nul(path, layer, label, gdf.index)
    attributes = pd.DataFrame(gdf.drop(columns="geometry", errors="ignore")).reset_index(drop=True)
    for (position, column), text in full_text.items():
        if column in attributes.columns and position < len(attributes):
            attributes[column] = attributes[column].astype(object)
            attributes.loc[position, column] = text
    rows = np.arange(1, len(attributes) + 1)
    frame = _clean_columns(attributes.map(_cell_text), label)
    numbers = pd.DataFrame(
        {c: attributes[c].map(_stored_number) if _is_numeric(attributes[c]) else np.nan for c in attributes.columns},
        index=attributes.index,
    ).set_axis(frame.columns, axis=1)
    return RawTable(frame, label, rows, geometry=geometry, numbers=numbers)


def _is_numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def _geojson_cells_with_nul(path: Path, label: str) -> dict[tuple[int, str], str]:
    """Check that a GeoJSON file is UTF-8, and find the property texts holding a NUL, which GDAL would cut.

    Returns ``{(feature position, property): full text}``; usually empty, and
    then the file is not parsed a second time.
    """
    data = path.read_bytes()
    for bom, encoding in _BOMS:
        if encoding != "utf-8" and data.startswith(bom):
            raise InputError(f"{label}: {encoding.upper()} text; GeoJSON is UTF-8, save the file as UTF-8")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        msg = (f"{label}, line {line}: byte 0x{data[exc.start]:02X} is not UTF-8; "
               "GeoJSON is UTF-8, save the file as UTF-8")
        raise InputError(msg) from None
    if "\\u0000" not in text and "\x00" not in text:
        return {}
    try:
        features = json.loads(text).get("features") or []
    except (ValueError, AttributeError, RecursionError):
        raise InputError(f"{label}: the file holds a NUL character and is not valid JSON") from None
    found = {}
    for position, feature in enumerate(features if isinstance(features, list) else []):
        properties = feature.get("properties") if isinstance(feature, dict) else None
        for key, value in (properties.items() if isinstance(properties, dict) else ()):
            if isinstance(value, str) and "\x00" in value:
                found[(position, key)] = value
    return found


def _geopackage_cells_with_nul(path: Path, layer: str, label: str, fids: pd.Index) -> dict[tuple[int, str], str]:
    """Find the text cells of a GeoPackage layer that hold a NUL, which GDAL would cut, with sqlite3.

    Returns ``{(feature position, column): full text}``, positions found
    through the feature ids GDAL read (``fids``).
    """
    def quoted(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    uri = path.resolve().as_uri() + "?mode=ro"
    with _unreadable(path, label, "GeoPackage layer"), contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        info = db.execute(f"PRAGMA table_info({quoted(layer)})").fetchall()
        key = next((row[1] for row in info if row[5]), None)
        texts = [row[1] for row in info if str(row[2]).upper().startswith("TEXT")]
        if key is None or not texts:
            return {}
        holds_nul = " OR ".join(f"instr(CAST({quoted(c)} AS BLOB), x'00') > 0" for c in texts)
        columns = ", ".join(quoted(c) for c in [key, *texts])
        found_rows = db.execute(f"SELECT {columns} FROM {quoted(layer)} WHERE {holds_nul}").fetchall()
    position_of = {fid: position for position, fid in enumerate(fids)}
    found = {}
    for fid, *values in found_rows:
        for column, value in zip(texts, values):
            if isinstance(value, str) and "\x00" in value and fid in position_of:
                found[(position_of[fid], column)] = value
    return found


# -- all formats ------------------------------------------------------------------------


def _clean_columns(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    """Column names without a byte-order mark or padding, cells as text.

    A name given twice, or holding a control character, is refused.
    """
    names = [str(c) for c in frame.columns]
    for position, name in enumerate(names, start=1):  # before stripping, which would drop some of them
        if (control := _CONTROL_RE.search(name)) is not None:
            msg = (f"{label}, column {position}: the column name {name!r} holds the control character "
                   f"U+{ord(control.group()):04X}; remove it")
            raise InputError(msg)
    frame.columns = [name.replace("\ufeff", "").strip() for name in names]
    seen: dict[str, int] = {}
    for position, name in enumerate(frame.columns, start=1):
        key = name.casefold()
        if key in seen:
            msg = (f"{label}: column {name!r} appears twice (columns {seen[key]} and {position}); "
                   "keep one, or rename the other")
            raise InputError(msg)
        seen[key] = position
    return frame.astype(str) if len(frame.columns) else frame
