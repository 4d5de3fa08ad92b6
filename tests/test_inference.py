"""Inferring flows from NACE sector profiles."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from geo.inference import infer_flows
from geo.schema import Dataset
from geo.pipeline import match


def _facilities(*rows):
    frame = pd.DataFrame(rows, columns=["facility_id", "name", "nace", "lon", "lat"])
    frame[["country", "cluster"]] = ""
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame["lon"], frame["lat"]), crs="EPSG:4326")


def _declared(*rows):
    frame = pd.DataFrame(rows, columns=["facility_id", "direction", "resource", "quantity", "unit"])
    frame["flow_id"] = [f"row {i + 2}" for i in range(len(frame))]
    frame[["ewc", "description"]] = ""
    frame["max_distance_km"] = float("nan")
    frame["confidential"] = False
    frame["basis"] = "declared"
    return frame


def test_longest_nace_prefix_wins_and_declared_flows_win(tax):
    fac = _facilities(
        ("P", "Power", "35.11", 25.0, 61.0),    # class profile 35.11 replaces division 35
        ("H", "Heat", "35.30", 25.01, 61.0),    # falls back to division 35
        ("D", "Declared", "35.11", 25.02, 61.0),
        ("N", "No sector", "", 25.03, 61.0),
        ("Q", "No profile", "62.01", 25.04, 61.0),
    )
    flows, missing = infer_flows(fac, _declared(("D", "supply", "heat.steam", 10.0, "MWh/yr")), tax)
    inferred = flows[flows["basis"] == "inferred"]
    assert inferred[inferred["facility_id"] == "P"]["resource"].tolist() == ["heat.steam"]
    assert sorted(inferred[inferred["facility_id"] == "H"]["resource"]) == [
        "biomass.solid_fuel", "heat.hot_water", "mineral.fly_ash"]
    assert "D" not in set(inferred["facility_id"])
    assert inferred["quantity"].isna().all()
    assert set(inferred["source"]) == {"sector profile NACE 35.11", "sector profile NACE 35"}
    assert inferred["flow_id"].is_unique
    assert missing.set_index("facility_id")["reason"].to_dict() == {
        "N": "no NACE code", "Q": "no sector profile for NACE 62.01"}


def test_sector_only_facilities_give_ranked_links(tax):
    fac = _facilities(("P", "Voima", "35.30", 25.0, 61.0), ("C", "Sementti", "23.51", 25.05, 61.02),
                      ("G", "Kasvihuone", "01.13", 25.02, 61.01))
    data = Dataset(fac, _declared())
    result = match(data, taxonomy=tax, infer=True)
    assert len(result.links) > 0
    assert set(result.links["basis"]) == {"inferred"}
    assert (result.links["quantity_basis"] == "unknown").all()
    assert "quantities are not known yet" in result.links["why"].iloc[0]
    assert match(data, taxonomy=tax).links.empty
