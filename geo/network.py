"""Drivable road graphs from OpenStreetMap, built once and cached on disk.

:func:`road_network` returns the graph for an area from the first source
available: a graph built earlier (the cache, keyed by the file digest or the
query that produced it), a local OSM file (``.osm.pbf`` through pyrosm;
``.osm`` and ``.osm.bz2`` XML and saved ``.graphml`` through osmnx), or an
osmnx download from Overpass when asked and online.

Every source goes through the same build (:func:`network_from_edges`):

1. keep what a truck may drive on, with osmnx's ``drive`` semantics
   (:data:`geo.settings.DRIVE_EXCLUDE`), one-way streets respected;
2. give each edge its great-circle length in metres and a travel time from
   ``maxspeed`` where tagged, the road class otherwise
   (:data:`geo.settings.HIGHWAY_SPEEDS_KMH`), capped at the truck limit;
3. keep the largest strongly connected component and report what was dropped;
4. contract chains of pass-through nodes into single edges (the compressed
   graph that routing searches), keeping every original node so that
   facilities snap to the road itself and routes can be drawn in full.

The result, :class:`RoadNetwork`, is a set of flat NumPy arrays: it saves to
one ``.npz`` file and loads in a fraction of a second.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import socket
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from geo import settings
from geo._hierarchy import Hierarchy
from geo.distance import great_circle_km
from geo.errors import NetworkError

__all__ = [
    "BUILD_STAGES",
    "NETWORK_SUFFIXES",
    "area_km2",
    "cache_key",
    "file_digest",
    "network_area",
    "RoadNetwork",
    "build_network",
    "drivable",
    "edge_speeds_kmh",
    "load_network",
    "network_from_edges",
    "network_source",
    "parse_maxspeed_kmh",
    "resolve_within",
    "road_network",
    "save_network",
    "without_parallels",
]

#: Stages reported to a progress callback while a graph is built, in order.
BUILD_STAGES = ("read", "filter", "connect", "contract", "save")

#: OSM ``oneway`` values that make a way one-way, and those that reverse it (as osmnx).
_ONEWAY = {"yes", "true", "1", "-1", "reverse", "T", "F"}
_REVERSED = {"-1", "reverse", "T"}

#: Tags the build reads from ways, besides ``highway``.
_WAY_TAGS = ("oneway", "junction", "maxspeed", "access", "area", "motor_vehicle", "motorcar", "service")

_OSM_SUFFIXES = (".osm", ".xml", ".osm.bz2", ".xml.bz2")
#: File types a road network is read from (lower case), checked on the name before a file is opened.
NETWORK_SUFFIXES = (".osm.pbf", ".pbf", *_OSM_SUFFIXES, ".graphml", ".npz")
_ARRAYS = (
    "node_id", "node_lon", "node_lat", "vertex", "vertex_node",
    "edge_tail", "edge_head", "edge_length_m", "edge_time_s", "chain_ptr", "chain_nodes",
    "member_edge", "member_pos", "member_offset_m", "member_offset_s", "isolated_lon", "isolated_lat",
)

#: Arrays of floats in a saved network; every other array (``info`` aside) holds integers.
_FLOAT_ARRAYS = {"node_lon", "node_lat", "edge_length_m", "edge_time_s", "member_offset_m", "member_offset_s",
                 "isolated_lon", "isolated_lat"}
#: Arrays of a contraction hierarchy saved with a network, as ``ch_<weight>_<name>``.
_HIERARCHY_ARRAYS = ("rank", "up_ptr", "up_head", "up_weight", "down_ptr", "down_tail", "down_weight")
#: Counts in a network's ``info``: whole numbers, shown to users with thousands separators.
_INFO_COUNTS = ("ways_read", "components", "drivable_nodes", "dropped_nodes", "dropped_edges",
                "nodes", "vertices", "edges")

Progress = Callable[[str], None]


@dataclass(eq=False)
class RoadNetwork:
    """A drivable road graph: original OSM nodes plus the contracted graph that routing searches.

    Nodes are the OSM nodes of the largest strongly connected drivable
    component, in WGS84. *Vertices* are the nodes where the road branches,
    ends or changes direction rules; each *edge* joins two vertices along a
    chain of pass-through nodes. Lengths are in metres, times in seconds.

    Attributes
    ----------
    node_id, node_lon, node_lat : ndarray
        OSM id and WGS84 position of every node (``n``).
    vertex : ndarray of int32
        Vertex index of each node, -1 for a pass-through node.
    vertex_node : ndarray of int32
        Node index of each vertex.
    edge_tail, edge_head : ndarray of int32
        Vertex indices of each directed edge (``m``).
    edge_length_m, edge_time_s : ndarray of float64
        Length and truck travel time of each edge.
    chain_ptr, chain_nodes : ndarray
        Nodes along edge ``e``, tail to head inclusive, are
        ``chain_nodes[chain_ptr[e]:chain_ptr[e + 1]]``.
    member_edge, member_pos, member_offset_m, member_offset_s : ndarray, shape (n, 2)
        For a pass-through node, the (at most two: one per direction) edges
        it lies on, its position in their chain and its distance and time
        from their tail; -1 and NaN in unused slots.
    isolated_lon, isolated_lat : ndarray
        Drivable nodes left out because their roads have no link to the
        largest component (islands, closed areas), so that a facility beside
        them is reported rather than routed across the water.
    info : dict
        Where the graph came from and what the build kept and dropped.
    """

    node_id: np.ndarray
    node_lon: np.ndarray
    node_lat: np.ndarray
    vertex: np.ndarray
    vertex_node: np.ndarray
    edge_tail: np.ndarray
    edge_head: np.ndarray
    edge_length_m: np.ndarray
    edge_time_s: np.ndarray
    chain_ptr: np.ndarray
    chain_nodes: np.ndarray
    member_edge: np.ndarray
    member_pos: np.ndarray
    member_offset_m: np.ndarray
    member_offset_s: np.ndarray
    isolated_lon: np.ndarray
    isolated_lat: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)
    _derived: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def n_nodes(self) -> int:
        """Number of OSM nodes kept."""
        return len(self.node_id)

    @property
    def n_vertices(self) -> int:
        """Number of vertices of the contracted graph."""
        return len(self.vertex_node)

    @property
    def n_edges(self) -> int:
        """Number of directed edges of the contracted graph."""
        return len(self.edge_tail)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) of the nodes, those cut off included, degrees."""
        lon = np.concatenate([self.node_lon, self.isolated_lon])
        lat = np.concatenate([self.node_lat, self.isolated_lat])
        return float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())

    def segments(self) -> pd.DataFrame:
        """The uncontracted graph: one row per directed segment between consecutive OSM nodes.

        Columns ``tail`` and ``head`` (node indices), ``length_m`` and
        ``time_s``; what the contracted edges are made of, for an oracle or an
        export.
        """
        ptr, chain = self.chain_ptr, self.chain_nodes
        cum_m = np.zeros(len(chain))
        cum_s = np.zeros(len(chain))
        used = self.member_edge >= 0
        at = ptr[self.member_edge[used]] + self.member_pos[used]
        cum_m[at] = self.member_offset_m[used]
        cum_s[at] = self.member_offset_s[used]
        cum_m[ptr[1:] - 1] = self.edge_length_m
        cum_s[ptr[1:] - 1] = self.edge_time_s
        step = np.ones(len(chain), dtype=bool)
        step[ptr[:-1]] = False
        steps = np.flatnonzero(step)
        return pd.DataFrame({
            "tail": chain[steps - 1], "head": chain[steps],
            "length_m": cum_m[steps] - cum_m[steps - 1], "time_s": cum_s[steps] - cum_s[steps - 1],
        })

    def summary(self) -> str:
        """One line for a user: size, where it came from, what the build dropped."""
        dropped = self.info.get("dropped_nodes", 0)
        return (
            f"road network from {self.info.get('source', '?')}: {self.n_nodes:,} nodes "
            f"({self.n_vertices:,} junctions, {self.n_edges:,} directed edges after contraction); "
            f"{dropped:,} nodes outside the largest strongly connected component dropped"
        )


