"""Competition-aware allocation: each tonne, MWh and m3 assigned once over the region.

Pairwise links double count. Three suppliers that could each fill a
receiver's 60,000 t/yr of CO2 give three links of 60,000 t/yr, and adding up
their savings counts one demand three times. :func:`allocate` solves one
linear program over every link of a run: each supply flow gives at most what
it has, each demand flow takes at most what it needs, and the quantities go
where they bring the region the most per year. The pairwise links stay as
they are (browsable, ranked); the allocation is a set of extra columns, and
:func:`allocation_totals` adds those up so that every flow counts once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import linprog

from geo.errors import GeoError, InputError
from geo.scoring import approx
from geo.taxonomy import UNITS, Taxonomy

__all__ = [
    "ALLOCATION_COLUMNS",
    "CARBON_PRICE_EUR_PER_T",
    "OBJECTIVES",
    "TIE_BREAK",
    "allocate",
    "allocation_totals",
    "totals_text",
]

#: Price (EUR per t CO2) at which saved CO2 enters the ``net_benefit``
#: objective: the average price of an EU ETS allowance (EUA) in 2024, EUR 67/t,
#: 22 % below the 2023 average (Veyt, "2024 Year in Review EU ETS: Flattening
#: out", https://veyt.com/articles/2024-year-in-review-eu-ets-flattening-out).
#: Used as a shadow price for the region: the knowledge base's values per
#: unit are avoided virgin-input prices and disposal fees and hold no carbon
#: price, so the CO2 is not counted twice.
CARBON_PRICE_EUR_PER_T = 67.0

#: Largest relative raise of a link's benefit used to break ties: the link
#: ranked first (highest ``score``, then shortest ``distance_km``, then flow
#: ids) gains this share of its benefit, the last almost nothing, in equal
#: steps. Among allocations of equal benefit the one moving more through
#: better-ranked links wins (three equal suppliers of one demand: the
#: best-ranked fills it); no allocated total moves by more than this share.
TIE_BREAK = 1e-5

#: What :func:`allocate` can maximise: ``net_benefit`` (net EUR per year plus
#: net t CO2 per year at the carbon price), ``value`` (net EUR per year only)
#: or ``co2`` (net t CO2 per year only).
OBJECTIVES = ("net_benefit", "value", "co2")

#: Columns :func:`allocate` returns, in order.
ALLOCATION_COLUMNS = [
    "allocated_quantity", "allocated_share", "allocated_co2_saved_t_per_yr",
    "allocated_value_eur_per_yr", "competitors", "allocation_note",
]

_REQUIRED = (
    "supply_flow_id", "demand_flow_id", "resource", "unit", "quantity",
    "supply_quantity", "supply_unit", "demand_quantity", "demand_unit",
    "co2_saved_t_per_yr", "value_eur_per_yr",
)

# Column of allocation_totals for each unit a flow may be stated in:
# quantity_t_per_yr, quantity_mwh_per_yr, quantity_m3_per_yr.
_TOTAL_UNITS = {unit: f"quantity_{unit.split('/')[0].lower()}_per_yr" for unit in UNITS}

# A solved share within this of 0 or 1 is taken as exactly 0 or 1, and a
# capacity row filled to within this of its capacity counts as taken.
_SNAP = 1e-7

_BETTER = {"net_benefit": "a higher net benefit", "value": "a higher net value", "co2": "a higher CO2 saving"}


def allocate(
    links: pd.DataFrame,
    taxonomy: Taxonomy,
    *,
    objective: Literal["net_benefit", "value", "co2"] = "net_benefit",
    carbon_price_eur_per_t: float | None = None,
) -> pd.DataFrame:
    """Share out every supply and demand once among competing links.

    One linear program over all links decides how much of its matchable
    quantity each link carries, so that no supply flow gives more than it
    has and no demand flow takes more than it needs, and the region's yearly
    benefit is largest. A link whose quantity is unknown on both sides is not
    allocated (NaN, with the reason in ``allocation_note``); a side whose
    quantity is unknown sets no limit. A link that costs more than it brings
    gets nothing. The result depends only on the links' contents, not on
    their order, and is the same on every run.

    Quantities are in each link's ``unit`` (the supplied resource's canonical
    unit, ``t/yr``, ``MWh/yr`` or ``m3/yr``); supply and demand quantities
    are converted with the knowledge base's factors. When the links carry
    ranges (``quantity_low`` and ``quantity_high``, and likewise
    ``supply_quantity_low``/``_high`` and ``demand_quantity_low``/``_high``)
    the central value is allocated: the stated quantity, or the middle of the
    range where only the range is known.

    Parameters
    ----------
    links : DataFrame
        Scored links, as :func:`geo.pipeline.match` returns them. Needs
        ``supply_flow_id``, ``demand_flow_id``, ``resource``, ``unit``,
        ``quantity``, ``supply_quantity``, ``supply_unit``,
        ``demand_quantity``, ``demand_unit``, ``co2_saved_t_per_yr`` and
        ``value_eur_per_yr``; ``score`` and ``distance_km`` break ties when
        present.
    taxonomy : Taxonomy
        Knowledge base holding the unit conversions.
    objective : {'net_benefit', 'value', 'co2'}
        What to maximise, see :data:`OBJECTIVES`.
    carbon_price_eur_per_t : float, optional
        EUR per t CO2 in the ``net_benefit`` objective;
        :data:`CARBON_PRICE_EUR_PER_T` by default.

    Returns
    -------
    DataFrame
        Index-aligned with ``links``, columns :data:`ALLOCATION_COLUMNS`:

        - ``allocated_quantity``: what the link carries per year, in its
          ``unit`` (NaN when its quantity is unknown, 0 when it gets nothing);
        - ``allocated_share``: ``allocated_quantity / quantity``;
        - ``allocated_co2_saved_t_per_yr`` and ``allocated_value_eur_per_yr``:
          the link's net CO2 and EUR per year times its share;
        - ``competitors``: other links of the frame sharing its supply flow or
          its demand flow;
        - ``allocation_note``: one plain sentence, e.g. "3 supply flows
          compete for this demand of 60,000 t/yr; this link gets 60,000 t/yr".

    Raises
    ------
    InputError
        When a needed column is missing, the objective is unknown, or one flow
        is given different quantities on different links.
    GeoError
        When the solver fails (it should not: the problem is always feasible
        and bounded).

    Notes
    -----
    With ``x_i`` the yearly quantity of link ``i`` in its unit, ``q_i`` its
    matchable quantity and ``b_i`` its benefit per unit (``(value_eur_per_yr
    + price * co2_saved_t_per_yr) / quantity`` for ``net_benefit``), the
    program is::

        maximise    sum_i b_i x_i
        subject to  sum_{i of supply s} x_i          <= S_s   for each supply s of known quantity
                    sum_{i of demand d} f_i x_i      <= D_d   for each demand d of known quantity
                    0 <= x_i <= q_i

    where ``S_s`` is the supply in its resource's unit, ``D_d`` the demand in
    its own unit and ``f_i`` the factor from link ``i``'s unit to the
    demand's (links into a demand whose unit cannot be converted leave that
    demand's row, as they do in :func:`geo.scoring.matchable_quantity`). One
    currency lets resources of different units share a demand row. Links with
    ``b_i <= 0`` are fixed at 0. Costs are taken as proportional to the
    quantity carried: a pipe's yearly capital cost is spread over the link's
    full matchable quantity, which flatters a pipe link that gets only part
    of it. HiGHS solves it (a vertex solution) with sparse rows scaled to their
    capacity, variables ``x_i / q_i`` in 0..1, and the benefits raised by at
    most :data:`TIE_BREAK` by rank.
    """
    if objective not in OBJECTIVES:
        msg = f"Unknown allocation objective {objective!r}; choose one of {', '.join(OBJECTIVES)}"
        raise InputError(msg)
    missing = [c for c in _REQUIRED if c not in links.columns]
    if missing:
        msg = f"The links lack column(s) {', '.join(missing)} needed for the allocation (use geo.pipeline.match)"
        raise InputError(msg)
    price = CARBON_PRICE_EUR_PER_T if carbon_price_eur_per_t is None else float(carbon_price_eur_per_t)
    work = _prepare(links, taxonomy, objective, price)
    share, supply_full, demand_full = _solve(work)
    return _result(links, work, share, supply_full, demand_full, objective, price)


@dataclass(frozen=True)
class _Links:
    """What the allocation needs of each link, as arrays in the links' order.

    ``q`` is the matchable quantity in the link's unit, ``net`` the yearly
    benefit at that quantity in the objective's currency, ``status`` one of
    ``unknown``, ``empty``, ``no figures``, ``loss`` or ``eligible``.
    ``supply`` and ``demand`` number the flows; ``supply_cap`` is the supply
    in the link's unit, ``demand_cap`` the demand in its own unit and
    ``to_demand`` the factor between the two; ``rank`` is the canonical
    position of the link.
    """

    q: np.ndarray
    net: np.ndarray
    status: np.ndarray
    supply: np.ndarray
    demand: np.ndarray
    supply_cap: np.ndarray
    supply_stated: np.ndarray
    supply_unit: np.ndarray
    demand_cap: np.ndarray
    demand_unit: np.ndarray
    to_demand: np.ndarray
    unit: np.ndarray
    rank: np.ndarray


def _prepare(links: pd.DataFrame, taxonomy: Taxonomy, objective: str, price: float) -> _Links:
    """Quantities, benefits, flow numbers and capacities of every link."""
    q = _central(links, "quantity")
    co2 = links["co2_saved_t_per_yr"].to_numpy(dtype=float)
    value = links["value_eur_per_yr"].to_numpy(dtype=float)
    net = {"net_benefit": value + price * co2, "value": value, "co2": co2}[objective]
    unit, resource = _text(links["unit"]), _text(links["resource"])
    supply_unit, demand_unit = _text(links["supply_unit"]), _text(links["demand_unit"])
    supply_stated = _central(links, "supply_quantity")
    supply_id, demand_id = _text(links["supply_flow_id"]), _text(links["demand_flow_id"])
    with np.errstate(invalid="ignore"):
        status = np.select(
            [np.isnan(q), q <= 0, np.isnan(net), net <= 0], ["unknown", "empty", "no figures", "loss"], "eligible"
        )
    supply_code = pd.factorize(supply_id, sort=True)[0]
    demand_code = pd.factorize(demand_id, sort=True)[0]
    work = _Links(
        q=q,
        net=net,
        status=status,
        supply=supply_code,
        demand=demand_code,
        supply_cap=supply_stated * taxonomy.conversion_factors(resource, supply_unit, unit),
        supply_stated=supply_stated,
        supply_unit=supply_unit,
        demand_cap=_central(links, "demand_quantity"),
        demand_unit=demand_unit,
        to_demand=taxonomy.conversion_factors(resource, unit, demand_unit),
        unit=unit,
        rank=_rank(links, q, net, supply_code, demand_code),
    )
    _check_flows(work, supply_id, demand_id)
    return work


def _central(links: pd.DataFrame, column: str) -> np.ndarray:
    """The stated value of ``column``, or the middle of ``column_low``..``column_high`` where only they are known."""
    value = links[column].to_numpy(dtype=float)
    low, high = f"{column}_low", f"{column}_high"
    if low in links.columns and high in links.columns:
        middle = (links[low].to_numpy(dtype=float) + links[high].to_numpy(dtype=float)) / 2.0
        value = np.where(np.isnan(value), middle, value)
    return value


def _text(column: pd.Series) -> np.ndarray:
    """A column as an object array of plain strings, '' for missing."""
    return column.astype("string").fillna("").to_numpy(dtype=object)


def _check_flows(work: _Links, supply_id: np.ndarray, demand_id: np.ndarray) -> None:
    """Every link of one flow must give that flow the same quantity and unit."""
    problems = []
    sides = (
        ("supply", work.supply, supply_id, [work.supply_cap]),
        ("demand", work.demand, demand_id, [work.demand_cap, work.demand_unit]),
    )
    for side, code, ids, columns in sides:
        clash = np.zeros(code.max() + 1 if len(code) else 0, dtype=bool)
        for column in columns:
            # Distinct (flow, value) pairs; a flow with more than one disagrees.
            pairs = pd.DataFrame({"flow": code, "value": column}).drop_duplicates()
            clash |= np.bincount(pairs["flow"].to_numpy(), minlength=len(clash)) > 1
        names = pd.Series(ids).groupby(code).first().to_numpy()
        problems.extend(f"{side} flow {name!r}" for name in names[clash])
    if problems:
        shown = ", ".join(problems[:5]) + (f" and {len(problems) - 5} more" if len(problems) > 5 else "")
        msg = (f"Links disagree on the quantity or unit of {shown}; "
               "allocate the links of one run, in which each flow has one quantity")
        raise InputError(msg)


def _rank(links: pd.DataFrame, q: np.ndarray, net: np.ndarray, supply: np.ndarray, demand: np.ndarray) -> np.ndarray:
    """Position of each link in a canonical order that does not depend on row order.

    Highest ``score`` first, then shortest ``distance_km``, then supply and
    demand flow ids, then larger benefit and quantity (only exact duplicates
    tie beyond that, and they are interchangeable).
    """
    n = len(links)
    score = links["score"].to_numpy(dtype=float) if "score" in links.columns else np.zeros(n)
    km = links["distance_km"].to_numpy(dtype=float) if "distance_km" in links.columns else np.zeros(n)
    # np.lexsort sorts by the last key first.
    keys = [
        np.nan_to_num(-q, nan=np.inf),
        np.nan_to_num(-net, nan=np.inf),
        demand,
        supply,
        np.nan_to_num(km, nan=np.inf),
        np.nan_to_num(-score, nan=np.inf),
    ]
    rank = np.empty(n, dtype=np.int64)
    rank[np.lexsort(keys)] = np.arange(n)
    return rank


def _solve(work: _Links) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Share of its quantity each link carries, and whether its supply and demand rows are full.

    The share is NaN where the quantity is unknown and 0 for a link that is
    not eligible.
    """
    n = len(work.q)
    share = np.where(work.status == "unknown", np.nan, 0.0)
    supply_full = np.zeros(n, dtype=bool)
    demand_full = np.zeros(n, dtype=bool)
    members = np.flatnonzero(work.status == "eligible")
    if not len(members):
        return share, supply_full, demand_full
    # Variables in canonical order: the solver sees the same program whatever
    # the order of the links it came from.
    members = members[np.argsort(work.rank[members], kind="stable")]
    q, gain = work.q[members], work.net[members]
    weight = 1.0 - np.arange(len(members)) / len(members)
    c = -(gain * (1.0 + TIE_BREAK * weight)) / gain.max()
    supply_rows = _rows(work.supply[members], work.supply_cap[members], q)
    demand_rows = _rows(work.demand[members], work.demand_cap[members], q * work.to_demand[members])
    matrix, rhs, supply_row, demand_row = _stack(supply_rows, demand_rows, len(members))
    if matrix.shape[0]:
        solved = linprog(c, A_ub=matrix, b_ub=rhs, bounds=(0.0, 1.0), method="highs")
        if solved.status != 0:
            msg = f"The allocation could not be solved: {solved.message}"
            raise GeoError(msg)
        y = np.clip(solved.x, 0.0, 1.0)
        y[y < _SNAP] = 0.0
        y[y > 1.0 - _SNAP] = 1.0
        full = np.append(matrix @ y >= rhs - _SNAP, False)  # row -1 (none) is never full
    else:
        y = np.ones(len(members))
        full = np.zeros(1, dtype=bool)
    share[members] = y
    supply_full[members] = full[supply_row]
    demand_full[members] = full[demand_row]
    return share, supply_full, demand_full


