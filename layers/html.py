"""The standalone HTML map: one self-contained file that works offline, for emailing.

The page explains itself, for a reader who never saw the app:

- each link opens a popup with its explanation (``why``), its figures
  (resource, quantity, distance, CO2, value, score and what it rests on) and
  the parts of its score;
- beside the map (below it on a narrow screen) a table lists the links, best
  first, each with its explanation under its figures; a click on a column
  heading sorts by it, a click on a link (or Enter on it) shows it on the map
  with its popup;
- below the table, what a link and a score are, and the method notes of
  :func:`geo.export.method_rows`: the date, the tool's version, the data, the
  view and filters when the caller gives them, the method and the sources.

Every fixed text is in the language asked for (``lang``, :mod:`geo.i18n`),
numbers written as it writes them; the explanation (``why``) and the method
notes' texts are the engine's, in English.

Every text from the data is HTML-escaped before it reaches the page (table,
popups, notes), and the map's data travels as JSON in which ``<``, ``>``
and ``&`` are written as ``\\u003c``, ``\\u003e`` and ``\\u0026``: a name such as
``<script>`` is shown, never run. Figures are rounded for reading
(:func:`geo.export.readable_values`).
"""

from __future__ import annotations

import html
import os
import tempfile
from pathlib import Path

import folium
import pandas as pd
from branca.element import Element, MacroElement
from jinja2 import Template

from geo.export import FIXED_DECIMALS, cell_text, column_labels, method_rows, readable_values
from geo.i18n import DEFAULT, t, word
from layers.assets import APP_URL, inline_assets
from layers.basemap import base_map
from layers.facilities import facility_layer
from layers.links import legend, link_features, link_layer, score_breaks

__all__ = ["TABLE_COLUMNS", "standalone_map", "write_standalone_map"]

#: Columns of the table of links, in order (``quantity`` shows the range where a public view has one;
#: ``why`` is a line of its own under the figures).
TABLE_COLUMNS = ("rank", "score", "supply_name", "demand_name", "resource", "quantity", "distance_km",
                 "co2_saved_t_per_yr", "value_eur_per_yr", "status", "why")
_NUMERIC = ("rank", "score", "quantity", "distance_km", "co2_saved_t_per_yr", "value_eur_per_yr")
#: The score's parts a popup lists (each named by the catalogue's ``part.<column>``), confidence last.
_PARTS = ("part_co2", "part_value", "part_distance", "part_compatibility", "part_precedent", "confidence")


def standalone_map(facilities: pd.DataFrame, links: pd.DataFrame, *, title: str | None = None,
                   method: dict[str, str] | None = None, breaks: tuple[float, ...] | None = None,
                   lang: str = DEFAULT) -> str:
    """The whole page as one HTML string: Leaflet, its style and the land layer inlined, no CDN.

    ``facilities`` as :func:`layers.facilities.facility_features` takes them;
    ``links`` as :func:`layers.links.link_features`. Map tiles still load
    from OpenStreetMap when online; offline, the land layer shows instead.
    The view fits the links (or the facilities when there are none).

    Parameters
    ----------
    facilities, links : DataFrame
        What the page shows (a view's facilities and links, best link first).
    title : str, optional
        The page's title and heading; "Industrial symbiosis links" (in ``lang``) by default.
    method : dict, optional
        The run's method, data and filters (item to text), listed under the
        table with the date and sources (:func:`geo.export.method_rows`).
    breaks : tuple of float, optional
        Lower bounds of the score classes (the app's, so the colours match
        its map); by default the quintiles of these links' scores.
    lang : str
        Language of the page's fixed texts, labels, resource names and numbers.

    Returns
    -------
    str
        The page.
    """
    title = title if title is not None else t("html.title", lang)
    fmap = base_map()
    root = fmap.get_root()
    root.header.add_child(Element(f"<title>{html.escape(title)}</title>"), name="page_title")
    root.header.add_child(Element(_STYLE), name="page_layout")
    facility_layer(facilities, lang=lang).add_to(fmap)
    breaks = score_breaks(links["score"]) if breaks is None else breaks
    shown = readable_values(links, lang)  # figures rounded for reading, resources by name
    features = link_features(links, breaks=breaks, lang=lang)
    _add_popups(features, links["rank"], shown, lang)
    group = link_layer(features, lang=lang)
    group.add_to(fmap)
    approximate = any(c in links and links[c].notna().any() for c in ("supply_cell_km", "demand_cell_km"))
    fmap.add_child(legend(breaks, approximate=approximate, lang=lang))
    folium.LayerControl(collapsed=False).add_to(fmap)
    _fit(fmap, facilities, links)
    root.html.add_child(Element(_panel(links, shown, facilities, title=title, method=method, lang=lang)),
                        name="links_panel")
    layer = next((c for c in group._children.values() if isinstance(c, folium.GeoJson)), None)
    fmap.add_child(_script(layer.get_name() if layer is not None else ""))
    return inline_assets(root.render(), base=APP_URL)


