"""Each export opened as its reader would: Nordic Excel reading the CSV, openpyxl the workbook, QGIS's style
table in the GeoPackage, a browser the HTML map; and none of them gives a confidential company away."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import sqlite3
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
from openpyxl import load_workbook

from geo.export import (LABELS, SCORE_COLOURS, cell_text, describe_filters, method_rows, readable_links,
                        readable_values, significant, write_links)
from geo.pipeline import LINK_COLUMNS
from geo.privacy import select_view
from geo.selection import Filters
from layers.assets import vendored
from tests.test_privacy import _leaks, _text_of, demo_with_a_confidential_company  # noqa: F401 - a fixture

HOSTILE_NAME = "=cmd|' /C calc'!A1"
SCRIPT_NAME = "<script>alert(1)</script> Åbo Oy"
#: Debian's browser, as the other browser tests drive it.
CHROMIUM = "/usr/bin/chromium"
#: Where an import noted its file: a server folder that no export may show.
SERVER_FILE = "/tmp/uploads/7f3a/facilities.csv"


def _links() -> pd.DataFrame:
    """Six links as the engine gives them (no geometry): tonnes and MWh, a formula, a line break, a script."""
    n = 6
    frame = pd.DataFrame({
        "rank": np.arange(1, n + 1),
        "score": [95.04, 88.0, 80.55, 64.96, 50.0, 12.3],
        "status": ["new", "new", "existing", "new", "same site", "new"],
        "supply_facility_id": [f"S{i}" for i in range(n)],
        "supply_name": [HOSTILE_NAME, "Line\nbreak Oy", "Saha; Ab", "-2+3", "Kraft Oy", "Mill Oy"],
        "demand_facility_id": [f"D{i}" for i in range(n)],
        "demand_name": [SCRIPT_NAME, "Växthus Ab", "Cement Oy", "Farm Ab", "Heat Oy", "Pulp Oy"],
        "resource": ["mineral.fly_ash", "heat.hot_water", "mineral.slag", "heat.hot_water", "heat.hot_water",
                     "mineral.fly_ash"],
        "quantity": [61873.0, 12345.0, 1500.0, 500.0, 250.0, 0.012345],
        "unit": ["t/yr", "MWh/yr", "t/yr", "MWh/yr", "MWh/yr", "t/yr"],
        "distance_km": [12.3456, 0.95, 48.04, 3.0, 7.25, 101.0], "distance_source": "estimate",
        "travel_time_min": [14.6, 1.2, 52.0, 3.4, 8.0, 95.5],
        "co2_saved_t_per_yr": [51962.99, 2468.2, 1234.5, 99.94, -12.345, 0.0],
        "value_eur_per_yr": [1553747.29, 150000.0, -2500.0, 12345.6, 5000.0, 1.0],
        "why": [f"{HOSTILE_NAME} could supply fly ash to {SCRIPT_NAME}; <img src=x onerror=alert(2)> & more.",
                "Heat for the greenhouse.", "Slag for cement.", "Heat for the farm.", "Heat next door.",
                "A little ash."],
        "part_co2": [1.0, 0.8994, 0.5, 0.25, 0.0, 0.1234],
        "existing": [False, False, True, False, False, False],
        "confidential": [False] * n,
        "rule_source": ["[K11]; [K15]", "[K5]", "[K11]", "[K5]", "[K5]", ""],
        "supply_lon": [22.0, 22.1, 22.2, 22.3, 22.4, 22.5], "supply_lat": [60.0, 60.1, 60.2, 60.3, 60.4, 60.5],
        "demand_lon": [22.05, 22.15, 22.25, 22.35, 22.45, 22.55],
        "demand_lat": [60.05, 60.15, 60.25, 60.35, 60.45, 60.55],
    })
    return frame


def _facilities() -> pd.DataFrame:
    ids = [f"S{i}" for i in range(6)] + [f"D{i}" for i in range(6)]
    return pd.DataFrame({
        "facility_id": ids, "name": [f"Site {i}" for i in ids], "lat": np.linspace(60, 60.6, 12),
        "lon": np.linspace(22, 22.6, 12), "nace": ["35.30", "C24.10", "38.21", "01.13"] * 3,
        "country": "FI", "cluster": "Turku", "operator": "", "role": ["supplier"] * 6 + ["receiver"] * 6,
        "source": "[FA-1]", "notes": "", "file": SERVER_FILE, "row": np.arange(2, 14),
    })


# --- labels and readable values -------------------------------------------------------------

def test_every_link_column_has_one_label_of_its_own():
    assert set(LINK_COLUMNS) <= set(LABELS)
    assert len(set(LABELS.values())) == len(LABELS)
    assert (LABELS["supply_name"], LABELS["demand_name"], LABELS["resource"], LABELS["score"],
            LABELS["distance_km"]) == ("Supplier", "Receiver", "Resource", "Score", "Distance (km)")


@pytest.mark.parametrize("column, value, shown", [
    ("quantity", 61873.0, 61900.0),  # 3 significant figures
    ("quantity", 0.012345, 0.0123),
    ("value_eur_per_yr", 1553747.29, 1550000.0),
    ("co2_saved_t_per_yr", -12.345, -12.3),
    ("distance_km", 12.3456, 12.3),  # km: one decimal
    ("score", 80.04, 80.0),  # scores: one decimal
    ("travel_time_min", 14.6, 15.0),  # whole minutes
    ("part_co2", 0.8994, 90.0),  # shares as per cents
    ("supply_lat", 60.1234567, 60.12346),  # about a metre
    ("resource", "mineral.fly_ash", "Fly ash"),  # names, not codes
    ("resource", "made.up_code", "made.up_code"),  # a code the knowledge base does not know stays
    ("existing", True, "yes"),
    ("transport_mode", "truck_bulk", "Truck (bulk)"),
])
def test_values_are_rounded_and_named_for_reading(column, value, shown):
    out = readable_values(pd.DataFrame({column: [value]}))[column].iloc[0]
    assert out == pytest.approx(shown) if isinstance(shown, float) else out == shown


def test_significant_figures_agree_with_python_formatting():
    values = np.random.default_rng(7).lognormal(mean=3, sigma=6, size=2000) * np.where(np.arange(2000) % 3, 1, -1)
    oracle = np.array([float(f"{v:.3g}") for v in values])
    np.testing.assert_array_equal(significant(values), oracle)
    assert np.isnan(significant([np.nan])[0]) and significant([0.0])[0] == 0.0


@pytest.mark.parametrize("value, decimals, text", [(61900.0, None, "61,900"), (5.8, None, "5.8"),
                                                   (95.0, 1, "95.0"), (-1520.0, None, "-1,520"),
                                                   (np.nan, None, ""), ("Fly ash", None, "Fly ash")])
def test_cell_text_writes_numbers_for_reading(value, decimals, text):
    assert cell_text(value, decimals=decimals) == text


@pytest.mark.parametrize("text, written", [
    ("shortest road route (/srv/symbiosis/roads/finland.osm.pbf, drivable roads)",
     "shortest road route (finland.osm.pbf, drivable roads)"),
    (r"C:\Users\anna\roads\kotka.osm.pbf", "kotka.osm.pbf"),
    ("about 60 km/h, EUR 67/t, 1000 t/yr", "about 60 km/h, EUR 67/t, 1000 t/yr"),
    ("data/knowledge (see SOURCES.md)", "data/knowledge (see SOURCES.md)"),
    ("https://example.org/a/b.csv", "https://example.org/a/b.csv"),
])
def test_method_notes_never_show_a_folder(text, written):
    assert method_rows({"distance": text})["Distance"] == written


def test_method_rows_give_date_version_and_cited_sources():
    rows = method_rows({"filters": "countries FI", "blank": ""}, links=_links(), facilities=_facilities(),
                       exported=datetime(2026, 5, 4, 10, 30, tzinfo=timezone.utc))
    assert rows["Exported"] == "2026-05-04 10:30 UTC"
    assert rows["Tool"].startswith("Industrial symbiosis finder ")
    assert rows["Filters"] == "countries FI" and "Blank" not in rows
    assert rows["Knowledge sources cited"].startswith("[K5], [K11], [K15]")
    assert rows["Data sources cited"].startswith("[FA-1]")


def test_filters_in_words():
    assert describe_filters(Filters()) == "none (every link of the view)"
    assert describe_filters(Filters(countries=["FI", "SE"], min_score=60, max_km=25.5, search=" Kemi ")) == (
        "countries FI, SE; score at least 60; distance at most 25.5 km; facilities matching 'Kemi'")


# --- CSV --------------------------------------------------------------------------------------

def test_nordic_csv_reads_back_with_nordic_settings(tmp_path):
    links = _links()
    path = write_links(links, tmp_path / "links.csv", labels=True, csv_style="nordic")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads the file as UTF-8
    text = raw.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("Rank;Score;Status;Supplier ID;Supplier;")
    # what Excel set to Finnish or Swedish does: semicolons between fields, commas in numbers
    back = pd.read_csv(io.StringIO(text), sep=";", decimal=",")
    assert len(back) == len(links)
    assert back["Distance (km)"].tolist() == [12.3, 1.0, 48.0, 3.0, 7.2, 101.0]  # one decimal (ties to even)
    assert back["Score"].tolist() == [95.0, 88.0, 80.6, 65.0, 50.0, 12.3]
    assert back["Quantity"].tolist() == pytest.approx([61900, 12300, 1500, 500, 250, 0.0123])
    assert back["CO2 saved (t/yr)"].tolist() == pytest.approx([52000, 2470, 1230, 99.9, -12.3, 0])
    assert back["Resource"].tolist()[:2] == ["Fly ash", "Hot water"]
    assert back["Runs today"].tolist()[:3] == ["no", "no", "yes"]
    assert ";12,3;" in text and ";61900;" in text  # decimal comma; whole numbers without a fraction


@pytest.mark.parametrize("style, labels", [("nordic", True), ("plain", True), ("nordic", False), ("plain", False)])
def test_every_csv_style_neutralises_formulas_and_keeps_one_row_per_link(tmp_path, style, labels):
    links = _links()
    path = write_links(links, tmp_path / "links.csv", labels=labels, csv_style=style)
    delimiter = ";" if style == "nordic" else ","
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle, delimiter=delimiter))
    header, body = rows[0], rows[1:]
    assert len(body) == len(links)  # the line break inside a name stays inside its quoted field
    assert all(len(row) == len(header) for row in body)
    supplier = header.index("Supplier" if labels else "supply_name")
    assert [r[supplier] for r in body][:4] == ["'" + HOSTILE_NAME, "Line\nbreak Oy", "Saha; Ab", "'-2+3"]
    why = header.index("Why" if labels else "why")
    assert body[0][why].startswith("'=cmd")
    score = body[0][header.index("Score" if labels else "score")]
    assert score == ("95,0" if style == "nordic" else "95.0")  # numbers are numbers, never quoted or marked


# --- Excel ------------------------------------------------------------------------------------

def test_excel_has_filters_frozen_headers_number_formats_and_no_server_path(tmp_path):
    method = {"data": "workspace.gpkg, change 12", "view": "Hide confidential flows", "filters": "countries FI",
              "distance": "shortest road route on /srv/symbiosis/roads/finland.osm.pbf"}
    path = write_links(_links(), tmp_path / "links.xlsx", labels=True, facilities=_facilities(), method=method)
    book = load_workbook(path)
    assert book.sheetnames == ["links", "facilities", "method", "sources"]
    for sheet in book:
        assert sheet.freeze_panes == "A2", sheet.title
        assert sheet.auto_filter.ref == sheet.dimensions, sheet.title  # the filter covers the whole table
        assert all(cell.font.bold for cell in sheet[1]), sheet.title
        assert all(sheet.column_dimensions[c.column_letter].width >= 8 for c in sheet[1]), sheet.title
        for row in sheet.iter_rows(values_only=True):
            for value in row:
                assert not re.search(r"/tmp|/srv|" + re.escape(str(tmp_path)), str(value)), (sheet.title, value)
    links = book["links"]
    header = {cell.value: cell.column_letter for cell in links[1]}
    assert header["Distance (km)"] and "distance_km" not in header

    def formats(label):
        return [c.number_format for c in links[header[label]][1:]]

    assert formats("Distance (km)") == ["#,##0.0"] * 6
    assert formats("Score") == ["#,##0.0"] * 6
    assert formats("Quantity")[:5] == ["#,##0"] * 5 and formats("Quantity")[5] == "#,##0.0###"  # 0.0123
    assert formats("Net value (EUR/yr)") == ["#,##0"] * 6
    assert links[f"{header['Quantity']}2"].value == 61900
    assert links[f"{header['Supplier']}2"].value == HOSTILE_NAME and links[f"{header['Supplier']}2"].data_type == "s"
    facilities = [c.value for c in book["facilities"][1]]
    assert "Sector" in facilities and "file" not in facilities and "row" not in facilities
    assert book["facilities"]["C2"].value == "Supplier"  # roles in words
    notes = {row[0]: row[1] for row in book["method"].iter_rows(min_row=2, values_only=True)}
    assert notes["Exported"].startswith(datetime.now(timezone.utc).strftime("%Y-%m-%d"))
    assert notes["Filters"] == "countries FI" and notes["Data"] == "workspace.gpkg, change 12"
    assert notes["Distance"] == "shortest road route on finland.osm.pbf"
    sources = {row[0]: row[1] for row in book["sources"].iter_rows(min_row=2, values_only=True)}
    assert set(sources) == {"[K5]", "[K11]", "[K15]"} and all(len(text) > 20 for text in sources.values())


def test_machine_excel_keeps_the_command_line_names(tmp_path):
    book = load_workbook(write_links(_links(), tmp_path / "links.xlsx"))
    assert [c.value for c in book["links"][1]][:5] == ["rank", "score", "status", "supply_facility_id", "supply_name"]
    assert book["links"].auto_filter.ref == book["links"].dimensions


# --- GeoPackage ----------------------------------------------------------------------------------

def test_geopackage_holds_links_facilities_and_a_qgis_style_for_each(tmp_path):
    path = write_links(_links(), tmp_path / "links.gpkg", facilities=_facilities(),
                       score_breaks=(0.0, 40.0, 60.0, 75.0, 85.0))
    layers = {name: kind for name, kind in pyogrio.list_layers(path)}
    assert layers == {"links": "LineString", "facilities": "Point", "layer_styles": None}
    links = gpd.read_file(path, layer="links")
    assert links["distance_km"].iloc[0] == 12.3456  # raw values
    assert links["resource_name"].iloc[0] == "Fly ash" and links["resource"].iloc[0] == "mineral.fly_ash"
    facilities = gpd.read_file(path, layer="facilities")
    assert not {"file", "row"} & set(facilities.columns) and set(facilities.geom_type) == {"Point"}
    with sqlite3.connect(path) as con:
        kinds = dict(con.execute("SELECT table_name, data_type FROM gpkg_contents"))
        geometry = dict(con.execute("SELECT table_name, column_name FROM gpkg_geometry_columns"))
        styles = con.execute("SELECT f_table_name, f_geometry_column, styleName, styleQML, useAsDefault, "
                             "f_table_schema FROM layer_styles").fetchall()
    assert kinds["layer_styles"] == "attributes"  # a table GDAL, and so QGIS, sees
    assert sorted(s[0] for s in styles) == ["facilities", "links"]
    for table, column, name, qml, default, schema in styles:
        assert (column, name, default, schema) == (geometry[table], table, 1, "")
        root = ET.fromstring(qml)
        assert root.tag == "qgis" and root.find("renderer-v2") is not None
        aliases = {a.get("field"): a.get("name") for a in root.iter("alias")}
        assert (aliases["name"] if table == "facilities" else aliases["supply_name"]) in ("Name", "Supplier")
    qml = {table: ET.fromstring(q) for table, _, _, q, _, _ in styles}
    rules = qml["links"].find("renderer-v2/rules").findall("rule")
    assert [r.get("filter") for r in rules][:2] == ['"score" >= 85', '"score" >= 75 AND "score" < 85']
    assert rules[-1].get("filter") == "ELSE"
    colours = {s.get("name"): _option(s, "line_color") for s in qml["links"].iter("symbol")}
    assert [colours[str(i)] for i in range(5)] == [_rgba(c) for c in SCORE_COLOURS]
    widths = [e.get("value") for e in qml["links"].iter("Option") if e.get("name") == "expression"]
    assert widths and all('"quantity_class"' in w for w in widths)
    roles = [c.get("value") for c in qml["facilities"].iter("category")]
    assert roles == ["supplier", "receiver", "both", "none", ""]


def test_qgis_styles_use_the_maps_colours():
    from geo import export
    from layers import facilities, links

    assert (export.SCORE_BREAKS, export.SCORE_COLOURS) == (links.SCORE_BINS, links.SCORE_COLOURS)
    assert export._ROLE_COLOURS == facilities.ROLE_COLOURS
    assert (export._SECTION_COLOURS, export._OTHER_SECTION_COLOUR) == (facilities.SECTION_COLOURS,
                                                                       facilities.OTHER_SECTION_COLOUR)


def test_quantity_classes_rank_within_each_unit(tmp_path):
    links = _links().iloc[[0, 1, 1, 1, 1, 0, 0, 0]].reset_index(drop=True).assign(
        rank=np.arange(1, 9), quantity=[1.0, 1000, 2000, 3000, 4000, 2, 3, 4],
        unit=["t/yr", "MWh/yr", "MWh/yr", "MWh/yr", "MWh/yr", "t/yr", "t/yr", "t/yr"])
    back = gpd.read_file(write_links(links, tmp_path / "l.gpkg"), layer="links")
    assert back["quantity_class"].tolist() == [1, 1, 2, 3, 4, 2, 3, 4]  # a tonne is not ranked against a MWh


def _option(symbol: ET.Element, name: str) -> str:
    return next(o.get("value") for o in symbol.iter("Option") if o.get("name") == name)


def _rgba(colour: str) -> str:
    return ",".join(str(int(colour[i:i + 2], 16)) for i in (1, 3, 5)) + ",255"


# --- HTML map ----------------------------------------------------------------------------------

class _Tags(HTMLParser):
    """The elements a browser would build from a page, by tag name."""

    def __init__(self):
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)


def _popups(page: str) -> list[str]:
    """The popup HTML each link feature carries (decoded from the map's JSON)."""
    return [json.loads(f'"{m}"') for m in re.findall(r'"popup": "((?:[^"\\]|\\.)*)"', page)]


@pytest.mark.skipif(not vendored(), reason="offline map assets are not installed")
def test_html_map_explains_every_link_and_runs_no_user_text(tmp_path):
    from layers.html import write_standalone_map

    links, facilities = _links(), _facilities()
    method = {"filters": "countries FI; facilities matching '<b>x</b>'"}
    page = write_standalone_map(facilities, links, tmp_path / "map.html", method=method).read_text(encoding="utf-8")
    assert "<script src=" not in page  # works offline
    # the table: one entry per link, each with its explanation, escaped
    assert page.count('<table class="sym-table" id="sym-links">') == 1
    assert re.findall(r'<tbody data-rank="(\d+)"', page) == [str(r) for r in links["rank"]]
    for why in links["why"]:
        assert html.escape(why, quote=True) in page
    # the popups: each link's why and figures
    popups = _popups(page)
    assert len(popups) == len(links)
    for why, popup in zip(links["why"], popups, strict=True):
        assert html.escape(why, quote=True) in popup and "Score" in popup and "Distance" in popup
    assert "61,900 t/yr" in popups[0] and "12.3 km" in popups[0] and "Score parts: CO2 100 %" in popups[0]
    # the method notes, filters and date
    assert "How these links were found" in page and "Exported" in page
    assert "countries FI; facilities matching &#x27;&lt;b&gt;x&lt;/b&gt;&#x27;" in page
    # no user text became markup: the page's elements are those of an empty map plus the table's
    for text in ("<script>alert(1)</script>", "<img src=x", "<b>x</b>"):
        assert text not in page
    tags = _Tags()
    tags.feed(page)
    assert "img" not in tags.tags
    empty = _Tags()
    empty.feed(write_standalone_map(facilities, links.assign(supply_name="A", demand_name="B", why="plain"),
                                    tmp_path / "plain.html").read_text(encoding="utf-8"))
    assert tags.tags.count("script") == empty.tags.count("script")


@pytest.mark.skipif(not vendored() or not Path(CHROMIUM).exists(), reason="needs the offline assets and chromium")
def test_html_map_popups_and_table_work_offline_in_a_browser(tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    from layers.html import write_standalone_map

    links = _links()
    path = write_standalone_map(_facilities(), links, tmp_path / "map.html")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.route("**/*", lambda route: route.abort() if route.request.url.startswith("http") else route.continue_())
        alerts = []
        page.on("dialog", lambda dialog: (alerts.append(dialog.message), dialog.dismiss()))
        page.goto(path.as_uri())
        page.locator("#sym-links tbody").nth(1).click()  # a row shows its link's popup
        popup = page.locator(".leaflet-popup-content")
        popup.wait_for(timeout=10_000)
        assert "Heat for the greenhouse." in popup.inner_text() and "Växthus Ab" in popup.inner_text()
        page.get_by_role("button", name="Distance (km)").click()
        ranks = page.locator("#sym-links tbody").evaluate_all("(rows) => rows.map(r => r.dataset.rank)")
        assert ranks == [str(r) for r in links.sort_values("distance_km")["rank"]]
        page.locator('#sym-links tbody[data-rank="1"]').click()
        page.wait_for_function("() => document.querySelector('.leaflet-popup-content').textContent"
                               ".includes('<script>alert(1)</script> Åbo Oy')", timeout=10_000)  # shown as text
        assert page.locator(".leaflet-popup-content script, .leaflet-popup-content img").count() == 0
        browser.close()
    assert alerts == []


# --- the app's page -----------------------------------------------------------------------------

def test_shortlist_shows_labels_and_offers_both_csv_styles(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.test_app import APP, TIMEOUT

    monkeypatch.setenv("SYMBIOSIS_WORKSPACE", str(tmp_path / "workspace.gpkg"))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page("app_pages/shortlist.py")
    at.run()
    assert not at.exception
    config = json.loads(at.dataframe[0].proto.columns)
    assert (config["supply_name"]["label"], config["distance_km"]["label"]) == ("Supplier", "Distance (km)")
    assert config["distance_km"]["type_config"]["format"] == "%.1f"
    table = at.dataframe[0].value
    assert not table["resource"].str.contains(r"^[a-z]+\.[a-z_]+$", regex=True).any()  # names, not codes
    buttons = [b.proto.label for b in at.get("download_button")]
    assert buttons[:3] == ["Excel", "CSV for Excel", "CSV"]


# --- nothing confidential in the new exports ----------------------------------------------------------

@pytest.mark.parametrize("view", ["public", "screen"])
def test_exports_for_reading_keep_a_public_view_public(view, tmp_path, demo_with_a_confidential_company):  # noqa: F811
    facilities, result, fid, company, quantities = demo_with_a_confidential_company
    operators = facilities.loc[facilities["facility_id"] != fid, "operator"].str.cat(sep="\n")
    secrets = {"names": [company["name"], fid] + [o.strip() for o in company["operator"].split(",")
                                                  if o.strip() not in operators],
               "place": (float(company["lon"]), float(company["lat"])), "quantities": quantities}
    shown, links = select_view(facilities, result.flows, result.links, Filters(view=view))
    involved = shown[shown["facility_id"].isin(set(links["supply_facility_id"]) | set(links["demand_facility_id"]))]
    for name, options in (("nordic.csv", {"labels": True, "csv_style": "nordic"}), ("read.xlsx", {"labels": True}),
                          ("styled.gpkg", {})):
        path = write_links(links, tmp_path / name, facilities=involved, **options)
        blob = path.read_bytes()
        text = _text_of(path, blob)
        if path.suffix == ".csv":
            text += "\n" + text.replace(",", ".")  # decimal commas read as points, so places are found too
        if path.suffix == ".gpkg":  # every layer, not only the first
            text += "\n".join(gpd.read_file(path, layer=layer).to_csv(index=False)
                              for layer, _ in pyogrio.list_layers(path) if layer != "links")
        assert _leaks(text, blob, secrets) == [], name
    assert len(readable_links(links)) == len(links)
