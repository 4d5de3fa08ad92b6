"""Languages: the catalogue is complete and consistent, texts fall back to English, the pages and the exports
speak Finnish and Swedish."""

from __future__ import annotations

import ast
import csv
import io
import re
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook
from streamlit.testing.v1 import AppTest

from geo import i18n
from geo.export import LABELS, column_labels, write_links
from geo.i18n import CATALOGUE, RESOURCE_NAMES, language, number, placeholders, resource_name, t, texts
from geo.taxonomy import load_taxonomy
from tests.helpers import app as _app

ROOT = Path(__file__).resolve().parent.parent
TRANSLATED = ("fi", "sv")


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


# --- the catalogue ------------------------------------------------------------------------------------

def test_every_key_has_finnish_and_swedish_text_with_the_same_placeholders():
    rows = _rows(CATALOGUE)
    assert {"en", "fi", "sv"} <= set(rows[0])
    keys = [row["key"] for row in rows]
    assert len(keys) == len(set(keys)), "a key is listed twice"
    for row in rows:
        for lang in TRANSLATED:
            assert row[lang].strip(), f"{row['key']} has no {lang} text"
            assert placeholders(row[lang]) == placeholders(row["en"]), (row["key"], lang)
            row[lang].format(**{name: "x" for name in placeholders(row["en"])})  # a broken brace fails here


def test_every_resource_and_group_has_a_finnish_and_swedish_name():
    codes = set(load_taxonomy().resources.index)
    rows = {row["code"]: row for row in _rows(RESOURCE_NAMES)}
    assert set(rows) == codes
    for code, row in rows.items():
        assert row["fi"].strip() and row["sv"].strip(), code
    assert resource_name("mineral.fly_ash", "fi") == "Lentotuhka"
    assert resource_name("mineral.fly_ash", "sv") == "Flygaska"
    assert resource_name("heat", "sv") == "Värme"
    assert resource_name("mineral.fly_ash", "en") == "Fly ash"


def _keys_used_in_the_code() -> set[str]:
    """Every literal key given to t() or tr() in the app, the layers and the exports."""
    found = set()
    files = [ROOT / "app.py", *(ROOT / "app_pages").glob("*.py"), *(ROOT / "layers").glob("*.py"),
             ROOT / "geo" / "export.py"]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) in ("t", "tr")
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                found.add(node.args[0].value)
    return found


def test_every_key_the_code_asks_for_is_in_the_catalogue():
    used = _keys_used_in_the_code()
    assert len(used) > 150  # the scan finds the calls (a scan that finds nothing would pass anything)
    assert sorted(used - set(texts()["en"])) == []


def test_a_missing_text_or_language_falls_back_to_english(tmp_path, monkeypatch):
    half = tmp_path / "messages.csv"
    half.write_text("key,en,fi,et\ngreeting,Hello {name},,Tere {name}\nbye,Goodbye,Näkemiin,\n", encoding="utf-8")
    monkeypatch.setattr(i18n, "CATALOGUE", half)
    i18n.texts.cache_clear()
    try:
        assert t("greeting", "fi", name="Aino") == "Hello Aino"  # an empty cell: English
        assert t("greeting", "et", name="Mari") == "Tere Mari"  # a new column is a new language
        assert t("bye", "et") == "Goodbye"
        assert t("bye", "sv") == "Goodbye"  # no column at all: English
        assert language("ET") == "et" and language("de-DE") == "en"
        with pytest.raises(KeyError):
            t("no.such.key", "fi")
    finally:
        i18n.texts.cache_clear()


def test_numbers_are_written_as_each_language_writes_them():
    assert number(12345.678, "en", decimals=1) == "12,345.7"
    assert number(12345.678, "fi", decimals=1) == "12\u00a0345,7"
    assert number(12345.678, "sv") == "12\u00a0346"
    assert t("count.link.many", "fi", n=1500) == "1\u00a0500 linkkiä"
    assert number(float("nan"), "fi") == ""


def test_column_labels_are_distinct_in_every_language():
    for lang in ("en", *TRANSLATED):
        labels = column_labels(lang)
        assert set(LABELS) == set(labels)
        assert len(set(labels.values())) == len(labels), lang
    assert column_labels("fi")["distance_km"] == "Etäisyys (km)"
    assert column_labels("sv")["supply_name"] == "Leverantör"


