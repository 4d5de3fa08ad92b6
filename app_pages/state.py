"""What the pages share: where the data comes from, the cached match, and the filters in the URL.

Caching lives here, in the app layer only: the match is cached with
``st.cache_data`` per version of the data (the workspace's data key, which
changes with every change to it, or the demo files' size and modification
time), so an edit of the workspace is picked up at once by every session.
A match that runs shows a progress bar, removed when it is done.

The language of the pages (:func:`lang`) comes from ``?lang=`` or the
sidebar's selector and stays in the URL from page to page; :func:`tr` gives a
text of the catalogue (:mod:`geo.i18n`) in it.
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
from geo.export import significant
from geo.i18n import DEFAULT, language, language_name, languages, number, resource_name, t, word
from geo.schema import Dataset
from geo.network import RoadNetwork, road_network
from geo.pipeline import MATCH_STAGES, match
from geo.routing import Route, route
from geo.privacy import public_facilities, public_links, visible_facilities
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
#: The views of the data (geo.privacy), each named by its catalogue key ``view.<name>``.
VIEWS = ("public", "screen", "full")


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
    #: the same choices as the public views may offer them: no cluster or country that only facilities whose
    #: every flow is confidential have (listing it would say such a site exists there)
    public_options: dict[str, list[str]] = field(default_factory=dict)
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
        ws.create(*_demo_tables(), author=author(), source="the bundled demo")  # the journal's words, in English


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


@st.cache_resource(show_spinner=False, max_entries=2)
def _network(path: str, key: str) -> RoadNetwork:  # noqa: ARG001 - key is the cache key
    """The road network of a file, shared by every session.

    The app never changes it; the routing code only memoises its own search
    structures in it (spatial index, contraction hierarchy), the same for every user.
    """
    return road_network(source=path)


def network() -> RoadNetwork | None:
    """The loaded road network, or None (a spinner says so while it loads, past half a second)."""
    path = network_file()
    if path is None:
        return None
    with st.spinner(tr("spinner.network")):
        return _network(str(path), _file_key([path]))


@st.cache_data(max_entries=512, show_spinner=False)
def link_route(network_key: str, lon1: float, lat1: float, lon2: float, lat2: float) -> Route:  # noqa: ARG001
    """The shortest road route of one link on the loaded network (cached per link)."""
    return route(network(), lon1, lat1, lon2, lat2, weight="length")


def network_key() -> str:
    path = network_file()
    return _file_key([path]) if path is not None else ""


# --- the data and its match -----------------------------------------------------

@st.cache_data(show_spinner=False, max_entries=8)
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
    with st.spinner(tr("spinner.checking")):
        return _dataset(files, location)


@st.cache_data(show_spinner=False, max_entries=8)
def _load(key: str, location: str | None, network_key: str, _roads: RoadNetwork | None,  # noqa: ARG001 - keys
          _lang: str) -> Loaded:
    """The data and its match, with a progress bar while it runs (``_roads`` and ``_lang`` are not part of the
    key: ``network_key`` names the roads, and the language only words the bar, which is gone when done)."""
    dataset, name = _dataset(key, location)
    roads = _roads if network_key else None
    bar = MatchProgress(_lang)
    try:
        result = match(dataset, infer=True, network=roads, on_progress=bar)
    finally:
        bar.done()
    fac = pd.DataFrame(dataset.facilities.drop(columns="geometry"))
    fac["role"] = facility_roles(fac, result.flows)
    problems = dataset.report.to_frame()
    return Loaded(fac, result.flows, result.links, problems, name, roads.info.get("source", "") if roads else "",
                  _options(fac, result.links), _public_options(fac, result.flows, result.links),
                  score_breaks(result.links["score"]), dataset.skipped)


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
    return _load(files, location, roads, network() if roads else None, lang())


class MatchProgress:
    """A progress bar for :func:`geo.pipeline.match`'s ``on_progress``: made at the first report, its text the
    stage (in the page's language), its length the share of the stages done; :meth:`done` removes it.

    Each stage of :data:`geo.pipeline.MATCH_STAGES` counts as an equal part of the bar; the bar is
    redrawn only when it moves by a whole per cent, so a match of many batches sends few updates.
    """

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.bar = None
        self.shown = -1

    def __call__(self, stage: str, done: int, total: int) -> None:
        index = MATCH_STAGES.index(stage) if stage in MATCH_STAGES else 0
        share = (index + (done / total if total else 1.0)) / len(MATCH_STAGES)
        percent = min(max(int(share * 100), 0), 100)
        if percent == self.shown:
            return
        self.shown = percent
        text = t(f"progress.{stage}", self.lang) if stage in MATCH_STAGES else stage
        if self.bar is None:
            self.bar = st.progress(percent, text=text)
        else:
            self.bar.progress(percent, text=text)

    def done(self) -> None:
        """Remove the bar (the match is over, or failed)."""
        if self.bar is not None:
            self.bar.empty()
            self.bar = None


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
    default is no number to name (the map's view is fitted to the facilities),
    in the page's language.
    """
    text = st.query_params.get(name)
    if text in (None, ""):
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value):
        _note(tr("url.not_a_number", name=name, value=repr(text),
                 instead=instead or tr("url.used", value=_short(default))))
        del st.query_params[name]
        return default
    clamped = min(max(value, low), high)
    if clamped != value:
        _note(tr("url.out_of_range", name=name, value=text, low=_short(low), high=_short(high),
                 instead=tr("url.used", value=_short(clamped))))
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
    rest counted; the public views only count them (a facility left out may
    be one whose flows are confidential). The Data page lists every problem.
    """
    skipped = loaded.skipped
    if skipped.empty:
        return
    facilities = skipped[skipped["table"] == "facilities"]
    flows = len(skipped) - len(facilities)
    parts = []
    if len(facilities):
        named = [] if view != "full" else [tr("left_out.named", id=_record(rec.facility_id), row=rec.row,
                                                reason=rec.reason)
                                             for rec in facilities.head(LEFT_OUT_NAMED).itertuples()]
        if named and len(facilities) > len(named):
            named.append(tr("left_out.more", count=len(facilities) - len(named)))
        parts.append(tr("left_out.facilities", facilities=count(len(facilities), "facility"))
                     + (": " + "; ".join(named) if named else "") + ".")
    if flows:
        parts.append(tr("left_out.flows_too" if len(facilities) else "left_out.flows", flows=count(flows, "flow")))
    parts.append(tr("left_out.see_data"))
    st.warning(plain(" ".join(parts)), icon=":material/error:")


def count(n: int, noun: str) -> str:
    """``'1 facility'``, ``'3 facilities'``, in the page's language (keys ``count.<noun>.one`` and ``.many``)."""
    return tr(f"count.{noun}.{'one' if n == 1 else 'many'}", n=int(n))


