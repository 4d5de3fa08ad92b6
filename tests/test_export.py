"""Exports keep text as text and geometry as LineStrings."""

from __future__ import annotations

import geopandas as gpd
import pytest
from openpyxl import load_workbook
from shapely.geometry import LineString

from geo.errors import InputError
from geo.export import write_links


def _links():
    return gpd.GeoDataFrame(
        {"rank": [1], "score": [80.04], "supply_name": ["=HYPERLINK(\"http://x\",\"click\")"],
         "demand_name": ["<script>alert(1)</script> Åbo"], "distance_km": [12.3456]},
        geometry=[LineString([(22.0, 60.0), (22.1, 60.1)])], crs="EPSG:4326",
    )


def test_xlsx_keeps_formula_like_names_as_text(tmp_path):
    path = write_links(_links(), tmp_path / "l.xlsx", method={"distance": "estimate"})
    book = load_workbook(path)
    cell = book["links"]["C2"]
    assert cell.value == "=HYPERLINK(\"http://x\",\"click\")"
    assert cell.data_type == "s"
    assert book["links"]["E2"].value == pytest.approx(12.35)
    items = [c.value for c in book["method"]["A"]]
    assert items[:3] == ["Item", "Exported", "Tool"] and items[-1] == "Distance"


def test_spatial_exports_round_trip_text(tmp_path):
    for suffix in (".geojson", ".gpkg"):
        back = gpd.read_file(write_links(_links(), tmp_path / f"l{suffix}"), layer="links")
        assert back.loc[0, "demand_name"] == "<script>alert(1)</script> Åbo"
        assert back.geometry.iloc[0].equals(LineString([(22.0, 60.0), (22.1, 60.1)]))


def test_failed_write_leaves_no_partial_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    target = tmp_path / "l.gpkg"
    target.write_bytes(b"previous")

    def half_write(frame, path, **kwargs):
        with open(path, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr("geo.export.pyogrio.write_dataframe", half_write)
    with pytest.raises(OSError, match="disk full"):
        write_links(_links(), target)
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.gpkg"]


def test_unknown_suffix_is_refused(tmp_path):
    with pytest.raises(InputError, match="output must end in one of .csv, .xlsx, .geojson, .gpkg"):
        write_links(_links(), tmp_path / "l.shp")


HOSTILE = ["=cmd|' /C notepad'!'A1'", "=1+1", "+41 SUM(A1)", "-2+3", "@SUM(1)", "\tTab Oy", "\rCarriage Ab",
           "Line\rbreak Oy", "Two\nlines", 'Quote "x", comma', "Normal Oy", "-12.5"]


def _hostile_links():
    n = len(HOSTILE)
    return gpd.GeoDataFrame(
        {"rank": list(range(1, n + 1)), "score": [-1.0] * n, "supply_facility_id": HOSTILE,
         "supply_name": HOSTILE, "demand_name": list(reversed(HOSTILE)), "why": HOSTILE},
        geometry=[LineString([(22.0, 60.0), (22.1, 60.1)])] * n, crs="EPSG:4326",
    )


def test_csv_neutralises_formulas_and_quotes_line_breaks(tmp_path):
    import csv

    from openpyxl import Workbook

    path = write_links(_hostile_links(), tmp_path / "l.csv")
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    assert len(body) == len(HOSTILE)  # a CR or LF inside a name never splits its row
    assert [r[header.index("rank")] for r in body] == [str(i) for i in range(1, len(HOSTILE) + 1)]
    assert [r[header.index("score")] for r in body] == ["-1.0"] * len(HOSTILE)  # numbers stay numbers
    names = [r[header.index("supply_name")] for r in body]
    for original, written in zip(HOSTILE, names, strict=True):
        if original == "-12.5" or not original.startswith(("=", "+", "-", "@", "\t", "\r")):
            assert written == original
        else:
            assert written == "'" + original
    # the same cells put into a workbook, as a spreadsheet opening the CSV would: none is a formula
    book = Workbook()
    for row in rows:
        book.active.append(row)
    assert all(cell.data_type != "f" for line in book.active.iter_rows() for cell in line)


def test_other_formats_keep_the_exact_text(tmp_path):
    back = gpd.read_file(write_links(_hostile_links(), tmp_path / "l.gpkg"), layer="links")
    assert list(back["supply_name"]) == HOSTILE
    book = load_workbook(write_links(_hostile_links(), tmp_path / "l.xlsx"))
    cells = book["links"]["C"][1:]
    assert all(c.data_type == "s" for c in cells)
    # XML reads a bare CR as a line feed (line-end normalisation), so a CR comes back as LF
    assert [c.value for c in cells] == [h.replace("\r", "\n") for h in HOSTILE]
