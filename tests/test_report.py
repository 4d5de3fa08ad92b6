"""The region's results against a hand-computed case: potential, pursued and running counted once, and the HTML
report of a cluster read back."""

from __future__ import annotations

from datetime import datetime, timezone
from html.parser import HTMLParser

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from geo import settings
from geo.allocation import allocate, allocation_totals
from geo.errors import InputError
from geo.pipeline import match
from geo.privacy import sector_label
from geo.report import MEASURES, cluster_report_html, region_totals, sector_flows
from geo.schema import Dataset
from geo.synergy import SYNERGY_FIELDS, link_key
from tests.conftest import declared_flows

HOSTILE = "<script>alert(1)</script>"
OWNER = '"><img src=x onerror=alert(1)>'


def _link(supply, demand, resource, unit, supply_qty, demand_qty, eur, co2, *, clusters, countries, naces, names,
          score, confidential=False):
    """A link as the engine gives it, from per-unit figures: matchable quantity the smaller side."""
    quantity = min(supply_qty, demand_qty)
    return {"supply_facility_id": supply, "demand_facility_id": demand, "resource": resource, "unit": unit,
            "supply_flow_id": f"s-{supply}", "demand_flow_id": f"d-{demand}", "quantity": float(quantity),
            "supply_quantity": float(supply_qty), "supply_unit": unit, "demand_quantity": float(demand_qty),
            "demand_unit": unit, "value_eur_per_yr": quantity * eur, "co2_saved_t_per_yr": quantity * co2,
            "score": score, "distance_km": 10.0, "supply_cluster": clusters[0], "demand_cluster": clusters[1],
            "supply_country": countries[0], "demand_country": countries[1], "supply_nace": naces[0],
            "demand_nace": naces[1], "supply_name": names[0], "demand_name": names[1],
            "confidential": confidential}


@pytest.fixture
def links(tax) -> pd.DataFrame:
    """Three fly ash suppliers competing for one cement works' 60,000 t/yr; two heat links, one in Turku.

    By hand: the allocation gives the cement works' whole demand to A, the
    most valuable (EUR 10/t against 8 and 6; 0.5 t CO2/t each), and each heat
    link its demand. Potential: 60,000 t/yr, 8,000 + 1,000 MWh/yr,
    30,000 + 1,600 + 200 = 31,800 t CO2/yr, 600,000 + 200,000 + 25,000 =
    EUR 825,000/yr.
    """
    ash = dict(clusters=("Kotka", "Kotka"), countries=("FI", "FI"), naces=("35.11", "23.51"))
    rows = [
        _link("A", "R", "mineral.fly_ash", "t/yr", 240_000, 60_000, 10.0, 0.5, **ash,
              names=(HOSTILE, "Cement works"), score=90.0),
        _link("B", "R", "mineral.fly_ash", "t/yr", 100_000, 60_000, 8.0, 0.5,
              **{**ash, "clusters": ("Hamina", "Kotka")}, names=("Hamina power", "Cement works"), score=80.0),
        _link("C", "R", "mineral.fly_ash", "t/yr", 50_000, 60_000, 6.0, 0.5,
              **{**ash, "clusters": ("Narva", "Kotka"), "countries": ("EE", "FI")}, names=("Secret Oy", "Cement works"),
              score=70.0, confidential=True),
        _link("H", "G", "heat.hot_water", "MWh/yr", 20_000, 8_000, 25.0, 0.2, clusters=("Kotka", "Kotka"),
              countries=("FI", "FI"), naces=("35.30", "01.13"), names=("Harbour boiler", "Greenhouse"), score=85.0),
        _link("X", "Y", "heat.hot_water", "MWh/yr", 3_000, 1_000, 25.0, 0.2, clusters=("Turku", "Turku"),
              countries=("FI", "FI"), naces=("35.30", "01.13"), names=("Turku boiler", "Turku greenhouse"),
              score=60.0),
    ]
    frame = pd.DataFrame(rows)
    return frame.join(allocate(frame, tax))


