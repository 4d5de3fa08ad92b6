"""The offline base map's land: OpenStreetMap's coast under the demo's plants, borders from Natural Earth."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geo.dataset import load_dataset
from layers.assets import VENDOR, border_lines, land_file, land_polygons, land_url, vendored
from tests.conftest import ROOT

#: How far a demo facility may lie from the offline land: plants stand on the shore, the land's coast is
#: generalised to 100 m and simplified by as much again.
SHORE_SLACK_M = 300.0


def _square(lon: float, lat: float, side: float) -> list:
    return [[lon, lat], [lon + side, lat], [lon + side, lat + side], [lon, lat + side], [lon, lat]]


@pytest.fixture(scope="module")
def served_land() -> gpd.GeoDataFrame:
    """The land file the app serves (``make vendor`` writes it), read back."""
    if not (VENDOR / "lands" / "map.geo.json").is_file():
        pytest.skip("OpenStreetMap land not installed (make vendor)")
    path = land_file()
    if path is None:
        pytest.skip(f"{VENDOR} cannot hold the derived land file")
    return gpd.read_file(path)


def test_every_demo_facility_lies_on_the_offline_land_or_its_shore(served_land):
    land = served_land[served_land["kind"] == "land"].to_crs(3035)
    facilities = load_dataset(ROOT / "data" / "demo" / "facilities.csv").facilities.to_crs(3035)
    tree = shapely.STRtree(land.geometry.to_numpy())
    (which, _), gap_m = tree.query_nearest(facilities.geometry.to_numpy(), return_distance=True, all_matches=False)
    distance_m = np.full(len(facilities), np.inf)
    np.minimum.at(distance_m, which, gap_m)
    worst = facilities.assign(m=distance_m.round()).sort_values("m", ascending=False)
    at_sea = worst[worst["m"] > SHORE_SLACK_M]
    assert at_sea.empty, "at sea on the offline map (m from land): " + "; ".join(
        f"{row.name} ({row.facility_id}) {row.m:,.0f} m" for row in at_sea.head(10).itertuples())


def test_the_served_land_is_small_and_credits_its_sources(served_land):
    path = land_file()
    assert path.stat().st_size < 5_000_000  # fetched by every browser that opens the map
    assert set(served_land["kind"]) == {"land", "border"}
    assert served_land["kind"].iloc[-1] == "border"  # borders last: drawn over the land
    from layers.assets import ATTRIBUTION

    assert "OpenStreetMap" in ATTRIBUTION["land"] and "Natural Earth" in ATTRIBUTION["borders"]


def test_the_largest_lakes_stay_cut_out_of_the_land(served_land):
    land = served_land[served_land["kind"] == "land"]
    # the lakes layer's source lacks Ladoga and Vänern: the land's own holes show them
    ladoga, vaenern = shapely.Point(31.5, 60.85), shapely.Point(13.3, 58.9)
    assert not land.intersects(ladoga).any() and not land.intersects(vaenern).any()
    assert land.intersects(shapely.Point(24.94, 60.17)).any()  # Helsinki


def test_land_keeps_the_region_its_islands_and_large_lakes(tmp_path):
    world = {"type": "GeometryCollection", "geometries": [{"type": "MultiPolygon", "coordinates": [
        [_square(24.0, 61.0, 1.0), _square(24.2, 61.2, 0.4), _square(24.8, 61.8, 0.01)],  # land, a lake, a pond
        [_square(21.0, 60.0, 0.05)],  # an island of about 15 km2
        [_square(21.5, 60.0, 0.002)],  # an islet
        [_square(-100.0, 45.0, 1.0)],  # America
    ]}]}
    path = tmp_path / "map.geo.json"
    path.write_text(json.dumps(world), encoding="utf-8")
    land = land_polygons(path, min_island_km2=1.0, min_lake_km2=30.0, tolerance_m=10.0)
    assert list(land["kind"]) == ["land", "land"]
    mainland, island = land.geometry
    assert len(mainland.interiors) == 1  # the lake of about 1,200 km2 cut out, the pond filled
    assert mainland.contains(shapely.Point(24.85, 61.85)) and not mainland.contains(shapely.Point(24.4, 61.4))
    assert island.contains(shapely.Point(21.025, 60.025))
    assert land_polygons(tmp_path / "missing.json") is None


def test_a_ring_that_crosses_itself_is_repaired_not_dropped(tmp_path):
    bow_tie = [[22.0, 60.0], [23.0, 61.0], [23.0, 60.0], [22.0, 61.0], [22.0, 60.0]]
    path = tmp_path / "map.geo.json"
    path.write_text(json.dumps({"type": "GeometryCollection", "geometries": [
        {"type": "Polygon", "coordinates": [bow_tie]}]}), encoding="utf-8")
    land = land_polygons(path, min_island_km2=1.0, tolerance_m=10.0)
    assert len(land) == 2 and land.is_valid.all()
    assert land.union_all().area == pytest.approx(0.5, rel=1e-3)


@pytest.mark.parametrize("quantised", [False, True])
def test_borders_are_the_arcs_two_countries_share(tmp_path, quantised):
    # A west of B: arc 0 is their border, arcs 1 and 2 are each one's coast
    arcs = [[[20.0, 60.0], [20.0, 61.0]],
            [[20.0, 61.0], [19.0, 61.0], [19.0, 60.0], [20.0, 60.0]],
            [[20.0, 60.0], [21.0, 60.0], [21.0, 61.0], [20.0, 61.0]]]
    topology = {"type": "Topology", "arcs": arcs, "objects": {"countries": {"type": "GeometryCollection",
                "geometries": [{"type": "Polygon", "arcs": [[0, 1]], "properties": {"name": "A"}},
                               {"type": "MultiPolygon", "arcs": [[[2, ~0]]], "properties": {"name": "B"}}]}}}
    if quantised:  # world-atlas's form: integer deltas on a grid of 0.5 degrees
        topology["transform"] = {"scale": [0.5, 0.5], "translate": [0.0, 0.0]}
        topology["arcs"] = [np.diff(np.asarray(a) * 2, axis=0, prepend=[[0, 0]]).astype(int).tolist() for a in arcs]
    path = tmp_path / "countries.json"
    path.write_text(json.dumps(topology), encoding="utf-8")
    borders = border_lines(path)
    assert list(borders["kind"]) == ["border"]
    assert shapely.get_coordinates(borders.geometry.iloc[0]).tolist() == [[20.0, 60.0], [20.0, 61.0]]
    assert border_lines(tmp_path / "missing.json") is None


@pytest.mark.skipif(not vendored(), reason="offline assets not installed (make vendor)")
def test_the_app_map_fetches_the_land_and_a_standalone_map_inlines_light_outlines(served_land):
    from layers.basemap import base_map

    fetched = base_map(land_url=land_url()).get_root().render()
    inlined = base_map().get_root().render()
    assert "fetch(urls[name])" in fetched and json.dumps(land_url()) in fetched
    assert '"Finland"' not in fetched and len(fetched) < 40_000  # no coastline in the page itself
    assert '"Finland"' in inlined and "fetch(" not in inlined  # Natural Earth 1:50m, about 120 kB
