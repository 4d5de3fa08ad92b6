"""The decoding and number policy (docs/INPUT_POLICY.md): every input read exactly, or refused in one line.

Each test builds a tiny file that the policy protects against, and fails if that protection is removed:
mixed encodings, UTF-16 and byte-order marks, numbers whose separators could be read two ways, control
characters in any format, a CSV field over the csv module's limit, and hostile XLSX workbooks.
"""

from __future__ import annotations

import codecs
import sqlite3
import time
import tracemalloc
import zipfile
from pathlib import Path

import geopandas as gpd
import openpyxl
import pytest
from shapely.geometry import Point

from geo import io
from geo.cli import main
from geo.dataset import load_dataset
from geo.errors import InputError
from geo.io import read_table

FAC = "facility_id;name;lat;lon\n"


def _messages(data) -> list[str]:
    return [p.format() for p in data.report.problems]


# -- encodings ----------------------------------------------------------------------------


def test_one_windows_1252_row_in_a_utf8_file_is_refused_naming_the_row(tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes(
        "facility_id,name\nA,Äänekoski Oy\n".encode("utf-8")
        + "B,Åbo Kraft\n".encode("cp1252")
        + "C,Öljy Oy\n".encode("utf-8")
    )
    with pytest.raises(InputError, match=r"f\.csv, row 3, column 'name': byte 0xC5 is not UTF-8 while the rest"):
        read_table(path)


def test_a_row_after_a_quoted_line_break_is_named_as_the_spreadsheet_shows_it(tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes('facility_id,name\nA,"two\nlines ä"\n'.encode() + "B,Åbo\n".encode("cp1252"))
    with pytest.raises(InputError, match="row 3, column 'name'"):
        read_table(path)


def test_a_wholly_windows_1252_file_is_read_and_says_so(write, tax):
    path = write("f.csv", FAC + "A;Ääneväen Sähkö;62,6;25,7\n", encoding="cp1252")
    raw = read_table(path)
    assert raw.encoding == "cp1252"
    assert raw.frame.loc[0, "name"] == "Ääneväen Sähkö"
    data = load_dataset(path, taxonomy=tax)
    [warning] = data.report.warnings
    assert warning.message == "the file is not UTF-8, so it was read as Windows-1252"
    assert data.report.ok and len(data.facilities) == 1


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_with_byte_order_mark_is_read(tmp_path, tax, encoding):
    # Excel's "Unicode text": UTF-16 with a byte-order mark, tab-separated, CR LF line ends
    text = "facility_id\tname\tlat\tlon\r\nA\tÄänekoski Łódź\t62,6\t25,7\r\n"
    bom = codecs.BOM_UTF16_LE if encoding.endswith("le") else codecs.BOM_UTF16_BE
    path = tmp_path / "unicode.txt"
    path.write_bytes(bom + text.encode(encoding))
    raw = read_table(path)
    assert (raw.encoding, raw.delimiter) == ("utf-16", "\t")
    assert list(raw.frame.columns) == ["facility_id", "name", "lat", "lon"]
    data = load_dataset(path, taxonomy=tax)
    assert data.report.ok, data.report.format()
    assert data.facilities.loc[0, "name"] == "Äänekoski Łódź"
    assert data.facilities.loc[0, "lat"] == 62.6


def test_utf16_without_byte_order_mark_is_refused_by_name(tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes("facility_id\tname\r\nA\tÖljy\r\n".encode("utf-16-le"))
    with pytest.raises(InputError, match="looks like UTF-16 text without a byte-order mark"):
        read_table(path)


def test_utf8_with_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "f.csv"  # a quoted first name shows whether the mark was taken off before splitting
    path.write_bytes(codecs.BOM_UTF8 + '"facility_id";name\nA;Kõrts\n'.encode())
    raw = read_table(path)
    assert raw.encoding == "utf-8"
    assert list(raw.frame.columns) == ["facility_id", "name"]
    assert raw.frame.loc[0, "name"] == "Kõrts"


# -- numbers ------------------------------------------------------------------------------

FLOWS = "facility_id;direction;resource;quantity;unit\n"


def _flows(write, tax, rows: str):
    fac = write("facilities.csv", FAC + "A;Voima Oy;62,6;25,7\n")
    return load_dataset(fac, write("flows.csv", FLOWS + rows), taxonomy=tax)


def test_dot_group_is_thousands_where_another_value_proves_a_decimal_comma(write, tax):
    data = _flows(write, tax, "A;supply;heat.steam;60.000;MWh/yr\nA;supply;heat.steam;12,5;MWh/yr\n")
    assert data.report.ok, data.report.format()
    assert data.flows["quantity"].tolist() == [60000.0, 12.5]


def test_dot_group_is_thousands_where_a_dotted_million_proves_it(write, tax):
    data = _flows(write, tax, "A;supply;heat.steam;60.000;MWh/yr\nA;supply;heat.steam;1.234.567;MWh/yr\n")
    assert data.flows["quantity"].tolist() == [60000.0, 1234567.0]


def test_a_value_that_reads_two_ways_without_evidence_is_refused_with_both_readings(write, tax):
    data = _flows(write, tax, "A;supply;heat.steam;60.000;MWh/yr\nA;supply;heat.steam;500;MWh/yr\n")
    [problem] = data.report.errors
    assert (problem.row, problem.column) == (2, "quantity")
    assert problem.message == "quantity '60.000' could be 60 or 60000"
    assert data.flows["quantity"].tolist() == [500.0]  # never a silent thousandfold change


def test_decimal_comma_with_space_thousands_is_read(write, tax):
    data = _flows(write, tax, "A;supply;heat.steam;1 234,5;MWh/yr\nA;supply;heat.steam;1\u00a0234\u00a0567,5;MWh/yr\n")
    assert data.report.ok, data.report.format()
    assert data.flows["quantity"].tolist() == [1234.5, 1234567.5]


def test_numbers_an_xlsx_stored_as_numbers_are_taken_as_they_are(tmp_path, tax):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "facilities"
    sheet.append(["facility_id", "name", "lat", "lon"])
    sheet.append(["A", "Voima Oy", 62.6, 25.7])
    flows = book.create_sheet("flows")
    flows.append(["facility_id", "direction", "resource", "quantity", "unit"])
    flows.append(["A", "supply", "heat.steam", 1.234, "MWh/yr"])  # a number cell: 1.234, whatever the text says
    flows.append(["A", "supply", "heat.steam", "12,5", "MWh/yr"])  # a text cell proving a decimal comma
    path = tmp_path / "d.xlsx"
    book.save(path)
    data = load_dataset(path, taxonomy=tax)
    assert data.report.ok, data.report.format()
    assert data.flows["quantity"].tolist() == [1.234, 12.5]


# -- control characters -------------------------------------------------------------------


def test_nul_in_a_csv_name_is_refused_with_row_and_column(write, tax):
    data = load_dataset(write("f.csv", FAC + "A;Öljy\x00 Oy;62,6;25,7\nB;Kraft;60,1;24,9\n"), taxonomy=tax)
    [problem] = data.report.errors
    assert (problem.row, problem.column) == (2, "name")
    assert problem.message == "the text holds the invisible control character U+0000 (NUL)"
    assert problem.value == "Öljy\\x00 Oy"
    assert data.facilities["facility_id"].tolist() == ["B"]


def test_a_line_break_and_a_tab_inside_a_quoted_value_are_kept(write, tax):
    data = load_dataset(write("f.csv", FAC + 'A;"Voima\r\nOy\tAb";62,6;25,7\n'), taxonomy=tax)
    assert data.report.ok, data.report.format()
    assert data.facilities.loc[0, "name"] == "Voima\r\nOy\tAb"


def test_a_control_character_in_a_column_name_is_refused(write):
    with pytest.raises(InputError, match=r"column 2: the column name 'na\\x1fme' holds the control character U\+001F"):
        read_table(write("f.csv", "facility_id;na\x1fme\nA;x\n"))


def test_control_character_in_an_xlsx_cell_is_refused(tmp_path, tax):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "facilities"
    sheet.append(["facility_id", "name", "lat", "lon"])
    sheet.append(["A", "Voima\x85Oy", 62.6, 25.7])
    path = tmp_path / "d.xlsx"
    book.save(path)
    data = load_dataset(path, taxonomy=tax)
    [problem] = data.report.errors
    assert (problem.row, problem.column) == (2, "name")
    assert "U+0085" in problem.message


def test_nul_in_a_geojson_property_is_refused_not_cut(tmp_path, tax):
    path = tmp_path / "f.geojson"
    path.write_text(
        '{"type": "FeatureCollection", "features": ['
        '{"type": "Feature", "properties": {"facility_id": "A", "name": "Kraft"}, '
        '"geometry": {"type": "Point", "coordinates": [24.9, 60.1]}},'
        '{"type": "Feature", "properties": {"facility_id": "B", "name": "\\u00d6ljy\\u0000 Oy"}, '
        '"geometry": {"type": "Point", "coordinates": [25.7, 62.6]}}]}',
        encoding="utf-8",
    )
    data = load_dataset(path, taxonomy=tax)
    [problem] = data.report.errors
    assert (problem.row, problem.column) == (2, "name")
    assert "U+0000 (NUL)" in problem.message


def test_nul_in_a_geopackage_text_is_refused_not_cut(tmp_path, tax):
    path = tmp_path / "d.gpkg"
    frame = gpd.GeoDataFrame({"facility_id": ["A", "B"], "name": ["Kraft", "placeholder"]},
                             geometry=[Point(24.9, 60.1), Point(25.7, 62.6)], crs="EPSG:4326")
    frame.to_file(path, layer="facilities")
    with sqlite3.connect(path) as db:  # GDAL's triggers call SQL functions plain sqlite3 lacks
        for (trigger,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            db.execute(f'DROP TRIGGER "{trigger}"')
        db.execute("UPDATE facilities SET name = ? WHERE facility_id = 'B'", ("Öljy\x00 Oy",))
    db.close()
    data = load_dataset(path, taxonomy=tax)
    [problem] = data.report.errors
    assert (problem.row, problem.column) == (2, "name")
    assert problem.value == "Öljy\\x00 Oy"


def test_a_geojson_file_that_is_not_utf8_is_refused_naming_the_line(tmp_path):
    path = tmp_path / "f.geojson"
    path.write_bytes(b'{"type": "FeatureCollection",\n"features": [{"type": "Feature", '
                     b'"properties": {"name": "\xc5bo"}, "geometry": null}]}')
    with pytest.raises(InputError, match="line 2: byte 0xC5 is not UTF-8"):
        read_table(path)


# -- one line instead of a traceback ----------------------------------------------------------


def test_a_field_over_the_csv_limit_is_refused_naming_the_row(write):
    path = write("f.csv", FAC + "A;x;60;25\n" + 'B;"' + "y" * 131_073 + '";60;25\n')
    with pytest.raises(InputError, match=r"f\.csv, row 3: a value is longer than 131,072 characters"):
        read_table(path)


def test_an_xlsx_that_is_not_a_zip_is_refused(write):
    with pytest.raises(InputError, match=r"d\.xlsx: not an XLSX workbook \(not a zip archive\)"):
        read_table(write("d.xlsx", "facility_id,name\nA,x\n"), table="facilities")


def _workbook(path: Path, *, doctype: str = "", cell: str = "x", parts: tuple[str, ...] = ("sheet1",)) -> Path:
    """A one-sheet workbook whose cell B2 is ``cell``, with ``doctype`` put before the XML of some of its parts."""
    book = openpyxl.Workbook()
    book.active.title = "facilities"
    book.active.append(["facility_id", "name"])
    book.active.append(["A", "PLACEHOLDER"])
    plain = path.with_suffix(".plain.xlsx")
    book.save(plain)
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename).decode()
            if Path(info.filename).stem in parts:
                head, _, body = data.partition("?>") if data.startswith("<?xml") else ("", "", data)
                data = (head + "?>" if head else "") + doctype + body
            target.writestr(info.filename, data.replace("PLACEHOLDER", cell))
    return path


@pytest.mark.parametrize("part", ["xl/worksheets/sheet1.xml", "xl/workbook.xml"])
def test_an_xlsx_with_an_external_entity_is_refused(tmp_path, part):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    path = _workbook(tmp_path / "xxe.xlsx", doctype=f'<!DOCTYPE x [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>',
                     cell="&xxe;", parts=(Path(part).stem,))
    with pytest.raises(InputError, match=f"its part {part} declares an XML document type") as caught:
        read_table(path, table="facilities")
    assert "TOP SECRET" not in str(caught.value)


def test_a_billion_laughs_xlsx_is_refused_quickly_and_small(tmp_path):
    entities = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    path = _workbook(tmp_path / "laughs.xlsx", doctype=f'<!DOCTYPE lolz [<!ENTITY lol0 "lol">{entities}]>',
                     cell="&lol9;")
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(InputError, match="declares an XML document type"):
            read_table(path, table="facilities")
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 1
    assert peak < 10 * 2**20  # a billion laughs expanded would be 3 GB of text (expat alone lets 100 MB through)


def test_an_xlsx_that_unpacks_beyond_the_limit_is_refused_before_opening(tmp_path, monkeypatch):
    path = _workbook(tmp_path / "big.xlsx", cell="x" * 100_000)  # compresses to almost nothing
    monkeypatch.setattr(io, "MAX_XLSX_UNPACKED_BYTES", 50_000)
    with pytest.raises(InputError, match=r"unpacks to 0 MiB, more than the 0 MiB read at most"):
        read_table(path, table="facilities")


@pytest.mark.parametrize("name, content", [
    ("f.csv", FAC.encode() + b'A;"' + b"y" * 131_073 + b'";60;25\n'),
    ("f.csv", "facility_id,name\nA,Äbo\n".encode() + "B,Åbo\n".encode("cp1252")),
    ("f.csv", "facility_id\tname\r\n".encode("utf-16-le")),
    ("d.xlsx", b"PK\x03\x04 not really a zip"),
    ("f.geojson", b'{"type": "FeatureCollection", "features": [\xff]}'),
    ("d.gpkg", b"SQLite format 3\x00" + bytes(200)),
])
def test_the_command_line_gives_one_line_and_exit_code_2(tmp_path, capsys, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {path}")
