"""Validation: every problem at once, with file, row, column and a hint."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from geo.dataset import load_dataset
from geo.schema import LISTED_ROWS, decimal_mark, normalise_ewc, normalise_nace, parse_numbers

FAC = "facility_id,name,lat,lon,nace,country\n"
FLOW = "facility_id,direction,resource,quantity,unit\n"


def _load(write, tax, facilities, flows=None, **kw):
    fac = write("facilities.csv", facilities, **kw)
    flw = write("flows.csv", flows) if flows is not None else None
    return load_dataset(fac, flw, taxonomy=tax)


def _messages(data):
    return [p.format() for p in data.report.problems]


@pytest.mark.parametrize(
    "text, expected",
    [("C23.51", "23.51"), ("23.51", "23.51"), ("2351", "23.51"), ("C2351", "23.51"),
     ("c 23.51", "23.51"), ("23.5", "23.5"), ("23", "23"), ("C23", "23"), ("01.13", "01.13"),
     ("A0113", "01.13"), ("1.13", "01.13"), ("35", "35"),
     ("X23.51", None), ("A23.51", None), ("04.1", None), ("34", None), ("235111", None), ("cement", None)],
)
def test_nace_codes_are_normalised(text, expected):
    assert normalise_nace(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [("10 01 02", "100102"), ("100102", "100102"), ("10 01 05*", "100105"), ("20101", "020101"),
     ("10.01.02", "100102"), ("21 01 01", None), ("1001", None), ("ash", None)],
)
def test_ewc_codes_are_normalised(text, expected):
    assert normalise_ewc(text) == expected


def test_valid_files_give_typed_frames(write, tax):
    data = _load(
        write, tax,
        "facility_id;name;lat;lon;nace;country\nP1;Voima Oy;62,60;25,72;D35.11;fi\n",
        FLOW + "P1,supply,heat.hot_water,\"1 200,5\",MWh/a\nP1,demand,biomass.bark,,\n",
    )
    assert data.report.problems == []
    fac = data.facilities.iloc[0]
    assert (fac["lat"], fac["lon"], fac["nace"], fac["country"]) == (62.6, 25.72, "35.11", "FI")
    assert data.facilities.crs.to_epsg() == 4326
    flows = data.flows
    assert flows["quantity"].iloc[0] == pytest.approx(1200.5)
    assert flows["unit"].tolist() == ["MWh/yr", "t/yr"]
    assert flows["basis"].unique().tolist() == ["declared"]


def test_missing_required_column_is_named(write, tax):
    data = _load(write, tax, "facility_id,lat,lon\nA,60,25\n")
    assert _messages(data) == [
        f"{data.report.problems[0].file}, column name: error: required column 'name' is missing "
        "(columns found: facility_id, lat, lon)"
    ]


@pytest.mark.parametrize("text, what", [("", "is empty"), ("facility_id,name,lat,lon\n", "has no data rows"),
                                        (",,,\n,,,\n", "is empty"), (";;;;;;", "is empty")])
def test_empty_file_or_no_rows(write, tax, text, what):
    data = _load(write, tax, text)
    assert not data.report.ok
    assert f"the facilities file {what}" in data.report.problems[0].message


def test_bad_coordinates_name_the_row(write, tax):
    data = _load(
        write, tax,
        FAC + "A,x,sixty,25,,\nB,y,95,25,,\nC,z,60,,,\nD,w,23,63,,\nE,v,0,0,,\n",
    )
    problems = {(p.row, p.column): p.message for p in data.report.errors}
    assert problems[(2, "lat")] == "latitude 'sixty' is not a number"
    assert problems[(3, "lat")] == "latitude 95.0 is outside -90..90"
    assert problems[(4, "lon")] == "longitude is empty"
    assert "look swapped" in problems[(5, "lat")]
    assert "placeholder" in problems[(6, "lat")]
    assert data.facilities.empty
    assert sorted(data.skipped["row"]) == [2, 3, 4, 5, 6]


def test_swapped_finnish_site_says_swapped(write, tax):
    data = _load(write, tax, FAC + "T1,Tornio works,23.6,65.8,24.10,FI\n")
    [problem] = data.report.errors
    assert "swapped" in problem.message and problem.row == 2
    assert "lat 23.6, lon 65.8" in problem.message


def test_far_away_site_is_a_warning_only(write, tax):
    data = _load(write, tax, FAC + "M1,Madrid,40.4,-3.7,,ES\n")
    assert data.report.ok
    assert "far outside the Baltic Sea Region" in data.report.warnings[0].message
    assert len(data.facilities) == 1


def test_duplicate_ids_are_named_with_rows(write, tax):
    data = _load(write, tax, FAC + "A,x,60,25,,\nB,y,60,25,,\nA,z,61,25,,\n")
    [problem] = data.report.errors
    assert problem.message == "duplicate facility id 'A'"
    assert problem.row == 4 and problem.hint == "rows 2, 4 share it"
    assert data.facilities["facility_id"].tolist() == ["A", "B"]


def test_many_rows_of_one_id_give_a_bounded_report_and_skip_every_row(write, tax):
    n = 5_000
    data = _load(write, tax, FAC + "".join(f"A,x{i},60,25,,\n" for i in range(n)))
    errors = data.report.errors
    listed = [p for p in errors if p.row is not None]
    [count] = [p for p in errors if p.row is None]
    assert len(listed) == LISTED_ROWS and [p.row for p in listed[:2]] == [3, 4]
    assert listed[0].hint == f"rows 2, 3, 4, 5, 6 and {n - 5:,} more share it"
    assert count.message == f"{n - 1 - LISTED_ROWS:,} more rows like row 3 (duplicate facility id 'A')"
    assert max(len(p.format()) for p in errors) < 300  # each problem bounded, not a list of every row
    assert len(data.skipped) == n - 1  # every row left out is still named


def test_every_check_lists_a_bounded_number_of_rows(write, tax):
    n = LISTED_ROWS + 50
    data = _load(write, tax, FAC + "".join(f"F{i},,sixty,{i},X99,F1\n" for i in range(n)))
    by_column = {}
    for p in data.report.errors:
        by_column.setdefault(p.column, []).append(p)
    for column in ("name", "lat", "nace", "country"):
        assert len(by_column[column]) == LISTED_ROWS + 1, column
        assert f"{n - LISTED_ROWS:,} more rows like row 2" in by_column[column][0].message
    assert len(data.skipped) == n


def test_flow_problems_are_all_reported_at_once(write, tax):
    data = _load(
        write, tax,
        FAC + "A,x,60,25,,\n",
        FLOW
        + "B,supply,heat.steam,10,MWh/yr\n"
        + "A,supply,heat.stem,10,MWh/yr\n"
        + "A,supply,heat.steam,-5,MWh/yr\n"
        + "A,supply,heat.steam,5,kWh\n"
        + "A,offer,heat.steam,5,MWh/yr\n"
        + "A,supply,heat.steam,5,t/yr\n"
        + "A,supply,heat,5,MWh/yr\n"
        + "A,supply,heat.steam,lots,MWh/yr\n"
        + "A,supply,heat.steam,5,\n",
    )
    by_row = {p.row: p for p in data.report.errors}
    assert by_row[2].message == "flow refers to unknown facility 'B'"
    assert by_row[3].message == "unknown resource code 'heat.stem'"
    assert by_row[3].hint == "did you mean heat.steam?"
    assert by_row[4].message == "quantity -5 is negative"
    assert by_row[5].message == "unknown unit 'kWh'"
    assert by_row[6].message == "direction 'offer' is not supply or demand"
    assert by_row[7].message == "unit t/yr does not fit resource heat.steam"
    assert by_row[8].message == "a supply must name a specific resource, not the group 'heat'"
    assert by_row[9].message == "quantity 'lots' is not a number"
    assert by_row[10].message == "quantity given without a unit"
    assert len(data.report.errors) == 9
    assert data.flows.empty


def test_ewc_code_gives_the_resource(write, tax):
    data = _load(
        write, tax, FAC + "A,x,60,25,,\n",
        "facility_id,direction,ewc,quantity,unit\nA,supply,10 01 02,100,t/yr\nA,supply,19 99 99,1,t/yr\nA,supply,99 01 01,1,t/yr\n",
    )
    assert data.flows["resource"].tolist() == ["mineral.fly_ash"]
    assert data.flows["ewc"].tolist() == ["100102"]
    messages = [p.message for p in data.report.errors]
    assert messages == [
        "EWC code 199999 is not in the symbiosis map, so the resource is unknown",
        "'99 01 01' is not a six-digit European List of Waste code",
    ]


def test_group_demand_accepted_and_unit_defaults_to_resource(write, tax):
    data = _load(write, tax, FAC + "A,x,60,25,,\n", FLOW + "A,demand,heat,,\nA,demand,mineral.fly_ash,,\n")
    assert data.report.ok
    assert data.flows["unit"].tolist() == ["", "t/yr"]


def test_names_are_kept_verbatim(write, tax):
    hostile = '<img src=x onerror=alert(1)> "Ääni" Oy'
    data = _load(write, tax, FAC + f'A,"{hostile.replace(chr(34), chr(34) * 2)}",60,25,,\n')
    assert data.facilities.loc[0, "name"] == hostile


def test_flows_of_a_skipped_facility_are_skipped_and_named(write, tax):
    data = _load(write, tax, FAC + "A,x,abc,25,,\n", FLOW + "A,supply,heat.steam,1,MWh/yr\n")
    assert data.flows.empty
    flows_skipped = data.skipped[data.skipped["table"] == "flows"]
    assert flows_skipped["reason"].tolist() == ["its facility 'A' was skipped"]


def test_bad_nace_country_and_confidential(write, tax):
    data = _load(
        write, tax,
        FAC + "A,x,60,25,X99,Finland\nB,y,60,25,23.51,F1\n",
        "facility_id,direction,resource,confidential\nA,supply,heat.steam,maybe\n",
    )
    messages = sorted(p.message for p in data.report.errors)
    assert messages == [
        "'F1' is not an ISO 3166-1 alpha-2 country code",
        "'X99' is not a NACE Rev. 2 code",
        "'maybe' is not true or false",
    ]


def test_location_precision_and_evidence_take_one_word_each(write, tax):
    data = _load(
        write, tax,
        "facility_id,name,lat,lon,nace,precision\nA,a,60,25,35.11,Site\nB,b,60.1,25,35.30,\nC,c,60.2,25,23.51,exact\n",
        "facility_id,direction,resource,evidence\nA,supply,heat.steam,published\nB,demand,heat.steam, Typical \n"
        "A,supply,heat.hot_water,guess\n",
    )
    assert sorted(p.message for p in data.report.errors) == [
        "'exact' is not one of site, address, town",
        "'guess' is not one of published, typical",
    ]
    assert [p.row for p in data.report.errors if p.column == "precision"] == [4]
    assert list(data.facilities["precision"]) == ["site", ""]
    assert list(data.flows["evidence"]) == ["published", "typical"]


def test_parse_numbers_handles_european_forms():
    values = pd.Series(["1 234,5", "1.234,5", "12,5", "", "−3", "1\u00a0000", "1 234 567,5", "0,500"])
    assert decimal_mark(values) == ","
    numbers, bad, ambiguous = parse_numbers(values, decimal=",")
    assert numbers.tolist()[:3] == [1234.5, 1234.5, 12.5]
    assert numbers.tolist()[4:] == [-3.0, 1000.0, 1234567.5, 0.5]
    assert not bad.any() and not ambiguous.any()
    values = pd.Series(["1,234,567.5", "2.5", "1,500", "inf", "1.234.5"])
    assert decimal_mark(values) == "."
    numbers, bad, ambiguous = parse_numbers(values, decimal=".")
    assert numbers.tolist()[:3] == [1234567.5, 2.5, 1500.0]
    assert bad.tolist() == [False, False, False, True, True]


@pytest.mark.parametrize(
    "values, mark",
    [(["12,5"], ","), (["1.234.567"], ","), (["1.234,5"], ","), (["1 234,5"], ","), (["0,500"], ","),
     (["3.14"], "."), (["1,234,567"], "."), (["1,234.5"], "."),
     (["60.000", "1,500", "60 000", "60", ""], None),  # only values that read two ways, or whole numbers
     (["12,5", "3.14"], None)],  # both marks: the file does not settle it
)
def test_decimal_mark_is_proven_only_by_values_that_read_one_way(values, mark):
    assert decimal_mark(pd.Series(values)) == mark


@pytest.mark.parametrize("decimal, expected", [(",", 60000.0), (".", 60.0)])
def test_an_ambiguous_value_takes_the_files_mark_and_is_refused_without_one(decimal, expected):
    numbers, bad, ambiguous = parse_numbers(pd.Series(["60.000"]), decimal=decimal)
    assert numbers.tolist() == [expected] and not ambiguous.any()
    numbers, bad, ambiguous = parse_numbers(pd.Series(["60.000"]), decimal=None)
    assert numbers.isna().all() and ambiguous.tolist() == [True] and not bad.any()


def test_coordinates_have_no_thousands():
    numbers, bad, ambiguous = parse_numbers(pd.Series(["60.169", "24,945", "60 169", "1.234,5"]), grouping=False)
    assert numbers.tolist()[:2] == [60.169, 24.945]
    assert bad.tolist() == [False, False, True, True] and not ambiguous.any()


def test_xlsx_workbook_with_both_sheets(tmp_path, tax):
    path = tmp_path / "d.xlsx"
    with pd.ExcelWriter(path) as writer:
        pd.DataFrame({"facility_id": ["A", "B"], "name": ["Åbo", "Kõrts"], "lat": [60.45, 59.43],
                      "lon": [22.27, 24.75], "nace": [2351, "D35.11"]}).to_excel(writer, sheet_name="facilities", index=False)
        pd.DataFrame({"facility_id": ["B", "A"], "direction": ["supply", "demand"], "ewc": ["10 01 02", None],
                      "resource": [None, "mineral.cement_raw_materials"], "quantity": [100, None],
                      "unit": ["t/yr", None]}).to_excel(writer, sheet_name="flows", index=False)
    data = load_dataset(path, taxonomy=tax)
    assert data.report.ok, data.report.format()
    assert data.facilities["nace"].tolist() == ["23.51", "35.11"]
    assert data.flows["resource"].tolist() == ["mineral.fly_ash", "mineral.cement_raw_materials"]


def test_rows_of_a_table_missing_a_column_are_all_named_as_skipped(write, tax):
    data = _load(write, tax, FAC + "A,x,60,25,,\n", "facility_id,resource\nA,heat.steam\nA,heat.steam\n")
    assert [p.message for p in data.report.errors] == ["required column 'direction' is missing"]
    flows = data.skipped[data.skipped["table"] == "flows"]
    assert flows["row"].tolist() == [2, 3]
    assert set(flows["reason"]) == {"required column 'direction' is missing"}


def test_geojson_feature_without_geometry_or_coordinates_is_named(tmp_path, tax):
    path = tmp_path / "f.geojson"
    path.write_text(
        '{"type": "FeatureCollection", "features": ['
        '{"type": "Feature", "properties": {"facility_id": "A", "name": "Åbo"}, '
        '"geometry": {"type": "Point", "coordinates": [22.27, 60.45]}},'
        '{"type": "Feature", "properties": {"facility_id": "B", "name": "Nowhere"}, "geometry": null}]}',
        encoding="utf-8",
    )
    data = load_dataset(path, taxonomy=tax)
    [problem] = data.report.errors
    assert (problem.row, problem.column, problem.message) == (2, "geometry", "facility has no geometry")
    assert data.facilities["facility_id"].tolist() == ["A"]


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg"])
def test_point_geometries_get_the_coordinate_checks_of_lat_lon_columns(tmp_path, tax, suffix):
    import geopandas as gpd
    from shapely.geometry import Point

    points = {"ok": (24.9, 60.2), "lon200": (200.0, 60.0), "lat95": (25.0, 95.0), "zero": (0.0, 0.0),
              "swapped": (60.2, 24.9), "huge": (1e300, 1e300), "far": (-3.7, 40.4)}
    frame = gpd.GeoDataFrame({"facility_id": list(points), "name": list(points)},
                             geometry=[Point(xy) for xy in points.values()], crs="EPSG:4326")
    path = tmp_path / f"f{suffix}"
    frame.to_file(path, layer="facilities") if suffix == ".gpkg" else frame.to_file(path)
    data = load_dataset(path, taxonomy=tax)
    errors = {p.row: p.message for p in data.report.errors}
    rows = {fid: row for row, fid in enumerate(points, start=1)}  # features are numbered from 1
    assert "outside -180..180" in errors[rows["lon200"]]
    assert "outside -90..90" in errors[rows["lat95"]]
    assert "placeholder" in errors[rows["zero"]]
    assert "swapped" in errors[rows["swapped"]]
    assert "outside" in errors[rows["huge"]]
    assert rows["ok"] not in errors and rows["far"] not in errors
    assert "far outside the Baltic Sea Region" in " ".join(w.message for w in data.report.warnings)
    assert data.facilities["facility_id"].tolist() == ["ok", "far"]


def _written(units: int, decimals: int, *, mark: str, thousands: str, places: int) -> str:
    """``units`` / 10**places written with a decimal mark and a thousands separator, as a person would."""
    sign = "-" if units < 0 else ""
    whole, fraction = divmod(abs(units), 10 ** places)
    digits = str(whole)
    groups = [digits[max(i - 3, 0):i] for i in range(len(digits), 0, -3)][::-1]
    text = sign + thousands.join(groups)
    return text + (mark + str(fraction).zfill(places)[:decimals] if decimals else "")


@hsettings(max_examples=300, derandomize=True, deadline=None)
@given(values=st.lists(st.tuples(st.integers(min_value=-10**10, max_value=10**10), st.integers(0, 4)), min_size=1,
                       max_size=6),
       mark=st.sampled_from([",", "."]), separator=st.sampled_from(["", " ", "\u00a0", "other mark"]))
def test_numbers_written_in_one_convention_read_back_exactly(values, mark, separator):
    thousands = {",": ".", ".": ","}[mark] if separator == "other mark" else separator
    places = 4
    texts = [_written(units, decimals, mark=mark, thousands=thousands, places=places) for units, decimals in values]
    expected = [float(_written(units, decimals, mark=".", thousands="", places=places)) for units, decimals in values]
    assert decimal_mark(pd.Series(texts)) in (mark, None)  # values never prove the other mark
    numbers, bad, ambiguous = parse_numbers(pd.Series(texts), decimal=mark)
    assert not bad.any() and not ambiguous.any(), texts
    assert numbers.tolist() == expected, texts
