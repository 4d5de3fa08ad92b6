"""E-PRTR import: hand-made extracts with every kind of bad row, and the real Finnish register."""

import re
from pathlib import Path

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


# --- the EEA's user-friendly files (F1_4 air releases, F2_4 water releases, F4_2 waste transfers) ---------------

EEA_FACILITY = ("PublicationDate,countryName,reportingYear,EPRTR_SectorCode,EPRTR_SectorName,EPRTRAnnexIMainActivity,"
                "FacilityInspireId,facilityName,city,Longitude,Latitude,addressConfidentialityReason")
F1_4_HEADER = EEA_FACILITY + ",TargetRelease,Pollutant,Releases,confidentialityReason"
F4_2_HEADER = EEA_FACILITY + ",wasteTreatment,wasteClassification,wasteTransfers,confidentialityReason"
F3_2_HEADER = EEA_FACILITY + ",Pollutant,transfers,confidentialityReason"
PUB = "2026/02/13"


def eea_row(country, year, activity, inspire, name, lon, lat, *rest):
    return ",".join([PUB, country, str(year), "1.0", "Energy sector", activity, inspire, name, "Town", str(lon),
                     str(lat), "", *map(str, rest)])


@pytest.fixture
def eea(tmp_path):
    """An F1_4 and an F4_2 file as the EEA publishes them: comma-separated, UTF-8 with a byte-order mark."""
    air = [
        eea_row("Sweden", 2020, "1(c)", "SE.CAED/1.Facility", "Verket", 16.0, 58.6, "AIR", "Carbon dioxide (CO2)",
                90_000_000.0, ""),
        eea_row("Sweden", 2022, "1(c)", "SE.CAED/1.Facility", "Verket (renamed)", 16.0, 58.6, "AIR",
                "Carbon dioxide (CO2)", 150_000_000.0, ""),
        eea_row("Sweden", 2022, "1(c)", "SE.CAED/1.Facility", "Verket (renamed)", 16.0, 58.6, "AIR",
                "Nitrogen oxides (NOX)", 120_000.0, ""),
        eea_row("Sweden", 2022, "6(a)", "SE.CAED/2.Facility", "Bruket", 13.5, 59.4, "AIR",
                "Carbon dioxide (CO2) excluding biomass", 50_000_000.0, ""),
        eea_row("Denmark", 2023, "5(d)", "DK.CAED/3.FACILITY", "Deponi", 11.1, 55.7, "AIR",
                "Carbon dioxide (CO2)", "lots", ""),
        eea_row("Norway", 2017, "2(e)(i)", "NO.EEA/4.FACILITY", "No place", "", "", "AIR", "Carbon dioxide (CO2)",
                1.0, ""),
        eea_row("Denmark", 2023, "", "DK.CAED/5.FACILITY", "Varmevaerk", 10.2, 56.2, "AIR", "Methane (CH4)", 10.0,
                ""),
        eea_row("Denmark", 2023, "99(z)", "DK.CAED/6.FACILITY", "Odd works", 10.3, 56.3, "AIR", "Methane (CH4)",
                10.0, ""),
        eea_row("Denmark", "twenty", "1(c)", "DK.CAED/7.FACILITY", "Yearless", 10.4, 56.4, "AIR",
                "Carbon dioxide (CO2)", 10.0, ""),
    ]
    waste = [
        eea_row("Sweden", "2021.0", "1(c)", "SE.CAED/1.Facility", "Verket", 16.0, 58.6, "Recovery", "NONHW", 999.0,
                ""),
        eea_row("Sweden", "2022.0", "1(c)", "SE.CAED/1.Facility", "Verket (renamed)", 16.0, 58.6, "Recovery",
                "NONHW", 2500.0, ""),
        eea_row("Sweden", "2022.0", "1(c)", "SE.CAED/1.Facility", "Verket (renamed)", 16.0, 58.6, "Recovery",
                "NONHW", 500.0, ""),
        eea_row("Sweden", "2022.0", "1(c)", "SE.CAED/1.Facility", "Verket (renamed)", 16.0, 58.6, "Recovery", "HW",
                70.0, ""),
        eea_row("Sweden", "2022.0", "1(c)", "SE.CAED/1.Facility", "Verket (renamed)", 16.0, 58.6, "Disposal",
                "NONHW", 80.0, ""),
        eea_row("Sweden", "2024.0", "6(a)", "SE.CAED/8.Facility", "Waste-only mill", 14.2, 59.2, "Recovery",
                "NONHW", 1000.0, ""),
    ]
    f1_4 = tmp_path / "F1_4_Air_Releases_Facilities.csv"
    f4_2 = tmp_path / "F4_2_WasteTransfers_Facilities.csv"
    f1_4.write_text("\n".join([F1_4_HEADER, *air]) + "\n", encoding="utf-8-sig")
    f4_2.write_text("\n".join([F4_2_HEADER, *waste]) + "\n", encoding="utf-8-sig")
    return f1_4, f4_2


