"""What the pages share: where the data comes from, the cached match, and the filters in the URL.

Caching lives here, in the app layer only: the match is cached with
``st.cache_data`` per version of the data (the workspace's data key, which
changes with every change to it, or the demo files' size and modification
time), so an edit of the workspace is picked up at once by every session.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import streamlit as st

from geo.dataset import facility_roles, load_dataset
from geo.schema import Dataset
from geo.network import RoadNetwork, road_network
from geo.pipeline import match
from geo.routing import Route, route
from geo.privacy import public_facilities, public_links
from geo.selection import Filters, select_facilities, select_links
from geo.taxonomy import resource_group
from geo.workspace import FACILITY_FIELDS, FLOW_FIELDS, Author, Workspace
from layers.links import SCORE_BINS, score_breaks

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "demo"
#: Workspace of the Data page: a GeoPackage path or a postgresql:// URL; SYMBIOSIS_WORKSPACE overrides it.
WORKSPACE_ENV = "SYMBIOSIS_WORKSPACE"
#: Road-network file used when none was chosen on the Data page.
NETWORK_ENV = "SYMBIOSIS_NETWORK"
#: Folder the Data page offers road-network files from and keeps built ones in
#: (default: ``roads/`` beside the workspace).
ROADS_ENV = "SYMBIOSIS_ROADS_DIR"
VIEWS = {"public": "Hide confidential flows", "screen": "Public screen: hide all names and quantities",
         "full": "Show everything (internal use)"}


@dataclass
class Loaded:
    """The current data and its match."""

    facilities: pd.DataFrame
    flows: pd.DataFrame
    links: pd.DataFrame
    problems: pd.DataFrame
    source: str
    network: str = ""
    #: choices of each list filter (country, cluster, group, basis)
    options: dict[str, list[str]] = field(default_factory=dict)
    #: lower bounds of the map's score classes, from all links (so a filter never recolours the map)
    score_breaks: tuple[float, ...] = SCORE_BINS
    #: records left out because of an error: table, file, row, facility_id, reason (geo.schema.Dataset.skipped)
    skipped: pd.DataFrame = field(default_factory=pd.DataFrame)


def workspace() -> Workspace:
    return Workspace(os.environ.get(WORKSPACE_ENV) or ROOT / "data" / "workspace.gpkg")


def workspace_folder() -> Path:
    """Where files that go with the workspace are kept (its road networks, its settings): the GeoPackage's
    folder, or ``data/`` for a workspace in PostgreSQL."""
    ws = workspace()
    return ws.path.parent if ws.path is not None else ROOT / "data"


def author() -> Author:
    """This browser session as the author of changes: its own undo history, and the name it gave (if any)."""
    session = st.session_state.setdefault("_author_session", secrets.token_hex(8))
    return Author(session, st.session_state.get("_author_name", ""))


def _demo_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    dataset = load_dataset(DEMO / "facilities.csv", DEMO / "flows.csv")
    return dataset.facilities.reindex(columns=FACILITY_FIELDS), dataset.flows.reindex(columns=FLOW_FIELDS)


def start_workspace() -> None:
    """Start the workspace from the bundled demo before the first change, unless it exists."""
    ws = workspace()
    if not ws.exists():
        ws.create(*_demo_tables(), author=author(), source="the bundled demo")


@st.cache_data(max_entries=8, show_spinner=False)
def _tables(key: str, location: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:  # noqa: ARG001 - key
    if location is None:
        return _demo_tables()
    snapshot = Workspace(location).read()
    return snapshot.facilities, snapshot.flows


def tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every facility and flow as stored (rows with errors too, so they can be corrected), per data version."""
    ws = workspace()
    key = ws.data_key()
    return _tables(key or _file_key(_demo_files()), ws.location if key else None)


def _demo_files() -> list[Path]:
    return [DEMO / "facilities.csv", DEMO / "flows.csv"]


def _file_key(paths: list[Path]) -> str:
    """Cache key of files: path, size and modification time of each (cheap: no file is read)."""
    return "|".join(f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in paths)


# --- the road network -------------------------------------------------------------

def _settings_file() -> Path:
    ws = workspace()
    if ws.path is None:
        return workspace_folder() / "workspace.settings.json"
    return ws.path.with_name(ws.path.stem + ".settings.json")


