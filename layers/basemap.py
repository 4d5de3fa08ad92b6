"""The base map: OpenStreetMap tiles over an offline land layer, with Leaflet served locally."""

from __future__ import annotations

import math

import folium
import numpy as np
from branca.element import Element, MacroElement
from jinja2 import Template

from layers.assets import APP_URL, asset_links, land_outlines

__all__ = ["DRAWN_KEY", "OSM_ATTRIBUTION", "SEA_COLOUR", "base_map", "fit_view", "report_drawn", "view_in_url"]

OSM_ATTRIBUTION = ('Map data &copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> '
                   "contributors (ODbL)")
SEA_COLOUR = "#c9dcea"
LAND_COLOUR = "#f2efe6"
LAND_STYLE = {"fillColor": LAND_COLOUR, "fillOpacity": 1.0, "color": "#9a9a9a", "weight": 0.8}
#: Start view: the Baltic Sea Region.
REGION_CENTER = (60.0, 20.0)
REGION_ZOOM = 5


def base_map(*, center: tuple[float, float] = REGION_CENTER, zoom: int = REGION_ZOOM, tiles: bool = True,
             asset_base: str = APP_URL, height: str = "100%", land_url: str | None = None) -> folium.Map:
    """A Leaflet map of the region that needs no internet but uses it when there.

    The land layer (Natural Earth country outlines) sits in a pane below the
    tiles: online, tiles cover it; offline, the tiles fail and the coastline
    and borders still show, on a sea-coloured background. Leaflet's script
    and style come from ``asset_base`` (the app's static folder), not a CDN.

    The outlines are inlined in the page (a standalone file), or, with
    ``land_url``, fetched by the browser from there after the map is drawn:
    the app sends the map anew on every run, and 120 kB of coastline need not
    travel with each one (the browser caches the file).
    """
    fmap = folium.Map(location=list(center), zoom_start=zoom, tiles=None, control_scale=True,
                      prefer_canvas=False, height=height)
    fmap.default_js, fmap.default_css = asset_links(base=asset_base)
    fmap.get_root().header.add_child(Element(
        f"<style>.folium-map.leaflet-container, .leaflet-container {{ background: {SEA_COLOUR} !important; }}</style>"), name="sea_background")
    land = None if land_url else land_outlines()
    if land_url or land is not None:
        folium.map.CustomPane("land", z_index=150).add_to(fmap)
    if land_url:
        fmap.add_child(_fetched_land(land_url))
    elif land is not None:
        folium.GeoJson(land.__geo_interface__, name="Land and borders (offline)", pane="land", interactive=False,
                       style_function=lambda _f: LAND_STYLE, control=False).add_to(fmap)
    if tiles:
        folium.TileLayer("OpenStreetMap", attr=OSM_ATTRIBUTION, name="OpenStreetMap", control=False).add_to(fmap)
    return fmap


#: Browser script of the fetched land layer: drawn when it arrives; when it cannot be had, the map
#: goes on without it (tiles still show when online).
_LAND_SCRIPT = """
(function (map, url, style) {
    fetch(url).then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
        .then(function (data) { L.geoJSON(data, {pane: "land", interactive: false, style: style}).addTo(map); })
        .catch(function (error) { console.warn("land layer not loaded from " + url + ": " + error); });
})({{ this._parent.get_name() }}, {{ this.url|tojson }}, {{ this.style|tojson }});
"""


def _script_element(script: str, **values) -> MacroElement:
    """A map element that adds this browser script, a jinja template that sees ``values`` as ``this.<name>``
    and the element's map as ``this._parent``."""
    element = MacroElement()
    for name, value in values.items():
        setattr(element, name, value)
    element._template = Template("{% macro script(this, kwargs) %}" + script + "{% endmacro %}")
    return element


def _fetched_land(url: str) -> MacroElement:
    return _script_element(_LAND_SCRIPT, url=url, style=LAND_STYLE)


