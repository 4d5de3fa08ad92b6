"""The public views: what the map, the tables and every export may show of a workspace.

The app has three views (:class:`geo.selection.Filters` ``view``):

- ``full``: everything, for internal use.
- ``public``: flows marked ``confidential`` are hidden; the rest is shown.
- ``screen``: for a public screen; every facility and link shows its sector
  instead of its name, a pseudonym (keyed anew at each server start, so it
  cannot be worked back from published ids) instead of its id and a rounded
  range instead of its quantity; its search finds facilities only by what it
  shows; confidential flows are hidden as in ``public``.

:func:`select_view` gives the facilities and links of a view, and the map,
the shortlist and every export (CSV, Excel, GeoJSON, GeoPackage, HTML map)
take what it gives, so what a view hides, its exports hide too.

How a confidential link is hidden
---------------------------------
A link is confidential when either of its flows is. The public views show it
(someone may want to know that heat could go from a sawmill to a greenhouse
in that area) but nothing that traces it to a company:

- **Its ends are grid cells, not facilities.** Each end is moved to the
  centre of a cell of the ETRS89-LAEA grid (EPSG:3035, the grid of
  Eurostat's statistical cells): the smallest of :data:`CELL_SIZES_KM`
  (10, 20, 40 ... 640 km; each cell is four of the size before, so cells
  nest) that holds at least :data:`MIN_SHARED` facilities of the workspace
  of the end's NACE section, so the end could be any of them. The end is
  labelled by its section alone (``Manufacturing (NACE C)``). Where no cell up
  to 640 km holds that many of its section, the section is left out too
  (``Undisclosed sector``) and the cell must hold :data:`MIN_SHARED`
  facilities of any sector; a link with an end that no cell can hide is left
  out of the public views. The cells are counted over every facility of the
  workspace, whatever the filters, so a filter never moves an end. The
  ``supply_cell_km`` and ``demand_cell_km`` columns give each cell's size
  (empty for an exact end); the map draws such a link dashed. When both ends
  fall in one cell, the link is drawn across the cell's middle (from a
  quarter of the cell west of its centre to a quarter east), not as a point.
  A grid rather than a cluster's centre: a cluster may be a single site (its
  centre would be the site), and grid cells can grow until they hold enough
  facilities, the same way everywhere.
- **Its row keeps only what describes the exchange**, not the parties:
  :data:`KEPT_COLUMNS`. Names become section labels, the quantity a range
  (``quantity_range``), the distance is rounded to :data:`DISTANCE_STEP_KM`,
  the score to whole points; ids, flow ids, descriptions, operators,
  clusters, status, every other figure and every score part are blank. Its
  explanation (``why``) is rebuilt from what is left.
- **No facility is its end.** A facility whose every flow is confidential is
  not shown in the public views at all (its marker would be the named end of
  its hidden links). Every other facility's role (supplier, receiver) is
  worked out from its public flows only, and its panel lists only those,
  without saying how many others there are.
- **Filters cannot find it out.** Filters that pick facilities by name or
  cluster (``search``, ``clusters``) never select a confidential link, and
  the score and distance filters act on the rounded values shown, so that
  narrowing a filter step by step reveals nothing finer than the table.
- **Allocation cannot count it.** Each supply and demand is shared out over
  all links (:mod:`geo.allocation`); a public link that shares a supply or a
  demand with a confidential one, directly or through a chain of shared
  flows, would give the hidden flow away by what it does not get, so its
  allocation columns are blank in the public views.

What this does not do: the resource and the section together may still
point to one plant for someone who knows the region's industry (slag comes
from a steel works), and the views are display modes, not access control
(the sidebar switches to the full view, and the Data page edits the
workspace itself).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import replace

import numpy as np
import pandas as pd
from pyproj import Transformer
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from geo import settings
from geo.allocation import ALLOCATION_COLUMNS
from geo.dataset import facility_roles
from geo.selection import Filters, select_facilities, select_links
from geo.taxonomy import resource_group

__all__ = ["CELL_SIZES_KM", "DISTANCE_STEP_KM", "KEPT_COLUMNS", "MIN_SHARED", "SECTIONS", "generalise_points",
           "nace_section", "pseudonym", "public_facilities", "public_links", "quantity_range", "sector_label",
           "select_view", "visible_facilities"]

#: Short names of the NACE Rev. 2 sections (our own wording of the section titles).
SECTIONS = {
    "A": "Agriculture, forestry and fishing", "B": "Mining and quarrying", "C": "Manufacturing",
    "D": "Energy supply", "E": "Water supply and waste management", "F": "Construction",
    "G": "Trade and vehicle repair", "H": "Transport and storage", "I": "Hotels and restaurants",
    "J": "Information and communication", "K": "Finance and insurance", "L": "Real estate",
    "M": "Professional and technical services", "N": "Administrative services",
    "O": "Public administration", "P": "Education", "Q": "Health and social work",
    "R": "Arts and recreation", "S": "Other services", "T": "Households", "U": "Extraterritorial bodies",
}
#: First NACE Rev. 2 division of each section, for codes written without their letter (``17.12``).
_FIRST_DIVISION = {"A": 1, "B": 5, "C": 10, "D": 35, "E": 36, "F": 41, "G": 45, "H": 49, "I": 55, "J": 58,
                   "K": 64, "L": 68, "M": 69, "N": 77, "O": 84, "P": 85, "Q": 86, "R": 90, "S": 94, "T": 97,
                   "U": 99}
_SECTION_STARTS = np.array(list(_FIRST_DIVISION.values()))
_SECTION_LETTERS = list(_FIRST_DIVISION)
#: A NACE code: an optional section letter, then the division's digits and the rest of the code.
_NACE = re.compile(r"\s*([A-Za-z]?)\s*(\d{0,2})[\d.]*\s*")

#: Bounds of the quantity ranges shown instead of exact figures (1, 2.5, 5 per decade).
_STEPS = np.array([m * 10.0 ** e for e in range(0, 10) for m in (1, 2.5, 5)])

#: Sizes (km) of the grid cells a confidential link's ends are moved to, smallest first; each is twice
#: the one before, so a cell is four cells of the size before.
CELL_SIZES_KM = (10, 20, 40, 80, 160, 320, 640)
#: Fewest facilities of the workspace a cell must hold (of the end's NACE section, or of any sector
#: once the section is left out) for a confidential end to be put in it.
MIN_SHARED = 3
#: A confidential link's distance is rounded to this many km (and is at least this).
DISTANCE_STEP_KM = 10.0
#: Label of a confidential end whose section is too rare in its area to be named.
UNDISCLOSED = "Undisclosed sector"

#: The only columns a confidential link keeps in a public view (the others are blanked).
KEPT_COLUMNS = (
    "rank", "score", "supply_facility_id", "supply_name", "demand_facility_id", "demand_name", "resource",
    "demand_resource", "unit", "quantity_range", "distance_km", "distance_source", "basis", "why", "score_driver",
    "precedent_parks", "precedent_at", "rule", "strength", "reason", "rule_source", "transport_mode",
    "supply_basis", "supply_nace", "supply_country", "demand_basis", "demand_nace", "demand_country",
    "confidential", "supply_lon", "supply_lat", "demand_lon", "demand_lat", "supply_cell_km", "demand_cell_km",
)
#: Columns that give a link's size, blanked wherever quantities are hidden.
_FIGURES = ("quantity", "quantity_low", "quantity_high", "supply_quantity", "demand_quantity",
            "co2_saved_t_per_yr", "value_eur_per_yr", "transport_cost_eur_per_yr", "transport_co2_t_per_yr",
            "avoided_co2_t_per_yr", "gross_value_eur_per_yr", "allocated_quantity",
            "allocated_co2_saved_t_per_yr", "allocated_value_eur_per_yr")
#: Text columns that may name a company or describe a flow, blanked wherever names are hidden.
_TEXTS = ("supply_description", "demand_description", "supply_flow_id", "demand_flow_id", "supply_operator",
          "demand_operator", "supply_quantity_note", "demand_quantity_note", "allocation_note")

#: Key of the pseudonyms, new for each server process: a pseudonym cannot be worked out from a
#: facility id (an unkeyed hash of a published id could), and is stable while the app runs.
_PSEUDONYM_KEY = secrets.token_bytes(32)

_TO_GRID = Transformer.from_crs(settings.WGS84, settings.METRIC_CRS, always_xy=True)
_FROM_GRID = Transformer.from_crs(settings.METRIC_CRS, settings.WGS84, always_xy=True)


# --- labels -------------------------------------------------------------------------

def nace_section(nace: str | float | None) -> str:
    """The NACE Rev. 2 section letter of a code: ``'C'`` for ``'C17.12'`` or ``'17.12'``; ``''`` when unknown."""
    if not isinstance(nace, str):
        return ""
    parts = _NACE.fullmatch(nace)
    if parts is None:
        return ""
    letter, division = parts.groups()
    if letter:
        return letter.upper() if letter.upper() in SECTIONS else ""
    if division:
        number = int(division)
        i = int(np.searchsorted(_SECTION_STARTS, number, side="right")) - 1
        return _SECTION_LETTERS[i] if i >= 0 else ""
    return ""


def sector_label(nace: str | float | None, *, section_only: bool = False) -> str:
    """``'Manufacturing (NACE C17)'`` for ``'C17.12'``, ``'Manufacturing (NACE 17)'`` for ``'17.12'``.

    ``'Unknown sector'`` when the code is empty.

    With ``section_only``, the section alone: ``'Manufacturing (NACE C)'``.
    """
    if not isinstance(nace, str) or not nace.strip():
        return "Unknown sector"
    section = nace_section(nace)
    name = SECTIONS.get(section, "Sector")
    if section_only:
        return f"{name} (NACE {section})" if section else UNDISCLOSED
    code = nace.strip().upper()
    division = code[1:3] if code[0].isalpha() else code[:2]
    return f"{name} (NACE {code[0] if code[0].isalpha() else ''}{division})"


def quantity_range(quantity: float, unit: str) -> str:
    """A rounded range such as ``'10,000-25,000 t/yr'`` that contains the quantity."""
    if quantity is None or not np.isfinite(quantity) or quantity <= 0:
        return "not stated"
    upper_i = int(np.searchsorted(_STEPS, quantity, side="right"))
    if upper_i >= len(_STEPS):
        return f"over {_STEPS[-1]:,.0f} {unit}"
    lower = _STEPS[upper_i - 1] if upper_i > 0 else 0.0
    return f"{lower:,.0f}-{_STEPS[upper_i]:,.0f} {unit}"


def pseudonym(facility_id: str) -> str:
    """A stand-in for a facility id that does not spell out the company and cannot be worked back.

    Keyed with a secret drawn when the server starts: the same id gets the
    same stand-in while the app runs (so a public screen's panels and
    exports agree), and knowing every facility id does not reveal which is which.
    """
    digest = hmac.new(_PSEUDONYM_KEY, str(facility_id).encode(), hashlib.sha256).hexdigest()
    return "site-" + digest[:12]


# --- grid cells ---------------------------------------------------------------------

def generalise_points(lon, lat, groups, *, population: pd.DataFrame) -> pd.DataFrame:
    """Centres of the smallest grid cells that hide each point among :data:`MIN_SHARED` of its group.

    For each point, the smallest cell of :data:`CELL_SIZES_KM` on the
    ETRS89-LAEA grid (EPSG:3035) holding at least :data:`MIN_SHARED` points
    of ``population`` whose ``group`` equals the point's.

    Parameters
    ----------
    lon, lat : array-like
        The points, WGS84 degrees.
    groups : array-like of str
        Each point's group (a NACE section, or one value for all).
    population : DataFrame
        ``lon``, ``lat`` (WGS84 degrees) and ``group`` of the points to hide among.

    Returns
    -------
    DataFrame
        Index-aligned with the points: ``lon`` and ``lat`` of the cell's
        centre (WGS84 degrees) and ``cell_km``, the cell's size; all three
        NaN where no cell up to the largest holds enough.
    """
    x, y = _TO_GRID.transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    px, py = _TO_GRID.transform(population["lon"].to_numpy(dtype=float), population["lat"].to_numpy(dtype=float))
    codes, _ = pd.factorize(np.concatenate([population["group"].astype(object).fillna("").to_numpy(),
                                            pd.Series(groups, dtype=object).fillna("").to_numpy()]))
    pcode, code = codes[:len(px)], codes[len(px):]
    cell_km = np.full(len(x), np.nan)
    for km in CELL_SIZES_KM:
        size = km * 1000.0
        cells, counts = np.unique(_cell_keys(px, py, pcode, size), return_counts=True)
        if not len(cells):
            break
        wanted = _cell_keys(x, y, code, size)
        at = np.minimum(np.searchsorted(cells, wanted), len(cells) - 1)
        enough = (cells[at] == wanted) & (counts[at] >= MIN_SHARED)
        cell_km = np.where(np.isnan(cell_km) & enough, km, cell_km)
    size = cell_km * 1000.0
    cx, cy = (np.floor(x / size) + 0.5) * size, (np.floor(y / size) + 0.5) * size
    out_lon, out_lat = _FROM_GRID.transform(cx, cy)
    return pd.DataFrame({"lon": out_lon, "lat": out_lat, "cell_km": cell_km})


def _cell_keys(x: np.ndarray, y: np.ndarray, group: np.ndarray, size: float) -> np.ndarray:
    """One integer per (cell column, cell row, group): 21 bits each for the cell's column and row
    (offset, so that any point on Earth fits), 20 for the group."""
    offset = 1 << 20
    column = np.floor(x / size).astype(np.int64) + offset
    row = np.floor(y / size).astype(np.int64) + offset
    return (column << 41) | (row << 20) | group.astype(np.int64)


def _population(facilities: pd.DataFrame | None, links: pd.DataFrame) -> pd.DataFrame:
    """Points a confidential end hides among: the workspace's facilities, else the ends of the links given."""
    if facilities is None:
        ends = [links[[f"{side}_facility_id", f"{side}_lon", f"{side}_lat", f"{side}_nace"]]
                .set_axis(["facility_id", "lon", "lat", "nace"], axis=1) for side in ("supply", "demand")]
        facilities = pd.concat(ends, ignore_index=True).drop_duplicates("facility_id")
    return pd.DataFrame({"lon": facilities["lon"].to_numpy(dtype=float), "lat": facilities["lat"].to_numpy(dtype=float),
                         "section": [nace_section(n) for n in facilities["nace"]]})


