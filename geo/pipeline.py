"""From a validated dataset to ranked links: the one call behind ``geo match``.

:func:`match` runs the steps in order (infer flows when asked, find
candidates, score, rank, explain) and returns the links with the counts a user needs to trust the result: how many
flows were inferred, which facilities had nothing to match, and how many
pairs the road distance ruled out.

Large inputs: before the search, :func:`match` estimates the
candidate pairs and the memory the run needs and refuses with a
:class:`~geo.errors.CapacityError` naming the limit, rather than run out of
memory; candidates are then searched in batches and, past
:data:`geo.settings.MAX_LINKS`, pruned to the best links per demand, so memory
grows with the links kept. ``on_progress`` reports each stage.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo import settings
from geo.allocation import ALLOCATION_COLUMNS, CARBON_PRICE_EUR_PER_T, allocate, allocation_totals
from geo.errors import CapacityError, InputError
from geo.estimates import estimate_quantities
from geo.inference import infer_flows
from geo.matching import CandidatePairs, CandidateSearch, CandidateStats
from geo.schema import Dataset
from geo.scoring import explain, link_scores, rank_links, score_links
from geo.settings import ScoringWeights
from geo.taxonomy import Taxonomy, load_taxonomy

if TYPE_CHECKING:
    from geo.network import RoadNetwork

__all__ = ["LINK_COLUMNS", "MATCH_STAGES", "MatchResult", "ProgressCallback", "check_memory", "link_lines", "match",
           "memory_limit", "method_notes"]

#: Stages a match reports to its ``on_progress`` callback, in order. Each is
#: reported as ``(stage, 0, total)`` when it starts and ``(stage, total, total)``
#: when it ends; ``candidates`` also after each batch, counting supply flows.
MATCH_STAGES = ("flows", "candidates", "scores", "allocation", "ranking")

#: ``on_progress(stage, done, total)``: a stage of :data:`MATCH_STAGES` and how
#: far it has got (``done`` of ``total``, never decreasing within a stage).
ProgressCallback = Callable[[str, int, int], None]

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
    "supply_evidence", "supply_precision",
    "demand_flow_id", "demand_quantity", "demand_unit", "demand_description",
    "demand_basis", "demand_nace", "demand_country", "demand_cluster", "demand_operator", "demand_quantity_note",
    "demand_evidence", "demand_precision",
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
        a spatial file needs them. ``supply_evidence``/``demand_evidence``
        say where each flow's stated quantity comes from (``published``,
        ``typical``, or empty when the input does not say; inferred flows
        leave it empty, their ``*_quantity_note`` says how they were sized) and
        ``supply_precision``/``demand_precision`` how closely each facility's
        point is known (``site``, ``address``, ``town`` or empty).
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
        kept (not only the ``top``).
    notes : list of str
        How the run was cut down, one sentence each, for the user to read:
        links left out past ``max_links``, an allocation skipped for size.
        Empty for an ordinary run.
    """

    links: pd.DataFrame
    stats: CandidateStats
    flows: pd.DataFrame
    inferred: int = 0
    not_inferred: pd.DataFrame = field(default_factory=pd.DataFrame)
    without_flows: list[str] = field(default_factory=list)
    total_links: int = 0
    totals: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list[str] = field(default_factory=list)


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
    on_progress: ProgressCallback | None = None,
    max_links: int | None = None,
    links_per_demand: int | None = None,
    max_pairs: int | None = None,
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
        empty frame. It is the slowest step of a large match (docs/BENCHMARKS.md);
        past :data:`geo.settings.ALLOCATION_MAX_LINKS` links it is skipped, with a note.
    on_progress : callable, optional
        Called as ``on_progress(stage, done, total)`` as the match goes (see
        :data:`MATCH_STAGES`), for a progress bar.
    max_links : int, optional
        Most links kept; :data:`geo.settings.MAX_LINKS` by default. A run that
        finds more keeps each demand flow's best ``links_per_demand`` and, of
        those, the best ``max_links`` (highest score, then shorter distance,
        then flow ids); ``stats.pruned`` counts the links left out and
        ``notes`` says so. The allocation and ``totals`` then cover the links
        kept.
    links_per_demand : int, optional
        Links each demand flow keeps when the run is cut down;
        :data:`geo.settings.LINKS_PER_DEMAND` by default.
    max_pairs : int, optional
        Most candidate pairs (estimated before the search) the match takes on;
        :data:`geo.settings.MAX_CANDIDATE_PAIRS` by default.

    Returns
    -------
    MatchResult

    Raises
    ------
    CapacityError
        Before any heavy step, when the estimated candidate pairs exceed
        ``max_pairs`` or the memory needed exceeds :func:`memory_limit`; the
        message names the estimate and the limit.

    Notes
    -----
    Candidates are searched, and past ``max_links`` scored and pruned, in
    batches of about :data:`geo.settings.BATCH_PAIRS` pairs
    (:class:`geo.matching.CandidateSearch`), so memory grows with the links
    kept, not with all the pairs of the region.
    """
    taxonomy = taxonomy if taxonomy is not None else load_taxonomy()
    return _match(dataset, taxonomy, infer=infer, max_km=max_km, top=top, weights=weights, network=network,
                  precedents=precedents, allocation=allocation, on_progress=on_progress,
                  max_links=settings.MAX_LINKS if max_links is None else int(max_links),
                  links_per_demand=settings.LINKS_PER_DEMAND if links_per_demand is None else int(links_per_demand),
                  max_pairs=settings.MAX_CANDIDATE_PAIRS if max_pairs is None else int(max_pairs))


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
    on_progress: ProgressCallback | None,
    max_links: int,
    links_per_demand: int,
    max_pairs: int,
) -> MatchResult:
    progress = on_progress if on_progress is not None else _silent
    facilities = dataset.facilities
    progress("flows", 0, 1)
    flows, inferred, not_inferred = _flows(dataset, taxonomy, infer=infer)
    with_flows = set(flows["facility_id"])
    without = [f for f in facilities["facility_id"] if f not in with_flows]
    # the size guard needs only where flows are and what they carry: it runs before their quantities are estimated
    per_supply = _guard(facilities, flows, taxonomy, max_km=max_km, max_links=max_links, max_pairs=max_pairs)
    if infer:
        flows = _sized(facilities, flows, taxonomy)
    progress("flows", 1, 1)

    score = partial(link_scores, taxonomy=taxonomy, weights=weights, precedents=precedents)
    search, pool = _search(facilities, flows, taxonomy, score, per_supply, max_km=max_km, network=network,
                           max_links=max_links, per_demand=links_per_demand, progress=progress)
    stats = search.stats

    progress("scores", 0, 1)
    candidates = search.frame(pool.result())
    pool_folded, pool_pruned = pool.folded, pool.pruned
    del search, pool  # its copies of the flows are not needed past here: a million facilities' take a GB
    scored = score_links(candidates, taxonomy, weights=weights, precedents=precedents)
    del candidates
    kept = [c for c in LINK_COLUMNS if c not in ("rank", "why")]
    scored = scored.assign(**{c: "" for c in kept if c not in scored.columns})  # facility fields a file lacks
    progress("scores", 1, 1)
    progress("allocation", 0, 1)
    scored, totals = _allocated(scored, taxonomy, allocation=allocation)
    progress("allocation", 1, 1)
    progress("ranking", 0, 1)
    scored, folded = _one_per_resource(scored)
    stats.inferred_alternatives = pool_folded + folded
    stats.pruned, stats.max_links = pool_pruned, max_links if pool_pruned else 0
    stats.links_per_demand = links_per_demand if pool_pruned else 0
    ranked = rank_links(scored, top=top, columns=kept)
    ranked.insert(LINK_COLUMNS.index("why"), "why", explain(ranked, taxonomy))
    progress("ranking", 1, 1)
    return MatchResult(
        links=ranked,
        stats=stats,
        flows=flows,
        inferred=inferred,
        not_inferred=not_inferred,
        without_flows=without,
        total_links=len(scored) + pool_pruned,
        totals=totals,
        notes=_notes(len(scored), pool_pruned, max_links, links_per_demand, allocation),
    )


def _flows(dataset: Dataset, taxonomy: Taxonomy, *, infer: bool) -> tuple[pd.DataFrame, int, pd.DataFrame]:
    """The flows to match (declared, plus inferred ones when asked, not sized yet), how many were inferred, and
    the facilities that got none."""
    if not infer:
        return dataset.flows, 0, pd.DataFrame(columns=["facility_id", "nace", "reason"])
    facilities = dataset.facilities
    check_memory(_BYTES_PER_FACILITY_INFERRED * len(facilities), f"{len(facilities):,} facilities")
    flows, not_inferred = infer_flows(facilities, dataset.flows, taxonomy)
    return flows, int((flows["basis"] == "inferred").sum()), not_inferred


def _guard(facilities: gpd.GeoDataFrame, flows: pd.DataFrame, taxonomy: Taxonomy, *, max_km: float | None,
           max_links: int, max_pairs: int) -> dict[str, float]:
    """Estimated pairs per supply flow of each resource, once :func:`_check_size` has let the match go on."""
    per_supply = CandidateSearch(facilities, flows, taxonomy, max_km=max_km).estimate_pairs()
    supplies = flows.loc[flows["direction"] == "supply", "resource"].value_counts()
    expected = sum(per_supply.get(r, 0.0) * n for r, n in supplies.items())
    _check_size(len(facilities), len(flows), expected, max_links=max_links, max_pairs=max_pairs)
    return per_supply


def _search(
    facilities: gpd.GeoDataFrame, flows: pd.DataFrame, taxonomy: Taxonomy,
    score: Callable[[pd.DataFrame], pd.DataFrame], per_supply: dict[str, float], *, max_km: float | None,
    network: RoadNetwork | None, max_links: int, per_demand: int, progress: ProgressCallback,
) -> tuple[CandidateSearch, _LinkPool]:
    """The candidate search, batch by batch into a pool of links (``per_supply`` sizes the batches)."""
    search = CandidateSearch(facilities, flows, taxonomy, max_km=max_km, network=network)
    pool = _LinkPool(search, score, max_links=max_links, per_demand=per_demand)
    done, total = 0, search.stats.supplies
    progress("candidates", 0, total)
    for rows in search.batches(per_supply, settings.BATCH_PAIRS):
        pool.add(search.pairs(rows))
        done += len(rows)
        progress("candidates", done, total)
    return search, pool


def _allocated(scored: pd.DataFrame, taxonomy: Taxonomy, *, allocation: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The links with the allocation's columns, and its totals by status (empty when it did not run)."""
    if allocation and len(scored) <= settings.ALLOCATION_MAX_LINKS:
        scored[list(ALLOCATION_COLUMNS)] = allocate(scored, taxonomy)
        return scored, allocation_totals(scored, group_by="status")  # before folding: a folded link may carry a share
    scored = scored.assign(**{c: np.nan for c in ALLOCATION_COLUMNS})
    scored["allocation_note"] = ("not allocated: the allocation was switched off" if not allocation else
                                 f"not allocated: {len(scored):,} links are more than the allocation's linear "
                                 f"program takes ({settings.ALLOCATION_MAX_LINKS:,}, settings.ALLOCATION_MAX_LINKS)")
    return scored, pd.DataFrame()


