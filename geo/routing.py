"""Road distances and travel times between many facilities at once.

:func:`road_distances` answers, for every candidate supply-demand pair, the
shortest road distance (by length) and the travel time of the fastest route,
each within the pair's maximum distance:

1. :func:`snap` puts every facility on its nearest road node (a KD-tree on
   unit-sphere coordinates, so "nearest" is exact on the globe) and flags
   facilities more than :data:`geo.settings.MAX_SNAP_KM` from any drivable
   road, or outside the network's area, instead of inventing a route;
2. a facility that snaps between two junctions becomes a virtual vertex
   joined to the ends of the edge it lies on, so distances start on the road
   itself, not at the nearest junction;
3. a compiled bounded Dijkstra (:mod:`geo._dijkstra`) runs once per distinct
   source, with the largest limit of that source's pairs as its cutoff,
   stopping early once every target of that source is settled; batches of
   sources run on threads when the job is large enough to pay for them;
4. the length search, then a travel-time search whose cutoff follows from the
   lengths found (the fastest route is never slower than the shortest one
   driven at the slowest speed of the graph).

Road distance includes the straight legs between each facility and its road
node, so it is never shorter than the great-circle distance between the two.
Pairs that cannot be routed are rows with NaN and a reason, not errors.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from geo import settings
from geo._dijkstra import bounded_searches, csr_arrays
from geo._hierarchy import Hierarchy, build_hierarchy, source_scans, target_buckets
from geo.network import RoadNetwork, without_parallels

__all__ = ["Route", "Snapped", "hierarchy", "road_distances", "route", "snap"]

#: Below this many (sources x vertices), routing runs on the calling thread only.
_PARALLEL_WORK = 4_000_000
#: From this many (distinct sources x vertices) on, a search job first builds the
#: graph's contraction hierarchy when it has none: about where a bounded
#: Dijkstra per source would take longer than building the hierarchy once
#: (on the 1M-node benchmark graph: ~10 s of searches against a build of a
#: few minutes that every later job reuses).
_HIERARCHY_WORK = 2_000_000_000
_METHODS = ("auto", "hierarchy", "dijkstra")


@dataclass
class Snapped:
    """Where points meet the road network.

    Attributes
    ----------
    node : ndarray of int64
        Nearest network node of each point (-1 where none is usable).
    snap_km : ndarray of float
        Great-circle distance from the point to that node.
    reason : ndarray of object
        Empty where the point snapped; otherwise why not (too far from any
        drivable road, or outside the network's area).
    """

    node: np.ndarray
    snap_km: np.ndarray
    reason: np.ndarray

    @property
    def ok(self) -> np.ndarray:
        """Points that snapped to a road."""
        return self.reason == ""


def snap(network: RoadNetwork, lon, lat, *, max_snap_km: float | None = None) -> Snapped:
    """Snap points to their nearest network node, vectorised.

    Parameters
    ----------
    network : RoadNetwork
    lon, lat : array-like of float
        WGS84 degrees.
    max_snap_km : float, optional
        Farthest a point may be from a road; defaults to
        :data:`geo.settings.MAX_SNAP_KM`.

    Returns
    -------
    Snapped
        A point outside the network's bounding box (plus the snap distance)
        gets the reason ``outside the road network's area``; one inside it but
        farther than ``max_snap_km`` from any road node gets ``... km from the
        nearest drivable road``; one nearer to a road cut off from the network
        (an island's own roads) than to a connected road more than
        :data:`geo.settings.DISCONNECTED_GAP_KM` away is reported too.
    """
    limit = settings.MAX_SNAP_KM if max_snap_km is None else max_snap_km
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    tree = _tree(network, "nodes")
    chord, node = tree.query(_unit_xyz(lon, lat))
    snap_km = 2.0 * settings.EARTH_RADIUS_KM * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0))
    west, south, east, north = network.bounds
    pad_lat = limit / 111.2
    pad_lon = limit / (111.2 * np.maximum(np.cos(np.radians(lat)), 0.05))
    inside = (lon >= west - pad_lon) & (lon <= east + pad_lon) & (lat >= south - pad_lat) & (lat <= north + pad_lat)
    reason = np.full(len(lon), "", dtype=object)
    far = inside & (snap_km > limit)
    reason[far] = [f"{d:.1f} km from the nearest drivable road" for d in snap_km[far]]
    if len(network.isolated_lon):
        cut_off = _tree(network, "isolated").query(_unit_xyz(lon, lat))[0]
        cut_off_km = 2.0 * settings.EARTH_RADIUS_KM * np.arcsin(np.clip(cut_off / 2.0, 0.0, 1.0))
        island = inside & (cut_off_km < snap_km) & (snap_km > settings.DISCONNECTED_GAP_KM)
        reason[island] = [f"beside a road with no link to the road network (an island?); the nearest connected "
                          f"road is {d:.1f} km away" for d in snap_km[island]]
    reason[~inside] = "outside the road network's area"
    node = np.where(reason == "", node, -1).astype(np.int64)
    return Snapped(node=node, snap_km=snap_km, reason=reason)


def _unit_xyz(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    lam, phi = np.radians(lon), np.radians(lat)
    return np.column_stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)])


def _tree(network: RoadNetwork, which: str) -> cKDTree:
    """KD-tree (unit-sphere coordinates) of the kept nodes (``'nodes'``) or the cut-off ones (``'isolated'``), built once."""
    tree = network._derived.get(which)
    if tree is None:
        lon, lat = (network.node_lon, network.node_lat) if which == "nodes" else (network.isolated_lon, network.isolated_lat)
        tree = cKDTree(_unit_xyz(lon, lat))
        network._derived[which] = tree
    return tree


# --- the many-to-many search ------------------------------------------------------

def road_distances(
    network: RoadNetwork,
    from_lon, from_lat, to_lon, to_lat,
    *,
    max_km,
    travel_time: bool = True,
    workers: int | None = None,
    method: str = "auto",
) -> pd.DataFrame:
    """Shortest road distance and fastest travel time for each pair, within its limit.

    Parameters
    ----------
    network : RoadNetwork
    from_lon, from_lat, to_lon, to_lat : array-like of float
        Pair ends in WGS84 degrees, one entry per pair.
    max_km : float or array-like of float
        Cutoff of each pair (or of all): pairs whose road distance exceeds it
        get ``inf``, without the search going farther.
    travel_time : bool
        Also search the fastest routes (a second search, by time).
    workers : int, optional
        Threads for large jobs; :data:`geo.settings.ROUTING_WORKERS` (every
        core) by default.
    method : {'auto', 'hierarchy', 'dijkstra'}
        ``'hierarchy'`` answers from the network's contraction hierarchy
        (:func:`hierarchy`, built first if needed); ``'dijkstra'`` runs one
        bounded search per source; ``'auto'`` uses the hierarchy when the
        network already has one or the job is large enough to pay for
        building it. Both give the same distances.

    Returns
    -------
    DataFrame
        One row per pair, in input order: ``road_km`` (shortest road
        distance including the legs to the road; ``inf`` beyond the limit;
        NaN when unroutable), ``travel_time_min`` (of the fastest route, with
        the legs at :data:`geo.settings.SITE_ACCESS_SPEED_KMH`; NaN when not
        searched or beyond the limit), ``from_snap_km``, ``to_snap_km`` and
        ``unroutable_reason`` (empty when routed; ``outside the road
        network's area`` marks pairs the network does not cover).
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {', '.join(_METHODS)}, not {method!r}")
    from_lon, from_lat = np.asarray(from_lon, dtype=float), np.asarray(from_lat, dtype=float)
    to_lon, to_lat = np.asarray(to_lon, dtype=float), np.asarray(to_lat, dtype=float)
    n = len(from_lon)
    limit_km = np.broadcast_to(np.asarray(max_km, dtype=float), (n,))
    src = _snap_unique(network, from_lon, from_lat)
    dst = _snap_unique(network, to_lon, to_lat)
    src_snapped, src_of = src
    dst_snapped, dst_of = dst
    reason = _pair_reasons(src_snapped.reason[src_of], dst_snapped.reason[dst_of])
    ok = reason == ""
    road_m = np.full(n, np.nan)
    time_s = np.full(n, np.nan)
    if ok.any():
        graph = _Augmented(network, src_snapped.node, dst_snapped.node)
        rows = np.flatnonzero(ok)
        s_term = graph.source_terminal[src_of[rows]]
        t_term = graph.target_terminal[dst_of[rows]]
        reach_m = np.maximum((limit_km[rows] - src_snapped.snap_km[src_of[rows]]) * 1000.0, 0.0)
        use_hierarchy = _use_hierarchy(network, method, len(np.unique(s_term)))
        search = _by_hierarchy if use_hierarchy else _by_dijkstra
        length = search(graph, "length", s_term, t_term, reach_m, workers)
        length = np.minimum(length, graph.direct(src_snapped.node[src_of[rows]], dst_snapped.node[dst_of[rows]], "m"))
        road_m[rows] = length
        if travel_time:
            slowest = graph.slowest_m_per_s()
            found = np.isfinite(length)
            # the shortest route driven at the slowest speed bounds the fastest; the slack absorbs rounding
            reach_s = np.where(found, length / slowest * (1 + 1e-9) + 1e-6, -1.0)
            times = np.full(len(rows), np.inf)
            if found.any():
                times[found] = search(graph, "time", s_term[found], t_term[found], reach_s[found], workers)
                times[found] = np.minimum(times[found], graph.direct(
                    src_snapped.node[src_of[rows[found]]], dst_snapped.node[dst_of[rows[found]]], "s"))
            time_s[rows] = np.where(np.isfinite(times), times, np.nan)
    legs_km = src_snapped.snap_km[src_of] + dst_snapped.snap_km[dst_of]
    road_km = road_m / 1000.0 + legs_km
    travel_min = time_s / 60.0 + legs_km / settings.SITE_ACCESS_SPEED_KMH * 60.0
    road_km[np.isfinite(road_km) & (road_km > limit_km)] = np.inf
    return pd.DataFrame({
        "road_km": road_km,
        "travel_time_min": np.where(np.isfinite(road_km), travel_min, np.nan),
        "from_snap_km": src_snapped.snap_km[src_of],
        "to_snap_km": dst_snapped.snap_km[dst_of],
        "unroutable_reason": reason,
    })


def _snap_unique(network: RoadNetwork, lon: np.ndarray, lat: np.ndarray) -> tuple[Snapped, np.ndarray]:
    """Snap each distinct point once; return the snaps and each input's index into them."""
    codes = pd.DataFrame({"lon": lon, "lat": lat}).groupby(["lon", "lat"], sort=False).ngroup().to_numpy()
    first = np.zeros(codes.max() + 1 if len(codes) else 0, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes))[::-1]
    return snap(network, lon[first], lat[first]), codes


def _pair_reasons(from_reason: np.ndarray, to_reason: np.ndarray) -> np.ndarray:
    """Why a pair cannot be routed, naming the end; 'outside' wins so callers can fall back."""
    reason = np.full(len(from_reason), "", dtype=object)
    bad_from, bad_to = from_reason != "", to_reason != ""
    reason[bad_to] = "receiver is " + to_reason[bad_to]
    reason[bad_from] = "supplier is " + from_reason[bad_from]
    outside = (from_reason == "outside the road network's area") | (to_reason == "outside the road network's area")
    reason[outside] = "outside the road network's area"
    return reason


def _base_edges(network: RoadNetwork, weight: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The network's edges with parallel edges reduced to the least ``length`` or ``time``; kept with the network."""
    base = network._derived.get(weight)
    if base is None:
        weights = network.edge_length_m if weight == "length" else network.edge_time_s
        base = without_parallels(network.edge_tail.astype(np.int64), network.edge_head.astype(np.int64), weights)
        network._derived[weight] = base
    return base


def hierarchy(network: RoadNetwork, weight: str = "length") -> Hierarchy:
    """The network's contraction hierarchy for ``length`` or ``time``, built once and kept with it.

    Building takes seconds for a city and minutes for a million junctions
    (docs/BENCHMARKS.md); :func:`geo.network.save_network` stores it, so a
    network prebuilt with ``python -m geo network build`` comes with it.
    """
    if weight not in ("length", "time"):
        raise ValueError(f"weight must be 'length' or 'time', not {weight!r}")
    key = f"hierarchy:{weight}"
    built = network._derived.get(key)
    if built is None:
        tail, head, w = _base_edges(network, weight)
        order = np.lexsort((head, tail))
        indptr = np.searchsorted(tail[order], np.arange(network.n_vertices + 1))
        built = build_hierarchy(indptr, head[order], w[order])
        network._derived[key] = built
    return built


def _use_hierarchy(network: RoadNetwork, method: str, n_sources: int) -> bool:
    if method != "auto":
        return method == "hierarchy"
    return "hierarchy:length" in network._derived or n_sources * network.n_vertices >= _HIERARCHY_WORK


class _Augmented:
    """The contracted graph plus one virtual vertex per facility node between junctions.

    A source node lying inside edge ``e`` gets an out-edge to ``e``'s head
    (the rest of the edge); a target node gets an in-edge from ``e``'s tail.
    Source and target roles get separate virtual vertices, so no route can
    pass through one. Pairs on the same edge, in driving order, also have the
    direct stretch between them (:meth:`direct`).
    """

    def __init__(self, network: RoadNetwork, source_nodes: np.ndarray, target_nodes: np.ndarray) -> None:
        self.net = network
        self._extra: dict[str, list[np.ndarray]] = {"tail": [], "head": [], "m": [], "s": []}
        first = network.n_vertices
        self.source_terminal, n_source = self._attach(source_nodes, first, outgoing=True)
        self.target_terminal, n_target = self._attach(target_nodes, first + n_source, outgoing=False)
        self.size = first + n_source + n_target

    def _attach(self, nodes: np.ndarray, first: int, *, outgoing: bool) -> tuple[np.ndarray, int]:
        """Terminal vertex of each node (-1 where unusable) and the number of virtual vertices made."""
        net = self.net
        usable = nodes >= 0
        vertex = np.where(usable, net.vertex[np.maximum(nodes, 0)], -1).astype(np.int64)
        inner = usable & (vertex < 0)
        inner_nodes = np.unique(nodes[inner])
        virtual = first + np.arange(len(inner_nodes))
        terminal = vertex.copy()
        terminal[inner] = virtual[np.searchsorted(inner_nodes, nodes[inner])]
        for slot in (0, 1):
            edge = net.member_edge[inner_nodes, slot]
            has = edge >= 0
            e, vv = edge[has], virtual[has]
            off_m = net.member_offset_m[inner_nodes[has], slot]
            off_s = net.member_offset_s[inner_nodes[has], slot]
            if outgoing:
                self._add(vv, net.edge_head[e], net.edge_length_m[e] - off_m, net.edge_time_s[e] - off_s)
            else:
                self._add(net.edge_tail[e], vv, off_m, off_s)
        return terminal, len(inner_nodes)

    def _add(self, tail, head, m, s) -> None:
        self._extra["tail"].append(np.asarray(tail, dtype=np.int64))
        self._extra["head"].append(np.asarray(head, dtype=np.int64))
        self._extra["m"].append(np.asarray(m, dtype=float))
        self._extra["s"].append(np.asarray(s, dtype=float))

    def matrix(self, weight: str) -> sp.csr_matrix:
        """The graph as a CSR matrix of ``length`` (m) or ``time`` (s), parallel edges reduced to the least.

        The network's own edges are reduced once and kept with the network;
        virtual edges never parallel them (one end is always a new vertex).
        """
        extra = without_parallels(*self._extra_edges(weight))
        tail, head, w = (np.concatenate([b, e]) for b, e in zip(_base_edges(self.net, weight), extra, strict=True))
        # scipy treats an explicit 0 as a missing edge: keep zero-length edges positive
        return sp.csr_matrix((np.maximum(w, 1e-9), (tail, head)), shape=(self.size, self.size))

    def _extra_edges(self, weight: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        key = "m" if weight == "length" else "s"
        return (np.concatenate([np.zeros(0, np.int64), *self._extra["tail"]]),
                np.concatenate([np.zeros(0, np.int64), *self._extra["head"]]),
                np.concatenate([np.zeros(0), *self._extra[key]]))

    def starts(self, terminals: np.ndarray, weight: str, *, outgoing: bool) -> tuple[np.ndarray, ...]:
        """Where a hierarchy search from each terminal begins: (ptr, vertex, initial value).

        ``terminals`` is sorted and distinct. A junction starts at itself; a
        virtual vertex (a facility between two junctions) starts at the ends
        of its edge(s): the heads it drives to (``outgoing``) or the tails it
        is reached from, at the value of the partial edge.
        """
        tail, head, w = self._extra_edges(weight)
        own, other = (tail, head) if outgoing else (head, tail)
        first_virtual = self.net.n_vertices
        mine = own >= first_virtual
        own, other, w = own[mine], other[mine], w[mine]
        pos = np.searchsorted(terminals, own)
        hit = pos < len(terminals)
        hit[hit] = terminals[pos[hit]] == own[hit]
        real = np.flatnonzero(terminals < first_virtual)
        index = np.concatenate([real, pos[hit]])
        vertex = np.concatenate([terminals[real], other[hit]]).astype(np.int64)
        value = np.concatenate([np.zeros(len(real)), w[hit]])
        order = np.argsort(index, kind="stable")
        ptr = np.searchsorted(index[order], np.arange(len(terminals) + 1)).astype(np.int64)
        return ptr, vertex[order], value[order]

    def slowest_m_per_s(self) -> float:
        """Slowest speed of any edge, m/s: bounds the fastest route's time by its length."""
        net = self.net
        ok = net.edge_time_s > 0
        return float((net.edge_length_m[ok] / net.edge_time_s[ok]).min()) if ok.any() else 1.0

    def direct(self, from_nodes: np.ndarray, to_nodes: np.ndarray, unit: str) -> np.ndarray:
        """Length (``'m'``) or time (``'s'``) of pairs on one edge in driving order; inf otherwise.

        Also 0 for pairs snapped to the same node.
        """
        net = self.net
        out = np.full(len(from_nodes), np.inf)
        out[from_nodes == to_nodes] = 0.0
        offsets = net.member_offset_m if unit == "m" else net.member_offset_s
        for a in (0, 1):
            for b in (0, 1):
                e_from, e_to = net.member_edge[from_nodes, a], net.member_edge[to_nodes, b]
                same = (e_from >= 0) & (e_from == e_to)
                gap = offsets[to_nodes, b] - offsets[from_nodes, a]
                ok = same & (gap >= 0)
                out[ok] = np.minimum(out[ok], gap[ok])
        return out


def _grouped(sources: np.ndarray, reach: np.ndarray) -> tuple[np.ndarray, ...]:
    """Pairs with a reach, grouped by source.

    Returns the pair rows in source order, the distinct sources, each one's
    cutoff (the largest reach of its pairs) and the CSR pointer of its pairs.
    """
    wanted = np.flatnonzero(reach >= 0)
    unique, pair_source = np.unique(sources[wanted], return_inverse=True)
    pair_source = pair_source.ravel()
    cutoff = np.full(len(unique), -np.inf)
    np.maximum.at(cutoff, pair_source, reach[wanted])
    by_source = np.argsort(pair_source, kind="stable")
    pair_ptr = np.searchsorted(pair_source[by_source], np.arange(len(unique) + 1)).astype(np.int64)
    return wanted[by_source], unique, cutoff, pair_ptr


def _by_dijkstra(graph: _Augmented, weight: str, sources: np.ndarray, targets: np.ndarray, reach: np.ndarray,
                 workers: int | None) -> np.ndarray:
    """Shortest-path value of each (source, target) pair, inf beyond the pair's reach.

    Each distinct source is searched once, with the largest reach of its
    pairs as the cutoff, and stops early once all its targets are settled.
    Sources go in batches to threads (the compiled search releases the GIL).
    """
    result = np.full(len(sources), np.inf)
    pairs, unique, cutoff, pair_ptr = _grouped(sources, reach)
    if not len(pairs):
        return result
    matrix = graph.matrix(weight)
    pair_targets = targets[pairs].astype(np.int64)
    csr = csr_arrays(matrix)
    values = np.empty(len(pairs))

    def run(first: int, last: int) -> None:
        lo, hi = pair_ptr[first], pair_ptr[last]
        bounded_searches(*csr, unique[first:last].astype(np.int64), cutoff[first:last],
                         pair_ptr[first:last + 1] - lo, pair_targets[lo:hi], values[lo:hi])

    _in_batches(run, len(unique), len(unique) * matrix.shape[0], workers)
    result[pairs] = values
    return np.where(result <= reach, result, np.inf)


def _by_hierarchy(graph: _Augmented, weight: str, sources: np.ndarray, targets: np.ndarray, reach: np.ndarray,
                  workers: int | None) -> np.ndarray:
    """As :func:`_by_dijkstra`, answered by the bucket many-to-many search over the contraction hierarchy.

    One upward search per distinct target fills the buckets; one per
    distinct source scans them. Source searches run in batches on threads.
    """
    result = np.full(len(sources), np.inf)
    pairs, unique, cutoff, pair_ptr = _grouped(sources, reach)
    if not len(pairs):
        return result
    ch = hierarchy(graph.net, weight)
    up_down = (ch.up_ptr, ch.up_head, ch.up_weight, ch.down_ptr, ch.down_tail, ch.down_weight)
    target_ids, pair_target = np.unique(targets[pairs], return_inverse=True)
    target_reach = np.full(len(target_ids), -np.inf)
    np.maximum.at(target_reach, pair_target.ravel(), reach[pairs])
    buckets = target_buckets(*up_down, *graph.starts(target_ids, weight, outgoing=False), target_reach)
    s_ptr, s_vertex, s_value = graph.starts(unique, weight, outgoing=True)
    pair_target = pair_target.ravel().astype(np.int64)
    values = np.empty(len(pairs))

    def run(first: int, last: int) -> None:
        lo, hi = pair_ptr[first], pair_ptr[last]
        a, b = s_ptr[first], s_ptr[last]
        source_scans(*up_down, *buckets, len(target_ids), s_ptr[first:last + 1] - a, s_vertex[a:b], s_value[a:b],
                     cutoff[first:last], pair_ptr[first:last + 1] - lo, pair_target[lo:hi], values[lo:hi])

    # the source scans cost about sources x targets (each meets most targets' buckets near the top)
    _in_batches(run, len(unique), len(unique) * len(target_ids), workers)
    result[pairs] = values
    return np.where(result <= reach, result, np.inf)


def _in_batches(run, n_sources: int, work: int, workers: int | None) -> None:
    """Call ``run(first, last)`` over ranges of sources: on this thread when small, else on a pool."""
    n_workers = _worker_count(workers)
    batches = _batches(n_sources, work, n_workers)
    if len(batches) == 1:
        run(*batches[0])
        return
    with ThreadPoolExecutor(n_workers) as pool:
        for done in [pool.submit(run, first, last) for first, last in batches]:
            done.result()


def _worker_count(workers: int | None) -> int:
    wanted = workers if workers is not None else settings.ROUTING_WORKERS
    if wanted is None:
        wanted = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, int(wanted))


def _batches(n_sources: int, work: int, n_workers: int) -> list[tuple[int, int]]:
    """Ranges of sources to search together: one when the job is small, else a few per thread.

    Several batches per thread even out searches of unequal size.
    """
    if n_workers == 1 or work < _PARALLEL_WORK:
        return [(0, n_sources)]
    n_batches = min(n_sources, 8 * n_workers)
    edges = np.linspace(0, n_sources, n_batches + 1).astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


# --- one route, for drawing -------------------------------------------------------

@dataclass
class Route:
    """The road route of one link.

    Attributes
    ----------
    geometry : shapely.LineString or None
        From the supplier's road node to the receiver's, WGS84 (None when
        there is no route).
    distance_km, travel_time_min : float
        As :func:`road_distances` gives them (legs to the road included).
    weight : str
        ``'length'`` (shortest) or ``'time'`` (fastest).
    reason : str
        Why there is no route; empty when there is one.
    """

    geometry: shapely.LineString | None
    distance_km: float
    travel_time_min: float
    weight: str
    reason: str = ""


def route(network: RoadNetwork, from_lon: float, from_lat: float, to_lon: float, to_lat: float,
          *, weight: str = "length") -> Route:
    """The shortest (``weight='length'``) or fastest (``'time'``) road route of one link, with its line.

    One dijkstra search with predecessors from the supplier; the vertex path
    is expanded into the original OSM nodes of every edge it uses, so the
    line follows the road.
    """
    if weight not in ("length", "time"):
        raise ValueError(f"weight must be 'length' or 'time', not {weight!r}")
    ends = snap(network, [from_lon, to_lon], [from_lat, to_lat])
    if not ends.ok.all():
        reason = _pair_reasons(ends.reason[:1], ends.reason[1:])[0]
        return Route(None, np.nan, np.nan, weight, reason)
    a, b = int(ends.node[0]), int(ends.node[1])
    graph = _Augmented(network, ends.node[:1], ends.node[1:])
    s, t = int(graph.source_terminal[0]), int(graph.target_terminal[0])
    unit = "m" if weight == "length" else "s"
    matrix = graph.matrix(weight)
    dist, pred = dijkstra(matrix, directed=True, indices=s, return_predecessors=True)
    direct = float(graph.direct(ends.node[:1], ends.node[1:], unit)[0])
    if not np.isfinite(dist[t]) and not np.isfinite(direct):
        return Route(None, np.nan, np.nan, weight, "no road route between the two")
    if direct <= dist[t]:
        nodes, length_m, time_s = _direct_nodes(network, a, b)
    else:
        vertices = [t]
        while vertices[-1] != s:
            vertices.append(int(pred[vertices[-1]]))
        nodes, length_m, time_s = _expand(network, vertices[::-1], a, b, unit)
    legs = float(ends.snap_km.sum())
    lon, lat = network.node_lon[nodes], network.node_lat[nodes]
    line = shapely.linestrings(np.column_stack([lon, lat])) if len(nodes) >= 2 else None
    return Route(line, length_m / 1000.0 + legs, time_s / 60.0 + legs / settings.SITE_ACCESS_SPEED_KMH * 60.0, weight)


def _chain(network: RoadNetwork, edge: int) -> np.ndarray:
    return network.chain_nodes[network.chain_ptr[edge]:network.chain_ptr[edge + 1]]


def _best_edge(network: RoadNetwork, tail: int, head: int, unit: str) -> int:
    weights = network.edge_length_m if unit == "m" else network.edge_time_s
    candidates = np.flatnonzero((network.edge_tail == tail) & (network.edge_head == head))
    return int(candidates[np.argmin(weights[candidates])])


def _member_slot(network: RoadNetwork, node: int, unit: str, *, toward_head: int | None = None,
                 from_tail: int | None = None) -> tuple[int, int, int]:
    """Edge, chain position and slot of a pass-through node on the edge with the given head or tail.

    Of two such edges (a loop), the one with the cheaper partial stretch.
    """
    best, best_cost = (-1, -1, -1), np.inf
    offsets = network.member_offset_m if unit == "m" else network.member_offset_s
    weights = network.edge_length_m if unit == "m" else network.edge_time_s
    for slot in (0, 1):
        e = int(network.member_edge[node, slot])
        if e < 0:
            continue
        if toward_head is not None and network.edge_head[e] == toward_head:
            cost = weights[e] - offsets[node, slot]
        elif from_tail is not None and network.edge_tail[e] == from_tail:
            cost = offsets[node, slot]
        else:
            continue
        if cost < best_cost:
            best, best_cost = (e, int(network.member_pos[node, slot]), slot), cost
    return best


def _expand(network: RoadNetwork, vertices: list[int], a: int, b: int, unit: str) -> tuple[np.ndarray, float, float]:
    """Original nodes, length (m) and time (s) along a path of augmented vertices."""
    first_virtual = network.n_vertices
    parts: list[np.ndarray] = []
    length_m = time_s = 0.0
    for tail, head in zip(vertices[:-1], vertices[1:], strict=True):
        if tail >= first_virtual:  # leaving the supplier's virtual vertex along its edge
            e, pos, slot = _member_slot(network, a, unit, toward_head=head)
            parts.append(_chain(network, e)[pos:])
            length_m += network.edge_length_m[e] - network.member_offset_m[a, slot]
            time_s += network.edge_time_s[e] - network.member_offset_s[a, slot]
        elif head >= first_virtual:  # arriving at the receiver's virtual vertex
            e, pos, slot = _member_slot(network, b, unit, from_tail=tail)
            parts.append(_chain(network, e)[:pos + 1])
            length_m += network.member_offset_m[b, slot]
            time_s += network.member_offset_s[b, slot]
        else:
            e = _best_edge(network, tail, head, unit)
            parts.append(_chain(network, e))
            length_m += network.edge_length_m[e]
            time_s += network.edge_time_s[e]
    nodes = np.concatenate([parts[0]] + [p[1:] for p in parts[1:]])
    return nodes, float(length_m), float(time_s)


def _direct_nodes(network: RoadNetwork, a: int, b: int) -> tuple[np.ndarray, float, float]:
    """Nodes, length (m) and time (s) between two nodes of one edge, in driving order."""
    if a == b:
        return np.array([a]), 0.0, 0.0
    for sa in (0, 1):
        for sb in (0, 1):
            e = network.member_edge[a, sa]
            pa, pb = network.member_pos[a, sa], network.member_pos[b, sb]
            if e >= 0 and e == network.member_edge[b, sb] and pa <= pb:
                return (_chain(network, e)[pa:pb + 1],
                        float(network.member_offset_m[b, sb] - network.member_offset_m[a, sa]),
                        float(network.member_offset_s[b, sb] - network.member_offset_s[a, sa]))
    raise ValueError("nodes do not share an edge")
