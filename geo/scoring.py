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

from geo import settings
from geo.precedent import load_precedents, precedent_support
from geo.settings import ScoringWeights
from geo.taxonomy import Taxonomy

__all__ = ["annuity_factor", "choose_modes", "explain", "link_scores", "link_status", "lookup", "rank_links",
           "score_links", "transport_costs"]


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
    ``quantity_low`` and ``quantity_high`` (the range when a side's quantity
    is an estimate with a range; equal to ``quantity`` otherwise), ``unit``,
    ``quantity_basis``: ``both`` (the smaller of supply and demand),
    ``supply only``, ``demand only`` or ``unknown``, and ``quantity_estimate``:
    empty when every quantity used was stated, otherwise the weakest kind of
    estimate used (``estimated`` or ``sector typical``, from the flows'
    ``estimate`` column). A demand stated in a unit that cannot be converted
    to the supply's counts as unknown.
    """
    resource = candidates["supply_resource"]
    unit = lookup(resource, taxonomy.resources["unit"])
    supply_q, s_low, s_high, s_est = _side(candidates, "supply", taxonomy, unit)
    demand_q, d_low, d_high, d_est = _side(candidates, "demand", taxonomy, unit)
    s_known, d_known = supply_q.notna(), demand_q.notna()
    quantity = np.fmin(supply_q, demand_q)
    basis = np.select(
        [s_known & d_known, s_known, d_known], ["both", "supply only", "demand only"], "unknown"
    )
    # the estimate kinds of the sides whose quantity was used, weakest first
    used_s = s_known & (~d_known | (supply_q <= demand_q))
    used_d = d_known & (~s_known | (demand_q <= supply_q))
    estimate = pd.Series("", index=candidates.index, dtype=object)
    for kind in ("estimated", "sector typical"):
        estimate = estimate.mask((used_s & (s_est == kind)) | (used_d & (d_est == kind)), kind)
    return pd.DataFrame({"quantity": quantity, "quantity_low": np.fmin(s_low, d_low),
                         "quantity_high": np.fmin(s_high, d_high), "unit": unit, "quantity_basis": basis,
                         "quantity_estimate": estimate}, index=candidates.index)


def _side(
    candidates: pd.DataFrame, side: str, taxonomy: Taxonomy, unit: pd.Series
) -> tuple[pd.Series, pd.Series, pd.Series, pd.Series]:
    """One side's quantity, low and high in the supplied resource's ``unit``, and its kind of estimate."""
    factor = pd.Series(_conversion_factors(taxonomy, candidates["supply_resource"], candidates[f"{side}_unit"], unit),
                       index=candidates.index)
    q = candidates[f"{side}_quantity"].astype(float) * factor
    low = (_column(candidates, f"{side}_quantity_low", np.nan).astype(float) * factor).fillna(q)
    high = (_column(candidates, f"{side}_quantity_high", np.nan).astype(float) * factor).fillna(q)
    return q, low, high, _column(candidates, f"{side}_estimate", "").fillna("")


def lookup(keys: pd.Series, table: pd.Series | pd.DataFrame) -> pd.Series | pd.DataFrame:
    """``table``'s entry (a row of a frame) for each key, index-aligned with ``keys``; NaN for a missing key.

    Each distinct key is looked up once and the result spread back by
    position, so a table of millions of links costs what its few dozen
    resource codes or modes cost. Keeps ``table``'s dtypes.
    """
    codes, uniques = pd.factorize(keys.to_numpy(dtype=object), use_na_sentinel=True)
    found = table.reindex(pd.Index(uniques, dtype=object))
    found = pd.concat([found, found.iloc[:0].reindex([None])])  # position -1: a missing key
    taken = found.iloc[codes]
    taken.index = keys.index
    return taken


def _conversion_factors(taxonomy: Taxonomy, resource: pd.Series, from_unit: pd.Series, to_unit: pd.Series) -> np.ndarray:
    """:meth:`geo.taxonomy.Taxonomy.conversion_factors`, called on the distinct (resource, from, to) triples only."""
    columns = [pd.Series(c).astype(object).fillna("").to_numpy(dtype=object) for c in (resource, from_unit, to_unit)]
    key = np.zeros(len(columns[0]), dtype=np.int64)
    for column in columns:
        codes, uniques = pd.factorize(column)
        key = key * (len(uniques) + 1) + codes
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    factors = np.array([taxonomy.conversion_factor(r, f, t) if f and t else np.nan
                        for r, f, t in zip(*(c[first] for c in columns), strict=True)], dtype=float)
    return factors[inverse.ravel()]


def _column(frame: pd.DataFrame, name: str, default) -> pd.Series:
    """A column of ``frame``, or ``default`` on its index when the column is absent."""
    if name in frame.columns:
        return frame[name]
    return pd.Series(default, index=frame.index, dtype=float if default is np.nan else object)


def transport_costs(
    resource: pd.Series, quantity: pd.Series, distance_km: pd.Series, taxonomy: Taxonomy,
    *, mode: pd.Series | None = None,
) -> pd.DataFrame:
    """Yearly transport cost (EUR) and emissions (t CO2) per link.

    Trucks and ships cost ``cost_eur_per_unit_km * quantity * distance`` plus
    ``handling_eur_per_unit * quantity`` (loading and unloading at the
    ports), and emit ``co2_kg_per_unit_km * quantity * distance``. Pipes cost
    their annualised capital (``capex_eur_per_m * length``, times the capital
    recovery factor of the mode's interest rate and lifetime); heat pipes
    take their cost per metre from the capacity class of the yearly heat. NaN
    when the quantity is unknown. ``mode`` names each link's mode; the
    resource's own mode by default.
    """
    mode_names = lookup(resource, taxonomy.resources["transport_mode"]) if mode is None else mode
    figures = taxonomy.modes[["cost_eur_per_unit_km", "co2_kg_per_unit_km", "capex_eur_per_m", "interest_rate",
                              "lifetime_years"]].astype(float)
    figures["handling"] = pd.to_numeric(taxonomy.modes.get("handling_eur_per_unit",
                                                           pd.Series(np.nan, index=taxonomy.modes.index)))
    modes = lookup(mode_names, figures)
    modes.index = resource.index
    q = quantity.astype(float)
    d = distance_km.astype(float)
    handling = modes["handling"].fillna(0.0)
    variable = modes["cost_eur_per_unit_km"].fillna(0.0) * q * d + handling * q
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


def choose_modes(candidates: pd.DataFrame, taxonomy: Taxonomy) -> pd.DataFrame:
    """Road or sea for each candidate: the cheaper per unit where ships can serve it.

    A candidate with a sea route (``sea_km``, see
    :func:`geo.matching.find_candidates`) goes by ship (mode
    :data:`geo.settings.SHIP_MODE`) when it has no road route within its limit, or when
    the ship's handling plus its cost per unit-km over the sea route is below
    the truck's cost per unit-km over the road. Per unit, so the choice holds
    whatever the quantity.

    Returns
    -------
    DataFrame
        Index-aligned ``transport_mode`` and, changed for links by sea,
        ``distance_km`` (the sea route), ``travel_time_min`` (at
        :data:`geo.settings.SHIP_SPEED_KMH`), ``distance_source``
        (``'sea (estimated)'``) and ``max_distance_km``
        (:data:`geo.settings.SHIP_MAX_KM`).
    """
    own = lookup(candidates["supply_resource"], taxonomy.resources["transport_mode"])
    out = candidates[["distance_km", "travel_time_min", "distance_source", "max_distance_km"]].copy()
    out.insert(0, "transport_mode", own)
    sea = _column(candidates, "sea_km", np.nan).astype(float)
    if sea.isna().all() or settings.SHIP_MODE not in taxonomy.modes.index:
        return out
    ship = taxonomy.modes.loc[settings.SHIP_MODE]
    handling = float(np.nan_to_num(pd.to_numeric(ship.get("handling_eur_per_unit"), errors="coerce")))
    per_unit_ship = handling + float(ship["cost_eur_per_unit_km"]) * sea
    per_unit_road = own.map(taxonomy.modes["cost_eur_per_unit_km"]).astype(float) * candidates["distance_km"]
    by_sea = sea.notna() & (per_unit_road.isna() | (per_unit_ship < per_unit_road))
    out.loc[by_sea, "transport_mode"] = settings.SHIP_MODE
    out.loc[by_sea, "distance_km"] = sea[by_sea]
    out.loc[by_sea, "travel_time_min"] = sea[by_sea] / settings.SHIP_SPEED_KMH * 60.0
    out.loc[by_sea, "distance_source"] = "sea (estimated)"
    out.loc[by_sea, "max_distance_km"] = settings.SHIP_MAX_KM
    return out


def _heat_pipe_capex(mwh_per_yr: pd.Series, taxonomy: Taxonomy) -> pd.Series:
    classes = taxonomy.heat_pipes
    edges = classes["min_mwh_per_yr"].to_numpy()
    position = np.searchsorted(edges, mwh_per_yr.fillna(0.0).to_numpy(), side="right") - 1
    capex = classes["capex_eur_per_m"].to_numpy()[np.clip(position, 0, len(edges) - 1)]
    return pd.Series(capex, index=mwh_per_yr.index).where(mwh_per_yr.notna())


def score_links(
    candidates: pd.DataFrame,
    taxonomy: Taxonomy,
    *,
    weights: ScoringWeights | None = None,
    precedents: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Quantities, economics, emissions, status and a 0-100 score for each candidate.

    Parameters
    ----------
    candidates : DataFrame
        From :func:`geo.matching.find_candidates`.
    taxonomy : Taxonomy
        Resource factors and transport modes.
    weights : ScoringWeights, optional
        Score weights and reference values; the defaults otherwise.
    precedents : DataFrame, optional
        Documented exchanges (:func:`geo.precedent.load_precedents`); the
        bundled ones by default.

    Returns
    -------
    DataFrame
        The candidates plus ``resource`` (the supplied one), ``confidential``
        (either flow is), the columns of :func:`matchable_quantity`,
        ``transport_mode``, ``transport_cost_eur_per_yr``,
        ``transport_co2_t_per_yr``, ``avoided_co2_t_per_yr``,
        ``gross_value_eur_per_yr``, ``co2_saved_t_per_yr`` (net),
        ``value_eur_per_yr`` (net), ``basis`` (declared, inferred or mixed),
        the columns of :func:`geo.precedent.precedent_support` and of
        :func:`link_status`, the score's parts ``part_co2``, ``part_value``,
        ``part_distance``, ``part_compatibility``, ``part_precedent`` (each
        0..1), ``confidence`` (0..1), ``score_driver`` (the part that weighs
        most) and ``score``. Money and CO2 are NaN when the quantity is
        unknown. The ``why`` sentence is added by :func:`explain`, after
        ranking, so that only the links kept are described.
    """
    w = weights if weights is not None else ScoringWeights()
    precedents = precedents if precedents is not None else load_precedents()
    candidates = candidates.copy()
    route = choose_modes(candidates, taxonomy)
    candidates[route.columns[1:]] = route[route.columns[1:]]
    qty, transport, avoided, gross = _economics(candidates, taxonomy, route["transport_mode"])
    support = _precedent(candidates, precedents)
    new = pd.concat([qty, transport, support, link_status(candidates)], axis=1).assign(
        avoided_co2_t_per_yr=avoided,
        gross_value_eur_per_yr=gross,
        co2_saved_t_per_yr=avoided - transport["transport_co2_t_per_yr"],
        value_eur_per_yr=gross - transport["transport_cost_eur_per_yr"],
        basis=_link_basis(candidates["supply_basis"], candidates["demand_basis"]),
        resource=candidates["supply_resource"],
        confidential=candidates["supply_confidential"] | candidates["demand_confidential"],
    )
    out = pd.concat([candidates, new], axis=1)
    return pd.concat([out, _score(out, w)], axis=1)


def link_scores(
    candidates: pd.DataFrame,
    taxonomy: Taxonomy,
    *,
    weights: ScoringWeights | None = None,
    precedents: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Only the ``score`` and ``distance_km`` :func:`score_links` gives each candidate, worked out the same way.

    For ranking many candidates of which most are then dropped
    (:func:`geo.pipeline.match` past ``max_links``): it builds no table of
    the other columns and leaves out what the score does not read (link
    status, sentences), so it takes a fraction of the time and memory.
    ``candidates`` needs only the columns the score reads
    (:meth:`geo.matching.CandidateSearch.frame` with ``scoring_only``).

    Returns
    -------
    DataFrame
        Index-aligned ``score`` (0-100) and ``distance_km`` (by the mode
        chosen: the sea route for a link by ship).
    """
    w = weights if weights is not None else ScoringWeights()
    precedents = precedents if precedents is not None else load_precedents()
    route = choose_modes(candidates, taxonomy)
    view = candidates.assign(**{c: route[c] for c in route.columns[1:]})
    qty, transport, avoided, gross = _economics(view, taxonomy, route["transport_mode"])
    links = pd.DataFrame({
        "quantity_basis": qty["quantity_basis"], "quantity_estimate": qty["quantity_estimate"],
        "co2_saved_t_per_yr": avoided - transport["transport_co2_t_per_yr"],
        "value_eur_per_yr": gross - transport["transport_cost_eur_per_yr"],
        "distance_km": view["distance_km"], "max_distance_km": view["max_distance_km"],
        "strength": view["strength"], "precedent_part": _precedent(view, precedents)["precedent_part"],
        "supply_basis": view["supply_basis"], "demand_basis": view["demand_basis"],
    }, index=candidates.index)
    _, weighted, confidence = _weighted_parts(links, w)
    return pd.DataFrame({"score": _score_value(weighted, confidence, w), "distance_km": view["distance_km"]},
                        index=candidates.index)


def _economics(
    candidates: pd.DataFrame, taxonomy: Taxonomy, mode: pd.Series
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """Matchable quantity, transport by ``mode``, and the avoided CO2 (t) and gross value (EUR) a year."""
    qty = matchable_quantity(candidates, taxonomy)
    transport = transport_costs(candidates["supply_resource"], qty["quantity"], candidates["distance_km"], taxonomy,
                                mode=mode)
    factors = lookup(candidates["supply_resource"], taxonomy.resources[["avoided_co2_kg_per_unit", "value_eur_per_unit"]])
    avoided = qty["quantity"] * factors["avoided_co2_kg_per_unit"].to_numpy() / 1000.0
    gross = qty["quantity"] * factors["value_eur_per_unit"].to_numpy()
    return qty, transport, avoided, gross


def _precedent(candidates: pd.DataFrame, precedents: pd.DataFrame) -> pd.DataFrame:
    return precedent_support(_column(candidates, "supply_nace", ""), _column(candidates, "demand_nace", ""),
                             candidates["supply_resource"], precedents)


def _link_basis(supply: pd.Series, demand: pd.Series) -> pd.Series:
    """``declared`` or ``inferred`` when both flows agree, ``mixed`` otherwise."""
    return supply.where(supply == demand, "mixed")


#: Order of the statuses in the ranking: new opportunities first.
STATUS_ORDER = {"new": 0, "same site": 0, "same operator": 1, "existing": 2}


def link_status(candidates: pd.DataFrame) -> pd.DataFrame:
    """Whether a link is a new opportunity, an exchange that already runs, or internal to one operator.

    - ``existing``: the supply flow names the receiver among its ``partners``,
      or the demand flow names the supplier (declared exchanges that run);
    - ``same_operator``: both facilities name the same operator (compared
      without case, up to the first comma, so "Borealis Polymers Oy, Porvoo"
      and "Borealis Polymers Oy" agree);
    - ``same_site``: the two facilities are within
      :data:`geo.settings.SAME_SITE_KM` of each other.

    Returns
    -------
    DataFrame
        Index-aligned ``existing``, ``same_operator``, ``same_site`` (bool)
        and ``status``: ``existing``, ``same operator``, ``same site`` or
        ``new``, in that order of precedence. The ranking puts new and
        same-site links first, then links within one operator, then existing
        exchanges (:data:`STATUS_ORDER`); nothing is hidden.
    """
    existing = (_names(_column(candidates, "supply_partners", ""), candidates["demand_facility_id"])
                | _names(_column(candidates, "demand_partners", ""), candidates["supply_facility_id"]))
    s_op = _operator(_column(candidates, "supply_operator", ""))
    d_op = _operator(_column(candidates, "demand_operator", ""))
    same_operator = (s_op != "") & (s_op == d_op)
    same_site = candidates["straight_km"].astype(float).to_numpy() <= settings.SAME_SITE_KM
    status = np.select([existing, same_operator, same_site], ["existing", "same operator", "same site"], "new")
    return pd.DataFrame({"existing": existing.to_numpy(), "same_operator": same_operator.to_numpy(),
                         "same_site": same_site, "status": status}, index=candidates.index)


def _names(partners: pd.Series, facility: pd.Series) -> pd.Series:
    """Whether each row's partner list (ids separated by spaces or commas) holds the row's facility."""
    out = np.zeros(len(partners), dtype=bool)
    text = partners.fillna("").astype(str).to_numpy(dtype=object)
    rows = np.flatnonzero(text != "")
    if len(rows):
        ids = facility.astype(str).to_numpy(dtype=object)[rows]
        out[rows] = [f in p.replace(",", " ").split() for p, f in zip(text[rows], ids)]
    return pd.Series(out, index=partners.index)


def _operator(text: pd.Series) -> pd.Series:
    """Operator names compared without case, up to the first comma (worked out once per distinct name)."""
    values = text.fillna("").astype(str)
    unique = pd.unique(values.to_numpy(dtype=object))
    key = {u: u.split(",")[0].strip().casefold() for u in unique}
    return pd.Series(values.map(key).to_numpy(dtype=object), index=text.index)


#: Plain words for each part of the score, for the sentence.
PART_WORDS = {
    "co2": "the CO2 it saves", "value": "its net value", "distance": "the short distance",
    "compatibility": "how well the resource fits the need", "precedent": "precedent in documented exchanges",
}


def _score(links: pd.DataFrame, w: ScoringWeights) -> pd.DataFrame:
    """The score's parts, confidence, driver and the 0-100 score."""
    parts, weighted, confidence = _weighted_parts(links, w)
    parts = parts.round(3)
    parts["confidence"] = confidence.round(3)
    parts["score_driver"] = np.array(list(PART_WORDS.values()), dtype=object)[weighted.argmax(axis=1)] if len(links) else []
    parts["score"] = _score_value(weighted, confidence, w)
    return parts


def _score_value(weighted: np.ndarray, confidence: pd.Series, w: ScoringWeights) -> pd.Series:
    """The 0-100 score from the weighted parts and the confidence, to one decimal."""
    total = np.array([w.co2, w.value, w.distance, w.compatibility, w.precedent]).sum()
    return (100.0 * confidence * weighted.sum(axis=1) / total).round(1)


def _weighted_parts(links: pd.DataFrame, w: ScoringWeights) -> tuple[pd.DataFrame, np.ndarray, pd.Series]:
    """The score's parts (0..1, unrounded), each times its weight, and the confidence of each link."""
    basis = links["quantity_basis"]
    known = basis != "unknown"
    certainty = np.where(basis.isin(["supply only", "demand only"]), w.one_sided_quantity_factor, 1.0)
    certainty = certainty * links["quantity_estimate"].map(w.estimate_factors).fillna(1.0).to_numpy()
    co2_part = 1.0 - np.exp(-links["co2_saved_t_per_yr"].clip(lower=0) / w.reference_co2_t_per_yr)
    value_part = 1.0 - np.exp(-links["value_eur_per_yr"].clip(lower=0) / w.reference_value_eur_per_yr)
    parts = pd.DataFrame({
        "part_co2": np.where(known, co2_part.fillna(0.0) * certainty, w.unknown_quantity_part),
        "part_value": np.where(known, value_part.fillna(0.0) * certainty, w.unknown_quantity_part),
        "part_distance": 0.5 ** (links["distance_km"] / (w.half_distance_fraction * links["max_distance_km"])),
        "part_compatibility": links["strength"].astype(float),
        "part_precedent": links["precedent_part"].astype(float),
    }, index=links.index)
    weighted = parts.to_numpy(dtype=float) * np.array([w.co2, w.value, w.distance, w.compatibility, w.precedent])
    conf = w.basis_confidence
    confidence = links["supply_basis"].map(conf).astype(float) * links["demand_basis"].map(conf).astype(float)
    return parts, weighted, confidence


def rank_links(links: pd.DataFrame, *, top: int | None = None, columns: list[str] | None = None) -> pd.DataFrame:
    """Order links best first and number them from 1.

    New opportunities come first (and links between different operators on
    one site with them), then links within one operator, then exchanges that
    already run (:data:`STATUS_ORDER`). Within each, links with stated
    quantities to which the regional allocation
    (:func:`geo.allocation.allocate`) gives nothing, because competitors
    take their supply or demand, follow the others; then by score. Ties in score
    go to the shorter distance, then to facility ids and flow ids, so the
    order is the same on every run. ``top`` keeps the best ``top`` links;
    ``columns`` keeps only those columns (and ``rank``).
    """
    keys = (
        links["demand_flow_id"], links["supply_flow_id"],
        links["demand_facility_id"], links["supply_facility_id"],
    )
    codes = [pd.factorize(k, sort=True)[0] for k in keys]
    status = links["status"].map(STATUS_ORDER).fillna(0).to_numpy() if "status" in links else np.zeros(len(links))
    # a link whose stated supply or demand the regional allocation gives wholly to competitors follows those that
    # carry something, so the default list does not count one tonne twice; estimated quantities are too rough to
    # decide who wins (docs/BENCHMARKS.md: demoting on them lost a third of the documented exchanges found)
    lost = np.zeros(len(links), dtype=bool)
    if "allocated_quantity" in links:
        stated = _column(links, "quantity_estimate", "").fillna("").eq("").to_numpy()
        lost = (links["allocated_quantity"].to_numpy(dtype=float) == 0) & stated
    order = np.lexsort((*codes, links["distance_km"].to_numpy(), -links["score"].to_numpy(), lost, status))
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
    source = links["distance_source"].to_numpy(dtype=object)
    estimated = np.where((source == "estimate") | (source == "sea (estimated)"), " (estimated)", "")
    by = np.where(source == "sea (estimated)", "by sea", "by road")
    parts = {
        "s": links["supply_name"].to_numpy(dtype=object),
        "d": links["demand_name"].to_numpy(dtype=object),
        "w": links["resource"].map(plain).to_numpy(dtype=object),
        "km": _texts(links["distance_km"].round(), _whole),
        "by": by,
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
    return pd.Series(sentences, index=links.index, dtype=object) + _afterword(links)


def _afterword(links: pd.DataFrame) -> pd.Series:
    """What follows the sentence: estimates, precedent, status and what the score rests on."""
    n = len(links)
    out = np.full(n, "", dtype=object)
    estimate = _column(links, "quantity_estimate", "").fillna("").to_numpy(dtype=object)
    out[estimate == "estimated"] += " The quantity is an estimate from the facility's size."
    out[estimate == "sector typical"] += " The quantity is typical of the sector, not of this facility."
    parks = _column(links, "precedent_at", "").fillna("").astype(str)
    named = np.flatnonzero(parks.to_numpy(dtype=object) != "")
    if len(named):
        said = {p: " Such links run at " + re.sub(r", ([^,]*)$", r" and \1", p) + "." for p in parks.iloc[named].unique()}
        out[named] += parks.iloc[named].map(said).to_numpy(dtype=object)
    status = _column(links, "status", "new").fillna("new").to_numpy(dtype=object)
    for kind, text in (("existing", " This exchange already runs."),
                       ("same operator", " Both facilities belong to one operator."),
                       ("same site", " The two facilities share a site.")):
        out[status == kind] += text
    driver = _column(links, "score_driver", "").fillna("").to_numpy(dtype=object)
    rows = np.flatnonzero(driver != "")
    out[rows] += " The score rests mostly on " + driver[rows] + "."
    return pd.Series(out, index=links.index, dtype=object)


# One template per kind of link; filled column-wise with str.format (fast, and
# user text is inserted as text, never interpreted).
_SENTENCES = {
    "unknown": "{} could supply {} to {}, {} km away {}{}; quantities are not known yet, and {}.",
    "gain": "{} could supply {} {} {}{} of {} to {}, {} km away {}{}, saving {} {} t CO2 and EUR {} a year; {}.",
    "loss": ("{} could supply {} {} {}{} of {} to {}, {} km away {}{}, saving {} {} t CO2 a year "
             "at a net cost of EUR {}; {}."),
}
_FIELDS = {
    "unknown": ["s", "w", "d", "km", "by", "est", "why"],
    "gain": ["s", "a", "q", "u", "who", "w", "d", "km", "by", "est", "a", "co2", "eur", "why"],
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
