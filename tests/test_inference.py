"""Inferring flows from NACE sector profiles."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from geo.inference import infer_flows
from geo.schema import Dataset
from geo.pipeline import match
from tests.conftest import declared_flows


def _facilities(*rows):
    frame = pd.DataFrame(rows, columns=["facility_id", "name", "nace", "lon", "lat"])
    frame[["country", "cluster"]] = ""
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame["lon"], frame["lat"]), crs="EPSG:4326")


def test_longest_nace_prefix_wins_and_declared_flows_win(tax):
    fac = _facilities(
        ("P", "Power", "35.11", 25.0, 61.0),    # class profile 35.11 replaces division 35
        ("H", "Heat", "35.30", 25.01, 61.0),    # falls back to division 35
        ("D", "Declared", "35.11", 25.02, 61.0),
        ("N", "No sector", "", 25.03, 61.0),
        ("Q", "No profile", "62.01", 25.04, 61.0),
    )
    flows, missing = infer_flows(fac, declared_flows(("D", "supply", "heat.steam", 10.0, "MWh/yr")), tax)
    inferred = flows[flows["basis"] == "inferred"]
    assert inferred[inferred["facility_id"] == "P"]["resource"].tolist() == ["heat.steam"]
    assert sorted(inferred[inferred["facility_id"] == "H"]["resource"]) == [
        "biomass.solid_fuel", "heat.hot_water", "mineral.fly_ash"]
    assert "D" not in set(inferred["facility_id"])
    assert inferred["quantity"].isna().all()
    assert set(inferred["source"]) == {"sector profile NACE 35.11", "sector profile NACE 35"}
    assert inferred["flow_id"].is_unique
    assert missing.set_index("facility_id")["reason"].to_dict() == {
        "N": "no NACE code", "Q": "no sector profile for NACE 62.01"}


def test_sector_only_facilities_give_ranked_links(tax):
    fac = _facilities(("P", "Voima", "35.30", 25.0, 61.0), ("C", "Sementti", "23.51", 25.05, 61.02),
                      ("G", "Kasvihuone", "01.13", 25.02, 61.01))
    data = Dataset(fac, declared_flows())
    result = match(data, taxonomy=tax, infer=True)
    assert len(result.links) > 0
    assert set(result.links["basis"]) == {"inferred"}
    # with nothing known but the sector, the quantities are the sector's typical ones, with a range, and say so
    links = result.links
    assert (links["quantity_estimate"] == "sector typical").all()
    assert (links["quantity_low"] <= links["quantity"]).all() and (links["quantity"] <= links["quantity_high"]).all()
    assert links["supply_quantity_note"].str.startswith("sector typical").all()
    assert links["why"].str.contains("The quantity is typical of the sector, not of this facility.").all()
    assert match(data, taxonomy=tax).links.empty


def _register(*rows):
    """Flows as the E-PRTR import writes them: an ``origin`` naming the register."""
    frame = declared_flows(*rows)
    frame["origin"] = "E-PRTR waste transfers 2023: NONHW, R"
    return frame


def test_register_facilities_get_their_profile_without_repeating_a_reported_resource(tax):
    fac = _facilities(("P", "Voima", "35.11", 25.0, 61.0), ("U", "User", "35.11", 25.01, 61.0))
    fac["eprtr_activity"] = ["", ""]
    flows = pd.concat([_register(("P", "supply", "mineral.fly_ash", 3000.0, "t/yr")),
                       declared_flows(("U", "supply", "heat.steam", 10.0, "MWh/yr"))], ignore_index=True)
    flows["flow_id"] = ["row 2", "row 3"]
    combined, missing = infer_flows(fac, flows, tax)
    inferred = combined[combined["basis"] == "inferred"]
    # the register reported ash, so the profile adds its steam (35.11) and nothing for a user's own facility
    assert inferred[inferred["facility_id"] == "P"]["resource"].tolist() == ["heat.steam"]
    assert "U" not in set(inferred["facility_id"])
    assert len(combined) == 3 and missing.empty


def test_a_profile_never_repeats_a_resource_in_the_same_direction(tax):
    fac = _facilities(("P", "Voima", "35.30", 25.0, 61.0))
    flows = _register(("P", "supply", "mineral.fly_ash", 3000.0, "t/yr"),
                      ("P", "supply", "heat.hot_water", 5.0, "MWh/yr"))
    combined, _ = infer_flows(fac, flows, tax)
    inferred = combined[combined["basis"] == "inferred"]
    assert inferred[["direction", "resource"]].values.tolist() == [["demand", "biomass.solid_fuel"]]


def test_the_register_activity_wins_over_the_nace_class_and_none_means_nothing(tax):
    fac = _facilities(("C", "CHP", "35.11", 25.0, 61.0), ("W", "Waste site", "35.11", 25.01, 61.0),
                      ("N", "No activity profile", "35.11", 25.02, 61.0))
    fac["eprtr_activity"] = ["1(c)", "5(c)", "2(d)"]
    combined, missing = infer_flows(fac, declared_flows(), tax)
    inferred = combined[combined["basis"] == "inferred"].set_index("facility_id")
    assert inferred.loc[["C"], "resource"].tolist() == ["heat.hot_water"]
    assert inferred.loc[["C"], "source"].tolist() == ["sector profile E-PRTR activity 1(c)"]
    assert "W" not in inferred.index                     # 5(c): nothing typical, no fall-back to 35.11
    assert inferred.loc[["N"], "resource"].tolist() == ["heat.steam"]   # no 2(d) profile: NACE decides
    assert missing.empty or set(missing["facility_id"]) <= {"W"}


def test_register_flows_are_recognised_by_their_origin():
    from geo.inference import register_derived

    flows = declared_flows(("A", "supply", "gas.co2", 1.0, "t/yr"), ("B", "supply", "gas.co2", 1.0, "t/yr"))
    assert not register_derived(flows).any()
    flows["origin"] = ["E-PRTR releases 2023: CO2 to air", ""]
    assert register_derived(flows).tolist() == [True, False]


def test_hotmaps_flows_count_as_register_flows_so_their_sites_get_the_profile(tax):
    from geo.hotmaps import ORIGIN

    fac = _facilities(("P", "Voima", "35.11", 25.0, 61.0), ("U", "Own figures", "35.11", 25.1, 61.0))
    flows = declared_flows(("P", "supply", "heat.hot_water", 9000.0, "MWh/yr"),
                           ("U", "supply", "heat.hot_water", 9000.0, "MWh/yr"))
    flows["origin"] = [ORIGIN + ": excess heat 100-200 °C", ""]
    flows["evidence"] = ["typical", "published"]
    combined, _ = infer_flows(fac, flows, tax)
    inferred = combined[combined["basis"] == "inferred"]
    assert inferred["facility_id"].tolist() == ["P"]  # the user's own flow wins for U
    assert inferred["resource"].tolist() == ["heat.steam"]
    assert inferred["evidence"].tolist() == [""]


def test_an_imported_register_matches_with_inferred_flows_and_no_landfill_takes_fuel(bundled, tmp_path):
    from geo.dataset import load_dataset
    from geo.eprtr import import_eprtr, write_geopackage
    from geo.inference import register_derived

    header = ("Facility_INSPIRE_ID;parentCompanyName;nameOfFeature;mainActivityCode;mainActivityName;"
              "pointGeometryLon;pointGeometryLat;countryCode;reportingYear")
    (tmp_path / "f.csv").write_text("\n".join([
        header,
        "ID/1;Waste Oy;Waste centre;5(c);Disposal;25.00;60.30;FI;2023",
        "ID/2;Waste Oy;Landfill;5(d);Landfills;25.01;60.30;FI;2023",
        "ID/3;Sement Oy;Cement works;3(c)(i);Cement;25.02;60.30;FI;2023",
        "ID/4;Valimo Oy;Foundry;2(d);Foundry;25.03;60.30;FI;2023",
        "ID/5;Voima Oy;CHP plant;1(c);Combustion;25.04;60.30;FI;2023",
    ]) + "\n", encoding="utf-8")
    (tmp_path / "t.csv").write_text(
        "Facility_INSPIRE_ID;reportingYear;wasteClassificationCode;wasteTreatmentCode;totalWasteQuantityTNE\n"
        "ID/1;2023;NONHW;R;10000\nID/5;2023;NONHW;R;5000\n", encoding="utf-8")
    imported = import_eprtr(tmp_path / "f.csv", waste_transfers=tmp_path / "t.csv")
    write_geopackage(imported, tmp_path / "register.gpkg")
    data = load_dataset(tmp_path / "register.gpkg")
    assert register_derived(data.flows).all()
    result = match(data, taxonomy=bundled, infer=True)
    links = result.links
    names = imported.facilities.set_index("facility_id")["name"]
    receivers = links.assign(receiver=links["demand_facility_id"].map(names))
    rdf = receivers[receivers["resource"] == "material.refuse_derived_fuel"]
    # the kiln takes it; a CHP plant would need a waste permit that its sector does not tell
    assert set(rdf["receiver"]) == {"Cement works"}
    assert not {"Landfill", "Foundry"} & set(receivers.loc[receivers["demand_resource"].isin(
        ["material.refuse_derived_fuel", "biomass.solid_fuel", "gas.natural_gas"]), "receiver"])
    # the CHP plant reported ash only, yet gets its profile: steam is on offer
    chp = result.flows[(result.flows["facility_id"] == names.index[names == "CHP plant"][0])]
    assert {"mineral.fly_ash", "mineral.bottom_ash", "heat.steam"} <= set(chp["resource"])