def network_file() -> Path | None:
    """The road network in use: the one chosen on the Data page (kept beside the workspace), else
    ``SYMBIOSIS_NETWORK``; None when there is none or its file has gone."""
    chosen = None
    if _settings_file().is_file():
        chosen = json.loads(_settings_file().read_text(encoding="utf-8")).get("network")
    chosen = chosen or os.environ.get(NETWORK_ENV)
    return Path(chosen) if chosen and Path(chosen).is_file() else None


def set_network_file(path: Path | None) -> None:
    """Remember the road network for this workspace (None: use straight-line estimates)."""
    target = _settings_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"network": str(path) if path else None}), encoding="utf-8")


@st.cache_resource(show_spinner="Loading the road network (built once, then read from the cache) ...",
                   max_entries=2)
def _network(path: str, key: str) -> RoadNetwork:  # noqa: ARG001 - key is the cache key
    """The road network of a file, shared by every session.

    The app never changes it; the routing code only memoises its own search
    structures in it (spatial index, contraction hierarchy), the same for every user.
    """
    return road_network(source=path)


def network() -> RoadNetwork | None:
    """The loaded road network, or None."""
    path = network_file()
    return _network(str(path), _file_key([path])) if path is not None else None


@st.cache_data(max_entries=512, show_spinner=False)
def link_route(network_key: str, lon1: float, lat1: float, lon2: float, lat2: float) -> Route:  # noqa: ARG001
    """The shortest road route of one link on the loaded network (cached per link)."""
    return route(network(), lon1, lat1, lon2, lat2, weight="length")


def network_key() -> str:
    path = network_file()
    return _file_key([path]) if path is not None else ""


# --- the data and its match -----------------------------------------------------

@st.cache_data(show_spinner="Checking the data ...", max_entries=8)
def _dataset(key: str, location: str | None) -> tuple[Dataset, str]:  # noqa: ARG001 - key
    """The data validated (the workspace's, or the demo's when location is None), and its name."""
    if location is not None:
        ws = Workspace(location)
        return ws.dataset(reader=load_dataset)[0], ws.name
    files = _demo_files()
    return load_dataset(*files), " + ".join(p.name for p in files)


def checked() -> tuple[Dataset, str]:
    """The data in use, validated but not matched (cheap after a change: the Data page needs no match)."""
    location, files, _ = _version()
    return _dataset(files, location)


@st.cache_data(show_spinner="Matching supply and demand ...", max_entries=8)
def _load(key: str, location: str | None, network_key: str) -> Loaded:  # noqa: ARG001 - keys
    dataset, name = _dataset(key, location)
    roads = network() if network_key else None
    result = match(dataset, infer=True, network=roads)
    fac = pd.DataFrame(dataset.facilities.drop(columns="geometry"))
    fac["role"] = facility_roles(fac, result.flows)
    problems = dataset.report.to_frame()
    return Loaded(fac, result.flows, result.links, problems, name, roads.info.get("source", "") if roads else "",
                  _options(fac, result.links), score_breaks(result.links["score"]), dataset.skipped)


def _version() -> tuple[str | None, str, str]:
    """The workspace in use (None: the bundled demo), the data's cache key, and the road network's."""
    ws = workspace()
    key = ws.data_key()
    if key:
        return ws.location, key, network_key()
    return None, _file_key(_demo_files()), network_key()


def data_key() -> str:
    """Version of the data in use: the workspace's (or the demo files') and the road network's."""
    _, files, roads = _version()
    return f"{files}|{roads}"


def data() -> Loaded:
    """The current data and its links (cached per version of the data and of the road network)."""
    location, files, roads = _version()
    return _load(files, location, roads)


# --- filters in the URL ---------------------------------------------------------

_LISTS = ("country", "cluster", "group", "basis")
#: Session keys of the filters' widgets.
_FILTER_KEYS = (*(f"f_{name}" for name in _LISTS), "f_min_score", "f_max_km", "f_search", "f_view")
#: Session keys, owned by no widget, of the filters last in force and of the sign that a user changed one.
_KEPT, _CHANGED = "_kept_filters", "_filters_changed"


def _url_list(name: str) -> list[str]:
    return [v for v in st.query_params.get_all(name) if v]


def _restore_kept() -> None:
    """The filters last in force, unless a user has just changed one.

    Streamlit forgets a widget's state on a page that does not draw it (the
    Data page) and may bring a filter back empty on the next page; the
    address a page change leaves may be an old one. Within a session, the
    copy kept under a key no widget owns is the truth; the widgets' own
    values count only after a change made in them (their ``on_change``).
    """
    kept = st.session_state.get(_KEPT)
    if kept is not None and not st.session_state.pop(_CHANGED, False):
        for key in _FILTER_KEYS:
            st.session_state[key] = kept[key]