def _silent(stage: str, done: int, total: int) -> None:
    """The progress callback of a caller that asked for none."""


def _notes(links: int, pruned: int, max_links: int, per_demand: int, allocation: bool) -> list[str]:
    """What a user should know about how the run was cut down, one sentence each."""
    notes = []
    if pruned:
        notes.append(f"{links + pruned:,} links found; more than the {max_links:,} a match keeps (max_links), so each "
                     f"demand flow kept its best {per_demand} and of those the best {links:,} were kept "
                     f"({pruned:,} left out)")
        if allocation and links <= settings.ALLOCATION_MAX_LINKS:
            notes.append("the regional allocation shares supplies and demands among the links kept only")
    if allocation and links > settings.ALLOCATION_MAX_LINKS:
        notes.append(f"not allocated: {links:,} links are more than the allocation takes "
                     f"({settings.ALLOCATION_MAX_LINKS:,})")
    return notes


class _LinkPool:
    """The candidate pairs a match keeps: all of them up to ``max_links``, past that the best.

    Pairs come in batches (:meth:`geo.matching.CandidateSearch.batches`). While
    the pool holds at most ``max_links`` it only collects them. Past that it
    scores each batch on the slim candidates frame, folds inferred
    alternatives (as :func:`_one_per_resource`; a batch holds all of a
    supplier's flows of one resource, so every alternative of a link is in its
    batch), keeps each demand flow's best ``per_demand`` links and, of those,
    the best ``max_links``. Best is the highest score, then the shorter
    distance, then supply and demand flow ids, so the cut is the same whatever
    the batches: pruning twice keeps what pruning once would, as long as
    every pruning after the links found pass ``max_links`` cuts. It prunes when
    it holds twice ``max_links``, so memory stays within about three times
    ``max_links`` pairs plus one batch.
    """

    def __init__(self, search: CandidateSearch, score: Callable[[pd.DataFrame], pd.DataFrame], *,
                 max_links: int, per_demand: int) -> None:
        self.search, self.score = search, score
        self.max_links, self.per_demand = max_links, per_demand
        self.parts: list[CandidatePairs] = []
        self.keys: list[tuple[np.ndarray, np.ndarray] | None] = []
        self.size = self.added = self.folded = self.pruned = 0
        self.pruning = False
        supply, demand = search.supply, search.demand
        self.s_code = pd.factorize(supply["flow_id"], sort=True)[0]
        self.d_code = pd.factorize(demand["flow_id"], sort=True)[0]
        self.s_resource = pd.factorize(supply["resource"])[0]
        self.s_declared = _declared(supply)
        self.d_declared = _declared(demand)

    def add(self, pairs: CandidatePairs) -> None:
        """Take in one batch of pairs, pruning when the pool has grown past its bound."""
        self.parts.append(pairs)
        self.keys.append(None)
        self.size += len(pairs)
        self.added += len(pairs)
        if self.size > (2 * self.max_links if self.pruning else self.max_links):
            self._prune()

    def result(self) -> CandidatePairs:
        """The pairs kept, after a last pruning when the pool holds more than ``max_links``."""
        if self.pruning or self.size > self.max_links:
            self._prune()
        return CandidatePairs.concat(self.parts)

    def _prune(self) -> None:
        self.pruning = True
        for i, part in enumerate(self.parts):
            if self.keys[i] is None:
                scored = self.score(self.search.frame(part, scoring_only=True))
                self.keys[i] = (scored["score"].to_numpy(dtype=float), scored["distance_km"].to_numpy(dtype=float))
        pairs = CandidatePairs.concat(self.parts)
        score = np.concatenate([k[0] for k in self.keys])
        km = np.concatenate([k[1] for k in self.keys])
        rows = self._unfolded(pairs, score)
        self.folded += len(pairs) - len(rows)
        if self.added - self.folded > self.max_links:  # links found so far: once past the bound, always cut
            best = self._best(pairs.supply[rows], pairs.demand[rows], score[rows], km[rows])
            self.pruned += len(rows) - len(best)
            rows = rows[best]
        self.parts, self.keys, self.size = [pairs.take(rows)], [(score[rows], km[rows])], len(rows)

    def _unfolded(self, pairs: CandidatePairs, score: np.ndarray) -> np.ndarray:
        """Positions of the pairs :func:`_one_per_resource` keeps: for inferred links, the best per supplier,
        receiver and supplied resource."""
        s, d = pairs.supply, pairs.demand
        inferred = np.flatnonzero(~(self.s_declared[s] & self.d_declared[d]))
        order = inferred[np.lexsort((self.d_code[d[inferred]], self.s_code[s[inferred]], -score[inferred]))]
        key = pd.DataFrame({"s": self.search.s_fac[s[order]], "d": self.search.d_fac[d[order]],
                            "r": self.s_resource[s[order]]})
        folded = order[key.duplicated().to_numpy()]
        keep = np.ones(len(pairs), dtype=bool)
        keep[folded] = False
        return np.flatnonzero(keep)

    def _best(self, s: np.ndarray, d: np.ndarray, score: np.ndarray, km: np.ndarray) -> np.ndarray:
        """Positions of each demand flow's best ``per_demand`` links, and of those the best ``max_links``."""
        order = np.lexsort((self.d_code[d], self.s_code[s], np.nan_to_num(km, nan=np.inf), -score))
        by_demand = order[np.argsort(d[order], kind="stable")]
        demand = d[by_demand]
        starts = np.flatnonzero(np.r_[True, demand[1:] != demand[:-1]])
        rank = np.arange(len(demand)) - np.repeat(starts, np.diff(np.r_[starts, len(demand)]))
        place = np.empty(len(order), dtype=np.int64)
        place[order] = np.arange(len(order))
        kept = by_demand[rank < self.per_demand]
        return np.sort(kept[np.argsort(place[kept], kind="stable")][: self.max_links])


