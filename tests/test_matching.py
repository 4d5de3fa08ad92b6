"""Candidate search against an independent brute-force oracle."""

from __future__ import annotations

import csv
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from geo import settings
from geo.matching import find_candidates, laea_margin, supply_buffers, supply_reach
from tests.conftest import FIXTURE_KB


def _random_dataset(seed: int, n_facilities: int, n_flows: int, tax) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    centres = np.array([[25.5, 65.0], [22.3, 60.4], [12.0, 55.6], [10.0, 69.5], [24.1, 56.9], [18.5, 54.3]])
    which = rng.integers(0, len(centres), n_facilities)
    spread = rng.normal(0, 0.35, (n_facilities, 2)) * np.array([2.0, 1.0])
    lonlat = centres[which] + spread
    fac = gpd.GeoDataFrame(
        {"facility_id": [f"F{i}" for i in range(n_facilities)], "name": [f"Site {i}" for i in range(n_facilities)],
         "nace": "", "country": "", "cluster": ""},
        geometry=gpd.points_from_xy(lonlat[:, 0], lonlat[:, 1]), crs=settings.WGS84,
    )
    leaves = list(tax.leaves.index)
    demand_codes = leaves + ["heat", "organic"]
    direction = rng.choice(["supply", "demand"], n_flows)
    resource = np.where(direction == "supply", rng.choice(leaves, n_flows), rng.choice(demand_codes, n_flows))
    override = np.where(rng.random(n_flows) < 0.15, rng.uniform(5, 60, n_flows), np.nan)
    flows = pd.DataFrame(
        {"flow_id": [f"w{i}" for i in range(n_flows)],
         "facility_id": [f"F{i}" for i in rng.integers(0, n_facilities, n_flows)],
         "direction": direction, "resource": resource, "quantity": np.nan,
         "unit": [tax.unit(r) for r in resource], "ewc": "", "description": "",
         "max_distance_km": override, "confidential": False, "basis": "declared"}
    )
    return fac, flows


def _haversine(lon1, lat1, lon2, lat2):
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(a))


def _oracle(fac, flows, max_km=None):
    """Pairs by brute force: every supply against every demand, one haversine at a time."""
    resources = {r["code"]: r for r in csv.DictReader(open(FIXTURE_KB / "resources.csv", encoding="utf-8"))}
    rules = {(r["supply"], r["demand"]) for r in csv.DictReader(open(FIXTURE_KB / "compatibility.csv", encoding="utf-8"))}
    where = {f: (p.x, p.y) for f, p in zip(fac["facility_id"], fac.geometry)}

    def accepts(s, d):
        group = s.split(".")[0]
        return s == d or d == group or (s, d) in rules or (group, d) in rules

    pairs = set()
    for s in flows[flows["direction"] == "supply"].itertuples():
        limit = s.max_distance_km if not math.isnan(s.max_distance_km) else (
            max_km if max_km is not None else float(resources[s.resource]["max_distance_km"]))
        for d in flows[flows["direction"] == "demand"].itertuples():
            if s.facility_id == d.facility_id or not accepts(s.resource, d.resource):
                continue
            this = min(limit, d.max_distance_km) if not math.isnan(d.max_distance_km) else limit
            (x1, y1), (x2, y2) = where[s.facility_id], where[d.facility_id]
            km = _haversine(x1, y1, x2, y2)
            if km * settings.ROAD_CIRCUITY_FACTOR <= this:
                pairs.add((s.flow_id, d.flow_id))
    return pairs


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_candidates_equal_brute_force(tax, seed):
    fac, flows = _random_dataset(seed, 150, 500, tax)
    candidates, stats = find_candidates(fac, flows, tax)
    found = set(zip(candidates["supply_flow_id"], candidates["demand_flow_id"]))
    assert found == _oracle(fac, flows)
    assert len(found) == len(candidates) > 50
    assert stats.within_buffer - stats.beyond_max_road_distance == len(candidates)


def test_global_max_km_replaces_defaults(tax):
    fac, flows = _random_dataset(7, 120, 400, tax)
    candidates, _ = find_candidates(fac, flows, tax, max_km=12.0)
    found = set(zip(candidates["supply_flow_id"], candidates["demand_flow_id"]))
    assert found == _oracle(fac, flows, max_km=12.0)
    own = candidates["supply_max_distance_km"].isna() & candidates["demand_max_distance_km"].isna()
    assert (candidates.loc[own, "max_distance_km"] == 12.0).all()


