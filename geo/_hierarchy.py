"""Contraction hierarchy and bucket many-to-many search, compiled with numba.

A bounded Dijkstra (:mod:`geo._dijkstra`) settles every vertex within the
cutoff of each source: on a region-sized graph that is hundreds of thousands
of vertices per source, and the search waits on memory for each one. A
contraction hierarchy (Geisberger et al., 2008) moves that work into a
preprocessing step done once per graph and weight:

- vertices are removed ("contracted") one at a time, least important first,
  and a shortcut edge ``u -> w`` is added whenever the only shortest path
  from ``u`` to ``w`` ran through the removed vertex (checked by a small
  "witness" search);
- every shortest path then has an equal-length path that only climbs in
  contraction order and then only descends, so it is found by meeting an
  upward search from the source with an upward search, on reversed edges,
  from the target.

For many-to-many (Knopp et al., 2007) each target's upward search leaves
``(target, distance)`` entries in buckets at the vertices it reaches; each
source's upward search then scans the buckets of the vertices it reaches.
Both searches see a few hundred to a few thousand vertices instead of the
whole ball.

The build is sequential and plain: node order by edge difference plus
contracted neighbours, re-evaluated lazily when a vertex reaches the top of
the queue; witness searches limited in settled vertices, which can only add
unneeded shortcuts, never drop a needed one.
"""

from __future__ import annotations

import numba
import numpy as np

from geo._dijkstra import _pop, _push

__all__ = ["Hierarchy", "build_hierarchy", "many_to_many"]

#: Vertices a witness search may settle before it gives up (and keeps the shortcut).
#: On road-like grids 200 gave a third fewer shortcuts than 60, a faster build
#: (the top of the hierarchy stays sparse) and faster queries; 500 or more
#: changed nothing further.
_WITNESS_SETTLED = 200
#: Weight of the edge difference (shortcuts added - edges removed) against the
#: number of already contracted neighbours in a vertex's contraction priority.
_EDGE_DIFFERENCE_WEIGHT = 2.0
#: Entries of the witness search's heap; a fuller heap stops the search early, which is safe.
_WITNESS_HEAP = 1 << 16


class Hierarchy:
    """A built contraction hierarchy: the upward graph in both directions.

    Attributes
    ----------
    rank : ndarray of int64
        Contraction order of each vertex (0 is contracted first).
    up_ptr, up_head, up_weight : ndarray
        CSR of the edges from each vertex to higher-ranked vertices (original
        edges and shortcuts).
    down_ptr, down_tail, down_weight : ndarray
        CSR, per vertex ``v``, of the edges ``u -> v`` from higher-ranked
        vertices ``u``: the backward search walks them from ``v`` to ``u``.
    """

    def __init__(self, rank, up_ptr, up_head, up_weight, down_ptr, down_tail, down_weight) -> None:
        self.rank = rank
        self.up_ptr, self.up_head, self.up_weight = up_ptr, up_head, up_weight
        self.down_ptr, self.down_tail, self.down_weight = down_ptr, down_tail, down_weight

    @property
    def n_vertices(self) -> int:
        return len(self.rank)

    @property
    def n_edges(self) -> int:
        """Edges of the hierarchy (original and shortcuts); each is listed once, at its lower-ranked end."""
        return len(self.up_head) + len(self.down_tail)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array by name, for saving beside the network."""
        return {"rank": self.rank, "up_ptr": self.up_ptr, "up_head": self.up_head, "up_weight": self.up_weight,
                "down_ptr": self.down_ptr, "down_tail": self.down_tail, "down_weight": self.down_weight}

    @classmethod
    def from_arrays(cls, arrays) -> Hierarchy:
        return cls(*(np.asarray(arrays[k]) for k in
                     ("rank", "up_ptr", "up_head", "up_weight", "down_ptr", "down_tail", "down_weight")))


def build_hierarchy(indptr: np.ndarray, heads: np.ndarray, weights: np.ndarray) -> Hierarchy:
    """Contract a directed graph given in CSR form (no parallel edges; weights >= 0).

    Self-loops are ignored: they are never on a shortest path.
    """
    indptr = np.asarray(indptr, dtype=np.int64)
    heads = np.asarray(heads, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float64)
    n = len(indptr) - 1
    tails = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
    by_head = np.argsort(heads, kind="stable")
    in_ptr = np.searchsorted(heads[by_head], np.arange(n + 1)).astype(np.int64)
    rank, out_start, out_len, out_to, out_w, in_start, in_len, in_to, in_w = _contract_all(
        indptr, heads, weights, in_ptr, tails[by_head], weights[by_head])
    up_ptr, up_head, up_weight = _frozen_lists(out_start, out_len, out_to, out_w)
    down_ptr, down_tail, down_weight = _frozen_lists(in_start, in_len, in_to, in_w)
    return Hierarchy(rank, up_ptr, up_head.astype(np.int32), up_weight,
                     down_ptr, down_tail.astype(np.int32), down_weight)


def _frozen_lists(start, length, to, weight) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each vertex's adjacency list, as it was when the vertex was contracted, in CSR form."""
    ptr = np.zeros(len(start) + 1, dtype=np.int64)
    np.cumsum(length, out=ptr[1:])
    index = np.repeat(start - ptr[:-1], length) + np.arange(ptr[-1])
    return ptr, to[index], weight[index]


