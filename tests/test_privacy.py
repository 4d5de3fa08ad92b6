"""The public view of real match output: a confidential link keeps no name, operator or exact figure."""

from __future__ import annotations

import numpy as np

from geo.dataset import load_dataset
from geo.pipeline import match
from geo.privacy import public_links
from tests.conftest import ROOT

DEMO = ROOT / "data" / "demo"
#: Columns that would give a confidential flow's size away.
FIGURES = ("quantity", "quantity_low", "quantity_high", "supply_quantity", "demand_quantity", "co2_saved_t_per_yr",
           "value_eur_per_yr", "allocated_quantity", "allocated_co2_saved_t_per_yr", "allocated_value_eur_per_yr")


def test_no_column_of_a_confidential_link_names_its_companies_or_gives_its_quantities():
    data = load_dataset(DEMO / "facilities.csv", DEMO / "flows.csv")
    supplies = data.flows.index[(data.flows["direction"] == "supply") & data.flows["quantity"].gt(1000)]
    data.flows.loc[supplies[:5], "confidential"] = True
    links = match(data).links
    hidden = links[links["confidential"]]
    assert len(hidden)
    public = public_links(links)
    facilities = data.facilities.set_index("facility_id")
    for i in hidden.index:
        row = public.loc[i]
        secrets = set()
        for side in ("supply", "demand"):
            fac = facilities.loc[links.loc[i, f"{side}_facility_id"]]
            secrets |= {fac["name"], links.loc[i, f"{side}_facility_id"], fac["operator"].split(",")[0]} - {""}
        figures = {f"{links.loc[i, c]:,.0f}" for c in ("quantity", "supply_quantity", "demand_quantity")
                   if np.isfinite(links.loc[i, c]) and links.loc[i, c] >= 1000}
        for column, value in row.items():
            if isinstance(value, str):
                assert not any(s in value for s in secrets), (column, value)
                assert not any(f in value for f in figures), (column, value)
            elif isinstance(value, float) and column in FIGURES:
                assert np.isnan(value), column
