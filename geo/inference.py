"""Inferring typical flows from a facility's sector (NACE Rev. 2).

A regional authority often knows only company names, locations and sectors.
:func:`infer_flows` gives each facility that declares no flows the typical
supplies and demands of its sector profile (``data/knowledge/sector_profiles.csv``),
marked ``basis=inferred`` and with unknown quantities, so that potential
synergies show up at all. Declared flows always win: a facility with any
declared flow gets nothing inferred.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.taxonomy import Taxonomy

__all__ = ["infer_flows"]


def infer_flows(
    facilities: gpd.GeoDataFrame, flows: pd.DataFrame, taxonomy: Taxonomy
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Add inferred flows for facilities that declare none.

    Parameters
    ----------
    facilities : GeoDataFrame
        Validated facilities (``facility_id``, ``nace``).
    flows : DataFrame
        Validated declared flows.
    taxonomy : Taxonomy
        Holds the sector profiles.

    Returns
    -------
    flows : DataFrame
        The declared flows followed by the inferred ones (same columns;
        inferred rows have ``basis='inferred'``, NaN ``quantity``, the
        resource's unit, the profile note as ``description`` and
        ``source`` naming the profile).
    not_inferred : DataFrame
        Facilities without flows that got none: ``facility_id``, ``nace``,
        ``reason`` (no NACE code, or no profile for it).
    """
    declared_ids = set(flows["facility_id"])
    bare = pd.DataFrame(facilities.loc[~facilities["facility_id"].isin(declared_ids), ["facility_id", "nace"]])
    profile_code = {n: taxonomy.profile_code_for_nace(n) for n in bare["nace"].unique() if n}
    bare["profile"] = bare["nace"].map(profile_code)
    missing = bare[bare["profile"].isna()]
    not_inferred = missing[["facility_id", "nace"]].assign(
        reason=np.where(missing["nace"] == "", "no NACE code", "no sector profile for NACE " + missing["nace"])
    )
    profiles = taxonomy.profiles.rename(columns={"nace": "profile", "note": "description"})
    inferred = bare.dropna(subset=["profile"]).merge(profiles, on="profile", how="inner", sort=False)
    number = inferred.groupby("facility_id", sort=False).cumcount() + 1
    inferred = inferred.assign(
        flow_id="inferred " + inferred["facility_id"] + " " + number.astype(str),
        quantity=np.nan,
        unit=inferred["resource"].map(taxonomy.unit),
        ewc="",
        max_distance_km=np.nan,
        confidential=False,
        basis="inferred",
        source="sector profile NACE " + inferred["profile"],
    )
    columns = list(dict.fromkeys([*flows.columns, "source"]))
    inferred = inferred.reindex(columns=columns)
    combined = pd.concat([flows, inferred], ignore_index=True) if len(inferred) else flows.copy()
    return combined, not_inferred.reset_index(drop=True)
