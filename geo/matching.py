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
over the few dozen supplied resource codes, and over batches of supplies when
a region has too many pairs to hold at once (:class:`CandidateSearch`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from geo import settings
from geo.distance import great_circle_km, link_distances
from geo.taxonomy import Taxonomy, resource_group

if TYPE_CHECKING:
    from geo.network import RoadNetwork

__all__ = ["SCORING_FIELDS", "CandidatePairs", "CandidateSearch", "CandidateStats", "find_candidates", "laea_margin",
           "supply_buffers", "supply_reach"]

_FLOW_FIELDS = (
    "flow_id", "facility_id", "resource", "quantity", "unit", "ewc", "description",
    "max_distance_km", "confidential", "basis", "partners", "estimate", "quantity_low", "quantity_high",
    "quantity_note", "evidence",
)

_FACILITY_FIELDS = ("name", "nace", "country", "cluster", "operator", "precision")


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
    ``pruned`` counts the links a match left out because it found more than
    ``max_links``, keeping each demand flow's best ``links_per_demand``
    (:func:`geo.pipeline.match`); both are 0 when nothing was left out.
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
    pruned: int = 0
    max_links: int = 0
    links_per_demand: int = 0


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
    that is smaller. Every pair is built at once; :class:`CandidateSearch`
    finds them batch by batch when they are too many for memory.

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
        fields (among them ``evidence``: ``published``, ``typical`` or empty)
        and of the facility fields (``name``, ``nace``, ``country``,
        ``cluster``, ``operator``, ``precision``: ``site``, ``address``,
        ``town`` or empty), the two ends' ``*_lon``/``*_lat``, ``strength``, ``rule``,
        ``reason``, ``rule_source``, ``max_distance_km`` (the road limit
        applied), the columns of :func:`geo.distance.link_distances` (NaN
        road distance and time for a pair only ships can serve), and
        ``sea_km`` (the estimated sea route when both ends have a quay and the
        resource is bulk, else NaN).
    stats : CandidateStats
        Counts of pairs found and left out.
    """
    search = CandidateSearch(facilities, flows, taxonomy, max_km=max_km, network=network)
    pairs = CandidatePairs.concat([search.pairs(rows) for rows in search.batches()])
    return search.frame(pairs), search.stats


@dataclass
class CandidatePairs:
    """Candidate pairs as positions, with their distances.

    ``supply`` and ``demand`` are row positions in
    :attr:`CandidateSearch.supply` and :attr:`CandidateSearch.demand`,
    ``rule`` the row of :attr:`geo.taxonomy.Taxonomy.compatibility` that
    links them, ``limit`` the road limit applied (km), and ``distances`` the
    columns of :func:`geo.distance.link_distances` plus ``sea_km``, one row
    per pair. About 100 bytes a pair, so a search can hold millions.
    """

    supply: np.ndarray
    demand: np.ndarray
    rule: np.ndarray
    limit: np.ndarray
    distances: pd.DataFrame

    def __len__(self) -> int:
        return len(self.supply)

    def take(self, rows: np.ndarray) -> CandidatePairs:
        """The pairs at positions ``rows``, in that order."""
        return CandidatePairs(self.supply[rows], self.demand[rows], self.rule[rows], self.limit[rows],
                              self.distances.iloc[rows].reset_index(drop=True))

    @staticmethod
    def concat(parts: list[CandidatePairs]) -> CandidatePairs:
        """One set of pairs from several, in order."""
        parts = [p for p in parts if len(p)] or parts[:1]
        if not parts:
            return CandidatePairs.empty()
        if len(parts) == 1:
            return parts[0]
        return CandidatePairs(
            np.concatenate([p.supply for p in parts]), np.concatenate([p.demand for p in parts]),
            np.concatenate([p.rule for p in parts]), np.concatenate([p.limit for p in parts]),
            pd.concat([p.distances for p in parts], ignore_index=True),
        )

    @staticmethod
    def empty() -> CandidatePairs:
        none = np.empty(0, dtype=np.int64)
        distances = pd.DataFrame({"straight_km": np.empty(0), "distance_km": np.empty(0),
                                  "travel_time_min": np.empty(0), "distance_source": pd.Series([], dtype=object),
                                  "unroutable_reason": pd.Series([], dtype=object), "sea_km": np.empty(0)})
        return CandidatePairs(none, none, none, np.empty(0), distances)


class CandidateSearch:
    """The candidate search of one run, prepared once and queried one batch of supplies at a time.

    Preparing projects the facilities to EPSG:3035 and lines up the supply
    and demand flows; :meth:`batches` cuts the supplies into batches of one
    supplied resource each (all of a facility's flows of that resource in one
    batch), :meth:`pairs` finds a batch's pairs (one STRtree per supplied
    resource, built once and queried with the whole batch) and adds its
    counts to :attr:`stats`, and :meth:`frame` turns pairs into the
    candidates table of :func:`find_candidates`. Memory then grows with the
    pairs a caller keeps, not with all the pairs of the region.

    Parameters
    ----------
    facilities, flows, taxonomy, max_km, network
        As for :func:`find_candidates`.
    """

    def __init__(
        self,
        facilities: gpd.GeoDataFrame,
        flows: pd.DataFrame,
        taxonomy: Taxonomy,
        *,
        max_km: float | None = None,
        network: RoadNetwork | None = None,
    ) -> None:
        if facilities.crs is None or facilities.crs.to_epsg() != 4326:
            raise ValueError(f"facilities must be in {settings.WGS84}, got {facilities.crs}")
        self.facilities, self.taxonomy, self.network = facilities, taxonomy, network
        fac_index = pd.Index(facilities["facility_id"])
        self.lon = facilities.geometry.x.to_numpy()
        self.lat = facilities.geometry.y.to_numpy()
        metric = facilities.geometry.to_crs(settings.METRIC_CRS)
        self.x, self.y = metric.x.to_numpy(), metric.y.to_numpy()
        self.margin = laea_margin(self.lon, self.lat)

        # only the fields a link copies: a million facilities have millions of flows
        fields = [c for c in (*_FLOW_FIELDS, "direction") if c in flows.columns]
        known = flows["facility_id"].isin(fac_index).to_numpy()
        direction = flows["direction"].to_numpy(dtype=object)
        self.supply = flows.loc[known & (direction == "supply"), fields].reset_index(drop=True)
        self.demand = flows.loc[known & (direction == "demand"), fields].reset_index(drop=True)
        self.stats = CandidateStats(supplies=len(self.supply), demands=len(self.demand))
        self.s_fac = fac_index.get_indexer(self.supply["facility_id"])
        self.d_fac = fac_index.get_indexer(self.demand["facility_id"])
        self.s_limit = supply_limits_km(self.supply, taxonomy, max_km=max_km).to_numpy()
        self.d_limit = self.demand["max_distance_km"].astype(float).fillna(np.inf).to_numpy()
        self.quay = _quays(facilities)
        self.s_ship = self.quay[self.s_fac] & self.supply["resource"].map(taxonomy.resources["transport_mode"]).isin(
            settings.SHIP_FROM_MODES).to_numpy() & (settings.SHIP_MODE in taxonomy.modes.index)
        self.s_search = np.where(self.s_ship, np.maximum(self.s_limit, settings.SHIP_MAX_KM), self.s_limit)
        self._twins = _TwinCheck(self.supply, self.demand, facilities)
        self._tree: tuple[str, _ResourceTree | None] | None = None
        self._arrays: dict[str, dict[str, _Column]] = {}
        self.stats.unroutable_pairs = pd.DataFrame(
            columns=["supply_facility_id", "demand_facility_id", "resource", "straight_km", "reason"])

    def resources(self) -> dict[str, np.ndarray]:
        """Supply rows of each supplied resource, by resource code in sorted order."""
        return self.supply.groupby("resource").indices

    def batches(self, pairs_per_supply: dict[str, float] | None = None,
                max_pairs: int | None = None) -> Iterator[np.ndarray]:
        """Supply rows in batches of one resource, each expected to give at most about ``max_pairs`` pairs.

        A resource's rows form one batch, in their order, unless
        ``pairs_per_supply`` (from :meth:`estimate_pairs`) says they would give
        more than ``max_pairs`` pairs; then they are ordered by facility and
        cut between facilities, so one facility's flows of one resource
        always share a batch. Without ``max_pairs`` every resource is one batch.
        """
        for resource, rows in self.resources().items():
            per_supply = (pairs_per_supply or {}).get(resource, 0.0)
            if max_pairs is None or per_supply * len(rows) <= max_pairs:
                yield rows
                continue
            rows = rows[np.argsort(self.s_fac[rows], kind="stable")]
            size = max(1, int(max_pairs // max(per_supply, 1.0)))
            fac = self.s_fac[rows]
            start = 0
            while start < len(rows):
                stop = min(start + size, len(rows))
                while stop < len(rows) and fac[stop] == fac[stop - 1]:  # never split a facility
                    stop += 1
                yield rows[start:stop]
                start = stop

    def estimate_pairs(self, *, sample: int = 500, seed: int = 0) -> dict[str, float]:
        """Mean number of pairs within the projected search radius per supply flow, by supplied resource.

        Counts, for at most ``sample`` supplies of each resource (drawn with
        a fixed seed), the compatible demands within their search radius:
        the pairs the STRtree query returns before the great-circle, road and
        same-facility checks, so an upper bound of the candidates. Counting
        uses a k-d tree (``scipy.spatial.cKDTree``) and builds no pair.
        """
        rng = np.random.default_rng(seed)
        out = {}
        for resource, rows in self.resources().items():
            tree = self._resource_tree(resource)
            if tree is None:
                out[resource] = 0.0
                continue
            picked = rows if len(rows) <= sample else rng.choice(rows, sample, replace=False)
            points = np.column_stack([self.x[self.s_fac[picked]], self.y[self.s_fac[picked]]])
            radius = self.s_search[picked] * 1000.0 * self.margin
            counts = tree.kd.query_ball_point(points, radius, return_length=True)
            out[resource] = float(np.mean(counts))
        return out

    def pairs(self, rows: np.ndarray) -> CandidatePairs:
        """The candidate pairs of supply ``rows`` (all of one resource), counted into :attr:`stats`."""
        stats = self.stats
        s_idx, d_idx, compat_idx = self._join(rows)
        same = self.s_fac[s_idx] == self.d_fac[d_idx]
        stats.same_facility += int(same.sum())
        twins = self._twins(s_idx, d_idx, self.s_fac, self.d_fac) & ~same
        stats.same_sector_inferred += int(twins.sum())
        keep = ~same & ~twins
        s_idx, d_idx, compat_idx = s_idx[keep], d_idx[keep], compat_idx[keep]

        lon, lat, s_fac, d_fac = self.lon, self.lat, self.s_fac[s_idx], self.d_fac[d_idx]
        limit = np.minimum(self.s_limit[s_idx], self.d_limit[d_idx])
        straight = great_circle_km(lon[s_fac], lat[s_fac], lon[d_fac], lat[d_fac])
        sea = np.where(self.s_ship[s_idx] & self.quay[d_fac], straight * settings.SEA_DETOUR_FACTOR, np.nan)
        by_sea = sea <= np.minimum(settings.SHIP_MAX_KM, self.d_limit[d_idx])
        in_buffer = (straight <= limit) | by_sea
        stats.within_buffer += int(in_buffer.sum())
        s_idx, d_idx, compat_idx, limit = s_idx[in_buffer], d_idx[in_buffer], compat_idx[in_buffer], limit[in_buffer]
        straight, sea, by_sea = straight[in_buffer], sea[in_buffer], by_sea[in_buffer]
        dist = _distances(lon, lat, self.s_fac[s_idx], self.d_fac[d_idx], straight, limit, network=self.network)
        road = dist["distance_km"].to_numpy()
        routed = ~np.isnan(road)
        source = dist["distance_source"].to_numpy()
        stats.by_road += int((source == "road").sum())
        stats.estimated += int((source == "estimate").sum())
        unroutable = ~routed & ~by_sea & (source != "")
        stats.unroutable += int(unroutable.sum())
        if unroutable.any():
            lost = pd.DataFrame({
                "supply_facility_id": self.supply["facility_id"].to_numpy()[s_idx[unroutable]],
                "demand_facility_id": self.demand["facility_id"].to_numpy()[d_idx[unroutable]],
                "resource": self.supply["resource"].to_numpy()[s_idx[unroutable]],
                "straight_km": dist["straight_km"].to_numpy()[unroutable],
                "reason": dist["unroutable_reason"].to_numpy()[unroutable],
            })
            known = stats.unroutable_pairs
            stats.unroutable_pairs = pd.concat([known, lost], ignore_index=True) if len(known) else lost
        by_road = routed & (road <= limit)
        keep = by_road | by_sea
        stats.beyond_max_road_distance += int((routed & (road > limit) & ~by_sea).sum())
        # a pair beyond the road limit that ships may serve keeps no road figures: the sea route is its distance
        dist.loc[~by_road, ["distance_km", "travel_time_min"]] = np.nan
        dist["sea_km"] = sea
        return CandidatePairs(s_idx[keep], d_idx[keep], compat_idx[keep], limit[keep],
                              dist[keep].reset_index(drop=True))

    def frame(self, pairs: CandidatePairs, *, scoring_only: bool = False) -> pd.DataFrame:
        """The candidates table of ``pairs``, as :func:`find_candidates` returns it.

        With ``scoring_only`` it holds only what :func:`geo.scoring.link_scores`
        reads (:data:`SCORING_FIELDS` of both flows, both facilities' ``nace``,
        the limit, the rule's strength and the distances), its text as object
        arrays that share one string per distinct value: several times faster
        and smaller, for scoring pairs that may then be dropped.
        """
        s_idx, d_idx = pairs.supply, pairs.demand
        s_fac, d_fac = self.s_fac[s_idx], self.d_fac[d_idx]
        compat = self.taxonomy.compatibility
        if scoring_only:
            parts = [
                self._slim(self.supply, s_idx, "supply"), self._slim_facilities(s_fac, "supply"),
                self._slim(self.demand, d_idx, "demand"), self._slim_facilities(d_fac, "demand"),
                pd.DataFrame({"max_distance_km": pairs.limit,
                              "strength": compat["strength"].to_numpy(dtype=float)[pairs.rule]}),
                pairs.distances,
            ]
            return pd.concat(parts, axis=1)
        lon, lat = self.lon, self.lat
        parts = [
            _prefixed(self.supply, s_idx, "supply"),
            _facility_fields(self.facilities, s_fac, "supply"),
            _prefixed(self.demand, d_idx, "demand"),
            _facility_fields(self.facilities, d_fac, "demand"),
            pd.DataFrame({"supply_lon": lon[s_fac], "supply_lat": lat[s_fac],
                          "demand_lon": lon[d_fac], "demand_lat": lat[d_fac], "max_distance_km": pairs.limit}),
            compat.iloc[pairs.rule][["strength", "rule", "reason", "rule_source"]].reset_index(drop=True),
            pairs.distances,
        ]
        return pd.concat(parts, axis=1)

    def _slim(self, frame: pd.DataFrame, idx: np.ndarray, prefix: str) -> pd.DataFrame:
        columns = self._columns(frame, prefix, [f for f in SCORING_FIELDS if f in frame.columns])
        return pd.DataFrame({f"{prefix}_{c}": v.take(idx) for c, v in columns.items()})

    def _slim_facilities(self, positions: np.ndarray, prefix: str) -> pd.DataFrame:
        fields = [f for f in ("nace",) if f in self.facilities.columns]
        columns = self._columns(self.facilities, "facilities", fields)
        return pd.DataFrame({f"{prefix}_{c}": v.take(positions) for c, v in columns.items()})

    def _columns(self, frame: pd.DataFrame, key: str, fields: list[str]) -> dict[str, _Column]:
        """Columns of ``frame`` ready to take rows from, prepared once per search."""
        cache = self._arrays.setdefault(key, {})
        for name in fields:
            if name not in cache:
                cache[name] = _Column(frame[name])
        return {name: cache[name] for name in fields}

    def _resource_tree(self, resource: str) -> _ResourceTree | None:
        """The demands that accept ``resource`` and their STRtree, built once for consecutive batches."""
        if self._tree is None or self._tree[0] != resource:
            self._tree = (resource, _ResourceTree.build(resource, self.demand, self.x, self.y, self.d_fac,
                                                        self.taxonomy))
        return self._tree[1]

    def _join(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Index pairs (supply, demand, compatibility row) within the projected buffer, for supply ``rows``."""
        empty = np.empty(0, dtype=np.int64)
        if not len(rows):
            return empty, empty, empty
        tree = self._resource_tree(self.supply["resource"].iat[rows[0]])
        if tree is None:
            return empty, empty, empty
        s_points = shapely.points(self.x[self.s_fac[rows]], self.y[self.s_fac[rows]])
        radius = self.s_search[rows] * 1000.0 * self.margin
        q_s, q_d = tree.strtree.query(s_points, predicate="dwithin", distance=radius)
        d_hit = tree.rows[q_d]
        return rows[q_s], d_hit, tree.rule_of[tree.code[q_d]]


#: Flow fields that :func:`geo.scoring.link_scores` reads (:meth:`CandidateSearch.frame` with ``scoring_only``).
SCORING_FIELDS = ("resource", "quantity", "unit", "quantity_low", "quantity_high", "estimate", "basis")


class _Column:
    """One column, numbers as they are and text as codes into its distinct values, to take rows from fast.

    Taking text rows then copies references to the few distinct strings
    instead of making millions of new ones.
    """

    def __init__(self, column: pd.Series) -> None:
        self.text = not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column))
        if self.text:
            codes, uniques = pd.factorize(column.to_numpy(dtype=object))
            self.values = np.r_[np.asarray(uniques, dtype=object), np.array([np.nan], dtype=object)]
            self.codes = codes  # -1, a missing value, takes the NaN at the end
        else:
            self.values, self.codes = column.to_numpy(), None

    def take(self, rows: np.ndarray) -> pd.Series:
        if self.text:
            return pd.Series(self.values[self.codes[rows]], dtype=object, copy=False)
        return pd.Series(self.values[rows], copy=False)


