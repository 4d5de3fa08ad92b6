"""The bundled knowledge base holds what the engine promises."""

from __future__ import annotations

import pandas as pd
import pytest

from geo.errors import KnowledgeBaseError
from geo.taxonomy import activity_prefixes, load_taxonomy
from tests.conftest import FIXTURE_KB, shared

REQUIRED = """heat.steam heat.hot_water heat.low_temperature gas.co2 gas.hydrogen gas.biogas
biomass.wood_residues biomass.bark biomass.sawdust biomass.agricultural_residues
organic.food_processing_residues organic.fermentation_residues organic.fish_residues organic.manure
organic.sludge organic.digestate mineral.fly_ash mineral.bottom_ash mineral.slag mineral.gypsum
mineral.lime_residues mineral.silica_fume mineral.construction_waste chemical.sulfuric_acid
chemical.sulfur water.process_water water.cooling_water water.treated_wastewater
material.metal_scrap material.plastics material.paper_fibres""".split()
DIVISIONS = "01 02 03 10 11 16 17 19 20 21 22 23 24 25 35 36 37 38 52".split()


def test_required_resources_have_unit_distance_mode_factors_and_source(bundled):
    leaves = bundled.leaves
    assert set(REQUIRED) <= set(leaves.index)
    for column in ("unit", "transport_mode", "source"):
        assert (leaves[column] != "").all(), column
    assert leaves[["max_distance_km", "avoided_co2_kg_per_unit", "value_eur_per_unit"]].notna().all().all()
    # heat travels far less than bulk solids
    assert leaves.at["heat.hot_water", "max_distance_km"] <= 20
    assert leaves.at["heat.steam", "max_distance_km"] < leaves.at["mineral.fly_ash", "max_distance_km"]


def test_ewc_map_is_large_and_maps_the_classics(bundled):
    assert len(bundled.ewc) >= 60
    assert bundled.resource_for_ewc("100102") == "mineral.fly_ash"
    assert bundled.resource_for_ewc("100105") == "mineral.gypsum"


def test_ewc_codes_exist_in_the_european_list_of_waste(bundled):
    codes = pd.read_csv(shared("codes", "ewc_codes.csv"), dtype=str)["code"]
    assert set(bundled.ewc.index) <= set(codes)


def test_sector_profiles_cover_the_divisions_and_real_nace_codes(bundled):
    divisions = {code[:2] for code in bundled.profiles["nace"]}
    assert set(DIVISIONS) <= divisions
    nace = pd.read_csv(shared("codes", "nace_rev2.csv"), dtype=str)["Code"]
    assert set(bundled.profiles["nace"]) <= set(nace)


def test_every_profile_line_has_a_source_and_activity_keys_are_register_activities(bundled):
    profiles = pd.concat([bundled.profiles, bundled.activity_profiles])
    assert (profiles["source"].str.match(r"^\[K\d+\]")).all()
    assert (profiles["note"].str.len() > 3).all()
    activities = pd.read_csv("data/knowledge/eprtr_activities.csv", dtype=str)["activity"]
    assert set(bundled.activity_profiles["activity"]) <= set(activities)


def _demands(tax, nace: str, activity: str = "") -> set[str]:
    rows = tax.profile_rows[tax.profile_rows["key"] == tax.profile_key(nace, activity)]
    return set(rows.loc[rows["direction"] == "demand", "resource"])


def _accepts(tax, supply: str, nace: str, activity: str = "") -> bool:
    """Whether a facility of this sector demands anything the supplied resource can serve."""
    compat = tax.compatibility
    serves = set(compat.loc[compat["supply_resource"] == supply, "demand_resource"])
    return bool(serves & _demands(tax, nace, activity))


FUELS = {"material.refuse_derived_fuel", "biomass.solid_fuel", "gas.natural_gas", "gas.fuel_gas", "chemical.solvents"}


