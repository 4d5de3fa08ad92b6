"""E-PRTR import: hand-made extracts with every kind of bad row, and the real Finnish register."""

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
from pyproj import Transformer

from geo.cli import main
from geo.dataset import load_dataset
from geo.eprtr import import_eprtr, waste_split, write_geopackage
from geo.errors import InputError
from geo.inference import register_derived
from geo.taxonomy import activity_prefixes
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
    power = result.facilities.set_index("inspire_id").loc["ID/2.FACILITY", "facility_id"]
    # latest year only, NONHW + R only, summed; a combustion plant's waste is taken as 60 % fly ash, 40 % bottom ash
    assert flows.loc[(power, "mineral.fly_ash"), "quantity"] == pytest.approx(0.6 * 3000.0)
    assert flows.loc[(power, "mineral.bottom_ash"), "quantity"] == pytest.approx(0.4 * 3000.0)
    assert flows.loc[(power, "mineral.fly_ash"), "origin"] == "E-PRTR waste transfers 2023: NONHW, R"
    assert flows.loc[(power, "gas.co2"), "quantity"] == pytest.approx(250_000.0)
    assert flows.loc[(power, "gas.co2"), "origin"] == "E-PRTR releases 2023: CO2 to air"
    assert set(result.flows["direction"]) == {"supply"}
    assert register_derived(result.flows).all()


def test_a_pulp_mill_recovered_waste_is_dregs_ash_and_sludge_not_fuel(extract):
    result = import_eprtr(extract[0], waste_transfers=extract[1])
    mill = result.facilities.set_index("inspire_id").loc["ID/1.FACILITY", "facility_id"]
    supply = result.flows[result.flows["facility_id"] == mill].set_index("resource")["quantity"]
    # 100.5 + 49.5 t of recovered non-hazardous waste in 2023, split by the shares of activity 6(a)
    assert supply.to_dict() == pytest.approx(
        {"mineral.lime_residues": 60.0, "mineral.fly_ash": 52.5, "organic.sludge": 37.5})
    assert "material.refuse_derived_fuel" not in supply.index
    described = result.flows.loc[result.flows["facility_id"] == mill, "description"]
    assert described.str.contains("150 t in all").all() and described.str.contains("activity 6(a)", regex=False).all()


def test_every_activity_has_a_waste_split_that_sums_to_one_over_known_resources(bundled):
    split = waste_split()
    assert set(split["resource"]) <= set(bundled.leaves.index)
    assert (split.groupby(["activity", "name_pattern"])["share"].sum() - 1).abs().max() < 1e-9
    # an activity with name-specific splits also has a default one
    assert set(split["activity"]) == set(split.loc[split["name_pattern"] == "", "activity"])
    activities = pd.read_csv("data/knowledge/eprtr_activities.csv", dtype=str)["activity"]
    headings = {a for a in activities if any(p in set(split["activity"]) for p in activity_prefixes(a))}
    assert headings == set(activities)
    # demand references are never supplied
    assert not set(split["resource"]) & {"mineral.aggregates", "mineral.cement_raw_materials", "biomass.solid_fuel"}


def test_a_biogas_plant_among_waste_sites_supplies_digestate_not_scrap(tmp_path):
    facilities = write(tmp_path / "f.csv", HEADER, [
        "ID/1.FACILITY;Gas Oy;Gas Oy, Biokaasulaitos;5(c);Disposal;23.70;61.50;FI;2023;;",
        "ID/2.FACILITY;Romu Oy;Romu Oy, Murskalaitos;5(c);Disposal;23.71;61.50;FI;2023;;",
        "ID/3.FACILITY;Voima Oy;Voima Oy, tuhkan kaatopaikka;5(d);Landfill;23.72;61.50;FI;2023;;",
    ])
    transfers = write(tmp_path / "t.csv",
                      "Facility_INSPIRE_ID;reportingYear;wasteClassificationCode;wasteTreatmentCode;totalWasteQuantityTNE",
                      [f"ID/{i}.FACILITY;2023;NONHW;R;100" for i in (1, 2, 3)])
    result = import_eprtr(facilities, waste_transfers=transfers)
    by_name = result.flows.merge(result.facilities[["facility_id", "name"]], on="facility_id")
    supplied = by_name.groupby("name")["resource"].apply(set).to_dict()
    assert supplied["Gas Oy, Biokaasulaitos"] == {"organic.digestate"}
    assert "material.metal_scrap" in supplied["Romu Oy, Murskalaitos"]
    assert supplied["Voima Oy, tuhkan kaatopaikka"] == {"mineral.fly_ash", "mineral.bottom_ash"}


def test_a_broken_split_is_refused(tmp_path, monkeypatch):
    from geo import settings
    from geo.errors import KnowledgeBaseError

    (tmp_path / "eprtr_waste_split.csv").write_text(
        "activity,resource,share,note,source\n"
        "1(c),mineral.fly_ash,0.7,Ash,[T1]\n1(c),mineral.bottom_ash,0.4,Ash,[T1]\n")
    monkeypatch.setattr(settings, "KNOWLEDGE_DIR", tmp_path)
    with pytest.raises(KnowledgeBaseError, match=r"1\(c\): shares sum to 1.1"):
        waste_split()


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
    assert "wrote 5 facilities and 6 flows" in captured.out
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
    assert {"gas.co2", "mineral.fly_ash", "mineral.lime_residues", "organic.sludge"} <= set(result.flows["resource"])
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


def test_infinite_or_placeholder_coordinates_and_quantities_are_refused(tmp_path):
    facilities = write(tmp_path / "facilities.csv", HEADER, [
        "ID/1.FACILITY;A Oy;Good;1(c);Combustion;23.70;61.50;FI;2023;;",
        "ID/2.FACILITY;B Oy;Infinite;1(c);Combustion;inf;inf;FI;2023;;",
        "ID/3.FACILITY;C Oy;Overflow;1(c);Combustion;1e400;61.5;FI;2023;;",
        "ID/4.FACILITY;D Oy;Placeholder;1(c);Combustion;0;0;FI;2023;;",
        "ID/5.FACILITY;E Oy;Far x/y;1(c);Combustion;;;FI;2023;1e30;1e30",
    ])
    releases = write(tmp_path / "releases.csv",
                     "Facility_INSPIRE_ID;reportingYear;pollutantCode;medium;totalPollutantQuantityKg",
                     ["ID/1.FACILITY;2023;CO2;AIR;inf"])
    result = import_eprtr(facilities, releases=releases)
    assert result.facilities["inspire_id"].tolist() == ["ID/1.FACILITY"]
    lost = result.report.problems[result.report.problems["problem"] == "have no usable coordinates"]
    assert sorted(lost["value"]) == ["Far x/y", "Infinite", "Overflow", "Placeholder"]
    assert result.flows.empty or result.flows["quantity"].map(lambda q: q == q and abs(q) < 1e300).all()