class _ResourceTree:
    """The demands that accept one supplied resource: their rows, the rule of each, and their points.

    The STRtree (for the pair queries) and the k-d tree (for counting in
    :meth:`CandidateSearch.estimate_pairs`) are each built on first use.
    """

    def __init__(self, rows: np.ndarray, code: np.ndarray, rule_of: np.ndarray, px: np.ndarray, py: np.ndarray):
        self.rows, self.code, self.rule_of, self.px, self.py = rows, code, rule_of, px, py

    @cached_property
    def strtree(self) -> shapely.STRtree:
        return shapely.STRtree(shapely.points(self.px, self.py))

    @cached_property
    def kd(self) -> cKDTree:
        return cKDTree(np.column_stack([self.px, self.py]))

    @staticmethod
    def build(resource: str, demand: pd.DataFrame, x: np.ndarray, y: np.ndarray, d_fac: np.ndarray,
              taxonomy: Taxonomy) -> _ResourceTree | None:
        compat = taxonomy.compatibility
        rules = compat.groupby("supply_resource").indices.get(resource)
        if rules is None:
            return None
        codes = compat["demand_resource"].to_numpy()[rules]
        d_resource = demand["resource"].to_numpy()
        rows = np.flatnonzero(np.isin(d_resource, codes))
        if not len(rows):
            return None
        # each demand code has one rule for this supply resource: its position in `codes`
        code = pd.Index(codes).get_indexer(d_resource[rows])
        return _ResourceTree(rows, code, rules, x[d_fac[rows]], y[d_fac[rows]])


