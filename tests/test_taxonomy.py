"""The bundled knowledge base holds what the engine promises."""

from __future__ import annotations

import pandas as pd
import pytest

from geo.errors import KnowledgeBaseError
from geo.taxonomy import load_taxonomy
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
