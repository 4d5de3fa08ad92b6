"""Candidate links as one GeoJSON layer of lines: width by quantity, colour by score, dashed where approximate.

A confidential link in a public view runs between grid cells rather than
facilities (:mod:`geo.privacy`; its ``supply_cell_km``/``demand_cell_km``
are set): it is drawn dashed, and its tooltip says its places are approximate.

Several links between the same two places (a mill that could send a plant
both ash and heat) would lie on one line, and only the top one could be
hovered or clicked: they are drawn as arcs bowed apart, each its own line.
"""

from __future__ import annotations

import html

import folium
import numpy as np
import pandas as pd
from branca.element import MacroElement
from jinja2 import Template

from geo.i18n import DEFAULT, number, resource_name, t, word
from layers.facilities import OTHER_SECTION_COLOUR, ROLE_COLOURS, SECTION_COLOURS, _text

__all__ = ["ARC_POINTS", "SCORE_BINS", "SCORE_COLOURS", "WIDTHS", "legend", "link_features", "link_layer",
           "score_breaks"]

#: Score classes (the engine scores 0-100) when there are too few links to take them from, and the
#: classes' colours (a sequential yellow-to-purple ramp).
SCORE_BINS = (0.0, 50.0, 65.0, 80.0, 90.0)
SCORE_COLOURS = ("#fde725", "#5ec962", "#21918c", "#3b528b", "#440154")
#: Line widths by quantity class (quartiles of the links shown of the same unit).
WIDTHS = (2, 3.5, 5, 7)
#: Dash pattern of a link whose ends are grid cells (a confidential link in a public view).
APPROXIMATE_DASH = "7 5"
#: Points along the arc of a link that shares its two places with others.
ARC_POINTS = 17
#: How far apart neighbouring arcs bow, as a share of the link's length (less when there are many).
_ARC_STEP = 0.16
_ARC_SPREAD = 0.6


def score_breaks(scores) -> tuple[float, ...]:
    """Lower bounds of the five score classes: the quintiles of the scores given, in whole points.

    Scores bunch in a narrow band on one dataset and spread on another, so
    fixed classes leave most links in one colour; quintiles of the dataset's
    own scores give each colour about a fifth of the links. With fewer than
    five distinct scores the fixed :data:`SCORE_BINS` are used.
    """
    values = np.asarray(scores, dtype=float)
    values = values[np.isfinite(values)]
    if len(np.unique(values)) < len(SCORE_BINS):
        return SCORE_BINS
    inner = np.unique(np.floor(np.quantile(values, [0.2, 0.4, 0.6, 0.8])))
    inner = inner[inner > 0]
    if len(inner) < len(SCORE_BINS) - 1:
        return SCORE_BINS
    return (0.0, *(float(b) for b in inner))


