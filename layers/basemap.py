"""The base map: OpenStreetMap tiles over an offline base map, with Leaflet served locally.

The offline base map lies in panes below the tiles: online, the tiles cover
it; offline, the tiles fail and it shows instead: land (OpenStreetMap's
coast, generalised to 100 m), borders (Natural Earth 1:10m), lakes
(OpenStreetMap), towns (GeoNames) and, when a road
network is loaded, its roads (:mod:`layers.roads`). Each is a GeoJSON file
the browser fetches once (:mod:`layers.assets`), drawn on a canvas.
"""

from __future__ import annotations

import hashlib
import math

import folium
import numpy as np
from branca.element import Element, MacroElement
from jinja2 import Template

from layers.assets import APP_URL, ATTRIBUTION, asset_links, land_outlines

__all__ = ["DRAWN_KEY", "OSM_ATTRIBUTION", "SEA_COLOUR", "THEMES", "base_map", "fit_bounds", "fit_view",
           "report_drawn", "script_element", "view_in_url"]

OSM_ATTRIBUTION = ('Map data &copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> '
                   "contributors (ODbL)")
#: Colours of the offline base map and of the map's own boxes, for a bright room and for a dark one.
THEMES = {
    "bright": {"sea": "#c9dcea", "land": "#f2efe6", "border": "#9a9a9a", "lake": "#c9dcea", "lake_line": "#8fb1cc",
               "road": "#c8b89a", "major_road": "#b08d57", "town": "#3a3a3a", "halo": "#ffffff",
               "box": "rgba(255,255,255,.94)", "box_text": "#1f1f1f"},
    "dark": {"sea": "#0f1b27", "land": "#262a2f", "border": "#5d636b", "lake": "#0f1b27", "lake_line": "#2d4a63",
             "road": "#4d4a45", "major_road": "#857456", "town": "#d6d6d6", "halo": "#111111",
             "box": "rgba(24,26,30,.94)", "box_text": "#f0f0f0"},
}
SEA_COLOUR = THEMES["bright"]["sea"]
LAND_STYLE = {"fillColor": THEMES["bright"]["land"], "fillOpacity": 1.0, "color": THEMES["bright"]["border"],
              "weight": 0.8}
#: Start view: the Baltic Sea Region.
REGION_CENTER = (60.0, 20.0)
REGION_ZOOM = 5
#: Panes of the offline layers: all below Leaflet's tile pane (200), so that tiles cover them when online.
_PANES = {"land": 150, "lakes": 160, "roads": 170, "towns": 190}
#: Towns labelled at each zoom: the smallest population shown (beyond the last zoom, every town).
_TOWN_POPULATION_BY_ZOOM = {4: 500_000, 5: 250_000, 6: 100_000, 7: 40_000, 8: 15_000, 9: 8_000}
#: Lakes drawn at each zoom: the smallest area shown, km2 (beyond the last zoom, every lake the file has).
_LAKE_KM2_BY_ZOOM = {5: 100.0, 6: 40.0, 7: 10.0}
#: Roads are drawn from this zoom on (a whole network at lower zooms is a grey smear).
ROAD_MIN_ZOOM = 9
#: Most town labels in view at once.
_MAX_TOWN_LABELS = 70


def base_map(*, center: tuple[float, float] = REGION_CENTER, zoom: int = REGION_ZOOM, tiles: bool = True,
             asset_base: str = APP_URL, height: str = "100%", land_url: str | None = None,
             lakes_url: str | None = None, towns_url: str | None = None, roads_url: str | None = None,
             theme: str = "bright", presenting: bool = False) -> folium.Map:
    """A Leaflet map of the region that needs no internet but uses it when there.

    Leaflet's script and style come from ``asset_base`` (the app's static
    folder), not a CDN. The land outlines are inlined in the page (a
    standalone file), or, with ``land_url``, fetched by the browser from there
    after the map is drawn, like the lakes, towns and roads at their URLs: the
    app sends the map anew on every run, and megabytes of coastline need not
    travel with each one (the browser caches the files).

    Every tooltip wraps at a bounded width and is kept inside the map. The
    scale bar sits at the bottom left, below the legend (:func:`layers.links.legend`).
    ``theme`` is ``"bright"`` or ``"dark"``; ``presenting`` makes the map
    fill the window's height (a projector), with large labels.
    """
    colours = THEMES[theme]
    fmap = folium.Map(location=list(center), zoom_start=zoom, tiles=None, control_scale=True,
                      prefer_canvas=False, height=height)
    fmap.default_js, fmap.default_css = asset_links(base=asset_base)
    fmap.get_root().header.add_child(Element(_style(colours, presenting=presenting)), name="symbiosis_style")
    land = None if land_url else land_outlines()
    if land_url or land is not None or lakes_url or towns_url or roads_url:
        for pane, z_index in _PANES.items():
            folium.map.CustomPane(pane, z_index=z_index, pointer_events=False).add_to(fmap)
    if land is not None:
        folium.GeoJson(land.__geo_interface__, name="Land and borders (offline)", pane="land", interactive=False,
                       style_function=lambda _f: _land_style(colours), control=False).add_to(fmap)
    layers = {"land": land_url, "lakes": lakes_url, "towns": towns_url, "roads": roads_url}
    if any(layers.values()):
        fmap.add_child(_offline_layers({k: v for k, v in layers.items() if v}, colours))
    fmap.add_child(script_element(_TOOLTIPS_INSIDE_SCRIPT))
    if presenting:
        fmap.add_child(script_element(_FILL_WINDOW_SCRIPT))
    if tiles:
        folium.TileLayer("OpenStreetMap", attr=OSM_ATTRIBUTION, name="OpenStreetMap", control=False).add_to(fmap)
    return fmap