# One side's capacity rows: the entries' rows, columns and amounts, each
# row's capacity, and each variable's row (-1 for none).
_Rows = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _rows(flow: np.ndarray, capacity: np.ndarray, amount: np.ndarray) -> _Rows:
    """Capacity rows of one side of the program.

    ``amount`` is what a whole share of each variable puts into its flow, in
    the flow's unit. A flow of unknown capacity has no row; a variable whose
    amount cannot be expressed in its flow's unit (no conversion) stays out
    of that flow's row.
    """
    bound = np.isfinite(capacity) & np.isfinite(amount)
    codes, uniques = pd.factorize(flow[bound])
    caps = np.zeros(len(uniques))
    caps[codes] = capacity[bound]
    row_of = np.full(len(flow), -1, dtype=np.int64)
    row_of[bound] = codes
    return codes, np.flatnonzero(bound), amount[bound], caps, row_of


def _stack(supply: _Rows, demand: _Rows, n: int) -> tuple[sparse.csr_array, np.ndarray, np.ndarray, np.ndarray]:
    """Supply rows then demand rows as one sparse matrix, each row divided by its capacity.

    A row of positive capacity becomes ``sum(amount / capacity * share) <= 1``;
    one of zero capacity keeps its amounts and gets 0 on the right. Returns
    the matrix, the right-hand sides and each variable's supply and demand
    row (-1 for none).
    """
    offset = len(supply[3])
    rows = np.concatenate([supply[0], demand[0] + offset])
    cols = np.concatenate([supply[1], demand[1]])
    caps = np.maximum(np.concatenate([supply[3], demand[3]]), 0.0)
    scale = np.where(caps > 0, caps, 1.0)
    data = np.concatenate([supply[2], demand[2]]) / scale[rows]
    matrix = sparse.csr_array((data, (rows, cols)), shape=(len(caps), n))
    demand_row = np.where(demand[4] >= 0, demand[4] + offset, -1)
    return matrix, np.where(caps > 0, 1.0, 0.0), supply[4], demand_row