#: Browser script of :func:`view_in_url`. It runs inside the map's iframe and
#: writes to the page around it (same origin: Streamlit serves both).
_VIEW_SCRIPT = """
(function (map) {
    var host = window.parent;
    try { if (host === window || !host.history) { return; } void host.location.href; } catch (e) { return; }
    function withView(url) {
        var target = new URL(url, host.location.href), centre = map.getCenter();
        target.searchParams.set("lat", centre.lat.toFixed(4));
        target.searchParams.set("lon", centre.lng.toFixed(4));
        target.searchParams.set("zoom", String(map.getZoom()));
        return target.pathname + target.search + target.hash;
    }
    host.__symbiosisMap = {frame: window.frameElement, withView: withView};
    if (!host.__symbiosisViewHook) {
        host.__symbiosisViewHook = true;
        ["pushState", "replaceState"].forEach(function (name) {
            var original = host.history[name].bind(host.history);
            host.history[name] = function (state, title, url) {
                var current = host.__symbiosisMap;
                if (url != null && current && current.frame && current.frame.isConnected) {
                    try { url = current.withView(url); } catch (e) { /* the map is gone: keep the URL */ }
                }
                return original(state, title, url);
            };
        });
    }
    map.on("moveend", function () { host.history.replaceState(host.history.state, "", host.location.href); });
})({{ this._parent.get_name() }});
"""


def view_in_url() -> MacroElement:
    """Keep the map's view (``lat``, ``lon``, ``zoom``) in the address of the page around the map.

    Panning and zooming stay in the browser (no round trip to the server):
    after each move the page's URL is rewritten in place, and every URL the
    page itself sets later (a filter written to the query) keeps the view, so
    a copied URL opens the same view. Does nothing in a standalone HTML map.
    """
    return _script_element(_VIEW_SCRIPT)


#: Key that :func:`report_drawn` adds to the map component's value.
DRAWN_KEY = "drawn"

#: Browser script of :func:`report_drawn`. The map's own script runs first and st_folium draws the
#: layers it was given right after it, in the same task; a timeout, then an animation frame, come
#: once they are drawn and painted.
_DRAWN_SCRIPT = """
(function () {
    var host = window.Streamlit, state = window.__GLOBAL_DATA__;
    if (!host || !state || !host.setComponentValue) { return; }
    setTimeout(function () {
        requestAnimationFrame(function () {
            var value = Object.assign({}, state.previous_data || {});
            value[{{ this.key|tojson }}] = true;
            host.setComponentValue(value);
        });
    }, 0);
})();
"""


def report_drawn() -> MacroElement:
    """Tell the app, once, that the map and its layers are drawn in the browser.

    Inside st_folium the map's value gets ``DRAWN_KEY: true`` (one rerun of the
    page), so the page can send the rest of itself (the sidebar's filters) after
    the map rather than with it: their scripts would otherwise load in the
    browser at the same time as the map's and delay it (docs/BENCHMARKS.md).
    Does nothing elsewhere (a standalone HTML map).
    """
    return _script_element(_DRAWN_SCRIPT, key=DRAWN_KEY)


def fit_view(lon, lat, *, width_px: int = 760, height_px: int = 560, max_zoom: int = 14,
             min_zoom: int = 3) -> tuple[list[float], int] | None:
    """Centre ``[lat, lon]`` and the largest web-map zoom that shows all these points in a map of this size.

    Spans are measured in Web Mercator, as the tiles are; None when there
    are no points.
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.clip(np.asarray(lat, dtype=float), -85.0, 85.0)
    if not len(lon):
        return None
    x = (lon + 180.0) / 360.0
    y = (1.0 - np.log(np.tan(np.radians(lat)) + 1.0 / np.cos(np.radians(lat))) / math.pi) / 2.0
    spans = [(np.ptp(x), width_px), (np.ptp(y), height_px)]
    fits = [math.log2(pixels / (span * 256.0)) for span, pixels in spans if span > 0]
    zoom = int(min(max(math.floor(min(fits)) if fits else max_zoom, min_zoom), max_zoom))
    return [float((lat.min() + lat.max()) / 2.0), float((lon.min() + lon.max()) / 2.0)], zoom
