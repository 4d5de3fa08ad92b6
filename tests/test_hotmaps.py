"""Hotmaps import: a hand-made database in the published layout, and the real one for the Nordic countries."""

from pathlib import Path

import pandas as pd
import pytest

from geo import settings
from geo.cli import main
from geo.dataset import load_dataset
from geo.eprtr import write_geopackage
from geo.errors import InputError, KnowledgeBaseError
from geo.hotmaps import heat_bands, import_hotmaps, subsector_nace
from geo.inference import infer_flows, register_derived
from geo.taxonomy import load_taxonomy
from tests.conftest import shared

COLUMNS = ("SiteID", "CompanyName", "SiteName", "Address", "CityCode", "City", "Country", "geom", "Subsector",
           "DataSource", "Emissions_ETS_2014", "Emissions_EPRTR_2014", "Production", "Fuel_Demand",
           "Excess_Heat_100-200C", "Excess_Heat_200-500C", "Excess_Heat_500C", "Excess_Heat_Total")
TEXT = 10  # the first ten columns are quoted text, the rest numbers, as published


def hotmaps_line(values) -> str:
    return ";".join(f'"{v}"' if i < TEXT else str(v) for i, v in enumerate(values))


def site(site_id, name, address, country, point, subsector, source, ets="", eprtr="", heat=("0.00", "0.00", "0.00")):
    total = f"{sum(float(h) for h in heat if h not in ('', 'n/a')):.2f}"
    return hotmaps_line([site_id, f"{name} AB", name, address, "12345", "Town", country, point, subsector, source,
                         ets, eprtr, "", "", *heat, total])


@pytest.fixture
def database(tmp_path):
    rows = [
        site(1, "Bruket", "Bruksvägen 1", "Sweden", "SRID=4326;POINT(13.5 59.4)", "Paper and printing",
             "ETS/EPRTR", ets="300000.00", eprtr="310000.00", heat=("50.00", "20.00", "5.00")),
        site(2, "Verkstaden", "Industrigatan 2", "Sweden", "SRID=4326;POINT(16.2 58.6)", "Iron and steel", "ETS",
             ets="80000.00"),
        site(3, "Tegelbruket", "Lergatan 3", "Sweden", "SRID=4326;POINT(13.0 55.6)", "Non-metallic mineral products",
             "ETS", ets="20000.00"),
        site(4, "Kalkbruket", "Kalkvägen 9", "Sweden", "SRID=4326;POINT(13.0 55.6)", "Non-metallic mineral products",
             "ETS", ets="30000.00"),
        site(5, "Glasværket", "Glasvej 5", "Denmark", "", "Glass", "ETS", ets="10000.00"),
        site(6, "Tehdas", "Tehtaankatu 6", "Finland", "SRID=3067;POINT(300000 6800000)", "Chemical industry", "ETS",
             ets="10000.00"),
        site(7, "Raffinaderiet", "", "Sweden", "SRID=4326;POINT(11.9 57.7)", "Refineries", "EPRTR",
             ets="n/a", eprtr="1500000.00", heat=("10.00", "0.00", "0.00")),
        site(8, "Fjernvarme", "Varmevej 8", "Denmark", "SRID=4326;POINT(11.1 55.7)", "Other non-classified", "ETS",
             ets="5000.00"),
        site(9, "Bageriet", "Brødvej 9", "Denmark", "SRID=4326;POINT(11.2 55.7)", "Food and drink", "ETS",
             ets="4000.00"),
    ]
    path = tmp_path / "Industrial_Database.csv"
    path.write_text("\n".join([";".join(f'"{c}"' for c in COLUMNS), *rows]) + "\n", encoding="utf-8")
    return path


def test_excess_heat_bands_become_hot_water_and_steam_in_mwh(database):
    result = import_hotmaps(database)
    flows = result.flows.set_index(["facility_id", "resource"])
    # 50 GWh/yr at 100-200 C as hot water; 20 + 5 GWh/yr above 200 C as steam; the resources' unit is MWh/yr
    assert flows.loc[("HOTMAPS-1", "heat.hot_water"), "quantity"] == pytest.approx(50_000.0)
    assert flows.loc[("HOTMAPS-1", "heat.steam"), "quantity"] == pytest.approx(25_000.0)
    assert flows.loc[("HOTMAPS-1", "heat.steam"), "unit"] == "MWh/yr"
    assert "200-500 °C: 20 GWh/yr; above 500 °C: 5 GWh/yr" in flows.loc[("HOTMAPS-1", "heat.steam"), "description"]
    assert flows.loc[("HOTMAPS-1", "gas.co2"), "quantity"] == pytest.approx(300_000.0)  # the EU ETS figure, t/yr
    # an unusable ETS figure is reported and the E-PRTR one is used
    assert flows.loc[("HOTMAPS-7", "gas.co2"), "quantity"] == pytest.approx(1_500_000.0)
    assert not flows.index.isin([("HOTMAPS-2", "heat.hot_water"), ("HOTMAPS-2", "heat.steam")]).any()
    assert set(result.flows["direction"]) == {"supply"}


