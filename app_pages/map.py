"""The map page: filtered facilities and links on one folium map; click for details; present mode.

``?present=1`` turns the page into slides for a projector: a title, the best
links one by one (each fitted, highlighted and its two companies labelled)
and a closing summary, stepped with the buttons, the arrow keys or a
clicker's PageUp/PageDown, or by clicking a link; ``&theme=dark`` for a dark
room. Every text is in the page's language (``?lang=``, :func:`app_pages.state.tr`);
names and descriptions from the data are shown as text, never as HTML.
"""

from __future__ import annotations

import math

import folium
import numpy as np
import pandas as pd
import streamlit as st
from streamlit_folium import st_folium

from app_pages import state
from app_pages.state import tr
from geo.allocation import allocation_totals
from geo.distance import great_circle_km
from geo.errors import GeoError
from geo.export import column_labels, describe_filters
from geo.i18n import number, resource_name, resource_names
from geo.matching import supply_limits_km, supply_reach
from geo.privacy import select_view
from geo.routing import Route
from geo.selection import Filters, select_flows
from geo.taxonomy import load_taxonomy, resource_group
from layers.assets import offline_urls
from layers.basemap import DRAWN_KEY, THEMES, base_map, report_drawn, view_in_url
from layers.facilities import facility_features, facility_layer
from layers.links import legend, link_features, link_layer
from layers.present import fitted_layer, presentation_keys, presented_layer
from layers.reach import reach_features, reach_layer, reach_legend
from layers.roads import roads_url
from layers.routes import route_layer

PRESENTING = st.query_params.get("present") == "1"
#: The presentation's colours: ``?theme=dark`` for a dark room, bright otherwise.
THEME = "dark" if st.query_params.get("theme") == "dark" else "bright"
TOP_STEPS = 20
#: The score's parts shown in a link's panel (0 to 1 each; geo.settings.ScoringWeights weighs them), each named
#: by its catalogue key ``part.<column>``.
SCORE_PARTS = ("part_co2", "part_value", "part_distance", "part_compatibility", "part_precedent", "confidence")
#: Most links drawn at once: the browser stays responsive with this many (docs/BENCHMARKS.md); the
#: best-ranked are drawn and the caption says how many more the filters keep.
MAX_LINKS_DRAWN = 10_000
#: Widget keys of the presentation's buttons (the keyboard presses them: layers.present.presentation_keys).
NEXT, PREVIOUS = "next", "prev"
#: Height of the map on a projector before the page sizes it to the window (px), and the room above it
#: for the buttons and the slide's heading.
PRESENT_MAP_PX = 560
PRESENT_TOP_PX = 108


def _base(breaks: tuple[float, ...], *, approximate: bool) -> tuple[folium.Map, str]:
    """The base map, and what it is made of (the same map from run to run has the same). st_folium keys the
    browser's map on this map's script, which stays the same from run to run, so filtering only swaps the
    layers passed in ``feature_group_to_add`` and the view stays.

    A fresh object each run: st_folium adds the layer control to the map it is given, so a map kept
    across runs would carry stale layer references into the next script.
    """
    roads = roads_url(state.network(), state.network_key()) if state.network_file() is not None else None
    offline = offline_urls()
    fmap = base_map(**offline, roads_url=roads, theme=THEME, presenting=PRESENTING)
    fmap.add_child(legend(breaks, approximate=approximate, compact=PRESENTING, lang=state.lang()))
    fmap.add_child(view_in_url())
    fmap.add_child(report_drawn())
    if PRESENTING:
        fmap.add_child(presentation_keys(next_key=NEXT, previous_key=PREVIOUS))
    return fmap, repr((breaks, approximate, roads, sorted(offline.items()), THEME, PRESENTING, state.lang()))


# --- the view -----------------------------------------------------------------------