def link_features(links: pd.DataFrame, *, breaks: tuple[float, ...] | None = None, lang: str = DEFAULT) -> dict:
    """GeoJSON FeatureCollection of supplier-to-receiver lines, every text HTML-escaped, the fixed ones (and
    the resources' names) in ``lang``.

    ``links`` has the engine's link columns (:data:`geo.pipeline.LINK_COLUMNS`);
    a public view's ``quantity_range`` replaces the quantity when present,
    and its ``supply_cell_km``/``demand_cell_km`` mark ends that are grid
    cells (the distance is then shown as "about" so many km).
    ``breaks`` are the score classes' lower bounds (:func:`score_breaks` of
    the links given, by default); pass the whole dataset's so that a filter
    does not recolour the map.

    A link is a straight line, or an arc where it shares both places with
    other links (:func:`_pairs`), its title then saying "2 of 3 links between
    these places". Its width class is the quartile of its quantity among the
    links of the same unit, since tonnes and MWh do not compare.
    """
    breaks = score_breaks(links["score"]) if breaks is None else breaks
    # 4 decimals (about 10 m) is plenty for a line between two sites, and keeps large maps light
    ends = np.round(links[["supply_lon", "supply_lat", "demand_lon", "demand_lat"]].to_numpy(dtype=float), 4)
    score = links["score"].to_numpy(dtype=float)
    colour_class = np.clip(np.searchsorted(breaks, score, side="right") - 1, 0, len(SCORE_COLOURS) - 1)
    width_class = _quantity_classes(links["quantity"].to_numpy(dtype=float), links["unit"].to_numpy())
    member, size = _pairs(ends)
    lines = _lines(ends, member, size)
    ranges = links["quantity_range"] if "quantity_range" in links else pd.Series("", index=links.index)
    approximate = np.zeros(len(links), dtype=bool)
    for column in ("supply_cell_km", "demand_cell_km"):
        if column in links:
            approximate |= links[column].notna().to_numpy()
    features = []
    for i, row in enumerate(links.itertuples(index=False)):
        quantity = ranges.iloc[i] or _quantity_text(row.quantity, row.unit, lang)
        title = f"#{int(row.rank)}: {_text(row.supply_name)} &rarr; {_text(row.demand_name)}"
        source = _text(word("distance_source", row.distance_source, lang))
        if approximate[i]:
            title += " " + _text(t("link.approximate", lang))
            distance = _text(t("link.distance_about", lang, km=number(row.distance_km, lang), source=source))
        else:
            distance = _text(t("link.distance", lang, km=number(row.distance_km, lang, decimals=1), source=source))
        if size[i] > 1:
            title += " &ndash; " + _text(t("link.of_pair", lang, n=int(member[i] + 1), size=int(size[i])))
        features.append({
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": lines[i]},
            "properties": {
                "rank": int(row.rank),
                "link": title,
                "resource": _text(resource_name(row.resource, lang)),
                "quantity": _text(quantity),
                "distance": distance,
                "score": number(row.score, lang),
                "c": int(colour_class[i]),  # score class: colour
                "w": int(width_class[i]),  # quantity class within its unit: width
                "a": int(approximate[i]),  # ends are grid cells: dashed
            },
        })
    return {"type": "FeatureCollection", "features": features}


def link_layer(links: pd.DataFrame | dict, *, name: str | None = None, opacity: float = 0.85,
               lang: str = DEFAULT) -> folium.FeatureGroup:
    """One feature group holding one GeoJSON layer of all links.

    ``links`` is a frame, or what :func:`link_features` made of one (so that
    a caller can cache that step). A lower ``opacity`` recedes them behind a
    presented link (:mod:`layers.present`). The layer's name (by default
    "Candidate links") and the tooltip's are in ``lang``.
    """
    name = name or t("layer.links", lang)
    group = folium.FeatureGroup(name=name)
    data = links if isinstance(links, dict) else link_features(links, lang=lang)
    if not data["features"]:
        return group  # folium's tooltip refuses a layer with no features to take its fields from

    def style(feature: dict) -> dict:
        return _style(feature) | {"opacity": opacity}

    folium.GeoJson(
        data,
        name=name,
        style_function=style,
        tooltip=folium.GeoJsonTooltip(fields=["link", "resource", "quantity", "distance", "score"],
                                      aliases=["", *(t(f"tip.{f}", lang) for f in ("resource", "quantity", "distance",
                                                                                    "score"))], sticky=True),
    ).add_to(group)
    return group


def _style(feature: dict) -> dict:
    props = feature["properties"]
    style = {"color": SCORE_COLOURS[props["c"]], "weight": WIDTHS[props["w"]], "opacity": 0.85}
    if props.get("a"):
        style["dashArray"] = APPROXIMATE_DASH
    return style


