"""The map page: filtered facilities and links on one folium map; click for details; present mode."""

from __future__ import annotations

import math

import folium
import pandas as pd
import streamlit as st
from streamlit_folium import st_folium

from app_pages import state
from geo.matching import supply_reach
from geo.privacy import select_view
from geo.routing import Route
from geo.selection import Filters, select_flows
from geo.taxonomy import load_taxonomy
from layers.assets import land_url
from layers.basemap import DRAWN_KEY, base_map, fit_view, report_drawn, view_in_url
from layers.facilities import facility_features, facility_layer
from layers.links import legend, link_features, link_layer
from layers.reach import reach_features, reach_layer, reach_legend
from layers.routes import route_layer

PRESENTING = st.query_params.get("present") == "1"
TOP_STEPS = 20
#: The score's parts shown in a link's panel (0 to 1 each; geo.settings.ScoringWeights weighs them).
SCORE_PARTS = {"part_co2": "CO2", "part_value": "value", "part_distance": "distance",
               "part_compatibility": "fit", "part_precedent": "precedent", "confidence": "confidence"}
#: Most links drawn at once: the browser stays responsive with this many (docs/BENCHMARKS.md); the
#: best-ranked are drawn and the caption says how many more the filters keep.
MAX_LINKS_DRAWN = 10_000


def _base(breaks: tuple[float, ...], *, approximate: bool) -> folium.Map:
    """The base map. st_folium keys the browser's map on this map's script, which stays the same from
    run to run, so filtering only swaps the layers passed in ``feature_group_to_add`` and the view stays.

    A fresh object each run: st_folium adds the layer control to the map it is given, so a map kept
    across runs would carry stale layer references into the next script.
    """
    fmap = base_map(land_url=land_url())
    fmap.add_child(legend(breaks, approximate=approximate))
    fmap.add_child(view_in_url())
    fmap.add_child(report_drawn())
    return fmap


def _view(facilities: pd.DataFrame) -> tuple[list[float] | None, int | None]:
    """The view in the URL; else the facilities first shown, fitted once per session and then kept,
    so that a later filter change does not move the map. The zoom is read only with a usable centre
    (without one it is not used, and its note would say otherwise)."""
    if "lat" in st.query_params and "lon" in st.query_params:
        fitted = "the map is fitted to the facilities"
        lat = state.url_number("lat", float("nan"), low=-85.0, high=85.0, instead=fitted)
        lon = state.url_number("lon", float("nan"), low=-180.0, high=180.0, instead=fitted)
        if math.isfinite(lat) and math.isfinite(lon):
            return [lat, lon], int(state.url_number("zoom", 9.0, low=1.0, high=18.0))
    if "_fitted_view" not in st.session_state:
        st.session_state["_fitted_view"] = fit_view(facilities["lon"], facilities["lat"])
    return st.session_state["_fitted_view"] or (None, None)


def _set_view(lat: float, lon: float, zoom: int) -> None:
    st.query_params.update({"lat": f"{lat:.4f}", "lon": f"{lon:.4f}", "zoom": str(zoom)})


def _zoom_for(km: float) -> int:
    """A zoom level that shows a link of this length whole."""
    for zoom, span in ((13, 3), (12, 6), (11, 12), (10, 25), (9, 50), (8, 100), (7, 200)):
        if km <= span:
            return zoom
    return 6


def _present(links: pd.DataFrame) -> pd.Series | None:
    """Next/previous through the top links; each zooms the map and shows its explanation. Returns the link shown."""
    top = links.head(TOP_STEPS)
    if top.empty:
        st.info("No links to present with these filters.")
        return None
    step = int(state.url_number("step", 1.0, low=1.0, high=float(len(top))))
    left, middle, right = st.columns([1, 6, 1])
    if left.button("Previous", disabled=step <= 1, width="stretch", key="prev"):
        step -= 1
    if right.button("Next", disabled=step >= len(top), width="stretch", key="next"):
        step += 1
    link = top.iloc[step - 1]
    st.query_params["step"] = str(step)
    _set_view((link.supply_lat + link.demand_lat) / 2, (link.supply_lon + link.demand_lon) / 2,
              _zoom_for(link.distance_km))
    middle.markdown(f"### Link {step} of {len(top)}")
    middle.text(link.why)
    return link


@st.cache_data(max_entries=16, show_spinner=False)
def _features(key: str, _facilities: pd.DataFrame, _links: pd.DataFrame,
              breaks: tuple[float, ...]) -> tuple[dict, dict]:  # noqa: ARG001
    """GeoJSON of the facilities and the drawn links, cached per data version, filters and view (``key``),
    so that a click (a rerun) does not rebuild thousands of features."""
    return facility_features(_facilities), link_features(_links.head(MAX_LINKS_DRAWN), breaks=breaks)