def _fit(fmap: folium.Map, facilities: pd.DataFrame, links: pd.DataFrame) -> None:
    """Fit the view to the links' ends, or to the facilities when there are no links."""
    if len(links):
        points = (links[["supply_lat", "supply_lon"]].to_numpy().tolist()
                  + links[["demand_lat", "demand_lon"]].to_numpy().tolist())
    else:
        points = facilities[["lat", "lon"]].to_numpy().tolist()
    if points:
        lats, lons = [p[0] for p in points], [p[1] for p in points]
        fmap.fit_bounds([[min(lats), min(lons)], [max(lats), max(lons)]], padding=(20, 20))


def write_standalone_map(facilities: pd.DataFrame, links: pd.DataFrame, path: str | Path, **kwargs) -> Path:
    """Write :func:`standalone_map` to ``path`` atomically (temporary file, then rename)."""
    path = Path(path)
    page = standalone_map(facilities, links, **kwargs)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(page)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# --- popups ---------------------------------------------------------------------------------

def _add_popups(features: dict, ranks: pd.Series, shown: pd.DataFrame, lang: str = DEFAULT) -> None:
    """Give each link feature a ``popup`` property: the HTML of its links' popups (escaped text only).

    ``shown`` holds the links' values for reading, row by row with their
    ``ranks``. A feature names its link by ``rank`` (or several by
    ``ranks``, where parallel links share one line).
    """
    popups = {int(rank): _popup(row, lang) for rank, row in zip(ranks, shown.to_dict("records"), strict=True)}
    for feature in features["features"]:
        props = feature["properties"]
        ranks = props.get("ranks") or [props.get("rank")]
        shown_here = [popups[int(r)] for r in ranks if r is not None and int(r) in popups]
        props["popup"] = '<hr class="sym-sep">'.join(shown_here)


def _popup(row: dict, lang: str = DEFAULT) -> str:
    """One link's popup: who to whom, the figures, the explanation and the score's parts (in ``lang``)."""
    figures = [
        ("tip.resource", _text(row.get("resource"), lang=lang)),
        ("tip.quantity", _quantity(row, lang)),
        ("tip.distance", _distance(row, lang)),
        ("link.co2_saved", _with_unit(row.get("co2_saved_t_per_yr"), "t/yr", lang)),
        ("link.net_value", _with_unit(row.get("value_eur_per_yr"), "EUR/yr", lang)),
        ("link.score", _score(row, lang)),
        ("col.status", _text(row.get("status"), lang=lang)),
        ("col.precedent_at", _text(row.get("precedent_at"), lang=lang)),
        *((f"col.{c}", _word(kind, row.get(c), lang)) for c, kind in _SOURCES),
    ]
    rows = "".join(f"<tr><th>{html.escape(t(key, lang))}</th><td>{value}</td></tr>" for key, value in figures if value)
    parts = [f"{t('part.' + c, lang)} {_cell(row.get(c), lang)} %" for c in _PARTS if _cell(row.get(c), lang)]
    return (
        '<div class="sym-pop">'
        f'<div class="sym-pop-title"><b>#{_text(row.get("rank"))}</b> {_text(row.get("supply_name"))} &rarr; '
        f'{_text(row.get("demand_name"))}</div>'
        f'<table>{rows}</table>'
        + (f'<p class="sym-why">{_text(row.get("why"))}</p>' if _text(row.get("why")) else "")
        + (f'<div class="sym-parts">{html.escape(t("html.parts", lang, parts=", ".join(parts)))}</div>'
           if parts else "")
        + "</div>"
    )