def _entry(supply, demand, resource, stage, *, realised=None, unit=None, owner=None, notes=()):
    return {"link_key": link_key(supply, demand, resource), "supply_facility_id": supply,
            "demand_facility_id": demand, "resource": resource, "stage": stage, "stage_at": "2026-05-04T10:00:00Z",
            "owner": owner, "notes": [{"at": "2026-05-04T10:00:00Z", "author": "Anna", "text": t} for t in notes],
            "realised_quantity": realised, "realised_unit": unit, "added_at": "2026-05-01T09:00:00Z",
            "added_by": "Anna", "version": 3}


@pytest.fixture
def entries() -> pd.DataFrame:
    """Two competing ash suppliers pursued, the third an idea, the heat link running at 5,000 MWh/yr."""
    return pd.DataFrame([
        _entry("A", "R", "mineral.fly_ash", "contacted", owner=OWNER, notes=["<b>bold</b> & co"]),
        _entry("B", "R", "mineral.fly_ash", "in discussion"),
        _entry("C", "R", "mineral.fly_ash", "idea", notes=["Secret Oy wants 40 EUR/t"]),
        _entry("H", "G", "heat.hot_water", "running", realised=5_000.0, unit="MWh/yr"),
    ], columns=[*SYNERGY_FIELDS, "version"])


def _level(totals: pd.DataFrame, level: str) -> pd.Series:
    return totals.set_index("level").loc[level]


# --- counted once -------------------------------------------------------------------------------------------------

def test_region_totals_count_each_supply_and_demand_once(links, entries, tax):
    totals = region_totals(links, entries, taxonomy=tax)
    assert list(totals["level"]) == ["potential", "pursued", "running"]
    potential = _level(totals, "potential")
    assert potential[MEASURES].tolist() == pytest.approx([60_000, 9_000, 0, 31_800, 825_000])
    assert potential["links"] == 3  # A->R, H->G and X->Y carry something; B and C lose to A
    ash = links["resource"] == "mineral.fly_ash"
    assert links.loc[ash, "quantity"].sum() == 170_000  # the pairwise sum: one demand of 60,000 t counted thrice
    # pursued: A (contacted) and B (in discussion) compete for the same demand: 60,000 t, not 120,000
    pursued = _level(totals, "pursued")
    assert pursued[MEASURES].tolist() == pytest.approx([60_000, 0, 0, 30_000, 600_000])
    assert pursued["links"] == 2
    # running: the realised 5,000 MWh at the link's 0.2 t CO2 and EUR 25 per MWh
    running = _level(totals, "running")
    assert running[MEASURES].tolist() == pytest.approx([0, 5_000, 0, 1_000, 125_000])
    assert (running["links"], running["from_allocation"], running["not_in_match"]) == (1, 0, 0)


def test_potential_is_the_engines_allocation_total(links, entries, tax):
    oracle = allocation_totals(links).iloc[0]
    potential = _level(region_totals(links, entries, taxonomy=tax), "potential")
    for column in MEASURES:
        assert potential[column] == pytest.approx(oracle[column])


@pytest.mark.parametrize(("realised", "unit"), [(None, None), (5_000.0, "t/yr")])
def test_a_running_link_without_a_usable_realised_quantity_counts_its_allocation_and_is_marked(
        links, entries, tax, realised, unit):
    running = entries["stage"] == "running"
    entries.loc[running, "realised_quantity"], entries.loc[running, "realised_unit"] = realised, unit
    row = _level(region_totals(links, entries, taxonomy=tax), "running")
    assert row[["quantity_mwh_per_yr", "co2_saved_t_per_yr", "value_eur_per_yr"]].tolist() == pytest.approx(
        [8_000, 1_600, 200_000])
    assert row["from_allocation"] == 1


