"""The data model, and validation of raw tables into typed frames.

Two tables make a dataset:

``facilities``
    ``facility_id`` (unique, required), ``name`` (required), ``lat``/``lon``
    (WGS84 degrees, or a point geometry), ``nace``, ``country``, ``cluster``,
    ``operator``, ``source``, ``notes``.
``flows``
    ``facility_id``, ``direction`` (supply or demand), ``resource``,
    ``quantity`` (>= 0, blank = unknown), ``unit`` (t/yr, MWh/yr, m3/yr),
    ``ewc``, ``description``, ``max_distance_km``, ``confidential``.

:func:`validate` checks every row and collects every problem in a
:class:`~geo.errors.ValidationReport` before anything is used: nothing is
silently dropped; a row with an error is left out of the typed frames and
listed in ``Dataset.skipped``.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo import settings
from geo.errors import Problem, ValidationReport
from geo.io import CONTROL_CHARACTERS, RawTable
from geo.taxonomy import UNITS, Taxonomy

__all__ = [
    "Dataset",
    "FACILITY_COLUMNS",
    "FLOW_COLUMNS",
    "LISTED_ROWS",
    "Numbers",
    "ambiguous_readings",
    "decimal_mark",
    "normalise_ewc",
    "normalise_nace",
    "parse_numbers",
    "validate",
]

FACILITY_COLUMNS = (
    "facility_id", "name", "lat", "lon", "nace", "country", "cluster",
    "operator", "quay", "source", "notes", "precision",
)
FLOW_COLUMNS = (
    "facility_id", "direction", "resource", "quantity", "unit", "ewc",
    "description", "max_distance_km", "confidential", "partners", "evidence",
)

#: How closely a facility's point is known (column ``precision``): within about 300 m of the plant, at its
#: street address, or only its town.
PRECISIONS = ("site", "address", "town")
#: Where a flow's quantity comes from (column ``evidence``): a figure a source gives for that facility, or an
#: estimate for a plant of its sector and size.
EVIDENCE = ("published", "typical")

_ALIASES = {
    "id": "facility_id",
    "facility id": "facility_id",
    "latitude": "lat",
    "longitude": "lon",
    "lng": "lon",
    "long": "lon",
    "nace_code": "nace",
    "nace code": "nace",
    "country_code": "country",
    "ewc_code": "ewc",
    "ewc code": "ewc",
    "max_km": "max_distance_km",
}

_UNIT_SPELLINGS = {
    "t/yr": "t/yr", "t/a": "t/yr", "t/y": "t/yr", "t/year": "t/yr", "tpa": "t/yr",
    "tonnes/yr": "t/yr", "tonnes/year": "t/yr", "tons/yr": "t/yr",
    "mwh/yr": "MWh/yr", "mwh/a": "MWh/yr", "mwh/y": "MWh/yr", "mwh/year": "MWh/yr",
    "m3/yr": "m3/yr", "m3/a": "m3/yr", "m3/y": "m3/yr", "m3/year": "m3/yr",
    "m³/yr": "m3/yr", "m³/a": "m3/yr", "m³/year": "m3/yr",
}

_TRUE = {"true", "yes", "y", "1", "x"}
_FALSE = {"false", "no", "n", "0", ""}

# NACE Rev. 2 sections and the divisions each holds (divisions 04, 34, 40, ...
# do not exist).
_NACE_SECTIONS = {
    "A": (1, 3), "B": (5, 9), "C": (10, 33), "D": (35, 35), "E": (36, 39),
    "F": (41, 43), "G": (45, 47), "H": (49, 53), "I": (55, 56), "J": (58, 63),
    "K": (64, 66), "L": (68, 68), "M": (69, 75), "N": (77, 82), "O": (84, 84),
    "P": (85, 85), "Q": (86, 88), "R": (90, 93), "S": (94, 96), "T": (97, 98),
    "U": (99, 99),
}
_NACE_DIVISION_SECTION = {
    d: s for s, (lo, hi) in _NACE_SECTIONS.items() for d in range(lo, hi + 1)
}
_NACE_RE = re.compile(r"^([A-Za-z])?\s*(\d{1,2})(?:\.?(\d)(?:\.?(\d))?)?$")
_EWC_RE = re.compile(r"^\d{6}$")

_COUNTRY_NAMES = {
    "finland": "FI", "suomi": "FI", "sweden": "SE", "sverige": "SE",
    "norway": "NO", "norge": "NO", "denmark": "DK", "danmark": "DK",
    "estonia": "EE", "eesti": "EE", "latvia": "LV", "latvija": "LV",
    "lithuania": "LT", "lietuva": "LT", "poland": "PL", "polska": "PL",
    "germany": "DE", "deutschland": "DE", "iceland": "IS", "russia": "RU",
    "belarus": "BY", "netherlands": "NL", "united kingdom": "GB", "uk": "GB",
}
# ISO 3166-1 alpha-2 codes of Europe and its neighbours.
_EUROPE = set(
    "AD AL AM AT AZ BA BE BG BY CH CY CZ DE DK EE ES FI FO FR GB GE GI GL GR HR "
    "HU IE IS IT LI LT LU LV MC MD ME MK MT NL NO PL PT RO RS RU SE SI SJ SK SM "
    "TR UA VA XK AX".split()
)


@dataclass
class Dataset:
    """Validated facilities and flows.

    Attributes
    ----------
    facilities : GeoDataFrame
        One row per valid facility, point geometry in EPSG:4326, columns of
        :data:`FACILITY_COLUMNS` (``nace`` normalised to ``23.51`` form,
        ``country`` upper case) plus any extra columns of the file, and
        ``file`` and ``row`` naming where each record came from.
    flows : DataFrame
        One row per valid flow: ``flow_id``, ``facility_id``, ``direction``,
        ``resource`` (resolved, from the EWC code when blank), ``quantity``
        (float, NaN = unknown), ``unit``, ``ewc``, ``description``,
        ``max_distance_km`` (NaN = resource default), ``confidential`` (bool),
        ``basis`` (``declared``), ``file``, ``row``.
    report : ValidationReport
        Every problem found.
    skipped : DataFrame
        Records left out because of an error: ``table``, ``file``, ``row``,
        ``facility_id``, ``reason``.
    """

    facilities: gpd.GeoDataFrame
    flows: pd.DataFrame
    report: ValidationReport = field(default_factory=ValidationReport)
    skipped: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["table", "file", "row", "facility_id", "reason"])
    )


# -- value normalisers ----------------------------------------------------------


def normalise_nace(value: str) -> str | None:
    """Normalise a NACE Rev. 2 code to dotted form without section letter.

    Accepts ``C23.51``, ``23.51``, ``2351``, ``C2351``, ``23.5``, ``23`` and a
    division that lost its leading zero in a spreadsheet (``1.13``).
    Returns None when the text is not a NACE code of an existing division or
    when the section letter does not fit the division.
    """
    text = value.strip().replace(" ", "")
    match = _NACE_RE.match(text)
    if not match:
        return None
    letter, division, group, klass = match.groups()
    if len(division) == 1 and group is None:
        return None
    number = int(division)
    section = _NACE_DIVISION_SECTION.get(number)
    if section is None or (letter and letter.upper() != section):
        return None
    code = f"{number:02d}"
    if group is not None:
        code += f".{group}" + (klass or "")
    return code


def normalise_ewc(value: str) -> str | None:
    """Normalise a European List of Waste code to six digits (``10 01 02`` -> ``100102``).

    Spaces, dots and a trailing ``*`` (the hazardous mark) are removed, and a
    five-digit code that lost its leading zero in a spreadsheet is padded.
    Returns None when the result is not six digits in chapters 01 to 20.
    """
    text = re.sub(r"[\s.\-*]", "", value)
    if len(text) == 5 and text.isdigit():
        text = "0" + text
    if not _EWC_RE.match(text) or not 1 <= int(text[:2]) <= 20:
        return None
    return text


class Numbers(NamedTuple):
    """Numbers read from a column of text cells, index-aligned with it.

    Attributes
    ----------
    values : Series of float
        NaN for blank, bad and ambiguous cells.
    bad : Series of bool
        True where a cell is not blank but is not a finite number.
    ambiguous : Series of bool
        True where a cell could be read two ways (``60.000``: 60 or 60000)
        and the file does not settle which; see :func:`ambiguous_readings`.
    """

    values: pd.Series
    bad: pd.Series
    ambiguous: pd.Series


# sign, then digits grouped in threes by one separator (a dot, comma or space) or plain digits, then a decimal
# mark and its digits, then an exponent. "60.000" matches as grouped, "1.2345" and "0.500" as plain with a mark.
_NUMBER_RE = re.compile(
    r"(?P<sign>[-+]?)"
    r"(?:(?P<grouped>[1-9]\d{0,2}(?P<sep>[., \u00a0\u202f\u2009])\d{3}(?:(?P=sep)\d{3})*)|(?P<plain>\d*))"
    r"(?:(?P<mark>[.,])(?P<fraction>\d*))?"
    r"(?P<exponent>[eE][-+]?\d+)?",
    re.ASCII,
)
_OTHER_MARK = {".": ",", ",": "."}


@dataclass(frozen=True)
class _Reading:
    """What one number text says: its value, the decimal mark it proves, or the separator that makes it ambiguous."""

    value: float = np.nan
    proves: str = ""
    ambiguous_sep: str = ""
    decimal: float = np.nan
    thousands: float = np.nan


def _read_number(text: str, *, grouping: bool) -> _Reading:
    """Read one stripped number text (see :func:`parse_numbers` for the rules)."""
    match = _NUMBER_RE.fullmatch(text.replace("\u2212", "-"))
    if match is None:
        return _Reading()
    sign, grouped, sep, plain, mark, fraction, exponent = match.group(
        "sign", "grouped", "sep", "plain", "mark", "fraction", "exponent")
    fraction, exponent = fraction or "", exponent or ""
    if grouped is None:
        if not (plain or fraction):
            return _Reading()
        return _Reading(_float(sign, plain, fraction, exponent), mark if fraction else "")
    first, *groups = grouped.split(sep)
    if sep in _OTHER_MARK and len(groups) == 1 and mark is None and (exponent or not grouping):
        return _Reading(_float(sign, first, groups[0], exponent), sep)  # 1.234e5, or a coordinate: a decimal
    if not grouping or exponent or mark == sep:
        return _Reading()
    digits = first + "".join(groups)
    if mark is not None:
        return _Reading(_float(sign, digits, fraction, ""), mark if fraction else "")
    if sep not in _OTHER_MARK or len(groups) > 1:  # 1 234 567 or 1.234.567: the separator is for thousands
        return _Reading(_float(sign, digits, "", ""), _OTHER_MARK.get(sep, ""))
    as_decimal, as_thousands = _float(sign, first, groups[0], ""), _float(sign, digits, "", "")
    return _Reading(ambiguous_sep=sep, decimal=as_decimal, thousands=as_thousands)


def _float(sign: str, integer: str, fraction: str, exponent: str) -> float:
    return float(f"{sign}{integer or '0'}.{fraction or '0'}{exponent}")


def _number_texts(values: pd.Series) -> pd.Series:
    return values.astype(str).str.strip()


def _simple(text: pd.Series, *, grouping: bool) -> pd.Series:
    """True for texts that read one way at a glance: ``12``, ``-3.14``, ``12,5``, ``0.500``, ``.5``.

    Most cells look like this, so they are read in one vectorised pass; the
    rest (groups of thousands, exponents, ambiguous or bad texts) go through
    :func:`_read_number`, which reads these the same way.
    """
    simple = text.str.fullmatch(r"[-+]?(?:[0-9]+|[0-9]*[.,][0-9]+)")
    if grouping:
        simple &= ~text.str.fullmatch(r"[-+]?[1-9][0-9]{0,2}[.,][0-9]{3}")
    return simple.fillna(False).astype(bool)


def decimal_mark(*columns: pd.Series) -> str | None:
    """The decimal mark that the unambiguous numbers of some columns prove: ``","``, ``"."`` or None.

    ``12,5`` and ``1.234.567`` prove a decimal comma; ``3.14`` and
    ``1,234,567`` a decimal dot; ``1.234,5`` and ``1 234,5`` the mark they
    end with. Values that could be read two ways (``60.000``, ``1,500``) and
    whole numbers prove nothing. None when nothing proves a mark, or when the
    columns prove both (a file pasted together from two sources).
    """
    marks = set()
    for column in columns:
        text = _number_texts(column)
        simple = _simple(text, grouping=True)
        marks.update(mark for mark in ".," if text[simple].str.contains(mark, regex=False).any())
        marks.update(_read_number(t, grouping=True).proves for t in text[~simple & (text != "")].unique())
    marks.discard("")
    return marks.pop() if len(marks) == 1 else None


def ambiguous_readings(text: str) -> tuple[float, float]:
    """The two values an ambiguous number text could mean: (decimal mark read, thousands read).

    ``'60.000'`` gives ``(60.0, 60000.0)``; NaNs for a text that is not ambiguous.
    """
    reading = _read_number(text.strip(), grouping=True)
    return reading.decimal, reading.thousands


def parse_numbers(
    values: pd.Series,
    *,
    decimal: str | None = None,
    grouping: bool = True,
    stored: pd.Series | None = None,
) -> Numbers:
    """Parse numbers as Europeans write them, never guessing between a thousandfold difference.

    A comma or a dot is a decimal mark or a thousands separator; which one is
    decided per file, from its values that can only be read one way (see
    :func:`decimal_mark`), and given as ``decimal``. Digits grouped in
    threes by spaces (also no-break and thin spaces) are thousands
    (``1 234 567,5``); the Unicode minus sign is a minus. A value that could
    be read either way (``60.000`` is 60 or 60000; ``1,500`` is 1.5 or 1500)
    takes the reading of ``decimal``; with ``decimal`` None it is not read
    and marked ``ambiguous``, for the caller to refuse naming both readings.

    Parameters
    ----------
    values : Series
        Cell texts.
    decimal : {",", "."}, optional
        The decimal mark of the file, from :func:`decimal_mark`; None when
        the file does not settle it.
    grouping : bool
        False for coordinates, which have no thousands: a single comma or
        dot is then always the decimal mark (``60.169`` is 60.169).
    stored : Series of float, optional
        Cells the file stored as numbers (XLSX number cells, numeric GeoJSON
        and GeoPackage fields; NaN elsewhere), taken as they are.

    Returns
    -------
    Numbers
        ``values`` (float, NaN for blank, bad or ambiguous cells), ``bad``
        and ``ambiguous`` (bool), index-aligned with ``values``.
    """
    text = _number_texts(values)
    if stored is not None:
        text = text.where(stored.isna(), "")
    simple = _simple(text, grouping=grouping)
    numbers = pd.Series(np.nan, index=text.index)
    numbers[simple] = pd.to_numeric(text[simple].str.replace(",", ".", regex=False), errors="coerce")
    rest = text[~simple & (text != "")]
    readings = {t: _read_number(t, grouping=grouping) for t in rest.unique()}

    def value(reading: _Reading) -> float:
        if not reading.ambiguous_sep or decimal is None:
            return reading.value
        return reading.decimal if reading.ambiguous_sep == decimal else reading.thousands

    numbers[rest.index] = rest.map({t: value(r) for t, r in readings.items()}).astype(float)
    ambiguous = text.isin([t for t, r in readings.items() if r.ambiguous_sep]) & (decimal is None)
    if stored is not None:
        numbers = numbers.where(stored.isna(), stored.astype(float))
    blank = (text == "") & (stored.isna() if stored is not None else True)
    bad = ~blank & ~ambiguous & ~np.isfinite(numbers.to_numpy(dtype=float))
    numbers = numbers.where(~bad & ~ambiguous)
    return Numbers(numbers.rename(values.name), pd.Series(bad, index=values.index), ambiguous)


# -- validation -----------------------------------------------------------------


def validate(facilities: RawTable, flows: RawTable | None, taxonomy: Taxonomy) -> Dataset:
    """Validate raw facilities and flows tables into a :class:`Dataset`.

    Every row is checked and every problem recorded before returning; rows
    with errors are excluded from the frames and listed in ``skipped``.
    Whether to go on with a dataset whose report has errors is the caller's
    decision (the command line refuses unless ``--skip-invalid``).

    Parameters
    ----------
    facilities, flows : RawTable
        Tables read by :func:`geo.io.read_table`; ``flows`` may be None.
    taxonomy : Taxonomy
        Resource codes, units and the EWC map to check flows against.

    Returns
    -------
    Dataset
    """
    report = ValidationReport()
    skipped: list[dict] = []
    fac, all_ids = _validate_facilities(facilities, report, skipped)
    if flows is not None:
        flw = _validate_flows(flows, taxonomy, set(fac["facility_id"]), all_ids, report, skipped)
    else:
        flw = _empty_flows()
    report.problems.sort(key=lambda p: (p.file != facilities.file, p.file, p.row or 0))
    skipped_frame = pd.DataFrame(skipped, columns=["table", "file", "row", "facility_id", "reason"])
    return Dataset(fac, flw, report, skipped_frame)


#: Rows listed one by one for each check of a table; the rest are counted in one more problem (every row with
#: an error is still left out and named in ``Dataset.skipped``). Real files with a few hundred bad rows are
#: listed whole, while a report never grows past about 30 checks x 1,000 rows, however large the file.
LISTED_ROWS = 1000

#: Characters of a cell value shown in a problem; longer values are cut, with an ellipsis.
SHOWN_CHARS = 80

_CONTROL_RE = re.compile(CONTROL_CHARACTERS)
_CONTROL_NAMES = {0x00: "NUL", 0x1B: "escape", 0x7F: "DEL", 0x85: "next line"}


class _Collector:
    """Collects problems for one table and marks rows that have an error."""

    def __init__(self, raw: RawTable, report: ValidationReport) -> None:
        self.raw = raw
        self.report = report
        self.bad = np.zeros(len(raw.frame), dtype=bool)
        self.reasons: dict[int, str] = {}

    def rows(self, mask, column: str | None, values, message, hint="", severity="error") -> None:
        """Record a problem for each row where ``mask`` holds: the first :data:`LISTED_ROWS`, then a count.

        ``message`` and ``hint`` are a text, a callable of the cell value, or
        a Series of texts aligned with the table's rows. A callable gets the
        value cut to :data:`SHOWN_CHARS` characters. Hints are worked out for
        the listed rows only (some search the whole table); messages for
        every row with an error, as the reason it was left out.
        """
        positions = np.flatnonzero(np.asarray(mask, dtype=bool))
        if not len(positions):
            return
        if values is None:
            cells = [None] * len(positions)
        else:
            cells = [_shown(v) for v in values.iloc[positions].tolist()]
        listed = min(len(positions), LISTED_ROWS)
        texts = _texts(message, positions if severity == "error" else positions[:listed], cells)
        tips = _texts(hint, positions[:listed], cells)
        for pos, value, text, tip in zip(positions[:listed], cells, texts, tips):
            self.report.add(
                Problem(self.raw.file, int(self.raw.rows[pos]), column, _visible(value), text, tip, severity)
            )
        if len(positions) > listed:
            left_out = ", each left out" if severity == "error" else ""
            self.report.add(Problem(
                self.raw.file, None, column, None,
                f"{len(positions) - listed:,} more rows like row {int(self.raw.rows[positions[0]])} ({texts[0]})",
                f"only the first {listed:,} are listed{left_out}", severity,
            ))
        if severity == "error":
            self.bad[positions] = True
            for pos, text in zip(positions.tolist(), texts):
                self.reasons.setdefault(pos, f"{column}: {text}" if column else text)

    def file(self, message: str, hint: str = "", column: str | None = None) -> None:
        self.report.add(Problem(self.raw.file, None, column, None, message, hint))

    def skipped(self, table: str, ids: pd.Series) -> list[dict]:
        """One record per row with an error: what the table lost, and why."""
        positions = np.flatnonzero(self.bad)
        return [
            {"table": table, "file": self.raw.file, "row": int(row), "facility_id": fid, "reason": self.reasons[pos]}
            for pos, row, fid in zip(positions.tolist(), self.raw.rows[positions], ids.iloc[positions].tolist())
        ]


def _shown(value: object) -> str:
    """A cell value as a problem shows it: cut to :data:`SHOWN_CHARS` characters."""
    text = str(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS - 1] + "\u2026"


def _visible(value: str | None) -> str | None:
    """The value with control characters written as escapes (``\\x00``), as a report or table can show it."""
    if value is None:
        return None
    return _CONTROL_RE.sub(lambda m: repr(m.group())[1:-1], value)


def _character(char: str) -> str:
    """``'U+0000 (NUL)'``."""
    code = ord(char)
    name = _CONTROL_NAMES.get(code)
    return f"U+{code:04X}" + (f" ({name})" if name else "")


def _control_characters(frame: pd.DataFrame, col: _Collector) -> None:
    """Refuse every cell holding a control character (see :data:`geo.io.CONTROL_CHARACTERS`), naming it."""
    for column in frame.columns:
        text = frame[column]
        holds = text.str.contains(CONTROL_CHARACTERS, regex=True)
        if not holds.any():
            continue
        found = text.where(holds, "").str.extract(f"({CONTROL_CHARACTERS})", expand=False)
        col.rows(
            holds, column, text,
            "the text holds the invisible control character " + found.fillna(" ").map(_character),
            "remove it: such characters break saving and exports (a NUL cuts the text)",
        )


def _texts(message, positions: np.ndarray, cells: list) -> list[str]:
    """The text of ``message`` (a text, a callable of the cell value, or a Series) for each position."""
    if isinstance(message, pd.Series):
        return [str(m) for m in message.iloc[positions].tolist()]
    if callable(message):
        return [message(cell) for cell in cells[: len(positions)]]
    return [message] * len(positions)


def _broken_records(raw: RawTable, table: str, report: ValidationReport, skipped: list[dict]) -> None:
    """Report the reader's problems; records it could not split into columns are listed as skipped.

    Like every check, the first :data:`LISTED_ROWS` such records are listed
    and the rest counted.
    """
    errors = [p for p in raw.problems if p.severity == "error"]
    report.extend([p for p in raw.problems if p.severity != "error"] + errors[:LISTED_ROWS])
    if len(errors) > LISTED_ROWS:
        first = errors[0]
        report.add(Problem(raw.file, None, None, None,
                           f"{len(errors) - LISTED_ROWS:,} more rows like row {first.row} ({first.message})",
                           f"only the first {LISTED_ROWS:,} are listed, each left out"))
    for p in errors:
        skipped.append({"table": table, "file": p.file, "row": p.row, "facility_id": "", "reason": p.message})


def _prepared(
    raw: RawTable, table: str, required: list[str], columns: tuple[str, ...], col: _Collector, skipped: list[dict]
) -> pd.DataFrame | None:
    """The table with canonical column names, every optional column present and ids stripped.

    None, with the problem recorded, when the table cannot be checked row by
    row (empty, or missing a required column).
    """
    _broken_records(raw, table, col.report, skipped)
    frame = _canonical_columns(raw.frame.copy())
    if frame.empty:
        what = "is empty" if not len(frame.columns) else "has no data rows"
        one = {"facilities": "facility", "flows": "flow"}[table]
        col.file(f"the {table} file {what}", f"add one row per {one} below a header row")
        return None
    if _missing_columns(raw, frame, required, col, table, skipped):
        return None
    _control_characters(frame, col)
    for column in columns:
        if column not in frame.columns:
            frame[column] = ""
    frame["facility_id"] = frame["facility_id"].str.strip()
    col.rows(frame["facility_id"] == "", "facility_id", frame["facility_id"], "facility id is empty")
    return frame


def _canonical_columns(frame: pd.DataFrame) -> pd.DataFrame:
    renamed = {}
    for column in frame.columns:
        key = column.strip().lower()
        key = _ALIASES.get(key, key)
        if key not in renamed.values():
            renamed[column] = key
    return frame.rename(columns=renamed)


def _missing_columns(
    raw: RawTable, frame: pd.DataFrame, required: list[str], col: _Collector, table: str, skipped: list[dict]
) -> bool:
    """Report missing required columns; every row of the table is then skipped, and named."""
    missing = [c for c in required if c not in frame.columns]
    names = list(frame.columns)
    found = ", ".join(_shown(c) for c in names[:20]) or "none"
    if len(names) > 20:
        found += f" and {len(names) - 20:,} more"
    for column in missing:
        col.file(f"required column {column!r} is missing", f"columns found: {found}", column)
    if missing:
        ids = frame["facility_id"] if "facility_id" in frame.columns else pd.Series("", index=frame.index)
        reason = f"required column {missing[0]!r} is missing"
        for row, fid in zip(raw.rows, ids):
            skipped.append({"table": table, "file": raw.file, "row": int(row), "facility_id": fid, "reason": reason})
    return bool(missing)


def _validate_facilities(
    raw: RawTable, report: ValidationReport, skipped: list[dict]
) -> tuple[gpd.GeoDataFrame, set[str]]:
    col = _Collector(raw, report)
    required = ["facility_id", "name"] + ([] if raw.geometry is not None else ["lat", "lon"])
    frame = _prepared(raw, "facilities", required, FACILITY_COLUMNS, col, skipped)
    if frame is None:
        return _empty_facilities(), set()
    ids = frame["facility_id"]
    duplicated = ids.duplicated(keep="first") & (ids != "")
    if duplicated.any():
        rows = pd.Series(raw.rows, index=frame.index).groupby(ids)
        hints = (rows.agg(lambda r: _some_rows(r.tolist())) if len(ids) else pd.Series(dtype=object))
        col.rows(
            duplicated, "facility_id", ids,
            lambda v: f"duplicate facility id {v!r}",
            lambda v: hints[v],
        )
    col.rows(frame["name"].str.strip() == "", "name", frame["name"], "facility name is empty")

    has_lat_lon = {"lat", "lon"} <= set(_canonical_columns(raw.frame).columns)
    lon, lat = _facility_coordinates(raw, frame, col, has_lat_lon=has_lat_lon)
    frame["lat"], frame["lon"] = lat, lon

    frame["nace"] = _codes(
        frame, "nace", normalise_nace, col, "a NACE Rev. 2 code",
        "write it like C23.51, 23.51 or 2351 (the section letter must fit the division)",
    )

    country_text = frame["country"].str.strip()
    country = country_text.map(lambda v: _COUNTRY_NAMES.get(v.lower(), v.upper()))
    col.rows(
        (country != "") & ~country.str.fullmatch(r"[A-Z]{2}"), "country", country_text,
        lambda v: f"{v!r} is not an ISO 3166-1 alpha-2 country code",
        "write two letters, like FI, SE or DK",
    )
    col.rows(
        country.str.fullmatch(r"[A-Z]{2}") & ~country.isin(_EUROPE), "country", country_text,
        lambda v: f"{v!r} is not a European country code", "check the code", severity="warning",
    )
    frame["country"] = country

    quay = frame["quay"].str.strip().str.lower()
    col.rows(~quay.isin(_TRUE | _FALSE), "quay", frame["quay"], lambda v: f"{v!r} is not true or false",
             "write true when ships can load or unload bulk at the facility, else false or nothing")
    frame["quay"] = quay.isin(_TRUE)

    frame["precision"] = _choice(frame, "precision", PRECISIONS, col,
                                 "site (within about 300 m), address or town; leave it empty when not known")

    frame["file"] = raw.file
    frame["row"] = raw.rows
    skipped.extend(col.skipped("facilities", ids))
    valid = frame[~col.bad].copy()
    geometry = gpd.points_from_xy(valid["lon"].astype(float), valid["lat"].astype(float))
    fac = gpd.GeoDataFrame(valid.reset_index(drop=True), geometry=geometry, crs=settings.WGS84)
    return fac, set(ids[ids != ""])


#: Rows named in a problem's hint, at most; the rest are counted. A hint that named every row sharing an id
#: grew with the square of the rows (20,000 rows of one id made 2.6 GB of report).
HINT_ROWS = 5


def _some_rows(rows: list[int]) -> str:
    """``'rows 2, 3, 4, 5, 6 and 995 more share it'``: the first :data:`HINT_ROWS` rows and a count."""
    shown = ", ".join(str(r) for r in rows[:HINT_ROWS])
    more = f" and {len(rows) - HINT_ROWS:,} more" if len(rows) > HINT_ROWS else ""
    return f"rows {shown}{more} share it"


def _facility_coordinates(
    raw: RawTable, frame: pd.DataFrame, col: _Collector, *, has_lat_lon: bool
) -> tuple[pd.Series, pd.Series]:
    """Longitude and latitude per row, from the geometry or, where it is missing, the lat/lon columns."""
    lon = pd.Series(np.nan, index=frame.index)
    lat = pd.Series(np.nan, index=frame.index)
    from_columns = pd.Series(True, index=frame.index)
    if raw.geometry is not None:
        geom = raw.geometry.reset_index(drop=True)
        present = geom.notna() & ~geom.is_empty
        kinds = geom.geom_type
        others = present & (kinds != "Point")
        col.rows(
            others, "geometry", kinds,
            lambda v: f"geometry is a {v}, not a point; its representative point is used",
            severity="warning",
        )
        reps = shapely.point_on_surface(geom.values[present.to_numpy()])
        lon[present] = shapely.get_x(reps)
        lat[present] = shapely.get_y(reps)
        no_number = present & (lon.isna() | lat.isna())
        col.rows(no_number, "geometry", None, "the point's coordinates are not numbers (NaN)",
                 "give the facility a real location")
        from_columns = ~present
        if not has_lat_lon:
            col.rows(~present, "geometry", None, "facility has no geometry",
                     "give a point geometry or lat/lon columns")
            _check_ranges(lon, lat, col)  # points get the same checks as lat/lon columns
            return lon, lat
    lat_num, lat_bad, _ = parse_numbers(frame["lat"], grouping=False, stored=_stored(raw, "lat"))
    lon_num, lon_bad, _ = parse_numbers(frame["lon"], grouping=False, stored=_stored(raw, "lon"))
    use = from_columns.to_numpy()
    for name, word, bad in (("lat", "latitude", lat_bad), ("lon", "longitude", lon_bad)):
        text = frame[name]
        col.rows(use & bad.to_numpy(), name, text, lambda v, w=word: f"{w} {v!r} is not a number")
        col.rows(use & (text.str.strip() == "").to_numpy(), name, text, f"{word} is empty")
    lat[from_columns] = lat_num[from_columns]
    lon[from_columns] = lon_num[from_columns]
    _check_ranges(lon, lat, col)
    return lon, lat


def _check_ranges(lon: pd.Series, lat: pd.Series, col: _Collector) -> None:
    west, south, east, north = settings.REGION_BBOX
    m = settings.REGION_MARGIN_DEG
    known = lon.notna() & lat.notna()

    def inside(x, y):
        return (x >= west - m) & (x <= east + m) & (y >= south - m) & (y <= north + m)

    as_given = inside(lon, lat)
    swapped = known & ~as_given & inside(lat, lon)
    pair = pd.Series([f"lat {a}, lon {o}" for a, o in zip(lat, lon)], index=lat.index)
    col.rows(
        swapped, "lat", pair,
        lambda v: f"coordinates look swapped ({v})",
        "latitude and longitude seem exchanged: the swapped point lies in the Baltic Sea Region",
    )
    lat_out = known & ~swapped & (lat.abs() > 90)
    lon_out = known & ~swapped & (lon.abs() > 180)
    col.rows(lat_out, "lat", lat, lambda v: f"latitude {v} is outside -90..90")
    col.rows(lon_out, "lon", lon, lambda v: f"longitude {v} is outside -180..180")
    zero = known & (lat == 0) & (lon == 0)
    col.rows(zero, "lat", pair, "coordinates 0, 0 are a placeholder, not a location")
    far = known & ~swapped & ~lat_out & ~lon_out & ~zero & ~as_given
    col.rows(
        far, "lat", pair,
        lambda v: f"location ({v}) is far outside the Baltic Sea Region",
        "check the coordinates", severity="warning",
    )


def _validate_flows(
    raw: RawTable,
    taxonomy: Taxonomy,
    valid_ids: set[str],
    all_ids: set[str],
    report: ValidationReport,
    skipped: list[dict],
) -> pd.DataFrame:
    col = _Collector(raw, report)
    required = ["facility_id", "direction"] + ([] if "ewc" in _canonical_columns(raw.frame).columns else ["resource"])
    frame = _prepared(raw, "flows", required, FLOW_COLUMNS, col, skipped)
    if frame is None:
        return _empty_flows()
    ids = frame["facility_id"]
    unknown = (ids != "") & ~ids.isin(all_ids)
    col.rows(
        unknown, "facility_id", ids,
        lambda v: f"flow refers to unknown facility {v!r}",
        lambda v: _closest_hint(v, all_ids, "no facility has this id"),
    )

    direction = frame["direction"].str.strip().str.lower()
    col.rows(
        ~direction.isin(["supply", "demand"]), "direction", frame["direction"],
        lambda v: f"direction {v!r} is not supply or demand", "write supply or demand",
    )
    frame["direction"] = direction

    ewc_text = frame["ewc"].str.strip()
    ewc = _codes(frame, "ewc", normalise_ewc, col, "a six-digit European List of Waste code",
                 "write it like 10 01 02 or 100102")
    frame["ewc"] = ewc

    resource = frame["resource"].str.strip().str.lower()
    from_ewc = ewc.map(lambda v: taxonomy.resource_for_ewc(v) if v else None)
    unmapped = (resource == "") & (ewc != "") & from_ewc.isna()
    col.rows(
        unmapped, "ewc", ewc,
        lambda v: f"EWC code {v} is not in the symbiosis map, so the resource is unknown",
        "fill in the resource column",
    )
    col.rows(
        (resource == "") & (ewc_text == ""), "resource", resource,
        "resource is empty", "give a resource code or an ewc code",
    )
    resource = resource.where(resource != "", from_ewc.fillna(""))
    unknown_res = (resource != "") & ~resource.isin(taxonomy.codes)
    col.rows(
        unknown_res, "resource", resource,
        lambda v: f"unknown resource code {v!r}",
        lambda v: f"did you mean {close}?" if (close := taxonomy.suggest(v)) else "see data/knowledge/resources.csv",
    )
    group_supply = (direction == "supply") & resource.isin(taxonomy.groups)
    col.rows(
        group_supply, "resource", resource,
        lambda v: f"a supply must name a specific resource, not the group {v!r}",
        lambda v: "for example " + ", ".join(taxonomy.leaves_under(v)[:3]),
    )
    disagree = (frame["resource"].str.strip() != "") & from_ewc.notna() & (from_ewc != resource)
    col.rows(
        disagree, "ewc", ewc,
        lambda v: f"EWC code {v} maps to {taxonomy.resource_for_ewc(v)}, not the resource given",
        "the resource column is used", severity="warning",
    )
    frame["resource"] = resource

    stored = {c: _stored(raw, c) for c in ("quantity", "max_distance_km")}
    mark = decimal_mark(*(_text_cells(frame[c], stored[c]) for c in stored))
    quantity, q_bad, q_ambiguous = parse_numbers(frame["quantity"], decimal=mark, stored=stored["quantity"])
    col.rows(q_bad, "quantity", frame["quantity"], lambda v: f"quantity {v!r} is not a number")
    col.rows(q_ambiguous, "quantity", frame["quantity"], lambda v: f"quantity {v!r} could be {_two_readings(v)}",
             _AMBIGUOUS_HINT)
    col.rows(quantity < 0, "quantity", frame["quantity"], lambda v: f"quantity {v} is negative", "use 0 or more")
    frame["quantity"] = quantity

    unit = _validate_units(frame, quantity, taxonomy, col)
    frame["unit"] = unit

    max_km, km_bad, km_ambiguous = parse_numbers(frame["max_distance_km"], decimal=mark,
                                                 stored=stored["max_distance_km"])
    col.rows(km_bad, "max_distance_km", frame["max_distance_km"], lambda v: f"{v!r} is not a number")
    col.rows(km_ambiguous, "max_distance_km", frame["max_distance_km"],
             lambda v: f"maximum distance {v!r} could be {_two_readings(v)}", _AMBIGUOUS_HINT)
    col.rows(max_km <= 0, "max_distance_km", frame["max_distance_km"], lambda v: f"maximum distance {v} must be above 0")
    frame["max_distance_km"] = max_km

    conf = frame["confidential"].str.strip().str.lower()
    col.rows(
        ~conf.isin(_TRUE | _FALSE), "confidential", frame["confidential"],
        lambda v: f"{v!r} is not true or false", "write true or false",
    )
    frame["confidential"] = conf.isin(_TRUE)

    frame["partners"] = _partners(frame["partners"], all_ids, col)
    frame["evidence"] = _choice(frame, "evidence", EVIDENCE, col,
                                "published (a source gives the figure) or typical (an estimate); or leave it empty")

    orphan = (ids != "") & ids.isin(all_ids) & ~ids.isin(valid_ids)
    for pos in np.flatnonzero(orphan.to_numpy() & ~col.bad):
        col.bad[pos] = True
        col.reasons[int(pos)] = f"its facility {ids.iloc[pos]!r} was skipped"

    frame["basis"] = "declared"
    frame["file"] = raw.file
    frame["row"] = raw.rows
    frame["flow_id"] = [f"row {r}" for r in raw.rows]
    skipped.extend(col.skipped("flows", ids))
    valid = frame[~col.bad].reset_index(drop=True)
    ordered = ["flow_id", *FLOW_COLUMNS, "basis", "file", "row"]
    extra = [c for c in valid.columns if c not in ordered]
    return valid[ordered + extra]


_AMBIGUOUS_HINT = "the other numbers of the file do not show which; write it without thousands separators"


def _two_readings(text: str) -> str:
    """``'60 or 60000'``: the two values an ambiguous number could mean."""
    as_decimal, as_thousands = ambiguous_readings(text)
    return f"{as_decimal:.12g} or {as_thousands:.12g}"


def _stored(raw: RawTable, column: str) -> pd.Series | None:
    """The numbers the file stored in a column (by its canonical name), or None when it stored none."""
    if raw.numbers is None:
        return None
    for name in raw.numbers.columns:
        key = name.strip().lower()
        if _ALIASES.get(key, key) == column:
            return raw.numbers[name].reset_index(drop=True)
    return None


def _text_cells(text: pd.Series, stored: pd.Series | None) -> pd.Series:
    """The cells of a column that the file wrote as text (blank where it stored a number)."""
    return text if stored is None else text.where(stored.isna(), "")


def _choice(frame: pd.DataFrame, column: str, allowed: tuple[str, ...], col: _Collector, hint: str) -> pd.Series:
    """A column of one word out of ``allowed`` (any case) or empty; anything else is an error in its row."""
    text = frame[column].str.strip().str.lower()
    col.rows((text != "") & ~text.isin(allowed), column, frame[column],
             lambda v: f"{v!r} is not one of {', '.join(allowed)}", hint)
    return text


def _partners(text: pd.Series, all_ids: set[str], col: _Collector) -> pd.Series:
    """Partner lists (facility ids of running exchanges) as space-separated ids; unknown ids are warned of."""
    lists = text.fillna("").str.replace(",", " ").str.split()
    unknown = lists.map(lambda ids: " ".join(i for i in ids if i not in all_ids))
    col.rows(
        unknown != "", "partners", unknown,
        lambda v: f"partner {v!r} is not a facility of this dataset",
        "the exchange with it is not marked as existing", severity="warning",
    )
    return lists.str.join(" ")


def _validate_units(frame: pd.DataFrame, quantity: pd.Series, taxonomy: Taxonomy, col: _Collector) -> pd.Series:
    text = frame["unit"].str.strip()
    unit = text.map(lambda v: _UNIT_SPELLINGS.get(v.lower().replace(" ", ""), None) if v else "")
    col.rows(
        unit.isna(), "unit", text,
        lambda v: f"unknown unit {v!r}", f"use one of {', '.join(UNITS)}",
    )
    unit = unit.fillna("")
    resource = frame["resource"]
    canonical = resource.map(taxonomy.units).fillna("")  # '' for groups and unknown codes
    col.rows(
        (unit == "") & quantity.notna() & (text == ""), "unit", text,
        "quantity given without a unit",
        lambda v: f"use one of {', '.join(UNITS)}",
    )
    unit = unit.where((unit != "") | quantity.notna(), canonical)
    keys = list(zip(resource, unit, canonical))
    fits = {k: k[1] == "" or k[2] == "" or bool(np.isfinite(taxonomy.conversion_factor(*k))) for k in set(keys)}
    convertible = pd.Series([fits[k] for k in keys], index=frame.index)
    col.rows(
        ~convertible, "unit", unit,
        "unit " + unit + " does not fit resource " + resource,
        resource + " is measured in " + canonical,
    )
    return unit


def _codes(frame: pd.DataFrame, column: str, normalise, col: _Collector, what: str, hint: str) -> pd.Series:
    """Normalise a code column once per distinct value; report each code that does not normalise."""
    text = frame[column].str.strip()
    mapping = {v: (normalise(v) if v else "") for v in text.unique()}
    codes = text.map(mapping)
    col.rows(codes.isna(), column, text, lambda v: f"{v!r} is not {what}", hint)
    return codes.fillna("")


def _closest_hint(value: str, choices: set[str], default: str) -> str:
    close = difflib.get_close_matches(value, sorted(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else default


def _empty_facilities() -> gpd.GeoDataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=str) for c in (*FACILITY_COLUMNS, "file")})
    frame["lat"] = frame["lat"].astype(float)
    frame["lon"] = frame["lon"].astype(float)
    frame["row"] = pd.Series(dtype=int)
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries([], crs=settings.WGS84), crs=settings.WGS84)


def _empty_flows() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=str) for c in ("flow_id", *FLOW_COLUMNS, "basis", "file")})
    frame["quantity"] = frame["quantity"].astype(float)
    frame["max_distance_km"] = frame["max_distance_km"].astype(float)
    frame["confidential"] = frame["confidential"].astype(bool)
    frame["row"] = pd.Series(dtype=int)
    return frame