def _result(
    links: pd.DataFrame,
    work: _Links,
    share: np.ndarray,
    supply_full: np.ndarray,
    demand_full: np.ndarray,
    objective: str,
    price: float,
) -> pd.DataFrame:
    """The allocation columns, index-aligned with ``links``."""
    per_supply = np.bincount(work.supply)[work.supply] if len(share) else np.zeros(0, dtype=int)
    per_demand = np.bincount(work.demand)[work.demand] if len(share) else np.zeros(0, dtype=int)
    allocated = share * work.q
    # Adding 0.0 turns the -0.0 of a negative figure times a share of 0 into 0.
    co2 = links["co2_saved_t_per_yr"].to_numpy(dtype=float) * share + 0.0
    value = links["value_eur_per_yr"].to_numpy(dtype=float) * share + 0.0
    notes = _notes(work, allocated, share, per_supply, per_demand, supply_full, demand_full, objective, price)
    return pd.DataFrame(
        {
            "allocated_quantity": allocated,
            "allocated_share": share,
            "allocated_co2_saved_t_per_yr": co2,
            "allocated_value_eur_per_yr": value,
            "competitors": (per_supply - 1) + (per_demand - 1),
            "allocation_note": pd.Series(notes, index=links.index, dtype=object),
        },
        index=links.index,
    )