def _record(facility_id: object) -> str:
    """A left-out facility's id, or a stand-in for one that has none (its row is named beside it)."""
    return facility_id if isinstance(facility_id, str) and facility_id.strip() else tr("left_out.no_id")


def _options(fac: pd.DataFrame, links: pd.DataFrame) -> dict[str, list[str]]:
    """The choices of each list filter: the values the data has."""
    return {
        "country": sorted(fac["country"].dropna().unique()),
        "cluster": sorted(fac["cluster"].dropna().replace("", pd.NA).dropna().unique()),
        "group": sorted(resource_group(links["resource"]).unique()),
        "basis": sorted(links["basis"].unique()),
    }


def _public_options(fac: pd.DataFrame, flows: pd.DataFrame, links: pd.DataFrame) -> dict[str, list[str]]:
    """The choices of each list filter in the public views: clusters and countries of the facilities those
    views show (a confidential link's generalised ends still carry their countries, so those stay)."""
    options = _options(visible_facilities(fac, flows), links)
    ends = pd.concat([links["supply_country"], links["demand_country"]]).dropna()
    options["country"] = sorted(set(options["country"]) | set(ends[ends != ""]))
    return options


def view_options(loaded: Loaded, view: str) -> dict[str, list[str]]:
    """The list filters' choices in ``view``: every value in the full view, the public ones otherwise."""
    return loaded.options if view == "full" or not loaded.public_options else loaded.public_options