def test_power_stations_supply_steam_as_well_as_hot_water(bundled):
    rows = bundled.profile_rows
    power = rows[(rows["key"] == bundled.profile_key("35.11")) & (rows["direction"] == "supply")]
    assert {"heat.steam", "heat.hot_water", "mineral.fly_ash"} <= set(power["resource"])
    # the register's combustion plants (1(c) -> 35.11) get the same
    assert bundled.profile_key("35.11", "1(c)") == "35.11"


@pytest.mark.parametrize("nace, activity, what", [
    ("38.21", "5(d)", "landfill"),
    ("38.22", "5(a)", "hazardous-waste site"),
    ("38.21", "5(c)", "disposal of non-hazardous waste"),
    ("24.51", "2(d)", "foundry"),
    ("24.51", "", "foundry known by NACE only"),
    ("35.21", "", "biogas plant"),
    ("47.11", "", "supermarket"),
])
def test_receivers_that_do_not_burn_waste_demand_no_solid_or_gas_fuel(bundled, nace, activity, what):
    assert not (_demands(bundled, nace, activity) - {"chemical.solvents"}) & FUELS, what


def test_landfill_and_mixed_waste_activities_refine_the_nace_profile(bundled):
    assert bundled.profile_key("38.21", "5(d)") == "eprtr:5(d)"
    assert bundled.profile_key("38.21", "5(b)") == "38.21"        # an incinerator keeps the NACE profile
    assert "material.refuse_derived_fuel" in _demands(bundled, "38.21", "5(b)")
    assert _demands(bundled, "38.21", "5(c)") == set()            # 'none': no fallback to the incinerator
    assert bundled.profile_key("38.21", "5(c)") == "eprtr:5(c)"
    assert activity_prefixes("4(a)(viii)") == ["4(a)(viii)", "4(a)"]


@pytest.mark.parametrize("nace, activity, accepts", [
    ("23.51", "", True),       # cement kiln
    ("38.21", "5(b)", True),   # waste-to-energy
    ("35.21", "", False),      # biogas plant
    ("24.51", "2(d)", False),  # foundry
    ("38.21", "5(d)", False),  # landfill
    ("38.22", "5(a)", False),  # hazardous-waste site
    ("20.16", "4(a)(viii)", False),
    ("35.11", "1(c)", False),  # CHP: only with a waste permit, which the sector does not tell
    ("35.30", "", False),      # heat-only boiler plant
])
def test_refuse_derived_fuel_goes_only_to_plants_that_burn_it(bundled, nace, activity, accepts):
    assert _accepts(bundled, "material.refuse_derived_fuel", nace, activity) is accepts


def test_only_kilns_and_incinerators_demand_refuse_derived_fuel_outright(bundled):
    rows = bundled.profile_rows
    direct = rows[(rows["direction"] == "demand") & (rows["resource"] == "material.refuse_derived_fuel")]
    assert set(direct["key"]) == {"23.51", "23.52", "38.21"}
    compat = bundled.compatibility.set_index(["supply_resource", "demand_resource"])
    assert ("material.refuse_derived_fuel", "gas.natural_gas") not in compat.index
    assert ("material.refuse_derived_fuel", "biomass.solid_fuel") not in compat.index   # a waste permit is needed


def test_digesters_take_digestible_feedstock(bundled):
    assert _accepts(bundled, "organic.food_processing_residues", "35.21")
    assert _accepts(bundled, "organic.manure", "35.21")
    assert not _accepts(bundled, "material.plastics", "35.21")


def test_polymer_plants_do_not_take_plastic_waste_as_feed(bundled):
    assert "material.plastics" not in _demands(bundled, "20.16", "4(a)(viii)")
    assert "material.plastics" in _demands(bundled, "22.22")