@st.cache_data(max_entries=16, show_spinner=False)
def _reach(key: str, _facilities: pd.DataFrame, _flows: pd.DataFrame, _filters: Filters) -> dict:  # noqa: ARG001
    """Reach circles of the suppliers shown, from the supply flows the filters and the view keep,
    cached like :func:`_features`."""
    reach = supply_reach(_facilities, select_flows(_flows, _filters), load_taxonomy())
    return reach_features(reach, max_km=_filters.max_km)


def _map_drawn() -> bool:
    """Whether this session's map has been drawn in the browser (it says so once; remembered here)."""
    if (st.session_state.get("map") or {}).get(DRAWN_KEY):
        st.session_state["_map_drawn"] = True
    return bool(st.session_state.get("_map_drawn"))


def _sidebar(loaded: state.Loaded, reach_data: dict | None) -> None:
    """The filters, sent once the map is drawn: sent with it, their scripts load in the browser at the
    same time as the map's and delay it by most of a second (docs/BENCHMARKS.md). Until then, a button
    shows them at once (should the map never say it is drawn)."""
    if _map_drawn():
        state.filter_widgets(loaded)
        st.sidebar.toggle("Reach of supplies", key="f_reach",
                          help="A circle around each supplier for each resource group it supplies: how far "
                               "that resource may travel (its maximum distance, by road; the straight-line "
                               "circle is an upper bound).")
        if reach_data is not None:
            st.sidebar.markdown(reach_legend(reach_data), unsafe_allow_html=True)  # fixed markup, labels escaped
    else:
        st.sidebar.caption("The filters appear once the map is drawn.")
        st.sidebar.button("Show the filters now", key="show_filters",
                          on_click=lambda: st.session_state.update(_map_drawn=True))


def _clicked() -> dict | None:
    """The feature last clicked on the map (st_folium's value, kept in session state under the map's key).

    Read before the map is drawn, so that the route of a clicked link is drawn with the map.
    """
    return (st.session_state.get("map") or {}).get("last_active_drawing")


def _clicked_link(links: pd.DataFrame, clicked: dict | None) -> pd.Series | None:
    """The clicked link, or None when the click was not on a link (or it is filtered out)."""
    rank = ((clicked or {}).get("properties") or {}).get("rank")
    chosen = links[links["rank"] == rank] if rank is not None else links.iloc[:0]
    return chosen.iloc[0] if len(chosen) else None


def _route(link: pd.Series | None) -> Route | None:
    """The road route of a link on the loaded network, or None (no link, no network, no route, or a
    confidential link in a public view, whose ends are grid cells rather than places)."""
    if link is None or state.network_file() is None or _approximate(link):
        return None
    return state.link_route(state.network_key(), float(link.supply_lon), float(link.supply_lat),
                            float(link.demand_lon), float(link.demand_lat))


def _approximate(link: pd.Series) -> bool:
    """Whether a link's ends are grid cells (a confidential link in a public view, :mod:`geo.privacy`)."""
    return bool(pd.notna(link.get("supply_cell_km")) or pd.notna(link.get("demand_cell_km")))


def _distance_text(link: pd.Series) -> str:
    if _approximate(link):
        return f"about {link['distance_km']:.0f} km ({link['distance_source']})"
    return f"{link['distance_km']:.1f} km ({link['distance_source']})"


