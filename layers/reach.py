"""Reach circles: how far each supplier's resources may travel, one circle per facility and resource group."""

from __future__ import annotations

import folium
import numpy as np
import pandas as pd

from geo.i18n import DEFAULT, language, resource_name
from layers.facilities import _text

__all__ = ["GROUP_COLOURS", "reach_features", "reach_layer", "reach_legend"]

#: Outline and fill colour of each resource group's circles; other groups get OTHER_GROUP_COLOUR.
GROUP_COLOURS = {"heat": "#D55E00", "gas": "#56B4E9", "water": "#0072B2", "biomass": "#8C6D31",
                 "organic": "#009E73", "mineral": "#6F6F6F", "chemical": "#CC79A7", "material": "#E69F00",
                 "nutrient": "#7A9A01"}
OTHER_GROUP_COLOUR = "#333333"


def reach_features(reach: pd.DataFrame, *, max_km: float | None = None, lang: str = DEFAULT) -> dict:
    """GeoJSON FeatureCollection of circle centres with their radius (``radius_m``), every text HTML-escaped.

    ``reach`` is what :func:`geo.matching.supply_reach` gives; ``max_km``
    (a distance filter) caps every radius. The circle is a straight-line
    bound: the same distance by road reaches less far. Each group is named
    in ``lang`` (its ``group_label`` where the language has no name for it).
    """
    km = reach["reach_km"].to_numpy(dtype=float)
    if max_km:
        km = np.minimum(km, max_km)
    lon = np.round(reach["lon"].to_numpy(dtype=float), 5)
    lat = np.round(reach["lat"].to_numpy(dtype=float), 5)
    features = []
    for i, row in enumerate(reach[["facility_id", "group", "group_label"]].itertuples(index=False)):
        features.append({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [float(lon[i]), float(lat[i])]},
            "properties": {
                "facility_id": _text(row.facility_id),
                "group": _text(_group_name(row.group, row.group_label, lang)),
                "colour": GROUP_COLOURS.get(row.group, OTHER_GROUP_COLOUR),
                "radius_m": float(round(km[i] * 1000.0)),
            },
        })
    return {"type": "FeatureCollection", "features": features}


def _group_name(group: str, label: str, lang: str) -> str:
    """The group's name in ``lang``: the knowledge base's label (given) in English, else its translation."""
    if language(lang) == DEFAULT:
        return label
    named = resource_name(group, lang)
    return label if named == group else named


def reach_layer(reach: pd.DataFrame | dict, *, max_km: float | None = None,
                name: str = "Reach of supplies (straight line)") -> folium.FeatureGroup:
    """One feature group holding one GeoJSON layer of reach circles, drawn by Leaflet from their centres.

    ``reach`` is a frame (:func:`geo.matching.supply_reach`) or what
    :func:`reach_features` made of one. The circles take no clicks or hovers,
    so the facilities and links drawn over them stay easy to pick.
    """
    group = folium.FeatureGroup(name=name)
    data = reach if isinstance(reach, dict) else reach_features(reach, max_km=max_km)
    if not data["features"]:
        return group
    folium.GeoJson(
        data,
        name=name,
        marker=folium.Circle(radius=1, fill=True),
        style_function=_style,
    ).add_to(group)
    return group


def reach_legend(data: dict) -> str:
    """HTML of a small legend: the colour of each resource group among these circles.

    ``data`` is what :func:`reach_features` made; its group labels are
    already HTML-escaped, and the rest is fixed markup.
    """
    seen: dict[str, str] = {}
    for feature in data["features"]:
        seen.setdefault(feature["properties"]["group"], feature["properties"]["colour"])
    rows = "".join(f'<div><span style="display:inline-block;width:10px;height:10px;border:2px dashed {colour};'
                   f'border-radius:50%;margin-right:6px"></span>{label}</div>'
                   for label, colour in sorted(seen.items()))
    return f'<div style="font-size:0.8rem">{rows}</div>'


def _style(feature: dict) -> dict:
    props = feature["properties"]
    return {"radius": props["radius_m"], "color": props["colour"], "fillColor": props["colour"], "weight": 1.2,
            "opacity": 0.7, "fillOpacity": 0.05, "dashArray": "4 4", "interactive": False}