def test_documented_exchange_streams_have_codes(bundled):
    for code in ("gas.fuel_gas", "water.demineralised", "chemical.hydrochloric_acid", "chemical.ammonium_salts",
                 "mineral.spent_catalyst", "chemical.solvents", "organic.molasses", "chemical.lignin",
                 "mineral.spent_pot_lining", "mineral.metal_residues", "mineral.soil", "material.textiles"):
        assert code in bundled.leaves.index
    assert bundled.resource_for_ewc("161101") == "mineral.spent_pot_lining"
    assert bundled.resource_for_ewc("160802") == "mineral.spent_catalyst"
    assert bundled.resource_for_ewc("200113") == "chemical.solvents"


def test_a_profile_that_says_none_and_lists_flows_is_refused(tmp_path):
    for f in FIXTURE_KB.iterdir():
        (tmp_path / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    profiles = tmp_path / "sector_profiles.csv"
    profiles.write_text(profiles.read_text() + "eprtr:5(c),supply,heat.steam,Contradiction,[T1]\n")
    with pytest.raises(KnowledgeBaseError, match=r"eprtr:5\(c\)|5\(c\) says 'none'"):
        load_taxonomy(tmp_path)
    profiles.write_text(profiles.read_text().replace("eprtr:5(c),supply", "eprtr:5x,supply"))
    with pytest.raises(KnowledgeBaseError, match="not an E-PRTR activity code"):
        load_taxonomy(tmp_path)


def test_rules_have_reasons_and_sources_and_heat_cascades(bundled):
    rules = bundled.rules
    assert (rules["reason"].str.len() > 10).all() and (rules["source"] != "").all()
    assert rules["strength"].between(0, 1).all()
    compat = bundled.compatibility.set_index(["supply_resource", "demand_resource"])
    assert ("heat.steam", "heat.hot_water") in compat.index
    assert ("heat.hot_water", "heat.low_temperature") in compat.index
    assert ("mineral.fly_ash", "mineral.cement_raw_materials") in compat.index
    assert ("organic.food_processing_residues", "organic.biogas_feedstock") in compat.index
    # a demand naming a group accepts any child
    assert compat.loc[("organic.manure", "organic"), "rule"] == "group"


def test_suggestions_for_typos(bundled):
    assert bundled.suggest("heat.stem") == "heat.steam"
    assert bundled.suggest("mineral.flyash") == "mineral.fly_ash"
    assert bundled.suggest("zzzz") is None


def test_inconsistent_knowledge_base_is_refused(tmp_path):
    for f in FIXTURE_KB.iterdir():
        (tmp_path / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    rules = tmp_path / "compatibility.csv"
    rules.write_text(rules.read_text() + "heat.steam,heat.nope,0.5,Broken rule for the test.,[T1]\n")
    with pytest.raises(KnowledgeBaseError, match="unknown resource 'heat.nope'"):
        load_taxonomy(tmp_path)


@pytest.mark.parametrize("supply, nace, what", [
    ("water.demineralised", "35.11", "power station: boiler make-up water"),
    ("organic.fermentation_residues", "20.15", "compound-fertiliser plant: vinasse"),
    ("biomass.agricultural_residues", "20.15", "compound-fertiliser plant: bagasse"),
    ("organic.sludge", "20.15", "compound-fertiliser plant: filter mud"),
    ("biomass.agricultural_residues", "01.46", "pig farm: straw for bedding"),
    ("mineral.lime_residues", "24.10", "steelworks: lime as flux"),
    ("chemical.sulfur", "24.45", "nickel refinery: leaching acid"),
])
def test_documented_general_practice_is_in_the_profiles(bundled, supply, nace, what):
    assert _accepts(bundled, supply, nace), what


def test_utilities_and_mills_supply_what_their_neighbours_reuse(bundled):
    def supplies(nace):
        rows = bundled.profile_rows
        return set(rows.loc[(rows["key"] == bundled.profile_key(nace)) & (rows["direction"] == "supply"), "resource"])
    assert "organic.sludge" in supplies("36.00")
    assert "water.treated_wastewater" in supplies("17.11")
    assert "water.demineralised" in supplies("10.51")
    # a refinery is a net steam user: its profile does not offer steam
    assert "heat.steam" not in supplies("19.20")
