"""Road or sea: bulk by-products between two quays may go by ship."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from geo import settings
from geo.distance import great_circle_km
from geo.matching import find_candidates
from geo.scoring import explain, score_links

# Kalundborg's power station and a cement works across the Kattegat, about 170 km apart in a straight line;
# a third plant 8 km from the power station.
SITES = {"ASN": (11.087, 55.669), "CEM": (9.985, 57.047), "NEAR": (11.20, 55.64)}


def _case(quays: dict[str, bool], *, tax):
    fac = gpd.GeoDataFrame(
        {"facility_id": list(SITES), "name": ["Power station", "Cement works", "Block plant"],
         "nace": ["35.11", "23.51", "23.51"], "country": "DK", "cluster": "", "quay": [quays[f] for f in SITES]},
        geometry=gpd.points_from_xy([p[0] for p in SITES.values()], [p[1] for p in SITES.values()]),
        crs=settings.WGS84,
    )
    flows = pd.DataFrame({
        "flow_id": ["s", "d1", "d2"], "facility_id": ["ASN", "CEM", "NEAR"], "direction": ["supply", "demand", "demand"],
        "resource": ["mineral.fly_ash", "mineral.cement_raw_materials", "mineral.cement_raw_materials"],
        "quantity": [50_000.0, 40_000.0, 10_000.0], "unit": "t/yr", "ewc": "", "description": "",
        "max_distance_km": np.nan, "confidential": False, "basis": "declared",
    })
    candidates, _ = find_candidates(fac, flows, tax)
    return score_links(candidates, tax).set_index("demand_facility_id")


def test_without_quays_a_far_receiver_is_out_of_reach(tax):
    links = _case({"ASN": False, "CEM": False, "NEAR": False}, tax=tax)
    assert list(links.index) == ["NEAR"]
    assert links.loc["NEAR", "transport_mode"] == "truck_bulk"


def test_between_two_quays_the_far_receiver_is_served_by_ship(tax):
    links = _case({"ASN": True, "CEM": True, "NEAR": False}, tax=tax)
    assert sorted(links.index) == ["CEM", "NEAR"]
    ship = links.loc["CEM"]
    straight = great_circle_km(*SITES["ASN"], *SITES["CEM"])
    assert ship["transport_mode"] == "ship_bulk"
    assert ship["distance_source"] == "sea (estimated)"
    assert ship["distance_km"] == pytest.approx(straight * settings.SEA_DETOUR_FACTOR)
    assert ship["max_distance_km"] == settings.SHIP_MAX_KM
    # fixture ship: 0.02 EUR and 0.015 kg CO2 per t-km, 6 EUR/t handling; 40,000 t matchable
    sea = straight * settings.SEA_DETOUR_FACTOR
    assert ship["transport_cost_eur_per_yr"] == pytest.approx(40_000 * (0.02 * sea + 6))
    assert ship["transport_co2_t_per_yr"] == pytest.approx(40_000 * 0.015 * sea / 1000)
    assert ship["travel_time_min"] == pytest.approx(sea / settings.SHIP_SPEED_KMH * 60)
    assert "km away by sea (estimated)" in explain(links.reset_index(), tax).iloc[list(links.index).index("CEM")]


def test_a_near_receiver_with_a_quay_still_goes_by_road(tax):
    # 8 km: the truck (0.1 EUR/t-km) is far cheaper than loading and unloading a ship (6 EUR/t)
    links = _case({"ASN": True, "CEM": True, "NEAR": True}, tax=tax)
    assert links.loc["NEAR", "transport_mode"] == "truck_bulk"
    assert links.loc["NEAR", "distance_source"] == "estimate"
    assert links.loc["CEM", "transport_mode"] == "ship_bulk"
