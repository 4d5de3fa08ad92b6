"""The standalone HTML map: one self-contained file that works offline, for emailing."""

from __future__ import annotations

import html
import os
import tempfile
from pathlib import Path

import folium
import pandas as pd
from branca.element import Element

from layers.assets import APP_URL, inline_assets
from layers.basemap import base_map
from layers.facilities import facility_layer
from layers.links import legend, link_features, link_layer, score_breaks

__all__ = ["standalone_map", "write_standalone_map"]


def standalone_map(facilities: pd.DataFrame, links: pd.DataFrame, *, title: str = "Industrial symbiosis links") -> str:
    """The whole page as one HTML string: Leaflet, its style and the land layer inlined, no CDN.

    ``facilities`` as :func:`layers.facilities.facility_features` takes them;
    ``links`` as :func:`layers.links.link_features`. Map tiles still load
    from OpenStreetMap when online; offline, the land layer shows instead.
    The view fits the links (or the facilities when there are none).
    """
    fmap = base_map()
    fmap.get_root().header.add_child(Element(f"<title>{html.escape(title)}</title>"), name="page_title")
    facility_layer(facilities).add_to(fmap)
    breaks = score_breaks(links["score"])
    link_layer(link_features(links, breaks=breaks)).add_to(fmap)
    approximate = any(c in links and links[c].notna().any() for c in ("supply_cell_km", "demand_cell_km"))
    fmap.add_child(legend(breaks, approximate=approximate))
    folium.LayerControl(collapsed=False).add_to(fmap)
    points = (links[["supply_lat", "supply_lon"]].to_numpy().tolist() + links[["demand_lat", "demand_lon"]].to_numpy().tolist()
              if len(links) else facilities[["lat", "lon"]].to_numpy().tolist())
    if points:
        lats, lons = [p[0] for p in points], [p[1] for p in points]
        fmap.fit_bounds([[min(lats), min(lons)], [max(lats), max(lons)]], padding=(20, 20))
    return inline_assets(fmap.get_root().render(), base=APP_URL)


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