class _TwinCheck:
    """Pairs of two inferred flows of one resource between facilities of the same NACE class.

    A sector profile that lists a resource both as a typical supply and a
    typical need (district heating sells heat and buys excess heat) would
    otherwise link every such facility to every other: one heat utility
    "supplying" the next. Declared flows are never left out this way.
    """

    def __init__(self, supply: pd.DataFrame, demand: pd.DataFrame, facilities: gpd.GeoDataFrame) -> None:
        self.active = "basis" in supply.columns and "nace" in facilities.columns
        if self.active:
            # numbers instead of text, so that millions of pairs compare fast; 0 is "no NACE code"
            nace = facilities["nace"].fillna("").to_numpy(dtype=object)
            self.nace = pd.factorize(np.r_[np.array([""], dtype=object), nace])[0][1:]
            self.s_inferred = supply["basis"].to_numpy(dtype=object) == "inferred"
            self.d_inferred = demand["basis"].to_numpy(dtype=object) == "inferred"
            codes = pd.factorize(np.r_[supply["resource"].to_numpy(dtype=object),
                                       demand["resource"].to_numpy(dtype=object)])[0]
            self.s_resource, self.d_resource = codes[:len(supply)], codes[len(supply):]

    def __call__(self, s_idx: np.ndarray, d_idx: np.ndarray, s_fac: np.ndarray, d_fac: np.ndarray) -> np.ndarray:
        if not self.active:
            return np.zeros(len(s_idx), dtype=bool)
        inferred = self.s_inferred[s_idx] & self.d_inferred[d_idx]
        same_code = self.s_resource[s_idx] == self.d_resource[d_idx]
        s_nace, d_nace = self.nace[s_fac[s_idx]], self.nace[d_fac[d_idx]]
        return inferred & same_code & (s_nace == d_nace) & (s_nace != 0)


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
