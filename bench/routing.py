"""Benchmark of road-network building and many-to-many routing (issue: road networks).

Measured side by side in one run, each measurement in a fresh subprocess so
that its time and peak memory are its own:

1. graph build from ``tampere.osm.pbf`` (pyrosm, then the drive filter,
   components and contraction) against ``osmnx.graph_from_xml`` on the XML of
   the same data;
2. 500 x 500 facilities on the Tampere graph within 50 km, against networkx
   ``shortest_path_length`` per pair (how osmnx routes), timed on a sample of
   pairs and extrapolated;
3. a synthetic road-like graph of about 1,000,000 nodes
   (:mod:`bench.synthetic_roads`), 2,000 sources x 2,000 targets, the pairs
   within 30 km: ours, plain single-core chunked scipy ``dijkstra`` on the
   uncontracted graph, and the peers pandana (contraction-hierarchy build
   timed separately), igraph, networkit and networkx (samples extrapolated
   where a full run would take many minutes);
4. growth: ours with half the sources, and on a graph of a quarter the size.

Needs ../shared/data/osm (beside the repository) for the Tampere part, which
is skipped without it. Run: ``make bench`` (or ``python -m bench.routing``);
``--skip-peers`` leaves out the slow peers. Prints Markdown tables and writes
bench/results/routing.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED_OSM = ROOT.parent / "shared" / "data" / "osm"
TAMPERE_N, TAMPERE_KM = 500, 50.0
SYNTH_N, SYNTH_KM = 2000, 30.0
SYNTH_SIDE = int(os.environ.get("BENCH_SYNTH_SIDE", "1000"))  # smaller for a quick smoke run
NX_SAMPLE_PAIRS = 300


def _peak_mb() -> dict:
    return {"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}


def _tampere():
    from geo.network import build_network

    return build_network(SHARED_OSM / "tampere.osm.pbf")


def _points(net, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n facility-like points: random road nodes moved up to ~200 m off the road."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(net.n_nodes, n, replace=False)
    return (net.node_lon[picks] + rng.uniform(-0.003, 0.003, n),
            net.node_lat[picks] + rng.uniform(-0.0015, 0.0015, n))


def _pairs_within(slon, slat, tlon, tlat, km: float) -> tuple[np.ndarray, np.ndarray]:
    from scipy.spatial import cKDTree

    from geo.distance import great_circle_km

    def xyz(lon, lat):
        lam, phi = np.radians(lon), np.radians(lat)
        return np.column_stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)])

    chord = 2 * np.sin(km / 6371.0088 / 2) * 1.001
    m = cKDTree(xyz(slon, slat)).sparse_distance_matrix(cKDTree(xyz(tlon, tlat)), chord, output_type="coo_matrix")
    a, b = m.row, m.col
    keep = great_circle_km(slon[a], slat[a], tlon[b], tlat[b]) <= km
    order = np.lexsort((b[keep], a[keep]))
    return a[keep][order], b[keep][order]


def _tampere_case():
    net = _tampere()
    slon, slat = _points(net, TAMPERE_N, 1)
    tlon, tlat = _points(net, TAMPERE_N, 2)
    a, b = _pairs_within(slon, slat, tlon, tlat, TAMPERE_KM)
    return net, slon[a], slat[a], tlon[b], tlat[b]


# --- workers (each runs in its own process) ----------------------------------------

def worker_build_pbf() -> dict:
    from geo.network import build_network

    start = time.perf_counter()
    net = build_network(SHARED_OSM / "tampere.osm.pbf")
    return {"seconds": time.perf_counter() - start, "nodes": net.n_nodes, "vertices": net.n_vertices,
            "edges": net.n_edges, **_peak_mb()}


def worker_build_xml() -> dict:
    import osmnx as ox

    start = time.perf_counter()
    graph = ox.graph_from_xml(SHARED_OSM / "tampere.osm.bz2")
    return {"seconds": time.perf_counter() - start, "nodes": graph.number_of_nodes(),
            "edges": graph.number_of_edges(), **_peak_mb()}


def worker_tampere_ours(travel_time: str) -> dict:
    from geo.routing import road_distances

    net, *ends = _tampere_case()
    road_distances(net, *[e[:10] for e in ends], max_km=TAMPERE_KM)  # builds the snapping trees once
    start = time.perf_counter()
    got = road_distances(net, *ends, max_km=TAMPERE_KM, travel_time=travel_time == "yes")
    seconds = time.perf_counter() - start
    np.save(ROOT / "bench" / "results" / "tampere_ours.npy", got["road_km"].to_numpy())
    return {"seconds": seconds, "pairs": len(got), "routed": int(np.isfinite(got["road_km"]).sum()), **_peak_mb()}


def worker_tampere_networkx() -> dict:
    import networkx as nx

    from geo.routing import snap

    net, slon, slat, tlon, tlat = _tampere_case()
    seg = net.segments()
    graph = nx.DiGraph()
    graph.add_weighted_edges_from(zip(seg["tail"], seg["head"], seg["length_m"], strict=True), weight="length")
    src, dst = snap(net, slon, slat), snap(net, tlon, tlat)
    ok = np.flatnonzero(src.ok & dst.ok)
    sample = np.random.default_rng(3).choice(ok, NX_SAMPLE_PAIRS, replace=False)
    ours = np.load(ROOT / "bench" / "results" / "tampere_ours.npy")
    worst = 0.0
    start = time.perf_counter()
    for k in sample:
        try:
            metres = nx.shortest_path_length(graph, src.node[k], dst.node[k], weight="length")
        except nx.NetworkXNoPath:
            metres = np.inf
        road = metres / 1000 + src.snap_km[k] + dst.snap_km[k]
        if np.isfinite(ours[k]):
            worst = max(worst, abs(road - ours[k]))
    seconds = time.perf_counter() - start
    return {"seconds_sample": seconds, "sample": len(sample), "per_pair_s": seconds / len(sample),
            "pairs": len(slon), "extrapolated_s": seconds / len(sample) * len(slon),
            "max_difference_km": worst, **_peak_mb()}


def _synthetic(side: int):
    from bench.synthetic_roads import grid
    from geo.network import network_from_edges

    nodes, ways = grid(side)
    return network_from_edges(nodes, ways, directed=False, source=f"synthetic grid {side}x{side}")


def _synth_case(side: int, n_sources: int):
    net = _synthetic(side)
    rng = np.random.default_rng(11)
    s = rng.choice(net.n_nodes, SYNTH_N, replace=False)[:n_sources]
    t = rng.choice(net.n_nodes, SYNTH_N, replace=False)
    a, b = _pairs_within(net.node_lon[s], net.node_lat[s], net.node_lon[t], net.node_lat[t], SYNTH_KM)
    return net, s, t, a, b


def _synth_prepared(side: int) -> Path:
    return ROOT / "bench" / "results" / f"synth_{side}_with_hierarchies.npz"


def worker_synth_hierarchy(side: str) -> dict:
    """Build both contraction hierarchies of the synthetic graph, timed, and save them for the other workers."""
    from geo.network import save_network
    from geo.routing import hierarchy

    net = _synthetic(int(side))
    times = {}
    for weight in ("length", "time"):
        start = time.perf_counter()
        built = hierarchy(net, weight)
        times[f"{weight}_s"] = time.perf_counter() - start
        times[f"{weight}_edges"] = built.n_edges
    save_network(net, _synth_prepared(int(side)))
    return {**times, "vertices": net.n_vertices, "graph_edges": net.n_edges, **_peak_mb()}


def worker_synth_ours(side: str, n_sources: str, travel_time: str, method: str) -> dict:
    from geo.network import load_network
    from geo.routing import road_distances

    start = time.perf_counter()
    net, s, t, a, b = _synth_case(int(side), int(n_sources))
    if method == "hierarchy":  # the same graph, with the hierarchies worker_synth_hierarchy built
        net = load_network(_synth_prepared(int(side)))
    build = time.perf_counter() - start
    lon, lat = net.node_lon, net.node_lat
    start = time.perf_counter()
    got = road_distances(net, lon[s[a]], lat[s[a]], lon[t[b]], lat[t[b]], max_km=SYNTH_KM,
                         travel_time=travel_time == "yes", method=method)
    seconds = time.perf_counter() - start
    if int(side) == SYNTH_SIDE and int(n_sources) == SYNTH_N:
        np.save(ROOT / "bench" / "results" / f"synth_ours_{method}.npy", got["road_km"].to_numpy())
    return {"seconds": seconds, "build_s": build, "nodes": net.n_nodes, "vertices": net.n_vertices,
            "sources": int(len(np.unique(a))), "pairs": len(a),
            "within_limit": int(np.isfinite(got["road_km"]).sum()), **_peak_mb()}


def _full_csr(net):
    import scipy.sparse as sp

    seg = net.segments()
    n = net.n_nodes
    return sp.csr_matrix((seg["length_m"].to_numpy(), (seg["tail"].to_numpy(), seg["head"].to_numpy())), shape=(n, n))


def worker_synth_scipy_plain() -> dict:
    """The issue's baseline: one process, chunked dijkstra(indices, limit) on the uncontracted graph."""
    from scipy.sparse.csgraph import dijkstra

    net, s, t, a, b = _synth_case(SYNTH_SIDE, SYNTH_N)
    matrix = _full_csr(net)
    sources = np.unique(a)
    out = np.full(len(a), np.inf)
    start = time.perf_counter()
    for i in range(0, len(sources), 32):
        chunk = sources[i:i + 32]
        dist = dijkstra(matrix, indices=s[chunk], limit=SYNTH_KM * 1000)
        rows = np.searchsorted(chunk, a)
        inside = np.isin(a, chunk)
        out[inside] = dist[rows[inside], t[b[inside]]]
    seconds = time.perf_counter() - start
    agrees = {}
    for method in ("hierarchy", "dijkstra"):
        ours = np.load(ROOT / "bench" / "results" / f"synth_ours_{method}.npy")
        agrees[f"agrees_with_ours_{method}"] = bool(np.allclose(
            np.where(np.isfinite(out), out / 1000, -1), np.where(np.isfinite(ours), ours, -1), rtol=1e-9, atol=1e-9))
    return {"seconds": seconds, "pairs": len(a), **agrees, **_peak_mb()}


