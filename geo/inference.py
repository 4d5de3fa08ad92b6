"""Inferring typical flows from a facility's sector (NACE Rev. 2 or E-PRTR activity).

A regional authority often knows only company names, locations and sectors.
:func:`infer_flows` gives such facilities the typical supplies and demands of
their sector profile (``data/knowledge/sector_profiles.csv``), marked
``basis=inferred`` and with unknown quantities, so that potential synergies
show up at all.

Which profile: the most specific one (:meth:`geo.taxonomy.Taxonomy.profile_key`),
an E-PRTR Annex I activity (column ``eprtr_activity``, e.g. ``5(d)`` for a
landfill) before the NACE class, group and division.

Who gets inferred flows:

- a facility with no flows at all;
- a facility whose only flows come from a register import (their ``origin``
  names the register, as :mod:`geo.eprtr` and :mod:`geo.hotmaps` write it):
  the E-PRTR reports CO2 and waste sent off site, Hotmaps CO2 and excess
  heat, never what a plant needs, so the profile fills in the rest;
- never a facility with a flow a user declared: declared flows win.

An inferred flow never repeats a resource the facility already has in the
same direction.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.taxonomy import ACTIVITY_PREFIX, Taxonomy

__all__ = ["REGISTER_ORIGINS", "infer_flows", "register_derived"]

#: Beginnings of the ``origin`` text that mark a flow as taken from a public register or database: the E-PRTR
#: (:mod:`geo.eprtr`) and the Hotmaps industrial database (:data:`geo.hotmaps.ORIGIN`). Such a source reports
#: a plant's CO2, waste or excess heat, never all it supplies and needs, so the sector profile fills in the rest.
REGISTER_ORIGINS = ("E-PRTR", "Hotmaps industrial database")


def infer_flows(
    facilities: gpd.GeoDataFrame, flows: pd.DataFrame, taxonomy: Taxonomy
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Add inferred flows for facilities that declare none of their own.

    Parameters
    ----------
    facilities : GeoDataFrame
        Validated facilities (``facility_id``, ``nace``, optionally
        ``eprtr_activity``).
    flows : DataFrame
        Validated flows; an ``origin`` column, when present, marks the ones
        taken from a register (:data:`REGISTER_ORIGINS`).
    taxonomy : Taxonomy
        Holds the sector profiles.

    Returns
    -------
    flows : DataFrame
        The given flows followed by the inferred ones (same columns;
        inferred rows have ``basis='inferred'``, NaN ``quantity``, empty
        ``evidence`` (when the flows have that column), the
        resource's unit, the profile note as ``description`` and
        ``source`` naming the profile, e.g. ``sector profile NACE 35.11`` or
        ``sector profile E-PRTR activity 5(d)``).
    not_inferred : DataFrame
        Facilities without any flow that got none: ``facility_id``, ``nace``,
        ``reason`` (no NACE code, or no profile for it).
    """
    candidates = _candidates(facilities, flows)
    keys = _profile_keys(candidates, taxonomy)
    candidates = candidates.assign(key=keys)
    bare = candidates[~candidates["facility_id"].isin(set(flows["facility_id"]))]
    missing = bare[bare["key"].isna()]
    not_inferred = missing[["facility_id", "nace"]].assign(
        reason=np.where(missing["nace"] == "", "no NACE code", "no sector profile for NACE " + missing["nace"])
    )
    profiles = taxonomy.profile_rows.rename(columns={"note": "description"})
    inferred = candidates.dropna(subset=["key"]).merge(profiles, on="key", how="inner", sort=False)
    inferred = _without_repeats(inferred, flows)
    number = inferred.groupby("facility_id", sort=False).cumcount() + 1
    inferred = inferred.assign(
        flow_id="inferred " + inferred["facility_id"] + " " + number.astype(str),
        quantity=np.nan,
        unit=inferred["resource"].map(taxonomy.unit),
        ewc="",
        max_distance_km=np.nan,
        confidential=False,
        basis="inferred",
        evidence="",  # no figure of the facility's own: its estimate (geo.estimates) says how it was sized
        source="sector profile " + _profile_name(inferred["key"]),
    )
    columns = list(dict.fromkeys([*flows.columns, "source"]))
    inferred = inferred.reindex(columns=columns)
    combined = pd.concat([flows, inferred], ignore_index=True) if len(inferred) else flows.copy()
    return combined, not_inferred.reset_index(drop=True)


def register_derived(flows: pd.DataFrame) -> pd.Series:
    """True for each flow whose ``origin`` names a register (:data:`REGISTER_ORIGINS`), index-aligned."""
    if "origin" not in flows.columns:
        return pd.Series(False, index=flows.index, name="register_derived")
    origin = flows["origin"].fillna("").astype(str).str.strip()
    return origin.str.startswith(REGISTER_ORIGINS).rename("register_derived")


def _candidates(facilities: gpd.GeoDataFrame, flows: pd.DataFrame) -> pd.DataFrame:
    """Facilities that may get inferred flows: those with no flow a user declared."""
    declared_by_user = set(flows.loc[~register_derived(flows), "facility_id"])
    keep = ~facilities["facility_id"].isin(declared_by_user)
    frame = pd.DataFrame(facilities.loc[keep, ["facility_id", "nace"]])
    frame["nace"] = frame["nace"].fillna("").astype(str)
    activity = facilities.get("eprtr_activity")
    frame["activity"] = activity.loc[keep].fillna("").astype(str) if activity is not None else ""
    return frame


def _profile_keys(candidates: pd.DataFrame, taxonomy: Taxonomy) -> pd.Series:
    """The profile key of each candidate (NaN where none matches), one lookup per distinct sector."""
    pairs = candidates[["nace", "activity"]].drop_duplicates()
    lookup = {(n, a): taxonomy.profile_key(n, a) for n, a in pairs.itertuples(index=False)}
    keys = [lookup[(n, a)] for n, a in zip(candidates["nace"], candidates["activity"], strict=True)]
    return pd.Series(keys, index=candidates.index, dtype=object)


def _without_repeats(inferred: pd.DataFrame, flows: pd.DataFrame) -> pd.DataFrame:
    """Drop inferred rows whose facility already has that resource in that direction."""
    if not len(inferred) or not len(flows):
        return inferred
    have = pd.MultiIndex.from_frame(flows[["facility_id", "direction", "resource"]].astype(str))
    mine = pd.MultiIndex.from_frame(inferred[["facility_id", "direction", "resource"]].astype(str))
    return inferred[~mine.isin(have)].reset_index(drop=True)


def _profile_name(keys: pd.Series) -> pd.Series:
    """``35.11`` -> ``NACE 35.11``; ``eprtr:5(d)`` -> ``E-PRTR activity 5(d)``."""
    activity = keys.str.startswith(ACTIVITY_PREFIX)
    return ("E-PRTR activity " + keys.str[len(ACTIVITY_PREFIX):]).where(activity, "NACE " + keys)
