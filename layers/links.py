"""Candidate links as one GeoJSON layer of lines: width by quantity, colour by score, dashed where approximate.

A confidential link in a public view runs between grid cells rather than
facilities (:mod:`geo.privacy`; its ``supply_cell_km``/``demand_cell_km``
are set): it is drawn dashed, and its tooltip says its places are approximate.
"""

from __future__ import annotations

import folium
import numpy as np
import pandas as pd
from branca.element import MacroElement
from jinja2 import Template

from layers.facilities import ROLE_COLOURS, ROLE_LABELS, _text

__all__ = ["SCORE_BINS", "SCORE_COLOURS", "legend", "link_features", "link_layer", "score_breaks"]

#: Score classes (the engine scores 0-100) when there are too few links to take them from, and the
#: classes' colours (a sequential yellow-to-purple ramp).
SCORE_BINS = (0.0, 50.0, 65.0, 80.0, 90.0)
SCORE_COLOURS = ("#fde725", "#5ec962", "#21918c", "#3b528b", "#440154")
#: Line widths by quantity class (quartiles of the links shown).
WIDTHS = (2, 3.5, 5, 7)
#: Dash pattern of a link whose ends are grid cells (a confidential link in a public view).
APPROXIMATE_DASH = "7 5"


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


def link_features(links: pd.DataFrame, *, breaks: tuple[float, ...] | None = None) -> dict:
    """GeoJSON FeatureCollection of straight supplier-to-receiver lines, every text HTML-escaped.

    ``links`` has the engine's link columns (:data:`geo.pipeline.LINK_COLUMNS`);
    a public view's ``quantity_range`` replaces the quantity when present,
    and its ``supply_cell_km``/``demand_cell_km`` mark ends that are grid
    cells (the distance is then shown as "about" so many km).
    ``breaks`` are the score classes' lower bounds (:func:`score_breaks` of
    the links given, by default); pass the whole dataset's so that a filter
    does not recolour the map.
    """
    breaks = score_breaks(links["score"]) if breaks is None else breaks
    # 4 decimals (about 10 m) is plenty for a straight line between two sites, and keeps large maps light
    ends = np.round(links[["supply_lon", "supply_lat", "demand_lon", "demand_lat"]].to_numpy(dtype=float), 4)
    score = links["score"].to_numpy(dtype=float)
    colour_class = np.clip(np.searchsorted(breaks, score, side="right") - 1, 0, len(SCORE_COLOURS) - 1)
    width_class = _quantity_classes(links["quantity"].to_numpy(dtype=float))
    ranges = links["quantity_range"] if "quantity_range" in links else pd.Series("", index=links.index)
    approximate = np.zeros(len(links), dtype=bool)
    for column in ("supply_cell_km", "demand_cell_km"):
        if column in links:
            approximate |= links[column].notna().to_numpy()
    features = []
    for i, row in enumerate(links.itertuples(index=False)):
        quantity = ranges.iloc[i] or _quantity_text(row.quantity, row.unit)
        if approximate[i]:
            title = f"#{int(row.rank)}: {_text(row.supply_name)} &rarr; {_text(row.demand_name)} (places approximate)"
            distance = f"about {row.distance_km:.0f} km ({_text(row.distance_source)})"
        else:
            title = f"#{int(row.rank)}: {_text(row.supply_name)} &rarr; {_text(row.demand_name)}"
            distance = f"{row.distance_km:.1f} km ({_text(row.distance_source)})"
        features.append({
            "type": "Feature",
            "geometry": {"type": "LineString",
                         "coordinates": [[float(ends[i, 0]), float(ends[i, 1])], [float(ends[i, 2]), float(ends[i, 3])]]},
            "properties": {
                "rank": int(row.rank),
                "link": title,
                "resource": _text(row.resource),
                "quantity": _text(quantity),
                "distance": distance,
                "score": f"{row.score:.0f}",
                "c": int(colour_class[i]),  # score class: colour
                "w": int(width_class[i]),  # quantity class: width
                "a": int(approximate[i]),  # ends are grid cells: dashed
            },
        })
    return {"type": "FeatureCollection", "features": features}


def link_layer(links: pd.DataFrame | dict, *, name: str = "Candidate links") -> folium.FeatureGroup:
    """One feature group holding one GeoJSON layer of all links.

    ``links`` is a frame, or what :func:`link_features` made of one (so that
    a caller can cache that step).
    """
    group = folium.FeatureGroup(name=name)
    data = links if isinstance(links, dict) else link_features(links)
    if not data["features"]:
        return group  # folium's tooltip refuses a layer with no features to take its fields from
    folium.GeoJson(
        data,
        name=name,
        style_function=_style,
        tooltip=folium.GeoJsonTooltip(fields=["link", "resource", "quantity", "distance", "score"],
                                      aliases=["", "Resource", "Quantity", "Distance", "Score"], sticky=True),
    ).add_to(group)
    return group


def _style(feature: dict) -> dict:
    props = feature["properties"]
    style = {"color": SCORE_COLOURS[props["c"]], "weight": WIDTHS[props["w"]], "opacity": 0.85}
    if props.get("a"):
        style["dashArray"] = APPROXIMATE_DASH
    return style


def legend(breaks: tuple[float, ...] = SCORE_BINS, *, approximate: bool = False) -> MacroElement:
    """A fixed legend of facility roles and link score classes (static text only).

    With ``approximate``, a line says that dashed links are confidential ones drawn between grid cells.
    """
    roles = "".join(f'<div><span class="sym-dot" style="background:{c}"></span>{ROLE_LABELS[r]}</div>'
                    for r, c in ROLE_COLOURS.items())
    lows = [f"{b:.0f}" for b in breaks]
    scores = "".join(f'<div><span class="sym-line" style="background:{c}"></span>score {lo}+</div>'
                     for c, lo in zip(SCORE_COLOURS[::-1], lows[::-1], strict=True))
    body = (
        '<div class="sym-legend"><b>Facilities</b>' + roles + "<b>Links</b>" + scores
        + "<div>width: quantity</div>"
        + ("<div>dashed: confidential,<br>places approximate</div>" if approximate else "") + "</div>"
        "<style>.sym-legend{position:absolute;bottom:24px;left:10px;z-index:1000;background:rgba(255,255,255,.92);"
        "padding:6px 9px;border-radius:4px;font:12px/1.5 sans-serif;box-shadow:0 1px 4px rgba(0,0,0,.3)}"
        ".sym-dot{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:6px}"
        ".sym-line{display:inline-block;width:18px;height:4px;margin-right:6px;vertical-align:middle}</style>"
    )
    element = MacroElement()
    element._template = Template("{% macro html(this, kwargs) %}" + body + "{% endmacro %}")
    return element


def _quantity_classes(quantity: np.ndarray) -> np.ndarray:
    """Quartile class of each quantity among those given (0 where unknown)."""
    out = np.zeros(len(quantity), dtype=int)
    ok = np.isfinite(quantity) & (quantity > 0)
    if ok.sum() >= 4:
        edges = np.quantile(quantity[ok], [0.25, 0.5, 0.75])
        out[ok] = np.searchsorted(edges, quantity[ok], side="right")
    return out


def _quantity_text(quantity: float, unit: str) -> str:
    if quantity is None or not np.isfinite(quantity):
        return "not stated"
    return f"{quantity:,.0f} {unit}"