# --- tags -------------------------------------------------------------------

def drivable(edges: pd.DataFrame) -> np.ndarray:
    """Which ways a truck may use, with osmnx's ``drive`` filter.

    A way needs a ``highway`` tag, and no tag of
    :data:`geo.settings.DRIVE_EXCLUDE` may match its pattern (an unanchored
    regular-expression search, as Overpass's ``!~``). Tags missing from the
    frame, or empty, never exclude.
    """
    if "highway" not in edges:
        return np.zeros(len(edges), dtype=bool)
    keep = _tag(edges, "highway").ne("").to_numpy().copy()
    for key, pattern in settings.DRIVE_EXCLUDE.items():
        if key in edges:
            keep &= ~_tag(edges, key).str.contains(pattern, regex=True).to_numpy()
    return keep


def parse_maxspeed_kmh(values: pd.Series) -> pd.Series:
    """Speed limits in km/h from OSM ``maxspeed`` values, NaN where none is usable.

    Numbers are read as km/h, ``mph`` converted; several values (``50;30``,
    or a list from a simplified graph) give their mean, as osmnx does.
    Implicit limits such as ``FI:urban`` or ``DE:rural`` come from
    :data:`geo.settings.MAXSPEED_ZONES_KMH`; ``none``, ``signals`` and the
    like give NaN, so the road class decides.
    """
    text = values.fillna("").astype(str)
    unique = pd.Series(text.unique())
    return text.map(dict(zip(unique, unique.map(_one_maxspeed), strict=True))).astype(float)


def _one_maxspeed(value: str) -> float:
    numbers = re.findall(r"\d+(?:\.\d+)?", value)
    if numbers:
        kmh = float(np.mean([float(n) for n in numbers]))
        return kmh * 1.609344 if "mph" in value else kmh
    zone = value.strip()
    zones = settings.MAXSPEED_ZONES_KMH
    if zone in zones:
        return zones[zone]
    suffix = zone.rsplit(":", 1)[-1]
    return zones.get(suffix, np.nan)


def edge_speeds_kmh(edges: pd.DataFrame) -> np.ndarray:
    """Truck speed of each way, km/h.

    ``maxspeed`` where tagged and usable, the road class's speed otherwise
    (:data:`geo.settings.HIGHWAY_SPEEDS_KMH`), never above
    :data:`geo.settings.TRUCK_MAX_SPEED_KMH`.
    """
    by_class = _tag(edges, "highway").map(settings.HIGHWAY_SPEEDS_KMH).astype(float)
    by_class = by_class.fillna(settings.DEFAULT_ROAD_SPEED_KMH)
    speed = parse_maxspeed_kmh(edges["maxspeed"]) if "maxspeed" in edges else by_class * np.nan
    speed = speed.where(speed > 0).fillna(by_class)
    return np.minimum(speed.to_numpy(dtype=float), settings.TRUCK_MAX_SPEED_KMH)