def _land_style(colours: dict[str, str]) -> dict:
    return {"fillColor": colours["land"], "fillOpacity": 1.0, "color": colours["border"], "weight": 0.8}


def _style(colours: dict[str, str], *, presenting: bool) -> str:
    """The page's style: sea, tooltips that wrap, town labels, the scale bar; larger on a projector."""
    text = 18 if presenting else 13
    return (
        "<style>"
        f":root {{ --sym-box: {colours['box']}; --sym-box-text: {colours['box_text']}; --sym-font: {text}px; }}"
        f".folium-map.leaflet-container, .leaflet-container {{ background: {colours['sea']} !important; }}"
        # a tooltip wraps at a bounded width (Leaflet's own never wraps and grows as wide as its text)
        ".leaflet-tooltip { white-space: normal; width: max-content; max-width: min(320px, calc(100vw - 16px));"
        f" overflow-wrap: anywhere; font-size: {text}px; line-height: 1.35; }}"
        ".leaflet-tooltip table { border-collapse: collapse; } .leaflet-tooltip th { white-space: nowrap; }"
        ".sym-tip-open .leaflet-control { opacity: .2; transition: opacity .15s; }"
        f".sym-town {{ color: {colours['town']}; font: {text - 2}px/1.1 sans-serif; white-space: nowrap;"
        f" text-shadow: 0 0 3px {colours['halo']}, 0 0 2px {colours['halo']}; pointer-events: none; }}"
        f".sym-town::before {{ content: ''; display: inline-block; width: 5px; height: 5px; border-radius: 50%;"
        f" background: {colours['town']}; margin: 0 4px 1px 0; vertical-align: middle; }}"
        f".sym-label {{ font-size: {text + 2}px; font-weight: 600; max-width: 260px; text-align: center;"
        f" background: {colours['box']}; color: {colours['box_text']}; border: 2px solid {colours['box_text']}; }}"
        ".sym-label small { font-weight: 400; opacity: .8; }"
        f".leaflet-control-scale-line {{ background: {colours['box']}; color: {colours['box_text']};"
        f" border-color: {colours['box_text']}; font-size: {text - 2}px; }}"
        f".leaflet-control-attribution {{ background: {colours['box']} !important; color: {colours['box_text']};"
        " max-width: 62%; font-size: 11px; }"
        + ("html, body { overflow: hidden; } .leaflet-control-layers { display: none; }" if presenting else "")
        + "</style>"
    )


def script_element(script: str, **values) -> MacroElement:
    """A map element that adds this browser script, a jinja template that sees ``values`` as ``this.<name>``
    and the element's map as ``this._parent``."""
    element = MacroElement()
    for name, value in values.items():
        setattr(element, name, value)
    element._template = Template("{% macro script(this, kwargs) %}" + script + "{% endmacro %}")
    return element