def test_groups_add_up_to_the_region_and_each_has_the_three_levels(links, entries, tax):
    region = region_totals(links, entries, taxonomy=tax).set_index("level")
    for by in ("cluster", "country", "resource_group", ["country", "resource_group"]):
        grouped = region_totals(links, entries, by=by, taxonomy=tax)
        assert (grouped.groupby(by if isinstance(by, list) else [by]).size() == 3).all()
        summed = grouped.groupby("level")[MEASURES].sum()
        for level in region.index:
            assert summed.loc[level].tolist() == pytest.approx(region.loc[level, MEASURES].tolist())
    clusters = region_totals(links, entries, by="cluster", taxonomy=tax).set_index(["cluster", "level"])
    assert clusters.loc[("Hamina", "pursued"), "links"] == 1
    assert clusters.loc[("Hamina", "pursued"), "quantity_t_per_yr"] == pytest.approx(0)  # B gets nothing
    assert clusters.loc[("Turku", "potential"), "quantity_mwh_per_yr"] == pytest.approx(1_000)
    by_receiver = region_totals(links, entries, by="cluster", side="demand", taxonomy=tax).set_index(
        ["cluster", "level"])
    assert sorted(by_receiver.index.get_level_values(0).unique()) == ["Kotka", "Turku"]


def test_the_three_suppliers_of_a_real_match_count_the_demand_once_however_many_are_pursued(tax):
    frame = pd.DataFrame([("R", "Receiver", 25.0, 61.0), ("A", "Near", 25.037, 61.0), ("B", "Middle", 25.11, 61.0),
                          ("C", "Far", 25.185, 61.0)], columns=["facility_id", "name", "lon", "lat"])
    frame[["nace", "country", "cluster"]] = ["", "FI", "Test park"]
    facilities = gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame["lon"], frame["lat"]), crs=settings.WGS84)
    flows = declared_flows(
        ("R", "demand", "mineral.fly_ash", 60_000, "t/yr"), ("A", "supply", "mineral.fly_ash", 240_000, "t/yr"),
        ("B", "supply", "mineral.fly_ash", 2_520_000, "t/yr"), ("C", "supply", "mineral.fly_ash", 569_000, "t/yr"))
    links = match(Dataset(facilities, flows), taxonomy=tax).links
    pursued = pd.DataFrame([_entry(s, "R", "mineral.fly_ash", "feasibility") for s in "ABC"])
    totals = region_totals(links, pursued, taxonomy=tax)
    assert _level(totals, "potential")["quantity_t_per_yr"] == pytest.approx(60_000)
    assert _level(totals, "pursued")["quantity_t_per_yr"] == pytest.approx(60_000)
    assert _level(totals, "pursued")["links"] == 3


def test_a_match_without_allocation_or_an_unknown_grouping_is_refused(links, entries, tax):
    with pytest.raises(InputError, match="no allocation"):
        region_totals(links.assign(allocated_quantity=np.nan), entries, taxonomy=tax)
    with pytest.raises(InputError, match="Cannot group totals by 'sector'"):
        region_totals(links, entries, by="sector", taxonomy=tax)


def test_a_pipeline_link_the_match_lost_is_counted_as_lost_and_placed_from_the_facilities(links, entries, tax):
    lost = pd.DataFrame([_entry("A", "Q", "mineral.fly_ash", "agreed")])
    facilities = pd.DataFrame({"facility_id": ["A", "Q"], "cluster": ["Kotka", "Kotka"], "country": ["FI", "FI"]})
    totals = region_totals(links, pd.concat([entries, lost]), by="cluster", taxonomy=tax, facilities=facilities)
    kotka = totals.set_index(["cluster", "level"]).loc[("Kotka", "pursued")]
    assert (kotka["links"], kotka["not_in_match"]) == (2, 1)
    assert kotka["quantity_t_per_yr"] == pytest.approx(60_000)


# --- flows between sectors ------------------------------------------------------------------------------------