def worker_synth_pandana() -> dict:
    import pandana
    import pandas as pd

    net, s, t, a, b = _synth_case(SYNTH_SIDE, SYNTH_N)
    seg = net.segments()
    start = time.perf_counter()
    network = pandana.Network(pd.Series(net.node_lon), pd.Series(net.node_lat), seg["tail"], seg["head"],
                              seg[["length_m"]], twoway=False)
    build = time.perf_counter() - start
    start = time.perf_counter()
    lengths = np.asarray(network.shortest_path_lengths(s[a], t[b], imp_name="length_m"), dtype=float)
    pairs_s = time.perf_counter() - start
    sample = np.unique(a)[:100]
    start = time.perf_counter()
    in_range = network.nodes_in_range(s[sample], SYNTH_KM * 1000, imp_name="length_m")
    range_s = time.perf_counter() - start
    ours = np.load(ROOT / "bench" / "results" / "synth_ours_hierarchy.npy")
    ok = np.isfinite(ours)
    return {"ch_build_s": build, "shortest_path_lengths_s": pairs_s, "pairs": len(a),
            "nodes_in_range_sample_s": range_s, "nodes_in_range_sample": len(sample), "rows_in_range": len(in_range),
            "nodes_in_range_extrapolated_s": range_s / len(sample) * len(np.unique(a)),
            "max_difference_km": float(np.abs(lengths[ok] / 1000 - ours[ok]).max()), **_peak_mb()}


