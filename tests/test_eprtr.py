"""E-PRTR import: hand-made extracts with every kind of bad row, and the real Finnish register."""

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
from pyproj import Transformer

from geo.cli import main
from geo.dataset import load_dataset
from geo.eprtr import import_eprtr, write_geopackage
from geo.errors import InputError
from tests.conftest import shared

HEADER = ("Facility_INSPIRE_ID;parentCompanyName;nameOfFeature;mainActivityCode;mainActivityName;"
          "pointGeometryLon;pointGeometryLat;countryCode;reportingYear;x;y")


def tm35(lon: float, lat: float) -> tuple[int, int]:
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:3067", always_xy=True).transform(lon, lat)
    return round(x), round(y)


def write(path, header, rows):
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def extract(tmp_path):
    points = [(23.70, 61.50), (23.75, 61.48), (24.90, 60.20), (25.50, 65.00)]
    xy = [tm35(*p) for p in points]
    facilities = write(tmp_path / "facilities.csv", HEADER, [
        f"ID/1.FACILITY;Mill Oy;Mill Oy, Tampere;6(a);Pulp;23.70;61.50;FI;2019;{xy[0][0]};{xy[0][1]}",
        f"ID/1.FACILITY;Mill Oy;Mill Oy, Tampere (renamed);6(a);Pulp;23.70;61.50;FI;2023;{xy[0][0]};{xy[0][1]}",
        f"ID/2.FACILITY;Power Oy;Power Oy;1(c);Combustion;23.75;61.48;FI;2023;{xy[1][0]};{xy[1][1]}",
        f"ID/3.FACILITY;Farm;Pig farm;7(a)(ii);Pigs;;;FI;2023;{xy[2][0]};{xy[2][1]}",
        f"ID/4.FACILITY;Odd;Odd works;99(z);Unknown;25.50;65.00;FI;2023;{xy[3][0]};{xy[3][1]}",
        "ID/5.FACILITY;Lost;Lost site;1(c);Combustion;;;FI;2023;;",
        "ID/6.FACILITY;Sven AB;Swedish mill;6(b);Paper;13.5;59.4;SE;2023;;",
    ])
    transfers = write(tmp_path / "transfers.csv",
                      "Facility_INSPIRE_ID;reportingYear;wasteClassificationCode;wasteTreatmentCode;totalWasteQuantityTNE", [
                          "ID/1.FACILITY;2021;NONHW;R;999",
                          "ID/1.FACILITY;2023;NONHW;R;100.5",
                          "ID/1.FACILITY;2023;NONHW;R;49.5",
                          "ID/1.FACILITY;2023;HW;R;70",
                          "ID/1.FACILITY;2023;NONHW;D;80",
                          "ID/2.FACILITY;2023;NONHW;R;lots",
                          "ID/2.FACILITY;2023;NONHW;R;3000",
                      ])
    releases = write(tmp_path / "releases.csv",
                     "Facility_INSPIRE_ID;reportingYear;pollutantCode;medium;totalPollutantQuantityKg", [
                         "ID/2.FACILITY;2022;CO2;AIR;9000000",
                         "ID/2.FACILITY;2023;CO2;AIR;250000000",
                         "ID/2.FACILITY;2023;NOX;AIR;10000",
                         "ID/2.FACILITY;2023;CO2;WATER;5",
                     ])
    return facilities, transfers, releases


def test_one_facility_per_inspire_id_latest_year_wins(extract):
    result = import_eprtr(extract[0])
    fac = result.facilities.set_index("inspire_id")
    assert fac.index.is_unique
    assert fac.loc["ID/1.FACILITY", "name"] == "Mill Oy, Tampere (renamed)"
    assert fac.loc["ID/1.FACILITY", "nace"] == "C17.11"
    assert fac.loc["ID/2.FACILITY", "nace"] == "D35.11"
    assert fac.loc["ID/3.FACILITY", "nace"] == "A01.46"


def test_rows_without_lon_lat_are_placed_from_their_national_x_y(extract):
    fac = import_eprtr(extract[0]).facilities.set_index("inspire_id")
    assert fac.loc["ID/3.FACILITY", "lon"] == pytest.approx(24.90, abs=1e-4)
    assert fac.loc["ID/3.FACILITY", "lat"] == pytest.approx(60.20, abs=1e-4)
    assert "EPSG:3067" in fac.loc["ID/3.FACILITY", "location_source"]


def test_bad_rows_are_reported_with_file_row_column_and_kept_where_possible(extract):
    result = import_eprtr(extract[0], waste_transfers=extract[1])
    problems = result.report.problems
    lost = problems[problems["problem"] == "have no usable coordinates"]
    assert lost[["row", "column", "value", "action"]].values.tolist() == [[6, "pointGeometryLon", "Lost site", "skipped"]]
    odd = problems[problems["problem"] == "have an unknown E-PRTR activity code"]
    assert odd[["row", "column", "value", "action"]].values.tolist() == [[5, "mainActivityCode", "99(z)", "kept without NACE"]]
    assert "ID/4.FACILITY" in set(result.facilities["inspire_id"])
    lots = problems[problems["column"] == "totalWasteQuantityTNE"]
    assert lots[["row", "value"]].values.tolist() == [[6, "lots"]]
    lines = result.report.summary()
    assert any("1 row(s) have no usable coordinates, skipped: row 6 (Lost site)" in line for line in lines)


