"""Writing ranked links to CSV, Excel, GeoJSON or GeoPackage.

:func:`write_links` picks the format from the file suffix and writes
atomically (to a temporary file beside the target, then renamed), so an
interrupted export never leaves half a file where a good one was. Text is
written as text: CSV is UTF-8 with a byte-order mark so Excel shows Nordic
letters, and in Excel workbooks a name such as ``=SUM(A1)`` stays a string
instead of becoming a formula.

CSV has no types, so a spreadsheet would evaluate a cell such as
``=cmd|' /C calc'!A1`` that a hostile facility name put there. Following
OWASP's guidance on CSV injection, every CSV text cell that starts with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return, and is not a number,
gets a leading apostrophe (:func:`neutralise_formulas`), and every field
holding a comma, quote, CR or LF is quoted, so a line break inside a name
never splits its row. GeoJSON, GeoPackage and XLSX keep the exact text.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from geo import settings
from geo.errors import InputError
from geo.pipeline import link_lines

__all__ = ["FORMULA_STARTS", "OUTPUT_SUFFIXES", "check_output_path", "neutralise_formulas", "write_links"]

#: First characters that make a spreadsheet read a CSV cell as a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

OUTPUT_SUFFIXES = (".csv", ".xlsx", ".geojson", ".gpkg", ".html")

_DECIMALS = {
    "score": 1, "quantity": 3, "distance_km": 2, "straight_km": 2, "travel_time_min": 1,
    "max_distance_km": 1, "co2_saved_t_per_yr": 1, "value_eur_per_yr": 0,
    "transport_cost_eur_per_yr": 0, "transport_co2_t_per_yr": 2, "avoided_co2_t_per_yr": 1,
    "gross_value_eur_per_yr": 0, "supply_lon": 6, "supply_lat": 6, "demand_lon": 6, "demand_lat": 6,
}


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
                facilities: pd.DataFrame | None = None) -> Path:
    """Write links to ``path``; the suffix decides the format.

    Parameters
    ----------
    links : DataFrame or GeoDataFrame
        Ranked links; without geometry, LineStrings are drawn from the
        ``supply_lon``/``supply_lat`` to the ``demand_lon``/``demand_lat``
        columns for the spatial formats.
    path : str or Path
        ``.csv`` (UTF-8 with BOM, no geometry, coordinates as columns),
        ``.xlsx`` (sheet ``links``, plus ``facilities`` and ``method`` when given),
        ``.geojson`` or ``.gpkg`` (layer ``links``) with LineStrings.
    method : dict, optional
        Assumptions of the run (name to text) for the Excel ``method`` sheet.
    facilities : DataFrame, optional
        The facilities the links involve, for the Excel ``facilities`` sheet.

    Returns
    -------
    Path
        The file written.
    """
    path = check_output_path(path)
    suffix = path.suffix.lower()
    if suffix == ".html":
        raise InputError(f"{path}: an HTML map is drawn by layers.html.write_standalone_map, not written here")
    rounded = _rounded(links)
    table = pd.DataFrame(rounded.drop(columns="geometry", errors="ignore"))
    with _atomic(path) as tmp:
        if suffix == ".csv":
            # CRLF ends a record, so the csv module quotes any field holding a CR or an LF
            neutralise_formulas(table).to_csv(tmp, index=False, encoding="utf-8-sig", lineterminator="\r\n")
        elif suffix == ".xlsx":
            _write_xlsx(table, tmp, method or {}, facilities)
        else:
            driver = "GeoJSON" if suffix == ".geojson" else "GPKG"
            spatial = rounded if isinstance(rounded, gpd.GeoDataFrame) else link_lines(rounded)
            pyogrio.write_dataframe(spatial.to_crs(settings.WGS84), tmp, driver=driver, layer="links")
    return path


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


def _rounded(links: pd.DataFrame) -> pd.DataFrame:
    out = links.copy()
    for column, decimals in _DECIMALS.items():
        if column in out.columns:
            out[column] = out[column].astype(float).round(decimals)
    return out


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


def _write_xlsx(frame: pd.DataFrame, path: str, method: dict[str, str], facilities: pd.DataFrame | None) -> None:
    book = Workbook()
    sheet = book.active
    sheet.title = "links"
    _fill(sheet, frame)
    if facilities is not None:
        _fill(book.create_sheet("facilities"), pd.DataFrame(facilities.drop(columns="geometry", errors="ignore")))
    if method:
        _fill(book.create_sheet("method"), pd.DataFrame({"item": list(method), "value": list(method.values())}))
    book.save(path)


def _fill(sheet, frame: pd.DataFrame) -> None:
    sheet.append(list(frame.columns))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for values in frame.itertuples(index=False):
        sheet.append([None if _blank(v) else (v.item() if hasattr(v, "item") else v) for v in values])
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            if cell.data_type == "f":
                cell.data_type = "s"
    sheet.freeze_panes = "A2"
    for i, column in enumerate(frame.columns, start=1):
        width = max(len(str(column)), *(len(str(v)) for v in frame[column].head(200))) if len(frame) else len(column)
        sheet.column_dimensions[get_column_letter(i)].width = min(max(width + 2, 8), 60)


def _blank(value) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