def _notes(
    work: _Links,
    allocated: np.ndarray,
    share: np.ndarray,
    per_supply: np.ndarray,
    per_demand: np.ndarray,
    supply_full: np.ndarray,
    demand_full: np.ndarray,
    objective: str,
    price: float,
) -> np.ndarray:
    """One sentence per link: a template per kind, filled with ``str.format`` over whole columns."""
    notes = np.empty(len(share), dtype=object)
    status = work.status
    for kind, text in _NOT_ALLOCATED.items():
        notes[status == kind] = text
    _fill(notes, status == "loss", _LOSS[objective].replace("{price}", f"{price:g}"), _numbers(work.net))
    eligible = status == "eligible"
    if not eligible.any():
        return notes
    # The competition: which flows are shared, and their sizes.
    demand_size = _sizes(work.demand_cap, work.demand_unit)
    supply_size = _sizes(work.supply_stated, work.supply_unit)
    on_demand, on_supply = per_demand > 1, per_supply > 1
    both = on_demand & on_supply
    competition = np.full(len(share), "no other link shares its supply or demand", dtype=object)
    _fill(competition, both, "{} supply flows compete for this demand{} and {} demand flows for this supply{}",
          per_demand, demand_size, per_supply, supply_size)
    _fill(competition, on_demand & ~both, "{} supply flows compete for this demand{}", per_demand, demand_size)
    _fill(competition, on_supply & ~both, "{} demand flows compete for this supply{}", per_supply, supply_size)
    # What the link gets, and who takes the rest.
    amount, whole, unit = _numbers(allocated), _numbers(work.q), work.unit
    taken = np.select(
        [supply_full & demand_full, demand_full, supply_full], ["supply and the demand", "demand", "supply"], ""
    ).astype(object)
    rest = np.where(allocated > 0, "the rest of the ", "the ").astype(object)
    partly = share < 1.0
    gets = np.empty(len(share), dtype=object)
    _fill(gets, ~partly, "{}; this link gets {} {}", competition, amount, unit)
    _fill(gets, partly & (taken == ""), "{}; this link gets {} of its {} {}", competition, amount, whole, unit)
    _fill(gets, partly & (taken != ""), "{}; this link gets {} of its {} {}; links with " + _BETTER[objective]
          + " take {}{}", competition, amount, whole, unit, rest, taken)
    notes[eligible] = gets[eligible]
    return notes