def test_the_eea_files_are_recognised_from_their_header_not_their_name(eea, tmp_path):
    renamed = [tmp_path / "a.txt", tmp_path / "b.dat"]
    for source, target in zip(eea, renamed, strict=True):
        target.write_bytes(source.read_bytes())
    result = import_eprtr(renamed)
    assert result.report.layouts == {
        str(renamed[0]): "the EEA's user-friendly air or water releases file (F1_4, F2_4)",
        str(renamed[1]): "the EEA's user-friendly waste-transfers file (F4_2)",
    }
    assert set(result.facilities["inspire_id"]) == {
        "SE.CAED/1.Facility", "SE.CAED/2.Facility", "DK.CAED/3.FACILITY", "DK.CAED/5.FACILITY",
        "DK.CAED/6.FACILITY", "SE.CAED/8.Facility"}


@pytest.mark.parametrize(("separator", "encoding"), [(",", "utf-8-sig"), (",", "utf-8"), (";", "utf-8")])
def test_an_eea_file_reads_with_or_without_a_byte_order_mark_and_with_semicolons(eea, tmp_path, separator,
                                                                                   encoding):
    text = eea[0].read_text(encoding="utf-8-sig")
    if separator == ";":  # as a spreadsheet saves it in a locale with a decimal comma
        lines = text.splitlines()
        text = "\n".join([lines[0].replace(",", ";"),
                          *(re.sub(r"(\d)\.(\d)", r"\1,\2", line.replace(",", ";")) for line in lines[1:])]) + "\n"
    path = tmp_path / "air.csv"
    path.write_text(text, encoding=encoding)
    fac = import_eprtr(path).facilities.set_index("inspire_id")
    assert fac.loc["SE.CAED/1.Facility", "name"] == "Verket (renamed)"
    assert fac.loc["SE.CAED/1.Facility", "lon"] == pytest.approx(16.0)
    assert fac.loc["SE.CAED/1.Facility", "nace"] == "D35.11"


def test_the_latest_year_gives_the_details_and_co2_in_tonnes(eea):
    result = import_eprtr(eea[0])
    fac = result.facilities.set_index("inspire_id")
    assert fac.loc["SE.CAED/1.Facility", "name"] == "Verket (renamed)"
    assert fac.loc["SE.CAED/1.Facility", "reporting_year"] == "2022"
    assert fac.loc["SE.CAED/1.Facility", "country"] == "SE"
    assert fac.loc["SE.CAED/1.Facility", "precision"] == "site"
    assert fac["facility_id"].is_unique and fac.loc["SE.CAED/1.Facility", "facility_id"] == "EPRTR-SE-1"
    co2 = result.flows[result.flows["resource"] == "gas.co2"].set_index("facility_id")
    verket, bruket = fac.loc["SE.CAED/1.Facility", "facility_id"], fac.loc["SE.CAED/2.Facility", "facility_id"]
    assert co2.loc[verket, "quantity"] == pytest.approx(150_000.0)  # 150,000,000 kg in 2022, not 2020's 90,000 t
    assert co2.loc[verket, "unit"] == "t/yr"
    assert co2.loc[verket, "origin"] == "E-PRTR air releases 2022: Carbon dioxide (CO2)"
    # a mill that reports only its fossil CO2 supplies that, and says so
    assert co2.loc[bruket, "quantity"] == pytest.approx(50_000.0)
    assert "excluding biomass" in co2.loc[bruket, "description"]
    assert register_derived(result.flows).all()