def _two(tax, km_north: float, lat: float = 68.0, supply="heat.hot_water", demand="heat.hot_water"):
    # along a meridian the great-circle distance is the radius times the latitude difference
    lon2, lat2 = 25.0, lat + math.degrees(km_north / 6371.0088)
    fac = gpd.GeoDataFrame(
        {"facility_id": ["S", "D"], "name": ["Supplier", "Receiver"], "nace": "", "country": "", "cluster": ""},
        geometry=gpd.points_from_xy([25.0, lon2], [lat, lat2]), crs=settings.WGS84,
    )
    flows = pd.DataFrame(
        {"flow_id": ["s", "d"], "facility_id": ["S", "D"], "direction": ["supply", "demand"],
         "resource": [supply, demand], "quantity": np.nan, "unit": "MWh/yr", "ewc": "", "description": "",
         "max_distance_km": np.nan, "confidential": False, "basis": "declared"}
    )
    return fac, flows


def test_straight_line_inside_buffer_but_road_too_long_drops_out_and_is_counted(tax):
    # hot water reaches 20 km; 17 km straight is 22.1 km by the estimated road
    candidates, stats = find_candidates(*_two(tax, 17.0), tax)
    assert candidates.empty
    assert stats.within_buffer == 1 and stats.beyond_max_road_distance == 1
    candidates, stats = find_candidates(*_two(tax, 15.0), tax)
    assert len(candidates) == 1 and stats.beyond_max_road_distance == 0
    row = candidates.iloc[0]
    assert row["straight_km"] == pytest.approx(15.0, rel=1e-6)
    assert row["distance_km"] == pytest.approx(19.5, rel=1e-6)
    assert row["travel_time_min"] == pytest.approx(19.5, rel=1e-6)
    assert row["distance_source"] == "estimate"


def test_far_north_pairs_near_the_limit_are_not_lost(tax):
    # at 70N LAEA shrinks distances; a pair 15.38 km apart (20.0 km by road) must still match
    fac, flows = _two(tax, 20.0 / settings.ROAD_CIRCUITY_FACTOR - 0.001, lat=70.5)
    candidates, _ = find_candidates(fac, flows, tax)
    assert len(candidates) == 1


def test_margin_grows_with_distance_from_the_projection_centre():
    assert laea_margin(np.array([10.0]), np.array([52.0])) == pytest.approx(1.01)
    assert 1.02 < laea_margin(np.array([25.0]), np.array([70.0])) < 1.05


def test_same_facility_and_incompatible_pairs_are_not_links(tax):
    fac, flows = _two(tax, 1.0, supply="heat.hot_water", demand="mineral.fly_ash")
    assert find_candidates(fac, flows, tax)[0].empty
    fac, flows = _two(tax, 1.0, supply="heat.steam", demand="heat.hot_water")
    flows.loc[1, "facility_id"] = "S"
    candidates, stats = find_candidates(fac, flows, tax)
    assert candidates.empty and stats.same_facility == 1


def test_substitution_and_group_rules_carry_their_reason(tax):
    fac, flows = _two(tax, 2.0, supply="heat.steam", demand="heat.hot_water")
    row = find_candidates(fac, flows, tax)[0].iloc[0]
    assert (row["rule"], row["strength"]) == ("substitution", 0.9)
    assert row["reason"].startswith("Steam can heat water")
    fac, flows = _two(tax, 2.0, supply="heat.steam", demand="heat")
    row = find_candidates(fac, flows, tax)[0].iloc[0]
    assert (row["rule"], row["strength"]) == ("group", 1.0)


def test_wrong_crs_is_an_error(tax):
    fac, flows = _two(tax, 2.0)
    with pytest.raises(ValueError, match="EPSG:4326"):
        find_candidates(fac.to_crs(settings.METRIC_CRS), flows, tax)


def test_supply_buffers_have_the_right_radius(tax):
    fac, flows = _two(tax, 2.0)
    buffers = supply_buffers(fac, flows, tax)
    assert buffers.crs.to_epsg() == 4326
    area_km2 = buffers.to_crs(settings.METRIC_CRS).area.iloc[0] / 1e6
    assert area_km2 == pytest.approx(math.pi * 20.0**2, rel=0.01)


def test_supply_reach_takes_the_farthest_flow_of_each_group(tax):
    fac = pd.DataFrame({"facility_id": ["S", "T", "X"], "lon": [25.0, 26.0, 27.0], "lat": [61.0, 62.0, 63.0]})
    default_heat = float(tax.resources.loc["heat.hot_water", "max_distance_km"])
    flows = pd.DataFrame({
        "flow_id": list("abcde"), "facility_id": ["S", "S", "S", "T", "Y"],
        "direction": ["supply", "supply", "demand", "supply", "supply"],
        "resource": ["heat.hot_water", "heat.hot_water", "heat.hot_water", "heat.hot_water", "heat.hot_water"],
        "max_distance_km": [np.nan, 3.0, 99.0, 7.5, 50.0], "basis": "declared", "confidential": False,
    })
    reach = supply_reach(fac, flows, tax)
    # one row per supplier and group; demand flows and facilities not given (Y) play no part
    assert reach[["facility_id", "group", "reach_km"]].values.tolist() == [["S", "heat", default_heat],
                                                                           ["T", "heat", 7.5]]
    assert reach.loc[0, "resources"] == "heat.hot_water" and (reach["lon"] == [25.0, 26.0]).all()
    assert reach["group_label"].iloc[0] == tax.resources.loc["heat", "label"]
    assert supply_reach(fac, flows[flows["direction"] == "demand"], tax).empty


