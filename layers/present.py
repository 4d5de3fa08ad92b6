"""Layers of the presentation mode: the link being presented, highlighted and labelled, with the map fitted to it."""

from __future__ import annotations

import folium

from layers.basemap import fit_bounds, script_element

__all__ = ["NEXT_KEYS", "PREVIOUS_KEYS", "PRESENTED_CLASS", "PRESENTED_COLOURS", "fitted_layer", "presentation_keys",
           "presented_layer"]

#: Class of the presented link's line (its SVG path), for the page's style and for a test to find it.
PRESENTED_CLASS = "sym-presented"
#: Colour of the presented link and of the halo under it, by theme: a colour no score class has.
PRESENTED_COLOURS = {"bright": ("#e4006e", "#ffffff"), "dark": ("#ff4fa3", "#000000")}
#: Room left around the presented link for its labels (px): beside it and above and below it.
_LABEL_ROOM_PX = (170, 110)

#: Browser script of :func:`presented_layer`: the line over a halo, a ring at each end and a label beside
#: each ring. The names are put in as text (``textContent``), never as markup.
_PRESENTED_SCRIPT = """
(function (group, line, ends, style) {
    L.polyline(line, {color: style.halo, weight: 16, opacity: 0.8, interactive: false}).addTo(group);
    L.polyline(line, {color: style.colour, weight: 9, opacity: 1, interactive: false, className: style.className})
        .addTo(group);
    ends.forEach(function (end) {
        var label = document.createElement("div"), role = document.createElement("small");
        role.textContent = end.role;
        label.appendChild(role);
        label.appendChild(document.createElement("br"));
        label.appendChild(document.createTextNode(end.name));
        L.circleMarker(end.at, {radius: 10, color: style.colour, weight: 4, fillColor: style.halo, fillOpacity: 1,
                                interactive: false})
            .bindTooltip(label, {permanent: true, direction: end.above ? "top" : "bottom", className: "sym-label",
                                 offset: [0, end.above ? -14 : 14], interactive: false})
            .addTo(group);
    });
})({{ this._parent.get_name() }}, {{ this.line|tojson }}, {{ this.ends|tojson }}, {{ this.style|tojson }});
"""


def presented_layer(feature: dict, *, supplier: str, receiver: str, key: str, theme: str = "bright",
                    roles: tuple[str, str] = ("Supplier", "Receiver"),
                    name: str = "Presented link") -> folium.FeatureGroup:
    """The presented link drawn over the others, its two ends labelled, and the map fitted to it once per ``key``.

    ``feature`` is the link's feature as :func:`layers.links.link_features`
    made it (a straight line or an arc, lon/lat); ``supplier`` and
    ``receiver`` are the names its ends are labelled with, plain text as the
    view shows them (a public view's sector labels), shown as text. The
    northern end's label sits above it and the southern end's below, so that
    the two never cover each other; the map leaves room for them. ``roles``
    are the small words above the names (the page's language), also shown as text.
    """
    colour, halo = PRESENTED_COLOURS[theme]
    line = [[lat, lon] for lon, lat in feature["geometry"]["coordinates"]]
    start, end = line[0], line[-1]
    north_first = start[0] >= end[0]
    ends = [{"at": start, "role": str(roles[0]), "name": str(supplier), "above": north_first},
            {"at": end, "role": str(roles[1]), "name": str(receiver), "above": not north_first}]
    group = folium.FeatureGroup(name=name, control=False)
    group.add_child(script_element(_PRESENTED_SCRIPT, line=line, ends=ends,
                                   style={"colour": colour, "halo": halo, "className": PRESENTED_CLASS}))
    lats = [p[0] for p in line]
    lons = [p[1] for p in line]
    group.add_child(fit_bounds(min(lats), min(lons), max(lats), max(lons), key=key, padding_px=_LABEL_ROOM_PX))
    return group


def fitted_layer(lon, lat, *, key: str, on_load: bool = True, max_zoom: int = 13,
                 name: str = "Fitted view") -> folium.FeatureGroup | None:
    """An empty feature group whose script fits the map to these points once per ``key`` (see
    :func:`layers.basemap.fit_bounds`); None when there are no points."""
    lon, lat = list(lon), list(lat)
    if not lon:
        return None
    group = folium.FeatureGroup(name=name, control=False)
    group.add_child(fit_bounds(min(lat), min(lon), max(lat), max(lon), key=key, on_load=on_load, max_zoom=max_zoom))
    return group


#: Keys that step forward and back: arrows, and PageDown/PageUp, which a presenter's clicker sends.
NEXT_KEYS = ("ArrowRight", "ArrowDown", "PageDown")
PREVIOUS_KEYS = ("ArrowLeft", "ArrowUp", "PageUp")

#: Browser script of :func:`presentation_keys`. It runs in the map's frame and listens there and in the page
#: around it (same origin), since the focus is in one or the other; a new frame replaces the listener of the
#: one before. A key clicks the page's own button, so the step moves exactly as a click would.
_KEYS_SCRIPT = """
(function (buttons, next, previous) {
    var host = window.parent;
    function press(event) {
        if (event.altKey || event.ctrlKey || event.metaKey || event.defaultPrevented) { return; }
        var target = event.target, tag = target && target.tagName;
        if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable)) { return; }
        var which = next.indexOf(event.key) >= 0 ? buttons.next : previous.indexOf(event.key) >= 0 ? buttons.previous : null;
        if (!which) { return; }
        var button = host.document.querySelector(".st-key-" + which + " button");
        event.preventDefault();
        event.stopPropagation();
        if (button && !button.disabled) { button.click(); }
    }
    window.addEventListener("keydown", press, true);
    try {
        if (host === window || !host.document) { return; }
        if (host.__symbiosisKeys) { host.document.removeEventListener("keydown", host.__symbiosisKeys, true); }
        host.__symbiosisKeys = press;
        host.document.addEventListener("keydown", press, true);
    } catch (e) { /* another origin: keys work inside the map only */ }
})({{ this.buttons|tojson }}, {{ this.next|tojson }}, {{ this.previous|tojson }});
"""


def presentation_keys(*, next_key: str, previous_key: str):
    """Step through the presentation with the keyboard or a clicker: a map element that presses the page's
    Next and Previous buttons (Streamlit buttons with these widget keys) for :data:`NEXT_KEYS` and
    :data:`PREVIOUS_KEYS`."""
    return script_element(_KEYS_SCRIPT, buttons={"next": next_key, "previous": previous_key},
                          next=list(NEXT_KEYS), previous=list(PREVIOUS_KEYS))
