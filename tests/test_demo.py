"""The bundled demo: real facilities of the region's clusters that validate, match and cite their sources."""

import re
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from geo.dataset import load_dataset
from geo.pipeline import match
from tests.conftest import ROOT, shared

DEMO = ROOT / "data" / "demo"
COUNTRIES = {"FI", "SE", "NO", "DK", "EE", "LV", "LT", "PL", "DE"}
REQUIRED_CLUSTERS = {
    "Kemi-Tornio", "Kokkola Industrial Park", "ECO3 Tampere region", "Porvoo Kilpilahti",
    "Turku region Smart Chemistry Park", "Harjavalta and Pori", "Riihimäki Circular Economy Village",
    "Forssa Envi Grow Park", "Salo", "Kemijärvi Patokangas", "Paper Province Värmland",
    "Händelö Norrköping", "Stenungsund", "Luleå", "Oxelösund", "Sotenäs", "Orkanger and Thams",
    "Eyde cluster Agder", "Kalundborg Symbiosis",
}
#: Natural Earth names of the demo's countries, as in the vendored world-atlas outlines
NATURAL_EARTH = {"FI": "Finland", "SE": "Sweden", "NO": "Norway", "DK": "Denmark", "EE": "Estonia",
                 "LV": "Latvia", "LT": "Lithuania", "PL": "Poland", "DE": "Germany"}
#: how far a point may lie from its own country's 1:50m outline: harbours and quays sit at the shore
LAND_SLACK_M = 3_000
#: points on shores that even the 1:10m outline leaves out, with the distance allowed instead (the point's
#: distance from that outline, rounded up): both are register points on land. Meri-Pori stands on Tahkoluoto,
#: an island off Pori too small for the outline; SMA's lime plant is on the Röyttä shore of the Tornio river mouth.
OUTLINE_GAPS_M = {"FB-POR-MERIPORI": 3_100, "FA-KT-SMA": 3_100}
#: how far a point may lie from the register point it cites, by precision; None: not compared
REGISTER_SLACK_M = {"site": 450, "address": 1_500, "town": None}


@pytest.fixture(scope="module")
def demo():
    return load_dataset(DEMO / "facilities.csv", DEMO / "flows.csv")


@pytest.fixture(scope="module")
def links(demo):
    return match(demo).links


@pytest.fixture(scope="module")
def raw():
    read = lambda name: pd.read_csv(DEMO / name, sep=";", dtype=str, keep_default_na=False)  # noqa: E731
    return read("facilities.csv"), read("flows.csv")


def test_the_demo_validates_without_errors(demo):
    assert demo.report.ok, demo.report.problems
    assert not len(demo.skipped)


def test_the_demo_covers_the_region(demo):
    fac = demo.facilities
    assert len(fac) >= 130
    assert fac["cluster"].nunique() >= 12
    assert COUNTRIES <= set(fac["country"])
    assert REQUIRED_CLUSTERS <= set(fac["cluster"]), sorted(REQUIRED_CLUSTERS - set(fac["cluster"]))


def test_every_facility_says_how_precisely_it_is_placed(raw):
    facilities, _ = raw
    assert set(facilities["precision"]) <= {"site", "address", "town"}
    assert (facilities["precision"] != "").all()
    # a point that only marks the town says so, and where the source puts the plant if it says anything
    town = facilities[facilities["precision"] == "town"]
    assert town["notes"].str.contains("town|locality", case=False).all()


def test_every_facility_and_flow_cites_a_source_listed_in_sources_md(raw):
    facilities, flows = raw
    listed = set(re.findall(r"^- \[([A-Z]{2}-\d+)\]", (DEMO / "SOURCES.md").read_text(encoding="utf-8"), re.M))
    for frame in (facilities, flows):
        assert (frame["source"].str.strip() != "").all()
        cited = {key for text in frame["source"] for key in re.findall(r"\[([A-Z]{2}-\d+)\]", text)}
        assert cited, "sources are cited as [XX-n] keys"
        assert cited <= listed, sorted(cited - listed)


