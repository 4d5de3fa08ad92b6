"""The road route of one link, as a line that follows the road."""

from __future__ import annotations

import folium
import shapely

from layers.facilities import _text

__all__ = ["ROUTE_COLOUR", "route_layer"]

ROUTE_COLOUR = "#d7301f"


def route_layer(line: shapely.LineString, *, label: str, name: str = "Road route") -> folium.FeatureGroup:
    """One feature group with the route drawn over the straight link lines.

    ``line`` is in WGS84 (lon, lat), as :func:`geo.routing.route` gives it;
    ``label`` is plain text for its tooltip (escaped here). Coordinates are
    rounded to 5 decimals (about 1 m).
    """
    group = folium.FeatureGroup(name=name)
    coords = shapely.get_coordinates(line).round(5).tolist()
    feature = {"type": "Feature", "geometry": {"type": "LineString", "coordinates": coords},
               "properties": {"label": _text(label)}}
    folium.GeoJson(
        {"type": "FeatureCollection", "features": [feature]},
        name=name,
        style_function=lambda _f: {"color": ROUTE_COLOUR, "weight": 5, "opacity": 0.9, "dashArray": "8 6"},
        tooltip=folium.GeoJsonTooltip(fields=["label"], labels=False),
    ).add_to(group)
    return group