# Notes of the links left out, by status.
_NOT_ALLOCATED = {
    "unknown": "not allocated: quantities unknown",
    "empty": "not allocated: nothing to exchange (quantity 0)",
    "no figures": "not allocated: net benefit unknown",
}
_LOSS = {
    "net_benefit": "not allocated: it costs more than it brings (net EUR {} a year, CO2 at EUR {price}/t)",
    "value": "not allocated: it costs more than it brings (net EUR {} a year)",
    "co2": "not allocated: it saves no CO2 (net {} t CO2 a year)",
}


def _fill(out: np.ndarray, mask: np.ndarray, template: str, *columns: np.ndarray) -> None:
    """Set ``out[mask]`` to ``template`` filled row by row from ``columns`` (user text stays text)."""
    rows = np.flatnonzero(mask)
    if len(rows):
        out[rows] = list(map(template.format, *(np.asarray(c)[rows].tolist() for c in columns)))


def _numbers(values: np.ndarray) -> np.ndarray:
    """Each value rounded to two significant figures as text, as :func:`geo.scoring.approx` writes it.

    Values are rounded here first, as whole arrays, so that ``approx`` runs
    once per distinct rounded value: a few hundred calls for 100,000 links.
    """
    values = np.asarray(values, dtype=float)
    if not len(values):
        return np.array([], dtype=object)
    with np.errstate(divide="ignore", invalid="ignore"):
        step = 10.0 ** (np.floor(np.log10(np.abs(values))) - 1)
        rounded = np.where(np.isfinite(values) & (values != 0), np.round(values / step) * step, values)
    unique, inverse = np.unique(rounded, return_inverse=True)
    return np.array([approx(v) for v in unique], dtype=object)[inverse.ravel()]


