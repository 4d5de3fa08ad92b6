"""The public views: a confidential link keeps no name, operator, exact figure or place, and no filter,
panel or export traces it to a company."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import struct

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook
from pyproj import Transformer

from geo.dataset import facility_roles, load_dataset
from geo.export import write_links
from geo.pipeline import match
from geo.privacy import (
    CELL_SIZES_KM,
    MIN_SHARED,
    generalise_points,
    nace_section,
    pseudonym,
    public_links,
    sector_label,
    select_view,
)
from geo.selection import Filters
from layers.assets import vendored
from tests.conftest import ROOT

DEMO = ROOT / "data" / "demo"
#: Columns that would give a confidential flow's size away.
FIGURES = ("quantity", "quantity_low", "quantity_high", "supply_quantity", "demand_quantity", "co2_saved_t_per_yr",
           "value_eur_per_yr", "allocated_quantity", "allocated_co2_saved_t_per_yr", "allocated_value_eur_per_yr")
TO_GRID = Transformer.from_crs("EPSG:4326", "EPSG:3035", always_xy=True)


def test_no_column_of_a_confidential_link_names_its_companies_or_gives_its_quantities():
    data = load_dataset(DEMO / "facilities.csv", DEMO / "flows.csv")
    supplies = data.flows.index[(data.flows["direction"] == "supply") & data.flows["quantity"].gt(1000)]
    data.flows.loc[supplies[:5], "confidential"] = True
    links = match(data).links
    hidden = links[links["confidential"]]
    assert len(hidden)
    public = public_links(links, facilities=data.facilities)
    facilities = data.facilities.set_index("facility_id")
    places = {(round(lon, 3), round(lat, 3))
              for lon, lat in zip(data.facilities["lon"], data.facilities["lat"], strict=True)}
    for i in hidden.index.intersection(public.index):
        row = public.loc[i]
        secrets = set()
        for side in ("supply", "demand"):
            fac = facilities.loc[links.loc[i, f"{side}_facility_id"]]
            secrets |= {fac["name"], links.loc[i, f"{side}_facility_id"], fac["operator"].split(",")[0]} - {""}
            assert (round(row[f"{side}_lon"], 3), round(row[f"{side}_lat"], 3)) not in places
        figures = {f"{links.loc[i, c]:,.0f}" for c in ("quantity", "supply_quantity", "demand_quantity")
                   if np.isfinite(links.loc[i, c]) and links.loc[i, c] >= 1000}
        for column, value in row.items():
            if isinstance(value, str):
                assert not any(s in value for s in secrets), (column, value)
                assert not any(f in value for f in figures), (column, value)
            elif isinstance(value, float) and column in FIGURES:
                assert np.isnan(value), column


@pytest.mark.parametrize(("code", "section"), [
    ("C17.12", "C"), ("17.12", "C"), ("35.30", "D"), ("D35.30", "D"), ("01.13", "A"), ("38.21", "E"),
    ("99", "U"), ("", ""), ("paper", ""), (None, ""),
])
def test_nace_section_from_letter_or_division(code, section):
    assert nace_section(code) == section


def test_labels_name_the_section_of_codes_without_a_letter():
    assert sector_label("17.12") == "Manufacturing (NACE 17)"
    assert sector_label("C17.12", section_only=True) == "Manufacturing (NACE C)"
    assert sector_label("", section_only=True) == "Unknown sector"


def test_pseudonyms_are_stable_but_not_an_unkeyed_hash_of_the_id():
    assert pseudonym("FA-1") == pseudonym("FA-1") != pseudonym("FA-2")
    assert pseudonym("FA-1")[5:] not in hashlib.sha256(b"FA-1").hexdigest()


# --- grid cells ---------------------------------------------------------------------

def _brute_cell_km(x: float, y: float, group: str, px, py, pgroups) -> float:
    """The smallest cell size whose cell around (x, y) holds MIN_SHARED of the group, by a plain loop."""
    for km in CELL_SIZES_KM:
        size = km * 1000.0
        same = sum(1 for a, b, g in zip(px, py, pgroups, strict=True)
                   if g == group and a // size == x // size and b // size == y // size)
        if same >= MIN_SHARED:
            return float(km)
    return float("nan")


def test_grid_cells_match_a_brute_force_count_and_hold_the_point():
    rng = np.random.default_rng(7)
    population = pd.DataFrame({"lon": rng.uniform(20.0, 28.0, 300), "lat": rng.uniform(59.5, 66.0, 300),
                               "group": rng.choice(["C", "D", "E"], 300, p=[0.6, 0.3, 0.1])})
    rare = pd.DataFrame({"lon": [21.0, 27.0], "lat": [60.0, 65.5], "group": ["B", "B"]})  # 650 km apart
    population = pd.concat([population, rare], ignore_index=True)
    points = pd.concat([population.iloc[:300].sample(60, random_state=1), rare])
    cells = generalise_points(points["lon"], points["lat"], points["group"], population=population)
    px, py = TO_GRID.transform(population["lon"].to_numpy(), population["lat"].to_numpy())
    x, y = TO_GRID.transform(points["lon"].to_numpy(), points["lat"].to_numpy())
    cx, cy = TO_GRID.transform(cells["lon"].to_numpy(), cells["lat"].to_numpy())
    for i, group in enumerate(points["group"]):
        expected = _brute_cell_km(x[i], y[i], group, px, py, population["group"])
        got = cells["cell_km"].iloc[i]
        assert (np.isnan(expected) and np.isnan(got)) or got == expected, (i, group, got, expected)
        if np.isfinite(got):  # the point lies in the cell whose centre is given, and is not that centre
            half = got * 500.0
            assert abs(x[i] - cx[i]) <= half + 1e-3 and abs(y[i] - cy[i]) <= half + 1e-3
            assert (round(cells["lon"].iloc[i], 3), round(cells["lat"].iloc[i], 3)) != \
                   (round(points["lon"].iloc[i], 3), round(points["lat"].iloc[i], 3))
    assert cells["cell_km"].iloc[-2:].isna().all()  # two of a group: no cell holds three
    assert cells["cell_km"].iloc[:-2].notna().all()


# --- a small workspace with one confidential company ----------------------------------

SECRET_NAME = "Salainen Teräs Oy"
SECRET_ID = "SECRET-STEEL"
SECRET_PLACE = (25.00123, 61.00345)
SECRET_QUANTITY = 12_345.0


def _facility(fid, name, lon, lat, nace, cluster="Lakeside"):
    return {"facility_id": fid, "name": name, "lon": lon, "lat": lat, "nace": nace, "country": "FI",
            "cluster": cluster, "operator": name}


def _link(rank, supply, demand, resource, quantity, km, score, *, confidential, s_flow, d_flow, status="new"):
    return {"rank": rank, "score": score, "status": status, "supply_facility_id": supply["facility_id"],
            "supply_name": supply["name"], "demand_facility_id": demand["facility_id"], "demand_name": demand["name"],
            "resource": resource, "quantity": quantity, "unit": "t/yr", "distance_km": km, "straight_km": km / 1.3,
            "distance_source": "estimate", "co2_saved_t_per_yr": quantity / 10, "basis": "declared",
            "why": f"{supply['name']} could supply {quantity:,.0f} t/yr to {demand['name']}",
            "part_distance": 1 - km / 100, "existing": False, "allocated_quantity": quantity / 2,
            "competitors": 1, "allocation_note": f"this link gets {quantity / 2:,.0f} t/yr",
            "supply_flow_id": s_flow, "demand_flow_id": d_flow, "supply_description": f"{supply['name']} output",
            "supply_nace": supply["nace"], "supply_country": "FI", "supply_cluster": supply["cluster"],
            "supply_operator": supply["operator"], "demand_nace": demand["nace"], "demand_country": "FI",
            "demand_cluster": demand["cluster"], "demand_operator": demand["operator"],
            "confidential": confidential, "supply_lon": supply["lon"], "supply_lat": supply["lat"],
            "demand_lon": demand["lon"], "demand_lat": demand["lat"]}


def _small():
    """Facilities, flows and links: a steel works whose only flow is confidential, its receiver, neighbours."""
    steel = _facility(SECRET_ID, SECRET_NAME, *SECRET_PLACE, "C24.10", cluster="Steel town")
    cement = _facility("CEM", "Public Cement", 25.03, 61.01, "C23.51")
    quarry = _facility("QRY", "Public Quarry", 25.10, 61.05, "B08.11")
    heat = _facility("HEAT", "Town Heat", 25.05, 61.00, "D35.30")
    greenhouse = _facility("GH", "Greenhouse", 25.06, 61.01, "A01.13")
    others = [_facility(f"M{i}", f"Mill {i}", 25.0 + 0.01 * i, 61.02 - 0.005 * i, "C17.12") for i in range(1, 4)]
    facilities = pd.DataFrame([steel, cement, quarry, heat, greenhouse, *others])
    facilities["role"] = "none"
    flows = pd.DataFrame([
        {"facility_id": SECRET_ID, "direction": "supply", "resource": "mineral.slag", "quantity": SECRET_QUANTITY,
         "confidential": True},
        {"facility_id": "CEM", "direction": "demand", "resource": "mineral.slag", "quantity": 30_000.0,
         "confidential": False},
        {"facility_id": "QRY", "direction": "supply", "resource": "mineral.slag", "quantity": 8_000.0,
         "confidential": False},
        {"facility_id": "HEAT", "direction": "supply", "resource": "heat.hot_water", "quantity": 5_000.0,
         "confidential": False},
        {"facility_id": "GH", "direction": "demand", "resource": "heat.hot_water", "quantity": 5_000.0,
         "confidential": False},
    ])
    links = pd.DataFrame([
        _link(1, heat, greenhouse, "heat.hot_water", 5_000.0, 1.2, 90.2, confidential=False, s_flow="f-heat",
              d_flow="f-gh"),
        _link(2, steel, cement, "mineral.slag", SECRET_QUANTITY, 2.3, 77.7, confidential=True, s_flow="f-steel",
              d_flow="f-cem"),
        _link(3, quarry, cement, "mineral.slag", 8_000.0, 7.4, 60.0, confidential=False, s_flow="f-qry",
              d_flow="f-cem"),
    ])
    return facilities, flows, links


def _secret_row(links: pd.DataFrame) -> pd.Series:
    rows = links[links["rank"] == 2]
    assert len(rows) == 1
    return rows.iloc[0]


def test_the_public_view_shows_the_confidential_link_but_not_its_company():
    facilities, flows, links = _small()
    shown, public = select_view(facilities, flows, links, Filters())
    assert SECRET_ID not in set(shown["facility_id"])  # its only flow is confidential: no marker at all
    assert shown.set_index("facility_id")["role"].to_dict() == {
        "CEM": "receiver", "QRY": "supplier", "HEAT": "supplier", "GH": "receiver", "M1": "none", "M2": "none",
        "M3": "none"}
    row = _secret_row(public)
    assert row["supply_name"] == "Manufacturing (NACE C)" and row["supply_facility_id"] == ""
    assert row["quantity_range"] == "10,000-25,000 t/yr" and row["distance_km"] == 10.0 and row["score"] == 78.0
    places = {(round(lon, 3), round(lat, 3)) for lon, lat in zip(facilities["lon"], facilities["lat"], strict=True)}
    for side in ("supply", "demand"):
        assert (round(row[f"{side}_lon"], 3), round(row[f"{side}_lat"], 3)) not in places
        assert row[f"{side}_cell_km"] in CELL_SIZES_KM
    # both ends fall in one 10 km cell: the link is drawn across its middle, half a cell long, not as a point
    x, y = TO_GRID.transform([row["supply_lon"], row["demand_lon"]], [row["supply_lat"], row["demand_lat"]])
    assert row["supply_cell_km"] == row["demand_cell_km"] == 10.0
    assert x[1] - x[0] == pytest.approx(5_000.0, abs=0.01) and y[1] == pytest.approx(y[0], abs=0.01)
    assert ((x[0] + x[1]) / 2) % 10_000 == pytest.approx(5_000.0, abs=0.01)
    text = json.dumps({k: (None if pd.isna(v) else v) for k, v in row.items()}, default=str, ensure_ascii=False)
    for secret in (SECRET_NAME, SECRET_ID, "Public Cement", "Steel town", "12,345", "12345", "2.3", "77.7"):
        assert secret not in text, secret
    # the public links are as they were, but the one sharing the cement works' demand with the hidden one
    # gives no allocation (what it does not get would tell the hidden quantity)
    heat_row, quarry_row = public.set_index("rank").loc[1], public.set_index("rank").loc[3]
    assert heat_row["supply_name"] == "Town Heat" and heat_row["allocated_quantity"] == 2_500.0
    assert quarry_row["supply_name"] == "Public Quarry" and np.isnan(quarry_row["allocated_quantity"])
    assert quarry_row["allocation_note"] == "" and quarry_row["quantity"] == 8_000.0
    assert list(public["rank"]) == [1, 2, 3]


@pytest.mark.parametrize(("filters", "shown"), [
    (Filters(), True),
    (Filters(countries=["FI"]), True),
    (Filters(search="Salainen"), False),  # its name finds nothing
    (Filters(search=SECRET_ID), False),
    (Filters(search="Public Cement"), False),  # nor does its partner's: the hidden link belongs to no named facility
    (Filters(clusters=["Steel town"]), False),
    (Filters(max_km=9.9), False),  # the filters judge the rounded distance and score shown
    (Filters(max_km=10.0), True),
    (Filters(min_score=78.0), True),
    (Filters(min_score=78.5), False),
    (Filters(groups=["heat"]), False),
])
def test_filters_select_a_confidential_link_only_by_what_the_view_shows(filters, shown):
    facilities, flows, links = _small()
    fac, public = select_view(facilities, flows, links, filters)
    assert (2 in set(public["rank"])) is shown
    assert SECRET_ID not in set(fac["facility_id"])


def test_a_confidential_end_that_no_cell_can_hide_is_left_out():
    facilities, flows, links = _small()
    alone = facilities[facilities["facility_id"].isin([SECRET_ID, "CEM"])]
    far = alone.assign(lon=[25.0, 14.0], lat=[61.0, 55.0])  # two facilities, 700 km apart: no cell holds three
    _, public = select_view(far, flows, links[links["rank"] == 2], Filters())
    assert public.empty


@pytest.mark.parametrize("view", ["public", "screen"])
def test_a_link_left_out_leaves_no_gap_in_the_ranks_nor_in_the_count(view):
    """The confidential link no cell can hide (rank 2) is left out; rank 3 becomes 2 and the total says 2 links,
    so nothing tells that a third exists, nor about where it ranked."""
    facilities, flows, links = _small()
    far = facilities.assign(lon=np.where(facilities["facility_id"] == SECRET_ID, 14.0, facilities["lon"]),
                            lat=np.where(facilities["facility_id"] == SECRET_ID, 55.0, facilities["lat"]))
    secret = links["rank"] == 2
    links.loc[secret, "supply_lon"], links.loc[secret, "supply_lat"] = 14.0, 55.0
    _, public = select_view(far, flows, links, Filters(view=view))
    assert list(public["rank"]) == [1, 2] and public.attrs["of"] == 2
    assert list(public["score"]) == [90.2, 60.0]
    only_quarry = select_view(far, flows, links, Filters(view=view, min_score=61.0))[1]
    assert list(only_quarry["rank"]) == [1] and only_quarry.attrs["of"] == 2
    everything = public_links(links, facilities=far, everything=view == "screen")
    assert list(everything["rank"]) == [1, 2] and everything.attrs["of"] == 2
    full = select_view(far, flows, links, Filters(view="full"))[1]
    assert list(full["rank"]) == [1, 2, 3] and full.attrs["of"] == 3


def test_the_public_screen_hides_every_name_and_its_search_sees_only_what_it_shows():
    facilities, flows, links = _small()
    fac, public = select_view(facilities, flows, links, Filters(view="screen"))
    assert not fac["name"].isin(facilities["name"]).any() and fac["facility_id"].str.startswith("site-").all()
    assert public["supply_name"].str.contains(r"\(NACE ").all() and public["quantity"].isna().all()
    assert _secret_row(public)["supply_facility_id"] == ""  # no pseudonym to tie it to a marker
    # the heat link's ends carry the same pseudonyms as their markers, so a marker's panel lists it
    heat = public.set_index("rank").loc[1]
    assert heat["supply_facility_id"] == pseudonym("HEAT") and pseudonym("HEAT") in set(fac["facility_id"])
    assert select_view(facilities, flows, links, Filters(view="screen", search="Town Heat"))[1].empty
    assert select_view(facilities, flows, links, Filters(view="screen", search="HEAT"))[1].empty
    found = select_view(facilities, flows, links, Filters(view="screen", search=pseudonym("HEAT")))[1]
    assert list(found["rank"]) == [1]


def test_the_full_view_shows_everything():
    facilities, flows, links = _small()
    fac, full = select_view(facilities, flows, links, Filters(view="full"))
    assert SECRET_ID in set(fac["facility_id"])
    row = _secret_row(full)
    assert row["supply_name"] == SECRET_NAME and row["quantity"] == SECRET_QUANTITY
    assert (row["supply_lon"], row["supply_lat"]) == SECRET_PLACE


# --- every export of the public views, on the demo ------------------------------------

@pytest.fixture(scope="module")
def demo_with_a_confidential_company():
    """The demo with every flow of the Kemi mine confidential; its name, id, place and quantities."""
    data = load_dataset(DEMO / "facilities.csv", DEMO / "flows.csv")
    fid = "FA-KT-KEMIMINE"
    data.flows.loc[data.flows["facility_id"] == fid, "confidential"] = True
    result = match(data, infer=True)
    facilities = pd.DataFrame(data.facilities.drop(columns="geometry"))
    facilities["role"] = facility_roles(facilities, result.flows)
    company = facilities.set_index("facility_id").loc[fid]
    own = result.flows[result.flows["facility_id"] == fid]
    others = set(result.flows.loc[result.flows["facility_id"] != fid, "quantity"].dropna())
    quantities = [q for q in own["quantity"].dropna() if q not in others]
    assert result.links["supply_facility_id"].eq(fid).any() or result.links["demand_facility_id"].eq(fid).any()
    return facilities, result, fid, company, quantities


def _leaks(text: str, blob: bytes, secrets: dict) -> list[str]:
    """What of the secrets a file gives away: names and ids as text, the place and quantities as text
    (3 decimals; any thousands separator) or as 8-byte floats."""
    found = [name for name in secrets["names"] if name in text or name.encode() in blob]
    lon, lat = secrets["place"]
    pairs = {(round(float(a), 3), round(float(b), 3)) for a, b in
             re.findall(r"(-?\d+\.\d+)\W{1,4}(-?\d+\.\d+)", text)}
    if (round(lon, 3), round(lat, 3)) in pairs or (round(lat, 3), round(lon, 3)) in pairs:
        found.append("place as text")
    if struct.pack("<d", lon) in blob or struct.pack("<d", lat) in blob:
        found.append("place as numbers")
    for q in secrets["quantities"]:
        spelled = {f"{q:.0f}", f"{q:,.0f}", f"{q:,.0f}".replace(",", " "), f"{q:,.0f}".replace(",", "\u00a0")}
        if any(re.search(rf"(?<![\d.,]){re.escape(s)}(?![\d])", text) for s in spelled):
            found.append(f"quantity {q:,.0f} as text")
        if struct.pack("<d", q) in blob:
            found.append(f"quantity {q:,.0f} as a number")
    return found


@pytest.mark.parametrize("view", ["public", "screen"])
def test_no_export_of_a_public_view_gives_the_confidential_company_away(view, tmp_path,
                                                                       demo_with_a_confidential_company):
    facilities, result, fid, company, quantities = demo_with_a_confidential_company
    operators = facilities.loc[facilities["facility_id"] != fid, "operator"].str.cat(sep="\n")
    names = [company["name"], fid] + [o.strip() for o in company["operator"].split(",") if o.strip() not in operators]
    secrets = {"names": names,
               "place": (float(company["lon"]), float(company["lat"])), "quantities": quantities}
    shown, links = select_view(facilities, result.flows, result.links, Filters(view=view))
    assert links["confidential"].any()
    involved = shown[shown["facility_id"].isin(set(links["supply_facility_id"]) | set(links["demand_facility_id"]))]
    paths = [write_links(links, tmp_path / f"links{s}", facilities=involved, method={"view": view})
             for s in (".csv", ".xlsx", ".geojson", ".gpkg")]
    if vendored():
        from layers.html import write_standalone_map

        paths.append(write_standalone_map(involved, links, tmp_path / "links.html"))
    for path in paths:
        blob = path.read_bytes()
        text = _text_of(path, blob)
        assert _leaks(text, blob, secrets) == [], path.name
    # the same search finds the company in an export of the full view (so it would find a leak)
    full_fac, full_links = select_view(facilities, result.flows, result.links, Filters(view="full"))
    path = write_links(full_links, tmp_path / "full.csv", facilities=full_fac)
    blob = path.read_bytes()
    assert {"place as text"} <= set(_leaks(_text_of(path, blob), blob, secrets))
    assert company["name"] in _text_of(path, blob)


def _text_of(path, blob: bytes) -> str:
    """The text a reader of the file sees: every cell and attribute, and the raw text for text formats."""
    if path.suffix == ".xlsx":
        book = load_workbook(io.BytesIO(blob))
        return "\n".join("\t".join("" if c is None else str(c) for c in row)
                         for sheet in book for row in sheet.iter_rows(values_only=True))
    if path.suffix == ".gpkg":
        frame = gpd.read_file(path)
        coords = "\n".join(f"{x} {y}" for geom in frame.geometry for x, y in geom.coords)
        return frame.drop(columns="geometry").to_csv(index=False) + "\n" + coords
    if path.suffix == ".csv":
        text = blob.decode("utf-8-sig")
        return text + "\n" + "\n".join("\t".join(r) for r in csv.reader(io.StringIO(text)))
    return blob.decode("utf-8")


def test_the_public_views_list_no_cluster_that_only_a_confidential_site_has():
    """The filter lists of the public views come from what they show: 'Steel town' has only the steel works,
    whose every flow is confidential, so naming it would say such a site is there."""
    from app_pages.state import Loaded, _options, _public_options, view_options

    facilities, flows, links = _small()
    loaded = Loaded(facilities, flows, links, pd.DataFrame(), "test", options=_options(facilities, links),
                    public_options=_public_options(facilities, flows, links))
    assert "Steel town" in view_options(loaded, "full")["cluster"]
    for view in ("public", "screen"):
        options = view_options(loaded, view)
        assert options["cluster"] == ["Lakeside"] and options["country"] == ["FI"]
        assert options["group"] == view_options(loaded, "full")["group"]
