"""Competition-aware allocation against a brute-force optimum and hand-checked cases."""

from __future__ import annotations

import itertools

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from geo import settings
from geo.allocation import ALLOCATION_COLUMNS, CARBON_PRICE_EUR_PER_T, allocate, allocation_totals
from geo.errors import InputError
from geo.pipeline import match
from geo.schema import Dataset
from geo.scoring import matchable_quantity
from tests.conftest import declared_flows

PRICE = CARBON_PRICE_EUR_PER_T


def _links(tax, *rows):
    """A links frame with only the columns allocate reads, from per-unit figures.

    Each row names its flows, resource and the two sides' quantities and
    units, and gives ``eur`` and ``co2`` per unit of the link's quantity; the
    matchable quantity comes from geo.scoring as in a real run.
    """
    frame = pd.DataFrame(rows)
    defaults = {"resource": "mineral.fly_ash", "demand_unit": "t/yr", "score": 50.0, "distance_km": 10.0,
                "eur": 10.0, "co2": 0.5}
    for column, value in defaults.items():
        frame[column] = frame[column].fillna(value) if column in frame else value
    frame["supply_unit"] = frame["resource"].map(tax.unit)
    frame["supply_quantity"] = frame["supply_quantity"].astype(float)
    frame["demand_quantity"] = frame["demand_quantity"].astype(float)
    qty = matchable_quantity(frame.rename(columns={"resource": "supply_resource"}), tax)
    frame["quantity"], frame["unit"] = qty["quantity"], qty["unit"]
    frame["value_eur_per_yr"] = frame["quantity"] * frame.pop("eur")
    frame["co2_saved_t_per_yr"] = frame["quantity"] * frame.pop("co2")
    return frame


def _benefit(links, allocation):
    return float((allocation["allocated_value_eur_per_yr"] + PRICE * allocation["allocated_co2_saved_t_per_yr"]).sum())


# -- the brute-force oracle --------------------------------------------------------


def _constraints(links, tax):
    """Capacity rows written out from scratch: (coefficients, capacity) per flow of known quantity."""
    n = len(links)
    rows = []
    for _, group in links.groupby("supply_flow_id"):
        first = group.iloc[0]
        cap = first["supply_quantity"] * tax.conversion_factor(first["resource"], first["supply_unit"], first["unit"])
        if np.isfinite(cap):
            coef = np.zeros(n)
            coef[links.index.get_indexer(group.index)] = 1.0
            rows.append((coef, cap))
    for _, group in links.groupby("demand_flow_id"):
        cap = group["demand_quantity"].iloc[0]
        if np.isfinite(cap):
            coef = np.zeros(n)
            for label, link in group.iterrows():
                factor = tax.conversion_factor(link["resource"], link["unit"], link["demand_unit"])
                if np.isfinite(factor):
                    coef[links.index.get_loc(label)] = factor
            rows.append((coef, cap))
    return rows


def _vertex_optimum(links, tax):
    """Largest yearly benefit over every vertex of the feasible set (links of known quantity only).

    A vertex of {x : A x <= b, 0 <= x <= q} in n dimensions is where n
    independent constraints hold with equality: try every choice of n of
    them, keep the feasible solutions, and take the best.
    """
    known = links[links["quantity"].notna()]
    rows = _constraints(known, tax)
    q = known["quantity"].to_numpy(float)
    gain = ((known["value_eur_per_yr"] + PRICE * known["co2_saved_t_per_yr"]) / known["quantity"]).to_numpy(float)
    n = len(known)
    eye = np.eye(n)
    planes = [(c, b) for c, b in rows] + [(-eye[i], 0.0) for i in range(n)] + [(eye[i], q[i]) for i in range(n)]
    a_all = np.array([c for c, _ in planes])
    b_all = np.array([b for _, b in planes])
    best = 0.0
    for chosen in itertools.combinations(range(len(planes)), n):
        a, b = a_all[list(chosen)], b_all[list(chosen)]
        if abs(np.linalg.det(a)) < 1e-12:
            continue
        x = np.linalg.solve(a, b)
        if np.all(a_all @ x <= b_all + 1e-6 * np.maximum(1.0, np.abs(b_all))):
            best = max(best, float(gain @ x))
    return best