def test_each_site_gets_its_sector_and_how_precisely_it_is_placed(database):
    fac = import_hotmaps(database).facilities.set_index("facility_id")
    assert fac.loc["HOTMAPS-1", ["nace", "country", "precision"]].tolist() == ["C17", "SE", "site"]
    assert fac.loc["HOTMAPS-2", "precision"] == "address"  # EU ETS only: geocoded from its address
    # two sites at different addresses on one point: a town centre
    assert fac.loc[["HOTMAPS-3", "HOTMAPS-4"], "precision"].tolist() == ["town", "town"]
    assert fac.loc["HOTMAPS-7", ["nace", "precision"]].tolist() == ["C19.20", "site"]
    assert fac.loc["HOTMAPS-8", "nace"] == ""  # Other non-classified
    assert fac.loc["HOTMAPS-1", "lon"] == pytest.approx(13.5) and fac.loc["HOTMAPS-1", "lat"] == pytest.approx(59.4)


def test_bad_rows_are_counted_with_file_row_and_column(database):
    report = import_hotmaps(database).report
    found = {(Path(f).name, r, c, p, a) for f, r, c, p, a in
             report.problems[["file", "row", "column", "problem", "action"]].itertuples(index=False)}
    assert found == {
        ("Industrial_Database.csv", 5, "geom", "have no point", "skipped"),
        ("Industrial_Database.csv", 6, "geom", "have a point in another coordinate system than WGS84 (SRID 4326)",
         "skipped"),
        ("Industrial_Database.csv", 7, "Emissions_ETS_2014", "have no usable quantity", "quantity left out"),
        ("Industrial_Database.csv", 9, "Subsector", "have an unknown subsector", "kept without NACE"),
    }
    assert any(line.startswith("Industrial_Database.csv, column geom: 1 row(s) have no point, skipped: row 5")
               for line in report.summary())


def test_country_and_bbox_filters(database):
    swedish = import_hotmaps(database, country="se")
    assert sorted(swedish.facilities["facility_id"]) == ["HOTMAPS-1", "HOTMAPS-2", "HOTMAPS-3", "HOTMAPS-4",
                                                         "HOTMAPS-7"]
    assert set(swedish.flows["facility_id"]) <= set(swedish.facilities["facility_id"])
    assert "Subsector" not in set(swedish.report.problems["column"])  # the Danish bakery is not a Swedish problem
    boxed = import_hotmaps(database, bbox=(13.0, 59.0, 14.0, 60.0)).facilities
    assert boxed["facility_id"].tolist() == ["HOTMAPS-1"]


def test_a_byte_order_mark_is_read(database, tmp_path):
    path = tmp_path / "with_bom.csv"
    path.write_text(database.read_text(encoding="utf-8"), encoding="utf-8-sig")
    assert len(import_hotmaps(path).facilities) == len(import_hotmaps(database).facilities)


def test_a_file_of_another_layout_is_refused_naming_its_columns(tmp_path):
    plants = tmp_path / "plants.csv"
    plants.write_text("plant;lat;lon\nA;60;25\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"plants\.csv: not a file import-hotmaps reads; found column\(s\) plant, "
                                         r"lat, lon\. Expected the columns of one of: the Hotmaps industrial "
                                         r"database: SiteID"):
        import_hotmaps(plants)
    register = tmp_path / "air.csv"
    register.write_text("PublicationDate,countryName,reportingYear,EPRTRAnnexIMainActivity,FacilityInspireId,"
                        "facilityName,Longitude,Latitude,TargetRelease,Pollutant,Releases\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"air or water releases file \(F1_4, F2_4\); import it with: "
                                         r"python -m geo import-eprtr"):
        import_hotmaps(register)