def _declared(flows: pd.DataFrame) -> np.ndarray:
    """Whether each flow was declared (a flow without a ``basis`` column is)."""
    if "basis" not in flows.columns:
        return np.ones(len(flows), dtype=bool)
    return (flows["basis"] == "declared").to_numpy(dtype=bool)


# --- memory and size guard ----------------------------------------------------------

#: Bytes a facility takes while its inferred flows are made and sized (the
#: flows, their estimates and notes): 1,000,000 facilities went from 1.05 GB
#: to 5.3 GB (docs/BENCHMARKS.md, "Large inputs").
_BYTES_PER_FACILITY_INFERRED = 5_000

#: Bytes a kept link takes at the peak of a match: the wide links table,
#: scores, allocation, ranking and sentences (500,000 links at 100,000
#: facilities: 1.4 GB before the links table, 3.6 GB at its peak).
_BYTES_PER_LINK = 5_000

#: Bytes a candidate pair takes while its batch is searched and scored.
_BYTES_PER_PAIR = 1_500


def check_memory(need_bytes: float, what: str) -> None:
    """Refuse, before it starts, a step that would need more memory than the limit.

    Parameters
    ----------
    need_bytes : float
        What the step would add to the memory the process holds now.
    what : str
        What is being worked on, for the message ("1,000,000 facilities").

    Raises
    ------
    CapacityError
        When the process's resident memory plus ``need_bytes`` exceeds
        :func:`memory_limit` (a configured ceiling or the memory available).
    """
    limit, source = memory_limit()
    if limit is None:
        return
    total = _resident_bytes() + need_bytes
    if total > limit:
        msg = (f"{what} would need about {_gb(total)} GB of memory; the limit is {_gb(limit)} GB "
               f"({source}); use --max-km for shorter distances, a smaller area or fewer facilities")
        raise CapacityError(msg)