def _random_links(seed, tax):
    """A few supplies and demands of fly ash, bark and solid fuel, in t and MWh, some quantities unknown."""
    rng = np.random.default_rng(seed)
    n_supply, n_demand = rng.integers(1, 4), rng.integers(1, 4)
    supply_resource = rng.choice(["mineral.fly_ash", "biomass.bark", "biomass.solid_fuel"], n_supply)
    supply_q = np.where(rng.random(n_supply) < 0.15, np.nan, rng.integers(1, 20, n_supply) * 100.0)
    demand_unit = rng.choice(["t/yr", "MWh/yr"], n_demand)
    demand_q = np.where(rng.random(n_demand) < 0.15, np.nan, rng.integers(1, 20, n_demand) * 100.0)
    pairs = [(s, d) for s in range(n_supply) for d in range(n_demand) if rng.random() < 0.7]
    rng.shuffle(pairs)
    pairs = pairs[:5] or [(0, 0)]
    rows = [
        {"supply_flow_id": f"s{s}", "demand_flow_id": f"d{d}", "resource": supply_resource[s],
         "supply_quantity": supply_q[s], "demand_quantity": demand_q[d], "demand_unit": demand_unit[d],
         "eur": rng.normal(5, 10), "co2": rng.normal(0.05, 0.2), "score": rng.integers(0, 100)}
        for s, d in pairs
    ]
    return _links(tax, *rows)


@pytest.mark.parametrize("seed", range(30))
def test_allocation_reaches_the_brute_force_optimum_and_respects_every_capacity(tax, seed):
    links = _random_links(seed, tax)
    allocation = allocate(links, tax)
    assert _benefit(links, allocation) == pytest.approx(_vertex_optimum(links, tax), rel=1e-4, abs=1e-6)
    x = allocation["allocated_quantity"].fillna(0.0).to_numpy()
    for coef, cap in _constraints(links, tax):
        assert coef @ x <= cap * (1 + 1e-6) + 1e-9
    known = links["quantity"].notna()
    assert (x <= links["quantity"].fillna(0.0).to_numpy() * (1 + 1e-9)).all()
    assert allocation["allocated_quantity"].isna().eq(~known).all()


# -- hand-made cases -------------------------------------------------------------


def _facilities(*rows):
    frame = pd.DataFrame(rows, columns=["facility_id", "name", "lon", "lat"])
    frame[["nace", "country", "cluster"]] = ""
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame["lon"], frame["lat"]), crs=settings.WGS84)


def test_three_suppliers_competing_for_one_demand_fill_it_once(tax):
    # Three ash suppliers 2, 6 and 10 km from a receiver that needs 60,000 t/yr.
    fac = _facilities(("R", "Receiver", 25.0, 61.0), ("A", "Near", 25.037, 61.0),
                      ("B", "Middle", 25.11, 61.0), ("C", "Far", 25.185, 61.0))
    flows = declared_flows(
        ("R", "demand", "mineral.fly_ash", 60_000, "t/yr"), ("A", "supply", "mineral.fly_ash", 240_000, "t/yr"),
        ("B", "supply", "mineral.fly_ash", 2_520_000, "t/yr"), ("C", "supply", "mineral.fly_ash", 569_000, "t/yr"),
    )
    links = match(Dataset(fac, flows), taxonomy=tax).links
    assert len(links) == 3 and links["quantity"].sum() == 180_000  # pairwise, one demand counted three times
    allocation = allocate(links, tax)
    assert allocation["allocated_quantity"].sum() == pytest.approx(60_000)
    got = dict(zip(links["supply_name"], allocation["allocated_quantity"]))
    assert got == pytest.approx({"Near": 60_000, "Middle": 0, "Far": 0})  # least transport, most benefit
    assert (allocation["competitors"] == 2).all()
    near = allocation["allocation_note"][links["supply_name"] == "Near"].item()
    assert near.startswith("3 supply flows compete for this demand of 60,000 t/yr")
    assert near.endswith("this link gets 60,000 t/yr")
    far = allocation["allocation_note"][links["supply_name"] == "Far"].item()
    assert far.endswith("this link gets 0 of its 60,000 t/yr; links with a higher net benefit take the demand")
    # match allocates too: the same shares, and the totals count the demand once
    result = match(Dataset(fac, flows), taxonomy=tax)
    assert dict(zip(result.links["supply_name"], result.links["allocated_quantity"])) == pytest.approx(got)
    assert result.totals["quantity_t_per_yr"].sum() == pytest.approx(60_000)
    totals = allocation_totals(links.drop(columns=list(allocation.columns)).join(allocation))
    assert totals.loc["all links", "quantity_t_per_yr"] == pytest.approx(60_000)
    assert totals.loc["all links", "co2_saved_t_per_yr"] == pytest.approx(
        links["co2_saved_t_per_yr"][links["supply_name"] == "Near"].item())
    assert totals.loc["all links", "co2_saved_t_per_yr"] < links["co2_saved_t_per_yr"].sum() / 2.5


