"""Typical quantities for flows whose quantity is unknown (geo.estimates)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geo.errors import KnowledgeBaseError
from geo.estimates import (
    ESTIMATE_COLUMNS,
    FACTOR_COLUMNS,
    INDICATORS,
    SECTOR_TYPICAL,
    estimate_quantities,
    factor_problems,
    load_quantity_factors,
)

from tests.conftest import ROOT, shared

NAN = float("nan")

# nace, direction, resource, indicator, factor, low, high, unit, unless_supplies
_FACTORS = [
    ("24.1", "supply", "mineral.slag", "co2_t_per_yr", 0.2, 0.15, 0.6, "t/yr", ""),
    ("24", "supply", "mineral.slag", "co2_t_per_yr", 0.5, 0.4, 0.6, "t/yr", ""),
    ("35", "supply", "heat.hot_water", "thermal_input_mw", 2750, 900, 6300, "MWh/yr", "heat.steam"),
    ("35", "supply", "heat.hot_water", "thermal_input_mw", 1375, 450, 3150, "MWh/yr", ""),
    ("35", "supply", "heat.steam", "thermal_input_mw", 1375, 450, 3150, "MWh/yr", ""),
    ("35", "supply", "heat.hot_water", "co2_t_per_yr", 1.5, 0.74, 4.5, "MWh/yr", "heat.steam"),
    ("35", "supply", "mineral.fly_ash", "co2_t_per_yr", 0.03, 0.02, 0.04, "t/yr", ""),
    ("35", "", "", "co2_t_per_yr", 100_000, 20_000, 250_000, "t/yr", ""),
    ("47.11", "supply", "heat.low_temperature", SECTOR_TYPICAL, 100, 30, 300, "MWh/yr", ""),
    ("16.1", "supply", "biomass.sawdust", SECTOR_TYPICAL, 1000, 500, 2000, "t/yr", ""),
    ("", "supply", "gas.co2", "co2_t_per_yr", 1, 1, 1, "t/yr", ""),
]


def _factors(rows=_FACTORS) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=FACTOR_COLUMNS[:-2])
    return frame.assign(source="[T]", note="test row")


def _facilities(*rows, **columns) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["facility_id", "nace"])
    for name, values in columns.items():
        frame[name] = values
    return frame


def _flows(*rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["facility_id", "direction", "resource", "quantity", "unit"])
    frame["quantity"] = frame["quantity"].astype(float)
    return frame


@pytest.fixture
def case(bundled):
    """A steel works, two power plants, a supermarket, an office, a sawmill and a heat plant with a register CO2."""
    fac = _facilities(
        ("S", "24.10"), ("P", "35.11"), ("P2", "35.11"), ("Q", "35.11"), ("M", "47.11"), ("X", "70.10"),
        ("W", "16.10"), ("E", "35.30"), ("F", "24.20"),
        co2_t_per_yr=[668_000, NAN, NAN, NAN, NAN, NAN, NAN, NAN, 10_000],
        thermal_input_mw=[NAN, 100, 100, NAN, NAN, NAN, NAN, NAN, NAN],
    )
    flows = _flows(
        ("S", "supply", "mineral.slag", NAN, "t/yr"),              # 0
        ("P", "supply", "heat.hot_water", NAN, "MWh/yr"),          # 1: steam listed too -> half
        ("P", "supply", "heat.steam", NAN, "MWh/yr"),              # 2
        ("P2", "supply", "heat.hot_water", NAN, "MWh/yr"),         # 3: no steam -> all
        ("Q", "supply", "mineral.fly_ash", NAN, "t/yr"),           # 4: typical size x factor
        ("M", "supply", "heat.low_temperature", NAN, "MWh/yr"),    # 5: typical quantity
        ("X", "supply", "heat.low_temperature", NAN, "MWh/yr"),    # 6: nothing known
        ("W", "supply", "biomass.sawdust", NAN, "MWh/yr"),         # 7: converted from t/yr
        ("E", "supply", "gas.co2", 50_000, "t/yr"),                # 8: stated
        ("E", "supply", "heat.hot_water", NAN, "MWh/yr"),          # 9: from the declared CO2
        ("F", "supply", "mineral.slag", NAN, "t/yr"),              # 10: 24.20 is not under 24.1
    )
    flows["origin"] = ["", "", "", "", "", "", "", "", "E-PRTR releases 2023: CO2 to air", "", ""]
    return fac, flows, estimate_quantities(fac, flows, bundled, factors=_factors())


@pytest.mark.parametrize(("row", "quantity", "low", "high", "basis"), [
    (0, 668_000 * 0.2, 668_000 * 0.15, 668_000 * 0.6, "estimated"),
    (1, 100 * 1375, 100 * 450, 100 * 3150, "estimated"),
    (2, 100 * 1375, 100 * 450, 100 * 3150, "estimated"),
    (3, 100 * 2750, 100 * 900, 100 * 6300, "estimated"),
    (4, 100_000 * 0.03, 20_000 * 0.02, 250_000 * 0.04, "sector typical"),
    (5, 100, 30, 300, "sector typical"),
    (9, 50_000 * 1.5, 50_000 * 0.74, 50_000 * 4.5, "estimated"),
    (10, 10_000 * 0.5, 10_000 * 0.4, 10_000 * 0.6, "estimated"),
])
def test_estimates_match_hand_computed_ones(case, row, quantity, low, high, basis):
    _, _, est = case
    got = est.loc[row]
    assert got["quantity"] == pytest.approx(quantity)
    assert got["quantity_low"] == pytest.approx(low)
    assert got["quantity_high"] == pytest.approx(high)
    assert got["quantity_basis"] == basis


def test_result_is_index_aligned_and_has_the_documented_columns(case):
    _, flows, est = case
    assert list(est.columns) == list(ESTIMATE_COLUMNS)
    assert est.index.equals(flows.index)


def test_most_specific_nace_prefix_wins(case):
    _, _, est = case
    assert est.loc[0, "quantity"] == pytest.approx(668_000 * 0.2)   # 24.10 takes the 24.1 row, not 24
    assert est.loc[10, "quantity"] == pytest.approx(10_000 * 0.5)   # 24.20 only fits the 24 row


def test_declared_quantities_are_untouched(case):
    _, _, est = case
    assert est.loc[8, ["quantity", "quantity_low", "quantity_high"]].tolist() == [50_000, 50_000, 50_000]
    assert est.loc[8, "quantity_basis"] == "stated"
    assert est.loc[8, "quantity_note"] == ""


def test_nothing_known_stays_unknown(case):
    _, _, est = case
    assert np.isnan(est.loc[6, ["quantity", "quantity_low", "quantity_high"]].to_numpy(dtype=float)).all()
    assert est.loc[6, "quantity_basis"] == "unknown"
    assert est.loc[6, "quantity_note"].startswith("unknown: ")
    assert "NACE 70.10" in est.loc[6, "quantity_note"]


def test_quantities_come_in_the_flows_unit(case, bundled):
    _, _, est = case
    to_mwh = bundled.conversion_factor("biomass.sawdust", "t/yr", "MWh/yr")
    assert np.isfinite(to_mwh) and to_mwh != 1.0
    assert est.loc[7, ["quantity", "quantity_low", "quantity_high"]].tolist() == pytest.approx(
        [1000 * to_mwh, 500 * to_mwh, 2000 * to_mwh])
    assert "converted from t/yr to MWh/yr" in est.loc[7, "quantity_note"]


def test_notes_say_what_the_estimate_was_scaled_from(case):
    _, _, est = case
    register = est.loc[9, "quantity_note"]
    assert register.startswith("estimated from the facility's E-PRTR releases 2023: CO2 to air (50,000 t/yr)")
    assert "x 1.5 MWh per t CO2" in register and "range 0.74-4.5" in register
    assert est.loc[0, "quantity_note"].startswith("estimated from the facility's stated CO2 release (668,000 t/yr)")
    assert est.loc[4, "quantity_note"].startswith("sector typical: a typical NACE 35 facility's CO2 release")
    assert est.loc[5, "quantity_note"].startswith("sector typical: typical quantity for NACE 47.11: 100 MWh/yr")


def test_a_measured_size_wins_over_a_typical_one(bundled):
    fac = _facilities(("A", "35.11"), ("B", "35.11"), co2_t_per_yr=[40_000, NAN])
    flows = _flows(("A", "supply", "mineral.fly_ash", NAN, "t/yr"), ("B", "supply", "mineral.fly_ash", NAN, "t/yr"))
    est = estimate_quantities(fac, flows, bundled, factors=_factors())
    assert est["quantity"].tolist() == pytest.approx([40_000 * 0.03, 100_000 * 0.03])
    assert est["quantity_basis"].tolist() == ["estimated", "sector typical"]


def test_a_facility_column_wins_over_the_declared_co2_flow(bundled):
    fac = _facilities(("A", "35.11"), co2_t_per_yr=[40_000])
    flows = _flows(("A", "supply", "gas.co2", 90_000, "t/yr"), ("A", "supply", "mineral.fly_ash", NAN, "t/yr"))
    est = estimate_quantities(fac, flows, bundled, factors=_factors())
    assert est.loc[1, "quantity"] == pytest.approx(40_000 * 0.03)


def test_section_letters_and_missing_facilities_are_tolerated(bundled):
    fac = _facilities(("A", "D35.11"), co2_t_per_yr=[40_000])
    flows = _flows(("A", "supply", "mineral.fly_ash", NAN, "t/yr"), ("Z", "supply", "mineral.fly_ash", NAN, "t/yr"))
    est = estimate_quantities(fac, flows, bundled, factors=_factors())
    assert est.loc[0, "quantity"] == pytest.approx(40_000 * 0.03)
    assert est.loc[1, "quantity_basis"] == "unknown"


def test_all_stated_returns_the_stated_quantities(bundled):
    flows = _flows(("A", "supply", "mineral.fly_ash", 7.0, "t/yr"))
    est = estimate_quantities(_facilities(("A", "35.11")), flows, bundled, factors=_factors())
    assert est.loc[0, "quantity"] == 7.0 and est.loc[0, "quantity_basis"] == "stated"


# --- the bundled factor table -------------------------------------------------------


def test_bundled_factors_load_and_pass_every_check(bundled):
    factors = load_quantity_factors()
    assert len(factors) > 50
    assert factor_problems(factors, bundled) == []


def test_every_bundled_factor_names_a_resource_of_the_bundled_taxonomy(bundled):
    factors = load_quantity_factors()
    ratio_rows = factors[factors["resource"] != ""]
    assert set(ratio_rows["resource"]) <= set(bundled.codes)
    assert set(factors["unless_supplies"]) - {""} <= set(bundled.codes)
    assert set(factors["indicator"]) <= {*INDICATORS, SECTOR_TYPICAL}


def test_bundled_factors_keep_low_central_high_in_order():
    factors = load_quantity_factors()
    assert (factors["low"] <= factors["factor"]).all()
    assert (factors["factor"] <= factors["high"]).all()


def test_estimates_from_every_bundled_row_keep_low_central_high_in_order(bundled):
    """One facility per NACE prefix of the table, with every indicator known or none, and every flow of the table."""
    factors = load_quantity_factors()
    codes = sorted(set(factors["nace"]) - {""}) + ["99.99"]
    rows = factors[factors["resource"] != ""][["direction", "resource"]].drop_duplicates()
    known = {name: 12_345.0 for name in INDICATORS}
    fac = pd.concat([
        _facilities(*[(f"K{c}", c) for c in codes], **{k: [v] * len(codes) for k, v in known.items()}),
        _facilities(*[(f"T{c}", c) for c in codes]),
    ], ignore_index=True)
    flows = pd.DataFrame([(f, d, r) for f in fac["facility_id"] for d, r in rows.itertuples(index=False)],
                         columns=["facility_id", "direction", "resource"])
    flows = flows.assign(quantity=NAN, unit=flows["resource"].map(bundled.units))
    est = estimate_quantities(fac, flows, bundled, factors=factors)
    sized = est[est["quantity"].notna()]
    assert len(sized) > 0.1 * len(est)
    assert set(est["quantity_basis"]) == {"estimated", "sector typical", "unknown"}
    assert (sized["quantity_low"] <= sized["quantity"] * (1 + 1e-12)).all()
    assert (sized["quantity"] <= sized["quantity_high"] * (1 + 1e-12)).all()
    assert (sized["quantity_note"] != "").all()


def test_a_malformed_factor_table_is_reported_row_by_row(tmp_path):
    bad = _factors([
        ("24.1", "supply", "mineral.slag", "co2_t_per_yr", 0.2, 0.3, 0.6, "t/yr", ""),   # low above factor
        ("C24", "sideways", "mineral.slag", "tonnes", 0.2, 0.1, 0.6, "t/yr", ""),       # three problems
    ])
    path = tmp_path / "factors.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(KnowledgeBaseError) as err:
        load_quantity_factors(path)
    text = str(err.value)
    assert "row 2: needs low <= factor <= high" in text
    assert "row 3: NACE prefix 'C24'" in text and "direction 'sideways'" in text and "indicator 'tonnes'" in text


# --- agreement with the shared data ---------------------------------------------------


def test_committed_data_based_rows_agree_with_a_recomputation():
    """bench/quantity_factors.py recomputes the Hotmaps [Q1] and E-PRTR [Q2] rows from ../shared/data."""
    shared("hotmaps", "Industrial_Database.csv")
    shared("eprtr_fi", "releases.csv")
    shared("eprtr_nordics", "F1_4_Air_Releases_Facilities_Nordics.csv")
    from bench.quantity_factors import KEY, derived_rows

    derived = derived_rows()
    committed = pd.read_csv(ROOT / "data" / "knowledge" / "quantity_factors.csv", dtype=str, keep_default_na=False)
    assert not derived.duplicated(KEY).any()
    merged = derived.merge(committed, on=KEY, how="left", suffixes=("", "_committed"), indicator=True)
    assert (merged["_merge"] == "both").all(), merged.loc[merged["_merge"] != "both", KEY]
    for column in ("factor", "low", "high"):
        assert np.allclose(merged[column], merged[f"{column}_committed"].astype(float), rtol=1e-9, atol=0)
    assert (merged["source"] == merged["source_committed"]).all()
    data_based = committed[committed["source"].str.startswith(("[Q1]", "[Q2]"))]
    assert len(data_based) == len(derived)


def test_any_flow_index_is_kept(case, bundled):
    fac, flows, est = case
    relabelled = flows.set_axis([f"flow {i}" for i in range(len(flows))][::-1])
    again = estimate_quantities(fac, relabelled, bundled, factors=_factors())
    assert again.index.equals(relabelled.index)
    assert again["quantity"].to_numpy() == pytest.approx(est["quantity"].to_numpy(), nan_ok=True)
