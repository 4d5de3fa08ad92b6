"""Building road graphs: the drive filter, speeds, one-way streets, components, contraction, cache."""

from __future__ import annotations

import socket

import numpy as np
import pandas as pd
import pytest

from geo import settings
from geo.errors import NetworkError
from geo.network import (
    area_km2,
    build_network,
    drivable,
    edge_speeds_kmh,
    load_network,
    network_from_edges,
    parse_maxspeed_kmh,
    road_network,
    save_network,
)
from tests.conftest import shared

# A 3 x 3 grid of nodes ~111 m apart (0.001 degrees of latitude; longitude
# scaled at 60N), ids 1..9 row by row from the south-west:
#   7 8 9
#   4 5 6
#   1 2 3
DLAT = 0.001
DLON = 0.002


def grid_nodes() -> pd.DataFrame:
    ids = np.arange(1, 10)
    return pd.DataFrame({"id": ids, "lon": 25.0 + ((ids - 1) % 3) * DLON, "lat": 60.0 + ((ids - 1) // 3) * DLAT})


def ways(*rows: tuple) -> pd.DataFrame:
    """Way segments (u, v, highway, oneway)."""
    return pd.DataFrame(rows, columns=["u", "v", "highway", "oneway"])


def grid_ways(oneway: dict | None = None) -> pd.DataFrame:
    overrides = oneway or {}
    pairs = [(1, 2), (2, 3), (4, 5), (5, 6), (7, 8), (8, 9), (1, 4), (4, 7), (2, 5), (5, 8), (3, 6), (6, 9)]
    return ways(*[(u, v, "residential", overrides.get((u, v), "")) for u, v in pairs])


@pytest.mark.parametrize(
    ("tags", "kept"),
    [
        ({"highway": "residential"}, True),
        ({"highway": "primary", "access": "yes"}, True),
        ({"highway": "footway"}, False),
        ({"highway": "service"}, False),
        ({"highway": "cycleway"}, False),
        ({"highway": "residential", "access": "private"}, False),
        ({"highway": "residential", "motor_vehicle": "no"}, False),
        ({"highway": "residential", "motorcar": "no"}, False),
        ({"highway": "pedestrian", "area": "yes"}, False),
        ({"highway": "unclassified", "service": "driveway"}, False),
        ({"highway": ""}, False),
    ],
)
def test_drive_filter_follows_osmnx(tags, kept):
    frame = pd.DataFrame([tags])
    assert drivable(frame).tolist() == [kept]


@pytest.mark.parametrize(
    ("value", "kmh"),
    [("50", 50.0), ("30 mph", 30 * 1.609344), ("50;30", 40.0), ("FI:urban", 50.0), ("FI:rural", 80.0),
     ("SE:rural", 70.0), ("DE:motorway", 130.0), ("RU:living_street", 20.0), ("walk", 7.0)],
)
def test_maxspeed_values(value, kmh):
    assert parse_maxspeed_kmh(pd.Series([value])).iloc[0] == pytest.approx(kmh)


@pytest.mark.parametrize("value", ["none", "signals", "", None])
def test_maxspeed_without_a_number_leaves_the_road_class_to_decide(value):
    assert np.isnan(parse_maxspeed_kmh(pd.Series([value], dtype=object)).iloc[0])


def test_speeds_from_maxspeed_class_and_truck_cap():
    edges = pd.DataFrame({"highway": ["residential", "motorway", "primary", "living_street", "weird_class"],
                          "maxspeed": [None, "120", "60", None, None]})
    speeds = edge_speeds_kmh(edges)
    assert speeds.tolist() == [40.0, settings.TRUCK_MAX_SPEED_KMH, 60.0, 20.0, settings.DEFAULT_ROAD_SPEED_KMH]


def test_grid_is_contracted_and_segments_give_back_every_road():
    net = network_from_edges(grid_nodes(), grid_ways(), directed=False, source="grid")
    assert net.n_nodes == 9
    # corners pass through (two two-way neighbours): 5 vertices remain (the edge midpoints and the centre)
    assert net.n_vertices == 5
    segments = net.segments()
    assert len(segments) == 24
    assert set(zip(net.node_id[segments["tail"]], net.node_id[segments["head"]], strict=True)) == {
        (a, b) for u, v in [(1, 2), (2, 3), (4, 5), (5, 6), (7, 8), (8, 9), (1, 4), (4, 7), (2, 5), (5, 8), (3, 6), (6, 9)]
        for a, b in ((u, v), (v, u))
    }
    assert segments["length_m"].sum() == pytest.approx(net.edge_length_m.sum())
    assert segments["time_s"].sum() == pytest.approx(net.edge_time_s.sum())
    horizontal = segments[(net.node_id[segments["tail"]] == 1) & (net.node_id[segments["head"]] == 2)]
    assert horizontal["length_m"].iloc[0] == pytest.approx(111.4, abs=0.5)  # 0.002 deg at 60N
    assert horizontal["time_s"].iloc[0] == pytest.approx(horizontal["length_m"].iloc[0] / (40 / 3.6))


def test_one_way_streets_and_the_largest_strong_component():
    # 1 -> 2 is one-way (tagged), 2 -> 3 reversed (oneway=-1 means 3 -> 2); node 10 hangs off 9
    # by a one-way street, so it cannot be left again and is dropped with the small components.
    nodes = pd.concat([grid_nodes(), pd.DataFrame({"id": [10], "lon": [25.006], "lat": [60.002]})])
    edges = pd.concat([grid_ways({(1, 2): "yes", (2, 3): "-1"}), ways((9, 10, "residential", "yes"))])
    net = network_from_edges(nodes, edges, directed=False, source="grid")
    segments = net.segments()
    pairs = set(zip(net.node_id[segments["tail"]], net.node_id[segments["head"]], strict=True))
    assert (1, 2) in pairs and (2, 1) not in pairs
    assert (3, 2) in pairs and (2, 3) not in pairs
    assert 10 not in set(net.node_id)
    assert net.info["dropped_nodes"] == 1
    assert net.info["components"] == 2
    assert len(net.isolated_lon) == 1


def test_roundabouts_are_one_way():
    edges = grid_ways()
    edges["junction"] = ""
    edges.loc[0, "junction"] = "roundabout"
    net = network_from_edges(grid_nodes(), edges, directed=False, source="grid")
    pairs = set(zip(net.node_id[net.segments()["tail"]], net.node_id[net.segments()["head"]], strict=True))
    assert (1, 2) in pairs and (2, 1) not in pairs


def test_a_ring_of_pass_through_nodes_keeps_a_vertex():
    ring = ways((1, 2, "residential", ""), (2, 3, "residential", ""), (3, 1, "residential", ""))
    net = network_from_edges(grid_nodes(), ring, directed=False, source="ring")
    assert net.n_nodes == 3
    assert net.n_vertices >= 1
    assert len(net.segments()) == 6


def test_no_drivable_road_is_an_error():
    with pytest.raises(NetworkError, match="no drivable road"):
        network_from_edges(grid_nodes(), ways((1, 2, "footway", "")), directed=False, source="paths")


def test_save_and_load_round_trip(tmp_path):
    net = network_from_edges(grid_nodes(), grid_ways(), directed=False, source="grid", key="k")
    path = save_network(net, tmp_path / "deep" / "grid.npz")
    back = load_network(path)
    assert back.info == net.info
    for name in ("node_id", "edge_length_m", "chain_nodes", "member_offset_s", "isolated_lon"):
        np.testing.assert_array_equal(getattr(back, name), getattr(net, name))
    assert [p.name for p in path.parent.iterdir()] == ["grid.npz"]  # no temporary file left


def test_a_file_that_is_not_a_network_is_refused(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(NetworkError, match="not a road network"):
        load_network(bad)


def test_unknown_format_and_missing_file(tmp_path):
    odd = tmp_path / "roads.shp"
    odd.write_bytes(b"x")
    with pytest.raises(NetworkError, match="unknown road-network format"):
        build_network(odd)
    with pytest.raises(NetworkError, match="no such road-network file"):
        road_network(source=tmp_path / "missing.osm.pbf")


def test_no_file_nothing_cached_and_no_download_says_so():
    with pytest.raises(NetworkError, match="none cached for this area"):
        road_network(bbox=(23.6, 61.4, 23.9, 61.6))


def test_offline_download_fails_fast_with_a_clear_message(monkeypatch):
    def unreachable(*args, **kwargs):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    with pytest.raises(NetworkError, match="seems to be offline.*--network"):
        road_network(bbox=(23.6, 61.4, 23.9, 61.6), download=True)


def test_an_area_too_large_for_one_download_is_refused_before_any_request(monkeypatch):
    def no_request(*args, **kwargs):
        raise AssertionError("no connection may be opened")

    monkeypatch.setattr(socket, "create_connection", no_request)
    with pytest.raises(NetworkError, match="more than the 40,000 km2.*extract file"):
        road_network(bbox=(5.0, 53.9, 30.0, 65.9), download=True)  # the whole demo region
    assert 5_800 < area_km2((23.0, 61.0, 24.0, 62.0)) < 6_000  # 111.2 km x 53 km


def test_pbf_build_is_cached_by_file_digest(_private_cache):
    path = shared("osm", "tampere.osm.pbf")
    first = road_network(source=path)
    cached = list((_private_cache / "roads").glob("*.npz"))
    assert len(cached) == 1
    second = road_network(source=path)
    assert second.info["built_at"] == first.info["built_at"]  # read back, not rebuilt
    np.testing.assert_array_equal(second.edge_length_m, first.edge_length_m)


def test_tampere_pbf_and_xml_give_the_same_roads():
    """pyrosm on the .pbf and osmnx on the XML of the same extract: the same drivable graph, near enough."""
    pbf = build_network(shared("osm", "tampere.osm.pbf"))
    xml = build_network(shared("osm", "tampere.osm.bz2"))
    assert pbf.info["dropped_nodes"] > 0 and pbf.info["components"] > 1
    assert abs(pbf.n_nodes - xml.n_nodes) / xml.n_nodes < 0.01
    assert pbf.edge_length_m.sum() == pytest.approx(xml.edge_length_m.sum(), rel=0.01)
    common = np.intersect1d(pbf.node_id, xml.node_id)
    assert len(common) / xml.n_nodes > 0.99