def test_one_supplier_for_two_demands_fills_the_better_first(tax):
    links = _links(
        tax,
        {"supply_flow_id": "s", "demand_flow_id": "d1", "supply_quantity": 1000, "demand_quantity": 600, "eur": 20},
        {"supply_flow_id": "s", "demand_flow_id": "d2", "supply_quantity": 1000, "demand_quantity": 700, "eur": 15},
    )
    allocation = allocate(links, tax)
    assert allocation["allocated_quantity"].tolist() == pytest.approx([600, 400])
    assert allocation["allocated_share"].tolist() == pytest.approx([1.0, 400 / 700])
    assert allocation["allocated_value_eur_per_yr"].tolist() == pytest.approx([600 * 20, 400 * 15])
    assert allocation["allocation_note"][1] == (
        "2 demand flows compete for this supply of 1,000 t/yr; this link gets 400 of its 700 t/yr; "
        "links with a higher net benefit take the rest of the supply")


def test_supply_in_mwh_and_in_tonnes_share_a_demand_in_mwh(tax):
    # Fixture: 2 MWh per t of biomass. 1,000 t of bark (2,000 MWh) and 1,500 MWh of
    # solid fuel compete for 3,000 MWh; solid fuel brings more per MWh (8 against 10/2).
    links = _links(
        tax,
        {"supply_flow_id": "bark", "demand_flow_id": "boiler", "resource": "biomass.bark", "supply_quantity": 1000,
         "demand_quantity": 3000, "demand_unit": "MWh/yr", "eur": 10.0, "co2": 0.0},
        {"supply_flow_id": "chips", "demand_flow_id": "boiler", "resource": "biomass.solid_fuel",
         "supply_quantity": 1500, "demand_quantity": 3000, "demand_unit": "MWh/yr", "eur": 8.0, "co2": 0.0},
    )
    assert links["unit"].tolist() == ["t/yr", "MWh/yr"]
    allocation = allocate(links, tax)
    assert allocation["allocated_quantity"].tolist() == pytest.approx([750, 1500])  # 750 t = 1,500 MWh
    totals = allocation_totals(links.join(allocation))
    assert totals.loc["all links", ["quantity_t_per_yr", "quantity_mwh_per_yr"]].tolist() == pytest.approx([750, 1500])
    # The same need stated in tonnes of fuel (1,500 t = 3,000 MWh) gives the same answer.
    in_tonnes = links.assign(demand_quantity=1500.0, demand_unit="t/yr")
    assert allocate(in_tonnes, tax)["allocated_quantity"].tolist() == pytest.approx([750, 1500])