def memory_limit() -> tuple[float | None, str]:
    """The most memory (bytes) a match may use, and where that limit comes from.

    The smaller of the :data:`geo.settings.MAX_MEMORY_ENV` environment
    variable (GB), when set, and the memory this process can still get: what
    it holds now plus what is available (the cgroup's limit when the process
    runs in a container with one, else ``MemAvailable`` of /proc/meminfo, or
    psutil's figure when psutil is installed). ``(None, '')`` when neither is
    known.
    """
    limits = []
    text = os.environ.get(settings.MAX_MEMORY_ENV, "").strip()
    if text:
        try:
            limits.append((float(text) * 2**30, f"{settings.MAX_MEMORY_ENV}={text}"))
        except ValueError:
            msg = f"{settings.MAX_MEMORY_ENV}={text!r} is not a number of GB"
            raise InputError(msg) from None
    available = _available_bytes()
    if available is not None:
        limits.append((_resident_bytes() + available, "the memory available on this machine"))
    if not limits:
        return None, ""
    return min(limits)


def _check_size(facilities: int, flows: int, pairs: float, *, max_links: int, max_pairs: int) -> None:
    """Refuse a match whose candidate pairs exceed ``max_pairs`` or whose links and batches would not fit in memory."""
    what = f"{facilities:,} facilities with {flows:,} flows"
    if pairs > max_pairs:
        which = ("settings.MAX_CANDIDATE_PAIRS, about half an hour of search"
                 if max_pairs == settings.MAX_CANDIDATE_PAIRS else "max_pairs")
        msg = (f"{what} give about {_round_text(pairs)} candidate pairs within their maximum distances; the limit "
               f"is {_round_text(max_pairs)} pairs ({which}); use --max-km for shorter distances, a smaller area "
               "or fewer facilities")
        raise CapacityError(msg)
    check_memory(min(pairs, max_links) * _BYTES_PER_LINK + min(pairs, settings.BATCH_PAIRS) * _BYTES_PER_PAIR, what)