def _url_view() -> tuple[list[float], int] | None:
    """The view in the URL (centre and zoom), or None. The zoom is read only with a usable centre
    (without one it is not used, and its note would say otherwise)."""
    if "lat" in st.query_params and "lon" in st.query_params:
        fitted = tr("map.url_fitted")
        lat = state.url_number("lat", float("nan"), low=-85.0, high=85.0, instead=fitted)
        lon = state.url_number("lon", float("nan"), low=-180.0, high=180.0, instead=fitted)
        if math.isfinite(lat) and math.isfinite(lon):
            return [lat, lon], int(state.url_number("zoom", 9.0, low=1.0, high=18.0))
    return None


def _selection_fit(filters: Filters, facilities: pd.DataFrame, links: pd.DataFrame, view: tuple[list[float], int] | None,
                   base: str) -> tuple[folium.FeatureGroup | None, list[float] | None, int | None]:
    """Zoom to what the filters select: a layer that fits the map to the facilities and links shown when the
    filters change (or on a session's first map, unless the URL holds a ``view``), and the centre and zoom to
    pass to the map.

    The URL's view is passed when the map is made (``base`` names it: a new one is drawn afresh); after that
    the same centre again, which the map ignores, since the URL only follows the map, and a run that
    started before the user's last move would move the map back. None while the map fits itself.
    """
    selection = (filters.countries, filters.clusters, filters.groups, filters.bases, filters.min_score,
                 filters.max_km, filters.search.strip())
    key = f"{state.data_key()}|{selection}"
    previous = st.session_state.get("_fit_key")
    st.session_state["_fit_key"] = key
    if st.session_state.get("_map_made") != base:
        st.session_state["_map_made"] = base
        st.session_state["_map_view"] = view
    lon = np.concatenate([facilities["lon"].to_numpy(float), links["supply_lon"].to_numpy(float),
                          links["demand_lon"].to_numpy(float)])
    lat = np.concatenate([facilities["lat"].to_numpy(float), links["supply_lat"].to_numpy(float),
                          links["demand_lat"].to_numpy(float)])
    ok = np.isfinite(lon) & np.isfinite(lat)
    layer = fitted_layer(lon[ok], lat[ok], key=key, on_load=view is None)
    made = st.session_state["_map_view"]
    if made is None or (previous is not None and previous != key and layer is not None):
        return layer, None, None  # the map fits itself; a centre passed now would move it back
    return layer, made[0], made[1]


# --- the presentation ---------------------------------------------------------------

def _go_to(step: int) -> None:
    st.session_state["_present_step"] = step
    st.session_state.pop("_present_rank", None)


def _present_step(count: int) -> int:
    """The slide shown: 0 the title, 1..count the links, count + 1 the summary (kept in the URL as ``step``)."""
    if "_present_step" not in st.session_state:
        st.session_state["_present_step"] = int(state.url_number("step", 1.0, low=0.0, high=float(count + 1)))
    step = min(max(int(st.session_state["_present_step"]), 0), count + 1)
    st.session_state["_present_step"] = step
    st.query_params["step"] = str(step)
    return step


def _present_click(links: pd.DataFrame, top: pd.DataFrame) -> None:
    """A click on a link presents it: its step when it is among the top links, else it is shown on its own."""
    value = st.session_state.get("map") or {}
    rank = ((value.get("last_active_drawing") or {}).get("properties") or {}).get("rank")
    where = value.get("last_object_clicked")
    signature = (rank, str(where))
    if rank is None or signature == st.session_state.get("_present_seen"):
        return
    st.session_state["_present_seen"] = signature
    position = np.flatnonzero(top["rank"].to_numpy() == rank)
    if len(position):
        _go_to(int(position[0]) + 1)
    elif (links["rank"] == rank).any():
        st.session_state["_present_rank"] = int(rank)


