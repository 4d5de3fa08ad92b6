"""The compiled bounded search against scipy's dijkstra on random graphs."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from geo._dijkstra import bounded_searches, csr_arrays


def random_graph(n: int, m: int, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    tail, head = rng.integers(0, n, m), rng.integers(0, n, m)
    weight = rng.choice([0.5, 1.0, 2.5, 7.0], m) * rng.uniform(0.5, 1.5, m)
    keep = tail != head
    matrix = sp.coo_matrix((weight[keep], (tail[keep], head[keep])), shape=(n, n)).tocsr()
    matrix.sum_duplicates()
    return matrix


def search(matrix, sources, cutoffs, targets_of):
    pair_ptr = np.cumsum([0] + [len(t) for t in targets_of]).astype(np.int64)
    pair_targets = np.concatenate([np.asarray(t, dtype=np.int64) for t in targets_of])
    out = np.empty(len(pair_targets))
    bounded_searches(*csr_arrays(matrix),
                     np.asarray(sources, dtype=np.int64), np.asarray(cutoffs, dtype=float),
                     pair_ptr, pair_targets, out)
    return np.split(out, pair_ptr[1:-1])


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("cutoff", [3.0, 8.0, np.inf])
def test_values_match_scipy_within_the_cutoff(seed, cutoff):
    n = 300
    matrix = random_graph(n, 900, seed)
    rng = np.random.default_rng(seed + 100)
    sources = rng.choice(n, 40, replace=False)
    # repeated targets and a source among its own targets must not confuse the early stop
    targets_of = [np.concatenate([rng.integers(0, n, 15), [s, s]]) for s in sources]
    got = search(matrix, sources, np.full(40, cutoff), targets_of)
    full = dijkstra(matrix, directed=True, indices=sources)
    for i, targets in enumerate(targets_of):
        expected = full[i, targets]
        expected = np.where(expected <= cutoff, expected, np.inf)
        np.testing.assert_allclose(got[i], expected, rtol=1e-12)
        assert (got[i][-2:] == 0).all()


def test_a_source_with_no_targets_and_unreachable_targets():
    matrix = sp.csr_matrix(([1.0, 1.0], ([0, 1], [1, 2])), shape=(4, 4))
    got = search(matrix, [0, 3, 2], [10.0, 10.0, 10.0], [[], [0, 3], [0, 1, 2]])
    assert len(got[0]) == 0
    np.testing.assert_array_equal(got[1], [np.inf, 0.0])
    np.testing.assert_array_equal(got[2], [np.inf, np.inf, 0.0])


def test_each_search_keeps_its_own_cutoff():
    # a chain 0 -> 1 -> 2 -> 3 of unit edges, searched from 0 three times with different cutoffs
    matrix = sp.csr_matrix(([1.0, 1.0, 1.0], ([0, 1, 2], [1, 2, 3])), shape=(4, 4))
    got = search(matrix, [0, 0, 0], [1.0, 2.5, 3.0], [[1, 2, 3]] * 3)
    np.testing.assert_array_equal(got[0], [1.0, np.inf, np.inf])
    np.testing.assert_array_equal(got[1], [1.0, 2.0, np.inf])
    np.testing.assert_array_equal(got[2], [1.0, 2.0, 3.0])
