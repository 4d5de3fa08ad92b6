"""Finding candidate links: which supply can reach which compatible demand.

:func:`find_candidates` projects facilities to ETRS89-LAEA (EPSG:3035) and,
for each supplied resource, queries one STRtree of the compatible demands with
every supply point at once (``dwithin`` its own maximum distance: the exact
form of a per-flow buffer). Great-circle distances then confirm the
straight-line buffer, and :func:`geo.distance.link_distances` gives the road
distance that must also stay within the maximum. Bulk by-products between two
facilities with a quay may also go by ship, up to
:data:`geo.settings.SHIP_MAX_KM` by sea (the ``sea_km`` column); scoring
chooses the cheaper mode. No Python loop runs over pairs; the only loop is
over the few dozen supplied resource codes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo import settings
from geo.distance import great_circle_km, link_distances
from geo.taxonomy import Taxonomy, resource_group

if TYPE_CHECKING:
    from geo.network import RoadNetwork

__all__ = ["CandidateStats", "find_candidates", "laea_margin", "supply_buffers", "supply_reach"]

_FLOW_FIELDS = (
    "flow_id", "facility_id", "resource", "quantity", "unit", "ewc", "description",
    "max_distance_km", "confidential", "basis", "partners", "estimate", "quantity_low", "quantity_high",
    "quantity_note",
)

_FACILITY_FIELDS = ("name", "nace", "country", "cluster", "operator")


@dataclass
class CandidateStats:
    """Counts from one candidate search, for reporting what was left out and why.

    ``same_sector_inferred`` counts pairs of two inferred flows of one resource
    between facilities of one NACE class, left out (a heat utility does not
    "supply" the next one); ``inferred_alternatives`` counts links folded into
    a better one of the same supplier, receiver and resource
    (:func:`geo.pipeline.match`); ``by_road`` and ``estimated`` count the pairs within the straight-line
    buffer whose distance came from the road network or from the estimate;
    ``unroutable_pairs`` lists the pairs a road network could not route
    (supply and demand facility, resource, straight-line km, reason).
    """

    supplies: int = 0
    demands: int = 0
    within_buffer: int = 0
    beyond_max_road_distance: int = 0
    unroutable: int = 0
    same_facility: int = 0
    same_sector_inferred: int = 0
    inferred_alternatives: int = 0
    by_road: int = 0
    estimated: int = 0
    unroutable_pairs: pd.DataFrame = field(default_factory=pd.DataFrame)


def laea_margin(lon: np.ndarray, lat: np.ndarray) -> float:
    """Factor by which a LAEA search radius must grow to miss no pair.

    ETRS89-LAEA keeps areas, not lengths: at angular distance ``c`` from its
    centre (52N, 10E) lengths shrink radially by ``cos(c/2)``. Dividing the
    radius by that factor for the farthest point makes the projected
    ``dwithin`` query a safe superset of the true great-circle buffer (the
    extra 1 % covers the sphere of the distances against the ellipsoid of the
    projection).
    """
    if len(lon) == 0:
        return 1.0
    lat0, lon0 = np.radians(52.0), np.radians(10.0)
    phi, lam = np.radians(np.asarray(lat, float)), np.radians(np.asarray(lon, float))
    cos_c = np.sin(lat0) * np.sin(phi) + np.cos(lat0) * np.cos(phi) * np.cos(lam - lon0)
    c_max = float(np.arccos(np.clip(cos_c, -1.0, 1.0)).max())
    return 1.0 / np.cos(c_max / 2.0) * 1.01


def supply_limits_km(supply: pd.DataFrame, taxonomy: Taxonomy, *, max_km: float | None = None) -> pd.Series:
    """Maximum road distance per supply flow.

    The flow's own ``max_distance_km`` wins; otherwise ``max_km`` when given
    (the command line's ``--max-km``), otherwise the resource's default.
    """
    default = supply["resource"].map(taxonomy.resources["max_distance_km"]).astype(float)
    if max_km is not None:
        default = pd.Series(float(max_km), index=supply.index)
    return supply["max_distance_km"].astype(float).fillna(default)


def find_candidates(
    facilities: gpd.GeoDataFrame,
    flows: pd.DataFrame,
    taxonomy: Taxonomy,
    *,
    max_km: float | None = None,
    network: RoadNetwork | None = None,
) -> tuple[pd.DataFrame, CandidateStats]:
    """All compatible supply-demand pairs within their maximum distance.

    A pair is a candidate when the demand's resource accepts the supply's
    (same code, a group containing it, or a compatibility rule), the two
    flows belong to different facilities, and both the straight-line and the
    road distance are within the limit: the supply's maximum distance (see
    :func:`supply_limits_km`), or the demand's own ``max_distance_km`` when
    that is smaller.

    Parameters
    ----------
    facilities : GeoDataFrame
        Validated facilities in EPSG:4326.
    flows : DataFrame
        Validated (and possibly inferred) flows.
    taxonomy : Taxonomy
        Compatibility table and resource defaults.
    max_km : float, optional
        Replaces every resource's default maximum distance.
    network : RoadNetwork, optional
        Road graph for real road distances; the estimate without one.

    Returns
    -------
    candidates : DataFrame
        One row per pair: ``supply_*`` and ``demand_*`` copies of the flow
        fields, the two ends' ``*_lon``/``*_lat``, ``strength``, ``rule``,
        ``reason``, ``rule_source``, ``max_distance_km`` (the road limit
        applied), the columns of :func:`geo.distance.link_distances` (NaN
        road distance and time for a pair only ships can serve), and
        ``sea_km`` (the estimated sea route when both ends have a quay and the
        resource is bulk, else NaN).
    stats : CandidateStats
        Counts of pairs found and left out.
    """
    stats = CandidateStats()
    if facilities.crs is None or facilities.crs.to_epsg() != 4326:
        raise ValueError(f"facilities must be in {settings.WGS84}, got {facilities.crs}")
    fac_index = pd.Index(facilities["facility_id"])
    lon = facilities.geometry.x.to_numpy()
    lat = facilities.geometry.y.to_numpy()
    metric = facilities.geometry.to_crs(settings.METRIC_CRS)
    x, y = metric.x.to_numpy(), metric.y.to_numpy()
    margin = laea_margin(lon, lat)

    flows = flows[flows["facility_id"].isin(fac_index)]
    supply = flows[flows["direction"] == "supply"].reset_index(drop=True)
    demand = flows[flows["direction"] == "demand"].reset_index(drop=True)
    stats.supplies, stats.demands = len(supply), len(demand)
    s_fac = fac_index.get_indexer(supply["facility_id"])
    d_fac = fac_index.get_indexer(demand["facility_id"])
    s_limit = supply_limits_km(supply, taxonomy, max_km=max_km).to_numpy()
    d_limit = demand["max_distance_km"].astype(float).fillna(np.inf).to_numpy()

    quay = _quays(facilities)
    s_ship = quay[s_fac] & supply["resource"].map(taxonomy.resources["transport_mode"]).isin(
        settings.SHIP_FROM_MODES).to_numpy() & (settings.SHIP_MODE in taxonomy.modes.index)
    s_search = np.where(s_ship, np.maximum(s_limit, settings.SHIP_MAX_KM), s_limit)
    s_idx, d_idx, compat_idx = _join(supply, demand, x, y, s_fac, d_fac, s_search, margin, taxonomy)
    same = s_fac[s_idx] == d_fac[d_idx]
    stats.same_facility = int(same.sum())
    twins = _profile_twins(supply, demand, facilities, s_fac, d_fac, s_idx, d_idx) & ~same
    stats.same_sector_inferred = int(twins.sum())
    keep = ~same & ~twins
    s_idx, d_idx, compat_idx = s_idx[keep], d_idx[keep], compat_idx[keep]

    limit = np.minimum(s_limit[s_idx], d_limit[d_idx])
    straight = great_circle_km(lon[s_fac[s_idx]], lat[s_fac[s_idx]], lon[d_fac[d_idx]], lat[d_fac[d_idx]])
    sea = np.where(s_ship[s_idx] & quay[d_fac[d_idx]], straight * settings.SEA_DETOUR_FACTOR, np.nan)
    by_sea = sea <= np.minimum(settings.SHIP_MAX_KM, d_limit[d_idx])
    in_buffer = (straight <= limit) | by_sea
    stats.within_buffer = int(in_buffer.sum())
    s_idx, d_idx, compat_idx, limit = s_idx[in_buffer], d_idx[in_buffer], compat_idx[in_buffer], limit[in_buffer]
    straight, sea, by_sea = straight[in_buffer], sea[in_buffer], by_sea[in_buffer]
    dist = _distances(lon, lat, s_fac[s_idx], d_fac[d_idx], straight, limit, network=network)
    road = dist["distance_km"].to_numpy()
    routed = ~np.isnan(road)
    stats.by_road = int((dist["distance_source"] == "road").sum())
    stats.estimated = int((dist["distance_source"] == "estimate").sum())
    unroutable = ~routed & ~by_sea & (dist["distance_source"] != "")
    stats.unroutable = int(unroutable.sum())
    stats.unroutable_pairs = pd.DataFrame({
        "supply_facility_id": supply["facility_id"].to_numpy()[s_idx[unroutable]],
        "demand_facility_id": demand["facility_id"].to_numpy()[d_idx[unroutable]],
        "resource": supply["resource"].to_numpy()[s_idx[unroutable]],
        "straight_km": dist["straight_km"].to_numpy()[unroutable],
        "reason": dist["unroutable_reason"].to_numpy()[unroutable],
    })
    by_road = routed & (road <= limit)
    keep = by_road | by_sea
    stats.beyond_max_road_distance = int((routed & (road > limit) & ~by_sea).sum())
    # a pair beyond the road limit that ships may serve keeps no road figures: the sea route is its distance
    dist.loc[~by_road, ["distance_km", "travel_time_min"]] = np.nan
    dist["sea_km"] = sea

    s_idx, d_idx, compat_idx, limit = s_idx[keep], d_idx[keep], compat_idx[keep], limit[keep]
    compat = taxonomy.compatibility
    parts = [
        _prefixed(supply, s_idx, "supply"),
        _facility_fields(facilities, s_fac[s_idx], "supply"),
        _prefixed(demand, d_idx, "demand"),
        _facility_fields(facilities, d_fac[d_idx], "demand"),
        pd.DataFrame(
            {
                "supply_lon": lon[s_fac[s_idx]], "supply_lat": lat[s_fac[s_idx]],
                "demand_lon": lon[d_fac[d_idx]], "demand_lat": lat[d_fac[d_idx]],
                "max_distance_km": limit,
            }
        ),
        compat.iloc[compat_idx][["strength", "rule", "reason", "rule_source"]].reset_index(drop=True),
        dist[keep].reset_index(drop=True),
    ]
    return pd.concat(parts, axis=1), stats


def _profile_twins(
    supply: pd.DataFrame, demand: pd.DataFrame, facilities: gpd.GeoDataFrame,
    s_fac: np.ndarray, d_fac: np.ndarray, s_idx: np.ndarray, d_idx: np.ndarray,
) -> np.ndarray:
    """Pairs of two inferred flows of one resource between facilities of the same NACE class.

    A sector profile that lists a resource both as a typical supply and a
    typical need (district heating sells heat and buys excess heat) would
    otherwise link every such facility to every other: one heat utility
    "supplying" the next. Declared flows are never left out this way.
    """
    if "basis" not in supply.columns or "nace" not in facilities.columns:
        return np.zeros(len(s_idx), dtype=bool)
    nace = facilities["nace"].fillna("").to_numpy(dtype=object)
    inferred = ((supply["basis"].to_numpy(dtype=object)[s_idx] == "inferred")
                & (demand["basis"].to_numpy(dtype=object)[d_idx] == "inferred"))
    same_code = supply["resource"].to_numpy(dtype=object)[s_idx] == demand["resource"].to_numpy(dtype=object)[d_idx]
    same_class = (nace[s_fac[s_idx]] == nace[d_fac[d_idx]]) & (nace[s_fac[s_idx]] != "")
    return inferred & same_code & same_class


def _quays(facilities: gpd.GeoDataFrame) -> np.ndarray:
    """Whether each facility can load or unload bulk ships (its ``quay`` column; False without one)."""
    if "quay" not in facilities.columns:
        return np.zeros(len(facilities), dtype=bool)
    return facilities["quay"].fillna(False).astype(bool).to_numpy()


def _distances(
    lon: np.ndarray, lat: np.ndarray, s_fac: np.ndarray, d_fac: np.ndarray, straight: np.ndarray,
    limit: np.ndarray, *, network: RoadNetwork | None,
) -> pd.DataFrame:
    """Road distances of the pairs within their road ``limit`` by straight line; the others (only ships can
    serve them) get their ``straight`` km and no road figures."""
    by_land = straight <= limit
    dist = link_distances(lon[s_fac[by_land]], lat[s_fac[by_land]], lon[d_fac[by_land]], lat[d_fac[by_land]],
                          network=network, max_km=limit[by_land])
    if by_land.all():  # no pair only ships can serve: the usual case
        return dist
    out = pd.DataFrame({"straight_km": straight, "distance_km": np.nan, "travel_time_min": np.nan,
                        "distance_source": "", "unroutable_reason": ""})
    rows = np.flatnonzero(by_land)
    for column in ("distance_km", "travel_time_min", "distance_source", "unroutable_reason"):
        out.loc[rows, column] = dist[column].to_numpy()
    return out[list(dist.columns)]


def _join(
    supply: pd.DataFrame,
    demand: pd.DataFrame,
    x: np.ndarray,
    y: np.ndarray,
    s_fac: np.ndarray,
    d_fac: np.ndarray,
    s_limit: np.ndarray,
    margin: float,
    taxonomy: Taxonomy,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index pairs (supply, demand, compatibility row) within the projected buffer.

    One STRtree per supplied resource over the demands that accept it,
    queried with every supply of that resource at once.
    """
    compat = taxonomy.compatibility
    accepts = compat.groupby("supply_resource").indices
    demand_codes = compat["demand_resource"].to_numpy()
    d_points = shapely.points(x[d_fac], y[d_fac]) if len(demand) else np.empty(0, dtype=object)
    s_points = shapely.points(x[s_fac], y[s_fac]) if len(supply) else np.empty(0, dtype=object)
    d_resource = demand["resource"].to_numpy()
    out_s, out_d, out_c = [], [], []
    for resource, s_rows in supply.groupby("resource").indices.items():
        rows = accepts.get(resource)
        if rows is None:
            continue
        code_to_rule = pd.Series(rows, index=demand_codes[rows])
        d_rows = np.flatnonzero(np.isin(d_resource, code_to_rule.index))
        if len(d_rows) == 0:
            continue
        tree = shapely.STRtree(d_points[d_rows])
        radius = s_limit[s_rows] * 1000.0 * margin
        q_s, q_d = tree.query(s_points[s_rows], predicate="dwithin", distance=radius)
        d_hit = d_rows[q_d]
        out_s.append(s_rows[q_s])
        out_d.append(d_hit)
        out_c.append(code_to_rule.loc[d_resource[d_hit]].to_numpy())
    if not out_s:
        empty = np.empty(0, dtype=int)
        return empty, empty, empty
    return np.concatenate(out_s), np.concatenate(out_d), np.concatenate(out_c)


