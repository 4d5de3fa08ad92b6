"""The documented-exchange benchmark: judging hits, the exchange files, the precedents file."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bench import exchanges as bx
from geo import settings
from geo.schema import normalise_nace
from tests.conftest import shared

HEADER = "park,country,supplier,supplier_nace,receiver,receiver_nace,resource,distance_km,source\n"


# --- judging ---------------------------------------------------------------------------

LINKS = pd.DataFrame({
    "rank": [1, 2, 3, 4],
    "supply_facility_id": ["A", "A", "B", "C"],
    "demand_facility_id": ["B", "B", "C", "A"],
    "resource": ["heat.hot_water", "heat.steam", "mineral.fly_ash", "gas.co2"],
})


@pytest.mark.parametrize(("supplier", "receiver", "codes", "expected"), [
    ("A", "B", ("heat.steam",), 2),            # a hit below a link of the wrong resource
    ("A", "B", ("mineral.gypsum",), math.nan),  # the pair runs, but with another resource
    ("B", "A", ("heat.steam",), math.nan),      # the right resource the wrong way round
    ("A", "B", ("heat",), 1),                   # a group code admits every resource under it
    ("B", "C", ("mineral.gypsum", "mineral.fly_ash"), 3),  # any of several codes
    ("C", "A", (), math.nan),                   # out of scope: no code, never found
])
def test_exchange_ranks_judges_direction_resource_and_groups(supplier, receiver, codes, expected):
    exchange = pd.DataFrame({"supply_facility_id": [supplier], "demand_facility_id": [receiver], "codes": [codes]})
    rank = bx.exchange_ranks(exchange, LINKS).iloc[0]
    assert (math.isnan(rank) and math.isnan(expected)) or rank == expected


def test_exchange_ranks_keeps_the_exchanges_index():
    exchanges = pd.DataFrame({"supply_facility_id": ["C", "A"], "demand_facility_id": ["A", "B"],
                              "codes": [("gas.co2",), ("heat.steam",)]}, index=[10, 20])
    ranks = bx.exchange_ranks(exchanges, LINKS)
    assert ranks.to_dict() == {10: 4.0, 20: 2.0}


@pytest.mark.parametrize(("resource", "code", "expected"), [
    ("heat.steam", "heat.steam", True),
    ("heat.steam", "heat", True),
    ("heat.hot_water", "heat.steam", False),
    ("mineral.slag", "mineral.sl", False),
    ("gas.co2", "heat", False),
])
def test_code_matches(resource, code, expected):
    assert bx.code_matches(pd.Series([resource]), pd.Series([code]))[0] == expected


# --- reading exchanges -------------------------------------------------------------------


@pytest.fixture
def tiny(write):
    """A park with a municipality of blank NACE, two unnamed plants of one sector, and an unknown party."""
    rows = [
        "P,DK,Power plant,3511,Town of P municipality,,Heat -> Heat,,ref A",
        "P,DK,Power plant,3511,Power plant,3511,Demineralised water -> Process water,,ref B",
        "P,DK,ND (company not named),ND,Cement works,2351,Fly ash [EWC 100102] -> Raw material,,ref C",
        "P,DK,Power plant,3511,Farm,0111 / 0150,Air -> Raw material,,ref D",
        "P,DK,Pharma plant,2110/2059,Farm,0111 / 0150,Steam -> Process heat,,ref E",
    ]
    dev = write("dev.csv", HEADER + "\n".join(rows) + "\n")
    codes = {"Heat -> Heat": ("heat",), "Demineralised water -> Process water": ("water.demineralised",),
             "Fly ash [EWC 100102] -> Raw material": ("mineral.fly_ash",), "Air -> Raw material": (),
             "Steam -> Process heat": ("heat.steam", "heat.hot_water")}
    return bx.load_exchanges(dev=dev, heldout=None, codes=codes)


def test_load_exchanges_gives_each_party_a_sector_and_a_facility(tiny):
    assert list(tiny["receiver_nace"]) == ["35.30", "35.11", "23.51", "01.11", "01.11"]
    assert list(tiny["supplier_nace"]) == ["35.11", "35.11", "", "35.11", "21.10"]
    # two unnamed plants of one sector exchanging are two facilities
    assert tiny.loc[1, "receiver_key"] == "Power plant (second site)"
    assert tiny.loc[2, "supplier_key"] == "Unnamed party, NACE unknown"
    assert (tiny["set"] == "dev").all() and not tiny["classic"].any()


@pytest.mark.parametrize(("codes", "role", "expected"), [
    (("heat.hot_water",), "supplier", "35.30"),
    (("organic.sludge",), "supplier", "37.00"),
    (("water.process_water",), "supplier", "36.00"),
    (("organic.biowaste",), "supplier", "38.11"),
    (("chemical.sulfur",), "receiver", ""),
])
def test_utility_class(codes, role, expected):
    assert bx.utility_class(codes, role=role) == expected


def test_precedent_rows_one_per_code_and_only_known_sectors(tiny):
    rows = bx.precedent_rows(tiny)
    assert list(rows.columns) == bx.PRECEDENT_COLUMNS
    # out of scope (Air) and the unnamed supplier are left out; Steam maps to two codes
    assert list(rows["resource"]) == ["heat", "water.demineralised", "heat.steam", "heat.hot_water"]
    assert list(rows["source"]) == ["ref A", "ref B", "ref E", "ref E"]
    assert rows.loc[2, "supplier_nace"] == "21.10"


def _many_parties(n_exchanges: int) -> pd.DataFrame:
    """Exchanges between 2 x n distinct parties, one sector each."""
    i = np.arange(n_exchanges)
    return pd.DataFrame({"supplier_key": [f"S{k}" for k in i], "receiver_key": [f"R{k}" for k in i],
                         "supplier_nace": "35.11", "receiver_nace": "23.51"})


def test_park_facilities_one_per_party(tiny):
    fac = bx.park_facilities(tiny)
    assert fac["facility_id"].is_unique and fac["name"].is_unique
    parties = fac.loc[fac["role"] == "party", "key"]
    assert set(parties) == set(tiny["supplier_key"]) | set(tiny["receiver_key"])
    assert len(parties) == 7 and (fac["role"] == "distractor").sum() == len(bx.DISTRACTORS)
    assert fac.set_index("key").loc["Unnamed party, NACE unknown", "nace"] == ""
    assert bx.park_facilities(tiny).equals(fac)  # deterministic


def test_industrial_distractors_are_placed_when_asked(tiny):
    fac = bx.park_facilities(tiny, bx.DISTRACTORS + bx.INDUSTRIAL_DISTRACTORS)
    extra = {f"{name} (distractor)" for name, _ in bx.INDUSTRIAL_DISTRACTORS}
    assert extra <= set(fac["name"]) and not extra & set(bx.park_facilities(tiny)["name"])


def test_leaving_a_park_out_hides_its_own_exchanges_from_its_precedents(write):
    """A park's own documented exchanges lift their ranks only when its precedents are not left out."""
    from geo.taxonomy import load_taxonomy

    rows = ["P,DK,Power plant,3511,Town of P municipality,,Heat -> Heat,,ref A",
            "P,DK,Power plant,3511,Cement works,2351,Fly ash [EWC 100102] -> Raw material,,ref C"]
    park = bx.load_exchanges(dev=write("dev.csv", HEADER + "\n".join(rows) + "\n"), heldout=None,
                             codes={"Heat -> Heat": ("heat",),
                                    "Fly ash [EWC 100102] -> Raw material": ("mineral.fly_ash",)})
    taxonomy = load_taxonomy()
    precedents = bx.precedent_rows(park)
    left_out, _ = bx.measure_parks(park, taxonomy, precedents, with_precedents=True)
    seen, _ = bx.measure_parks(park, taxonomy, precedents, with_precedents=True, leave_out=False)
    assert left_out["rank"].notna().all() and seen["rank"].notna().all()
    assert (seen["rank"].to_numpy() < left_out["rank"].to_numpy()).all()
    table = bx.report_variants({"left out": left_out, "seen": seen})
    assert "| left out | development parks | 2 |" in table and "| seen | development parks | 2 |" in table