def _present_style() -> None:
    """The page as slides: no sidebar or toolbar, large text, the map as tall as the window allows."""
    colours = THEMES[THEME]
    dark = (f"[data-testid='stApp'],[data-testid='stMain']{{background:{colours['sea']};color:{colours['box_text']}}}"
            f"[data-testid='stApp'] p,[data-testid='stApp'] h1,[data-testid='stApp'] h2,[data-testid='stApp'] h3,"
            f"[data-testid='stApp'] li,[data-testid='stApp'] td,[data-testid='stApp'] th{{color:{colours['box_text']}}}"
            f"[data-testid='stApp'] button{{background:#30343a;color:{colours['box_text']};border-color:#555}}"
            f"[data-testid='stText'],[data-testid='stText'] *,[data-testid='stCaptionContainer']"
            f"{{color:{colours['box_text']} !important}}"
            if THEME == "dark" else "")
    st.markdown(
        "<style>[data-testid='stSidebar'],[data-testid='stSidebarCollapsedControl'],header[data-testid='stHeader']"
        "{display:none}html{font-size:20px}[data-testid='stMainBlockContainer'],.block-container"
        "{padding:10px 24px 0 24px;max-width:100%}"
        "[data-testid='stMarkdownContainer'] h2{font-size:1.6rem;padding:0;margin:0;line-height:1.2}"
        "[data-testid='stMarkdownContainer'] thead{display:none}"
        f"iframe[title='streamlit_folium.st_folium']{{height:calc(100vh - {PRESENT_TOP_PX}px) !important}}"
        f"{dark}</style>", unsafe_allow_html=True)  # fixed markup


def _presentation(links: pd.DataFrame) -> tuple[pd.Series | None, str]:
    """The slide's top bar and text; returns the link presented (None on the title and summary slides) and
    the slide's name (the key of its map view)."""
    top = links.head(TOP_STEPS)
    _present_click(links, top)
    step = _present_step(len(top))
    extra = st.session_state.get("_present_rank")
    link = None
    if extra is not None and (links["rank"] == extra).any():
        link = links[links["rank"] == extra].iloc[0]
        heading = tr("present.beyond", rank=int(extra), top=len(top))
    elif 1 <= step <= len(top):
        link = top.iloc[step - 1]
        heading = tr("present.step", step=step, top=len(top))
    else:
        heading = tr("map.title") if step == 0 else tr("present.summary")
    left, middle, theme, right = st.columns([1.1, 6, 1.1, 1.1], vertical_alignment="center")
    left.button(tr("present.previous"), key=PREVIOUS, on_click=_go_to, args=(step - 1,),
                disabled=step <= 0 and extra is None, width="stretch")
    middle.markdown(f"## {state.plain(heading)}")
    theme.button(tr("present.bright" if THEME == "dark" else "present.dark"), key="present_theme", width="stretch",
                 help=tr("present.theme_help"), on_click=_switch_theme)
    right.button(tr("present.next"), key=NEXT, on_click=_go_to, args=(step + 1,),
                 disabled=step > len(top) and extra is None, width="stretch")
    return link, (f"link-{int(link['rank'])}" if link is not None else f"slide-{step}")


def _switch_theme() -> None:
    st.query_params["theme"] = "bright" if THEME == "dark" else "dark"


def _slide_text(loaded: state.Loaded, facilities: pd.DataFrame, links: pd.DataFrame, link: pd.Series | None,
                filters: Filters) -> None:
    """The text beside the map: the link's story and numbers, or the title, or the summary."""
    top = links.head(TOP_STEPS)
    step = st.session_state["_present_step"]
    if link is not None:
        st.markdown(f"**{state.plain(link['supply_name'])}** &rarr; **{state.plain(link['demand_name'])}**")
        st.text(link["why"])
        st.markdown(_table(_numbers(link)))
    elif step == 0:
        countries = sorted(set(top["supply_country"]) | set(top["demand_country"])) if len(top) else []
        where = tr("present.in_countries", countries=", ".join(countries)) if countries else ""
        st.markdown(tr("present.title_text", top=len(top), links=len(links), facilities=len(facilities), where=where))
        st.caption(state.plain(tr("present.data_filters", source=loaded.source,
                                  filters=describe_filters(filters, lang=state.lang()))))
        st.caption(tr("present.keys_help"))
    else:
        st.markdown(tr("present.summary_text", top=len(top), links=len(links)))
        st.markdown(state.plain(_totals(top)))
        groups = resource_group(top["resource"]).value_counts() if len(top) else pd.Series(dtype=int)
        st.markdown(_table({resource_name(group, state.lang()): state.count(int(n), "link")
                            for group, n in groups.items()}))