# --- exports ------------------------------------------------------------------------------------------

def _links() -> pd.DataFrame:
    return pd.DataFrame({
        "rank": [1, 2], "score": [91.24, 70.0], "status": ["new", "existing"], "supply_name": ["Sahaus Åkerlund Ab", "B"],
        "demand_name": ["Voima Oy", "D"], "resource": ["mineral.fly_ash", "heat.hot_water"],
        "quantity": [61873.0, 1234.5], "unit": ["t/yr", "MWh/yr"], "distance_km": [12.345, 3.0],
        "distance_source": ["estimate", "road"],
        "existing": [False, True], "rule_source": ["[K5]", ""],
        "supply_lon": [24.0, 24.1], "supply_lat": [60.0, 60.1], "demand_lon": [24.2, 24.3], "demand_lat": [60.2, 60.3],
    })


@pytest.mark.parametrize(("lang", "supplier", "distance", "resource", "yes", "sheets"), [
    ("fi", "Tarjoaja", "Etäisyys (km)", "Lentotuhka", "kyllä", ["linkit", "menetelmä", "lähteet"]),
    ("sv", "Leverantör", "Avstånd (km)", "Flygaska", "ja", ["länkar", "metod", "källor"]),
])
def test_csv_and_excel_headers_in_finnish_and_swedish_read_back(tmp_path, lang, supplier, distance, resource, yes,
                                                                sheets):
    path = write_links(_links(), tmp_path / f"links-{lang}.csv", labels=True, csv_style="nordic", lang=lang)
    back = pd.read_csv(path, sep=";", decimal=",", encoding="utf-8-sig")
    assert supplier in back.columns and distance in back.columns and "supply_name" not in back.columns
    assert back[column_labels(lang)["resource"]].iloc[0] == resource
    assert back[distance].iloc[0] == pytest.approx(12.3)
    assert back[column_labels(lang)["existing"]].tolist()[1] == yes
    assert back[column_labels(lang)["status"]].iloc[1] == t("status.existing", lang)

    book = load_workbook(write_links(_links(), tmp_path / f"links-{lang}.xlsx", labels=True, lang=lang,
                                     method={"distance": "estimate", "filters": "none"}))
    assert book.sheetnames == sheets
    header = [c.value for c in book[sheets[0]][1]]
    assert supplier in header and distance in header
    method = book[sheets[1]]
    assert [c.value for c in method[1]] == [t("sheet.item", lang), t("sheet.value", lang)]
    items = [c.value for c in method["A"]]
    assert items[1:3] == [t("method.exported", lang), t("method.tool", lang)]
    assert t("method.distance", lang) in items and t("method.filters", lang) in items


def test_english_exports_are_as_before(tmp_path):
    path = write_links(_links(), tmp_path / "links.csv", labels=True)
    header = io.StringIO(path.read_text(encoding="utf-8-sig")).readline()
    assert header.startswith("Rank,Score,Status,Supplier,Receiver,Resource,Quantity,Unit,Distance (km)")
    assert load_workbook(write_links(_links(), tmp_path / "l.xlsx", labels=True)).sheetnames[:2] == ["links", "method"]


def test_the_html_map_speaks_the_language(tmp_path):
    from layers.html import write_standalone_map

    facilities = pd.DataFrame({"facility_id": ["S", "D"], "name": ["<b>Sahaus</b>", "Voima"], "lat": [60.0, 60.2],
                               "lon": [24.0, 24.2], "role": ["supplier", "receiver"], "nace": ["C16.10", "D35.30"],
                               "country": ["FI", "FI"], "cluster": ["", ""], "precision": ["site", "town"]})
    page = write_standalone_map(facilities, _links(), tmp_path / "map.html", lang="sv").read_text(encoding="utf-8")
    assert "Hur länkarna hittades" in page and "Flygaska" in page
    assert "Teckenf\\u00f6rklaring" in page  # the legend, handed to the browser as JSON text
    assert "61\u00a0900 t/yr" in page  # 3 significant figures, Swedish grouping
    assert "endast orten" in page  # the facility's location precision in its tooltip (issue 14)
    assert "<b>Sahaus</b>" not in page  # a name is text, never markup


# --- the app ------------------------------------------------------------------------------------------

