"""Facilities as one GeoJSON layer of circle markers, styled by role and sector."""

from __future__ import annotations

import html

import folium
import numpy as np
import pandas as pd

__all__ = ["ROLE_COLOURS", "SECTION_COLOURS", "facility_features", "facility_layer"]

#: Fill colour by role in the exchanges (colour-blind-safe Okabe-Ito hues).
ROLE_COLOURS = {"supplier": "#E69F00", "receiver": "#0072B2", "both": "#CC79A7", "none": "#999999"}
#: Outline colour by NACE section: energy, waste and water, manufacturing, other.
SECTION_COLOURS = {"D": "#D55E00", "E": "#009E73", "C": "#333333"}
OTHER_SECTION_COLOUR = "#56B4E9"
ROLE_LABELS = {"supplier": "Supplier", "receiver": "Receiver", "both": "Supplier and receiver",
               "none": "No flows"}


def facility_features(facilities: pd.DataFrame) -> dict:
    """GeoJSON FeatureCollection of facilities, every text HTML-escaped.

    ``facilities`` needs ``facility_id``, ``name``, ``lon``, ``lat``, ``role``,
    ``nace``, ``country`` and ``cluster``. Coordinates are rounded to 5
    decimals (about 1 m), which keeps large maps light.
    """
    lon = np.round(facilities["lon"].to_numpy(dtype=float), 5)
    lat = np.round(facilities["lat"].to_numpy(dtype=float), 5)
    features = []
    for i, row in enumerate(facilities[["facility_id", "name", "role", "nace", "country", "cluster"]]
                            .itertuples(index=False)):
        nace = _text(row.nace)
        features.append({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [float(lon[i]), float(lat[i])]},
            "properties": {
                "facility_id": _text(row.facility_id),
                "name": _text(row.name),
                "role": ROLE_LABELS.get(row.role, row.role),
                "sector": nace or "-",
                "place": " / ".join(p for p in (_text(row.cluster), _text(row.country)) if p),
                "fill": ROLE_COLOURS.get(row.role, ROLE_COLOURS["none"]),
                "line": SECTION_COLOURS.get(nace[:1], OTHER_SECTION_COLOUR),
            },
        })
    return {"type": "FeatureCollection", "features": features}


def facility_layer(facilities: pd.DataFrame | dict, *, name: str = "Facilities") -> folium.FeatureGroup:
    """One feature group holding one GeoJSON layer of all facilities (never one marker object each).

    ``facilities`` is a frame, or what :func:`facility_features` made of one
    (so that a caller can cache that step).
    """
    group = folium.FeatureGroup(name=name)
    data = facilities if isinstance(facilities, dict) else facility_features(facilities)
    if not data["features"]:
        return group  # folium's tooltip refuses a layer with no features to take its fields from
    folium.GeoJson(
        data,
        name=name,
        marker=folium.CircleMarker(radius=7, weight=2, fill=True, fill_opacity=0.9),
        style_function=_style,
        tooltip=folium.GeoJsonTooltip(fields=["name", "role", "sector", "place"],
                                      aliases=["", "Role", "NACE", "Where"], sticky=False),
    ).add_to(group)
    return group


def _style(feature: dict) -> dict:
    props = feature["properties"]
    return {"fillColor": props["fill"], "color": props["line"]}


def _text(value) -> str:
    """Text of a cell, HTML-escaped (Leaflet tooltips insert property values as HTML)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return html.escape(str(value), quote=True)