def _changed() -> None:
    st.session_state[_CHANGED] = True


def _init_from_url() -> None:
    """Filter state from the URL where the session has none, so a copied URL opens the same view.

    A filter's state is missing on a session's first run, and again after a
    page that does not draw the filters (Streamlit forgets the state of a widget
    not drawn in a run); the URL, kept in step with the filters, has it.
    """
    view = st.query_params.get("view", "public")
    initial = {f"f_{name}": _url_list(name) for name in _LISTS}
    initial |= {"f_min_score": url_number("min_score", 0.0, low=0.0, high=100.0),
                "f_max_km": url_number("max_km", 0.0, low=0.0, high=MAX_KM_FILTER),
                "f_search": st.query_params.get("q", ""), "f_view": view if view in VIEWS else "public"}
    for key, value in initial.items():
        if key not in st.session_state:
            st.session_state[key] = value


#: Largest maximum-distance filter (km) a URL may set: beyond any resource's own maximum.
MAX_KM_FILTER = 1_000.0

#: Session key of the notes on URL values that were clamped or ignored, shown once on the page.
URL_NOTES = "_url_notes"


def url_number(name: str, default: float, *, low: float, high: float, instead: str = "") -> float:
    """A number from the URL, kept within ``low``..``high``.

    A value that is not a finite number (``abc``, ``nan``, ``inf``) is ignored
    and one out of range is clamped; either way a note says so
    (:func:`show_url_notes`), so the widgets never silently disagree with the
    URL a user pasted, and the address then holds the value used (an ignored
    one is removed), so the note is shown once and a copied URL is clean.
    ``instead`` says what happens when the value is ignored, where the
    default is no number to name (the map's view is fitted to the facilities).
    """
    text = st.query_params.get(name)
    if text in (None, ""):
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value):
        _note(f"{name}={text!r} in the address is not a number; {instead or _short(default) + ' is used'}.")
        del st.query_params[name]
        return default
    clamped = min(max(value, low), high)
    if clamped != value:
        _note(f"{name}={text} in the address is outside {_short(low)}-{_short(high)}; {_short(clamped)} is used.")
        st.query_params[name] = _short(clamped)
    return clamped


def _note(text: str) -> None:
    notes = st.session_state.setdefault(URL_NOTES, [])
    if text not in notes:
        notes.append(text)


def show_url_notes() -> None:
    """Show, once, what was wrong with the values in the address (as plain text)."""
    for text in st.session_state.pop(URL_NOTES, []):
        st.warning(text, icon=":material/link_off:")


#: Facilities named in the note on those left out; the others are counted.
LEFT_OUT_NAMED = 3


def show_left_out(loaded: Loaded, view: str) -> None:
    """Say which facilities the data in use leaves out because of an error, and why.

    Rows with errors are left out of the map and the matching; without this
    note a workspace whose only facility is invalid would show an empty map
    and no reason. The first few are named (id, row and what is wrong), the
    rest counted; the public screen (``view="screen"``, which hides names)
    only counts them. The Data page lists every problem.
    """
    skipped = loaded.skipped
    if skipped.empty:
        return
    facilities = skipped[skipped["table"] == "facilities"]
    flows = len(skipped) - len(facilities)
    parts = []
    if len(facilities):
        named = [] if view == "screen" else [f"{_record(rec.facility_id)} (row {rec.row}, {rec.reason})"
                                             for rec in facilities.head(LEFT_OUT_NAMED).itertuples()]
        if named and len(facilities) > len(named):
            named.append(f"and {len(facilities) - len(named):,} more")
        parts.append(f"{_count(len(facilities), 'facility', 'facilities')} left out because of an error"
                     + (": " + "; ".join(named) if named else "") + ".")
    if flows:
        why = "as well" if len(facilities) else "because of an error"
        parts.append(f"{_count(flows, 'flow', 'flows')} left out {why}.")
    parts.append("The Data page lists every problem.")
    st.warning(plain(" ".join(parts)), icon=":material/error:")


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def _record(facility_id: object) -> str:
    """A left-out facility's id, or a stand-in for one that has none (its row is named beside it)."""
    return facility_id if isinstance(facility_id, str) and facility_id.strip() else "a facility without id"


_LABELS = {"country": "Country", "cluster": "Cluster", "group": "Resource group", "basis": "Basis"}