@pytest.mark.parametrize("n_exchanges", [1, 15, 40])
def test_park_facilities_are_apart_inside_the_disc(n_exchanges):
    fac = bx.park_facilities(_many_parties(n_exchanges))
    lon, lat = np.radians(fac["lon"].to_numpy()), np.radians(fac["lat"].to_numpy())
    # brute-force haversine between every two facilities, and to the centre
    dlat, dlon = lat[:, None] - lat[None, :], lon[:, None] - lon[None, :]
    a = np.sin(dlat / 2) ** 2 + np.cos(lat[:, None]) * np.cos(lat[None, :]) * np.sin(dlon / 2) ** 2
    km = 2 * 6371.0088 * np.arcsin(np.sqrt(a))
    np.fill_diagonal(km, np.inf)
    assert km.min() > settings.SAME_SITE_KM  # no two facilities look like one site
    c_lat, c_lon = math.radians(bx.CENTRE_LAT), math.radians(bx.CENTRE_LON)
    a0 = np.sin((lat - c_lat) / 2) ** 2 + math.cos(c_lat) * np.cos(lat) * np.sin((lon - c_lon) / 2) ** 2
    assert (2 * 6371.0088 * np.arcsin(np.sqrt(a0))).max() <= bx.PARK_RADIUS_KM * 1.001