def filters(loaded: Loaded) -> Filters:
    """The filters in force: started from the URL, then the sidebar's (their widget state), written back to the URL.

    Read without drawing the widgets, so that a page can send its map to the
    browser before the sidebar (:func:`filter_widgets` draws it, with the same values).
    """
    _init_from_url()
    _restore_kept()
    for name, choices in view_options(loaded, st.session_state["f_view"]).items():
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
    bar.header(tr("filters.header"))
    code = lang()  # fixed in the format functions: a widget may call them after the run
    shown = {"group": lambda g: resource_name(g, code), "basis": lambda b: word("basis", b, code)}
    for name, choices in view_options(loaded, chosen.view).items():
        bar.multiselect(tr(f"filters.{name}"), choices, key=f"f_{name}", placeholder=tr("filters.all"),
                        on_change=_changed, format_func=shown.get(name, str))
    bar.slider(tr("filters.min_score"), 0.0, 100.0, step=5.0, key="f_min_score", on_change=_changed)
    bar.number_input(tr("filters.max_km"), min_value=0.0, step=5.0, key="f_max_km", on_change=_changed)
    bar.text_input(tr("filters.search"), key="f_search", placeholder=tr("filters.search_placeholder"),
                   on_change=_changed)
    views = {view: view_name(view) for view in VIEWS}
    bar.radio(tr("filters.view"), list(VIEWS), format_func=views.get, key="f_view", on_change=_changed)
    return chosen


def view_name(view: str) -> str:
    """A view's name in the page's language."""
    return tr(f"view.{view}")


def value_name(kind: str, value: object) -> str:
    """A coded value in words (``status.new``, ``basis.inferred``, ``distance_source.road``, ...): the
    catalogue's text where it has one, else the value as it is."""
    return word(kind, value, lang())


def totals_text(totals: pd.Series) -> str:
    """One row of :func:`geo.allocation.allocation_totals` in words, in the page's language: what the links
    carry a year, in how many links, and the CO2 and money saved (figures to two significant digits)."""
    amounts = [f"{_approx(totals[column])} {unit}" for column, unit in
               (("quantity_t_per_yr", "t/yr"), ("quantity_mwh_per_yr", "MWh/yr"), ("quantity_m3_per_yr", "m3/yr"))
               if totals.get(column, 0) > 0]
    if not amounts:
        return tr("totals.nothing")
    moved = amounts[0] if len(amounts) == 1 else tr("totals.and", first=", ".join(amounts[:-1]), last=amounts[-1])
    return tr("totals.text", moved=moved, links=count(int(totals["links"]), "link"),
              co2=_approx(totals["co2_saved_t_per_yr"]), eur=_approx(totals["value_eur_per_yr"]))


def _approx(value: float) -> str:
    return number(float(significant([value], 2)[0]), lang())


# --- the language -------------------------------------------------------------------

#: Session key, owned by no widget, of the language in force; and the key of the selector's widget.
_LANG, LANG_WIDGET = "_lang", "lang_select"


def lang() -> str:
    """The language of the pages: from ``?lang=`` on a session's first run, then the selector's choice; kept in
    the URL (left out for English), so a copied address opens in it and a change of page keeps it."""
    if _LANG not in st.session_state:
        st.session_state[_LANG] = language(st.query_params.get("lang"))
    code = st.session_state[_LANG]
    _set_query("lang", None if code == DEFAULT else code)
    return code


def tr(key: str, **values: object) -> str:
    """The catalogue's text of ``key`` in the page's language (:func:`geo.i18n.t`)."""
    return t(key, lang(), **values)


def language_selector() -> None:
    """The language selector in the sidebar; a choice takes effect on the run it starts."""
    st.session_state[LANG_WIDGET] = lang()
    st.sidebar.selectbox(tr("sidebar.language"), languages(), format_func=language_name, key=LANG_WIDGET,
                         on_change=_language_chosen)


def _language_chosen() -> None:
    st.session_state[_LANG] = st.session_state[LANG_WIDGET]


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