def _generalised_ends(links: pd.DataFrame, population: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per side, each end's cell centre, size and label: among its section first, else among all facilities."""
    by_section = population.rename(columns={"section": "group"})
    anyone = population.assign(group="")
    out = {}
    for side in ("supply", "demand"):
        lon, lat = links[f"{side}_lon"].to_numpy(dtype=float), links[f"{side}_lat"].to_numpy(dtype=float)
        sections = [nace_section(n) for n in links[f"{side}_nace"]]
        cells = generalise_points(lon, lat, sections, population=by_section)
        unnamed = cells["cell_km"].isna().to_numpy()
        if unnamed.any():
            fallback = generalise_points(lon[unnamed], lat[unnamed], [""] * int(unnamed.sum()), population=anyone)
            cells.loc[unnamed, ["lon", "lat", "cell_km"]] = fallback.to_numpy()
        cells["label"] = [sector_label(s, section_only=True) if s and not u else UNDISCLOSED
                          for s, u in zip(sections, unnamed, strict=True)]
        cells["section"] = [s if not u else "" for s, u in zip(sections, unnamed, strict=True)]
        cells.index = links.index
        out[side] = cells
    _spread_shared_cells(out["supply"], out["demand"])
    return out


def _spread_shared_cells(supply: pd.DataFrame, demand: pd.DataFrame) -> None:
    """Where both ends of a link fall in one cell, draw the link across the cell's middle, from a quarter of
    the cell west of its centre (supplier) to a quarter east (receiver), so that it is not a point that a
    map cannot show or click."""
    same = ((supply["cell_km"] == demand["cell_km"]) & np.isclose(supply["lon"], demand["lon"])
            & np.isclose(supply["lat"], demand["lat"])).to_numpy()
    if not same.any():
        return
    x, y = _TO_GRID.transform(supply["lon"].to_numpy()[same], supply["lat"].to_numpy()[same])
    quarter = supply["cell_km"].to_numpy()[same] * 250.0
    for cells, sign in ((supply, -1.0), (demand, 1.0)):
        lon, lat = _FROM_GRID.transform(x + sign * quarter, y)
        cells.loc[same, "lon"] = lon
        cells.loc[same, "lat"] = lat


# --- links --------------------------------------------------------------------------

def public_links(links: pd.DataFrame, *, everything: bool = False,
                 facilities: pd.DataFrame | None = None) -> pd.DataFrame:
    """Links as a public view shows them: confidential ones generalised, names and quantities hidden where asked.

    Confidential rows are hidden as the module describes (ends moved to grid
    cells, only :data:`KEPT_COLUMNS` kept); a confidential row whose ends no
    cell can hide is left out. With ``everything`` (the public screen) every
    other row, too, shows sector labels, quantity ranges and pseudonymous ids
    instead of names, quantities and ids.

    Parameters
    ----------
    links : DataFrame
        The engine's link columns (:data:`geo.pipeline.LINK_COLUMNS`), all of
        them: allocation is blanked where a confidential link shares its flows.
    everything : bool
        Hide the names and quantities of every row (the public screen).
    facilities : DataFrame, optional
        Every facility of the workspace (``lon``, ``lat``, ``nace``), for the
        grid cells; by default the ends of ``links``.

    Returns
    -------
    DataFrame
        The rows kept, in their order, with ``quantity_range`` (empty where
        the quantity is shown) and ``supply_cell_km``/``demand_cell_km``
        (NaN where an end is exact).
    """
    secret = _confidential(links)
    shares = _shares_allocation(links, secret)
    open_rows = _public_open(links[~secret], shares=shares[~secret], everything=everything)
    if not secret.any():
        return open_rows
    hidden = _public_hidden(links[secret], population=_population(facilities, links))
    return _ranked_without_gaps(_in_order(links, open_rows, hidden), links, secret, hidden.index)


def _public_open(links: pd.DataFrame, *, shares: np.ndarray, everything: bool) -> pd.DataFrame:
    """Links that are not confidential, as a public view shows them (allocation blank where ``shares``)."""
    out = links.assign(quantity_range="", supply_cell_km=np.nan, demand_cell_km=np.nan)
    if shares.any():
        _blank(out, shares, [c for c in ALLOCATION_COLUMNS if c in out])
    if everything and len(out):
        _hide_names(out)
    return out


def _public_hidden(links: pd.DataFrame, *, population: pd.DataFrame) -> pd.DataFrame:
    """Confidential links as a public view shows them; those whose ends no cell can hide are left out."""
    out = links.assign(quantity_range="", supply_cell_km=np.nan, demand_cell_km=np.nan)
    if not len(out):
        return out
    _hide_names(out)
    return out[_generalise(out, population)]


def _ranked_without_gaps(public: pd.DataFrame, links: pd.DataFrame, secret: np.ndarray,
                         shown_secret: pd.Index) -> pd.DataFrame:
    """``public`` ranked among the links a public view can show at all (``attrs['of']`` says how many).

    A confidential link whose ends no cell can hide is left out; keeping the
    engine's ranks would leave a gap where it stood, which tells that it
    exists and about what it scores. Each rank drops by the number of such
    links ranked above it.
    """
    dropped = links.index[secret].difference(shown_secret)
    out = public
    if len(dropped) and "rank" in public and len(public):
        gone = np.sort(links.loc[dropped, "rank"].to_numpy(dtype=float))
        rank = public["rank"].to_numpy(dtype=float)
        out = public.assign(rank=(rank - np.searchsorted(gone, rank, side="left")).astype(public["rank"].dtype))
    out.attrs["of"] = len(links) - len(dropped)
    return out


def _in_order(links: pd.DataFrame, *parts: pd.DataFrame) -> pd.DataFrame:
    """The rows of the parts together, in their order in ``links`` (whose index labels them once each)."""
    together = pd.concat(parts)
    return together.iloc[np.argsort(links.index.get_indexer(together.index), kind="stable")]


def _hide_names(out: pd.DataFrame) -> None:
    """Sector labels for names, ranges for quantities, pseudonyms for ids; descriptions blank; ``why`` rebuilt."""
    out["supply_name"] = _each_distinct(out["supply_nace"], sector_label)
    out["demand_name"] = _each_distinct(out["demand_nace"], sector_label)
    out["quantity_range"] = _quantity_ranges(out["quantity"].to_numpy(dtype=float), out["unit"].to_numpy(dtype=object))
    out["supply_facility_id"] = _each_distinct(out["supply_facility_id"], pseudonym)
    out["demand_facility_id"] = _each_distinct(out["demand_facility_id"], pseudonym)
    _blank(out, np.ones(len(out), dtype=bool), [c for c in (*_FIGURES, *_TEXTS) if c in out])
    out["why"] = _why(out, approximate=False)


def _each_distinct(values: pd.Series, function) -> np.ndarray:
    """``function`` of each value, called once per distinct value."""
    codes, uniques = pd.factorize(values.astype(object).fillna(""))
    return np.array([function(u) for u in uniques] + [""], dtype=object)[codes]


def _quantity_ranges(quantity: np.ndarray, unit: np.ndarray) -> np.ndarray:
    """:func:`quantity_range` of each quantity, worked out once per distinct range and unit."""
    known = np.isfinite(quantity) & (quantity > 0)
    upper = np.where(known, np.searchsorted(_STEPS, np.where(known, quantity, 0.0), side="right"), -1)
    keys = pd.Series(upper.astype(str), dtype=object) + "|" + pd.Series(unit, dtype=object).astype(str)
    codes, _ = pd.factorize(keys)
    first = np.unique(codes, return_index=True)[1]
    return np.array([quantity_range(quantity[i], unit[i]) for i in first] + [""], dtype=object)[codes]


def _generalise(out: pd.DataFrame, population: pd.DataFrame) -> np.ndarray:
    """Hide confidential rows in place (grid cells, section labels, only KEPT_COLUMNS); which of them can be shown.

    Their names and quantities are hidden already (:func:`_hide_names`).
    """
    cells = _generalised_ends(out, population)
    km = out["distance_km"].to_numpy(dtype=float)
    score = out["score"].to_numpy(dtype=float)
    _blank(out, np.ones(len(out), dtype=bool), [c for c in out.columns if c not in KEPT_COLUMNS])
    for side, cell in cells.items():
        out[f"{side}_lon"] = cell["lon"].to_numpy()
        out[f"{side}_lat"] = cell["lat"].to_numpy()
        out[f"{side}_cell_km"] = cell["cell_km"].to_numpy()
        out[f"{side}_name"] = cell["label"].to_numpy(dtype=object)
        out[f"{side}_nace"] = cell["section"].to_numpy(dtype=object)
        out[f"{side}_facility_id"] = ""
    out["distance_km"] = np.maximum(np.round(km / DISTANCE_STEP_KM) * DISTANCE_STEP_KM, DISTANCE_STEP_KM)
    out["score"] = score.round(0)
    out["why"] = _why(out, approximate=True)
    return (cells["supply"]["cell_km"].notna() & cells["demand"]["cell_km"].notna()).to_numpy()


def _why(rows: pd.DataFrame, *, approximate: bool) -> list[str]:
    about = "about " if approximate else ""
    return [f"{s} can supply {r} to {d}, {about}{km:.0f} km apart; quantity {q}."
            for s, r, d, km, q in zip(rows["supply_name"], rows["resource"], rows["demand_name"], rows["distance_km"],
                                      rows["quantity_range"], strict=True)]


def _blank(out: pd.DataFrame, mask: np.ndarray, columns: list[str]) -> None:
    """Empty these columns in the rows of ``mask``: NaN for numbers, NA for flags, '' for text."""
    for column in columns:
        current = out[column]
        if pd.api.types.is_bool_dtype(current.dtype):
            values = current.to_numpy(dtype=object, copy=True)
            values[mask] = None
            out[column] = pd.array(values, dtype="boolean")
        elif pd.api.types.is_numeric_dtype(current.dtype):
            values = current.to_numpy(dtype=float, copy=True)
            values[mask] = np.nan
            out[column] = values
        else:
            values = current.to_numpy(dtype=object, copy=True)
            values[mask] = ""
            out[column] = values


def _confidential(links: pd.DataFrame) -> np.ndarray:
    return links["confidential"].fillna(False).astype(bool).to_numpy()


def _shares_allocation(links: pd.DataFrame, secret: np.ndarray) -> np.ndarray:
    """Public links whose allocation a confidential link takes part in: those in a group of links joined by
    shared supply or demand flows (a connected component) that holds a confidential one."""
    if not secret.any() or secret.all():
        return np.zeros(len(links), dtype=bool)
    keys = pd.concat([_flow_keys(links, "supply"), _flow_keys(links, "demand")], ignore_index=True)
    codes, uniques = pd.factorize(keys)
    n = len(links)
    graph = coo_matrix((np.ones(n), (codes[:n], codes[n:])), shape=(len(uniques), len(uniques)))
    _, component = connected_components(graph, directed=False)
    of_link = component[codes[:n]]
    return np.isin(of_link, np.unique(of_link[secret])) & ~secret


def _flow_keys(links: pd.DataFrame, side: str) -> pd.Series:
    """A key per link of the flow on one side: its flow id, else its facility and resource."""
    if f"{side}_flow_id" in links:
        ids = links[f"{side}_flow_id"].astype(str).to_numpy()
    else:
        ids = np.full(len(links), "", dtype=object)
    fallback = (links[f"{side}_facility_id"].astype(str) + "|" + links["resource"].astype(str)).to_numpy()
    return pd.Series(np.where(ids != "", ids, fallback), dtype=object).radd(side + ":")


# --- facilities ---------------------------------------------------------------------

def public_facilities(facilities: pd.DataFrame) -> pd.DataFrame:
    """Every facility under its sector label and a pseudonymous id, for a public screen.

    Confidentiality is per flow, so with only some flows confidential the
    facilities keep their names (their confidential flows are hidden in the
    links); this is for the view where everything is public-safe.
    """
    out = facilities.copy()
    out["name"] = out["nace"].map(sector_label)
    out["facility_id"] = out["facility_id"].map(pseudonym)
    for column in ("operator", "notes", "source"):
        if column in out:
            out[column] = ""
    return out


def visible_facilities(facilities: pd.DataFrame, flows: pd.DataFrame) -> pd.DataFrame:
    """The facilities a public view may show, each with its role from its public flows alone.

    A facility whose every flow is confidential is left out.
    """
    secret = flows["confidential"].fillna(False).astype(bool)
    with_flows = flows["facility_id"].unique()
    with_public = flows.loc[~secret, "facility_id"].unique()
    ids = facilities["facility_id"]
    shown = facilities[~ids.isin(with_flows) | ids.isin(with_public)].copy()
    shown["role"] = facility_roles(shown, flows[~secret])
    return shown


# --- a view -------------------------------------------------------------------------

def select_view(facilities: pd.DataFrame, flows: pd.DataFrame, links: pd.DataFrame,
                filters: Filters) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The facilities and links the filters keep, as the filters' view may show them.

    In the full view, the links :func:`geo.selection.select_links` keeps and
    the facilities the facility filters keep or those links involve. In the
    public views, as the module describes: confidential links generalised and
    selected only by what they show, facilities whose every flow is
    confidential left out, roles from public flows, and (on the public screen)
    every name and quantity hidden.

    Parameters
    ----------
    facilities : DataFrame
        Every facility of the workspace (``facility_id``, ``name``, ``lon``,
        ``lat``, ``nace``, ``country``, ``cluster``, ``role``).
    flows : DataFrame
        Every flow matched (``facility_id``, ``direction``, ``confidential``).
    links : DataFrame
        Every link (:data:`geo.pipeline.LINK_COLUMNS`), best first.
    filters : Filters
        The filters and the view.

    Returns
    -------
    facilities : DataFrame
        The facilities to show.
    links : DataFrame
        The links to show, best first, with ``quantity_range`` (and, in the
        public views, ``supply_cell_km`` and ``demand_cell_km``);
        ``attrs['of']`` is how many links the view shows with no filter (a
        public view leaves out the confidential links it cannot hide, and
        ranks the others without their gaps).
    """
    if filters.view == "full":
        kept = select_links(links, facilities, filters).assign(quantity_range="")
        kept.attrs["of"] = len(links)
        return _with_ends(facilities, select_facilities(facilities, filters), kept), kept
    shown = visible_facilities(facilities, flows)
    secret = _confidential(links)
    shares = pd.Series(_shares_allocation(links, secret), index=links.index)
    chosen = _chosen_facilities(shown, filters)
    open_kept = _open_links(links[~secret], shown, chosen, filters)
    public = _public_open(open_kept, shares=shares[open_kept.index].to_numpy(), everything=filters.view == "screen")
    public.attrs["of"] = len(links)
    if secret.any():
        hidden = _public_hidden(links[secret], population=_population(facilities, links))
        public = _ranked_without_gaps(_in_order(links, public, hidden[_hidden_kept(hidden, filters)]), links, secret,
                                      hidden.index)
    fac = _with_ends(shown, chosen, open_kept)
    if filters.view == "screen":
        fac = public_facilities(fac)
    return fac, public


def _chosen_facilities(shown: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    """The facilities the facility filters keep; on the public screen the search sees only what the screen
    shows (sector labels and pseudonyms), so that searching a company's name or id finds nothing."""
    if filters.view == "screen" and filters.search.strip():
        return shown.loc[select_facilities(public_facilities(shown), filters).index]
    return select_facilities(shown, filters)


def _open_links(links: pd.DataFrame, shown: pd.DataFrame, chosen: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    """The links that are not confidential that the filters keep, with an end among ``chosen`` when a facility
    filter is set (as :func:`geo.selection.select_links`, with the facilities chosen as the view allows)."""
    if not (filters.view == "screen" and filters.search.strip()):
        return select_links(links, shown, filters)
    kept = select_links(links, shown, replace(filters, search="", countries=[], clusters=[]))
    ids = chosen["facility_id"].unique()
    return kept[kept["supply_facility_id"].isin(ids) | kept["demand_facility_id"].isin(ids)]


def _with_ends(facilities: pd.DataFrame, chosen: pd.DataFrame, links: pd.DataFrame) -> pd.DataFrame:
    """The facilities chosen, plus those at an end of these links."""
    ids = facilities["facility_id"]
    # unique() first: isin against tens of thousands of repeated strings is slow, against the distinct few fast
    return facilities[ids.isin(chosen["facility_id"].unique()) | ids.isin(links["supply_facility_id"].unique())
                      | ids.isin(links["demand_facility_id"].unique())]


def _hidden_kept(public: pd.DataFrame, filters: Filters) -> np.ndarray:
    """Which rows a filter keeps when judged only by what the public view shows of them (for confidential rows)."""
    if filters.search.strip() or filters.clusters:
        return np.zeros(len(public), dtype=bool)
    keep = np.ones(len(public), dtype=bool)
    if filters.countries:
        countries = public["supply_country"].isin(filters.countries) | public["demand_country"].isin(filters.countries)
        keep &= countries.to_numpy()
    if filters.groups:
        keep &= resource_group(public["resource"]).isin(filters.groups).to_numpy()
    if filters.bases:
        keep &= public["basis"].isin(filters.bases).to_numpy()
    keep &= (public["score"] >= filters.min_score).to_numpy()
    if filters.max_km is not None:
        keep &= (public["distance_km"] <= filters.max_km).to_numpy()
    return keep
