"""Synthetic facilities and flows spread over the Baltic Sea Region, for benchmarks.

Facilities cluster around real industrial towns of the region (approximate
town-centre coordinates), each gets a NACE code that has a sector profile,
and its flows are drawn from that profile with log-normal quantities, so the
mix of resources and compatible pairs resembles real data. Seeded: the same
call gives the same data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from geo.taxonomy import Taxonomy

# (lon, lat) of town centres: FI, SE, NO, DK, EE, LV, LT, PL, northern DE
TOWNS = np.array([
    (24.94, 60.17), (23.76, 61.50), (22.27, 60.45), (25.47, 65.01), (24.56, 65.74), (23.13, 63.84),
    (21.80, 61.48), (26.95, 60.47), (25.75, 62.24), (18.07, 59.33), (11.97, 57.71), (13.00, 55.60),
    (13.50, 59.38), (16.19, 58.59), (17.31, 62.39), (22.15, 65.58), (10.75, 59.91), (10.40, 63.43),
    (8.00, 58.15), (5.32, 60.39), (12.57, 55.68), (10.20, 56.16), (9.92, 57.05), (11.09, 55.68),
    (24.75, 59.44), (26.72, 58.38), (28.19, 59.38), (24.11, 56.95), (21.01, 56.51), (25.28, 54.69),
    (21.14, 55.70), (23.90, 54.90), (18.65, 54.35), (14.55, 53.43), (9.99, 53.55), (10.14, 54.32),
    (12.10, 54.09), (10.69, 53.87),
])


def synthetic_facilities(n_facilities: int, taxonomy: Taxonomy, *, rng: np.random.Generator | None = None,
                         seed: int = 0) -> pd.DataFrame:
    """Facilities only, in the engine's input format: for ``match --infer``, whose sector profiles give the flows.

    Every NACE code with a sector profile is equally likely. Ids are ``S``
    and a zero-padded number (six digits, more past a million).
    """
    rng = rng if rng is not None else np.random.default_rng(seed)
    town = rng.integers(0, len(TOWNS), n_facilities)
    lon = TOWNS[town, 0] + rng.normal(0, 0.6, n_facilities)
    lat = TOWNS[town, 1] + rng.normal(0, 0.3, n_facilities)
    codes = np.array(sorted(set(taxonomy.profiles["nace"])))
    nace = codes[rng.integers(0, len(codes), n_facilities)]
    numbers = np.arange(n_facilities).astype(str)
    return pd.DataFrame({
        "facility_id": np.char.add("S", np.char.zfill(numbers, 6)).astype(object),
        "name": np.char.add("Synthetic site ", numbers).astype(object),
        "lat": lat.round(5), "lon": lon.round(5), "nace": nace, "country": "", "cluster": "",
    })


def synthetic_dataset(n_facilities: int, flows_per_facility: int, taxonomy: Taxonomy, *, seed: int = 0):
    """Facilities and flows frames in the engine's input format (text-free of errors)."""
    rng = np.random.default_rng(seed)
    facilities = synthetic_facilities(n_facilities, taxonomy, rng=rng)
    codes = np.array(sorted(set(taxonomy.profiles["nace"])))
    ids, nace = facilities["facility_id"].to_numpy(), facilities["nace"].to_numpy()
    by_code = {c: rows.reset_index(drop=True) for c, rows in taxonomy.profiles.groupby("nace")}
    parts = []
    for code in codes:
        owners = ids[nace == code]
        if len(owners) == 0:
            continue
        profile = by_code[code]
        pick = rng.integers(0, len(profile), (len(owners), flows_per_facility)).ravel()
        rows = profile.iloc[pick].reset_index(drop=True)
        rows["facility_id"] = np.repeat(owners, flows_per_facility)
        parts.append(rows)
    flows = pd.concat(parts, ignore_index=True)
    units = flows["resource"].map(taxonomy.resources["unit"])
    flows = pd.DataFrame({
        "facility_id": flows["facility_id"], "direction": flows["direction"], "resource": flows["resource"],
        "quantity": np.where(units != "", rng.lognormal(8.5, 1.5, len(flows)).round(0), np.nan),
        "unit": units,
    })
    return facilities, flows
