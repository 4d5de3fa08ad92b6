"""The public view: links and facilities without company names or exact quantities.

Flows marked ``confidential`` (or every flow, for a public screen) show the
facility's sector instead of its name and a rounded range instead of the
quantity. The app's map and tables and every export take the same frames, so
what a public screen hides, its exports hide too.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

__all__ = ["SECTIONS", "pseudonym", "public_facilities", "public_links", "quantity_range", "sector_label"]

#: Short names of the NACE Rev. 2 sections (our own wording of the section titles).
SECTIONS = {
    "A": "Agriculture, forestry and fishing", "B": "Mining and quarrying", "C": "Manufacturing",
    "D": "Energy supply", "E": "Water supply and waste management", "F": "Construction",
    "G": "Trade and vehicle repair", "H": "Transport and storage", "I": "Hotels and restaurants",
    "J": "Information and communication", "K": "Finance and insurance", "L": "Real estate",
    "M": "Professional and technical services", "N": "Administrative services",
    "O": "Public administration", "P": "Education", "Q": "Health and social work",
    "R": "Arts and recreation", "S": "Other services", "T": "Households", "U": "Extraterritorial bodies",
}

#: Bounds of the quantity ranges shown instead of exact figures (1, 2.5, 5 per decade).
_STEPS = np.array([m * 10.0 ** e for e in range(0, 10) for m in (1, 2.5, 5)])


def sector_label(nace: str | float | None) -> str:
    """``'Manufacturing (NACE C17)'`` for ``'C17.12'``; ``'Unknown sector'`` when empty."""
    if not isinstance(nace, str) or not nace.strip():
        return "Unknown sector"
    code = nace.strip().upper()
    section = code[0] if code[0].isalpha() else ""
    division = code[1:3] if section else code[:2]
    name = SECTIONS.get(section, "Sector")
    return f"{name} (NACE {section}{division})"


def quantity_range(quantity: float, unit: str) -> str:
    """A rounded range such as ``'10,000-25,000 t/yr'`` that contains the quantity."""
    if quantity is None or not np.isfinite(quantity) or quantity <= 0:
        return "not stated"
    upper_i = int(np.searchsorted(_STEPS, quantity, side="right"))
    if upper_i >= len(_STEPS):
        return f"over {_STEPS[-1]:,.0f} {unit}"
    lower = _STEPS[upper_i - 1] if upper_i > 0 else 0.0
    return f"{lower:,.0f}-{_STEPS[upper_i]:,.0f} {unit}"


def public_links(links: pd.DataFrame, *, everything: bool = False) -> pd.DataFrame:
    """Links with names, descriptions and quantities of hidden rows replaced.

    A row is hidden when its ``confidential`` flag is set, or every row when
    ``everything``. Names become sector labels, descriptions are dropped,
    quantities become ranges (``quantity`` is then NaN and ``quantity_range``
    says the range), and the link's explanation is rebuilt without names.
    """
    out = links.copy()
    hide = np.ones(len(out), dtype=bool) if everything else out["confidential"].fillna(False).astype(bool).to_numpy()
    out["quantity_range"] = ""
    if not hide.any():
        return out
    rows = out.index[hide]
    out.loc[rows, "supply_name"] = out.loc[rows, "supply_nace"].map(sector_label)
    out.loc[rows, "demand_name"] = out.loc[rows, "demand_nace"].map(sector_label)
    out.loc[rows, "quantity_range"] = [quantity_range(q, u) for q, u in zip(out.loc[rows, "quantity"],
                                                                          out.loc[rows, "unit"], strict=True)]
    for column in ("quantity", "quantity_low", "quantity_high", "supply_quantity", "demand_quantity",
                   "co2_saved_t_per_yr", "value_eur_per_yr", "transport_cost_eur_per_yr", "transport_co2_t_per_yr",
                   "avoided_co2_t_per_yr", "gross_value_eur_per_yr", "allocated_quantity",
                   "allocated_co2_saved_t_per_yr", "allocated_value_eur_per_yr"):
        if column in out:
            out.loc[rows, column] = np.nan
    for column in ("supply_description", "demand_description", "supply_flow_id", "demand_flow_id",
                   "supply_operator", "demand_operator", "supply_quantity_note", "demand_quantity_note",
                   "allocation_note"):
        if column in out:
            out.loc[rows, column] = ""
    for column in ("supply_facility_id", "demand_facility_id"):
        out.loc[rows, column] = out.loc[rows, column].map(pseudonym)
    out.loc[rows, "why"] = [
        f"{s} can supply {r} to {d}, {km:.0f} km apart; quantity {q}."
        for s, r, d, km, q in zip(out.loc[rows, "supply_name"], out.loc[rows, "resource"], out.loc[rows, "demand_name"],
                                  out.loc[rows, "distance_km"], out.loc[rows, "quantity_range"], strict=True)
    ]
    return out


def public_facilities(facilities: pd.DataFrame) -> pd.DataFrame:
    """Every facility under its sector label and a pseudonymous id, for a public screen.

    Confidentiality is per flow, so with only some flows confidential the
    facilities keep their names (their confidential flows are hidden in the
    links); this is for the view where everything is public-safe.
    """
    out = facilities.copy()
    out["name"] = out["nace"].map(sector_label)
    out["facility_id"] = out["facility_id"].map(pseudonym)
    for column in ("operator", "notes", "source"):
        if column in out:
            out[column] = ""
    return out


def pseudonym(facility_id: str) -> str:
    """A stable stand-in for a facility id that does not spell out the company."""
    return "site-" + hashlib.sha256(str(facility_id).encode()).hexdigest()[:8]