#: Browser script of the offline layers: each file is fetched once the map is drawn and drawn on a canvas in
#: its pane; one that cannot be had is left out (tiles still show when online). Lakes and town labels follow
#: the zoom: the larger lakes and towns when zoomed out, every one when zoomed in; roads from a zoom on.
#: ``window.__symbiosisOffline`` holds the layers, for a test to count their features.
_OFFLINE_SCRIPT = """
(function (map, urls, colours, options) {
    var drawn = window.__symbiosisOffline = {};
    var canvas = {};
    function renderer(pane) { return canvas[pane] || (canvas[pane] = L.canvas({pane: pane, padding: 0.2})); }
    function load(name, draw) {
        if (!urls[name]) { return; }
        fetch(urls[name])
            .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
            .then(draw)
            .catch(function (error) { console.warn(name + " layer not loaded from " + urls[name] + ": " + error); });
    }
    function smallest(table, zoom) {
        var keys = Object.keys(table).map(Number).sort(function (a, b) { return a - b; });
        for (var i = 0; i < keys.length; i++) { if (zoom <= keys[i]) { return table[keys[i]]; } }
        return 0;
    }
    load("land", function (data) {
        // one file: the land (OpenStreetMap), then the borders between countries (Natural Earth) over it
        function kind(border) {
            return {type: "FeatureCollection", features: data.features.filter(function (f) {
                return (f.properties.kind === "border") === border; })};
        }
        drawn.land = L.geoJSON(kind(false), {pane: "land", renderer: renderer("land"), interactive: false,
            attribution: options.attribution.land,
            style: {fillColor: colours.land, fillOpacity: 1, color: colours.border, weight: 0.6}}).addTo(map);
        drawn.borders = L.geoJSON(kind(true), {pane: "land", renderer: renderer("land"), interactive: false,
            attribution: options.attribution.borders,
            style: {color: colours.border, weight: 1.2, dashArray: "6 3"}}).addTo(map);
    });
    load("lakes", function (data) {
        var all = data.features, shownFrom = null;
        drawn.lakes = L.geoJSON(null, {pane: "lakes", renderer: renderer("lakes"), interactive: false,
            attribution: options.attribution.lakes,
            style: {fillColor: colours.lake, fillOpacity: 1, color: colours.lake_line, weight: 0.6}}).addTo(map);
        function show() {
            var least = smallest(options.lakes, map.getZoom());
            if (least === shownFrom) { return; }
            shownFrom = least;
            drawn.lakes.clearLayers();
            drawn.lakes.addData({type: "FeatureCollection",
                                 features: all.filter(function (f) { return f.properties.km2 >= least; })});
        }
        show();
        map.on("zoomend", show);
    });
    load("roads", function (data) {
        drawn.roads = L.geoJSON(data, {pane: "roads", renderer: renderer("roads"), interactive: false,
            style: function (feature) {
                return feature.properties.major ? {color: colours.major_road, weight: 2.2, opacity: 0.9}
                                                : {color: colours.road, weight: 1.2, opacity: 0.9};
            }});
        function show() {
            if (map.getZoom() >= options.roadsFrom) { drawn.roads.addTo(map); } else { map.removeLayer(drawn.roads); }
        }
        show();
        map.on("zoomend", show);
    });
    load("towns", function (data) {
        var towns = data.features;
        drawn.towns = L.layerGroup([], {pane: "towns", attribution: options.attribution.towns}).addTo(map);
        drawn.towns.features = towns.length;
        function label(name) {
            var text = document.createElement("span");
            text.textContent = name;
            return text;
        }
        function show() {
            var least = smallest(options.towns, map.getZoom()), view = map.getBounds().pad(0.05), placed = [];
            drawn.towns.clearLayers();
            for (var i = 0; i < towns.length && placed.length < options.maxTowns; i++) {
                var town = towns[i], xy = town.geometry.coordinates;
                if (town.properties.population < least) { break; }  // largest first: the rest are smaller
                var at = L.latLng(xy[1], xy[0]);
                if (!view.contains(at)) { continue; }
                var point = map.latLngToContainerPoint(at), name = town.properties.name;
                var box = {x0: point.x - 4, y0: point.y - 9, x1: point.x + 12 + 7.5 * name.length, y1: point.y + 9};
                var clash = placed.some(function (b) {
                    return box.x0 < b.x1 && b.x0 < box.x1 && box.y0 < b.y1 && b.y0 < box.y1;
                });
                if (clash) { continue; }
                placed.push(box);
                L.marker(at, {pane: "towns", interactive: false, keyboard: false,
                              icon: L.divIcon({className: "sym-town", html: label(name), iconSize: null,
                                               iconAnchor: [3, 8]})})
                    .addTo(drawn.towns);
            }
        }
        show();
        map.on("moveend", show);
    });
})({{ this._parent.get_name() }}, {{ this.urls|tojson }}, {{ this.colours|tojson }}, {{ this.options|tojson }});
"""


def _offline_layers(urls: dict[str, str], colours: dict[str, str]) -> MacroElement:
    options = {"attribution": ATTRIBUTION, "lakes": _LAKE_KM2_BY_ZOOM, "towns": _TOWN_POPULATION_BY_ZOOM,
               "roadsFrom": ROAD_MIN_ZOOM, "maxTowns": _MAX_TOWN_LABELS}
    return script_element(_OFFLINE_SCRIPT, urls=urls, colours=colours, options=options)