#: How exact each end's place is and what each quantity rests on, where the links carry it (issue 14).
_SOURCES = (("supply_precision", "precision_short"), ("demand_precision", "precision_short"),
            ("supply_evidence", "evidence"), ("demand_evidence", "evidence"))


def _word(kind: str, value, lang: str) -> str:
    """A coded value (``site``, ``published``) in words of ``lang``, escaped; '' when blank."""
    text = cell_text(value).strip()
    return html.escape(word(kind, text, lang)) if text else ""


def _cell(value, lang: str = DEFAULT, decimals: int | None = None) -> str:
    """A cell as the language writes it (:func:`geo.export.cell_text` with its decimal mark and thousands
    separator, a no-break space where it groups with a space)."""
    group = t("number.thousands", lang)
    return cell_text(value, decimals=decimals, decimal=t("number.decimal", lang),
                     thousands="\u00a0" if group == "space" else group)


def _text(value, column: str = "", *, lang: str = DEFAULT) -> str:
    """A cell as escaped HTML text (with the column's fixed decimals, if it has them), numbers as ``lang``
    writes them."""
    return html.escape(_cell(value, lang, FIXED_DECIMALS.get(column)), quote=True)


def _with_unit(value, unit: str, lang: str = DEFAULT) -> str:
    text = _cell(value, lang)
    return f"{html.escape(text)} {html.escape(unit)}" if text else ""


def _quantity(row: dict, lang: str = DEFAULT) -> str:
    if isinstance(row.get("quantity_range"), str) and row["quantity_range"].strip():
        return _text(row["quantity_range"])
    text = _cell(row.get("quantity"), lang)
    return f"{html.escape(text)} {_text(row.get('unit'))}" if text else html.escape(t("link.not_stated", lang))


def _distance(row: dict, lang: str = DEFAULT) -> str:
    text = _cell(row.get("distance_km"), lang, decimals=1)
    if not text:
        return ""
    out = f"{html.escape(text)} km"
    if cell_text(row.get("distance_source")):
        out += f" ({_text(row.get('distance_source'))})"
    if cell_text(row.get("travel_time_min")):
        out += f", {_text(row.get('travel_time_min'), lang=lang)} min"
    cells = [_cell(row.get(c), lang) for c in ("supply_cell_km", "demand_cell_km") if cell_text(row.get(c))]
    if cells:
        out += "; " + html.escape(t("html.cells", lang, cells=t("totals.and", lang, first=cells[0], last=cells[-1])
                                     if len(cells) > 1 else cells[0]))
    return out


def _score(row: dict, lang: str = DEFAULT) -> str:
    text = _cell(row.get("score"), lang, decimals=1)
    if not text:
        return ""
    driver = cell_text(row.get("score_driver"))
    return html.escape(text) + (" " + html.escape(t("html.rests_on", lang, driver=driver)) if driver else "")


# --- the panel: table and method notes ----------------------------------------------------------

def _panel(links: pd.DataFrame, shown: pd.DataFrame, facilities: pd.DataFrame, *, title: str,
           method: dict[str, str] | None, lang: str = DEFAULT) -> str:
    """The panel beside the map: heading, the table of links, what a link and a score are, the method notes."""
    notes = method_rows(method, links=links, facilities=facilities, lang=lang)
    listed = "".join(f"<dt>{html.escape(item)}</dt><dd>{html.escape(text)}</dd>" for item, text in notes.items())
    n = len(links)
    count = t("count.link.one" if n == 1 else "count.link.many", lang, n=n)
    lead = t("html.lead", lang, links=count) if n else t("html.none", lang)
    return (
        f'<section class="sym-panel" aria-label="{html.escape(t("html.aria", lang))}">'
        f"<h1>{html.escape(title)}</h1>"
        f'<p class="sym-lead">{html.escape(lead)}</p>'
        + (_table(links["rank"], shown, lang) if n else "")
        + f'<h2>{html.escape(t("html.what", lang))}</h2>'
        f'<p>{html.escape(t("html.about", lang))}</p>'
        f'<h2>{html.escape(t("html.how", lang))}</h2>'
        f'<dl class="sym-method">{listed}</dl>'
        "</section>"
    )


