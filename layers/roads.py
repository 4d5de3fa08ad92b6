"""The roads of a loaded road network, as a file the offline base map draws when zoomed in.

The network (:class:`geo.network.RoadNetwork`) holds every drivable road of
its OSM extract as chains of nodes; each chain becomes one line here, once
for both directions of a two-way road. A whole country's network has
millions of nodes: the lines are simplified and, beyond a budget of
vertices, the faster roads are kept first (a motorway before a lane), so the
file stays light enough for a browser.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import shapely

from layers.assets import APP_URL, VENDOR, write_geojson

if TYPE_CHECKING:
    from geo.network import RoadNetwork

__all__ = ["MAJOR_ROAD_KMH", "MAX_ROAD_VERTICES", "road_lines", "roads_file", "roads_url"]

#: Vertices kept at most (about 5 MB of GeoJSON); the slowest roads are left out beyond it.
MAX_ROAD_VERTICES = 400_000
#: Speed (km/h) from which a road is drawn as a main road (a truck's speed, so at most 80).
MAJOR_ROAD_KMH = 70.0
#: Simplification of the lines, degrees (about 5 m).
_TOLERANCE_DEG = 0.00005
_FOLDER = "roads"


def road_lines(network: RoadNetwork, *, max_vertices: int = MAX_ROAD_VERTICES) -> gpd.GeoDataFrame:
    """One line per road of the network (both directions of a two-way road drawn once), in WGS84.

    Parameters
    ----------
    network : RoadNetwork
        A loaded road network.
    max_vertices : int
        Most vertices kept over all lines; beyond it the slowest roads are
        left out (ties: the shorter first).

    Returns
    -------
    lines : GeoDataFrame
        ``major`` (1 for a road a truck drives at :data:`MAJOR_ROAD_KMH` or
        faster, else 0), ``geometry`` (LineString, 5 decimals), fastest first.
    """
    ptr = network.chain_ptr.astype(np.int64)
    if len(ptr) < 2:
        return gpd.GeoDataFrame({"major": np.zeros(0, dtype=int)}, geometry=[], crs=4326)
    kept = _one_direction(network)
    counts = np.diff(ptr)[kept]
    starts = ptr[:-1][kept]
    # the nodes of every kept chain, in order, and the chain each belongs to
    index = np.repeat(np.arange(len(kept)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    nodes = network.chain_nodes[np.repeat(starts, counts) + offsets]
    coords = np.column_stack([network.node_lon[nodes], network.node_lat[nodes]])
    lines = shapely.simplify(shapely.linestrings(coords, indices=index), _TOLERANCE_DEG)
    speed = 3.6 * network.edge_length_m[kept] / np.maximum(network.edge_time_s[kept], 1e-9)
    order = np.lexsort((-network.edge_length_m[kept], -speed))
    within = np.cumsum(shapely.get_num_coordinates(lines[order])) <= max_vertices
    chosen = order[within]
    lines = shapely.transform(lines[chosen], lambda xy: np.round(xy, 5))
    return gpd.GeoDataFrame({"major": (speed[chosen] >= MAJOR_ROAD_KMH).astype(int)}, geometry=lines, crs=4326)


def _one_direction(network: RoadNetwork) -> np.ndarray:
    """Indices of the edges to draw: of two edges joining the same vertices with the same length (the two
    directions of one road), the first."""
    tail, head = network.edge_tail, network.edge_head
    low, high = np.minimum(tail, head), np.maximum(tail, head)
    length = np.round(network.edge_length_m, 1)
    keys = np.rec.fromarrays([low, high, length], names="low,high,length")
    _, first = np.unique(keys, return_index=True)
    return np.sort(first)


def roads_file(network: RoadNetwork, key: str) -> Path | None:
    """:func:`road_lines` as a GeoJSON file in ``static/vendor/roads``, written once per network.

    ``key`` names the network's version (its file's path, size and time);
    None when the folder cannot be written (the map then has no roads).
    """
    path = VENDOR / _FOLDER / f"{_digest(key)}.geojson"
    if path.is_file():
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_geojson(road_lines(network), path)
    except OSError:
        return None


def roads_url(network: RoadNetwork | None, key: str, *, base: str = APP_URL) -> str | None:
    """Where the app serves :func:`roads_file` of this network; None without a network or its file."""
    if network is None or roads_file(network, key) is None:
        return None
    return f"{base}/{_FOLDER}/{_digest(key)}.geojson"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]