def _prefixed(frame: pd.DataFrame, idx: np.ndarray, prefix: str) -> pd.DataFrame:
    fields = [f for f in _FLOW_FIELDS if f in frame.columns]
    part = frame.iloc[idx][fields].reset_index(drop=True)
    return part.add_prefix(f"{prefix}_")


def _facility_fields(facilities: gpd.GeoDataFrame, positions: np.ndarray, prefix: str) -> pd.DataFrame:
    fields = [f for f in _FACILITY_FIELDS if f in facilities.columns]
    part = pd.DataFrame(facilities.iloc[positions][fields]).reset_index(drop=True)
    return part.add_prefix(f"{prefix}_")


def supply_buffers(
    facilities: gpd.GeoDataFrame, flows: pd.DataFrame, taxonomy: Taxonomy, *, max_km: float | None = None
) -> gpd.GeoDataFrame:
    """Buffer polygons of each supply flow's maximum distance, for drawing.

    Buffers are built in EPSG:3035 and returned in EPSG:4326 with the supply
    flow's ``flow_id``, ``facility_id``, ``resource`` and ``max_distance_km``.
    Matching itself uses the exact ``dwithin`` query, not these polygons.
    """
    supply = flows[(flows["direction"] == "supply") & flows["facility_id"].isin(facilities["facility_id"])]
    supply = supply.reset_index(drop=True)
    limits = supply_limits_km(supply, taxonomy, max_km=max_km)
    points = facilities.set_index("facility_id").geometry.to_crs(settings.METRIC_CRS)
    centres = points.loc[supply["facility_id"]].to_numpy()
    polygons = shapely.buffer(centres, limits.to_numpy() * 1000.0, quad_segs=16)
    frame = supply[["flow_id", "facility_id", "resource"]].assign(max_distance_km=limits.to_numpy())
    return gpd.GeoDataFrame(frame, geometry=polygons, crs=settings.METRIC_CRS).to_crs(settings.WGS84)


