"""Benchmark of the estimate-mode match (issue: the engine).

10,000 synthetic facilities with 40,000 flows over the Baltic Sea Region are
matched end to end (candidate search, distances, scoring, ranking, sentences),
each measurement in a fresh subprocess so that its peak memory is its own.
In the same run, two baselines find the same compatible pairs:

- a naive pairwise loop in Python over a subsample of supplies, extrapolated
  to all supplies;
- geopandas ``sjoin(predicate="dwithin")`` of all supplies against all
  demands, each supply at its own maximum distance, then filtering by
  compatibility and the great-circle limit (one join at the largest distance of
  all resources needs more than the machine's 24 GB).

Run: ``make bench`` (or ``python -m bench.matching``). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N_FACILITIES = 10_000
FLOWS_PER_FACILITY = 4
NAIVE_SUPPLIES = 150


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _dataset(folder: Path):
    from geo.dataset import load_dataset
    from geo.taxonomy import load_taxonomy

    tax = load_taxonomy()
    return load_dataset(folder / "facilities.csv", folder / "flows.csv", taxonomy=tax), tax


def worker_match(folder: Path, *, allocation: bool = True) -> dict:
    from geo.pipeline import match

    data, tax = _dataset(folder)
    start = time.perf_counter()
    result = match(data, taxonomy=tax, allocation=allocation)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_mb": _peak_mb(), "links": len(result.links),
            "pairs": result.stats.within_buffer, "supplies": result.stats.supplies,
            "demands": result.stats.demands, "flows": len(data.flows)}


def worker_match_unallocated(folder: Path) -> dict:
    """The whole match without the regional allocation (its linear program is the largest step)."""
    return worker_match(folder, allocation=False)


def worker_load(folder: Path) -> dict:
    start = time.perf_counter()
    data, _ = _dataset(folder)
    return {"seconds": time.perf_counter() - start, "peak_mb": _peak_mb(), "problems": len(data.report.problems)}


def worker_candidates(folder: Path) -> dict:
    from geo.matching import find_candidates

    data, tax = _dataset(folder)
    start = time.perf_counter()
    candidates, stats = find_candidates(data.facilities, data.flows, tax)
    return {"seconds": time.perf_counter() - start, "peak_mb": _peak_mb(), "pairs": stats.within_buffer}


def worker_sjoin(folder: Path) -> dict:
    """Baseline: one geopandas sjoin dwithin at the largest limit, then filters."""
    import geopandas as gpd

    from geo import settings
    from geo.distance import great_circle_km
    from geo.matching import laea_margin, supply_limits_km

    data, tax = _dataset(folder)
    start = time.perf_counter()
    fac = data.facilities.set_index("facility_id")
    flows = data.flows
    supply = flows[flows["direction"] == "supply"].reset_index(drop=True)
    demand = flows[flows["direction"] == "demand"].reset_index(drop=True)
    supply["limit"] = supply_limits_km(supply, tax).to_numpy()
    margin = laea_margin(fac.geometry.x.to_numpy(), fac.geometry.y.to_numpy())
    s_gdf = gpd.GeoDataFrame(supply, geometry=fac.geometry.loc[supply["facility_id"]].to_numpy(), crs=settings.WGS84)
    d_gdf = gpd.GeoDataFrame(demand, geometry=fac.geometry.loc[demand["facility_id"]].to_numpy(), crs=settings.WGS84)
    s_gdf, d_gdf = s_gdf.to_crs(settings.METRIC_CRS), d_gdf.to_crs(settings.METRIC_CRS)
    joined = gpd.sjoin(s_gdf, d_gdf, predicate="dwithin", distance=supply["limit"].to_numpy() * 1000 * margin,
                       lsuffix="s", rsuffix="d")
    compat = tax.compatibility[["supply_resource", "demand_resource"]]
    joined = joined.merge(compat, left_on=["resource_s", "resource_d"],
                          right_on=["supply_resource", "demand_resource"])
    joined = joined[joined["facility_id_s"] != joined["facility_id_d"]]
    s_pts = fac.geometry.loc[joined["facility_id_s"]]
    d_pts = fac.geometry.loc[joined["facility_id_d"]]
    km = great_circle_km(s_pts.x.to_numpy(), s_pts.y.to_numpy(), d_pts.x.to_numpy(), d_pts.y.to_numpy())
    pairs = int((km <= joined["limit"].to_numpy()).sum())
    return {"seconds": time.perf_counter() - start, "peak_mb": _peak_mb(), "pairs": pairs,
            "sjoin_rows": len(joined)}


def worker_naive(folder: Path) -> dict:
    """Baseline: a Python loop over every (supply, demand) pair of a subsample.

    Two variants: the plain one computes the distance of every pair; the lean
    one first skips pairs that are incompatible or of the same facility.
    """
    import numpy as np

    from geo.matching import supply_limits_km

    data, tax = _dataset(folder)
    fac = data.facilities.set_index("facility_id")
    where = {f: (p.x, p.y) for f, p in zip(fac.index, fac.geometry)}
    flows = data.flows
    supply = flows[flows["direction"] == "supply"].reset_index(drop=True)
    demand = flows[flows["direction"] == "demand"].reset_index(drop=True)
    limits = supply_limits_km(supply, tax).to_numpy()
    accepts = set(zip(tax.compatibility["supply_resource"], tax.compatibility["demand_resource"]))
    rng = np.random.default_rng(1)
    sample = rng.choice(len(supply), NAIVE_SUPPLIES, replace=False)
    d_rows = list(zip(demand["facility_id"], demand["resource"]))
    start = time.perf_counter()
    pairs = 0
    for i in sample:
        s_fac, s_res, limit = supply.at[i, "facility_id"], supply.at[i, "resource"], limits[i]
        x1, y1 = where[s_fac]
        for d_fac, d_res in d_rows:
            x2, y2 = where[d_fac]
            km = _haversine_km(x1, y1, x2, y2)
            if km <= limit and d_fac != s_fac and (s_res, d_res) in accepts:
                pairs += 1
    plain_seconds = time.perf_counter() - start
    start = time.perf_counter()
    lean_pairs = 0
    for i in sample:
        s_fac, s_res, limit = supply.at[i, "facility_id"], supply.at[i, "resource"], limits[i]
        x1, y1 = where[s_fac]
        for d_fac, d_res in d_rows:
            if d_fac == s_fac or (s_res, d_res) not in accepts:
                continue
            x2, y2 = where[d_fac]
            if _haversine_km(x1, y1, x2, y2) <= limit:
                lean_pairs += 1
    lean_seconds = time.perf_counter() - start
    if lean_pairs != pairs:
        raise RuntimeError(f"naive loops disagree: {pairs} and {lean_pairs} pairs")
    scale = len(supply) / NAIVE_SUPPLIES
    return {"seconds": plain_seconds * scale, "measured_seconds": plain_seconds,
            "lean_seconds": lean_seconds * scale, "lean_measured_seconds": lean_seconds,
            "sample": NAIVE_SUPPLIES, "pairs_extrapolated": pairs * scale, "peak_mb": _peak_mb()}


def _haversine_km(lon1, lat1, lon2, lat2) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(a))


WORKERS = {"match": worker_match, "match_unallocated": worker_match_unallocated, "load": worker_load,
           "candidates": worker_candidates, "sjoin": worker_sjoin, "naive": worker_naive}


def _run(kind: str, folder: Path) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench.matching", "--worker", kind, str(folder)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem_gb:.0f} GB RAM, Python {platform.python_version()}, {platform.system()}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", choices=sorted(WORKERS))
    parser.add_argument("folder", nargs="?", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args.folder)))
        return

    from bench.synthetic import synthetic_dataset
    from geo.taxonomy import load_taxonomy

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        facilities, flows = synthetic_dataset(N_FACILITIES, FLOWS_PER_FACILITY, load_taxonomy())
        facilities.to_csv(folder / "facilities.csv", index=False)
        flows.to_csv(folder / "flows.csv", index=False)
        runs = {k: [_run(k, folder) for _ in range(args.repeat)]
                for k in ("match", "match_unallocated", "candidates", "sjoin")}
        runs["load"] = [_run("load", folder)]
        runs["naive"] = [_run("naive", folder)]
    best = {k: min(v, key=lambda r: r["seconds"]) for k, v in runs.items()}
    m, c, s, n = best["match"], best["candidates"], best["sjoin"], best["naive"]
    print(f"Machine: {_machine()}")
    print(f"Data: {N_FACILITIES:,} facilities, {m['flows']:,} flows ({m['supplies']:,} supplies x "
          f"{m['demands']:,} demands), {m['pairs']:,} compatible pairs within the buffer, {m['links']:,} links")
    print(f"Best of {args.repeat} runs each (load and naive once); each in its own process.\n")
    print("| step | wall time (s) | peak memory (MB) | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| read + validate the two CSV files | {best['load']['seconds']:.2f} | {best['load']['peak_mb']:.0f} | |")
    print(f"| **whole match** (candidates, distances, scores, ranks, sentences) | **{m['seconds']:.2f}** | {m['peak_mb']:.0f} | 1 |")
    u = best["match_unallocated"]
    print(f"| whole match without the regional allocation (`allocation=False`) | {u['seconds']:.2f} | "
          f"{u['peak_mb']:.0f} | allocation = {m['seconds'] - u['seconds']:.2f} s |")
    print(f"| candidate search alone (`find_candidates`) | {c['seconds']:.2f} | {c['peak_mb']:.0f} | |")
    print(f"| baseline: geopandas `sjoin(predicate=\"dwithin\")` + filters, same pairs | {s['seconds']:.2f} | {s['peak_mb']:.0f} | "
          f"sjoin / candidate search = {s['seconds'] / c['seconds']:.1f}x; sjoin / whole match = {s['seconds'] / m['seconds']:.1f}x |")
    print(f"| baseline: naive Python loop, distance of every pair ({n['sample']} supplies measured in "
          f"{n['measured_seconds']:.1f} s, extrapolated) | {n['seconds']:.0f} | {n['peak_mb']:.0f} | "
          f"naive / whole match = {n['seconds'] / m['seconds']:.0f}x |")
    print(f"| baseline: naive Python loop, compatibility checked first ({n['sample']} supplies measured in "
          f"{n['lean_measured_seconds']:.1f} s, extrapolated) | {n['lean_seconds']:.0f} | {n['peak_mb']:.0f} | "
          f"lean naive / whole match = {n['lean_seconds'] / m['seconds']:.0f}x |")
    print(f"\nPairs found: candidate search {c['pairs']:,}, sjoin baseline {s['pairs']:,} (must be equal), "
          f"naive loop extrapolated {n['pairs_extrapolated']:,.0f}.")
    if c["pairs"] != s["pairs"]:
        sys.exit("pair counts differ between the engine and the sjoin baseline")


if __name__ == "__main__":
    main()