def test_unknown_quantities_are_not_allocated_and_an_unknown_side_sets_no_limit(tax):
    links = _links(
        tax,
        {"supply_flow_id": "s1", "demand_flow_id": "d1", "supply_quantity": np.nan, "demand_quantity": np.nan},
        {"supply_flow_id": "s2", "demand_flow_id": "d2", "supply_quantity": 500, "demand_quantity": np.nan},
        {"supply_flow_id": "s3", "demand_flow_id": "d2", "supply_quantity": 700, "demand_quantity": np.nan},
        {"supply_flow_id": "s4", "demand_flow_id": "d3", "supply_quantity": np.nan, "demand_quantity": 300},
        {"supply_flow_id": "s4", "demand_flow_id": "d4", "supply_quantity": np.nan, "demand_quantity": 400},
        {"supply_flow_id": "s5", "demand_flow_id": "d5", "supply_quantity": 100, "demand_quantity": 100},
    )
    links.loc[5, "value_eur_per_yr"] = np.nan  # no value figure for this resource
    allocation = allocate(links, tax)
    assert np.isnan(allocation["allocated_quantity"][0]) and np.isnan(allocation["allocated_share"][0])
    assert np.isnan(allocation["allocated_co2_saved_t_per_yr"][0])
    assert allocation["allocation_note"][0] == "not allocated: quantities unknown"
    assert allocation["allocated_quantity"][1:5].tolist() == pytest.approx([500, 700, 300, 400])
    assert allocation["allocated_quantity"][5] == 0
    assert allocation["allocation_note"][5] == "not allocated: net benefit unknown"
    assert allocation["allocation_note"][1].startswith("2 supply flows compete for this demand of unstated size")
    assert allocation_totals(links.join(allocation)).loc["all links", "quantity_t_per_yr"] == pytest.approx(1900)


def test_a_link_that_costs_more_than_it_brings_gets_nothing(tax):
    links = _links(
        tax,
        {"supply_flow_id": "s1", "demand_flow_id": "d", "supply_quantity": 800, "demand_quantity": 1000,
         "eur": -5.0, "co2": 0.01},
        {"supply_flow_id": "s2", "demand_flow_id": "d", "supply_quantity": 800, "demand_quantity": 1000,
         "eur": -5.0, "co2": 0.2},  # pays at EUR 67/t: -5 + 0.2 * 67 > 0
    )
    allocation = allocate(links, tax)
    assert allocation["allocated_quantity"].tolist() == pytest.approx([0, 800])
    assert allocation["allocated_value_eur_per_yr"].tolist() == pytest.approx([0, -4000])
    assert allocation["allocation_note"][0].startswith("not allocated: it costs more than it brings (net EUR -3,500")
    assert allocation["allocation_note"][0].endswith("CO2 at EUR 67/t)")
    # Money only: neither pays. CO2 only: both save some, and the better fills the demand first.
    assert allocate(links, tax, objective="value")["allocated_quantity"].tolist() == [0, 0]
    assert allocate(links, tax, objective="co2")["allocated_quantity"].tolist() == pytest.approx([200, 800])
    # No carbon price: the second link no longer pays either.
    assert allocate(links, tax, carbon_price_eur_per_t=0)["allocated_quantity"].tolist() == [0, 0]


def _ties():
    """Four suppliers and three receivers, every pair linked, all worth the same per tonne."""
    rows = [
        {"supply_flow_id": f"s{s}", "demand_flow_id": f"d{d}", "supply_quantity": 300 + 100 * s,
         "demand_quantity": 400 + 50 * d, "score": 60.0 + 3 * s + d, "distance_km": 5.0}
        for s in range(4) for d in range(3)
    ]
    return rows


def test_same_input_same_output_and_row_order_does_not_matter(tax):
    links = _links(tax, *_ties()).set_axis([f"link {i}" for i in range(12)])
    first = allocate(links, tax)
    pd.testing.assert_frame_equal(first, allocate(links.copy(), tax))
    for seed in range(5):
        shuffled = links.sample(frac=1.0, random_state=seed)
        again = allocate(shuffled, tax)
        assert again.index.equals(shuffled.index)
        pd.testing.assert_series_equal(
            again["allocated_quantity"].loc[links.index], first["allocated_quantity"], rtol=0, atol=1e-6)
    assert first["allocated_quantity"].sum() == pytest.approx(400 + 450 + 500)


@pytest.mark.parametrize(("score", "km", "winner"), [
    ([70.0, 90.0, 80.0], [5.0, 5.0, 5.0], 1),   # highest score
    ([80.0, 80.0, 80.0], [7.0, 9.0, 3.0], 2),   # then shortest distance
    ([80.0, 80.0, 80.0], [5.0, 5.0, 5.0], 0),   # then the first supply flow id
])
def test_equal_links_go_to_the_better_ranked(tax, score, km, winner):
    rows = [{"supply_flow_id": f"s{i}", "demand_flow_id": "d", "supply_quantity": 1000, "demand_quantity": 600,
             "score": score[i], "distance_km": km[i]} for i in range(3)]
    links = _links(tax, *rows)
    for seed in range(3):
        shuffled = links.sample(frac=1.0, random_state=seed)
        got = allocate(shuffled, tax)["allocated_quantity"].sort_index()
        assert got.tolist() == pytest.approx([600.0 if i == winner else 0.0 for i in range(3)])