def _sizes(quantity: np.ndarray, unit: np.ndarray) -> np.ndarray:
    """`` of 60,000 t/yr`` where the quantity is known, `` of unstated size`` otherwise."""
    sizes = np.full(len(quantity), " of unstated size", dtype=object)
    _fill(sizes, ~np.isnan(quantity), " of {} {}", _numbers(quantity), unit)
    return sizes


def allocation_totals(
    links: pd.DataFrame, *, group_by: str | Sequence[str] | pd.Series | None = None
) -> pd.DataFrame:
    """Yearly totals of an allocation, each supply and demand counted once.

    Sums what :func:`allocate` assigned, so three suppliers competing for one
    demand of 60,000 t/yr add up to at most 60,000 t/yr. Quantities are
    summed per unit (tonnes, MWh and m3 are never added together).

    Parameters
    ----------
    links : DataFrame
        Links with ``unit`` and the columns of :data:`ALLOCATION_COLUMNS`.
    group_by : str, list of str or Series, optional
        Column(s) of ``links``, or a Series aligned with it (a resource group,
        a cluster, a country), giving one row of totals per group.

    Returns
    -------
    DataFrame
        One row per group (sorted; a missing key is a group of its own), or a
        single row ``all links`` without ``group_by``; columns ``links``
        (links carrying anything), ``quantity_t_per_yr``,
        ``quantity_mwh_per_yr``, ``quantity_m3_per_yr``,
        ``co2_saved_t_per_yr`` and ``value_eur_per_yr`` (net, as allocated).

    Raises
    ------
    InputError
        When the allocation columns are missing, or a link carrying something
        has a unit other than t/yr, MWh/yr or m3/yr.
    """
    needed = ["unit", "allocated_quantity", "allocated_co2_saved_t_per_yr", "allocated_value_eur_per_yr"]
    missing = [c for c in needed if c not in links.columns]
    if missing:
        msg = f"The links lack column(s) {', '.join(missing)}; run geo.allocation.allocate on them first"
        raise InputError(msg)
    quantity = links["allocated_quantity"].astype(float).fillna(0.0)
    carrying = quantity > 0
    odd = sorted(set(links.loc[carrying, "unit"]) - set(_TOTAL_UNITS))
    if odd:
        msg = (f"Cannot total quantities in unit(s) {', '.join(map(str, odd))}; "
               f"expected one of {', '.join(_TOTAL_UNITS)}")
        raise InputError(msg)
    frame = pd.DataFrame({"links": carrying.astype(int)}, index=links.index)
    for unit, column in _TOTAL_UNITS.items():
        frame[column] = quantity.where(links["unit"] == unit, 0.0)
    frame["co2_saved_t_per_yr"] = links["allocated_co2_saved_t_per_yr"].astype(float).fillna(0.0)
    frame["value_eur_per_yr"] = links["allocated_value_eur_per_yr"].astype(float).fillna(0.0)
    if group_by is None:
        return frame.sum().to_frame("all links").T.astype({"links": int})
    if isinstance(group_by, pd.Series):
        keys = group_by
    elif isinstance(group_by, str):
        keys = links[group_by]
    else:
        keys = [links[column] for column in group_by]
    return frame.groupby(keys, dropna=False, sort=True).sum()


def totals_text(totals: pd.Series) -> str:
    """One row of :func:`allocation_totals` as words: ``'12,000 t/yr and 40,000 MWh/yr, saving 9,100 t CO2 ...'``."""
    amounts = [f"{approx(totals[column])} {unit}" for column, unit in
               (("quantity_t_per_yr", "t/yr"), ("quantity_mwh_per_yr", "MWh/yr"), ("quantity_m3_per_yr", "m3/yr"))
               if totals.get(column, 0) > 0]
    if not amounts:
        return "nothing allocated (quantities unknown)"
    moved = amounts[0] if len(amounts) == 1 else ", ".join(amounts[:-1]) + " and " + amounts[-1]
    return (f"{moved} in {int(totals['links'])} links, saving {approx(totals['co2_saved_t_per_yr'])} t CO2 "
            f"and EUR {approx(totals['value_eur_per_yr'])} a year (net)")
