"""A synthetic road-like graph for routing benchmarks: a jittered grid.

``side x side`` nodes ``spacing_m`` apart (before a +-30 % jitter), placed in
WGS84 around 61N 25E. Each grid link to the east and to the north exists with
probability 0.8; nine in ten are two-way, one in ten one-way in a random
direction, giving about 3 directed edges per node. Lengths are great-circle
metres between the jittered nodes. Seeded, so every run builds the same graph.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

LAT0, LON0 = 61.0, 25.0


def grid(side: int = 1000, spacing_m: float = 100.0, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Nodes (id, lon, lat) and way segments (u, v, highway, oneway) of the grid."""
    rng = np.random.default_rng(seed)
    i, j = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    x = (j.ravel() + rng.uniform(-0.3, 0.3, side * side)) * spacing_m
    y = (i.ravel() + rng.uniform(-0.3, 0.3, side * side)) * spacing_m
    lat = LAT0 + y / 111_195.0
    lon = LON0 + x / (111_195.0 * np.cos(np.radians(LAT0)))
    ids = np.arange(side * side, dtype=np.int64)
    east = ids.reshape(side, side)[:, :-1].ravel()
    north = ids.reshape(side, side)[:-1, :].ravel()
    u = np.concatenate([east, north])
    v = np.concatenate([east + 1, north + side])
    keep = rng.random(len(u)) < 0.8
    u, v = u[keep], v[keep]
    oneway = np.where(rng.random(len(u)) < 0.1, "yes", "")
    flip = (oneway == "yes") & (rng.random(len(u)) < 0.5)
    u, v = np.where(flip, v, u), np.where(flip, u, v)
    nodes = pd.DataFrame({"id": ids, "lon": lon, "lat": lat})
    ways = pd.DataFrame({"u": u, "v": v, "highway": "residential", "oneway": oneway})
    return nodes, ways