def _table(rows: dict[str, str]) -> str:
    """A two-column markdown table of plain texts (escaped), which takes the slide's colours."""
    return "| | |\n|---|---|\n" + "\n".join(f"| {state.plain(k)} | {state.plain(v)} |" for k, v in rows.items())


def _totals(links: pd.DataFrame) -> str:
    """The presented links' yearly totals, each supply and demand counted once (figures a view hides left out)."""
    if links.empty:
        return tr("present.no_totals")
    try:
        text = state.totals_text(allocation_totals(links).iloc[0])
    except (GeoError, KeyError):
        return tr("present.totals_unknown")
    hidden = int(links["allocated_quantity"].isna().sum()) if "allocated_quantity" in links else 0
    return tr("present.together", totals=text) + (" " + tr("present.hidden", links=state.count(hidden, "link"))
                                                   if hidden else "")


# --- the layers ---------------------------------------------------------------------

@st.cache_data(max_entries=16, show_spinner=False)
def _features(key: str, _facilities: pd.DataFrame, _links: pd.DataFrame,
              breaks: tuple[float, ...]) -> tuple[dict, dict]:  # noqa: ARG001
    """GeoJSON of the facilities and the drawn links, cached per data version, filters and view (``key``),
    so that a click (a rerun) does not rebuild thousands of features."""
    lang = state.lang()
    return (facility_features(_facilities, lang=lang),
            link_features(_links.head(MAX_LINKS_DRAWN), breaks=breaks, lang=lang))


@st.cache_data(max_entries=16, show_spinner=False)
def _reach(key: str, _facilities: pd.DataFrame, _flows: pd.DataFrame, _filters: Filters) -> dict:  # noqa: ARG001
    """Reach circles of the suppliers shown, from the supply flows the filters and the view keep,
    cached like :func:`_features`."""
    reach = supply_reach(_facilities, select_flows(_flows, _filters), load_taxonomy())
    return reach_features(reach, max_km=_filters.max_km, lang=state.lang())


def _presented(link: pd.Series, link_data: dict, breaks: tuple[float, ...], slide: str) -> folium.FeatureGroup:
    """The presented link highlighted, drawn along the same line as on the map (an arc where it has company)."""
    rank = int(link["rank"])
    feature = next((f for f in link_data["features"] if f["properties"]["rank"] == rank), None)
    if feature is None:  # beyond the links drawn
        feature = link_features(link.to_frame().T.infer_objects(), breaks=breaks, lang=state.lang())["features"][0]
    return presented_layer(feature, supplier=link["supply_name"], receiver=link["demand_name"],
                           key=f"{state.data_key()}|{slide}", theme=THEME,
                           roles=(tr("role.supplier"), tr("role.receiver")))


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
        state.language_selector()
        state.filter_widgets(loaded)
        st.sidebar.toggle(tr("map.reach"), key="f_reach", help=tr("map.reach_help"))
        if reach_data is not None:
            st.sidebar.markdown(reach_legend(reach_data), unsafe_allow_html=True)  # fixed markup, labels escaped
    else:
        st.sidebar.caption(tr("map.filters_follow"))
        st.sidebar.button(tr("map.show_filters"), key="show_filters",
                          on_click=lambda: st.session_state.update(_map_drawn=True))


# --- the panel ----------------------------------------------------------------------

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
    lang = state.lang()
    source = state.value_name("distance_source", link["distance_source"])
    if _approximate(link):
        return tr("link.distance_about", km=number(link["distance_km"], lang), source=source)
    return tr("link.distance", km=number(link["distance_km"], lang, decimals=1), source=source)


