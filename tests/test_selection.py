"""The filters: which links, facilities and flows a view keeps."""

from __future__ import annotations

import pandas as pd
import pytest

from geo.selection import Filters, select_flows, select_links

FLOWS = pd.DataFrame({
    "flow_id": ["a", "b", "c", "d"], "facility_id": ["S", "S", "T", "T"],
    "resource": ["heat.hot_water", "mineral.slag", "heat.steam", "gas.co2"],
    "basis": ["declared", "declared", "inferred", "declared"], "confidential": [False, True, False, False],
})


@pytest.mark.parametrize(("filters", "kept"), [
    (Filters(), ["a", "c", "d"]),  # the public view: no confidential flow
    (Filters(view="screen"), ["a", "c", "d"]),
    (Filters(view="full"), ["a", "b", "c", "d"]),
    (Filters(view="full", groups=["heat"]), ["a", "c"]),
    (Filters(groups=["heat", "mineral"], bases=["declared"]), ["a"]),
    (Filters(countries=["XX"], min_score=99.0), ["a", "c", "d"]),  # facility and link filters do not apply
])
def test_select_flows_keeps_what_the_view_may_show(filters, kept):
    assert select_flows(FLOWS, filters)["flow_id"].tolist() == kept


def test_select_links_follows_the_facility_filters_only_when_set():
    facilities = pd.DataFrame({"facility_id": ["S", "T", "U"], "name": ["Sawmill", "Town heat", "Unused"],
                               "country": ["FI", "SE", "FI"], "cluster": ["", "", ""]})
    links = pd.DataFrame({"supply_facility_id": ["S", "T"], "demand_facility_id": ["T", "T"],
                          "resource": ["biomass.wood_chips", "heat.hot_water"], "basis": ["declared", "declared"],
                          "score": [70.0, 50.0], "distance_km": [10.0, 40.0]})
    assert len(select_links(links, facilities, Filters())) == 2
    assert select_links(links, facilities, Filters(countries=["FI"]))["supply_facility_id"].tolist() == ["S"]
    assert select_links(links, facilities, Filters(search="town", max_km=20.0))["score"].tolist() == [70.0]
    assert select_links(links, facilities, Filters(countries=["DK"])).empty