def _gb(n_bytes: float) -> str:
    """Bytes as GB for a message: one decimal (12.4), or two significant figures below 1 GB (0.31, 0.001)."""
    gb = n_bytes / 2**30
    return f"{gb:.1f}" if gb >= 1 else f"{gb:.2g}"


def _round_text(n: float) -> str:
    """A large count as words: 6.9 billion, 300 million, 45,000."""
    for size, word in ((1e9, "billion"), (1e6, "million")):
        if n >= size:
            return f"{n / size:.3g} {word}"
    return f"{n:,.0f}"


def _resident_bytes() -> float:
    """Memory this process holds now (resident set), 0 when unknown."""
    try:
        import psutil

        return float(psutil.Process().memory_info().rss)
    except ImportError:
        pass
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return float(pages * os.sysconf("SC_PAGE_SIZE"))


def _available_bytes() -> float | None:
    """Memory the process can still get: the smaller of the cgroup's room and the system's, None when unknown."""
    found = []
    try:
        import psutil

        found.append(float(psutil.virtual_memory().available))
    except ImportError:
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    found.append(float(line.split()[1]) * 1024)
        except OSError:
            pass
    try:
        cgroup = Path("/sys/fs/cgroup")
        cap = (cgroup / "memory.max").read_text().strip()
        if cap != "max":
            found.append(float(cap) - float((cgroup / "memory.current").read_text()))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def _sized(facilities: gpd.GeoDataFrame, flows: pd.DataFrame, taxonomy: Taxonomy) -> pd.DataFrame:
    """Inferred flows with a quantity and its range, estimated from what is known of their facility.

    Only inferred flows are sized: a declared flow's blank quantity stays
    unknown, as the user wrote it. ``estimate`` says what kind of estimate a
    quantity is (``estimated``, ``sector typical``, or empty when stated or
    unknown) and ``quantity_note`` how it was worked out. Facilities are
    sized in batches of :data:`geo.settings.ESTIMATE_BATCH_FACILITIES` (an
    estimate only reads its own facility), so memory stays flat.
    """
    est = _estimates(facilities, flows, taxonomy)
    inferred = (flows["basis"] == "inferred") & est["quantity_basis"].isin(["estimated", "sector typical"])
    out = flows.assign(estimate="", quantity_low=np.nan, quantity_high=np.nan, quantity_note="")
    for column in ("quantity", "quantity_low", "quantity_high", "quantity_note"):
        out.loc[inferred, column] = est.loc[inferred, column]
    out.loc[inferred, "estimate"] = est.loc[inferred, "quantity_basis"]
    return out


def _estimates(facilities: gpd.GeoDataFrame, flows: pd.DataFrame, taxonomy: Taxonomy) -> pd.DataFrame:
    """:func:`geo.estimates.estimate_quantities` of every flow, a batch of facilities at a time."""
    size = settings.ESTIMATE_BATCH_FACILITIES
    if len(facilities) <= size:
        return estimate_quantities(facilities, flows, taxonomy)
    owner = pd.Index(facilities["facility_id"]).get_indexer(flows["facility_id"]) // size
    parts = [estimate_quantities(facilities.iloc[start:start + size], flows[owner == start // size], taxonomy)
             for start in range(0, len(facilities), size)]
    return pd.concat(parts).reindex(flows.index)


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
