"""What a user has filtered: the links and facilities a view, a shortlist or an export shows."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from geo.taxonomy import resource_group

__all__ = ["Filters", "select_facilities", "select_flows", "select_links"]


@dataclass
class Filters:
    """A view's filters; empty lists mean "all".

    ``view`` is ``'full'`` (everything shown), ``'public'`` (names and exact
    quantities of confidential flows hidden) or ``'screen'`` (hidden for
    every flow, for a public screen).
    """

    countries: list[str] = field(default_factory=list)
    clusters: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    bases: list[str] = field(default_factory=list)
    min_score: float = 0.0
    max_km: float | None = None
    search: str = ""
    view: str = "public"


def select_facilities(facilities: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    """Facilities in the chosen countries and clusters whose name or id contains the search text."""
    keep = np.ones(len(facilities), dtype=bool)
    if filters.countries:
        keep = keep & facilities["country"].isin(filters.countries).to_numpy()
    if filters.clusters:
        keep = keep & facilities["cluster"].isin(filters.clusters).to_numpy()
    if filters.search.strip():
        text = filters.search.strip().casefold()
        names = facilities["name"].fillna("").str.casefold() + " " + facilities["facility_id"].str.casefold()
        keep = keep & names.str.contains(text, regex=False).to_numpy()
    return facilities[keep]


def select_links(links: pd.DataFrame, facilities: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    """Links with either end among ``select_facilities``' result that pass the link filters, best first."""
    keep = np.ones(len(links), dtype=bool)
    if filters.countries or filters.clusters or filters.search.strip():
        shown = select_facilities(facilities, filters)["facility_id"].unique()
        keep = (links["supply_facility_id"].isin(shown) | links["demand_facility_id"].isin(shown)).to_numpy()
    if filters.groups:
        keep = keep & resource_group(links["resource"]).isin(filters.groups).to_numpy()
    if filters.bases:
        keep = keep & links["basis"].isin(filters.bases).to_numpy()
    keep = keep & (links["score"] >= filters.min_score).to_numpy()
    if filters.max_km is not None:
        keep = keep & (links["distance_km"] <= filters.max_km).to_numpy()
    return links[keep]


def select_flows(flows: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    """Flows of the chosen resource groups and bases that the view may show (confidential ones only in the full view).

    Parameters
    ----------
    flows : DataFrame
        The engine's flow columns (``resource``, ``basis``, ``confidential``).
    filters : Filters
        Its ``groups``, ``bases`` and ``view`` apply; the facility filters do not.

    Returns
    -------
    flows : DataFrame
        The rows kept, in their order.
    """
    keep = np.ones(len(flows), dtype=bool)
    if filters.view != "full":
        keep &= ~flows["confidential"].astype(bool).to_numpy()
    if filters.groups:
        keep &= resource_group(flows["resource"]).isin(filters.groups).to_numpy()
    if filters.bases:
        keep &= flows["basis"].isin(filters.bases).to_numpy()
    return flows[keep]