def test_quantity_ranges_allocate_the_central_value(tax):
    links = _links(
        tax,
        {"supply_flow_id": "s", "demand_flow_id": "d1", "supply_quantity": np.nan, "demand_quantity": 1000},
        {"supply_flow_id": "s", "demand_flow_id": "d2", "supply_quantity": np.nan, "demand_quantity": 1000, "eur": 5},
    ).assign(supply_quantity_low=600.0, supply_quantity_high=1000.0, quantity_low=np.nan, quantity_high=np.nan)
    # Supply estimated at 600-1,000 t/yr: its middle, 800 t/yr, is shared out.
    allocation = allocate(links, tax)
    assert allocation["allocated_quantity"].tolist() == pytest.approx([800, 0])
    # A link of unknown central quantity but a known range gets the middle of its range.
    ranged = links.assign(quantity=[np.nan, 1000.0], quantity_low=[200.0, np.nan], quantity_high=[400.0, np.nan])
    assert allocate(ranged, tax)["allocated_quantity"].tolist() == pytest.approx([300, 500])


def test_totals_by_group_add_up_to_the_region(tax):
    links = _links(tax, *_ties()).assign(cluster=["north"] * 6 + ["south"] * 6)
    both = links.join(allocate(links, tax))
    region = allocation_totals(both)
    by_cluster = allocation_totals(both, group_by="cluster")
    assert list(by_cluster.index) == ["north", "south"]
    pd.testing.assert_series_equal(by_cluster.sum(), region.loc["all links"], check_names=False)
    assert list(region.columns) == ["links", "quantity_t_per_yr", "quantity_mwh_per_yr", "quantity_m3_per_yr",
                                    "co2_saved_t_per_yr", "value_eur_per_yr"]
    assert region.loc["all links", "links"] == (both["allocated_quantity"] > 0).sum()
    by_two = allocation_totals(both, group_by=["cluster", "supply_flow_id"])
    assert by_two["quantity_t_per_yr"].sum() == pytest.approx(region.loc["all links", "quantity_t_per_yr"])


def test_result_is_index_aligned_and_empty_links_give_an_empty_result(tax):
    links = _links(tax, *_ties()).set_axis(range(100, 112))
    allocation = allocate(links, tax)
    assert list(allocation.columns) == ALLOCATION_COLUMNS
    assert allocation.index.equals(links.index)
    empty = allocate(links.iloc[:0], tax)
    assert empty.empty and list(empty.columns) == ALLOCATION_COLUMNS
    assert allocation_totals(links.iloc[:0].join(empty)).loc["all links"].sum() == 0


def test_bad_input_is_reported(tax):
    links = _links(tax, *_ties())
    with pytest.raises(InputError, match="demand_unit, co2_saved_t_per_yr"):
        allocate(links.drop(columns=["demand_unit", "co2_saved_t_per_yr"]), tax)
    with pytest.raises(InputError, match="objective 'cheapest'"):
        allocate(links, tax, objective="cheapest")
    clash = links.copy()
    clash.loc[0, "supply_quantity"] = 1.0
    with pytest.raises(InputError, match="supply flow 's0'"):
        allocate(clash, tax)
    with pytest.raises(InputError, match="run geo.allocation.allocate"):
        allocation_totals(links)


def test_match_without_allocation_leaves_the_columns_empty_and_says_so(tax):
    fac = _facilities(("R", "Receiver", 25.0, 61.0), ("A", "Near", 25.037, 61.0))
    flows = declared_flows(("R", "demand", "mineral.fly_ash", 60_000, "t/yr"), ("A", "supply", "mineral.fly_ash", 240_000, "t/yr"))
    result = match(Dataset(fac, flows), taxonomy=tax, allocation=False)
    assert len(result.links) == 1 and result.totals.empty
    assert result.links["allocated_quantity"].isna().all()
    assert result.links["allocation_note"].iloc[0] == "not allocated: the allocation was switched off"