def _table(ranks: pd.Series, shown: pd.DataFrame, lang: str = DEFAULT) -> str:
    """The links as an HTML table in rank order: one ``tbody`` per link, its figures on one row and its
    explanation on the next; numeric cells carry their value to sort by."""
    columns = [c for c in TABLE_COLUMNS if c in shown and c != "why"]
    head = "".join(
        f'<th scope="col" data-type="{"number" if c in _NUMERIC else "text"}">'
        f'<button type="button">{html.escape(_heading(c, lang))}</button></th>' for c in columns)
    bodies = []
    for rank, row in zip(ranks, shown.to_dict("records"), strict=True):
        cells = []
        for column in columns:
            value = row.get(column)
            if column == "quantity":
                cells.append(f'<td class="n" data-v="{_sort_value(value)}">{_quantity(row, lang)}</td>')
            elif column in _NUMERIC:
                cells.append(f'<td class="n" data-v="{_sort_value(value)}">{_text(value, column, lang=lang)}</td>')
            else:
                cells.append(f"<td>{_text(value)}</td>")
        why = _text(row.get("why"))
        explained = f'<tr class="sym-why-row"><td colspan="{len(columns)}"><div>{why}</div></td></tr>' if why else ""
        bodies.append(f'<tbody data-rank="{int(rank)}" tabindex="0"><tr>{"".join(cells)}</tr>{explained}</tbody>')
    return (f'<div class="sym-scroll"><table class="sym-table" id="sym-links"><thead><tr>{head}</tr></thead>'
            f'{"".join(bodies)}</table></div>')


def _heading(column: str, lang: str = DEFAULT) -> str:
    return "#" if column == "rank" else column_labels(lang).get(column, column)


