"""Real Finnish E-PRTR facilities through the reader and the validator."""

from __future__ import annotations

from geo.io import read_table
from geo.schema import validate
from tests.conftest import shared


def test_eprtr_facilities_read_with_letters_and_ids_intact(bundled):
    raw = read_table(shared("eprtr_fi", "facilities.csv"))
    assert raw.delimiter == ";" and raw.encoding == "utf-8"
    assert raw.problems == []
    assert len(raw.frame) == 1072
    names = set(raw.frame["nameOfFeature"])
    assert "Pohjanmaan Metallivälitys Oy, Kauhajoki" in names
    assert "Altia Oyj, Rajamäen tehtaat" in names
    assert raw.frame["facilityId"].str.startswith("0").any()  # leading zeros kept

    # map the register's columns to the engine's and validate every row
    raw.frame = raw.frame.rename(columns={
        "Facility_INSPIRE_ID": "facility_id", "nameOfFeature": "name",
        "pointGeometryLat": "lat", "pointGeometryLon": "lon", "countryCode": "country",
    })
    data = validate(raw, None, bundled)
    missing = raw.frame["lat"].str.strip() == ""
    assert len(data.facilities) == (~missing).sum() > 700
    empty_lat = [p for p in data.report.errors if p.message == "latitude is empty"]
    assert len(empty_lat) == missing.sum()
    assert data.facilities.total_bounds[[1, 3]].min() > 59 and data.facilities.total_bounds[3] < 70.1