def _numbers(link: pd.Series) -> dict[str, str]:
    """A link's figures as the panel lists them (plain text)."""
    lang = state.lang()
    co2, value, quantity = link.get("co2_saved_t_per_yr"), link.get("value_eur_per_yr"), link.get("quantity")
    if link.get("quantity_range"):
        amount = link["quantity_range"]
    elif pd.notna(quantity):
        amount = f"{number(quantity, lang)} {link['unit']}"
    else:
        amount = tr("link.not_stated")
    numbers = {tr("link.score"): tr("link.score_of", score=number(link["score"], lang)),
               tr("col.resource"): resource_name(link["resource"], lang),
               tr("col.quantity"): amount,
               tr("link.distance_label"): _distance_text(link),
               tr("link.co2_saved"): f"{number(co2, lang)} t/yr" if pd.notna(co2) else "-",
               tr("link.net_value"): f"{number(value, lang)} EUR/yr" if pd.notna(value) else "-",
               tr("col.status"): state.value_name("status", link.get("status") or "-")}
    if _approximate(link):
        numbers[tr("link.places")] = tr("link.places_text", supplier=number(link["supply_cell_km"], lang),
                                        receiver=number(link["demand_cell_km"], lang))
    for column, kind in (("supply_precision", "precision_short"), ("demand_precision", "precision_short"),
                         ("supply_evidence", "evidence"), ("demand_evidence", "evidence")):
        value = _text(link.get(column)).strip()
        if value:  # where the data says how exact a place or a quantity is (issue 14)
            numbers[tr(f"col.{column}")] = state.value_name(kind, value)
    return numbers


def _panel(clicked: dict | None, loaded: state.Loaded, facilities: pd.DataFrame, links: pd.DataFrame,
           filters: Filters, road: Route | None) -> None:
    """Details of the clicked facility or link, as plain text and tables (never as HTML)."""
    if not clicked or "properties" not in clicked:
        st.caption(tr("panel.click"))
        return
    props = clicked["properties"]
    if "rank" in props:
        chosen = links[links["rank"] == props["rank"]]
        if chosen.empty:
            return
        link = chosen.iloc[0]
        st.subheader(tr("panel.link", rank=int(link["rank"])))
        st.text(link["why"])
        numbers = _numbers(link)
        numbers |= {tr("panel.score_part", part=tr(f"part.{column}")): number(link[column], state.lang(), decimals=2)
                    for column in SCORE_PARTS if pd.notna(link.get(column))}
        st.dataframe(pd.DataFrame({"": list(numbers), tr("panel.value"): list(numbers.values())}), hide_index=True)
        _route_text(road)
        return
    chosen = facilities[facilities["facility_id"] == props.get("facility_id")]
    if chosen.empty:
        return
    fac = chosen.iloc[0]
    view = filters.view
    st.subheader(state.plain(fac["name"]))
    st.text(" | ".join(_text(fac.get(c)) for c in ("nace", "cluster", "country")))
    _where_from(fac, view)
    if view == "screen":  # ids are pseudonyms here, and flows would give names and quantities away
        st.caption(tr("panel.screen_no_flows"))
    else:
        own = loaded.flows[loaded.flows["facility_id"] == fac["facility_id"]]
        if view != "full":  # the public views list public flows only, and do not count the others
            own = own[~own["confidential"].astype(bool)]
        st.dataframe(_flow_table(own), hide_index=True, column_config=column_labels(state.lang()))
    partners = links[(links["supply_facility_id"] == fac["facility_id"]) | (links["demand_facility_id"] == fac["facility_id"])]
    st.markdown(f"**{tr('panel.partners')}**")
    if partners.empty:
        if view != "screen":  # the screen's ids are pseudonyms: its flows cannot be looked up, nor told
            st.info(_why_no_partners(fac["facility_id"], loaded, filters), icon=":material/help:")
    else:
        shown = partners[["rank", "score", "supply_name", "demand_name", "resource", "distance_km"]]
        st.dataframe(shown.assign(resource=resource_names(shown["resource"], state.lang())), hide_index=True,
                     column_config=column_labels(state.lang()))
    if not PRESENTING and view != "screen":
        st.page_link("app_pages/data.py", label=tr("panel.edit"), query_params={"edit": fac["facility_id"]})