def test_road_network_replaces_the_estimate_and_drops_long_detours(tax):
    """On a one-way ring, A -> B is one side (111 m) but B -> A goes round three sides (334 m)."""
    from geo.network import network_from_edges
    from tests.test_network import grid_nodes, ways

    ring = ways((1, 2, "residential", "yes"), (2, 5, "residential", "yes"), (5, 4, "residential", "yes"),
                (4, 1, "residential", "yes"))
    net = network_from_edges(grid_nodes(), ring, directed=False, source="ring")
    fac = gpd.GeoDataFrame(
        {"facility_id": ["A", "B"], "name": ["A", "B"], "nace": "", "country": "", "cluster": ""},
        geometry=gpd.points_from_xy([25.0, 25.002], [60.0, 60.0]), crs=settings.WGS84,
    )
    flows = pd.DataFrame(
        {"flow_id": ["a", "b", "c", "d"], "facility_id": ["A", "B", "B", "A"],
         "direction": ["supply", "demand", "supply", "demand"], "resource": "heat.hot_water", "quantity": np.nan,
         "unit": "MWh/yr", "ewc": "", "description": "", "max_distance_km": 0.25, "confidential": False,
         "basis": "declared"}
    )
    candidates, stats = find_candidates(fac, flows, tax, network=net)
    assert stats.within_buffer == 2 and stats.by_road == 2 and stats.estimated == 0
    assert stats.beyond_max_road_distance == 1
    assert candidates["supply_facility_id"].tolist() == ["A"]
    row = candidates.iloc[0]
    assert row["distance_source"] == "road"
    assert row["distance_km"] == pytest.approx(0.1114, rel=2e-3)
    assert row["distance_km"] >= row["straight_km"]


@pytest.mark.parametrize(("precision", "evidence"), [
    (("site", "town"), ("published", "typical")),
    (("address", ""), ("", "published")),
])
def test_each_end_of_a_candidate_keeps_its_evidence_and_precision(tax, precision, evidence):
    fac, flows = _two(tax, 2.0)
    fac["precision"], flows["evidence"] = list(precision), list(evidence)
    row = find_candidates(fac, flows, tax)[0].iloc[0]
    assert (row["supply_precision"], row["demand_precision"]) == precision
    assert (row["supply_evidence"], row["demand_evidence"]) == evidence


def test_evidence_and_precision_reach_the_links_from_the_files(tax, write):
    from geo.dataset import load_dataset
    from geo.pipeline import LINK_COLUMNS, match

    facilities = write("facilities.csv", "facility_id;name;lat;lon;nace;country;precision\n"
                                         "S;Sahaus;62.60;25.72;16.10;FI;site\n"
                                         "K;Kaukolämpö;62.61;25.73;35.30;FI;town\n"
                                         "V;Voima;62.62;25.74;35.11;FI;\n")
    flows = write("flows.csv", "facility_id;direction;resource;quantity;unit;evidence\n"
                               "S;supply;heat.hot_water;5000;MWh/yr;published\n"
                               "K;demand;heat.hot_water;8000;MWh/yr;typical\n"
                               "V;demand;heat.hot_water;;MWh/yr;\n")
    data = load_dataset(facilities, flows, taxonomy=tax)
    assert data.report.ok, data.report.format()
    links = match(data, taxonomy=tax).links.set_index("demand_facility_id")
    ends = ["supply_evidence", "supply_precision", "demand_evidence", "demand_precision"]
    assert links.loc["K", ends].tolist() == ["published", "site", "typical", "town"]
    assert links.loc["V", ends].tolist() == ["published", "site", "", ""]  # not stated: empty, never NaN
    assert [c for c in links.reset_index().columns if c in ends] == [c for c in LINK_COLUMNS if c in ends]


def test_files_without_evidence_or_precision_give_empty_link_columns(tax):
    from geo.pipeline import match
    from geo.schema import Dataset

    fac, flows = _two(tax, 2.0)
    links = match(Dataset(fac, flows), taxonomy=tax).links
    assert len(links) == 1
    assert links[["supply_evidence", "supply_precision", "demand_evidence", "demand_precision"]].eq("").all(axis=None)
