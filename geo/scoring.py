"""Scoring and ranking candidate links, and explaining each in one sentence.

For every candidate :func:`score_links` works out the matchable quantity
(unknown quantities are kept as unknown, never guessed), the yearly transport
cost and emissions of the resource's transport mode, the avoided emissions and
value of using the by-product instead of a virgin input or disposal, the net
CO2 and EUR per year, a distance decay, and a 0-100 score from the documented
:class:`~geo.settings.ScoringWeights`. :func:`rank_links` orders them and
numbers the ranks. Each link gets a ``why`` a cluster manager can read aloud.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from geo.settings import ScoringWeights
from geo.taxonomy import Taxonomy

__all__ = ["annuity_factor", "explain", "rank_links", "score_links", "transport_costs"]


def annuity_factor(interest_rate, lifetime_years):
    """Share of a capital cost paid each year over its lifetime (capital recovery factor)."""
    r = np.asarray(interest_rate, dtype=float)
    n = np.asarray(lifetime_years, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = r / (1.0 - (1.0 + r) ** -n)
    return np.where(r == 0, 1.0 / n, factor)


def matchable_quantity(candidates: pd.DataFrame, taxonomy: Taxonomy) -> pd.DataFrame:
    """Quantity that can change hands per year, in the supplied resource's unit.

    Returns a frame with ``quantity`` (NaN when neither side states one),
    ``unit`` and ``quantity_basis``: ``both`` (the smaller of supply and
    demand), ``supply only``, ``demand only`` or ``unknown``. A demand stated
    in a unit that cannot be converted to the supply's counts as unknown.
    """
    resource = candidates["supply_resource"]
    unit = resource.map(taxonomy.resources["unit"])
    to_supply = _factors(taxonomy, resource, candidates["supply_unit"], unit)
    to_demand = _factors(taxonomy, resource, candidates["demand_unit"], unit)
    supply_q = candidates["supply_quantity"].astype(float) * to_supply
    demand_q = candidates["demand_quantity"].astype(float) * to_demand
    s_known, d_known = supply_q.notna(), demand_q.notna()
    quantity = np.fmin(supply_q, demand_q)
    basis = np.select(
        [s_known & d_known, s_known, d_known], ["both", "supply only", "demand only"], "unknown"
    )
    return pd.DataFrame({"quantity": quantity, "unit": unit, "quantity_basis": basis}, index=candidates.index)


def _factors(taxonomy: Taxonomy, resource: pd.Series, from_unit: pd.Series, to_unit: pd.Series) -> pd.Series:
    keys = pd.DataFrame({"r": resource, "f": from_unit, "t": to_unit})
    unique = keys.drop_duplicates()
    lookup = {
        (r, f, t): taxonomy.conversion_factor(r, f, t) if f else np.nan
        for r, f, t in unique.itertuples(index=False)
    }
    return pd.Series([lookup[k] for k in zip(keys["r"], keys["f"], keys["t"])], index=resource.index)


def transport_costs(
    resource: pd.Series, quantity: pd.Series, distance_km: pd.Series, taxonomy: Taxonomy
) -> pd.DataFrame:
    """Yearly transport cost (EUR) and emissions (t CO2) per link.

    Trucks cost ``cost_eur_per_unit_km * quantity * distance`` and emit
    ``co2_kg_per_unit_km * quantity * distance``. Pipes cost their annualised
    capital (``capex_eur_per_m * length``, times the capital recovery factor
    of the mode's interest rate and lifetime); heat pipes take their cost per
    metre from the capacity class of the yearly heat. NaN when the quantity is
    unknown.
    """
    mode_names = resource.map(taxonomy.resources["transport_mode"])
    modes = taxonomy.modes.loc[mode_names]
    modes.index = resource.index
    q = quantity.astype(float)
    d = distance_km.astype(float)
    variable = modes["cost_eur_per_unit_km"].fillna(0.0) * q * d
    capex_per_m = modes["capex_eur_per_m"].copy()
    is_heat = mode_names.eq("heat_pipe")
    if is_heat.any():
        capex_per_m[is_heat] = _heat_pipe_capex(q[is_heat], taxonomy)
    recovery = annuity_factor(modes["interest_rate"].fillna(0.0), modes["lifetime_years"].fillna(1.0))
    annual_capex = capex_per_m.fillna(0.0) * d * 1000.0 * recovery
    return pd.DataFrame(
        {
            "transport_mode": mode_names,
            "transport_cost_eur_per_yr": (variable + annual_capex).where(q.notna()),
            "transport_co2_t_per_yr": (modes["co2_kg_per_unit_km"].fillna(0.0) * q * d / 1000.0).where(q.notna()),
        },
        index=resource.index,
    )


def _heat_pipe_capex(mwh_per_yr: pd.Series, taxonomy: Taxonomy) -> pd.Series:
    classes = taxonomy.heat_pipes
    edges = classes["min_mwh_per_yr"].to_numpy()
    position = np.searchsorted(edges, mwh_per_yr.fillna(0.0).to_numpy(), side="right") - 1
    capex = classes["capex_eur_per_m"].to_numpy()[np.clip(position, 0, len(edges) - 1)]
    return pd.Series(capex, index=mwh_per_yr.index).where(mwh_per_yr.notna())


def score_links(
    candidates: pd.DataFrame, taxonomy: Taxonomy, *, weights: ScoringWeights | None = None
) -> pd.DataFrame:
    """Quantities, economics, emissions and a 0-100 score for each candidate.

    Parameters
    ----------
    candidates : DataFrame
        From :func:`geo.matching.find_candidates`.
    taxonomy : Taxonomy
        Resource factors and transport modes.
    weights : ScoringWeights, optional
        Score weights and reference values; the defaults otherwise.

    Returns
    -------
    DataFrame
        The candidates plus ``quantity``, ``unit``, ``quantity_basis``,
        ``transport_mode``, ``transport_cost_eur_per_yr``,
        ``transport_co2_t_per_yr``, ``avoided_co2_t_per_yr``,
        ``gross_value_eur_per_yr``, ``co2_saved_t_per_yr`` (net),
        ``value_eur_per_yr`` (net), ``basis`` (declared, inferred or mixed),
        and ``score``. Money and CO2 are NaN when the quantity is unknown.
        The ``why`` sentence is added by :func:`explain`, after ranking, so
        that only the links kept are described.
    """
    w = weights if weights is not None else ScoringWeights()
    out = candidates.copy()
    qty = matchable_quantity(candidates, taxonomy)
    out[["quantity", "unit", "quantity_basis"]] = qty
    transport = transport_costs(out["supply_resource"], out["quantity"], out["distance_km"], taxonomy)
    out[transport.columns] = transport
    factors = taxonomy.resources.loc[out["supply_resource"]]
    avoided_kg = factors["avoided_co2_kg_per_unit"].to_numpy()
    value = factors["value_eur_per_unit"].to_numpy()
    out["avoided_co2_t_per_yr"] = out["quantity"] * avoided_kg / 1000.0
    out["gross_value_eur_per_yr"] = out["quantity"] * value
    out["co2_saved_t_per_yr"] = out["avoided_co2_t_per_yr"] - out["transport_co2_t_per_yr"]
    out["value_eur_per_yr"] = out["gross_value_eur_per_yr"] - out["transport_cost_eur_per_yr"]
    out["basis"] = _link_basis(out["supply_basis"], out["demand_basis"])
    out["score"] = _score(out, w)
    return out


def _link_basis(supply: pd.Series, demand: pd.Series) -> pd.Series:
    """``declared`` or ``inferred`` when both flows agree, ``mixed`` otherwise."""
    return supply.where(supply == demand, "mixed")


def _score(links: pd.DataFrame, w: ScoringWeights) -> pd.Series:
    known = links["quantity_basis"] != "unknown"
    one_sided = links["quantity_basis"].isin(["supply only", "demand only"])
    co2_part = 1.0 - np.exp(-links["co2_saved_t_per_yr"].clip(lower=0) / w.reference_co2_t_per_yr)
    value_part = 1.0 - np.exp(-links["value_eur_per_yr"].clip(lower=0) / w.reference_value_eur_per_yr)
    certainty = np.where(one_sided, w.one_sided_quantity_factor, 1.0)
    co2_part = np.where(known, co2_part.fillna(0.0) * certainty, w.unknown_quantity_part)
    value_part = np.where(known, value_part.fillna(0.0) * certainty, w.unknown_quantity_part)
    half_km = w.half_distance_fraction * links["max_distance_km"]
    distance_part = 0.5 ** (links["distance_km"] / half_km)
    compat_part = links["strength"].astype(float)
    total = w.co2 + w.value + w.distance + w.compatibility
    blend = (w.co2 * co2_part + w.value * value_part + w.distance * distance_part
             + w.compatibility * compat_part) / total
    conf = w.basis_confidence
    confidence = links["supply_basis"].map(conf).astype(float) * links["demand_basis"].map(conf).astype(float)
    return (100.0 * confidence * blend).round(1)


def rank_links(links: pd.DataFrame, *, top: int | None = None) -> pd.DataFrame:
    """Order links best first and number them from 1.

    Ties in score go to the shorter distance, then to facility ids and
    flow ids, so the order is the same on every run. ``top`` keeps the best
    ``top`` links.
    """
    ordered = links.sort_values(
        ["score", "distance_km", "supply_facility_id", "demand_facility_id", "supply_flow_id", "demand_flow_id"],
        ascending=[False, True, True, True, True, True],
        kind="mergesort",
    )
    if top is not None:
        ordered = ordered.head(top)
    ordered = ordered.reset_index(drop=True)
    ordered.insert(0, "rank", np.arange(1, len(ordered) + 1))
    return ordered


# -- the sentence ---------------------------------------------------------------


def approx(value: float) -> str:
    """A number rounded to two significant figures, with thousands separators."""
    if value is None or not math.isfinite(value):
        return "?"
    if value == 0:
        return "0"
    magnitude = 10 ** (math.floor(math.log10(abs(value))) - 1)
    rounded = round(value / magnitude) * magnitude
    return f"{rounded:,.0f}" if abs(rounded) >= 10 else f"{rounded:.2g}"


def explain(links: pd.DataFrame, taxonomy: Taxonomy) -> pd.Series:
    """One sentence per link: what, from whom, to whom, how far, how much, what it saves."""
    labels = taxonomy.resources["label"]
    sentences = []
    for row in links.itertuples(index=False):
        what = _plain(labels.get(row.supply_resource, row.supply_resource))
        how_far = f"{row.distance_km:.0f} km away by road" + (
            " (estimated)" if row.distance_source == "estimate" else ""
        )
        reason = _reason(row, labels)
        if row.quantity_basis == "unknown":
            sentences.append(
                f"{row.supply_name} could supply {what} to {row.demand_name}, {how_far}; "
                f"quantities are not known yet, and {reason}."
            )
            continue
        if row.quantity_basis == "both":
            about, amount = "about", f"about {approx(row.quantity)} {row.unit}"
        else:
            whose = "supplier's amount" if row.quantity_basis == "supply only" else "receiver's stated need"
            about, amount = "up to", f"up to {approx(row.quantity)} {row.unit} (the {whose})"
        saving = f"saving {about} {approx(row.co2_saved_t_per_yr)} t CO2"
        if row.value_eur_per_yr >= 0:
            saving += f" and EUR {approx(row.value_eur_per_yr)} a year"
        else:
            saving += f" a year at a net cost of EUR {approx(-row.value_eur_per_yr)}"
        sentences.append(
            f"{row.supply_name} could supply {amount} of {what} to {row.demand_name}, "
            f"{how_far}, {saving}; {reason}."
        )
    return pd.Series(sentences, index=links.index, dtype=object)


def _plain(label: str) -> str:
    """A label for the middle of a sentence: no parenthetical, first letter lower case."""
    text = re.sub(r"\s*\([^)]*\)", "", label).strip()
    if len(text) > 1 and text[1].islower():
        text = text[0].lower() + text[1:]
    return text


def _reason(row, labels: pd.Series) -> str:
    if row.rule == "substitution" and row.reason:
        text = row.reason.rstrip(".")
        return text[0].lower() + text[1:]
    if row.rule == "group":
        group = _plain(labels.get(row.demand_resource, row.demand_resource))
        return f"the receiver takes any {group}"
    return "the receiver uses this resource"
