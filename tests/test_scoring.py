"""Scores, economics and sentences on tiny hand-checked candidates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geo.scoring import annuity_factor, approx, explain, rank_links, score_links
from geo.settings import ScoringWeights


def _candidate(**over):
    row = {
        "supply_flow_id": "s1", "supply_facility_id": "A", "supply_name": "Voima Oy",
        "supply_resource": "mineral.fly_ash", "supply_quantity": 1000.0, "supply_unit": "t/yr",
        "supply_basis": "declared", "supply_confidential": False,
        "demand_flow_id": "d1", "demand_facility_id": "B", "demand_name": "Sementti Ab",
        "demand_resource": "mineral.cement_raw_materials", "demand_quantity": 600.0, "demand_unit": "t/yr",
        "demand_basis": "declared", "demand_confidential": False,
        "strength": 0.7, "rule": "substitution", "reason": "Fly ash can replace part of the clinker in cement.",
        "rule_source": "[T1]", "max_distance_km": 50.0, "straight_km": 10.0, "distance_km": 13.0,
        "travel_time_min": 13.0, "distance_source": "estimate", "unroutable_reason": "",
    }
    row.update(over)
    return row


#: Documented exchanges for the precedent tests: power station fly ash to cement at two parks.
PRECEDENTS = pd.DataFrame({
    "park": ["Park A", "Park B", "Park C"], "country": ["DK", "AU", "FI"],
    "supplier_nace": ["35.11", "35.11", "24.10"], "receiver_nace": ["23.51", "23.51", "23.51"],
    "resource": ["mineral.fly_ash", "mineral.fly_ash", "mineral.slag"],
    "exchange": ["Fly ash", "Fly ash", "Slag"], "source": ["[T]", "[T]", "[T]"],
})
NO_PRECEDENTS = PRECEDENTS.iloc[:0]


def _score(tax, *rows, weights=None, precedents=NO_PRECEDENTS):
    return score_links(pd.DataFrame(list(rows)), tax, weights=weights, precedents=precedents)


def test_truck_link_economics_by_hand(tax):
    link = _score(tax, _candidate()).iloc[0]
    # matchable = min(1000, 600) t; truck 0.1 EUR and 0.1 kg CO2 per t-km over 13 km
    assert (link["quantity"], link["unit"], link["quantity_basis"]) == (600.0, "t/yr", "both")
    assert link["transport_cost_eur_per_yr"] == pytest.approx(600 * 13 * 0.1)
    assert link["transport_co2_t_per_yr"] == pytest.approx(600 * 13 * 0.1 / 1000)
    assert link["avoided_co2_t_per_yr"] == pytest.approx(600 * 700 / 1000)
    assert link["co2_saved_t_per_yr"] == pytest.approx(420 - 0.78)
    assert link["value_eur_per_yr"] == pytest.approx(600 * 40 - 780)
    w = ScoringWeights()
    parts = {
        "co2": 1 - np.exp(-(420 - 0.78) / w.reference_co2_t_per_yr),
        "value": 1 - np.exp(-(24000 - 780) / w.reference_value_eur_per_yr),
        "distance": 0.5 ** (13 / 25),
        "compatibility": 0.7,
        "precedent": 0.0,
    }
    expected = 100 * sum(getattr(w, k) * v for k, v in parts.items()) / sum(getattr(w, k) for k in parts)
    assert link["score"] == pytest.approx(round(expected, 1))
    assert [link[f"part_{k}"] for k in parts] == pytest.approx([round(v, 3) for v in parts.values()])
    assert link["confidence"] == 1.0
    assert link["score_driver"] == "the short distance"  # 0.15 x 0.70 outweighs 0.25 x 0.34


def test_heat_pipe_cost_uses_capacity_class_and_annuity(tax):
    small = _candidate(supply_resource="heat.hot_water", supply_quantity=5000.0, supply_unit="MWh/yr",
                       demand_resource="heat.hot_water", demand_quantity=np.nan, demand_unit="MWh/yr",
                       strength=1.0, rule="same", reason="", distance_km=2.0, max_distance_km=20.0)
    big = dict(small, supply_quantity=50000.0)
    links = _score(tax, small, big)
    # fixture: 300 EUR/m below 10 000 MWh/yr, 600 above; 0 % interest over 30 years
    assert links["transport_cost_eur_per_yr"].tolist() == pytest.approx([300 * 2000 / 30, 600 * 2000 / 30])
    assert links["transport_co2_t_per_yr"].tolist() == [0.0, 0.0]
    assert links["quantity_basis"].tolist() == ["supply only", "supply only"]


def test_demand_in_other_unit_is_converted(tax):
    link = _score(tax, _candidate(supply_resource="biomass.bark", demand_resource="biomass.solid_fuel",
                                  supply_quantity=1000.0, demand_quantity=1000.0, demand_unit="MWh/yr")).iloc[0]
    # fixture: 2 MWh per t of biomass, so 1000 MWh of fuel need is 500 t of bark
    assert link["quantity"] == pytest.approx(500.0)


def test_unknown_quantity_stays_unknown_and_scores_as_a_mid_sized_exchange(tax):
    """An unknown quantity counts as ``unknown_quantity_part``: a known exchange of 1,000 t fly ash a year
    (about 700 t CO2 avoided) scores below it, one of 50,000 t above it."""
    small = _candidate(supply_quantity=1_000.0, demand_quantity=1_000.0)
    unknown = _candidate(supply_quantity=np.nan, demand_quantity=np.nan, supply_flow_id="s2")
    large = _candidate(supply_quantity=50_000.0, demand_quantity=50_000.0, supply_flow_id="s3")
    links = _score(tax, small, unknown, large)
    assert links.loc[1, "quantity_basis"] == "unknown"
    assert np.isnan(links.loc[1, ["quantity", "co2_saved_t_per_yr", "value_eur_per_yr",
                                  "transport_cost_eur_per_yr"]].astype(float)).all()
    assert links.loc[1, "part_co2"] == ScoringWeights().unknown_quantity_part
    assert links.loc[0, "score"] < links.loc[1, "score"] < links.loc[2, "score"]


def test_inferred_flows_lower_the_score_and_mark_the_basis(tax):
    declared = _candidate()
    inferred = _candidate(supply_basis="inferred", supply_flow_id="s2")
    both = _candidate(supply_basis="inferred", demand_basis="inferred", supply_flow_id="s3")
    links = _score(tax, declared, inferred, both)
    assert links["basis"].tolist() == ["declared", "mixed", "inferred"]
    assert links.loc[0, "score"] > links.loc[1, "score"] > links.loc[2, "score"]
    assert links.loc[1, "score"] == pytest.approx(links.loc[0, "score"] * 0.7, abs=0.11)


def test_farther_links_score_lower(tax):
    near = _candidate(distance_km=5.0)
    far = _candidate(distance_km=45.0, supply_flow_id="s2")
    links = _score(tax, near, far)
    assert links.loc[0, "score"] > links.loc[1, "score"]


def test_weights_are_configurable(tax):
    only_distance = ScoringWeights(co2=0, value=0, distance=1, compatibility=0, precedent=0)
    link = _score(tax, _candidate(distance_km=25.0), weights=only_distance).iloc[0]
    assert link["score"] == pytest.approx(50.0)


def test_ranking_is_by_score_then_distance_and_stable(tax):
    rows = [_candidate(supply_flow_id=f"s{i}", distance_km=d) for i, d in enumerate([20.0, 5.0, 20.0, 5.0])]
    links = _score(tax, *rows)
    ranked = rank_links(links)
    assert ranked["rank"].tolist() == [1, 2, 3, 4]
    assert ranked["supply_flow_id"].tolist() == ["s1", "s3", "s0", "s2"]
    assert rank_links(links, top=2)["supply_flow_id"].tolist() == ["s1", "s3"]


def test_why_names_what_who_how_far_how_much_and_the_saving(tax):
    links = _score(tax, _candidate(), _candidate(supply_quantity=np.nan, demand_quantity=np.nan))
    why = explain(links, tax)
    assert why.iloc[0] == (
        "Voima Oy could supply about 600 t/yr of fly ash to Sementti Ab, 13 km away by road (estimated), "
        "saving about 420 t CO2 and EUR 23,000 a year; fly ash can replace part of the clinker in cement. "
        "The score rests mostly on the short distance."
    )
    assert why.iloc[1] == (
        "Voima Oy could supply fly ash to Sementti Ab, 13 km away by road (estimated); "
        "quantities are not known yet, and fly ash can replace part of the clinker in cement. "
        "The score rests mostly on the short distance."
    )


def test_approx_and_annuity():
    assert [approx(x) for x in (0, 0.123, 7.26, 1234, 987654)] == ["0", "0.12", "7.3", "1,200", "990,000"]
    assert annuity_factor(0.0, 20) == pytest.approx(0.05)
    assert annuity_factor(0.05, 30) == pytest.approx(0.0650514, rel=1e-5)


def test_precedent_counts_parks_by_how_closely_sectors_and_resource_fit(tax):
    power_to_cement = _candidate(supply_nace="35.11", demand_nace="23.51")
    heat_plant_to_cement = _candidate(supply_nace="35.30", demand_nace="23.51", supply_flow_id="s2")
    slag_to_cement = _candidate(supply_nace="24.10", demand_nace="23.51", supply_flow_id="s3")
    unrelated = _candidate(supply_nace="47.11", demand_nace="23.51", supply_flow_id="s4")
    links = _score(tax, power_to_cement, heat_plant_to_cement, slag_to_cement, unrelated, precedents=PRECEDENTS)
    # exact class on both sides at two parks; the division only (35) on the supplier side: 0.6 per park;
    # a steelworks giving fly ash: slag was documented, same group (0.5) at one park; a shop: nothing
    assert links["precedent_parks"].tolist() == pytest.approx([2.0, 1.2, 0.5, 0.0])
    assert links["part_precedent"].tolist() == pytest.approx([round(1 - np.exp(-x), 3) for x in (2.0, 1.2, 0.5, 0.0)])
    assert links["precedent_at"].tolist() == ["Park A, Park B", "Park A, Park B", "Park C", ""]
    scores = links["score"].tolist()
    assert scores[0] > scores[1] > scores[2] > scores[3]
    why = explain(links, tax)
    assert "Such links run at Park A and Park B." in why.iloc[0]
    assert "Such links run" not in why.iloc[3]


def test_status_existing_same_operator_and_same_site_rank_after_new_ones(tax):
    new = _candidate(supply_flow_id="s1")
    existing = _candidate(supply_flow_id="s2", supply_partners="X, B")
    existing_by_demand = _candidate(supply_flow_id="s3", demand_partners="A")
    internal = _candidate(supply_flow_id="s4", supply_operator="Borealis Polymers Oy, Porvoo",
                          demand_operator="borealis polymers oy")
    neighbours = _candidate(supply_flow_id="s5", straight_km=0.2, distance_km=0.3)
    links = _score(tax, new, existing, existing_by_demand, internal, neighbours)
    assert links["status"].tolist() == ["new", "existing", "existing", "same operator", "same site"]
    ranked = rank_links(links)
    # the same-site link is nearer, so it leads; within-operator and running exchanges follow, whatever their score
    assert ranked["supply_flow_id"].tolist() == ["s5", "s1", "s4", "s2", "s3"]
    why = explain(ranked, tax)
    assert why.iloc[3].endswith("This exchange already runs. The score rests mostly on the short distance.")
    assert "Both facilities belong to one operator." in why.iloc[2]


def test_estimated_quantities_carry_their_range_and_weigh_less_than_stated_ones(tax):
    stated = _candidate(supply_flow_id="s1")
    estimated = _candidate(supply_flow_id="s2", supply_estimate="estimated", supply_quantity_low=500.0,
                           supply_quantity_high=2000.0, demand_quantity=np.nan)
    typical = dict(estimated, supply_flow_id="s3", supply_estimate="sector typical")
    links = _score(tax, stated, estimated, typical)
    assert links["quantity_estimate"].tolist() == ["", "estimated", "sector typical"]
    assert links.loc[1, ["quantity", "quantity_low", "quantity_high"]].tolist() == [1000.0, 500.0, 2000.0]
    assert links.loc[0, ["quantity_low", "quantity_high"]].tolist() == [600.0, 600.0]
    w = ScoringWeights()
    co2 = 1 - np.exp(-(700.0 - 1.3) / w.reference_co2_t_per_yr)
    assert links.loc[1, "part_co2"] == pytest.approx(round(co2 * w.one_sided_quantity_factor * 0.8, 3))
    assert links.loc[2, "part_co2"] == pytest.approx(round(co2 * w.one_sided_quantity_factor * 0.5, 3))
    why = explain(links, tax)
    assert "The quantity is an estimate from the facility's size." in why.iloc[1]
    assert "typical of the sector" in why.iloc[2]