def test_recovered_non_hazardous_waste_and_co2_become_supply_marked_with_their_origin(extract):
    result = import_eprtr(extract[0], waste_transfers=extract[1], releases=extract[2])
    flows = result.flows.set_index(["facility_id", "resource"])
    mill = result.facilities.set_index("inspire_id").loc["ID/1.FACILITY", "facility_id"]
    power = result.facilities.set_index("inspire_id").loc["ID/2.FACILITY", "facility_id"]
    # latest year only, NONHW + R only, summed
    assert flows.loc[(mill, "mineral.lime_residues"), "quantity"] == pytest.approx(150.0)
    assert flows.loc[(mill, "mineral.lime_residues"), "origin"] == "E-PRTR waste transfers 2023: NONHW, R"
    assert flows.loc[(power, "mineral.fly_ash"), "quantity"] == pytest.approx(3000.0)
    assert flows.loc[(power, "gas.co2"), "quantity"] == pytest.approx(250_000.0)
    assert flows.loc[(power, "gas.co2"), "origin"] == "E-PRTR releases 2023: CO2 to air"
    assert set(result.flows["direction"]) == {"supply"}
    assert len(result.flows) == 3


def test_country_and_bbox_filters(extract):
    assert set(import_eprtr(extract[0], country="se").facilities["country"]) == {"SE"}
    boxed = import_eprtr(extract[0], bbox=(23.6, 61.4, 23.8, 61.6)).facilities
    assert sorted(boxed["inspire_id"]) == ["ID/1.FACILITY", "ID/2.FACILITY"]


def test_the_geopackage_round_trips_through_the_engine(extract, tmp_path):
    result = import_eprtr(extract[0], waste_transfers=extract[1], releases=extract[2])
    out = tmp_path / "register.gpkg"
    write_geopackage(result, out)
    assert sorted(pyogrio.list_layers(out)[:, 0]) == ["facilities", "flows"]
    data = load_dataset(out)
    assert data.report.ok
    assert len(data.facilities) == len(result.facilities)
    assert len(data.flows) == len(result.flows)


def test_a_missing_column_names_the_file_and_the_column(tmp_path):
    path = write(tmp_path / "f.csv", "Facility_INSPIRE_ID;nameOfFeature", ["A;B"])
    with pytest.raises(InputError, match=r"f\.csv: column\(s\) mainActivityCode"):
        import_eprtr(path)


def test_cli_import_then_match(extract, tmp_path, capsys):
    out = tmp_path / "register.gpkg"
    code = main(["import-eprtr", str(extract[0]), "--waste-transfers", str(extract[1]),
                 "--releases", str(extract[2]), "--out", str(out)])
    assert code == 0
    captured = capsys.readouterr()
    assert "wrote 5 facilities and 3 flows" in captured.out
    assert "no usable coordinates" in captured.err
    assert main(["match", "--facilities", str(out), "--infer", "--out", str(tmp_path / "links.csv")]) == 0
    assert main(["import-eprtr", str(extract[0]), "--out", str(tmp_path / "x.csv")]) == 2


def test_the_finnish_register_gives_over_1000_facilities_that_match(tmp_path):
    folder = shared("eprtr_fi")
    result = import_eprtr(folder / "facilities.csv", waste_transfers=folder / "waste_transfers.csv",
                          releases=folder / "releases.csv")
    assert result.facilities["inspire_id"].is_unique
    assert len(result.facilities) >= 1000
    assert (result.facilities["nace"] != "").all()
    assert {"gas.co2", "mineral.fly_ash", "mineral.lime_residues"} <= set(result.flows["resource"])
    inside = result.facilities.cx[19:32, 59:71]
    assert len(inside) == len(result.facilities)  # every point, x/y-derived ones included, lies in Finland's box
    out = tmp_path / "fi.gpkg"
    write_geopackage(result, out)
    assert main(["match", "--facilities", str(out), "--infer", "--out", str(tmp_path / "links.csv")]) == 0
    links = pd.read_csv(tmp_path / "links.csv")
    assert len(links) > 1000
    assert isinstance(result.facilities, gpd.GeoDataFrame)


def test_transfer_rows_of_a_facility_the_register_lacks_are_reported(extract, tmp_path):
    transfers = write(tmp_path / "more.csv",
                      "Facility_INSPIRE_ID;reportingYear;wasteClassificationCode;wasteTreatmentCode;totalWasteQuantityTNE",
                      ["ID/1.FACILITY;2023;NONHW;R;10", "ID/99.FACILITY;2023;NONHW;R;10", "ID/6.FACILITY;2023;NONHW;R;10"])
    result = import_eprtr(extract[0], waste_transfers=transfers, country="FI")
    problems = result.report.problems
    stranger = problems[problems["column"] == "Facility_INSPIRE_ID"]
    assert stranger[["row", "value", "action"]].values.tolist() == [[2, "ID/99.FACILITY", "skipped"]]
    # the Swedish mill exists but was filtered out: a note, not a problem
    assert any("1 waste-transfer row(s) belong to facilities not imported" in n for n in result.report.notes)