def test_recovered_non_hazardous_waste_of_the_eea_file_becomes_supply(eea):
    result = import_eprtr(list(eea))
    fac = result.facilities.set_index("inspire_id")
    flows = result.flows.set_index(["facility_id", "resource"])
    verket = fac.loc["SE.CAED/1.Facility", "facility_id"]
    # 2022 only (written 2022.0), NONHW and Recovery only, summed; a combustion plant's is 60 % fly, 40 % bottom ash
    assert flows.loc[(verket, "mineral.fly_ash"), "quantity"] == pytest.approx(0.6 * 3000.0)
    assert flows.loc[(verket, "mineral.bottom_ash"), "quantity"] == pytest.approx(0.4 * 3000.0)
    assert flows.loc[(verket, "mineral.fly_ash"), "origin"] == "E-PRTR waste transfers 2022: NONHW, R"
    # a facility of the waste file alone is a facility too
    assert fac.loc["SE.CAED/8.Facility", "name"] == "Waste-only mill"
    mill = fac.loc["SE.CAED/8.Facility", "facility_id"]
    assert {"mineral.lime_residues", "mineral.fly_ash", "organic.sludge"} <= set(
        result.flows.loc[result.flows["facility_id"] == mill, "resource"])


def test_register_co2_is_published_and_split_waste_typical(eea):
    flows = import_eprtr(list(eea)).flows.set_index(["facility_id", "resource"])
    assert flows.loc[("EPRTR-SE-1", "gas.co2"), "evidence"] == "published"  # the register's own figure
    # the tonnes are the register's, but which residue they are is the activity's typical split
    assert flows.loc[("EPRTR-SE-1", "mineral.fly_ash"), "evidence"] == "typical"
    assert set(flows["evidence"]) == {"published", "typical"}


def test_eea_country_and_bbox_filters(eea):
    swedish = import_eprtr(list(eea), country="se")
    assert set(swedish.facilities["country"]) == {"SE"}
    assert set(swedish.flows["facility_id"]) <= set(swedish.facilities["facility_id"])
    # a Swedish import lists no Danish or Norwegian problem
    assert swedish.report.problems.empty
    boxed = import_eprtr(list(eea), bbox=(15.0, 58.0, 17.0, 59.0)).facilities
    assert boxed["inspire_id"].tolist() == ["SE.CAED/1.Facility"]


def test_bad_eea_rows_are_counted_with_file_row_and_column(eea):
    report = import_eprtr(eea[0]).report
    found = {(Path(f).name, r, c, p, a) for f, r, c, p, a in
             report.problems[["file", "row", "column", "problem", "action"]].itertuples(index=False)}
    name = eea[0].name
    assert found == {
        (name, 5, "Releases", "have no usable quantity", "skipped"),
        (name, 6, "Longitude", "have no usable coordinates", "skipped"),
        (name, 7, "EPRTRAnnexIMainActivity", "have no E-PRTR activity", "kept without NACE"),
        (name, 8, "EPRTRAnnexIMainActivity", "have an unknown E-PRTR activity code", "kept without NACE"),
        (name, 9, "reportingYear", "have no usable reporting year", "skipped"),
    }
    assert f"{name}, column Releases: 1 row(s) have no usable quantity, skipped: row 5 (lots)" in report.summary()


def test_a_file_of_neither_layout_is_refused_naming_its_columns(tmp_path):
    path = tmp_path / "plants.csv"
    path.write_text("\ufeffplant,lat,lon,tonnes\nA,60,25,3\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"plants\.csv: not a file import-eprtr reads; found column\(s\) plant, "
                                         r"lat, lon, tonnes\. Expected the columns of one of: .*FacilityInspireId"):
        import_eprtr(path)


@pytest.mark.parametrize(("header", "message"), [
    (F3_2_HEADER, r"pollutant-transfers file \(F3_2\), which is not imported"),
    ('"SiteID";"CompanyName";"SiteName";"Country";"geom";"Subsector";"DataSource";"Emissions_ETS_2014";'
     '"Emissions_EPRTR_2014";"Excess_Heat_100-200C";"Excess_Heat_200-500C";"Excess_Heat_500C"',
     r"Hotmaps industrial database; import it with: python -m geo import-hotmaps"),
    (F1_4_HEADER.replace(",Releases", ""), r"column\(s\) Releases missing for the EEA's user-friendly air"),
])
def test_a_register_file_of_another_kind_is_refused_with_what_to_do(tmp_path, header, message):
    path = tmp_path / "x.csv"
    path.write_text(header + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=message):
        import_eprtr(path)