#: Browser script that keeps every tooltip inside the map: after Leaflet places one (beside the pointer or its
#: feature), it is moved back within the map's edges where it would stick out. Installed once per page.
_TOOLTIPS_INSIDE_SCRIPT = """
(function () {
    var tooltip = L.Tooltip.prototype;
    if (tooltip.__symbiosisInside) { return; }
    tooltip.__symbiosisInside = true;
    var place = tooltip._setPosition;
    tooltip._setPosition = function (position) {
        place.call(this, position);
        var box = this._container, owner = this._map, margin = 4;
        if (!box || !owner) { return; }
        var size = owner.getSize(), at = owner.layerPointToContainerPoint(L.DomUtil.getPosition(box));
        var x = Math.min(Math.max(at.x, margin), Math.max(margin, size.x - box.offsetWidth - margin));
        var y = Math.min(Math.max(at.y, margin), Math.max(margin, size.y - box.offsetHeight - margin));
        if (x !== at.x || y !== at.y) {
            L.DomUtil.setPosition(box, owner.containerPointToLayerPoint(L.point(x, y)));
        }
    };
})();
(function (map) {
    // the map's boxes (legend, layers) lie above every pane: while a hover tooltip is open they fade
    map.on("tooltipopen", function (e) {
        if (!e.tooltip.options.permanent) { L.DomUtil.addClass(map.getContainer(), "sym-tip-open"); }
    });
    map.on("tooltipclose", function (e) {
        if (!e.tooltip.options.permanent) { L.DomUtil.removeClass(map.getContainer(), "sym-tip-open"); }
    });
})({{ this._parent.get_name() }});
"""

#: Browser script of a map on a projector: the map takes the whole height of its frame, which the page
#: sizes to the window (the frame's own height is fixed when the map is made).
_FILL_WINDOW_SCRIPT = """
(function (map) {
    function fill() {
        var box = map.getContainer();
        box.style.height = window.innerHeight + "px";
        map.invalidateSize({pan: false});
    }
    window.addEventListener("resize", fill);
    fill();
})({{ this._parent.get_name() }});
"""


#: Browser script of :func:`fit_bounds`.
_FIT_SCRIPT = """
(function (target, bounds, key, onLoad, options) {
    function fit(map) {
        var size = map.getSize(), pad = options.padding, left = pad[0], bottom = pad[1];
        var legend = map.getContainer().querySelector(".sym-legend");
        if (legend) {  // leave the legend's corner free: beside a tall one, above a wide one
            if (legend.offsetWidth > size.x / 2) { bottom = Math.max(bottom, legend.offsetHeight + 40 + pad[1] / 2); }
            else { left = Math.max(left, Math.min(legend.offsetWidth + 30, size.x / 3)); }
        }
        map.fitBounds(bounds, {paddingTopLeft: [left, pad[1]], paddingBottomRight: [pad[0], bottom],
                               maxZoom: options.maxZoom, animate: false});
    }
    function once(map) {
        var seen = window.__symbiosisFitted;
        window.__symbiosisFitted = key;
        if (seen === key || (seen === undefined && !onLoad)) { return; }
        fit(map);
        setTimeout(function () { fit(map); }, 80);  // again once the frame has its final size
    }
    if (target instanceof L.Map) { once(target); }
    else if (target._map) { once(target._map); }
    else { target.once("add", function () { once(target._map); }); }
})({{ this._parent.get_name() }}, {{ this.bounds|tojson }}, {{ this.key|tojson }}, {{ this.on_load|tojson }},
   {{ this.options|tojson }});
"""


def fit_bounds(south: float, west: float, north: float, east: float, *, key: str, on_load: bool = True,
               padding_px: tuple[int, int] = (40, 40), max_zoom: int = 13) -> MacroElement:
    """Fit the map to these bounds (WGS84 degrees) in the browser, at the map's own size, once per ``key``.

    For a feature group passed to ``st_folium``, whose script runs again only
    when the group changes: the map moves when ``key`` (the selection it
    shows) is new in this frame, not when a click redraws the same layers.
    ``on_load=False`` leaves a newly made map where it starts (a view from
    the URL). The left padding makes room for the legend.
    """
    options = {"padding": list(padding_px), "maxZoom": max_zoom}
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]  # the key may hold paths and searches
    return script_element(_FIT_SCRIPT, bounds=[[south, west], [north, east]], key=digest, on_load=on_load,
                          options=options)


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
    return script_element(_VIEW_SCRIPT)


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
    return script_element(_DRAWN_SCRIPT, key=DRAWN_KEY)


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