# --- the bundled files -------------------------------------------------------------------


@pytest.fixture(scope="module")
def resource_table():
    return pd.read_csv(bx.RESOURCE_FILE, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def heldout():
    return pd.read_csv(bx.HELDOUT_FILE, dtype=str, keep_default_na=False)


def test_every_resource_text_of_the_shared_file_is_mapped(resource_table):
    dev = pd.read_csv(shared("known_exchanges", "dev_exchanges.csv"), dtype=str, keep_default_na=False)
    assert set(dev["resource"]) <= set(resource_table["resource"])


def test_every_held_out_resource_text_is_mapped_and_texts_are_unique(resource_table, heldout):
    assert resource_table["resource"].is_unique
    assert set(heldout["resource"]) <= set(resource_table["resource"])


def test_out_of_scope_texts_say_why(resource_table):
    empty = resource_table[resource_table["codes"] == ""]
    assert empty["note"].str.startswith("out of scope").all()


def test_every_mapped_code_is_in_the_taxonomy(resource_table, bundled):
    codes = {c for text in resource_table["codes"] for c in text.split()}
    assert codes - set(bundled.codes) == set()


def test_held_out_exchanges_are_cited_with_valid_sectors(heldout):
    assert list(heldout.columns[:9]) == HEADER.strip().split(",")
    assert len(heldout) >= 30 and heldout["park"].nunique() >= 3
    assert (heldout["source"].str.len() > 20).all()
    for column in ("supplier_nace", "receiver_nace"):
        assert heldout[column].map(lambda c: normalise_nace(c) is not None and len(c) == 4).all()
    classic = heldout[heldout["classic"] == "yes"]
    assert len(classic) == 9 and (classic["park"] == "Kalundborg").all()


def test_bundled_precedents_match_the_exchange_files(bundled):
    shared("known_exchanges", "dev_exchanges.csv")
    if not bx.PRECEDENTS_FILE.is_file():
        pytest.skip("data/knowledge/precedents.csv not generated yet")
    written = pd.read_csv(bx.PRECEDENTS_FILE, dtype=str, keep_default_na=False)
    expected = bx.precedent_rows(bx.load_exchanges()).astype(str)
    pd.testing.assert_frame_equal(written, expected)
    assert set(written["resource"]) - set(bundled.codes) == set()
    assert written["supplier_nace"].str.fullmatch(r"\d{2}(\.\d{1,2})?").all()


def test_eprtr_flags_name_each_implausible_pattern():
    facilities = pd.DataFrame({"facility_id": ["W", "L", "F", "P", "B1", "B2"],
                               "eprtr_activity": ["5(c)", "5(d)", "2(d)", "1(c)", "4(a)", "4(a)"]})
    links = pd.DataFrame({
        "supply_facility_id": ["W", "W", "P", "B1", "W", "W"],
        "demand_facility_id": ["L", "F", "P", "B2", "P", "P"],
        "supply_name": ["Waste Oy, depot", "Waste Oy, depot", "Power Oy", "Borealis Polymers Oy, Porvoo",
                        "Waste Oy, depot", "Waste Oy, depot"],
        "demand_name": ["Landfill Ab", "Castings Oy", "Power Oy", "Borealis Polymers Oy, Kilpilahti", "Power Oy",
                        "Power Oy"],
        "demand_nace": ["38.21", "24.51", "35.11", "20.16", "35.11", "35.11"],
        "resource": ["material.refuse_derived_fuel", "biomass.wood_residues", "heat.hot_water", "material.plastics",
                     "biomass.recovered_wood", "biomass.recovered_wood"],
        "straight_km": [3.0, 4.0, 0.0, 1.2, 2.0, 2.0],
        "same_operator": [False, False, False, False, False, False],
    })
    flags = bx.eprtr_flags(links, facilities)
    assert flags.iloc[0] == "fuel to landfill"
    assert flags.iloc[1] == "fuel to foundry"
    assert "self-link" in flags.iloc[2] and "same site" in flags.iloc[2]
    assert flags.iloc[3] == "same operator"
    assert flags.iloc[4] == "" and flags.iloc[5] == "repeated pair"