def worker_synth_igraph() -> dict:
    import igraph as ig

    net, s, t, a, b = _synth_case(SYNTH_SIDE, SYNTH_N)
    seg = net.segments()
    graph = ig.Graph(n=net.n_nodes, edges=np.column_stack([seg["tail"], seg["head"]]).tolist(), directed=True)
    graph.es["w"] = seg["length_m"].tolist()
    sources = np.unique(a)
    sample = sources[:40]
    start = time.perf_counter()
    graph.distances(source=s[sample].tolist(), target=np.unique(t[b]).tolist(), weights="w")
    seconds = time.perf_counter() - start
    return {"sample_s": seconds, "sample": len(sample), "extrapolated_s": seconds / len(sample) * len(sources), **_peak_mb()}


def worker_synth_networkit() -> dict:
    import networkit as nk

    net, s, t, a, b = _synth_case(SYNTH_SIDE, SYNTH_N)
    seg = net.segments()
    graph = nk.Graph(net.n_nodes, weighted=True, directed=True)
    graph.addEdges((seg["length_m"].to_numpy(), (seg["tail"].to_numpy(), seg["head"].to_numpy())))
    sources = np.unique(a)
    sample = sources[:200]
    start = time.perf_counter()
    spsp = nk.distance.SPSP(graph, s[sample].tolist(), np.unique(t[b]).tolist())
    spsp.run()
    seconds = time.perf_counter() - start
    return {"sample_s": seconds, "sample": len(sample), "threads": nk.getCurrentNumberOfThreads(),
            "extrapolated_s": seconds / len(sample) * len(sources), **_peak_mb()}