def _tag(edges: pd.DataFrame, key: str) -> pd.Series:
    """A tag column as strings, lists (from simplified graphs) joined with ``;``."""
    column = edges[key]
    if column.dtype == object:
        column = column.map(lambda v: ";".join(map(str, v)) if isinstance(v, list) else v)
    return column.fillna("").astype(str)


# --- the build ----------------------------------------------------------------

def network_from_edges(
    nodes: pd.DataFrame,
    edges: pd.DataFrame,
    *,
    directed: bool,
    source: str,
    key: str = "",
    on_stage: Progress | None = None,
) -> RoadNetwork:
    """Build a :class:`RoadNetwork` from OSM nodes and way segments.

    Parameters
    ----------
    nodes : DataFrame
        ``id`` (OSM node id), ``lon``, ``lat`` in WGS84 degrees.
    edges : DataFrame
        One row per segment: ``u``, ``v`` (node ids), ``highway`` and any of
        the tags ``oneway``, ``junction``, ``maxspeed``, ``access``, ``area``,
        ``motor_vehicle``, ``motorcar``, ``service``; optionally ``length``
        (metres; a curved edge keeps it when longer than the straight line).
    directed : bool
        True when each row is already one direction of travel (an osmnx
        graph); False when rows are OSM way segments whose ``oneway`` and
        ``junction`` tags decide the directions, as osmnx would.
    source : str
        Where the data came from, for the graph's ``info``.
    key : str
        Cache key of the build, stored in ``info``.
    on_stage : callable, optional
        Called with each stage name of :data:`BUILD_STAGES` as it starts.

    Returns
    -------
    RoadNetwork
    """
    stage = on_stage or (lambda _name: None)
    stage("filter")
    total_ways = len(edges)
    edges = edges[drivable(edges)]
    if not directed:
        edges = _directed(edges)
    ids = pd.Index(nodes["id"].to_numpy(dtype=np.int64))
    if not ids.is_unique:
        nodes = nodes.drop_duplicates("id")
        ids = pd.Index(nodes["id"].to_numpy(dtype=np.int64))
    u = ids.get_indexer(edges["u"].to_numpy(dtype=np.int64))
    v = ids.get_indexer(edges["v"].to_numpy(dtype=np.int64))
    known = (u >= 0) & (v >= 0) & (u != v)
    lon, lat = nodes["lon"].to_numpy(dtype=float), nodes["lat"].to_numpy(dtype=float)
    speed = edge_speeds_kmh(edges)
    length = great_circle_km(lon[u[known]], lat[u[known]], lon[v[known]], lat[v[known]]) * 1000.0
    if "length" in edges:
        length = np.fmax(length, edges["length"].to_numpy(dtype=float)[known])
    u, v, speed = u[known], v[known], speed[known]
    time = length / (speed / 3.6)
    _, _, time = without_parallels(u, v, time)  # the least time, and below the least length, of parallel edges
    u, v, length = without_parallels(u, v, length)

    stage("connect")
    keep_nodes, components = _largest_scc(len(ids), u, v)
    renumber = np.full(len(ids), -1, dtype=np.int64)
    renumber[keep_nodes] = np.arange(len(keep_nodes))
    inside = (renumber[u] >= 0) & (renumber[v] >= 0)
    drivable_nodes = np.unique(np.concatenate([u, v]))
    u, v, length, time = renumber[u[inside]], renumber[v[inside]], length[inside], time[inside]
    info = {
        "source": source,
        "key": key,
        "build_version": settings.NETWORK_BUILD_VERSION,
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "ways_read": int(total_ways),
        "components": int(components),
        "drivable_nodes": int(len(drivable_nodes)),
        "dropped_nodes": int(len(drivable_nodes) - len(keep_nodes)),
        "dropped_edges": int((~inside).sum()),
        "truck_max_speed_kmh": settings.TRUCK_MAX_SPEED_KMH,
    }
    stage("contract")
    isolated = np.setdiff1d(drivable_nodes, keep_nodes)
    net = _contract(
        nodes["id"].to_numpy(dtype=np.int64)[keep_nodes], lon[keep_nodes], lat[keep_nodes],
        u, v, length, time, info, lon[isolated], lat[isolated],
    )
    net.info.update(nodes=net.n_nodes, vertices=net.n_vertices, edges=net.n_edges)
    return net


def _directed(ways: pd.DataFrame) -> pd.DataFrame:
    """Way segments to directed edges with osmnx's one-way rules."""
    oneway = _tag(ways, "oneway") if "oneway" in ways else pd.Series("", index=ways.index)
    junction = _tag(ways, "junction") if "junction" in ways else pd.Series("", index=ways.index)
    one = (oneway.isin(_ONEWAY) | (junction == "roundabout")).to_numpy()
    rev = oneway.isin(_REVERSED).to_numpy()
    forward = ways[~rev]
    backward = ways[rev | ~one].rename(columns={"u": "v", "v": "u"})
    return pd.concat([forward, backward], ignore_index=True)