def _pairs(ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each link's place among the links joining the same two points (either way round), and their number.

    ``ends`` holds rows of (supply lon, lat, demand lon, lat). Links are
    counted in the order given (best first); a link whose two ends are one
    point has a group of its own (there is no line to bow).
    """
    a, b = ends[:, :2], ends[:, 2:]
    flip = (a[:, 0] > b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] > b[:, 1]))
    low = np.where(flip[:, None], b, a)
    high = np.where(flip[:, None], a, b)
    keys = pd.DataFrame(np.column_stack([low, high]), columns=["x0", "y0", "x1", "y1"])
    point = (low == high).all(axis=1)
    keys["alone"] = np.where(point, np.arange(len(ends)), -1)  # a group each: there is no line to bow
    grouped = keys.groupby(["x0", "y0", "x1", "y1", "alone"], sort=False)
    member = grouped.cumcount().to_numpy(dtype=int)
    size = grouped["x0"].transform("size").to_numpy(dtype=int)
    return member, size


def _lines(ends: np.ndarray, member: np.ndarray, size: np.ndarray) -> list[list[list[float]]]:
    """Coordinates of each link: its two ends, or an arc for a link that shares both places with others.

    The arcs of one pair bow to either side of the straight line, the middle
    one (of an odd number) straight; each is a quadratic curve whose apex
    lies ``offset`` times the length from the line's middle, computed in a
    local plane where a degree of longitude is shortened by the cosine of
    the latitude, so that the arcs look alike at any latitude.
    """
    step = np.where(size > 1, np.minimum(_ARC_STEP, _ARC_SPREAD / np.maximum(size - 1, 1)), 0.0)
    offset = (member - (size - 1) / 2.0) * step
    lines: list[list[list[float]]] = []
    curve = np.linspace(0.0, 1.0, ARC_POINTS)[:, None]
    for i in range(len(ends)):
        start, end = ends[i, :2], ends[i, 2:]
        if offset[i] == 0.0:
            lines.append([[float(start[0]), float(start[1])], [float(end[0]), float(end[1])]])
            continue
        # bow to the same side for both directions: measure the normal on the pair's canonical direction
        low, high = (end, start) if (start[0], start[1]) > (end[0], end[1]) else (start, end)
        shrink = np.array([np.cos(np.radians((start[1] + end[1]) / 2.0)), 1.0])
        along = (high - low) * shrink
        normal = np.array([-along[1], along[0]])
        control = (start + end) / 2.0 + 2.0 * offset[i] * normal / shrink
        points = (1 - curve) ** 2 * start + 2 * (1 - curve) * curve * control + curve ** 2 * end
        lines.append(np.round(points, 5).tolist())
    return lines


def legend(breaks: tuple[float, ...] = SCORE_BINS, *, approximate: bool = False, compact: bool = False,
           lang: str = DEFAULT) -> MacroElement:
    """The map's legend, a box at its bottom left above the scale bar (static text only).

    It says what a link and its score are, then the colours of the score
    classes (lower bounds ``breaks``), what the width means, the facilities'
    fill (role) and outline (sector). With ``approximate``, a line says that
    dashed links are confidential ones drawn between grid cells.
    ``compact`` (a projector) puts the lines, scores and roles in one strip
    along the map's foot, where it covers little of the map. The box takes
    the theme's colours and text size from the base map
    (:func:`layers.basemap.base_map`) and can be folded away. Its words are
    the catalogue's ``legend.*`` in ``lang`` (escaped: the markup is made here).
    """
    def say(key: str) -> str:
        return html.escape(t(key, lang))

    lows = [f"{b:.0f}" for b in breaks]
    scores = "".join(f'<span class="sym-item"><span class="sym-line" style="background:{c}"></span>{lo}+</span>'
                     for c, lo in zip(SCORE_COLOURS[::-1], lows[::-1], strict=True))
    roles = "".join(f'<span class="sym-item"><span class="sym-dot" style="background:{c}"></span>{say("role." + r)}'
                    "</span>" for r, c in ROLE_COLOURS.items())
    dashed = (f'<span class="sym-item"><span class="sym-line sym-dash"></span>{say("legend.dashed")}</span>'
              if approximate else "")
    if compact:
        body = (f'<div class="sym-row"><b>{say("legend.strip_line")}</b>: {say("legend.strip_line_text")} '
                f"{dashed}</div>"
                f'<div class="sym-row"><b>{say("legend.score")}</b> {say("legend.strip_score_text")} {scores}</div>'
                f'<div class="sym-row"><b>{say("legend.facilities")}</b>: {roles}</div>')
        kind = "sym-legend sym-strip"
    else:
        sectors = "".join(f'<span class="sym-item"><span class="sym-dot sym-ring" style="border-color:{c}"></span>'
                          f'{say("section." + s)}</span>' for s, c in SECTION_COLOURS.items())
        sectors += (f'<span class="sym-item"><span class="sym-dot sym-ring" style="border-color:{OTHER_SECTION_COLOUR}">'
                    f'</span>{say("legend.other")}</span>')
        body = (
            f'<p><b>{say("legend.line")}</b> {say("legend.line_text")}</p>'
            f'<p><b>{say("legend.score")}</b> {say("legend.score_text")}</p>'
            f'<div class="sym-grid">{scores}</div>'
            f'<p><b>{say("legend.width")}</b>: {say("legend.width_text")}</p>{dashed}'
            f'<p><b>{say("legend.facilities")}</b>: {say("legend.fill")}</p><div class="sym-grid">{roles}</div>'
            f'<p>{say("legend.outline")}</p><div class="sym-grid">{sectors}</div>'
        )
        kind = "sym-legend"
    element = MacroElement()
    element.body = f'<details class="{kind}" open><summary>{say("legend.title")}</summary>{body}</details>'
    element._template = Template("{% macro header(this, kwargs) %}" + _LEGEND_STYLE + "{% endmacro %}"
                                 "{% macro script(this, kwargs) %}" + _LEGEND_SCRIPT + "{% endmacro %}")
    return element


_LEGEND_STYLE = (
    "<style>.sym-legend{background:var(--sym-box,rgba(255,255,255,.94));color:var(--sym-box-text,#1f1f1f);"
    "font:calc(var(--sym-font,13px) - 1px)/1.35 sans-serif;width:17em;max-height:calc(100vh - 150px);"
    "overflow:auto;padding:5px 9px;border-radius:4px;box-shadow:0 1px 4px rgba(0,0,0,.3)}"
    ".sym-legend summary{cursor:pointer;font-weight:bold}.sym-legend p{margin:.35em 0 .15em}"
    ".sym-grid{display:flex;flex-wrap:wrap;column-gap:.8em}.sym-item{white-space:nowrap;margin-right:.7em}"
    ".sym-grid .sym-item{margin:0}.sym-legend:not([open]){width:auto}"
    ".sym-strip{width:auto;max-width:calc(100vw - 150px)}.sym-strip .sym-row{margin:.1em 0}"
    ".sym-strip summary{display:none}"
    ".sym-dot{display:inline-block;width:.75em;height:.75em;border-radius:50%;margin-right:.4em;"
    "box-sizing:border-box}.sym-ring{border:3px solid;background:transparent}"
    ".sym-line{display:inline-block;width:1.3em;height:.3em;margin-right:.4em;vertical-align:middle}"
    ".sym-dash{background:repeating-linear-gradient(90deg,currentColor 0 7px,transparent 7px 12px)}</style>"
)

#: Browser script of :func:`legend`: a Leaflet control, so that it stacks with the scale bar rather than
#: covering it. Its markup is fixed text made here (no data).
_LEGEND_SCRIPT = """
(function (map, body) {
    var box = L.control({position: "bottomleft"});
    box.onAdd = function () {
        var div = L.DomUtil.create("div", "sym-legend-box");
        div.innerHTML = body;
        L.DomEvent.disableClickPropagation(div);
        L.DomEvent.disableScrollPropagation(div);
        return div;
    };
    box.addTo(map);
})({{ this._parent.get_name() }}, {{ this.body|tojson }});
"""


def _quantity_classes(quantity: np.ndarray, unit: np.ndarray) -> np.ndarray:
    """Quartile class of each quantity among those given of the same unit (0 where unknown, or where a unit
    has fewer than four known quantities)."""
    out = np.zeros(len(quantity), dtype=int)
    ok = np.isfinite(quantity) & (quantity > 0)
    for one in pd.unique(unit[ok]):
        mine = ok & (unit == one)
        if mine.sum() >= 4:
            edges = np.quantile(quantity[mine], [0.25, 0.5, 0.75])
            out[mine] = np.searchsorted(edges, quantity[mine], side="right")
    return out


def _quantity_text(quantity: float, unit: str, lang: str = DEFAULT) -> str:
    if quantity is None or not np.isfinite(quantity):
        return t("link.not_stated", lang)
    return f"{number(quantity, lang)} {unit}"