def worker_synth_networkx() -> dict:
    import networkx as nx

    net, s, t, a, b = _synth_case(SYNTH_SIDE, SYNTH_N)
    seg = net.segments()
    graph = nx.DiGraph()
    graph.add_weighted_edges_from(zip(seg["tail"], seg["head"], seg["length_m"], strict=True), weight="length")
    sources = np.unique(a)
    sample = sources[:5]
    start = time.perf_counter()
    for k in sample:
        nx.single_source_dijkstra_path_length(graph, s[k], cutoff=SYNTH_KM * 1000, weight="length")
    seconds = time.perf_counter() - start
    return {"sample_s": seconds, "sample": len(sample), "extrapolated_s": seconds / len(sample) * len(sources), **_peak_mb()}


# --- driver -------------------------------------------------------------------------

def _run(name: str, *args: str, timeout: float = 3600) -> dict:
    cmd = [sys.executable, "-m", "bench.routing", "--worker", name, *args]
    print(f"  running {name} {' '.join(args)} ...", file=sys.stderr, flush=True)
    try:
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.routing")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--skip-peers", action="store_true", help="leave out pandana, igraph, networkit and networkx")
    opts = parser.parse_args(argv)
    if opts.worker:
        print(json.dumps(globals()[f"worker_{opts.worker}"](*opts.args)))
        return 0
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    if (SHARED_OSM / "tampere.osm.pbf").exists():
        results["build_pbf"] = _run("build_pbf")
        results["build_xml"] = _run("build_xml")
        results["tampere_ours"] = _run("tampere_ours", "yes")
        results["tampere_ours_length"] = _run("tampere_ours", "no")
        results["tampere_networkx"] = _run("tampere_networkx")
    else:
        print(f"  {SHARED_OSM} not found: the Tampere part is skipped", file=sys.stderr)
    full = (str(SYNTH_SIDE), str(SYNTH_N))
    results["synth_hierarchy"] = _run("synth_hierarchy", str(SYNTH_SIDE))
    results["synth_hierarchy_quarter_graph"] = _run("synth_hierarchy", str(SYNTH_SIDE // 2))
    results["synth_ours"] = _run("synth_ours", *full, "no", "hierarchy")
    results["synth_ours_time"] = _run("synth_ours", *full, "yes", "hierarchy")
    results["synth_ours_dijkstra"] = _run("synth_ours", *full, "no", "dijkstra")
    results["synth_ours_half_sources"] = _run("synth_ours", str(SYNTH_SIDE), str(SYNTH_N // 2), "no", "hierarchy")
    results["synth_ours_quarter_graph"] = _run("synth_ours", str(SYNTH_SIDE // 2), str(SYNTH_N), "no", "hierarchy")
    results["synth_scipy_plain"] = _run("synth_scipy_plain")
    if not opts.skip_peers:
        for peer in ("networkit", "igraph", "networkx", "pandana"):
            results[f"synth_{peer}"] = _run(f"synth_{peer}", timeout=1500)
    machine = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}
    (ROOT / "bench" / "results" / "routing.json").write_text(json.dumps({"machine": machine, **results}, indent=2))
    print(json.dumps({"machine": machine, **results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