def test_published_and_typical_figures_are_told_apart(raw):
    _, flows = raw
    assert set(flows["evidence"]) <= {"published", "typical"}
    assert (flows["evidence"] == "published").sum() >= 30
    typical = flows[(flows["evidence"] == "typical") & (flows["quantity"] != "")]
    assert typical["description"].str.contains("typical|estimate", case=False).all()


def test_matching_the_demo_gives_over_150_ranked_links(links):
    assert len(links) >= 150
    # new opportunities first, best first; then links within one operator and running exchanges; within each,
    # links that the regional allocation leaves empty follow those that carry something
    tier = links["allocated_quantity"].eq(0)
    for _, group in links.groupby([links["status"], tier], sort=False):
        assert group["score"].is_monotonic_decreasing
    assert links["status"].map({"new": 0, "same site": 0, "same operator": 1, "existing": 2}).is_monotonic_increasing
    assert links["why"].str.len().gt(20).all()
    assert links["supply_facility_id"].nunique() >= 40


def test_every_country_view_shows_links(links):
    # a country's view (?country=NO) shows the links with an end in that country
    ends = set(links["supply_country"]) | set(links["demand_country"])
    assert COUNTRIES <= ends, sorted(COUNTRIES - ends)


def test_every_facility_lies_in_its_country():
    regions = gpd.read_file(shared("boundaries", "nuts_2021_bsr_60m.geojson"))
    countries = regions[regions["LEVL_CODE"] == 0].to_crs(3035).set_index("CNTR_CODE")
    fac = load_dataset(DEMO / "facilities.csv").facilities.to_crs(3035)
    # the 1:60M outlines are generalised by up to ~10 km (Tornio falls on the Swedish side, harbours at sea),
    # so a point must lie near its own country and not deep inside another
    slack_m = 12_000
    for row in fac.itertuples():
        assert row.country in countries.index, f"{row.facility_id}: no outline for {row.country}"
        own = countries.loc[row.country, "geometry"]
        assert own.distance(row.geometry) < slack_m, f"{row.facility_id} is not in {row.country}"
        for code, other in countries.drop(index=row.country)["geometry"].items():
            depth = other.exterior.distance(row.geometry) if other.geom_type == "Polygon" else other.boundary.distance(row.geometry)
            assert not (other.contains(row.geometry) and depth > slack_m), f"{row.facility_id} lies in {code}"


def test_every_facility_lies_within_3_km_of_its_own_country():
    outlines = ROOT / "static" / "vendor" / "world-atlas" / "countries-10m.json"
    if not outlines.is_file():
        pytest.skip(f"{outlines} not installed; run 'make vendor'")
    world = gpd.read_file(outlines, layer="countries").set_crs(4326, allow_override=True)
    countries = world[world["name"].isin(NATURAL_EARTH.values())].set_index("name").to_crs(3035)
    fac = load_dataset(DEMO / "facilities.csv").facilities.to_crs(3035)
    own = countries.loc[fac["country"].map(NATURAL_EARTH), "geometry"].to_numpy()
    # the Natural Earth 1:10m outline is land, so this also keeps every point on or near the shore
    points = fac.geometry.reset_index(drop=True)
    gap_m = pd.Series(gpd.GeoSeries(own, crs=3035).distance(points, align=False).to_numpy(), index=fac["facility_id"])
    allowed_m = gap_m.index.map(lambda fid: OUTLINE_GAPS_M.get(fid, LAND_SLACK_M)).to_numpy()
    assert (gap_m <= allowed_m).all(), gap_m[gap_m > allowed_m].round().to_dict()
    # an allowance that is no longer needed (a point moved, a facility left) is dropped, not kept
    assert {fid for fid in OUTLINE_GAPS_M if gap_m.get(fid, 0) > LAND_SLACK_M} == set(OUTLINE_GAPS_M)


