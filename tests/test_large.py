"""Large inputs: batched candidate search, pruning past max_links, the memory and size guard, progress (issue 18).

Each test runs on a small seeded dataset and forces the large-input paths
with tiny limits (batches of a few pairs, a few links kept, a ceiling of a
few bytes), so they are fast and give the same answer on every run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geo import pipeline, settings
from geo.dataset import load_dataset
from geo.errors import CapacityError, InputError
from geo.matching import CandidatePairs, CandidateSearch, find_candidates
from geo.pipeline import MATCH_STAGES, match
from geo.scoring import link_scores, score_links

# Two industrial towns 60 km apart, so links run both within and between them.
TOWNS = ((24.94, 60.17), (25.66, 60.39))
# NACE classes with sector profiles that supply and take heat, ash, biomass, sludge, scrap and CO2.
SECTORS = ("35.11", "35.30", "23.51", "17.12", "37.00", "24.10", "10.51", "38.11", "20.15", "01.13")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, bundled):
    """120 facilities with sectors only, and declared flows with quantities for twelve of them."""
    rng = np.random.default_rng(18)
    n = 120
    town = rng.integers(0, len(TOWNS), n)
    centre = np.array(TOWNS)[town]
    facilities = pd.DataFrame({
        "facility_id": [f"F{i:03d}" for i in range(n)],
        "name": [f"Site {i}" for i in range(n)],
        "lat": (centre[:, 1] + rng.normal(0, 0.05, n)).round(5),
        "lon": (centre[:, 0] + rng.normal(0, 0.1, n)).round(5),
        "nace": rng.choice(SECTORS, n),
    })
    declared = pd.DataFrame({
        "facility_id": [f"F{i:03d}" for i in range(0, n, 10)],
        "direction": ["supply", "demand"] * 6,
        "resource": ["heat.hot_water", "heat.hot_water"] * 6,
        "quantity": rng.integers(1_000, 50_000, 12),
        "unit": "MWh/yr",
    })
    folder = tmp_path_factory.mktemp("large")
    facilities.to_csv(folder / "facilities.csv", index=False)
    declared.to_csv(folder / "flows.csv", index=False)
    data = load_dataset(folder / "facilities.csv", folder / "flows.csv", taxonomy=bundled)
    assert data.report.ok, data.report.format()
    return data


@pytest.fixture(scope="module")
def whole(dataset, bundled):
    """The ordinary match: one batch per resource, nothing left out."""
    return match(dataset, taxonomy=bundled, infer=True)


def _pairs(links: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(links["supply_flow_id"], links["demand_flow_id"], strict=True))


def test_the_dataset_is_big_enough_to_mean_something(whole):
    assert len(whole.links) > 300
    assert whole.links["demand_flow_id"].value_counts().max() > 3
    assert whole.stats.pruned == 0 and whole.notes == []


def test_tiny_batches_give_the_same_links_as_one_batch(dataset, bundled, whole, monkeypatch):
    monkeypatch.setattr(settings, "BATCH_PAIRS", 25)
    batches = list(CandidateSearch(dataset.facilities, whole.flows, bundled).batches(
        CandidateSearch(dataset.facilities, whole.flows, bundled).estimate_pairs(), settings.BATCH_PAIRS))
    assert len(batches) > 40  # the search really was cut into many batches
    batched = match(dataset, taxonomy=bundled, infer=True)
    pd.testing.assert_frame_equal(batched.links, whole.links)
    pd.testing.assert_frame_equal(batched.totals, whole.totals)
    assert batched.stats.within_buffer == whole.stats.within_buffer
    assert batched.stats.same_sector_inferred == whole.stats.same_sector_inferred
    assert batched.stats.inferred_alternatives == whole.stats.inferred_alternatives


def test_batches_never_split_a_facility_and_cover_every_supply(dataset, bundled, whole):
    search = CandidateSearch(dataset.facilities, whole.flows, bundled)
    batches = list(search.batches(search.estimate_pairs(), 2))
    rows = np.concatenate(batches)
    assert sorted(rows) == list(range(len(search.supply)))
    owner = {}
    for number, batch in enumerate(batches):
        assert search.supply["resource"].iloc[batch].nunique() == 1
        for key in zip(search.s_fac[batch], search.supply["resource"].iloc[batch], strict=True):
            assert owner.setdefault(key, number) == number


def test_batched_pairs_equal_the_one_call_candidates(dataset, bundled, whole):
    search = CandidateSearch(dataset.facilities, whole.flows, bundled)
    pairs = CandidatePairs.concat([search.pairs(rows) for rows in search.batches(search.estimate_pairs(), 30)])
    batched = search.frame(pairs)
    direct, stats = find_candidates(dataset.facilities, whole.flows, bundled)
    key = ["supply_flow_id", "demand_flow_id"]
    pd.testing.assert_frame_equal(batched.sort_values(key).reset_index(drop=True),
                                  direct.sort_values(key).reset_index(drop=True))
    assert search.stats.within_buffer == stats.within_buffer


def test_the_slim_scoring_frame_scores_as_the_full_one(dataset, bundled, whole):
    search = CandidateSearch(dataset.facilities, whole.flows, bundled)
    pairs = CandidatePairs.concat([search.pairs(rows) for rows in search.batches()])
    slim = link_scores(search.frame(pairs, scoring_only=True), bundled)
    full = score_links(search.frame(pairs), bundled)
    np.testing.assert_array_equal(slim["score"].to_numpy(), full["score"].to_numpy())
    np.testing.assert_array_equal(slim["distance_km"].to_numpy(), full["distance_km"].to_numpy())


def test_the_estimate_counts_the_pairs_the_search_then_finds(dataset, bundled, whole):
    """Every supply is sampled here, so the estimate is the count of the STRtree query (before any check)."""
    search = CandidateSearch(dataset.facilities, whole.flows, bundled)
    per_supply = search.estimate_pairs(sample=10_000)
    expected = sum(per_supply[r] * len(rows) for r, rows in search.resources().items())
    queried = sum(len(search._join(rows)[0]) for rows in search.batches())
    assert expected == pytest.approx(queried)


@pytest.mark.parametrize(("max_links", "per_demand"), [(150, 2), (40, 3), ("half", 4)])
def test_pruning_keeps_each_demands_best_then_the_best_overall(dataset, bundled, whole, max_links, per_demand,
                                                               monkeypatch):
    """"half": the per-demand cut leaves fewer than max_links, and later batches must still be cut per demand."""
    monkeypatch.setattr(settings, "BATCH_PAIRS", 60)  # prune many times, batch by batch
    max_links = len(whole.links) // 2 if max_links == "half" else max_links
    pruned = match(dataset, taxonomy=bundled, infer=True, max_links=max_links, links_per_demand=per_demand,
                   allocation=False)
    # the oracle: every link of the ordinary run, best first, cut per demand and then overall
    best = whole.links.assign(km=whole.links["distance_km"].fillna(np.inf)).sort_values(
        ["score", "km", "supply_flow_id", "demand_flow_id"], ascending=[False, True, True, True], kind="stable")
    best = best[best.groupby("demand_flow_id").cumcount() < per_demand].head(max_links)
    assert _pairs(pruned.links) == _pairs(best)
    assert pruned.links["demand_flow_id"].value_counts().max() <= per_demand
    assert pruned.stats.pruned == len(whole.links) - len(pruned.links)
    assert pruned.total_links == len(whole.links)
    assert (pruned.stats.max_links, pruned.stats.links_per_demand) == (max_links, per_demand)
    assert f"best {per_demand}" in pruned.notes[0] and f"{max_links:,}" in pruned.notes[0]


def test_pruned_links_score_and_read_as_in_the_ordinary_run(dataset, bundled, whole):
    pruned = match(dataset, taxonomy=bundled, infer=True, max_links=100, links_per_demand=4)
    same = pruned.links.merge(whole.links, on=["supply_flow_id", "demand_flow_id"], suffixes=("", "_whole"))
    assert len(same) == len(pruned.links)
    np.testing.assert_array_equal(same["score"], same["score_whole"])
    assert (same["allocation_note"] != "").all()
    assert "among the links kept only" in pruned.notes[1]


def test_progress_is_reported_stage_by_stage_with_counts_that_only_grow(dataset, bundled, monkeypatch):
    monkeypatch.setattr(settings, "BATCH_PAIRS", 20)
    calls = []
    match(dataset, taxonomy=bundled, infer=True, on_progress=lambda *call: calls.append(call))
    stages = [stage for stage, _, _ in calls]
    assert list(dict.fromkeys(stages)) == list(MATCH_STAGES)
    for stage in MATCH_STAGES:
        mine = [(done, total) for s, done, total in calls if s == stage]
        done = [d for d, _ in mine]
        assert done == sorted(done) and done[0] == 0 and mine[-1][0] == mine[-1][1] > 0
        assert len({total for _, total in mine}) == 1
    assert len([s for s in stages if s == "candidates"]) > 5


def test_the_memory_guard_refuses_up_front_naming_the_limit(dataset, bundled, monkeypatch):
    monkeypatch.setenv(settings.MAX_MEMORY_ENV, "0.001")
    calls = []
    with pytest.raises(CapacityError) as refused:
        match(dataset, taxonomy=bundled, infer=True, on_progress=lambda *call: calls.append(call))
    message = str(refused.value)
    assert "120 facilities would need about" in message
    assert "the limit is 0.001 GB (SYMBIOSIS_MAX_MEMORY_GB=0.001)" in message
    assert "--max-km" in message
    assert not [c for c in calls if c[0] == "candidates"]  # refused before the search


def test_too_many_candidate_pairs_are_refused_up_front_naming_the_limit(dataset, bundled):
    calls = []
    with pytest.raises(CapacityError) as refused:
        match(dataset, taxonomy=bundled, infer=True, max_pairs=10, on_progress=lambda *call: calls.append(call))
    message = str(refused.value)
    assert message.startswith("120 facilities with ")
    assert "candidate pairs within their maximum distances; the limit is 10 pairs" in message
    assert not [c for c in calls if c[0] == "candidates"]


def test_a_generous_ceiling_lets_the_match_run(dataset, bundled, monkeypatch):
    monkeypatch.setenv(settings.MAX_MEMORY_ENV, "1000")
    assert len(match(dataset, taxonomy=bundled, infer=True, allocation=False).links) > 300


def test_an_unreadable_ceiling_is_a_usage_error(monkeypatch):
    monkeypatch.setenv(settings.MAX_MEMORY_ENV, "lots")
    with pytest.raises(InputError, match="SYMBIOSIS_MAX_MEMORY_GB='lots' is not a number of GB"):
        pipeline.memory_limit()


def test_flows_are_sized_the_same_in_batches_of_facilities(dataset, bundled, whole, monkeypatch):
    monkeypatch.setattr(settings, "ESTIMATE_BATCH_FACILITIES", 7)
    batched = match(dataset, taxonomy=bundled, infer=True, allocation=False)
    pd.testing.assert_frame_equal(batched.flows, whole.flows)


def test_past_the_allocation_limit_links_stay_unallocated_with_a_note(dataset, bundled, monkeypatch):
    monkeypatch.setattr(settings, "ALLOCATION_MAX_LINKS", 10)
    result = match(dataset, taxonomy=bundled, infer=True)
    assert result.links["allocated_quantity"].isna().all()
    assert result.links["allocation_note"].str.contains("settings.ALLOCATION_MAX_LINKS").all()
    assert result.totals.empty
    assert any("not allocated" in note for note in result.notes)
