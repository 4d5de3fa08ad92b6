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


def _score(tax, *rows, weights=None):
    return score_links(pd.DataFrame(list(rows)), tax, weights=weights)


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
    }
    expected = 100 * sum(getattr(w, k) * v for k, v in parts.items()) / (w.co2 + w.value + w.distance + w.compatibility)
    assert link["score"] == pytest.approx(round(expected, 1))


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


def test_unknown_quantity_stays_unknown_and_scores_lower(tax):
    known = _candidate()
    unknown = _candidate(supply_quantity=np.nan, demand_quantity=np.nan, supply_flow_id="s2")
    links = _score(tax, known, unknown)
    assert links.loc[1, "quantity_basis"] == "unknown"
    assert np.isnan(links.loc[1, ["quantity", "co2_saved_t_per_yr", "value_eur_per_yr",
                                  "transport_cost_eur_per_yr"]].astype(float)).all()
    assert links.loc[1, "score"] < links.loc[0, "score"]


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
    only_distance = ScoringWeights(co2=0, value=0, distance=1, compatibility=0)
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
        "saving about 420 t CO2 and EUR 23,000 a year; fly ash can replace part of the clinker in cement."
    )
    assert why.iloc[1] == (
        "Voima Oy could supply fly ash to Sementti Ab, 13 km away by road (estimated); "
        "quantities are not known yet, and fly ash can replace part of the clinker in cement."
    )


def test_approx_and_annuity():
    assert [approx(x) for x in (0, 0.123, 7.26, 1234, 987654)] == ["0", "0.12", "7.3", "1,200", "990,000"]
    assert annuity_factor(0.0, 20) == pytest.approx(0.05)
    assert annuity_factor(0.05, 30) == pytest.approx(0.0650514, rel=1e-5)
