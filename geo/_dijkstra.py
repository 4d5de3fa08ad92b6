"""Bounded many-to-many Dijkstra over a CSR graph, compiled with numba.

:func:`scipy.sparse.csgraph.dijkstra` answers "every vertex from these
sources" and pays for the whole graph on each source: it fills a dense
sources x vertices output and re-initialises a heap node per vertex before
every search, however small the search ball. Matching needs much less: for
each source, the values at a handful of targets, within a cutoff. This
kernel searches each source only as far as it must (its cutoff, or until
every one of its targets is settled) and resets only the vertices it
touched, so its cost follows the search ball, not the graph.

The kernel releases the GIL (``nogil``), so :mod:`geo.routing` runs batches of
sources on threads: no process pool, no copy of the graph per worker, and
safe inside a threaded server such as Streamlit. Compiled code is cached on
disk beside this file when the folder is writable.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["bounded_searches", "csr_arrays"]


#: Children per heap node: a 4-ary heap is shallower than a binary one and its
#: children share a cache line, which measured 1.4x faster on road grids.
_ARITY = 4


@numba.njit(nogil=True, cache=True, inline="always")
def _push(heap_d, heap_v, size, d, v):
    """Add (d, v) to the min-heap held in the first ``size`` slots; return the new size."""
    i = size
    while i > 0:
        parent = (i - 1) // _ARITY
        if heap_d[parent] <= d:
            break
        heap_d[i] = heap_d[parent]
        heap_v[i] = heap_v[parent]
        i = parent
    heap_d[i] = d
    heap_v[i] = v
    return size + 1


@numba.njit(nogil=True, cache=True, inline="always")
def _pop(heap_d, heap_v, size):
    """Remove the least entry of the heap; return it and the new size."""
    top_d, top_v = heap_d[0], heap_v[0]
    size -= 1
    last_d, last_v = heap_d[size], heap_v[size]
    i = 0
    while True:
        first = _ARITY * i + 1
        if first >= size:
            break
        best, best_d = first, heap_d[first]
        for child in range(first + 1, min(first + _ARITY, size)):
            if heap_d[child] < best_d:
                best, best_d = child, heap_d[child]
        if best_d >= last_d:
            break
        heap_d[i] = best_d
        heap_v[i] = heap_v[best]
        i = best
    heap_d[i] = last_d
    heap_v[i] = last_v
    return top_d, top_v, size


@numba.njit(nogil=True, cache=True)
def bounded_searches(indptr, heads, weights, sources, cutoffs, pair_ptr, pair_targets, out):
    """One Dijkstra search per source, each bounded by its cutoff and its own targets.

    Parameters
    ----------
    indptr, heads, weights : ndarray
        The directed graph in CSR form: row pointers (int64, n_vertices + 1),
        edge heads (int32) and non-negative edge weights (float64).
    sources : ndarray of int64
        Vertex of each search.
    cutoffs : ndarray of float64
        Largest value each search needs; vertices beyond it are not settled.
    pair_ptr : ndarray of int64
        ``pair_targets[pair_ptr[i]:pair_ptr[i + 1]]`` are search ``i``'s targets.
    pair_targets : ndarray of int64
        Target vertex of each pair, grouped by search.
    out : ndarray of float64
        Filled in place, aligned with ``pair_targets``: the shortest-path
        value, or ``inf`` when the target lies beyond the cutoff.
    """
    n = len(indptr) - 1
    dist = np.full(n, np.inf)
    is_target = np.zeros(n, dtype=np.bool_)
    touched = np.empty(n, dtype=np.int64)
    # a lazy heap holds at most one entry per improvement, so per edge, plus the source
    heap_d = np.empty(len(heads) + 1, dtype=np.float64)
    heap_v = np.empty(len(heads) + 1, dtype=np.int32)
    for i in range(len(sources)):
        lo, hi = pair_ptr[i], pair_ptr[i + 1]
        remaining = 0
        for p in range(lo, hi):
            t = pair_targets[p]
            if not is_target[t]:
                is_target[t] = True
                remaining += 1
        limit = cutoffs[i]
        s = sources[i]
        dist[s] = 0.0
        touched[0] = s
        n_touched = 1
        size = _push(heap_d, heap_v, 0, 0.0, s)
        # every push lowers a vertex's value, so the one entry equal to it settles it; others are stale
        while size > 0 and remaining > 0:
            d, v, size = _pop(heap_d, heap_v, size)
            if d > dist[v]:
                continue
            if is_target[v]:
                remaining -= 1
            for k in range(indptr[v], indptr[v + 1]):
                u = heads[k]
                nd = d + weights[k]
                if nd < dist[u] and nd <= limit:
                    if dist[u] == np.inf:
                        touched[n_touched] = u
                        n_touched += 1
                    dist[u] = nd
                    size = _push(heap_d, heap_v, size, nd, u)
        # the search ended with an empty heap (every value final) or with every target settled
        for p in range(lo, hi):
            t = pair_targets[p]
            out[p] = dist[t]
            is_target[t] = False
        for k in range(n_touched):
            dist[touched[k]] = np.inf


def csr_arrays(matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (indptr, heads, weights) of a scipy CSR matrix in the dtypes :func:`bounded_searches` takes.

    One set of dtypes means one compiled version of the kernel.
    """
    return (matrix.indptr.astype(np.int64), matrix.indices.astype(np.int32),
            matrix.data.astype(np.float64))