@pytest.fixture
def workspace(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMBIOSIS_WORKSPACE", str(tmp_path / "workspace.gpkg"))


def _drawn(at: AppTest) -> AppTest:
    at.session_state["map"] = {"last_active_drawing": None, "drawn": True}
    return at.run()


@pytest.mark.parametrize(("lang", "title", "filters", "search", "caption"), [
    ("fi", "Teollisen symbioosin mahdollisuudet", "Suodattimet", "Etsi laitos", "linkkiehdokasta"),
    ("sv", "Möjligheter till industriell symbios", "Filter", "Sök en anläggning", "kandidatlänkar visas"),
])
def test_the_map_page_opens_in_the_language_of_the_url(workspace, lang, title, filters, search, caption):
    at = _app(lang=lang)
    assert not at.exception
    assert at.title[0].value == title
    assert caption in at.caption[0].value
    at = _drawn(at)
    assert at.sidebar.header[0].value == filters
    assert at.text_input(key="f_search").label == search
    assert at.selectbox(key="lang_select").value == lang
    assert at.query_params["lang"] in (lang, [lang])


@pytest.mark.parametrize(("lang", "title", "message"), [
    ("fi", "Lyhytlista", "Osoitteen min_score=500 on välin 0-100 ulkopuolella; käytetään arvoa 100."),
    ("sv", "Kortlista", "min_score=500 i adressen ligger utanför 0-100; 100 används."),
])
def test_the_shortlist_speaks_the_language_in_its_table_buttons_and_messages(workspace, lang, title, message):
    at = _app("shortlist", lang=lang, min_score="500")
    assert not at.exception
    assert at.title[0].value == title
    assert message in [w.value for w in at.warning]
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels[1] == t("export.csv_excel", lang)
    import json
    config = json.loads(at.dataframe[0].proto.columns)
    assert config["supply_name"]["label"] == column_labels(lang)["supply_name"]


def test_the_language_selector_switches_every_page_and_keeps_it(workspace):
    at = _app("shortlist")
    assert at.title[0].value == "Shortlist" and "lang" not in at.query_params
    at.selectbox(key="lang_select").set_value("sv").run()
    assert not at.exception
    assert at.title[0].value == "Kortlista"
    assert at.slider(key="f_min_score").label == "Lägsta poäng"
    assert at.query_params["lang"] in ("sv", ["sv"])
    at.switch_page("app_pages/data.py").run()  # another page: the language stays
    assert not at.exception and at.title[0].value == "Data"
    assert at.subheader[0].value != "Your name" and any(s.value == "Lägg till en anläggning" for s in at.subheader)
    assert at.query_params["lang"] in ("sv", ["sv"])


def test_the_data_page_refuses_in_finnish(workspace):
    at = _app("data", lang="fi")
    assert not at.exception
    at.button(key="add_flow").click().run()
    assert any(e.value.startswith("Ei lisätty: virta tarvitsee laitoksen, suunnan, resurssin") for e in at.error)


def test_presentation_mode_in_swedish(workspace):
    at = _app(present="1", lang="sv")
    assert not at.exception
    assert any(re.search(r"Länk 1 av \d+", m.value) for m in at.markdown)
    assert [b.label for b in at.button][:1] == ["Föregående"] and "Nästa" in [b.label for b in at.button]
    at = _app(present="1", lang="fi", step="21")
    assert any("Yhteenveto" in m.value for m in at.markdown)
    assert any(m.value.startswith("Yhteensä:") for m in at.markdown)


def test_the_match_reports_progress_and_the_bar_is_gone_when_done(workspace, monkeypatch):
    import streamlit as st

    from app_pages import state

    seen = []
    real = state.match

    def watched(*args, on_progress=None, **kwargs):
        assert isinstance(on_progress, state.MatchProgress)
        return real(*args, on_progress=lambda *step: (seen.append(step), on_progress(*step)), **kwargs)

    st.cache_data.clear()
    monkeypatch.setattr(state, "match", watched)
    at = _app("shortlist", lang="fi")
    assert not at.exception
    stages = [stage for stage, _, _ in seen]
    assert stages[0] == "flows" and stages[-1] == "ranking" and set(stages) >= {"candidates", "scores"}
    assert not at.get("progress")  # removed once the match is done
    st.cache_data.clear()