def without_parallels(tail: np.ndarray, head: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One edge per (tail, head), the least weight of the parallels, sorted by tail then head."""
    order = np.lexsort((weight, head, tail))
    tail, head, weight = tail[order], head[order], weight[order]
    first = np.ones(len(tail), dtype=bool)
    first[1:] = (tail[1:] != tail[:-1]) | (head[1:] != head[:-1])
    return tail[first], head[first], weight[first]


def _largest_scc(n: int, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, int]:
    """Node indices of the largest strongly connected component, and the number of components."""
    if len(u) == 0:
        raise NetworkError("the road data holds no drivable road")
    used = np.zeros(n, dtype=bool)
    used[u] = used[v] = True
    graph = sp.csr_matrix((np.ones(len(u)), (u, v)), shape=(n, n))
    _, labels = connected_components(graph, directed=True, connection="strong")
    counts = np.bincount(labels[used])
    largest = int(counts.argmax())
    return np.flatnonzero(used & (labels == largest)), int((counts > 0).sum())


def _contract(node_id, lon, lat, u, v, length, time, info, isolated_lon, isolated_lat) -> RoadNetwork:
    """Contract chains of pass-through nodes into single edges between vertices.

    A node passes through when traffic can only go on: one way in and one
    other way out, or a two-way road with exactly two neighbours. Every chain
    that leaves a vertex is followed, all chains at once, until it reaches a
    vertex; chains that never meet one (a ring road of pass-through nodes
    alone) get one of their nodes promoted to a vertex.
    """
    n = len(node_id)
    through = _pass_through(n, u, v)
    order = np.argsort(u, kind="stable")
    first_out = np.searchsorted(u[order], np.arange(n))
    out1 = order[np.minimum(first_out, len(u) - 1)]
    out2 = order[np.minimum(first_out + 1, len(u) - 1)]
    while True:
        walked = _walk_chains(through, u, v, length, time, out1, out2)
        visited = np.zeros(n, dtype=bool)
        visited[walked["member_node"]] = True
        stranded = np.flatnonzero(through & ~visited)
        if len(stranded) == 0:
            break
        through[stranded[0]] = False
    vertex = np.full(n, -1, dtype=np.int32)
    vertex_node = np.flatnonzero(~through).astype(np.int32)
    vertex[vertex_node] = np.arange(len(vertex_node), dtype=np.int32)

    member_edge = np.full((n, 2), -1, dtype=np.int32)
    member_pos = np.full((n, 2), -1, dtype=np.int32)
    member_m = np.full((n, 2), np.nan)
    member_s = np.full((n, 2), np.nan)
    m_node = walked["member_node"]
    by_node = np.argsort(m_node, kind="stable")
    m_node = m_node[by_node]
    slot = np.zeros(len(m_node), dtype=np.int64)
    slot[1:] = m_node[1:] == m_node[:-1]
    member_edge[m_node, slot] = walked["member_chain"][by_node]
    member_pos[m_node, slot] = walked["member_pos"][by_node]
    member_m[m_node, slot] = walked["member_m"][by_node]
    member_s[m_node, slot] = walked["member_s"][by_node]
    return RoadNetwork(
        node_id=node_id, node_lon=lon, node_lat=lat, vertex=vertex, vertex_node=vertex_node,
        edge_tail=vertex[walked["tail"]], edge_head=vertex[walked["head"]],
        edge_length_m=walked["length"], edge_time_s=walked["time"],
        chain_ptr=walked["chain_ptr"], chain_nodes=walked["chain_nodes"],
        member_edge=member_edge, member_pos=member_pos, member_offset_m=member_m, member_offset_s=member_s,
        isolated_lon=isolated_lon, isolated_lat=isolated_lat, info=info,
    )


def _pass_through(n: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Nodes with one way in and another out, or exactly two two-way neighbours."""
    outdeg = np.bincount(u, minlength=n)
    indeg = np.bincount(v, minlength=n)
    out_nb = _two_neighbours(n, u, v)
    in_nb = _two_neighbours(n, v, u)
    one_way = (outdeg == 1) & (indeg == 1) & (out_nb[:, 0] != in_nb[:, 0])
    two_way = (outdeg == 2) & (indeg == 2) & (out_nb == in_nb).all(axis=1)
    return one_way | two_way


def _two_neighbours(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The first two neighbours (smallest first) of every node along a -> b; -1 where fewer."""
    order = np.lexsort((b, a))
    a, b = a[order], b[order]
    start = np.searchsorted(a, np.arange(n))
    count = np.bincount(a, minlength=n)
    first = np.where(count >= 1, b[np.minimum(start, len(b) - 1)], -1)
    second = np.where(count >= 2, b[np.minimum(start + 1, len(b) - 1)], -1)
    return np.column_stack([first, second])


def _walk_chains(through, u, v, length, time, out1, out2) -> dict[str, np.ndarray]:
    """Follow every edge that leaves a vertex through pass-through nodes to the next vertex."""
    start = np.flatnonzero(~through[u])
    k = len(start)
    chain = np.arange(k)
    node, prev = v[start].copy(), u[start].copy()
    total_m, total_s = length[start].copy(), time[start].copy()
    rec_chain, rec_node = [chain, chain], [u[start], node.copy()]
    members: dict[str, list[np.ndarray]] = {"member_node": [], "member_chain": [], "member_pos": [],
                                            "member_m": [], "member_s": []}
    active = np.flatnonzero(through[node])
    step = 1
    while len(active):
        x, p = node[active], prev[active]
        members["member_node"].append(x)
        members["member_chain"].append(active)
        members["member_pos"].append(np.full(len(active), step))
        members["member_m"].append(total_m[active])
        members["member_s"].append(total_s[active])
        e1, e2 = out1[x], out2[x]
        pick = np.where(v[e1] == p, e2, e1)
        total_m[active] += length[pick]
        total_s[active] += time[pick]
        prev[active] = x
        node[active] = v[pick]
        rec_chain.append(active)
        rec_node.append(node[active])
        active = active[through[node[active]]]
        step += 1
        if step > len(through) + 1:
            raise NetworkError("internal error: a road chain does not end")
    rec_c = np.concatenate(rec_chain)
    rec_n = np.concatenate(rec_node)
    steps = np.concatenate([np.full(len(c), i) for i, c in enumerate(rec_chain)])
    order = np.lexsort((steps, rec_c))
    ptr = np.zeros(k + 1, dtype=np.int64)
    ptr[1:] = np.cumsum(np.bincount(rec_c, minlength=k))
    walked = {key: np.concatenate(parts) if parts else np.zeros(0, dtype=float if key in ("member_m", "member_s") else np.int64)
              for key, parts in members.items()}
    walked.update(
        tail=u[start], head=node, length=total_m, time=total_s,
        chain_ptr=ptr, chain_nodes=rec_n[order].astype(np.int32),
    )
    return walked


# --- cache and files ----------------------------------------------------------

def save_network(network: RoadNetwork, path: str | Path) -> Path:
    """Write a network to one ``.npz`` file, atomically (temporary file, then rename).

    Contraction hierarchies built for it (:func:`geo.routing.hierarchy`) are
    written too, so a prebuilt network answers large jobs at once.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {name: getattr(network, name) for name in _ARRAYS}
    arrays["info"] = np.array(json.dumps(network.info))
    for weight in ("length", "time"):
        built = network._derived.get(f"hierarchy:{weight}")
        if built is not None:
            arrays.update({f"ch_{weight}_{name}": values for name, values in built.arrays().items()})
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_network(path: str | Path) -> RoadNetwork:
    """Read a network written by :func:`save_network`, checked before it is trusted.

    The file must be what :func:`save_network` writes: a zip of uncompressed
    ``.npy`` arrays, read without pickles. Each array's header is checked
    against the bytes its zip member holds before the array is allocated, so
    memory stays within the size of the file (a 4 kB file cannot claim 8 TiB);
    then every array's type, shape and index range, so that a damaged or
    crafted file is refused here rather than failing inside routing.

    Raises
    ------
    NetworkError
        One line naming the file and the cause: not a zip, an array missing,
        larger than its file allows, of the wrong type or shape, indices out
        of range, ``info`` not a JSON object, or built by another version.
    """
    path = Path(path)
    arrays = _read_npz(path)
    info = _network_info(path, arrays.pop("info"))
    if info.get("build_version") != settings.NETWORK_BUILD_VERSION:
        raise NetworkError(
            f"{path}: built by an older version of the road-network build "
            f"({info.get('build_version')!r}, now {settings.NETWORK_BUILD_VERSION!r}); rebuild it"
        )
    problem = _layout_problem(arrays)
    if problem:
        raise _not_a_network(path, problem)
    network = RoadNetwork(**{name: arrays[name] for name in _ARRAYS}, info=info)
    for weight in ("length", "time"):
        if f"ch_{weight}_rank" in arrays:
            parts = {name: arrays[f"ch_{weight}_{name}"] for name in _HIERARCHY_ARRAYS}
            network._derived[f"hierarchy:{weight}"] = Hierarchy.from_arrays(parts)
    return network


def _not_a_network(path: Path, cause: str) -> NetworkError:
    return NetworkError(f"{path}: not a road network built by this tool ({cause})")


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a saved network by name (``info`` included), each checked against its zip member first."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = {m.filename.removesuffix(".npy"): m for m in archive.infolist() if m.filename.endswith(".npy")}
            wanted = [*_ARRAYS, "info", *(f"ch_{weight}_{name}" for weight in ("length", "time")
                                          for name in _HIERARCHY_ARRAYS if f"ch_{weight}_rank" in members)]
            missing = [name for name in wanted if name not in members]
            if missing:
                raise _not_a_network(path, f"no array {missing[0]!r}")
            claimed = sum(members[name].compress_size for name in wanted)
            if claimed > path.stat().st_size:
                raise _not_a_network(path, f"its arrays claim {claimed:,} bytes, more than the file's own size")
            for name in wanted:
                _check_member(path, archive, members[name], name)
            arrays = {}
            for name in wanted:
                with archive.open(members[name]) as stream:
                    arrays[name] = np.lib.format.read_array(stream, allow_pickle=False)
            return arrays
    except NetworkError:
        raise
    except zipfile.BadZipFile as exc:
        raise _not_a_network(path, f"not a zip archive: {exc}") from exc
    except (OSError, EOFError, ValueError, RuntimeError, NotImplementedError) as exc:
        raise _not_a_network(path, f"cannot be read: {exc}") from exc


def _check_member(path: Path, archive: zipfile.ZipFile, member: zipfile.ZipInfo, name: str) -> None:
    """Refuse an array whose header claims other bytes than its zip member holds, before it is allocated."""
    if member.compress_type != zipfile.ZIP_STORED or member.compress_size != member.file_size:
        raise _not_a_network(path, f"array {name!r} is compressed; networks are saved uncompressed")
    with archive.open(member) as stream:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise _not_a_network(path, f"array {name!r} has .npy format version {version}, not 1.0 or 2.0")
        data_bytes = member.file_size - stream.tell()
    if dtype.hasobject:
        raise _not_a_network(path, f"array {name!r} holds Python objects")
    if any(size < 0 for size in shape):
        raise _not_a_network(path, f"array {name!r} has the shape {shape}")
    needed = math.prod(shape) * dtype.itemsize
    if needed != data_bytes:
        raise _not_a_network(path, f"array {name!r} of shape {shape} and type {dtype} needs {needed:,} bytes, "
                                   f"the file holds {data_bytes:,}")


def _network_info(path: Path, array: np.ndarray) -> dict[str, Any]:
    """The ``info`` of a saved network: a JSON object in a text array, its counts whole numbers."""
    if array.dtype.kind != "U" or array.ndim != 0:
        raise _not_a_network(path, f"'info' is an array of {array.dtype} with shape {array.shape}, not one text")
    try:
        info = json.loads(str(array))
    except (ValueError, RecursionError) as exc:
        raise _not_a_network(path, f"'info' is not JSON: {exc}") from exc
    if not isinstance(info, dict):
        raise _not_a_network(path, f"'info' is a JSON {type(info).__name__}, not an object")
    wrong = [key for key in _INFO_COUNTS if key in info and type(info[key]) is not int]
    if not isinstance(info.get("source", ""), str):
        wrong.append("source")
    if wrong:
        raise _not_a_network(path, f"'info' holds {wrong[0]!r} as {type(info[wrong[0]]).__name__}")
    return info


def _layout_problem(arrays: dict[str, np.ndarray]) -> str:
    """What is wrong with the arrays of a network (type, shape, index range), or '' when nothing is."""
    for name, array in arrays.items():
        kind = "f" if name in _FLOAT_ARRAYS or name.endswith("_weight") else "iu"
        if array.dtype.kind not in kind:
            return f"array {name!r} is of type {array.dtype}, not {'floats' if kind == 'f' else 'integers'}"
    n, k, m = len(arrays["node_id"]), len(arrays["vertex_node"]), len(arrays["edge_tail"])
    shapes = {name: (n,) for name in ("node_id", "node_lon", "node_lat", "vertex")}
    shapes |= {name: (n, 2) for name in ("member_edge", "member_pos", "member_offset_m", "member_offset_s")}
    shapes |= {name: (m,) for name in ("edge_tail", "edge_head", "edge_length_m", "edge_time_s")}
    shapes |= {"vertex_node": (k,), "chain_ptr": (m + 1,), "chain_nodes": (len(arrays["chain_nodes"]),),
               "isolated_lon": (len(arrays["isolated_lon"]),), "isolated_lat": (len(arrays["isolated_lon"]),)}
    for weight in ("length", "time"):
        if f"ch_{weight}_rank" in arrays:
            up, down = len(arrays[f"ch_{weight}_up_head"]), len(arrays[f"ch_{weight}_down_tail"])
            shapes |= {f"ch_{weight}_{name}": shape for name, shape in (
                ("rank", (k,)), ("up_ptr", (k + 1,)), ("up_head", (up,)), ("up_weight", (up,)),
                ("down_ptr", (k + 1,)), ("down_tail", (down,)), ("down_weight", (down,)))}
    for name, shape in shapes.items():
        if arrays[name].shape != shape:
            return f"array {name!r} has the shape {arrays[name].shape}, not {shape}"
    return _index_problem(arrays, n, k, m)


def _index_problem(arrays: dict[str, np.ndarray], n: int, k: int, m: int) -> str:
    """What index of a network points outside the arrays it indexes, or '' when none does."""
    ranges = {"vertex": (-1, k), "vertex_node": (0, n), "edge_tail": (0, k), "edge_head": (0, k),
              "chain_nodes": (0, n), "member_edge": (-1, m)}
    pointers = {"chain_ptr": len(arrays["chain_nodes"])}
    for weight in ("length", "time"):
        if f"ch_{weight}_rank" in arrays:
            ranges |= {f"ch_{weight}_rank": (0, k), f"ch_{weight}_up_head": (0, k), f"ch_{weight}_down_tail": (0, k)}
            pointers |= {f"ch_{weight}_up_ptr": len(arrays[f"ch_{weight}_up_head"]),
                         f"ch_{weight}_down_ptr": len(arrays[f"ch_{weight}_down_tail"])}
    for name, (low, high) in ranges.items():
        values = arrays[name]
        if values.size and (values.min() < low or values.max() >= high):
            return f"array {name!r} holds indices outside {low}..{high - 1}"
    for name, end in pointers.items():
        ptr = arrays[name]
        if ptr[0] != 0 or ptr[-1] != end or (np.diff(ptr) < 0).any():
            return f"array {name!r} does not run from 0 to {end} in order"
    for name in ("edge_length_m", "edge_time_s", *(name for name in arrays if name.endswith("_weight"))):
        if not (arrays[name] >= 0).all():
            return f"array {name!r} holds a negative or missing value"
    return ""


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_key(kind: str, what: str) -> str:
    """Key of a built graph: what produced it, the drive filter, the speeds and the build version."""
    recipe = json.dumps(
        [kind, what, settings.DRIVE_EXCLUDE, settings.HIGHWAY_SPEEDS_KMH, settings.MAXSPEED_ZONES_KMH,
         settings.TRUCK_MAX_SPEED_KMH, settings.DEFAULT_ROAD_SPEED_KMH, settings.NETWORK_BUILD_VERSION],
        sort_keys=True,
    )
    return hashlib.sha256(recipe.encode()).hexdigest()[:24]


def _cache_path(cache_dir: Path, key: str) -> Path:
    return cache_dir / "roads" / f"{key}.npz"


# --- sources ----------------------------------------------------------------------

def build_network(source: str | Path, *, within: str | Path | None = None,
                  on_stage: Progress | None = None) -> RoadNetwork:
    """Build a network from a local file: ``.osm.pbf``, ``.osm``/``.osm.bz2`` XML, ``.graphml`` or a built ``.npz``.

    The file's type is checked on its name before the file is read or hashed;
    with ``within``, a file outside that folder is refused (see :func:`resolve_within`).
    """
    path = network_source(source, within=within)
    if path.name.lower().endswith(".npz"):
        return load_network(path)
    return _build_file(path, cache_key("file", file_digest(path)), on_stage)


def resolve_within(source: str | Path, folder: str | Path) -> Path:
    """The path of ``source`` with links and ``..`` resolved, refused unless it lies inside ``folder``.

    A relative ``source`` is taken inside ``folder``. Nothing is opened and the
    refusal reads the same whether the file exists or not, so the answer
    cannot be used to learn which files a server holds; the path returned is
    the resolved one, so what is read is what was checked.

    Raises
    ------
    NetworkError
        ``source`` resolves outside ``folder``, or cannot be resolved at all
        (a NUL byte, a loop of links).
    """
    msg = f"{source}: not in the road-network folder {folder}; choose a file there"
    try:
        root = Path(folder).resolve()
        path = (root / source).resolve()
    except (OSError, RuntimeError, ValueError) as exc:
        raise NetworkError(msg) from exc
    if not path.is_relative_to(root):
        raise NetworkError(msg)
    return path


def network_source(source: str | Path, *, within: str | Path | None = None) -> Path:
    """The road-network file to read: its type known by name, inside ``within`` when given, and present.

    The checks run in that order, so a file of an unknown type is refused
    before it is read or hashed, and one outside the folder before anything
    about it is looked up.

    Returns
    -------
    Path
        The file, resolved when ``within`` is given.

    Raises
    ------
    NetworkError
        Unknown type, outside ``within``, or no such file.
    """
    path = Path(source)
    if not path.name.lower().endswith(NETWORK_SUFFIXES):
        raise NetworkError(
            f"{path}: unknown road-network format; use .osm.pbf, .osm, .osm.bz2, .graphml "
            "or a .npz built by 'python -m geo network build'"
        )
    if within is not None:
        path = resolve_within(path, within)
    if not path.is_file():
        raise NetworkError(f"{source}: no such road-network file")
    return path


def _build_file(path: Path, key: str, on_stage: Progress | None) -> RoadNetwork:
    """Read an OSM or GraphML file by its suffix and build it; ``key`` is its cache key."""
    name = path.name.lower()
    (on_stage or (lambda _name: None))("read")
    if name.endswith(".pbf"):
        nodes, edges = _read_pbf(path)
        return network_from_edges(nodes, edges, directed=False, source=path.name, key=key, on_stage=on_stage)
    if name.endswith(_OSM_SUFFIXES) or name.endswith(".graphml"):
        nodes, edges = _read_with_osmnx(path)
        return network_from_edges(nodes, edges, directed=True, source=path.name, key=key, on_stage=on_stage)
    raise NetworkError(f"{path}: unknown road-network format")


def road_network(
    *,
    source: str | Path | None = None,
    within: str | Path | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    download: bool = False,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    on_stage: Progress | None = None,
) -> RoadNetwork:
    """The drivable road graph for a file or an area, from the first source available.

    1. the on-disk cache, keyed by the file's digest or the area's query;
    2. the local file ``source`` (built, then cached);
    3. with ``download=True``, osmnx's Overpass download of ``bbox``
       (osmnx's own response cache on), then cached.

    Parameters
    ----------
    source : path, optional
        ``.osm.pbf``, ``.osm``, ``.osm.bz2``, ``.graphml`` or a built ``.npz``;
        its type is checked on the name before the file is read or hashed.
    within : path, optional
        Folder ``source`` must lie in (after resolving links and ``..``); a
        file outside it is refused before it is looked at
        (:func:`resolve_within`). For a server that lets visitors choose.
    bbox : (west, south, east, north), optional
        Area in WGS84 degrees, for the cache lookup and the download.
    download : bool
        Allow the Overpass download when nothing local is available.
    cache_dir : path, optional
        Defaults to :data:`geo.settings.CACHE_DIR`.
    use_cache : bool
        Read and write the cache.
    on_stage : callable, optional
        Progress callback, called with each of :data:`BUILD_STAGES`.

    Returns
    -------
    RoadNetwork

    Raises
    ------
    NetworkError
        No source given and nothing cached, the machine is offline, or the
        file is of an unknown type, outside ``within``, missing or unreadable.
    """
    cache = Path(cache_dir) if cache_dir is not None else settings.CACHE_DIR
    stage = on_stage or (lambda _name: None)
    if source is not None:
        path = network_source(source, within=within)
        if path.name.lower().endswith(".npz"):
            return load_network(path)
        key = cache_key("file", file_digest(path))
        return _cached(cache, key, use_cache, lambda: _build_file(path, key, on_stage), stage)
    if bbox is None:
        raise NetworkError("no road-network file and no area given")
    area = tuple(round(float(c), 3) for c in bbox)
    key = cache_key("overpass", json.dumps(area))
    cached = _cache_path(cache, key)
    if use_cache and cached.is_file():
        return load_network(cached)
    if not download:
        raise NetworkError(
            "no road network: no file given and none cached for this area "
            f"({area[0]}, {area[1]}, {area[2]}, {area[3]})"
        )
    if area_km2(area) > settings.DOWNLOAD_MAX_AREA_KM2:
        raise NetworkError(
            f"the area ({area[0]}, {area[1]}, {area[2]}, {area[3]}) covers about {area_km2(area):,.0f} km2, more "
            f"than the {settings.DOWNLOAD_MAX_AREA_KM2:,.0f} km2 downloaded from Overpass at once; use a regional "
            "extract file (.osm.pbf, for example from Geofabrik) instead"
        )
    return _cached(cache, key, use_cache, lambda: _download(area, key, cache, stage), stage)


def _cached(cache: Path, key: str, use_cache: bool, build: Callable[[], RoadNetwork], stage: Progress) -> RoadNetwork:
    cached = _cache_path(cache, key)
    if use_cache and cached.is_file():
        try:
            return load_network(cached)
        except NetworkError:
            cached.unlink(missing_ok=True)
    network = build()
    if use_cache:
        stage("save")
        save_network(network, cached)
    return network


def _read_pbf(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Nodes and way segments of a ``.osm.pbf`` file, through pyrosm."""
    from pyrosm import OSM

    try:
        osm = OSM(str(path))
        result = osm.get_network(network_type="driving", nodes=True, extra_attributes=["service"])
    except Exception as exc:  # pyrosm raises bare exceptions on corrupt files
        raise NetworkError(f"{path}: cannot read OSM PBF ({exc})") from exc
    if result is None or result[0] is None:
        raise NetworkError(f"{path}: the file holds no drivable road")
    nodes, ways = result
    nodes = pd.DataFrame({"id": nodes["id"].to_numpy(), "lon": nodes["lon"].to_numpy(), "lat": nodes["lat"].to_numpy()})
    columns = ["u", "v", "highway", *[t for t in _WAY_TAGS if t in ways]]
    return nodes, pd.DataFrame(ways[columns])


@contextmanager
def _osmnx_settings(**values: Any) -> Iterator[Any]:
    """osmnx with some settings changed for one call, restored afterwards."""
    import osmnx as ox

    old = {name: getattr(ox.settings, name) for name in values}
    try:
        for name, value in values.items():
            setattr(ox.settings, name, value)
        yield ox
    finally:
        for name, value in old.items():
            setattr(ox.settings, name, value)


def _read_with_osmnx(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Nodes and directed edges of an OSM XML file or an osmnx GraphML file."""
    import osmnx as ox

    tags = sorted(set(ox.settings.useful_tags_way) | set(_WAY_TAGS) | {"highway"})
    try:
        with _osmnx_settings(useful_tags_way=tags, log_console=False) as ox:
            if path.name.lower().endswith(".graphml"):
                graph = ox.load_graphml(path)
            else:
                graph = ox.graph_from_xml(path, simplify=False, retain_all=True)
    except NetworkError:
        raise
    except Exception as exc:  # osmnx and the XML parser raise many kinds
        raise NetworkError(f"{path}: cannot read the road network ({exc})") from exc
    return _graph_tables(graph)


def _graph_tables(graph: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Nodes and directed edges of an osmnx MultiDiGraph as two frames."""
    node_ids = np.fromiter(graph.nodes, dtype=np.int64, count=graph.number_of_nodes())
    data = graph.nodes
    nodes = pd.DataFrame({
        "id": node_ids,
        "lon": np.fromiter((data[n]["x"] for n in node_ids), dtype=float, count=len(node_ids)),
        "lat": np.fromiter((data[n]["y"] for n in node_ids), dtype=float, count=len(node_ids)),
    })
    columns = ["u", "v", "length", "highway", *_WAY_TAGS]
    rows = [(u, v, d.get("length", np.nan), *(d.get(t) for t in columns[3:]))
            for u, v, d in graph.edges(data=True)]
    edges = pd.DataFrame(rows, columns=columns)
    edges["length"] = pd.to_numeric(edges["length"], errors="coerce")
    return nodes, edges


def _download(area: tuple[float, ...], key: str, cache: Path, stage: Progress) -> RoadNetwork:
    """Download the drivable roads of an area from Overpass with osmnx, failing fast when offline."""
    host = "overpass-api.de"
    try:
        socket.create_connection((host, 443), timeout=5).close()
    except OSError as exc:
        raise NetworkError(
            f"cannot download the road network: {host} is unreachable ({exc}); this machine seems "
            "to be offline. Use a local OSM file instead (the CLI's --network, or a file on the app's "
            "Data page), for example a Geofabrik country extract (.osm.pbf)"
        ) from exc
    west, south, east, north = area
    stage("read")
    try:
        with _osmnx_settings(
            use_cache=True, cache_folder=str(cache / "overpass"), requests_timeout=settings.OVERPASS_TIMEOUT_S,
            useful_tags_way=sorted(set(_WAY_TAGS) | {"highway", "name", "ref"}), log_console=False,
        ) as ox:
            graph = ox.graph_from_bbox((west, south, east, north), network_type="drive",
                                       simplify=False, retain_all=True, truncate_by_edge=True)
    except Exception as exc:  # requests, Overpass and osmnx errors alike
        raise NetworkError(f"the road-network download from Overpass failed: {exc}") from exc
    nodes, edges = _graph_tables(graph)
    return network_from_edges(nodes, edges, directed=True, source=f"Overpass {area}", key=key, on_stage=stage)


def network_area(lon: np.ndarray, lat: np.ndarray, *, margin_km: float | None = None) -> tuple[float, float, float, float]:
    """Bounding box (west, south, east, north) of points plus a margin in km, degrees."""
    margin = settings.DOWNLOAD_MARGIN_KM if margin_km is None else margin_km
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    dlat = margin / 111.2
    dlon = margin / (111.2 * max(np.cos(np.radians(np.abs(lat).max())), 0.05))
    return (float(lon.min() - dlon), float(lat.min() - dlat), float(lon.max() + dlon), float(lat.max() + dlat))


def area_km2(bbox: tuple[float, float, float, float]) -> float:
    """Area of a (west, south, east, north) box in degrees, in km2 (on a sphere; within a few percent)."""
    west, south, east, north = bbox
    earth_km = 6371.0088
    band = np.sin(np.radians(north)) - np.sin(np.radians(south))
    return float(earth_km**2 * np.radians(east - west) * band)