def supply_reach(facilities: pd.DataFrame, flows: pd.DataFrame, taxonomy: Taxonomy) -> pd.DataFrame:
    """How far each supplier's resources may travel, for drawing reach circles.

    One row per facility and resource group (the part of the resource code
    before the first dot), at the farthest maximum distance of the facility's
    supply flows in that group, as :func:`supply_limits_km` gives it (a road
    distance: a circle of that radius is an upper bound of the road reach).

    Parameters
    ----------
    facilities : DataFrame
        ``facility_id``, ``lon`` and ``lat`` (WGS84 degrees); other facilities'
        flows are left out.
    flows : DataFrame
        The engine's flow columns. The caller leaves out the flows it must not
        show (:func:`geo.selection.select_flows`).
    taxonomy : Taxonomy
        Default maximum distances and the groups' labels.

    Returns
    -------
    reach : DataFrame
        ``facility_id``, ``lon``, ``lat``, ``group``, ``group_label``,
        ``reach_km`` and ``resources`` (the codes, comma-separated), sorted by
        facility and group.
    """
    columns = ["facility_id", "lon", "lat", "group", "group_label", "reach_km", "resources"]
    supply = flows[(flows["direction"] == "supply") & flows["facility_id"].isin(facilities["facility_id"])]
    if supply.empty:
        return pd.DataFrame(columns=columns)
    supply = supply.assign(group=resource_group(supply["resource"]),
                           reach_km=supply_limits_km(supply, taxonomy).to_numpy())
    rows = supply.groupby(["facility_id", "group"], sort=True).agg(
        reach_km=("reach_km", "max"), resources=("resource", lambda codes: ", ".join(sorted(set(codes))))).reset_index()
    rows = rows.join(facilities.drop_duplicates("facility_id").set_index("facility_id")[["lon", "lat"]], on="facility_id")
    rows["group_label"] = rows["group"].map(taxonomy.resources["label"]).fillna(rows["group"])
    return rows[columns]