def test_points_taken_from_the_register_match_it(raw):
    """A facility placed from the EEA's Nordic register file lies where the register says (a transcription check)."""
    path = shared("eprtr_nordics", "F1_4_Air_Releases_Facilities_Nordics.csv")
    register = pd.read_csv(path, encoding="utf-8-sig", usecols=["FacilityInspireId", "reportingYear", "Longitude",
                                                                "Latitude"])
    latest = register.sort_values("reportingYear").groupby("FacilityInspireId").last()
    facilities, _ = raw
    checked = 0
    for row in facilities.itertuples():
        slack = REGISTER_SLACK_M[row.precision]
        cited = re.findall(r"\b(?:SE|DK|NO)\.(?:CAED|EEA)/[\w.-]+?\.(?:Facility|FACILITY)\b", row.notes)
        if slack is None or not cited:
            continue
        point = gpd.GeoSeries(gpd.points_from_xy([float(row.lon)], [float(row.lat)]), crs=4326).to_crs(3035)
        near = []
        for inspire_id in cited:
            assert inspire_id in latest.index, f"{row.facility_id}: {inspire_id} is not in the register file"
            ref = latest.loc[inspire_id]
            ref_point = gpd.GeoSeries(gpd.points_from_xy([ref["Longitude"]], [ref["Latitude"]]), crs=4326).to_crs(3035)
            near.append(float(point.distance(ref_point).iloc[0]))
        # the point is the register's own, or one that the notes compare with it
        assert min(near) <= slack, f"{row.facility_id}: {min(near):.0f} m from its register point"
        checked += 1
    assert checked >= 30


# wording of a description that says an exchange runs today, and of one that only says it could
RUNS = re.compile(r"\b(?:delivered|sold|sells|bought|taken from|recovered by|digested at|sent back|returned from|"
                  r"passed to|separated (?:at|as)|from the (?:adjacent|neighbouring))\b", re.I)
MAYBE = re.compile(r"\b(?:could|can take|suitable|available|obtainable|potential|candidate)\b", re.I)


def test_documented_exchanges_are_marked_existing_and_ranked_after_new_ones(demo, links):
    existing = links[links["status"] == "existing"]
    # Tornion Voima's steam to Outokumpu, Boliden Kokkola's steam, Linde's hydrogen to Neste, Kakola's sludge to
    # Gasum, the Harjavalta park's steam and acid, the Riihimäki and Salo waste exchanges and others (SOURCES.md)
    assert len(existing) >= 15
    # and those the issue names: Asnæs steam to Novo Nordisk, Händelöverket steam to Agroetanol, Agroetanol's CO2 to
    # Norlic, Skoghall's heat to Karlstads Energi, SSAB Luleå's gas to LuleKraft, LuleKraft's heat to Luleå Energi
    pairs = set(zip(existing["supply_facility_id"], existing["demand_facility_id"], existing["resource"]))
    assert {("SN-KAL-ASNAES", "SN-KAL-NOVONORDISK", "heat.steam"),
            ("SN-HAN-HANDELOVERKET", "SN-HAN-AGROETANOL", "heat.steam"),
            ("SN-HAN-AGROETANOL", "SN-HAN-NORLIC", "gas.co2"),
            ("SN-PPV-SKOGHALL", "SN-PPV-KEDH", "heat.hot_water"),
            ("SN-LUL-SSAB", "SN-LUL-LULEKRAFT", "gas.fuel_gas"),
            ("SN-LUL-LULEKRAFT", "SN-LUL-LULEAENERGI", "heat.hot_water")} <= pairs
    flows = demo.flows.set_index("flow_id")
    for link in existing.itertuples():
        # the flow that names the other facility is of the link's resource and says that the exchange runs
        naming = [(flows.loc[link.supply_flow_id], link.demand_facility_id, link.resource),
                  (flows.loc[link.demand_flow_id], link.supply_facility_id, link.demand_resource)]
        said = [flow["description"] for flow, other, resource in naming
                if other in flow["partners"].split() and flow["resource"] == resource]
        assert any(RUNS.search(text) and not MAYBE.search(text) for text in said), (link.supply_name, link.demand_name)
    assert existing["rank"].min() > links.loc[links["status"] == "new", "rank"].max()