def _sort_value(value) -> str:
    """A number as a sort key in an attribute ('' when there is none)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    return "" if number != number else repr(number)


# --- page layout and browser script ----------------------------------------------------------

#: The map fills the window's height at the top left (where the legend sits), the panel beside it on a
#: wide screen and below it on a narrow one.
_STYLE = """<style>
html, body { height: 100% !important; }
body { display: grid; grid-template-columns: minmax(0, 1fr) minmax(420px, 48%); overflow: hidden;
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; }
body > .folium-map { grid-column: 1; grid-row: 1; height: 100vh !important; width: 100% !important; }
.sym-panel { grid-column: 2; grid-row: 1; height: 100vh; overflow: auto; padding: 10px 16px 24px;
             box-sizing: border-box; border-left: 1px solid #ccc; background: #fff; }
@media (max-width: 900px) {
  html, body { height: auto !important; }
  body { grid-template-columns: 100%; overflow: visible; }
  .sym-panel { grid-column: 1; grid-row: 2; height: auto; border-left: 0; border-top: 1px solid #ccc; }
}
.sym-panel h1 { font-size: 20px; margin: 4px 0 6px; }
.sym-panel h2 { font-size: 16px; margin: 18px 0 6px; }
.sym-lead { color: #444; margin: 0 0 8px; }
.sym-scroll { overflow-x: auto; }
.sym-table { border-collapse: collapse; font-size: 13px; min-width: 100%; }
.sym-table th, .sym-table td { padding: 3px 6px; text-align: left; vertical-align: top; }
.sym-table thead th { position: sticky; top: 0; background: #f3f3f3; z-index: 1; white-space: nowrap; }
.sym-table th button { all: unset; cursor: pointer; font-weight: 600; }
.sym-table th button:focus-visible { outline: 2px solid #3b528b; }
.sym-table th[aria-sort="ascending"] button::after { content: " \\25B2"; }
.sym-table th[aria-sort="descending"] button::after { content: " \\25BC"; }
.sym-table td.n { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.sym-table tbody { cursor: pointer; border-bottom: 1px solid #e0e0e0; }
.sym-table tbody:hover, .sym-table tbody:focus, .sym-table tbody.sym-on { background: #eaf1fb; outline: none; }
.sym-table tr.sym-why-row td { padding-top: 0; padding-bottom: 6px; font-size: 12px; color: #444; }
.sym-table tr.sym-why-row div { max-width: 40em; position: sticky; left: 6px; }
.sym-method dt { font-weight: 600; margin-top: 6px; }
.sym-method dd { margin: 0 0 2px; }
.sym-pop { font: 13px/1.4 system-ui, sans-serif; }
.sym-pop-title { font-size: 14px; margin-bottom: 4px; }
.sym-pop table { border-collapse: collapse; margin: 2px 0 6px; }
.sym-pop th { text-align: left; font-weight: 600; padding: 1px 8px 1px 0; vertical-align: top; white-space: nowrap; }
.sym-pop td { padding: 1px 0; }
.sym-why { margin: 4px 0; }
.sym-parts { color: #555; font-size: 12px; }
.sym-sep { border: 0; border-top: 1px solid #ccc; margin: 8px 0; }
</style>"""

#: Binds each link's popup (its escaped HTML, from the feature), sorts the table's links by a clicked
#: heading, and shows a clicked link on the map.
_SCRIPT = """
(function (map, links) {
    var byRank = {};
    if (links) {
        links.eachLayer(function (layer) {
            var props = layer.feature.properties;
            if (props.popup) { layer.bindPopup(props.popup, {maxWidth: 380, minWidth: 240, autoPanPadding: [24, 24]}); }
            [].concat(props.ranks || props.rank).forEach(function (rank) { byRank[rank] = layer; });
        });
    }
    var table = document.getElementById("sym-links");
    if (!table) { return; }
    var heads = table.tHead.rows[0].cells;
    function key(link, column, numeric) {
        var cell = link.rows[0].cells[column];
        if (numeric) {
            var number = parseFloat(cell.getAttribute("data-v"));
            return isNaN(number) ? null : number;
        }
        var text = cell.textContent.trim().toLocaleLowerCase();
        return text === "" ? null : text;
    }
    function sortBy(column) {
        var head = heads[column], numeric = head.getAttribute("data-type") === "number";
        var ascending = head.getAttribute("aria-sort") !== "ascending";
        var links = Array.prototype.slice.call(table.tBodies);
        links.sort(function (a, b) {
            var x = key(a, column, numeric), y = key(b, column, numeric);
            if (x === y) { return 0; }
            if (x === null) { return 1; }
            if (y === null) { return -1; }
            var order = numeric ? (x < y ? -1 : 1) : x.localeCompare(y);
            return ascending ? order : -order;
        });
        links.forEach(function (link) { table.appendChild(link); });
        Array.prototype.forEach.call(heads, function (other) { other.removeAttribute("aria-sort"); });
        head.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    }
    Array.prototype.forEach.call(heads, function (head, column) {
        head.querySelector("button").addEventListener("click", function () { sortBy(column); });
    });
    function show(link) {
        var layer = byRank[link.getAttribute("data-rank")];
        if (!layer) { return; }
        Array.prototype.forEach.call(table.querySelectorAll("tbody.sym-on"), function (other) {
            other.classList.remove("sym-on");
        });
        link.classList.add("sym-on");
        var box = map.getContainer().getBoundingClientRect();
        if (box.bottom < 80 || box.top > window.innerHeight - 80) { map.getContainer().scrollIntoView(); }
        map.fitBounds(layer.getBounds(), {padding: [60, 60], maxZoom: 11});
        layer.openPopup(layer.getCenter ? layer.getCenter() : undefined);
    }
    table.addEventListener("click", function (event) {
        var link = event.target.closest("tbody");
        if (link) { show(link); }
    });
    table.addEventListener("keydown", function (event) {
        if (event.key === "Enter" && event.target.matches("tbody")) { show(event.target); }
    });
})({{ this._parent.get_name() }}, {{ this.links or "null" }});
"""


def _script(links_name: str) -> MacroElement:
    """The page's script, run after the map and its layers exist (``links_name``: the links layer's variable)."""
    element = MacroElement()
    element.links = links_name
    element._template = Template("{% macro script(this, kwargs) %}" + _SCRIPT + "{% endmacro %}")
    return element