def test_sector_flows_give_the_sankey_the_allocated_flows(links, entries, tax):
    flows = sector_flows(links, entries, taxonomy=tax)
    energy, cement, farm = (sector_label(code, section_only=True) for code in ("35.11", "23.51", "01.13"))
    rows = {(r.source, r.target, r.resource_group): r for r in flows.itertuples()}
    assert set(rows) == {(energy, cement, "mineral"), (energy, farm, "heat")}
    assert rows[(energy, cement, "mineral")].quantity_t_per_yr == pytest.approx(60_000)
    assert rows[(energy, farm, "heat")].quantity_mwh_per_yr == pytest.approx(9_000)
    running = sector_flows(links, entries, level="running", taxonomy=tax)
    assert running[["source", "target"]].values.tolist() == [[energy, farm]]
    assert running["quantity_mwh_per_yr"].tolist() == pytest.approx([5_000])
    with pytest.raises(InputError, match="level is one of"):
        sector_flows(links, entries, level="dreamt")


# --- the report of a cluster, read back --------------------------------------------------------------------------

class _Page(HTMLParser):
    """The parts of a page a test looks at: tags, attributes, text, and the cells of each table row."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []
        self.elements: list[tuple[str, list]] = []
        self.text: list[str] = []
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes.extend(attrs)
        self.elements.append((tag, attrs))
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def test_the_cluster_report_holds_the_totals_chart_and_pipeline_with_names_escaped(links, entries, tax):
    page = cluster_report_html(links, entries, cluster="Kotka", taxonomy=tax,
                               generated_at=datetime(2026, 5, 4, tzinfo=timezone.utc))
    parsed = _Page()
    parsed.feed(page)
    # nothing runs and nothing is fetched
    assert "script" not in parsed.tags and "img" not in parsed.tags
    assert not [a for a in parsed.attributes if a[0] in ("src", "href") or a[0].startswith("on")]
    # the hostile names are shown as text
    text = "".join(parsed.text)
    assert HOSTILE in text and OWNER in text and "<b>bold</b> & co" in text
    assert "2026-05-04" in text and "Industrial symbiosis in Kotka" in text
    # totals of the links with an end in Kotka (Turku's link is not one of them)
    rows = {r[0]: r[1:] for r in parsed.rows if r and r[0] in ("Potential", "Pursued", "Running")}
    assert rows["Potential"] == ["2", "60,000", "8,000", "0", "31,600", "800,000"]
    assert rows["Pursued"] == ["2", "60,000", "0", "0", "30,000", "600,000"]
    assert rows["Running"] == ["1", "0", "5,000", "0", "1,000", "125,000"]
    # the chart: one bar per level in each of its two panels, their lengths in proportion
    assert parsed.tags.count("svg") == 2 and parsed.tags.count("rect") == 6
    widths = [float(dict(attrs)["width"]) for tag, attrs in parsed.elements if tag == "rect"]
    co2, eur = widths[:3], widths[3:]
    assert [w / co2[0] for w in co2] == pytest.approx([1, 30_000 / 31_600, 1_000 / 31_600], abs=1e-3)
    assert [w / eur[0] for w in eur] == pytest.approx([1, 600_000 / 800_000, 125_000 / 800_000], abs=1e-3)
    # the pipeline: in stage order; the confidential supplier is not named, nor its note
    pipeline = [r for r in parsed.rows if r and r[0] in ("idea", "contacted", "in discussion", "running")]
    assert [r[0] for r in pipeline] == ["idea", "contacted", "in discussion", "running"]
    assert pipeline[1][2] == HOSTILE and pipeline[1][5] == OWNER
    assert pipeline[3][7] == "5,000 MWh/yr"
    assert "Secret Oy" not in page and pipeline[0][2] == "Confidential supplier"


def test_a_cluster_without_pipeline_says_so(links, tax):
    page = cluster_report_html(links, None, cluster="Turku", taxonomy=tax, title="Turku & <friends>")
    parsed = _Page()
    parsed.feed(page)
    text = "".join(parsed.text)
    assert "Turku & <friends>" in text and "No link of this cluster is in the pipeline yet." in text
    rows = {r[0]: r[1:] for r in parsed.rows if r and r[0] == "Potential"}
    assert rows["Potential"] == ["1", "0", "1,000", "0", "200", "25,000"]
