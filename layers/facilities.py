"""Facilities as one GeoJSON layer of circle markers, styled by role and sector; texts in a language
(:mod:`geo.i18n`)."""

from __future__ import annotations

import html

import folium
import numpy as np
import pandas as pd

from geo.i18n import DEFAULT, section_name, t, word
from geo.privacy import SECTIONS, nace_section, sector_label

__all__ = ["OTHER_SECTION_COLOUR", "ROLE_COLOURS", "SECTION_COLOURS", "SECTION_LABELS", "facility_features",
           "facility_layer", "section_colours"]

#: Fill colour by role in the exchanges (colour-blind-safe Okabe-Ito hues).
ROLE_COLOURS = {"supplier": "#E69F00", "receiver": "#0072B2", "both": "#CC79A7", "none": "#999999"}
#: Outline colour by NACE section: energy, waste and water, manufacturing, mining, agriculture; other sections
#: (and an unknown code) get OTHER_SECTION_COLOUR.
SECTION_COLOURS = {"D": "#D55E00", "E": "#009E73", "C": "#333333", "B": "#8C6D31", "A": "#7A9A01"}
OTHER_SECTION_COLOUR = "#56B4E9"
#: The sections of SECTION_COLOURS as the legend names them (in English; the catalogue's ``section.<letter>``).
SECTION_LABELS = {s: t(f"section.{s}", DEFAULT) for s in SECTION_COLOURS}
ROLE_LABELS = {r: t(f"role.{r}", DEFAULT) for r in ROLE_COLOURS}
#: Optional columns a tooltip shows where the data has them: how exact the point is, and its sources.
OPTIONAL_FIELDS = ("precision", "source")


def facility_features(facilities: pd.DataFrame, *, lang: str = DEFAULT) -> dict:
    """GeoJSON FeatureCollection of facilities, every text HTML-escaped, the fixed ones in ``lang``.

    ``facilities`` needs ``facility_id``, ``name``, ``lon``, ``lat``, ``role``,
    ``nace``, ``country`` and ``cluster``; where it has ``precision`` (site,
    address or town) and ``source``, the tooltip says how exact the point is
    and where it comes from. The outline colour is the NACE section's
    (:func:`section_colours`), found from the code's division when it is
    stored without its letter (``24.10`` is in section C). Coordinates are
    rounded to 5 decimals (about 1 m), which keeps large maps light.
    """
    lon = np.round(facilities["lon"].to_numpy(dtype=float), 5)
    lat = np.round(facilities["lat"].to_numpy(dtype=float), 5)
    outline = section_colours(facilities["nace"])
    optional = facilities.reindex(columns=list(OPTIONAL_FIELDS))
    features = []
    for i, row in enumerate(facilities[["facility_id", "name", "role", "nace", "country", "cluster"]]
                            .itertuples(index=False)):
        precision = _text(optional["precision"].iloc[i]).strip().lower()
        features.append({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [float(lon[i]), float(lat[i])]},
            "properties": {
                "facility_id": _text(row.facility_id),
                "name": _text(row.name),
                "role": _text(word("role", row.role, lang)),
                "sector": _sector(row.nace, lang),
                "place": " / ".join(p for p in (_text(row.cluster), _text(row.country)) if p),
                "precision": _text(word("precision_short", precision, lang)) if precision else "",
                "source": _text(optional["source"].iloc[i]).strip(),
                "fill": ROLE_COLOURS.get(row.role, ROLE_COLOURS["none"]),
                "line": outline[i],
            },
        })
    return {"type": "FeatureCollection", "features": features}


def facility_layer(facilities: pd.DataFrame | dict, *, name: str | None = None,
                   lang: str = DEFAULT) -> folium.FeatureGroup:
    """One feature group holding one GeoJSON layer of all facilities (never one marker object each).

    ``facilities`` is a frame, or what :func:`facility_features` made of one
    (so that a caller can cache that step). The tooltip's names and the
    layer's (by default "Facilities") are in ``lang``; its location and
    sources rows are there only when some facility has them.
    """
    name = name or t("layer.facilities", lang)
    group = folium.FeatureGroup(name=name)
    data = facilities if isinstance(facilities, dict) else facility_features(facilities, lang=lang)
    if not data["features"]:
        return group  # folium's tooltip refuses a layer with no features to take its fields from
    fields = ["name", "role", "sector", "place"]
    fields += [f for f in OPTIONAL_FIELDS if any(feature["properties"].get(f) for feature in data["features"])]
    for feature in data["features"]:  # folium needs every field in every feature
        for field in OPTIONAL_FIELDS:
            feature["properties"].setdefault(field, "")
    folium.GeoJson(
        data,
        name=name,
        marker=folium.CircleMarker(radius=7, weight=2.5, fill=True, fill_opacity=0.9),
        style_function=_style,
        tooltip=folium.GeoJsonTooltip(fields=fields, aliases=[""] + [t(f"tip.{f}", lang) for f in fields[1:]],
                                      sticky=False),
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


def _sector(nace, lang: str = DEFAULT) -> str:
    """The sector a tooltip shows: ``Manufacturing (NACE 24), 24.10`` (the section's name in ``lang``);
    ``-`` when unknown."""
    if not isinstance(nace, str) or not nace.strip():
        return "-"
    label = sector_label(nace)
    english, translated = SECTIONS.get(nace_section(nace), ""), section_name(nace_section(nace), lang)
    if english and translated and label.startswith(english):
        label = translated + label[len(english):]
    return _text(f"{label}, {nace.strip()}")


def _style(feature: dict) -> dict:
    props = feature["properties"]
    return {"fillColor": props["fill"], "color": props["line"]}


def _text(value) -> str:
    """Text of a cell, HTML-escaped (Leaflet tooltips insert property values as HTML)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return html.escape(str(value), quote=True)