def _panel(clicked: dict | None, loaded: state.Loaded, facilities: pd.DataFrame, links: pd.DataFrame,
           view: str, road: Route | None) -> None:
    """Details of the clicked facility or link, as plain text and tables (never as HTML)."""
    if not clicked or "properties" not in clicked:
        st.caption("Click a facility or a link on the map for its details.")
        return
    props = clicked["properties"]
    if "rank" in props:
        chosen = links[links["rank"] == props["rank"]]
        if chosen.empty:
            return
        link = chosen.iloc[0]
        st.subheader(f"Link #{int(link['rank'])}")
        st.text(link["why"])
        numbers = {"Score": f"{link['score']:.0f}", "Resource": link["resource"],
                   "Quantity": link.get("quantity_range") or f"{link['quantity']:,.0f} {link['unit']}",
                   "Distance": _distance_text(link),
                   "CO2 saved": f"{link['co2_saved_t_per_yr']:,.0f} t/yr" if pd.notna(link["co2_saved_t_per_yr"]) else "-",
                   "Net value": f"{link['value_eur_per_yr']:,.0f} EUR/yr" if pd.notna(link["value_eur_per_yr"]) else "-",
                   "Status": str(link.get("status") or "-")}
        if _approximate(link):
            numbers["Places"] = (f"approximate: grid cells of {link['supply_cell_km']:.0f} km (supplier) and "
                                 f"{link['demand_cell_km']:.0f} km (receiver)")
        numbers |= {f"Score part: {label}": f"{float(link[column]):.2f}" for column, label in SCORE_PARTS.items()
                    if pd.notna(link.get(column))}
        st.dataframe(pd.DataFrame({"": list(numbers), "value": list(numbers.values())}), hide_index=True)
        _route_text(road)
        return
    chosen = facilities[facilities["facility_id"] == props.get("facility_id")]
    if chosen.empty:
        return
    fac = chosen.iloc[0]
    st.subheader(state.plain(fac["name"]))
    st.text(f"{fac['nace']} | {fac['cluster']} | {fac['country']}")
    if view == "screen":  # ids are pseudonyms here, and flows would give names and quantities away
        st.caption("A public screen shows no flows or quantities.")
    else:
        own = loaded.flows[loaded.flows["facility_id"] == fac["facility_id"]]
        if view != "full":  # the public views list public flows only, and do not count the others
            own = own[~own["confidential"].astype(bool)]
        st.dataframe(own[["direction", "resource", "quantity", "unit", "basis", "description"]], hide_index=True)
    partners = links[(links["supply_facility_id"] == fac["facility_id"]) | (links["demand_facility_id"] == fac["facility_id"])]
    st.markdown("**Ranked partners**")
    st.dataframe(partners[["rank", "score", "supply_name", "demand_name", "resource", "distance_km"]], hide_index=True)
    if not PRESENTING and view != "screen":
        st.page_link("app_pages/data.py", label="Edit this facility", query_params={"edit": fac["facility_id"]})


def _route_text(road: Route | None) -> None:
    if state.network_file() is None:
        st.caption("Load a road network on the Data page to see the road route of a link.")
    elif road is None:
        return
    elif road.geometry is None:
        st.caption(f"No road route: {road.reason}.")
    else:
        st.markdown(f"**Road route** (dashed red on the map): {road.distance_km:.1f} km, "
                    f"about {road.travel_time_min:.0f} min by truck.")


loaded = state.data()
filters = state.filters(loaded)  # the sidebar is drawn last: the map goes to the browser first
facilities, links = select_view(loaded.facilities, loaded.flows, loaded.links, filters)

if PRESENTING:
    st.markdown("<style>[data-testid='stSidebar'],[data-testid='stSidebarCollapsedControl']{display:none}"
                "html{font-size:20px}</style>", unsafe_allow_html=True)
    shown = _present(links)
else:
    st.title("Industrial symbiosis opportunities")
    roads = f" Road distances from {loaded.network}." if loaded.network else " Distances are straight-line estimates."
    drawn = (f" The map draws the best {MAX_LINKS_DRAWN:,}; narrow the filters to see the others."
             if len(links) > MAX_LINKS_DRAWN else "")
    st.caption(f"{len(facilities)} facilities and {len(links)} candidate links shown, from {loaded.source}.{roads}"
               f"{drawn}")
    shown = _clicked_link(links, _clicked())

center, zoom = _view(facilities)
state.show_url_notes()
state.show_left_out(loaded, filters.view)
fmap = _base(loaded.score_breaks, approximate=filters.view != "full")
road = _route(shown)
key = f"{state.data_key()}|{filters}"
facility_data, link_data = _features(key, facilities, links, loaded.score_breaks)
reach_data = _reach(key, facilities, loaded.flows, filters) if state.switch_in_url("f_reach", "reach") else None
layers = [link_layer(link_data), facility_layer(facility_data)]
if road is not None and road.geometry is not None:
    layers.insert(1, route_layer(road.geometry, label=f"Road route: {road.distance_km:.1f} km"))
if reach_data is not None:
    layers.insert(0, reach_layer(reach_data))
map_col, panel_col = (st.container(), None) if PRESENTING else st.columns([3, 1])
with map_col:
    st_folium(fmap, key="map", feature_group_to_add=layers, layer_control=folium.LayerControl(collapsed=False),
              returned_objects=["last_active_drawing"], center=center, zoom=zoom,
              height=820 if PRESENTING else 640, use_container_width=True)
if panel_col is not None:
    with panel_col:
        _panel(_clicked(), loaded, facilities, links, filters.view, road)
if not PRESENTING:
    _sidebar(loaded, reach_data)
