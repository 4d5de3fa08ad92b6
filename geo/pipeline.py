"""From a validated dataset to ranked links: the one call behind ``geo match``.

:func:`match` runs the steps in order (infer flows when asked, find
candidates, score, rank, explain) and returns the links with the counts a user needs to trust the result: how many
flows were inferred, which facilities had nothing to match, and how many
pairs the road distance ruled out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo import settings
from geo.allocation import ALLOCATION_COLUMNS, CARBON_PRICE_EUR_PER_T, allocate, allocation_totals
from geo.estimates import estimate_quantities
from geo.inference import infer_flows
from geo.matching import CandidateStats, find_candidates
from geo.schema import Dataset
from geo.scoring import explain, rank_links, score_links
from geo.settings import ScoringWeights
from geo.taxonomy import Taxonomy, load_taxonomy

if TYPE_CHECKING:
    from geo.network import RoadNetwork

__all__ = ["LINK_COLUMNS", "MatchResult", "link_lines", "match", "method_notes"]

#: Columns of the links table, in output order.
LINK_COLUMNS = [
    "rank", "score", "status", "supply_facility_id", "supply_name", "demand_facility_id", "demand_name",
    "resource", "demand_resource", "quantity", "quantity_low", "quantity_high", "unit", "quantity_basis",
    "quantity_estimate", "distance_km", "straight_km", "travel_time_min", "distance_source", "sea_km",
    "max_distance_km",
    "co2_saved_t_per_yr", "value_eur_per_yr", "basis", "why",
    "part_co2", "part_value", "part_distance", "part_compatibility", "part_precedent", "confidence",
    "score_driver", "precedent_parks", "precedent_at", "existing", "same_operator", "same_site",
    *ALLOCATION_COLUMNS,
    "transport_mode", "transport_cost_eur_per_yr", "transport_co2_t_per_yr",
    "avoided_co2_t_per_yr", "gross_value_eur_per_yr", "rule", "strength", "reason", "rule_source",
    "supply_flow_id", "supply_quantity", "supply_unit", "supply_ewc", "supply_description",
    "supply_basis", "supply_nace", "supply_country", "supply_cluster", "supply_operator", "supply_quantity_note",
    "demand_flow_id", "demand_quantity", "demand_unit", "demand_description",
    "demand_basis", "demand_nace", "demand_country", "demand_cluster", "demand_operator", "demand_quantity_note",
    "confidential", "supply_lon", "supply_lat", "demand_lon", "demand_lat", "unroutable_reason",
]


@dataclass
class MatchResult:
    """Ranked links and what the run left out.

    Attributes
    ----------
    links : DataFrame
        :data:`LINK_COLUMNS`, best link first. Both ends are in the
        ``supply_lon``/``supply_lat`` and ``demand_lon``/``demand_lat``
        columns; :func:`link_lines` turns them into LineStrings when a map or
        a spatial file needs them.
    stats : CandidateStats
        Pair counts of the candidate search.
    flows : DataFrame
        The flows matched (declared, plus inferred ones when asked).
    inferred : int
        Number of inferred flows.
    not_inferred : DataFrame
        Facilities without declared flows that got none inferred, with the reason.
    without_flows : list of str
        Facility ids with no flow at all in the run.
    total_links : int
        Links found before ``top`` cut the list.
    totals : DataFrame
        What the links carry per year once each supply and demand is
        allocated once (:func:`geo.allocation.allocation_totals`), one row per
        link status (new, existing, same operator, same site), over all links
        found (not only the ``top``).
    """

    links: pd.DataFrame
    stats: CandidateStats
    flows: pd.DataFrame
    inferred: int = 0
    not_inferred: pd.DataFrame = field(default_factory=pd.DataFrame)
    without_flows: list[str] = field(default_factory=list)
    total_links: int = 0
    totals: pd.DataFrame = field(default_factory=pd.DataFrame)


def match(
    dataset: Dataset,
    *,
    taxonomy: Taxonomy | None = None,
    infer: bool = False,
    max_km: float | None = None,
    top: int | None = None,
    weights: ScoringWeights | None = None,
    network: RoadNetwork | None = None,
    precedents: pd.DataFrame | None = None,
    allocation: bool = True,
) -> MatchResult:
    """Find, score and rank the symbiosis links of a dataset.

    Parameters
    ----------
    dataset : Dataset
        Validated facilities and flows (invalid rows already left out).
    taxonomy : Taxonomy, optional
        Knowledge base; the bundled one by default.
    infer : bool
        Give facilities that declare no flows the typical flows of their
        sector (``basis='inferred'``).
    max_km : float, optional
        Replace every resource's default maximum distance (km).
    top : int, optional
        Keep only the best ``top`` links.
    weights : ScoringWeights, optional
        Score weights; the defaults otherwise.
    network : RoadNetwork, optional
        Road graph: pairs it covers get road distances and travel times
        (``distance_source='road'``), which replace the estimate in the
        distance limit and the score.
    precedents : DataFrame, optional
        Documented exchanges that give a link its precedent part
        (:func:`geo.precedent.load_precedents`); the bundled ones by default.
        A benchmark passes them without the park it measures.
    allocation : bool
        Share every supply and demand once over the region
        (:func:`geo.allocation.allocate`, a linear program over all links);
        without it the ``allocated_*`` columns are empty and ``totals`` is an
        empty frame. It is the slowest step of a large match (docs/BENCHMARKS.md).

    Returns
    -------
    MatchResult
    """
    taxonomy = taxonomy if taxonomy is not None else load_taxonomy()
    return _match(dataset, taxonomy, infer=infer, max_km=max_km, top=top, weights=weights, network=network,
                  precedents=precedents, allocation=allocation)


def _match(
    dataset: Dataset,
    taxonomy: Taxonomy,
    *,
    infer: bool,
    max_km: float | None,
    top: int | None,
    weights: ScoringWeights | None,
    network: RoadNetwork | None,
    precedents: pd.DataFrame | None,
    allocation: bool,
) -> MatchResult:
    flows = dataset.flows
    inferred, not_inferred = 0, pd.DataFrame(columns=["facility_id", "nace", "reason"])
    if infer:
        flows, not_inferred = infer_flows(dataset.facilities, flows, taxonomy)
        inferred = int((flows["basis"] == "inferred").sum())
        flows = _sized(dataset.facilities, flows, taxonomy)
    with_flows = set(flows["facility_id"])
    without = [f for f in dataset.facilities["facility_id"] if f not in with_flows]
    candidates, stats = find_candidates(dataset.facilities, flows, taxonomy, max_km=max_km, network=network)
    scored = score_links(candidates, taxonomy, weights=weights, precedents=precedents)
    kept = [c for c in LINK_COLUMNS if c not in ("rank", "why")]
    scored = scored.assign(**{c: "" for c in kept if c not in scored.columns})  # facility fields a file lacks
    totals = pd.DataFrame()
    if allocation:
        scored[list(ALLOCATION_COLUMNS)] = allocate(scored, taxonomy)
        totals = allocation_totals(scored, group_by="status")  # before folding: a folded link may carry a share
    else:
        scored = scored.assign(**{c: np.nan for c in ALLOCATION_COLUMNS})
        scored["allocation_note"] = "not allocated: the allocation was switched off"
    scored, stats.inferred_alternatives = _one_per_resource(scored)
    ranked = rank_links(scored, top=top, columns=kept)
    ranked.insert(LINK_COLUMNS.index("why"), "why", explain(ranked, taxonomy))
    return MatchResult(
        links=ranked,
        stats=stats,
        flows=flows,
        inferred=inferred,
        not_inferred=not_inferred,
        without_flows=without,
        total_links=len(scored),
        totals=totals,
    )


def _one_per_resource(links: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """One link per supplier, receiver and resource where an inferred flow is involved: the best-scoring one.

    A sector profile may give a facility two needs that accept one resource
    (excess heat for the network and heat-pump source heat), so inferred flows
    would list the same supplier, receiver and resource twice. Declared flows
    are distinct streams and all stay. Returns the links kept and how many
    alternatives were folded.
    """
    inferred = links["basis"] != "declared"
    if not inferred.any():
        return links, 0
    key = ["supply_facility_id", "demand_facility_id", "resource"]
    order = links.loc[inferred].sort_values(["score", "supply_flow_id", "demand_flow_id"],
                                            ascending=[False, True, True], kind="stable")
    folded = order.index[order.duplicated(key)]
    return links.drop(index=folded), len(folded)


def _sized(facilities: gpd.GeoDataFrame, flows: pd.DataFrame, taxonomy: Taxonomy) -> pd.DataFrame:
    """Inferred flows with a quantity and its range, estimated from what is known of their facility.

    Only inferred flows are sized: a declared flow's blank quantity stays
    unknown, as the user wrote it. ``estimate`` says what kind of estimate a
    quantity is (``estimated``, ``sector typical``, or empty when stated or
    unknown) and ``quantity_note`` how it was worked out.
    """
    est = estimate_quantities(facilities, flows, taxonomy)
    inferred = (flows["basis"] == "inferred") & est["quantity_basis"].isin(["estimated", "sector typical"])
    out = flows.assign(estimate="", quantity_low=np.nan, quantity_high=np.nan, quantity_note="")
    for column in ("quantity", "quantity_low", "quantity_high", "quantity_note"):
        out.loc[inferred, column] = est.loc[inferred, column]
    out.loc[inferred, "estimate"] = est.loc[inferred, "quantity_basis"]
    return out


def link_lines(links: pd.DataFrame) -> gpd.GeoDataFrame:
    """Links as a GeoDataFrame of straight LineStrings from supplier to receiver, EPSG:4326.

    Built on demand (for spatial exports and map layers) rather than in
    :func:`match`, since tables and spreadsheets do not need geometry.
    """
    ends = links[["supply_lon", "supply_lat", "demand_lon", "demand_lat"]].to_numpy(dtype=float)
    lines = shapely.linestrings(ends.reshape(-1, 2, 2))
    return gpd.GeoDataFrame(links, geometry=lines, crs=settings.WGS84)


def method_notes(*, facilities: str = "", flows: str = "", infer: bool = True, max_km: float | None = None,
                 network: RoadNetwork | None = None) -> dict[str, str]:
    """The method and assumptions of a run, item by item, for the exports' ``method`` sheet."""
    weights = settings.ScoringWeights()
    if network is not None:
        distance = (f"shortest road route on the OpenStreetMap network ({network.info.get('source')}, "
                    "drivable roads with osmnx 'drive' semantics), plus the straight legs between each facility and "
                    f"its nearest road node; pairs outside the network are estimated (distance_source column)")
        time = (f"fastest road route at maxspeed or road-class speeds, trucks capped at {settings.TRUCK_MAX_SPEED_KMH:g} km/h; "
                f"legs to the road at {settings.SITE_ACCESS_SPEED_KMH:g} km/h")
    else:
        distance = f"estimate: great-circle distance x road circuity factor {settings.ROAD_CIRCUITY_FACTOR}"
        time = f"estimated road distance at {settings.ESTIMATE_TRUCK_SPEED_KMH:g} km/h"
    return {
        "facilities": facilities,
        "flows": flows,
        "inferred flows": "yes" if infer else "no",
        "maximum distance": f"{max_km} km for every resource" if max_km else "each resource's default",
        "distance": distance,
        "travel time": time,
        "score weights": (f"CO2 {weights.co2}, value {weights.value}, distance {weights.distance}, "
                          f"compatibility {weights.compatibility}, precedent {weights.precedent} "
                          "(documented exchanges of industrial parks, data/knowledge/precedents.csv)"),
        "allocation": ("one linear program shares every supply and demand once among competing links, maximising "
                       f"net value plus CO2 saved at EUR {CARBON_PRICE_EUR_PER_T:g}/t (allocated_* columns); "
                       "links with stated quantities that it leaves empty rank after those that carry something"),
        "transport": (f"truck, pipe or heat pipe by resource; bulk between two facilities with a quay by ship "
                      f"when cheaper, sea route {settings.SEA_DETOUR_FACTOR:g} x the straight line, "
                      f"up to {settings.SHIP_MAX_KM:g} km"),
        "knowledge base": "data/knowledge (see SOURCES.md)",
    }