def _text(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


#: Columns of a facility's flows in its panel (where the data has them).
FLOW_COLUMNS = ("direction", "resource", "quantity", "unit", "basis", "evidence", "source", "description")


def _where_from(fac: pd.Series, view: str) -> None:
    """How exact the facility's point is (``precision``) and, outside the public screen, its sources: plain text."""
    precision = _text(fac.get("precision")).strip().lower()
    lines = []
    if precision:
        lines.append(tr("panel.precision", precision=state.value_name("precision", precision)))
    if view != "screen" and _text(fac.get("source")).strip():
        lines.append(tr("panel.source", source=_text(fac.get("source")).strip()))
    if lines:
        st.caption(state.plain("\n\n".join(lines)))


def _flow_table(flows: pd.DataFrame) -> pd.DataFrame:
    """A facility's flows as its panel lists them: directions, resources and evidence in words (the engine's
    column names, which the table's column labels translate)."""
    table = flows[[c for c in FLOW_COLUMNS if c in flows]].copy()
    lang = state.lang()
    if "resource" in table:
        table["resource"] = resource_names(table["resource"], lang)
    for column in ("direction", "basis", "evidence"):
        if column in table:
            table[column] = table[column].map(lambda v: state.value_name(column, v) if isinstance(v, str) and v
                                               else "")
    return table


def _why_no_partners(facility_id: str, loaded: state.Loaded, filters: Filters) -> str:
    """Why a facility has no link on the map, in words: no flows, links the filters hide, or, for each of its
    flows, that no facility has the counterpart or that the nearest is beyond the distance the resource may
    travel. In a public view only public flows are looked at, and no other facility is named."""
    public = filters.view != "full"
    flows = loaded.flows
    if public:
        flows = flows[~flows["confidential"].astype(bool)]
    own = flows[flows["facility_id"] == facility_id]
    if own.empty:
        return tr("why.no_flows")
    every = loaded.links[(loaded.links["supply_facility_id"] == facility_id)
                         | (loaded.links["demand_facility_id"] == facility_id)]
    if public:
        every = every[~every["confidential"].astype(bool)]
    if len(every):
        return tr("why.hidden", links=state.count(len(every), "link"),
                  filters=describe_filters(filters, lang=state.lang()))
    reasons = [_flow_reason(flow, flows, loaded.facilities) for flow in own.head(6).itertuples(index=False)]
    return tr("why.none") + " " + " ".join(reasons)


def _flow_reason(flow, flows: pd.DataFrame, facilities: pd.DataFrame) -> str:
    """Why one flow found no partner: nobody has its counterpart, or the nearest is out of reach."""
    taxonomy = load_taxonomy()
    pairs = taxonomy.compatibility
    if flow.direction == "supply":
        wanted = set(pairs.loc[pairs["supply_resource"] == flow.resource, "demand_resource"])
        other = flows[(flows["direction"] == "demand") & flows["resource"].isin(wanted)]
    else:
        wanted = set(pairs.loc[pairs["demand_resource"] == flow.resource, "supply_resource"])
        other = flows[(flows["direction"] == "supply") & flows["resource"].isin(wanted)]
    other = other[other["facility_id"] != flow.facility_id]
    side = "supply" if flow.direction == "supply" else "demand"  # the catalogue words each case from this side
    resource = resource_name(flow.resource, state.lang())
    if other.empty:
        return tr(f"why.{side}.nobody", resource=resource)
    places = facilities.drop_duplicates("facility_id").set_index("facility_id")[["lon", "lat"]]
    here = places.loc[flow.facility_id]
    there = places.reindex(other["facility_id"])
    km = great_circle_km(np.full(len(there), here["lon"]), np.full(len(there), here["lat"]),
                         there["lon"].to_numpy(float), there["lat"].to_numpy(float))
    supplies = pd.DataFrame([flow._asdict()]) if flow.direction == "supply" else other
    limits = supply_limits_km(supplies, taxonomy).to_numpy(float)
    limit = np.full(len(other), limits[0]) if flow.direction == "supply" else limits
    nearest = int(np.nanargmin(km)) if np.isfinite(km).any() else None
    if nearest is None:
        return tr(f"why.{side}.no_place", resource=resource)
    lang = state.lang()
    if km[nearest] > limit[nearest]:
        return tr(f"why.{side}.too_far", resource=resource, km=number(km[nearest], lang),
                  limit=number(limit[nearest], lang))
    return tr(f"why.{side}.left_out", resource=resource, km=number(km[nearest], lang))


def _route_text(road: Route | None) -> None:
    lang = state.lang()
    if state.network_file() is None:
        st.caption(tr("route.load"))
    elif road is None:
        return
    elif road.geometry is None:
        st.caption(state.plain(tr("route.none", reason=road.reason)))
    else:
        st.markdown(tr("route.text", km=number(road.distance_km, lang, decimals=1),
                       minutes=number(road.travel_time_min, lang)))


# --- the page -----------------------------------------------------------------------

loaded = state.data()
filters = state.filters(loaded)  # the sidebar is drawn last: the map goes to the browser first
facilities, links = select_view(loaded.facilities, loaded.flows, loaded.links, filters)

slide = ""
if PRESENTING:
    _present_style()
    shown, slide = _presentation(links)
else:
    st.title(tr("map.title"))
    roads = " " + (tr("map.roads", network=loaded.network) if loaded.network else tr("map.estimates"))
    drawn = " " + tr("map.drawn_best", count=MAX_LINKS_DRAWN) if len(links) > MAX_LINKS_DRAWN else ""
    st.caption(tr("map.caption", facilities=len(facilities), links=len(links), source=loaded.source) + roads + drawn)
    shown = _clicked_link(links, _clicked())

url_view = _url_view()  # read before the notes on the URL's values are shown
state.show_url_notes()
state.show_left_out(loaded, filters.view)
fmap, base = _base(loaded.score_breaks, approximate=filters.view != "full")
road = _route(shown)
key = f"{state.data_key()}|{filters}|{state.lang()}"  # the features carry texts in the language
facility_data, link_data = _features(key, facilities, links, loaded.score_breaks)
reach_data = _reach(key, facilities, loaded.flows, filters) if state.switch_in_url("f_reach", "reach") else None
presenting_link = PRESENTING and shown is not None
lang = state.lang()
layers = [link_layer(link_data, opacity=0.3 if presenting_link else 0.85, lang=lang),
          facility_layer(facility_data, lang=lang)]
if road is not None and road.geometry is not None:
    layers.insert(1, route_layer(road.geometry, label=tr("route.label", km=number(road.distance_km, lang, decimals=1)),
                                 name=tr("layer.route")))
if reach_data is not None:
    layers.insert(0, reach_layer(reach_data, name=tr("layer.reach")))
if presenting_link:
    layers.append(_presented(shown, link_data, loaded.score_breaks, slide))
    center, zoom = None, None
elif PRESENTING:  # the title and the summary: the links presented, all in view
    top = links.head(TOP_STEPS)
    fitted = fitted_layer(np.r_[top["supply_lon"], top["demand_lon"]], np.r_[top["supply_lat"], top["demand_lat"]],
                          key=f"{state.data_key()}|{slide}")
    layers += [fitted] if fitted is not None else []
    center, zoom = None, None
else:
    fitted, center, zoom = _selection_fit(filters, facilities, links, url_view, base)
    layers += [fitted] if fitted is not None else []
map_col, panel_col = st.columns([2.7, 1]) if PRESENTING else st.columns([3, 1])
with map_col:
    st_folium(fmap, key="map", feature_group_to_add=layers, layer_control=folium.LayerControl(collapsed=False),
              returned_objects=["last_active_drawing", "last_object_clicked"] if PRESENTING else ["last_active_drawing"],
              center=center, zoom=zoom, height=PRESENT_MAP_PX if PRESENTING else 640, use_container_width=True)
with panel_col:
    if PRESENTING:
        _slide_text(loaded, facilities, links, shown, filters)
    else:
        _panel(_clicked(), loaded, facilities, links, filters, road)
if not PRESENTING:
    _sidebar(loaded, reach_data)
