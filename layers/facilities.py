"""Facilities as one GeoJSON layer of circle markers, styled by role and sector."""

from __future__ import annotations

import html

import folium
import numpy as np
import pandas as pd

from geo.privacy import nace_section, sector_label

__all__ = ["OTHER_SECTION_COLOUR", "ROLE_COLOURS", "SECTION_COLOURS", "SECTION_LABELS", "facility_features",
           "facility_layer", "section_colours"]

#: Fill colour by role in the exchanges (colour-blind-safe Okabe-Ito hues).
ROLE_COLOURS = {"supplier": "#E69F00", "receiver": "#0072B2", "both": "#CC79A7", "none": "#999999"}
#: Outline colour by NACE section: energy, waste and water, manufacturing, mining, agriculture; other sections
#: (and an unknown code) get OTHER_SECTION_COLOUR.
SECTION_COLOURS = {"D": "#D55E00", "E": "#009E73", "C": "#333333", "B": "#8C6D31", "A": "#7A9A01"}
OTHER_SECTION_COLOUR = "#56B4E9"
#: The sections of SECTION_COLOURS as the legend names them.
SECTION_LABELS = {"D": "Energy", "E": "Water and waste", "C": "Manufacturing", "B": "Mining", "A": "Agriculture"}
ROLE_LABELS = {"supplier": "Supplier", "receiver": "Receiver", "both": "Supplier and receiver",
               "none": "No flows"}


def facility_features(facilities: pd.DataFrame) -> dict:
    """GeoJSON FeatureCollection of facilities, every text HTML-escaped.

    ``facilities`` needs ``facility_id``, ``name``, ``lon``, ``lat``, ``role``,
    ``nace``, ``country`` and ``cluster``. The outline colour is the NACE
    section's (:func:`section_colours`), found from the code's division when
    it is stored without its letter (``24.10`` is in section C). Coordinates
    are rounded to 5 decimals (about 1 m), which keeps large maps light.
    """
    lon = np.round(facilities["lon"].to_numpy(dtype=float), 5)
    lat = np.round(facilities["lat"].to_numpy(dtype=float), 5)
    outline = section_colours(facilities["nace"])
    features = []
    for i, row in enumerate(facilities[["facility_id", "name", "role", "nace", "country", "cluster"]]
                            .itertuples(index=False)):
        features.append({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [float(lon[i]), float(lat[i])]},
            "properties": {
                "facility_id": _text(row.facility_id),
                "name": _text(row.name),
                "role": ROLE_LABELS.get(row.role, row.role),
                "sector": _sector(row.nace),
                "place": " / ".join(p for p in (_text(row.cluster), _text(row.country)) if p),
                "fill": ROLE_COLOURS.get(row.role, ROLE_COLOURS["none"]),
                "line": outline[i],
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
        marker=folium.CircleMarker(radius=7, weight=2.5, fill=True, fill_opacity=0.9),
        style_function=_style,
        tooltip=folium.GeoJsonTooltip(fields=["name", "role", "sector", "place"],
                                      aliases=["", "Role", "Sector", "Where"], sticky=False),
    ).add_to(group)
    return group


def section_colours(nace: pd.Series) -> np.ndarray:
    """Outline colour of each NACE code: its section's in :data:`SECTION_COLOURS`, else the other colour."""
    sections = _each_distinct(nace.where(nace.notna(), ""), nace_section)
    return np.array([SECTION_COLOURS.get(s, OTHER_SECTION_COLOUR) for s in sections], dtype=object)


def _each_distinct(values: pd.Series, function) -> list:
    """``function`` of each value, computed once per distinct value (thousands of facilities, a few codes)."""
    cache = {value: function(value) for value in pd.unique(values)}
    return [cache[value] for value in values]


def _sector(nace) -> str:
    """The sector a tooltip shows: ``Manufacturing (NACE 24), 24.10``; ``-`` when unknown."""
    if not isinstance(nace, str) or not nace.strip():
        return "-"
    return _text(f"{sector_label(nace)}, {nace.strip()}")


def _style(feature: dict) -> dict:
    props = feature["properties"]
    return {"fillColor": props["fill"], "color": props["line"]}


def _text(value) -> str:
    """Text of a cell, HTML-escaped (Leaflet tooltips insert property values as HTML)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return html.escape(str(value), quote=True)
