"""Road distances: hand-checkable graphs, then real OpenStreetMap data against a networkx oracle."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from geo import routing, settings
from geo.distance import great_circle_km, link_distances
from geo.network import RoadNetwork, build_network, network_from_edges
from geo.routing import road_distances, route, snap
from tests.conftest import shared
from tests.test_network import grid_nodes, grid_ways, ways

STEP_M = 111.4  # 0.002 degrees of longitude at 60N, the grid's horizontal step


def line_network(n: int = 5, oneway: str = "") -> RoadNetwork:
    """n nodes on a straight east-west road, ids 1..n, STEP_M apart."""
    nodes = pd.DataFrame({"id": np.arange(1, n + 1), "lon": 25.0 + np.arange(n) * 0.002, "lat": 60.0})
    return network_from_edges(nodes, ways(*[(i, i + 1, "residential", oneway) for i in range(1, n)]),
                              directed=False, source="line")


def at(net: RoadNetwork, osm_id: int) -> tuple[float, float]:
    i = int(np.flatnonzero(net.node_id == osm_id)[0])
    return float(net.node_lon[i]), float(net.node_lat[i])


def distances(net: RoadNetwork, pairs: list[tuple[int, int]], max_km: float = 50.0,
              method: str = "auto") -> pd.DataFrame:
    a = np.array([at(net, p) for p, _ in pairs])
    b = np.array([at(net, q) for _, q in pairs])
    return road_distances(net, a[:, 0], a[:, 1], b[:, 0], b[:, 1], max_km=max_km, method=method)


#: Both many-to-many searches must give the same answers.
METHODS = pytest.mark.parametrize("method", ["dijkstra", "hierarchy"])


@METHODS
def test_pairs_along_one_road_between_its_junctions(method):
    net = line_network()
    assert net.n_vertices == 2  # the two dead ends; 2, 3 and 4 pass through
    got = distances(net, [(2, 4), (4, 2), (1, 5), (3, 3), (2, 5)], method=method)
    expected = np.array([2, 2, 4, 0, 3]) * STEP_M / 1000
    np.testing.assert_allclose(got["road_km"], expected, rtol=2e-3)
    np.testing.assert_allclose(got["travel_time_min"], got["road_km"] / 40 * 60, rtol=1e-9)
    assert (got["unroutable_reason"] == "").all()


@METHODS
def test_one_way_order_matters(method):
    # a one-way ring 1 -> 2 -> 3 -> 4 -> 1 around the grid's lower-left square
    nodes = grid_nodes()
    ring = ways((1, 2, "residential", "yes"), (2, 5, "residential", "yes"), (5, 4, "residential", "yes"),
                (4, 1, "residential", "yes"))
    net = network_from_edges(nodes, ring, directed=False, source="ring")
    got = distances(net, [(1, 2), (2, 1)], method=method)
    side = got["road_km"].iloc[0]
    assert side == pytest.approx(STEP_M / 1000, rel=2e-3)
    assert got["road_km"].iloc[1] > 2.5 * side  # the long way round: 2 -> 5 -> 4 -> 1


@METHODS
def test_search_stops_at_the_limit(method):
    net = line_network()
    got = distances(net, [(1, 5), (1, 2)], max_km=0.3, method=method)
    assert np.isinf(got["road_km"].iloc[0]) and np.isnan(got["travel_time_min"].iloc[0])
    assert got["road_km"].iloc[1] == pytest.approx(STEP_M / 1000, rel=2e-3)


def test_island_far_point_and_outside_area_are_reported():
    # the grid is the mainland; nodes 11-12 are an island's own road, 3 km east, with no bridge
    nodes = pd.concat([grid_nodes(), pd.DataFrame({"id": [11, 12], "lon": [25.06, 25.062], "lat": [60.0, 60.0]})])
    edges = pd.concat([grid_ways(), ways((11, 12, "residential", ""))])
    net = network_from_edges(nodes, edges, directed=False, source="grid+island")
    island, lake, faraway, mainland = (25.061, 60.0), (25.03, 60.017), (27.0, 61.0), at(net, 5)
    points = np.array([island, lake, faraway, mainland])
    snapped = snap(net, points[:, 0], points[:, 1])
    assert "no link to the road network" in snapped.reason[0]
    assert "km from the nearest drivable road" in snapped.reason[1]
    assert snapped.reason[2] == "outside the road network's area"
    assert snapped.reason[3] == "" and snapped.snap_km[3] == pytest.approx(0, abs=1e-9)
    got = road_distances(net, points[:, 0], points[:, 1], [mainland[0]] * 4, [mainland[1]] * 4, max_km=50)
    assert got["road_km"].iloc[:3].isna().all()
    assert got["unroutable_reason"].iloc[0].startswith("supplier is beside a road with no link")
    assert got["road_km"].iloc[3] == 0


def test_link_distances_routes_what_the_network_covers_and_estimates_the_rest():
    net = line_network()
    a, b = at(net, 1), at(net, 5)
    out = link_distances([a[0], 27.0], [a[1], 61.0], [b[0], 27.1], [b[1], 61.1], network=net, max_km=50)
    assert out["distance_source"].tolist() == ["road", "estimate"]
    assert out["distance_km"].iloc[0] == pytest.approx(4 * STEP_M / 1000, rel=2e-3)
    assert out["distance_km"].iloc[1] == pytest.approx(out["straight_km"].iloc[1] * settings.ROAD_CIRCUITY_FACTOR)


def test_facility_beside_the_road_pays_the_leg():
    net = line_network()
    lon, lat = at(net, 3)
    off = 0.001  # ~111 m north of node 3
    got = road_distances(net, [lon], [lat + off], [at(net, 5)[0]], [at(net, 5)[1]], max_km=50)
    assert got["from_snap_km"].iloc[0] == pytest.approx(0.1112, rel=1e-2)
    assert got["road_km"].iloc[0] == pytest.approx(2 * STEP_M / 1000 + got["from_snap_km"].iloc[0], rel=2e-3)


# --- real OpenStreetMap data --------------------------------------------------

@pytest.fixture(scope="module")
def tampere() -> RoadNetwork:
    return build_network(shared("osm", "tampere.osm.pbf"))


@pytest.fixture(scope="module")
def tampere_points(tampere):
    """The 18 E-PRTR facilities inside the extract, plus 40 points within 300 m of its roads."""
    fac = pd.read_csv(shared("eprtr_fi", "facilities.csv"), sep=";").drop_duplicates("Facility_INSPIRE_ID")
    inside = fac[fac["pointGeometryLon"].between(23.5566, 23.8922) & fac["pointGeometryLat"].between(61.4459, 61.5580)]
    assert len(inside) == 18
    rng = np.random.default_rng(7)
    picks = rng.choice(tampere.n_nodes, 40, replace=False)
    lon = np.concatenate([inside["pointGeometryLon"], tampere.node_lon[picks] + rng.uniform(-0.004, 0.004, 40)])
    lat = np.concatenate([inside["pointGeometryLat"], tampere.node_lat[picks] + rng.uniform(-0.002, 0.002, 40)])
    return lon, lat


def oracle_graph(net: RoadNetwork) -> nx.DiGraph:
    """networkx graph of the uncontracted road segments (no contraction, no virtual vertices)."""
    seg = net.segments()
    graph = nx.DiGraph()
    graph.add_weighted_edges_from(zip(seg["tail"], seg["head"], seg["length_m"], strict=True), weight="length")
    for t, h, s in zip(seg["tail"], seg["head"], seg["time_s"], strict=True):
        graph[t][h]["time"] = s
    return graph


def check_against_oracle(net: RoadNetwork, lon: np.ndarray, lat: np.ndarray, max_km: float, method: str) -> int:
    n = len(lon)
    a, b = np.repeat(np.arange(n), n), np.tile(np.arange(n), n)
    got = road_distances(net, lon[a], lat[a], lon[b], lat[b], max_km=max_km, method=method)
    ends = snap(net, lon, lat)
    graph = oracle_graph(net)
    compared = 0
    for i in np.flatnonzero(ends.ok):
        by_length = nx.single_source_dijkstra_path_length(graph, ends.node[i], weight="length")
        by_time = nx.single_source_dijkstra_path_length(graph, ends.node[i], weight="time")
        for j in np.flatnonzero(ends.ok):
            k = i * n + j
            legs = ends.snap_km[i] + ends.snap_km[j]
            expected = by_length.get(ends.node[j], np.inf) / 1000 + legs
            if expected > max_km:
                assert np.isinf(got["road_km"].iloc[k])
                continue
            assert got["road_km"].iloc[k] == pytest.approx(expected, rel=1e-9, abs=1e-9)
            minutes = by_time[ends.node[j]] / 60 + legs / settings.SITE_ACCESS_SPEED_KMH * 60
            assert got["travel_time_min"].iloc[k] == pytest.approx(minutes, rel=1e-9, abs=1e-9)
            compared += 1
    unroutable = ~ends.ok[a] | ~ends.ok[b]
    assert got["road_km"][unroutable].isna().all()
    assert (got["unroutable_reason"][unroutable] != "").all()
    routed = np.isfinite(got["road_km"].to_numpy())
    straight = great_circle_km(lon[a], lat[a], lon[b], lat[b])
    assert (got["road_km"].to_numpy()[routed] >= straight[routed] - 1e-9).all()
    return compared


@METHODS
def test_tampere_distances_and_times_agree_with_networkx(tampere, tampere_points, method):
    compared = check_against_oracle(tampere, *tampere_points, max_km=50.0, method=method)
    assert compared > 2500


@METHODS
def test_tampere_cutoff_agrees_with_networkx(tampere, tampere_points, method):
    assert check_against_oracle(tampere, *tampere_points, max_km=6.0, method=method) > 300


@METHODS
def test_kotka_distances_agree_with_networkx(method):
    pyrosm = pytest.importorskip("pyrosm")
    net = build_network(pyrosm.get_data("test_pbf"))
    rng = np.random.default_rng(3)
    picks = rng.choice(net.n_nodes, 30, replace=False)
    lon = net.node_lon[picks] + rng.uniform(-0.001, 0.001, 30)
    lat = net.node_lat[picks] + rng.uniform(-0.0005, 0.0005, 30)
    assert check_against_oracle(net, lon, lat, max_km=10.0, method=method) == 900


@METHODS
def test_threads_give_what_one_thread_gives(tampere, tampere_points, monkeypatch, method):
    lon, lat = tampere_points
    n = len(lon)
    a, b = np.repeat(np.arange(n), n), np.tile(np.arange(n), n)
    serial = road_distances(tampere, lon[a], lat[a], lon[b], lat[b], max_km=20.0, workers=1, method=method)
    monkeypatch.setattr(routing, "_PARALLEL_WORK", 0)
    parallel = road_distances(tampere, lon[a], lat[a], lon[b], lat[b], max_km=20.0, workers=2, method=method)
    pd.testing.assert_frame_equal(serial, parallel)


def test_route_geometry_follows_the_road(tampere, tampere_points):
    lon, lat = tampere_points
    best = road_distances(tampere, np.repeat(lon[0], 5), np.repeat(lat[0], 5), lon[1:6], lat[1:6], max_km=50.0)
    ends = snap(tampere, lon[:6], lat[:6])
    for j in range(1, 6):
        shortest = route(tampere, lon[0], lat[0], lon[j], lat[j])
        fastest = route(tampere, lon[0], lat[0], lon[j], lat[j], weight="time")
        assert shortest.distance_km == pytest.approx(best["road_km"].iloc[j - 1], rel=1e-9)
        assert fastest.travel_time_min == pytest.approx(best["travel_time_min"].iloc[j - 1], rel=1e-9)
        assert fastest.distance_km >= shortest.distance_km - 1e-9
        assert shortest.travel_time_min >= fastest.travel_time_min - 1e-9
        coords = np.asarray(shortest.geometry.coords)
        start = (tampere.node_lon[ends.node[0]], tampere.node_lat[ends.node[0]])
        end = (tampere.node_lon[ends.node[j]], tampere.node_lat[ends.node[j]])
        np.testing.assert_allclose(coords[0], start)
        np.testing.assert_allclose(coords[-1], end)
        drawn_km = great_circle_km(coords[:-1, 0], coords[:-1, 1], coords[1:, 0], coords[1:, 1]).sum()
        assert drawn_km + ends.snap_km[0] + ends.snap_km[j] == pytest.approx(shortest.distance_km, rel=1e-9)


def test_route_of_an_unroutable_link_says_why():
    net = line_network()
    result = route(net, 27.0, 61.0, *at(net, 1))
    assert result.geometry is None and np.isnan(result.distance_km)
    assert result.reason == "outside the road network's area"
