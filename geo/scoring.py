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
    """Conversion factor per row, looked up once per distinct (resource, from, to)."""
    keys = pd.MultiIndex.from_arrays([resource.astype(object), from_unit.astype(object), to_unit.astype(object)])
    unique = keys.unique()
    factors = np.array([taxonomy.conversion_factor(r, f, t) if f else np.nan for r, f, t in unique])
    return pd.Series(factors[unique.get_indexer(keys)], index=resource.index)


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
        The candidates plus ``resource`` (the supplied one), ``confidential``
        (either flow is), ``quantity``, ``unit``, ``quantity_basis``,
        ``transport_mode``, ``transport_cost_eur_per_yr``,
        ``transport_co2_t_per_yr``, ``avoided_co2_t_per_yr``,
        ``gross_value_eur_per_yr``, ``co2_saved_t_per_yr`` (net),
        ``value_eur_per_yr`` (net), ``basis`` (declared, inferred or mixed),
        and ``score``. Money and CO2 are NaN when the quantity is unknown.
        The ``why`` sentence is added by :func:`explain`, after ranking, so
        that only the links kept are described.
    """
    w = weights if weights is not None else ScoringWeights()
    qty = matchable_quantity(candidates, taxonomy)
    transport = transport_costs(candidates["supply_resource"], qty["quantity"], candidates["distance_km"], taxonomy)
    factors = taxonomy.resources.loc[candidates["supply_resource"]]
    avoided = qty["quantity"] * factors["avoided_co2_kg_per_unit"].to_numpy() / 1000.0
    gross = qty["quantity"] * factors["value_eur_per_unit"].to_numpy()
    new = pd.concat([qty, transport], axis=1).assign(
        avoided_co2_t_per_yr=avoided,
        gross_value_eur_per_yr=gross,
        co2_saved_t_per_yr=avoided - transport["transport_co2_t_per_yr"],
        value_eur_per_yr=gross - transport["transport_cost_eur_per_yr"],
        basis=_link_basis(candidates["supply_basis"], candidates["demand_basis"]),
        resource=candidates["supply_resource"],
        confidential=candidates["supply_confidential"] | candidates["demand_confidential"],
    )
    out = pd.concat([candidates, new], axis=1)
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


def rank_links(links: pd.DataFrame, *, top: int | None = None, columns: list[str] | None = None) -> pd.DataFrame:
    """Order links best first and number them from 1.

    Ties in score go to the shorter distance, then to facility ids and
    flow ids, so the order is the same on every run. ``top`` keeps the best
    ``top`` links; ``columns`` keeps only those columns (and ``rank``).
    """
    keys = (
        links["demand_flow_id"], links["supply_flow_id"],
        links["demand_facility_id"], links["supply_facility_id"],
    )
    codes = [pd.factorize(k, sort=True)[0] for k in keys]
    order = np.lexsort((*codes, links["distance_km"].to_numpy(), -links["score"].to_numpy()))
    if top is not None:
        order = order[:top]
    ordered = (links if columns is None else links[columns]).iloc[order]
    ordered = ordered.reset_index(drop=True)
    ordered.insert(0, "rank", np.arange(1, len(ordered) + 1))
    return ordered


# -- the sentence ---------------------------------------------------------------


def approx(value: float) -> str:
    """A number rounded to two significant figures, with thousands separators."""
    return _format_rounded(float(_round_two(np.array([value], dtype=float))[0]))


def _round_two(values: np.ndarray) -> np.ndarray:
    """Round to two significant figures; zero, NaN and infinities stay as they are."""
    with np.errstate(divide="ignore", invalid="ignore"):
        magnitude = 10.0 ** (np.floor(np.log10(np.abs(values))) - 1)
        return np.where(np.isfinite(values) & (values != 0), np.round(values / magnitude) * magnitude, values)


def _format_rounded(rounded: float) -> str:
    if not math.isfinite(rounded):
        return "?"
    if rounded == 0:
        return "0"
    return f"{rounded:,.0f}" if abs(rounded) >= 10 else f"{rounded:.2g}"


def explain(links: pd.DataFrame, taxonomy: Taxonomy) -> pd.Series:
    """One sentence per link: what, from whom, to whom, how far, how much, what it saves.

    Each kind of link (quantity unknown, net gain, net cost) has one template
    filled with ``str.format`` over whole columns, and numbers are formatted
    once per distinct rounded value, so hundreds of thousands of links take
    about a second.
    """
    if links.empty:
        return pd.Series([], index=links.index, dtype=object)
    plain = {code: _plain(label) for code, label in taxonomy.resources["label"].items()}
    basis = links["quantity_basis"].to_numpy(dtype=object)
    net = links["value_eur_per_yr"].to_numpy(dtype=float)
    about = np.where(basis == "both", "about", "up to")
    whose = np.select(
        [basis == "supply only", basis == "demand only"],
        [" (the supplier's amount)", " (the receiver's stated need)"], "",
    )
    estimated = np.where(links["distance_source"].to_numpy(dtype=object) == "estimate", " (estimated)", "")
    parts = {
        "s": links["supply_name"].to_numpy(dtype=object),
        "d": links["demand_name"].to_numpy(dtype=object),
        "w": links["resource"].map(plain).to_numpy(dtype=object),
        "km": _texts(links["distance_km"].round(), _whole),
        "est": estimated,
        "a": about,
        "q": _texts(_round_two(links["quantity"].to_numpy(dtype=float)), _format_rounded),
        "u": links["unit"].to_numpy(dtype=object),
        "who": whose,
        "co2": _texts(_round_two(links["co2_saved_t_per_yr"].to_numpy(dtype=float)), _format_rounded),
        "eur": _texts(_round_two(np.abs(net)), _format_rounded),
        "why": _reasons(links, plain).to_numpy(dtype=object),
    }
    kinds = np.select([basis == "unknown", net >= 0], ["unknown", "gain"], "loss")
    sentences = np.empty(len(links), dtype=object)
    for kind, template in _SENTENCES.items():
        rows = np.flatnonzero(kinds == kind)
        if len(rows):
            fields = [parts[name][rows].tolist() for name in _FIELDS[kind]]
            sentences[rows] = list(map(template.format, *fields))
    return pd.Series(sentences, index=links.index, dtype=object)


# One template per kind of link; filled column-wise with str.format (fast, and
# user text is inserted as text, never interpreted).
_SENTENCES = {
    "unknown": "{} could supply {} to {}, {} km away by road{}; quantities are not known yet, and {}.",
    "gain": "{} could supply {} {} {}{} of {} to {}, {} km away by road{}, saving {} {} t CO2 and EUR {} a year; {}.",
    "loss": ("{} could supply {} {} {}{} of {} to {}, {} km away by road{}, saving {} {} t CO2 a year "
             "at a net cost of EUR {}; {}."),
}
_FIELDS = {
    "unknown": ["s", "w", "d", "km", "est", "why"],
    "gain": ["s", "a", "q", "u", "who", "w", "d", "km", "est", "a", "co2", "eur", "why"],
}
_FIELDS["loss"] = _FIELDS["gain"]


def _texts(values, fmt) -> np.ndarray:
    """``fmt`` of every value, calling it once per distinct value."""
    unique, inverse = np.unique(np.asarray(values, dtype=float), return_inverse=True)
    return np.array([fmt(float(u)) for u in unique], dtype=object)[inverse.ravel()]


def _whole(value: float) -> str:
    return f"{value:,.0f}" if math.isfinite(value) else "?"


def _plain(label: str) -> str:
    """A label for the middle of a sentence: no parenthetical, first letter lower case."""
    text = re.sub(r"\s*\([^)]*\)", "", label).strip()
    if len(text) > 1 and text[1].islower():
        text = text[0].lower() + text[1:]
    return text


def _reasons(links: pd.DataFrame, plain: dict[str, str]) -> pd.Series:
    """Why the receiver can use the resource: the rule's reason, or a plain statement."""
    reasons = links["reason"].fillna("").astype(object)
    stated = reasons.map({r: _sentence_part(r) for r in reasons.unique()})
    group = "the receiver takes any " + links["demand_resource"].map(plain).astype(object)
    use = pd.Series("the receiver uses this resource", index=links.index, dtype=object)
    out = use.where(links["rule"] != "group", group)
    return out.where(~((links["rule"] == "substitution") & (stated != "")), stated)


def _sentence_part(reason: str) -> str:
    text = reason.strip().rstrip(".")
    return text[:1].lower() + text[1:] if text else ""
