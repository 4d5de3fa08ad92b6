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
    assert [c.value for c in book["method"]["A"]] == ["item", "distance"]


def test_spatial_exports_round_trip_text(tmp_path):
    for suffix in (".geojson", ".gpkg"):
        back = gpd.read_file(write_links(_links(), tmp_path / f"l{suffix}"))
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