def _options(fac: pd.DataFrame, links: pd.DataFrame) -> dict[str, list[str]]:
    """The choices of each list filter: the values the data has."""
    return {
        "country": sorted(fac["country"].dropna().unique()),
        "cluster": sorted(fac["cluster"].dropna().replace("", pd.NA).dropna().unique()),
        "group": sorted(resource_group(links["resource"]).unique()),
        "basis": sorted(links["basis"].unique()),
    }


def filters(loaded: Loaded) -> Filters:
    """The filters in force: started from the URL, then the sidebar's (their widget state), written back to the URL.

    Read without drawing the widgets, so that a page can send its map to the
    browser before the sidebar (:func:`filter_widgets` draws it, with the same values).
    """
    _init_from_url()
    _restore_kept()
    for name, choices in loaded.options.items():
        key = f"f_{name}"
        st.session_state[key] = [v for v in st.session_state.get(key, []) if v in choices]
    chosen = Filters(
        countries=st.session_state["f_country"], clusters=st.session_state["f_cluster"],
        groups=st.session_state["f_group"], bases=st.session_state["f_basis"],
        min_score=float(st.session_state["f_min_score"]),
        max_km=float(st.session_state["f_max_km"]) or None,
        search=st.session_state["f_search"], view=st.session_state["f_view"],
    )
    st.session_state[_KEPT] = {key: st.session_state[key] for key in _FILTER_KEYS}
    _write_url(chosen)
    return chosen


def filter_widgets(loaded: Loaded) -> Filters:
    """The sidebar filters (their values from :func:`filters`); returns the filters in force."""
    chosen = filters(loaded)
    bar = st.sidebar
    bar.header("Filters")
    for name, choices in loaded.options.items():
        bar.multiselect(_LABELS[name], choices, key=f"f_{name}", placeholder="All", on_change=_changed)
    bar.slider("Minimum score", 0.0, 100.0, step=5.0, key="f_min_score", on_change=_changed)
    bar.number_input("Maximum distance, km (0 = no limit)", min_value=0.0, step=5.0, key="f_max_km",
                     on_change=_changed)
    bar.text_input("Find a facility", key="f_search", placeholder="name or id", on_change=_changed)
    bar.radio("View", list(VIEWS), format_func=VIEWS.get, key="f_view", on_change=_changed)
    return chosen


def _write_url(filters: Filters) -> None:
    params = {"country": filters.countries, "cluster": filters.clusters, "group": filters.groups,
              "basis": filters.bases, "min_score": _short(filters.min_score) if filters.min_score else None,
              "max_km": _short(filters.max_km) if filters.max_km else None, "q": filters.search or None,
              "view": filters.view if filters.view != "public" else None}
    for name, value in params.items():
        _set_query(name, value)


def _set_query(name: str, value: str | list[str] | None) -> None:
    """Put a value in the URL (only when it differs, so the browser's history is not written for nothing);
    an empty one is removed."""
    if value:
        if st.query_params.get_all(name) != (value if isinstance(value, list) else [value]):
            st.query_params[name] = value
    elif name in st.query_params:
        del st.query_params[name]


def switch_in_url(key: str, name: str) -> bool:
    """An on/off display option kept in the URL as ``name=1``: its widget state (``key``) starts from the
    URL where the session has none and is written back, like the filters."""
    if key not in st.session_state:
        st.session_state[key] = st.query_params.get(name) == "1"
    on = bool(st.session_state[key])
    _set_query(name, "1" if on else None)
    return on


def _short(value: float) -> str:
    return f"{value:g}"


def selection(loaded: Loaded, filters: Filters) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(facilities, links) the filters keep, in the chosen view (names and quantities hidden as it asks)."""
    links = select_links(loaded.links, loaded.facilities, filters)
    ids = loaded.facilities["facility_id"]
    # unique() first: isin against tens of thousands of repeated strings is slow, against the distinct few fast
    facilities = loaded.facilities[ids.isin(select_facilities(loaded.facilities, filters)["facility_id"].unique())
                                   | ids.isin(links["supply_facility_id"].unique())
                                   | ids.isin(links["demand_facility_id"].unique())]
    if filters.view == "full":
        return facilities, links.assign(quantity_range="")
    if filters.view == "screen":
        return public_facilities(facilities), public_links(links, everything=True)
    return facilities, public_links(links)


def plain(text: object) -> str:
    """Text for a markdown widget shown literally: every markdown character backslash-escaped."""
    return re.sub(r"([\\`*_{}\[\]()<>#+\-.!|~$])", r"\\\1", str(text))
