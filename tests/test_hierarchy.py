"""The contraction hierarchy and its bucket many-to-many search, against scipy's dijkstra."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from geo._hierarchy import Hierarchy, build_hierarchy, many_to_many
from geo.network import without_parallels


def random_graph(n: int, m: int, seed: int, *, zero_share: float = 0.0) -> sp.csr_matrix:
    """A directed graph with self-loops, one-way edges and some zero weights left in."""
    rng = np.random.default_rng(seed)
    tail, head = rng.integers(0, n, m), rng.integers(0, n, m)
    weight = rng.uniform(0.0, 10.0, m)
    weight[rng.random(m) < zero_share] = 0.0
    tail, head, weight = without_parallels(tail.astype(np.int64), head.astype(np.int64), weight)
    order = np.lexsort((head, tail))
    indptr = np.searchsorted(tail[order], np.arange(n + 1))
    # a CSR built by hand keeps the explicit zeros (scipy would drop them from a COO input)
    return sp.csr_matrix((weight[order], head[order], indptr), shape=(n, n))


def starts(vertices: np.ndarray, limits: np.ndarray) -> tuple[np.ndarray, ...]:
    """One start per search, at value 0."""
    k = len(vertices)
    return np.arange(k + 1, dtype=np.int64), vertices.astype(np.int64), np.zeros(k), limits.astype(float)


def all_pairs(n_sources: int, n_targets: int) -> tuple[np.ndarray, np.ndarray]:
    ptr = np.arange(0, n_sources * n_targets + 1, n_targets, dtype=np.int64)
    return ptr, np.tile(np.arange(n_targets, dtype=np.int64), n_sources)


def oracle(matrix: sp.csr_matrix, sources, targets) -> np.ndarray:
    """scipy on the same graph; its explicit zeros become a tiny positive weight, as scipy drops zeros."""
    positive = matrix.copy()
    positive.data = np.maximum(positive.data, 1e-12)
    return dijkstra(positive, indices=sources)[:, targets]


@pytest.mark.parametrize("seed", range(40))
def test_random_graphs_give_scipys_distances(seed):
    n = 150 + seed * 5
    matrix = random_graph(n, 3 * n, seed, zero_share=0.05 if seed % 3 == 0 else 0.0)
    ch = build_hierarchy(matrix.indptr, matrix.indices, matrix.data)
    rng = np.random.default_rng(seed + 1000)
    sources, targets = rng.choice(n, 25, replace=False), rng.choice(n, 20, replace=False)
    ptr, pair_targets = all_pairs(25, 20)
    out = np.empty(len(pair_targets))
    limit = 18.0 + seed % 7  # irrational-ish weights: no distance sits exactly on the limit
    many_to_many(ch, starts(sources, np.full(25, limit)), starts(targets, np.full(20, limit)), ptr, pair_targets, out)
    expected = oracle(matrix, sources, targets).ravel()
    expected[expected > limit] = np.inf
    np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-9)


def test_every_edge_of_the_hierarchy_climbs():
    matrix = random_graph(400, 1200, 5)
    ch = build_hierarchy(matrix.indptr, matrix.indices, matrix.data)
    assert sorted(ch.rank) == list(range(400))
    up_tail = np.repeat(np.arange(400), np.diff(ch.up_ptr))
    down_head = np.repeat(np.arange(400), np.diff(ch.down_ptr))
    assert (ch.rank[ch.up_head] > ch.rank[up_tail]).all()
    assert (ch.rank[ch.down_tail] > ch.rank[down_head]).all()


def test_several_starts_per_search_and_limits_per_search():
    """A facility between two junctions starts at both, each at its partial-edge value."""
    matrix = random_graph(300, 900, 11)
    ch = build_hierarchy(matrix.indptr, matrix.indices, matrix.data)
    rng = np.random.default_rng(2)
    s_vertex = rng.choice(300, (10, 2), replace=False)
    s_value = rng.uniform(0, 3, (10, 2))
    t_vertex = rng.choice(300, (8, 2), replace=False)
    t_value = rng.uniform(0, 3, (8, 2))
    s_limit, t_limit = rng.uniform(8, 30, 10), rng.uniform(8, 30, 8)
    sources = (np.arange(0, 21, 2, dtype=np.int64), s_vertex.ravel().astype(np.int64), s_value.ravel(), s_limit)
    targets = (np.arange(0, 17, 2, dtype=np.int64), t_vertex.ravel().astype(np.int64), t_value.ravel(), t_limit)
    ptr, pair_targets = all_pairs(10, 8)
    out = np.empty(80)
    many_to_many(ch, sources, targets, ptr, pair_targets, out)
    d = oracle(matrix, s_vertex.ravel(), t_vertex.ravel()).reshape(10, 2, 8, 2)
    # best over both starts and both ends; a leg counts only within its own search's limit
    best = np.full((10, 8), np.inf)
    for a in range(2):
        for b in range(2):
            total = s_value[:, a, None] + d[:, a, :, b] + t_value[None, :, b]
            ok = (s_value[:, a, None] <= s_limit[:, None]) & (t_value[None, :, b] <= t_limit[None, :])
            best = np.minimum(best, np.where(ok, total, np.inf))
    # the search reports a value only when its source's limit allows it; a target's limit only prunes
    assert np.all(out.reshape(10, 8)[best > s_limit[:, None]] == np.inf)
    within = (best <= s_limit[:, None]) & (best <= t_limit[None, :])
    np.testing.assert_allclose(out.reshape(10, 8)[within], best[within], rtol=1e-9)


def test_a_graph_with_no_edges_and_unreachable_targets():
    n = 6
    empty = sp.csr_matrix((n, n))
    ch = build_hierarchy(empty.indptr, empty.indices, empty.data)
    ptr, pair_targets = all_pairs(2, 3)
    out = np.empty(6)
    many_to_many(ch, starts(np.array([0, 1]), np.full(2, 5.0)), starts(np.array([1, 2, 3]), np.full(3, 5.0)),
                 ptr, pair_targets, out)
    assert out.tolist() == [np.inf, np.inf, np.inf, 0.0, np.inf, np.inf]  # only 1 -> 1


def test_arrays_round_trip():
    matrix = random_graph(100, 300, 1)
    ch = build_hierarchy(matrix.indptr, matrix.indices, matrix.data)
    back = Hierarchy.from_arrays(ch.arrays())
    for name, values in ch.arrays().items():
        np.testing.assert_array_equal(getattr(back, name), values)