def test_cli_writes_a_geopackage_that_validates_and_matches(database, tmp_path, capsys):
    out = tmp_path / "hotmaps.gpkg"
    assert main(["import-hotmaps", str(database), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "wrote 7 facilities" in captured.out
    assert "heat.hot_water 60,000 MWh/yr, heat.steam 25,000 MWh/yr" in captured.err
    data = load_dataset(out)
    assert data.report.ok
    assert set(data.facilities["precision"]) == {"site", "address", "town"}
    assert main(["match", "--facilities", str(out), "--infer", "--out", str(tmp_path / "links.csv")]) == 0
    assert main(["import-hotmaps", str(database), "--country", "EE", "--out", str(tmp_path / "x.gpkg")]) == 2


def test_hotmaps_sites_also_get_the_typical_flows_of_their_sector(database, bundled, tmp_path):
    result = import_hotmaps(database)
    assert register_derived(result.flows).all()
    write_geopackage(result, tmp_path / "hotmaps.gpkg")
    data = load_dataset(tmp_path / "hotmaps.gpkg", taxonomy=bundled)
    flows, _ = infer_flows(data.facilities, data.flows, bundled)
    mill = flows[flows["facility_id"] == "HOTMAPS-1"]
    # Hotmaps gives the mill's CO2 and excess heat; its sector adds what it needs and its other residues
    assert {"biomass.solid_fuel", "material.paper_fibres"} <= set(mill.loc[mill["direction"] == "demand", "resource"])
    assert {"organic.sludge", "biomass.bark"} <= set(mill.loc[mill["direction"] == "supply", "resource"])
    assert (mill["resource"] == "heat.hot_water").sum() == 1  # the database's heat, not the profile's again
    assert mill.loc[mill["basis"] == "inferred", "evidence"].eq("").all()


def test_each_flow_says_whether_its_figure_is_published_or_estimated(database):
    flows = import_hotmaps(database).flows.set_index(["facility_id", "resource"])
    assert flows.loc[("HOTMAPS-1", "gas.co2"), "evidence"] == "published"  # EU ETS verified emissions
    assert flows.loc[("HOTMAPS-1", "heat.hot_water"), "evidence"] == "typical"  # Hotmaps' estimate
    assert flows.loc[("HOTMAPS-1", "heat.steam"), "evidence"] == "typical"


def test_subsectors_and_heat_bands_come_from_the_knowledge_base(bundled):
    nace = subsector_nace()
    assert nace["paper and printing"] == "C17" and nace["other non-classified"] == ""
    bands = heat_bands(bundled).set_index("column")
    assert bands.loc["Excess_Heat_100-200C", "resource"] == "heat.hot_water"
    assert set(bands.loc[["Excess_Heat_200-500C", "Excess_Heat_500C"], "resource"]) == {"heat.steam"}
    assert bundled.conversion_factor("heat.steam", "GWh/yr", "MWh/yr") == 1000.0
    assert (bands["source"] != "").all()


def _knowledge_copy(tmp_path, monkeypatch, name, edit):
    """The bundled knowledge base in tmp_path, with ``edit(text)`` applied to file ``name``; used from now on."""
    import shutil

    folder = tmp_path / "knowledge"
    shutil.copytree(settings.KNOWLEDGE_DIR, folder)
    path = folder / name
    path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    monkeypatch.setattr(settings, "KNOWLEDGE_DIR", folder)
    return folder


@pytest.mark.parametrize(("name", "edit", "message"), [
    ("hotmaps_heat_bands.csv", lambda t: t.replace(",heat.steam,200-500", ",mineral.slag,200-500"),
     "Excess_Heat_200-500C: 'mineral.slag' is no heat resource"),
    ("hotmaps_subsectors.csv", lambda t: t.replace("Cement,C23.51", "Cement,cement"),
     "Cement: 'cement' is no NACE Rev. 2 code"),
    ("hotmaps_subsectors.csv", lambda t: t + "cement,C23.52,again,[Q1]\n", "subsector 'cement' is listed twice"),
    ("unit_conversions.csv", lambda t: "\n".join(line for line in t.splitlines() if "GWh/yr" not in line) + "\n",
     "no conversion from GWh/yr to MWh/yr for heat.hot_water in unit_conversions.csv"),
])
def test_a_broken_hotmaps_table_is_refused_naming_the_row(database, tmp_path, monkeypatch, name, edit, message):
    folder = _knowledge_copy(tmp_path, monkeypatch, name, edit)
    with pytest.raises(KnowledgeBaseError, match=message):
        import_hotmaps(database, taxonomy=load_taxonomy(folder))


NORDIC = {"SE": "Sweden", "DK": "Denmark", "NO": "Norway", "FI": "Finland"}


def test_every_subsector_of_the_real_database_has_a_row():
    rows = pd.read_csv(shared("hotmaps", "Industrial_Database.csv"), sep=";", encoding="utf-8-sig", dtype=str,
                       keep_default_na=False)
    assert set(rows["Subsector"].str.lower()) <= set(subsector_nace().index)


@pytest.mark.parametrize("code", sorted(NORDIC))
def test_the_real_database_gives_the_nordic_sites_with_their_heat(tmp_path, code):
    path = shared("hotmaps", "Industrial_Database.csv")
    rows = pd.read_csv(path, sep=";", encoding="utf-8-sig", dtype=str, keep_default_na=False)
    rows = rows[(rows["Country"] == NORDIC[code]) & (rows["geom"] != "")]
    bands = rows[["Excess_Heat_100-200C", "Excess_Heat_200-500C", "Excess_Heat_500C"]].astype(float)
    out = tmp_path / f"{code}.gpkg"
    assert main(["import-hotmaps", str(path), "--country", code, "--out", str(out)]) == 0
    data = load_dataset(out)
    assert data.report.ok
    assert len(data.facilities) == len(rows)
    heat = data.flows[data.flows["resource"].str.startswith("heat.")]
    assert heat["facility_id"].nunique() == int((bands.sum(axis=1) > 0).sum()) > 0
    assert heat["quantity"].sum() == pytest.approx(bands.to_numpy().sum() * 1000.0, rel=1e-6)
    assert set(heat["unit"]) == {"MWh/yr"}
    assert main(["match", "--facilities", str(out), "--infer", "--out", str(tmp_path / "links.csv")]) == 0
