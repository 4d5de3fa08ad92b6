"""Reading CSV as Europeans export it, and the other formats, without losing text."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
from hypothesis import given, settings as hsettings, strategies as st
from shapely.geometry import Point

from geo.errors import InputError
from geo.io import read_table, sniff_delimiter

NORDIC = "äöåøæõūłÄÖÅØÆ"


def test_semicolon_csv_keeps_decimal_commas_as_text(write):
    path = write("f.csv", "facility_id;name;lat;lon\nA;Öljy;60,5;24,9\n")
    raw = read_table(path)
    assert raw.delimiter == ";"
    assert raw.frame.loc[0, "lat"] == "60,5"
    assert list(raw.rows) == [2]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
def test_encodings_keep_nordic_letters(write, encoding):
    name = "Ääneväen Sähkö Øy Åbo Æble" if encoding == "cp1252" else f"Łódź Kõrts Šiauliai {NORDIC}"
    path = write("f.csv", f"facility_id,name\nA1,{name}\n", encoding=encoding)
    raw = read_table(path)
    assert list(raw.frame.columns) == ["facility_id", "name"]
    assert raw.frame.loc[0, "name"] == name


def test_ids_keep_leading_zeros(write):
    raw = read_table(write("f.csv", "facility_id,name\n0000002234,A\n"))
    assert raw.frame.loc[0, "facility_id"] == "0000002234"


def test_quoted_delimiters_do_not_confuse_the_sniffer(write):
    text = 'facility_id,name,notes\nA,"Oy Ab; Tehdas","a, b; c"\nB,"X; Y",z\n'
    raw = read_table(write("f.csv", text))
    assert raw.delimiter == ","
    assert raw.frame.loc[0, "name"] == "Oy Ab; Tehdas"


def test_empty_and_header_only_files(write):
    assert read_table(write("e.csv", "")).frame.empty
    raw = read_table(write("h.csv", "facility_id;name;lat;lon\n"))
    assert raw.frame.empty and list(raw.frame.columns) == ["facility_id", "name", "lat", "lon"]


def test_missing_and_unsupported_files_are_input_errors(tmp_path, write):
    with pytest.raises(InputError, match="not found"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="unsupported file type .shp"):
        read_table(write("a.shp", "x"))


def test_undecodable_bytes_name_the_row_and_column(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"facility_id,name\nA,\x81\x8d\x8f\n")
    with pytest.raises(InputError, match="row 2, column 'name': byte 0x81 is neither UTF-8 nor Windows-1252"):
        read_table(path)


def test_xlsx_sheets_are_read_as_text_with_spreadsheet_rows(tmp_path):
    path = tmp_path / "d.xlsx"
    with pd.ExcelWriter(path) as writer:
        pd.DataFrame({"facility_id": [1, 2], "name": ["Åbo", "=1+1"], "lat": [60.45, 61.0]}).to_excel(
            writer, sheet_name="Facilities", index=False
        )
    raw = read_table(path, table="facilities")
    assert raw.frame["facility_id"].tolist() == ["1", "2"]
    assert raw.frame["lat"].tolist() == ["60.45", "61"]
    assert raw.frame.loc[0, "name"] == "Åbo"
    assert list(raw.rows) == [2, 3]
    with pytest.raises(InputError, match="no sheet or layer named 'flows'"):
        read_table(path, table="flows")


def test_geopackage_and_geojson_give_geometry_in_wgs84(tmp_path):
    gdf = gpd.GeoDataFrame(
        {"facility_id": ["A"], "name": ["Kõrts"]},
        geometry=[Point(24.75, 59.43)],
        crs="EPSG:4326",
    ).to_crs("EPSG:3035")
    gpkg = tmp_path / "d.gpkg"
    gdf.to_file(gpkg, layer="facilities")
    raw = read_table(gpkg, table="facilities")
    assert raw.file.endswith("[facilities]")
    assert raw.geometry.crs.to_epsg() == 4326
    assert raw.geometry.iloc[0].x == pytest.approx(24.75)
    geojson = tmp_path / "d.geojson"
    gdf.to_crs("EPSG:4326").to_file(geojson)
    assert read_table(geojson).frame.loc[0, "name"] == "Kõrts"


# -- property-based: whatever the delimiter and encoding, cells come back intact --

_cell = st.text(alphabet=st.sampled_from("abcxyzÄÖÅäöåøæõūł 0123456789-_.,;\t\"'"), min_size=0, max_size=12)


@hsettings(max_examples=150, deadline=None)
@given(
    delimiter=st.sampled_from([",", ";", "\t"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig"]),
    rows=st.lists(st.tuples(_cell, _cell, _cell), min_size=1, max_size=6),
)
def test_any_delimiter_and_utf8_round_trip(tmp_path_factory, delimiter, encoding, rows):
    frame = pd.DataFrame(rows, columns=["facility_id", "name", "notes"])
    path = tmp_path_factory.mktemp("csv") / "f.csv"
    frame.to_csv(path, sep=delimiter, index=False, encoding=encoding)
    raw = read_table(path)
    assert raw.delimiter == delimiter
    # rows whose every cell is blank carry nothing and are not records
    expected = [list(r) for r in rows if any(c.strip() for c in r)]
    assert raw.frame.values.tolist() == expected


@hsettings(max_examples=100, deadline=None)
@given(
    names=st.lists(st.text(alphabet=st.sampled_from("AÄÖÅäöåøæØÆéü Oy"), min_size=1, max_size=15), min_size=1, max_size=5),
    delimiter=st.sampled_from([",", ";", "\t"]),
)
def test_windows_1252_round_trip(tmp_path_factory, names, delimiter):
    frame = pd.DataFrame({"facility_id": [f"F{i}" for i in range(len(names))], "name": names})
    path = tmp_path_factory.mktemp("csv") / "f.csv"
    frame.to_csv(path, sep=delimiter, index=False, encoding="cp1252")
    raw = read_table(path)
    assert raw.frame["name"].tolist() == names


@hsettings(max_examples=100, deadline=None)
@given(values=st.lists(st.floats(min_value=-1e7, max_value=1e7, allow_nan=False), min_size=1, max_size=8))
def test_decimal_comma_numbers_parse_back(tmp_path_factory, values):
    from geo.schema import decimal_mark, parse_numbers

    lines = [f"{i};{v:.4f}".replace(".", ",") for i, v in enumerate(values)]
    path = tmp_path_factory.mktemp("csv") / "f.csv"
    path.write_text("id;x\n" + "\n".join(lines) + "\n", encoding="utf-8")
    raw = read_table(path)
    assert decimal_mark(raw.frame["x"]) == ","
    numbers, bad, ambiguous = parse_numbers(raw.frame["x"], decimal=",")
    assert not bad.any() and not ambiguous.any()
    assert numbers.tolist() == pytest.approx([round(v, 4) for v in values])


def test_sniffer_prefers_consistent_splits():
    assert sniff_delimiter("a;b;c\n1;2,5;3\n4;5,5;6\n") == ";"
    assert sniff_delimiter("a\tb\n1\t2\n") == "\t"
    assert sniff_delimiter("only\n1\n") == ","


def test_row_with_extra_fields_is_reported_not_shifted(write):
    path = write("f.csv", "facility_id;name;notes\nA;X;fine\nB;Y;one; two\nC;Z;ok\n")
    raw = read_table(path)
    assert raw.frame["facility_id"].tolist() == ["A", "C"]
    assert list(raw.rows) == [2, 4]
    [problem] = raw.problems
    assert problem.row == 3
    assert problem.message == "row has 4 fields but the header has 3"
    assert "unquoted semicolon" in problem.hint


def test_empty_columns_of_trailing_delimiters_are_dropped_not_refused(write):
    raw = read_table(write("f.csv", "facility_id;name;;\nA;x;;\nB;y;;\n"))
    assert list(raw.frame.columns) == ["facility_id", "name"]
    assert raw.frame["name"].tolist() == ["x", "y"]


def test_xlsx_header_below_blank_rows_keeps_spreadsheet_row_numbers(tmp_path):
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "facilities"
    sheet["B3"], sheet["C3"] = "facility_id", "name"
    sheet["B4"], sheet["C4"] = "A", "Åbo"
    sheet["B6"], sheet["C6"] = "B", "Kõrts"
    book.save(tmp_path / "d.xlsx")
    raw = read_table(tmp_path / "d.xlsx", table="facilities")
    assert list(raw.frame.columns) == ["facility_id", "name"]
    assert raw.frame["name"].tolist() == ["Åbo", "Kõrts"]
    assert list(raw.rows) == [4, 6]


def test_xlsx_column_given_twice_is_refused_not_renamed(tmp_path):
    import openpyxl

    book = openpyxl.Workbook()
    book.active.title = "facilities"
    book.active.append(["facility_id", "name", "Name"])
    book.active.append(["A", "x", "y"])
    book.save(tmp_path / "d.xlsx")
    with pytest.raises(InputError, match="column 'Name' appears twice"):
        read_table(tmp_path / "d.xlsx", table="facilities")