def test_the_two_layouts_are_not_mixed_in_one_import(eea, extract):
    with pytest.raises(InputError, match="not both in one import"):
        import_eprtr([extract[0], eea[0]])
    with pytest.raises(InputError, match=r"given as the E-PRTR pollutant-release table, but its header is"):
        import_eprtr(extract[0], releases=extract[1])


def test_cli_imports_the_eea_files_of_one_country_then_matches(eea, tmp_path, capsys):
    out = tmp_path / "se.gpkg"
    assert main(["import-eprtr", str(eea[0]), str(eea[1]), "--country", "SE", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "wrote 3 facilities" in captured.out
    assert "(the EEA's user-friendly waste-transfers file (F4_2))" in captured.err
    data = load_dataset(out)
    assert data.report.ok and len(data.facilities) == 3
    assert main(["match", "--facilities", str(out), "--infer", "--out", str(tmp_path / "links.csv")]) == 0
    path = tmp_path / "plants.csv"
    path.write_text("plant,lat,lon\n", encoding="utf-8")
    assert main(["import-eprtr", str(path), "--out", str(tmp_path / "x.gpkg")]) == 2
    assert "found column(s) plant, lat, lon" in capsys.readouterr().err


NORDIC_AIR = ("eprtr_nordics", "F1_4_Air_Releases_Facilities_Nordics.csv")


def _placed_facilities(path, country_name: str) -> int:
    """An independent count: the country's distinct facility ids with a numeric, non-(0, 0) point."""
    rows = pd.read_csv(path, encoding="utf-8-sig", low_memory=False)
    rows = rows[rows["countryName"] == country_name].dropna(subset=["Longitude", "Latitude"])
    rows = rows[(rows["Longitude"] != 0) | (rows["Latitude"] != 0)]
    return rows["FacilityInspireId"].nunique()


def test_every_annex_i_activity_of_the_nordic_file_maps_to_nace():
    rows = pd.read_csv(shared(*NORDIC_AIR), encoding="utf-8-sig", dtype=str, keep_default_na=False)
    activities = set(pd.read_csv("data/knowledge/eprtr_activities.csv", dtype=str)["activity"])
    assert set(rows["EPRTRAnnexIMainActivity"]) - {""} <= activities


@pytest.mark.parametrize(("code", "name", "at_least"), [("SE", "Sweden", 400), ("DK", "Denmark", 800),
                                                        ("NO", "Norway", 170)])
def test_the_nordic_air_file_gives_each_country_its_facilities_that_match(tmp_path, code, name, at_least):
    path = shared(*NORDIC_AIR)
    out = tmp_path / f"{code}.gpkg"
    assert main(["import-eprtr", str(path), "--country", code, "--out", str(out)]) == 0
    data = load_dataset(out)
    assert data.report.ok
    assert len(data.facilities) == _placed_facilities(path, name) >= at_least
    assert set(data.facilities["country"]) == {code}
    assert (data.flows["resource"] == "gas.co2").sum() > 50
    assert main(["match", "--facilities", str(out), "--infer", "--out", str(tmp_path / "links.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "links.csv")) > 500


@pytest.mark.parametrize(("code", "name"), [("SE", "Sweden"), ("DK", "Denmark"), ("NO", "Norway")])
def test_the_nordic_air_file_loses_no_facility_and_names_each_without_a_sector(code, name):
    path = shared(*NORDIC_AIR)
    rows = pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    rows = rows[rows["countryName"] == name]
    result = import_eprtr(path, country=code)
    # every facility id of the country is written once, whatever year it last reported
    assert sorted(result.facilities["inspire_id"]) == sorted(rows["FacilityInspireId"].unique())
    # the only problems: facilities whose every row lacks the Annex I activity, kept without NACE
    problems = result.report.problems
    assert set(problems["action"]) <= {"kept without NACE"}
    never = rows.groupby("FacilityInspireId")["EPRTRAnnexIMainActivity"].agg(lambda a: (a == "").all())
    assert len(problems) == int(never.sum())
    no_sector = result.facilities.loc[result.facilities["nace"] == "", "inspire_id"]
    assert set(no_sector) == set(never.index[never])


def test_with_the_waste_transfer_file_sweden_has_over_600_facilities(tmp_path):
    waste = shared("eprtr_nordics", "F4_2_WasteTransfers_Facilities_Nordics.csv")
    result = import_eprtr([shared(*NORDIC_AIR), waste], country="SE")
    assert len(result.facilities) >= 600
    assert result.facilities["inspire_id"].is_unique