# --- contraction --------------------------------------------------------------------

@numba.njit(cache=True)
def _lists_from_csr(ptr, to, weight, spare):
    """Growable adjacency lists (start, length, capacity per vertex) in one pool, from CSR."""
    n = len(ptr) - 1
    start = np.empty(n, dtype=np.int64)
    length = np.zeros(n, dtype=np.int64)
    cap = np.empty(n, dtype=np.int64)
    pool = 0
    for v in range(n):
        start[v] = pool
        cap[v] = ptr[v + 1] - ptr[v] + spare
        pool += cap[v]
    pool_to = np.empty(pool * 2, dtype=np.int64)
    pool_w = np.empty(pool * 2, dtype=np.float64)
    for v in range(n):
        for k in range(ptr[v], ptr[v + 1]):
            if to[k] != v:
                pool_to[start[v] + length[v]] = to[k]
                pool_w[start[v] + length[v]] = weight[k]
                length[v] += 1
    return start, length, cap, pool_to, pool_w, pool


@numba.njit(cache=True)
def _upsert(start, length, cap, pool_to, pool_w, used, v, x, w):
    """Set the edge v -> x to weight w unless it is already lighter; moves v's list when full.

    Returns the (possibly reallocated) pool arrays and the pool's used size.
    """
    s = start[v]
    for k in range(s, s + length[v]):
        if pool_to[k] == x:
            if w < pool_w[k]:
                pool_w[k] = w
            return pool_to, pool_w, used
    if length[v] == cap[v]:
        new_cap = max(4, 2 * cap[v])
        if used + new_cap > len(pool_to):
            size = max(len(pool_to) * 3 // 2, used + new_cap)
            grown_to = np.empty(size, dtype=np.int64)
            grown_w = np.empty(size, dtype=np.float64)
            grown_to[:used] = pool_to[:used]
            grown_w[:used] = pool_w[:used]
            pool_to, pool_w = grown_to, grown_w
        pool_to[used:used + length[v]] = pool_to[s:s + length[v]]
        pool_w[used:used + length[v]] = pool_w[s:s + length[v]]
        start[v] = used
        cap[v] = new_cap
        used += new_cap
    k = start[v] + length[v]
    pool_to[k] = x
    pool_w[k] = w
    length[v] += 1
    return pool_to, pool_w, used


@numba.njit(cache=True, inline="always")
def _remove(start, length, pool_to, pool_w, v, x):
    """Drop the edge v -> x from v's list (swap with the last entry)."""
    s = start[v]
    last = s + length[v] - 1
    for k in range(s, last + 1):
        if pool_to[k] == x:
            pool_to[k] = pool_to[last]
            pool_w[k] = pool_w[last]
            length[v] -= 1
            return


@numba.njit(cache=True)
def _witness(source, skip, limit, n_wanted, wanted, out_start, out_len, out_to, out_w, dist, touched, heap_d, heap_v):
    """Bounded search from ``source`` avoiding ``skip``; returns how many vertices it touched.

    ``dist`` holds, for the touched vertices, the length of some path from
    ``source`` that avoids ``skip`` (exact for those settled): enough to prove a
    shortcut unneeded, never to wrongly claim one is.
    """
    dist[source] = 0.0
    touched[0] = source
    n_touched = 1
    size = _push(heap_d, heap_v, 0, 0.0, source)
    settled = 0
    while size > 0:
        d, v, size = _pop(heap_d, heap_v, size)
        if d > dist[v]:
            continue
        settled += 1
        if settled > _WITNESS_SETTLED:
            break
        if wanted[v]:
            n_wanted -= 1
            if n_wanted == 0:
                break
        for k in range(out_start[v], out_start[v] + out_len[v]):
            x = out_to[k]
            if x == skip:
                continue
            nd = d + out_w[k]
            if nd < dist[x] and nd <= limit:
                if dist[x] == np.inf:
                    touched[n_touched] = x
                    n_touched += 1
                dist[x] = nd
                if size < len(heap_d):
                    size = _push(heap_d, heap_v, size, nd, np.int32(x))
    return n_touched


@numba.njit(cache=True)
def _shortcuts(v, out_start, out_len, out_to, out_w, in_start, in_len, in_to, in_w,
               dist, wanted, touched, heap_d, heap_v, found_u, found_x, found_w):
    """The shortcuts contracting ``v`` needs, written to the found_* arrays; returns their number.

    Returns -1 when the found_* arrays are too small (the caller grows them
    and asks again).
    """
    n_found = 0
    o0, on = out_start[v], out_len[v]
    if on == 0:
        return 0
    longest_out = 0.0
    for k in range(o0, o0 + on):
        longest_out = max(longest_out, out_w[k])
        wanted[out_to[k]] = True
    for j in range(in_start[v], in_start[v] + in_len[v]):
        u = in_to[j]
        wu = in_w[j]
        n_touched = _witness(u, v, wu + longest_out, on, wanted, out_start, out_len, out_to, out_w, dist,
                             touched, heap_d, heap_v)
        for k in range(o0, o0 + on):
            x = out_to[k]
            via = wu + out_w[k]
            if x != u and dist[x] > via:
                if n_found == len(found_u):
                    n_found = -1
                    break
                found_u[n_found] = u
                found_x[n_found] = x
                found_w[n_found] = via
                n_found += 1
        for k in range(n_touched):
            dist[touched[k]] = np.inf
        if n_found < 0:
            break
    for k in range(o0, o0 + on):
        wanted[out_to[k]] = False
    return n_found


@numba.njit(cache=True)
def _shortcuts_growing(v, out_start, out_len, out_to, out_w, in_start, in_len, in_to, in_w,
                       dist, wanted, touched, heap_d, heap_v, found_u, found_x, found_w):
    """:func:`_shortcuts`, with the found_* arrays doubled until they hold them all; returns (count, arrays)."""
    while True:
        m = _shortcuts(v, out_start, out_len, out_to, out_w, in_start, in_len, in_to, in_w,
                       dist, wanted, touched, heap_d, heap_v, found_u, found_x, found_w)
        if m >= 0:
            return m, found_u, found_x, found_w
        size = 2 * len(found_u)
        found_u = np.empty(size, dtype=np.int64)
        found_x = np.empty(size, dtype=np.int64)
        found_w = np.empty(size, dtype=np.float64)


@numba.njit(cache=True)
def _contract_all(out_ptr, out_heads, out_weights, in_ptr, in_tails, in_weights):
    n = len(out_ptr) - 1
    out_start, out_len, out_cap, out_to, out_w, out_used = _lists_from_csr(out_ptr, out_heads, out_weights, 2)
    in_start, in_len, in_cap, in_to, in_w, in_used = _lists_from_csr(in_ptr, in_tails, in_weights, 2)
    dist = np.full(n, np.inf)
    wanted = np.zeros(n, dtype=np.bool_)
    touched = np.empty(n, dtype=np.int64)
    heap_d = np.empty(_WITNESS_HEAP, dtype=np.float64)
    heap_v = np.empty(_WITNESS_HEAP, dtype=np.int32)
    found_u = np.empty(1024, dtype=np.int64)
    found_x = np.empty(1024, dtype=np.int64)
    found_w = np.empty(1024, dtype=np.float64)
    contracted_nb = np.zeros(n, dtype=np.int64)
    priority = np.empty(n, dtype=np.float64)
    rank = np.full(n, -1, dtype=np.int64)

    queue_d = np.empty(2 * n + 16, dtype=np.float64)
    queue_v = np.empty(2 * n + 16, dtype=np.int32)
    size = 0
    for v in range(n):
        m, found_u, found_x, found_w = _shortcuts_growing(v, out_start, out_len, out_to, out_w, in_start, in_len,
                                                          in_to, in_w, dist, wanted, touched, heap_d, heap_v,
                                                          found_u, found_x, found_w)
        priority[v] = _EDGE_DIFFERENCE_WEIGHT * (m - out_len[v] - in_len[v])
        size = _push(queue_d, queue_v, size, priority[v], np.int32(v))

    order = 0
    while size > 0:
        p, v, size = _pop(queue_d, queue_v, size)
        if rank[v] >= 0 or p != priority[v]:
            continue
        m, found_u, found_x, found_w = _shortcuts_growing(v, out_start, out_len, out_to, out_w, in_start, in_len,
                                                          in_to, in_w, dist, wanted, touched, heap_d, heap_v,
                                                          found_u, found_x, found_w)
        now = _EDGE_DIFFERENCE_WEIGHT * (m - out_len[v] - in_len[v]) + contracted_nb[v]
        if size > 0 and now > queue_d[0]:
            # lazy update: someone else is cheaper now
            priority[v] = now
            if size == len(queue_d):
                grown_d = np.empty(2 * size, dtype=np.float64)
                grown_v = np.empty(2 * size, dtype=np.int32)
                grown_d[:size] = queue_d[:size]
                grown_v[:size] = queue_v[:size]
                queue_d, queue_v = grown_d, grown_v
            size = _push(queue_d, queue_v, size, now, np.int32(v))
            continue
        rank[v] = order
        order += 1
        for i in range(m):
            out_to, out_w, out_used = _upsert(out_start, out_len, out_cap, out_to, out_w, out_used,
                                              found_u[i], found_x[i], found_w[i])
            in_to, in_w, in_used = _upsert(in_start, in_len, in_cap, in_to, in_w, in_used,
                                           found_x[i], found_u[i], found_w[i])
        # v's own lists freeze as they are: its upward edges; its neighbours forget it
        for k in range(out_start[v], out_start[v] + out_len[v]):
            x = out_to[k]
            _remove(in_start, in_len, in_to, in_w, x, v)
            contracted_nb[x] += 1
        for k in range(in_start[v], in_start[v] + in_len[v]):
            u = in_to[k]
            _remove(out_start, out_len, out_to, out_w, u, v)
            contracted_nb[u] += 1
    return rank, out_start, out_len, out_to, out_w, in_start, in_len, in_to, in_w


# --- queries ------------------------------------------------------------------------

@numba.njit(nogil=True, cache=True)
def _upward(first, last, start_v, start_d, limit, ptr, to, weight, back_ptr, back_to, back_weight,
            dist, stalled, touched, heap_d, heap_v):
    """Dijkstra up the hierarchy from several start vertices; returns how many vertices it reached.

    On return ``dist`` is final for every touched vertex that is not
    ``stalled`` (all lie within ``limit``). Stall-on-demand: a vertex that a
    higher-ranked vertex already reached reaches more cheaply, through an edge
    down to it (``back_*``), cannot lie on a shortest up-down path, so its
    edges are not followed and it is marked stalled.
    """
    n_touched = 0
    size = 0
    for i in range(first, last):
        v = start_v[i]
        d = start_d[i]
        if d <= limit and d < dist[v]:
            if dist[v] == np.inf:
                touched[n_touched] = v
                n_touched += 1
            dist[v] = d
            size = _push(heap_d, heap_v, size, d, np.int32(v))
    while size > 0:
        d, v, size = _pop(heap_d, heap_v, size)
        if d > dist[v]:
            continue
        for k in range(back_ptr[v], back_ptr[v + 1]):
            if dist[back_to[k]] + back_weight[k] < d:
                stalled[v] = True
                break
        if stalled[v]:
            continue
        for k in range(ptr[v], ptr[v + 1]):
            x = to[k]
            nd = d + weight[k]
            if nd < dist[x] and nd <= limit:
                if dist[x] == np.inf:
                    touched[n_touched] = x
                    n_touched += 1
                dist[x] = nd
                size = _push(heap_d, heap_v, size, nd, np.int32(x))
    return n_touched


@numba.njit(nogil=True, cache=True)
def target_buckets(up_ptr, up_head, up_weight, down_ptr, down_tail, down_weight, t_ptr, t_vertex, t_offset,
                   t_limit):
    """Backward upward search from each target; every vertex it settles gets a (target, distance) entry.

    Returns the entries grouped by vertex: (bucket_ptr, bucket_target, bucket_dist).
    """
    n = len(down_ptr) - 1
    dist = np.full(n, np.inf)
    stalled = np.zeros(n, dtype=np.bool_)
    touched = np.empty(n, dtype=np.int64)
    heap_d = np.empty(len(down_tail) + len(t_vertex) + 1, dtype=np.float64)
    heap_v = np.empty(len(down_tail) + len(t_vertex) + 1, dtype=np.int32)
    n_targets = len(t_ptr) - 1
    cap = 1024
    e_vertex = np.empty(cap, dtype=np.int64)
    e_target = np.empty(cap, dtype=np.int32)
    e_dist = np.empty(cap, dtype=np.float64)
    used = 0
    for t in range(n_targets):
        n_touched = _upward(t_ptr[t], t_ptr[t + 1], t_vertex, t_offset, t_limit[t], down_ptr, down_tail,
                            down_weight, up_ptr, up_head, up_weight, dist, stalled, touched, heap_d, heap_v)
        if used + n_touched > cap:
            cap = max(2 * cap, used + n_touched)
            grown_vertex = np.empty(cap, dtype=np.int64)
            grown_target = np.empty(cap, dtype=np.int32)
            grown_dist = np.empty(cap, dtype=np.float64)
            grown_vertex[:used] = e_vertex[:used]
            grown_target[:used] = e_target[:used]
            grown_dist[:used] = e_dist[:used]
            e_vertex, e_target, e_dist = grown_vertex, grown_target, grown_dist
        for k in range(n_touched):
            v = touched[k]
            if not stalled[v]:
                e_vertex[used] = v
                e_target[used] = t
                e_dist[used] = dist[v]
                used += 1
            dist[v] = np.inf
            stalled[v] = False
    # group the entries by vertex (a counting sort)
    bucket_ptr = np.zeros(n + 1, dtype=np.int64)
    for i in range(used):
        bucket_ptr[e_vertex[i] + 1] += 1
    for v in range(n):
        bucket_ptr[v + 1] += bucket_ptr[v]
    fill = bucket_ptr[:-1].copy()
    bucket_target = np.empty(used, dtype=np.int32)
    bucket_dist = np.empty(used, dtype=np.float64)
    for i in range(used):
        slot = fill[e_vertex[i]]
        bucket_target[slot] = e_target[i]
        bucket_dist[slot] = e_dist[i]
        fill[e_vertex[i]] += 1
    return bucket_ptr, bucket_target, bucket_dist


@numba.njit(nogil=True, cache=True)
def source_scans(up_ptr, up_head, up_weight, down_ptr, down_tail, down_weight, bucket_ptr, bucket_target,
                 bucket_dist, n_targets, s_ptr, s_vertex, s_offset, s_limit, pair_ptr, pair_targets, out):
    """Forward upward search from each source, scanning the buckets of every vertex it settles.

    ``pair_targets[pair_ptr[i]:pair_ptr[i + 1]]`` are source ``i``'s targets
    (indices of the targets given to :func:`target_buckets`); ``out`` gets
    their shortest-path values (``inf`` beyond the source's limit).
    """
    n = len(up_ptr) - 1
    dist = np.full(n, np.inf)
    stalled = np.zeros(n, dtype=np.bool_)
    touched = np.empty(n, dtype=np.int64)
    heap_d = np.empty(len(up_head) + len(s_vertex) + 1, dtype=np.float64)
    heap_v = np.empty(len(up_head) + len(s_vertex) + 1, dtype=np.int32)
    best = np.full(n_targets, np.inf)
    for i in range(len(s_ptr) - 1):
        n_touched = _upward(s_ptr[i], s_ptr[i + 1], s_vertex, s_offset, s_limit[i], up_ptr, up_head, up_weight,
                            down_ptr, down_tail, down_weight, dist, stalled, touched, heap_d, heap_v)
        for k in range(n_touched):
            v = touched[k]
            if not stalled[v]:
                d = dist[v]
                for b in range(bucket_ptr[v], bucket_ptr[v + 1]):
                    t = bucket_target[b]
                    total = d + bucket_dist[b]
                    if total < best[t]:
                        best[t] = total
        for k in range(n_touched):
            dist[touched[k]] = np.inf
            stalled[touched[k]] = False
        for p in range(pair_ptr[i], pair_ptr[i + 1]):
            value = best[pair_targets[p]]
            out[p] = value if value <= s_limit[i] else np.inf
        best[:] = np.inf


def many_to_many(hierarchy: Hierarchy, sources, targets, pair_ptr, pair_targets, out) -> None:
    """Fill ``out`` with the shortest-path value of each (source, target) pair.

    ``sources`` and ``targets`` are each ``(ptr, vertex, offset, limit)``:
    search ``i`` starts at ``vertex[ptr[i]:ptr[i + 1]]`` with those initial
    values (a facility between two junctions starts at both ends) and goes no
    farther than ``limit[i]``. Single-threaded; callers split sources.
    """
    graph = (hierarchy.up_ptr, hierarchy.up_head, hierarchy.up_weight,
             hierarchy.down_ptr, hierarchy.down_tail, hierarchy.down_weight)
    buckets = target_buckets(*graph, *targets)
    source_scans(*graph, *buckets, len(targets[0]) - 1, *sources, pair_ptr, pair_targets, out)
