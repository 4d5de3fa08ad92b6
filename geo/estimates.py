"""Typical quantities for flows whose quantity is unknown.

A flow inferred from a facility's sector (:func:`geo.inference.infer_flows`)
says what a facility of that sector typically supplies or demands, but not
how much. :func:`estimate_quantities` puts a size on it, with a range, from
what is known about the facility, and says how in a sentence a user can check.

Size indicators
    Optional facility columns, in order of preference (production before
    CO2, because it drives residues such as slag directly):

    ``excess_heat_mwh_per_yr``
        Excess heat the facility could give away (MWh/yr), e.g. from the
        Hotmaps industrial database.
    ``production_t_per_yr``
        Main product (t/yr): crude steel, cement, pulp, beer, chlorine; for a
        wastewater plant the wastewater treated (1 m3 = 1 t).
    ``co2_t_per_yr``
        CO2 released to air, fossil and biogenic, as the E-PRTR reports it
        (t/yr). Without this column the facility's own declared ``gas.co2``
        supply is used: the register's CO2 release that
        :func:`geo.eprtr.import_eprtr` declares.
    ``thermal_input_mw``
        Rated fuel input (MW); for a data centre its electric power.
    ``employees``
        Number of employees (no bundled factor uses it yet; a user's own
        factor rows may).

Factors
    ``data/knowledge/quantity_factors.csv`` (sources in ``SOURCES.md``, keys
    [Q1]...). Each row gives, for facilities whose NACE code starts with
    ``nace`` (blank: any), the ``resource`` supplied or demanded
    (``direction``) per unit of ``indicator``: ``factor`` with its range
    ``low``-``high``, in ``unit``. Three kinds of rows:

    - ratio rows: ``indicator`` is one of the size indicators;
    - typical-size rows (blank ``direction`` and ``resource``): a typical
      facility of the sector has this much of ``indicator``;
    - typical-quantity rows (``indicator`` ``sector_typical``): a typical
      facility supplies or demands ``factor`` of the resource.

    ``unless_supplies`` names a resource whose supply by the same facility
    rules the row out: heat factors count heat at 100-200 C as hot water and
    heat above 200 C as steam, and a facility that lists no steam can give all
    of its heat as hot water.

Choice
    A flow takes the best applicable row: a measured indicator ("estimated")
    before a typical size or quantity ("sector typical"); then the most
    specific NACE prefix; then a row with a condition before one without;
    then the indicator's order above. Nothing applicable leaves it unknown.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from geo import settings
from geo.errors import KnowledgeBaseError
from geo.taxonomy import Taxonomy

__all__ = [
    "ESTIMATE_COLUMNS",
    "FACTOR_COLUMNS",
    "INDICATORS",
    "SECTOR_TYPICAL",
    "estimate_quantities",
    "factor_problems",
    "load_quantity_factors",
]

#: Facility columns that measure a facility's size, in order of preference.
INDICATORS = ("excess_heat_mwh_per_yr", "production_t_per_yr", "co2_t_per_yr", "thermal_input_mw", "employees")

#: The ``indicator`` of a factor row that gives a typical quantity directly.
SECTOR_TYPICAL = "sector_typical"

#: Columns of :func:`estimate_quantities`.
ESTIMATE_COLUMNS = ("quantity", "quantity_low", "quantity_high", "quantity_basis", "quantity_note")

#: Columns of ``quantity_factors.csv``.
FACTOR_COLUMNS = ("nace", "direction", "resource", "indicator", "factor", "low", "high", "unit",
                  "unless_supplies", "source", "note")

# How a note names each indicator: what it is, its unit, and "per" what a factor counts.
_WHAT = {
    "excess_heat_mwh_per_yr": ("excess heat", "MWh/yr", "per MWh of excess heat"),
    "production_t_per_yr": ("production", "t/yr", "per t produced"),
    "co2_t_per_yr": ("CO2 release", "t/yr", "per t CO2"),
    "thermal_input_mw": ("thermal input", "MW", "a year per MW of input"),
    "employees": ("staff", "employees", "a year per employee"),
}
_ORDER = {name: i for i, name in enumerate((*INDICATORS, SECTOR_TYPICAL))}
_NACE_LENGTHS = (4, 3, 2, 0)  # digits of a NACE prefix: class, group, division, any


def estimate_quantities(
    facilities: pd.DataFrame,
    flows: pd.DataFrame,
    taxonomy: Taxonomy,
    *,
    factors: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Estimate the quantity of every flow whose quantity is unknown.

    A stated quantity is left as it is. For a flow without one, the
    facility's size indicators (its optional columns, see the module
    docstring, or its declared CO2 release) are multiplied by the best
    factor row for its NACE code, resource and direction; failing that, the
    sector's typical size or typical quantity is used. The result is in the
    flow's unit (converted with the taxonomy where the factor's unit differs).
    No loop runs over flows: one merge joins them to the factor rows.

    Parameters
    ----------
    facilities : DataFrame or GeoDataFrame
        ``facility_id``, ``nace`` (normalised, ``24.10``; blank when unknown)
        and any of the size-indicator columns. Geometry is not used.
    flows : DataFrame
        ``facility_id``, ``direction``, ``resource``, ``quantity`` (NaN =
        unknown), ``unit``; ``origin`` (optional) names where a declared CO2
        release comes from.
    taxonomy : Taxonomy
        For resource units and unit conversions.
    factors : DataFrame, optional
        Factor rows as :func:`load_quantity_factors` returns them; the bundled
        table by default.

    Returns
    -------
    DataFrame
        Index-aligned with ``flows``: ``quantity``, ``quantity_low``,
        ``quantity_high`` (in the flow's unit; NaN when unknown),
        ``quantity_basis`` (``stated`` when the flow gives its quantity,
        ``estimated`` when scaled from something known about the facility,
        ``sector typical`` when only its sector is known, ``unknown``) and
        ``quantity_note`` (how the estimate was made, with its sources).
    """
    factors = load_quantity_factors() if factors is None else factors
    labels, flows = flows.index, flows.reset_index(drop=True)
    out = _stated(flows)
    unknown = flows.index[out["quantity"].isna()]
    if not len(unknown) or factors.empty:
        return out.set_axis(labels)
    nace = _nace_of(facilities, flows)
    candidates = _candidates(flows.loc[unknown], nace.loc[unknown], factors)
    sized = _with_sizes(candidates, _measured_sizes(facilities, flows, taxonomy), _typical_sizes(facilities, factors))
    sized = _applicable(sized, flows, taxonomy)
    best = _best(sized)
    out.loc[best.index, ["quantity", "quantity_low", "quantity_high"]] = best[["q", "q_low", "q_high"]].to_numpy()
    out.loc[best.index, "quantity_basis"] = best["basis"]
    out.loc[best.index, "quantity_note"] = _notes(best)
    missing = unknown.difference(best.index)
    out.loc[missing, "quantity_note"] = _unknown_notes(flows.loc[missing], nace.loc[missing])
    return out.set_axis(labels)


@lru_cache(maxsize=4)
def load_quantity_factors(path: str | Path | None = None) -> pd.DataFrame:
    """Read and check the quantity factors.

    The frame is cached and shared: callers must not modify it.

    Parameters
    ----------
    path : str or Path, optional
        The CSV; ``data/knowledge/quantity_factors.csv`` by default.

    Returns
    -------
    DataFrame
        The columns of :data:`FACTOR_COLUMNS`; ``factor``, ``low`` and
        ``high`` as floats, the others as text (blank, not NaN, when empty).

    Raises
    ------
    KnowledgeBaseError
        When the file is missing or a row is malformed (every problem listed).
    """
    path = Path(path) if path is not None else settings.KNOWLEDGE_DIR / "quantity_factors.csv"
    if not path.is_file():
        raise KnowledgeBaseError(f"{path}: quantity factors file missing")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in FACTOR_COLUMNS if c not in table.columns]
    if missing:
        raise KnowledgeBaseError(f"{path}: column(s) {', '.join(missing)} missing")
    table = table[list(FACTOR_COLUMNS)].apply(lambda column: column.str.strip())
    for column in ("factor", "low", "high"):
        table[column] = pd.to_numeric(table[column], errors="coerce")
    problems = factor_problems(table)
    if problems:
        raise KnowledgeBaseError(f"{path}: " + "; ".join(problems))
    return table


def factor_problems(table: pd.DataFrame, taxonomy: Taxonomy | None = None) -> list[str]:
    """Every problem of a factor table, one text each (row numbers as a spreadsheet shows them).

    Checks the NACE prefixes, directions, indicators and numbers (finite,
    not negative, ``low <= factor <= high``) and, when a taxonomy is given,
    that every resource exists and that units convert to the resource's.
    """
    rows = pd.Series(np.arange(2, len(table) + 2), index=table.index).astype(str)
    size_row = table["resource"] == ""
    numbers = table[["factor", "low", "high"]]
    checks = [
        (~table["nace"].str.fullmatch(r"(\d{2}(\.\d{1,2})?)?"), "NACE prefix {nace!r} is not like 24 or 24.10"),
        (~numbers.notna().all(axis=1) | (numbers < 0).any(axis=1), "factor, low and high must be numbers >= 0"),
        ((table["low"] > table["factor"]) | (table["factor"] > table["high"]), "needs low <= factor <= high"),
        (size_row & ~table["indicator"].isin(INDICATORS), "a typical-size row needs an indicator of {indicators}"),
        (size_row & (table["direction"] != ""), "a typical-size row has no direction"),
        (~size_row & ~table["direction"].isin(["supply", "demand"]), "direction {direction!r} is not supply or demand"),
        (~size_row & ~table["indicator"].isin([*INDICATORS, SECTOR_TYPICAL]), "unknown indicator {indicator!r}"),
    ]
    if taxonomy is not None:
        known = table["resource"].isin(list(taxonomy.codes))
        checks.append((~size_row & ~known, "unknown resource {resource!r}"))
        checks.append(((table["unless_supplies"] != "") & ~table["unless_supplies"].isin(list(taxonomy.codes)),
                       "unknown resource {unless_supplies!r} in unless_supplies"))
        usable = ~size_row & known
        factor = _conversion(taxonomy, table.loc[usable, "resource"], table.loc[usable, "unit"],
                             table.loc[usable, "resource"].map(taxonomy.units))
        checks.append((usable & factor.reindex(table.index).isna(), "unit {unit!r} does not fit resource {resource!r}"))
    problems = []
    for mask, text in checks:
        for i in table.index[mask.fillna(True).to_numpy(dtype=bool)]:
            values = {**table.loc[i].to_dict(), "indicators": ", ".join(INDICATORS)}
            problems.append(f"row {rows[i]}: " + text.format(**values))
    return problems


# --- steps --------------------------------------------------------------------------


def _stated(flows: pd.DataFrame) -> pd.DataFrame:
    """The result before estimating: stated quantities as they are, every other flow unknown."""
    q = pd.to_numeric(flows["quantity"], errors="coerce").astype(float)
    return pd.DataFrame({
        "quantity": q, "quantity_low": q, "quantity_high": q,
        "quantity_basis": np.where(q.notna(), "stated", "unknown"),
        "quantity_note": "",
    }, index=flows.index).astype({"quantity_basis": object, "quantity_note": object})


def _nace(facilities: pd.DataFrame) -> pd.Series:
    """The facilities' NACE codes as text without a section letter ('D35.11' -> '35.11'; '' when unknown)."""
    if "nace" not in facilities.columns:
        return pd.Series("", index=facilities.index, dtype=object)
    return facilities["nace"].fillna("").astype(str).str.strip().str.replace(r"^[A-Za-z]\s*", "", regex=True)


def _nace_of(facilities: pd.DataFrame, flows: pd.DataFrame) -> pd.Series:
    """Each flow's facility NACE code ('' when unknown)."""
    codes = pd.Series(_nace(facilities).to_numpy(), index=facilities["facility_id"].to_numpy())
    codes = codes[~codes.index.duplicated()]
    return flows["facility_id"].map(codes).fillna("").astype(str)


def _prefixes(frame: pd.DataFrame, nace: pd.Series) -> pd.DataFrame:
    """``frame`` repeated once per NACE prefix of ``nace`` (digits only), in column ``prefix``."""
    digits = nace.str.replace(".", "", regex=False)
    parts = [frame.assign(prefix=digits.str[:n])[digits.str.len() >= n] for n in _NACE_LENGTHS]
    return pd.concat(parts)


def _factor_prefix(nace: pd.Series) -> pd.Series:
    return nace.str.replace(".", "", regex=False)


def _candidates(unknown: pd.DataFrame, nace: pd.Series, factors: pd.DataFrame) -> pd.DataFrame:
    """Every (flow, factor row) pair whose NACE prefix, direction and resource fit: one merge."""
    flows = pd.DataFrame({
        "flow": unknown.index, "facility_id": unknown["facility_id"].to_numpy(),
        "direction": unknown["direction"].to_numpy(), "resource": unknown["resource"].to_numpy(),
        "flow_nace": nace.to_numpy(),
    })
    expanded = _prefixes(flows, flows["flow_nace"])
    rows = factors[factors["resource"] != ""].reset_index(names="row")
    rows = rows.assign(prefix=_factor_prefix(rows["nace"]), nace_len=_factor_prefix(rows["nace"]).str.len())
    rows = rows.rename(columns={"unit": "factor_unit", "nace": "factor_nace"})
    return expanded.merge(rows, on=["prefix", "direction", "resource"], how="inner", sort=False)


def _measured_sizes(facilities: pd.DataFrame, flows: pd.DataFrame, taxonomy: Taxonomy) -> pd.DataFrame:
    """Size indicators known for each facility: its columns, else its declared CO2 release."""
    ids = facilities["facility_id"].to_numpy()
    parts = []
    for indicator in INDICATORS:
        if indicator in facilities.columns:
            value = pd.to_numeric(facilities[indicator], errors="coerce").to_numpy(dtype=float)
            what, unit, _ = _WHAT[indicator]
            part = pd.DataFrame({"facility_id": ids, "indicator": indicator, "value": value})
            part = part[part["value"] > 0]
            part["size_note"] = f"the facility's stated {what} (" + _text(part["value"]) + f" {unit})"
            parts.append(part)
    parts.append(_declared_co2(flows, taxonomy))
    sizes = pd.concat(parts, ignore_index=True).drop_duplicates(["facility_id", "indicator"], keep="first")
    return sizes.assign(value_low=sizes["value"], value_high=sizes["value"], size_len=0)


def _declared_co2(flows: pd.DataFrame, taxonomy: Taxonomy) -> pd.DataFrame:
    """CO2 release (t/yr) per facility from its declared ``gas.co2`` supplies, e.g. the E-PRTR's."""
    quantity = pd.to_numeric(flows["quantity"], errors="coerce")
    co2 = flows[(flows["direction"] == "supply") & (flows["resource"] == "gas.co2") & (quantity > 0)]
    unit = co2["unit"].fillna("").astype(str)
    to_t = _conversion(taxonomy, co2["resource"], unit, pd.Series("t/yr", index=co2.index))
    origin = co2["origin"].fillna("").astype(str) if "origin" in co2.columns else pd.Series("", index=co2.index)
    co2 = pd.DataFrame({"facility_id": co2["facility_id"], "t": quantity[co2.index] * to_t,
                        "origin": origin.where(origin != "", "declared CO2 supply")}).dropna(subset=["t"])
    total = co2.groupby("facility_id", sort=False).agg(value=("t", "sum"), origin=("origin", "first"))
    return pd.DataFrame({
        "facility_id": total.index, "indicator": "co2_t_per_yr", "value": total["value"].to_numpy(),
        "size_note": ("the facility's " + total["origin"] + " (" + _text(total["value"]) + " t/yr)").to_numpy(),
    })


def _typical_sizes(facilities: pd.DataFrame, factors: pd.DataFrame) -> pd.DataFrame:
    """Each facility's sector's typical size per indicator, from the most specific typical-size row."""
    rows = factors[factors["resource"] == ""].reset_index(drop=True)
    rows = rows.assign(prefix=_factor_prefix(rows["nace"]), size_len=_factor_prefix(rows["nace"]).str.len())
    fac = pd.DataFrame({"facility_id": facilities["facility_id"].to_numpy(),
                        "nace": _nace(facilities).to_numpy()})
    rows = rows.rename(columns={"nace": "size_nace"})
    sizes = _prefixes(fac, fac["nace"]).merge(rows, on="prefix", sort=False)
    sizes = sizes.sort_values("size_len", ascending=False, kind="stable")
    sizes = sizes.drop_duplicates(["facility_id", "indicator"], keep="first")
    what = sizes["indicator"].map(lambda i: _WHAT[i][0])
    label = np.where(sizes["size_nace"] == "", "facility", "NACE " + sizes["size_nace"] + " facility")
    size_note = ("a typical " + label + "'s " + what + " (" + _text(sizes["factor"]) + " " + sizes["unit"]
                 + _range(sizes) + "; " + sizes["note"] + "; " + sizes["source"] + ")")
    return pd.DataFrame({"facility_id": sizes["facility_id"], "indicator": sizes["indicator"],
                         "value": sizes["factor"], "value_low": sizes["low"], "value_high": sizes["high"],
                         "size_len": sizes["size_len"], "size_note": size_note})


def _with_sizes(candidates: pd.DataFrame, measured: pd.DataFrame, typical: pd.DataFrame) -> pd.DataFrame:
    """Candidates with the size their indicator takes: measured, typical, or 1 for a typical quantity."""
    ratio = candidates[candidates["indicator"] != SECTOR_TYPICAL]
    keys = ["facility_id", "indicator"]
    by_measure = ratio.merge(measured, on=keys, sort=False).assign(basis="estimated", rank=0)
    by_type = ratio.merge(typical, on=keys, sort=False).assign(basis="sector typical", rank=1)
    direct = candidates[candidates["indicator"] == SECTOR_TYPICAL].assign(
        basis="sector typical", rank=1, value=1.0, value_low=1.0, value_high=1.0, size_note="")
    direct = direct.assign(size_len=direct["nace_len"])
    return pd.concat([by_measure, by_type, direct], ignore_index=True)


def _applicable(sized: pd.DataFrame, flows: pd.DataFrame, taxonomy: Taxonomy) -> pd.DataFrame:
    """Candidates whose condition holds and whose unit converts, with their quantities in the flow's unit."""
    supplies = flows["direction"] == "supply"
    supplied = set(flows.loc[supplies, "facility_id"].astype(str) + "|" + flows.loc[supplies, "resource"])
    ruled_out = (sized["unless_supplies"] != "") & (sized["facility_id"].astype(str) + "|"
                                                    + sized["unless_supplies"]).isin(supplied)
    sized = sized[~ruled_out]
    flow_unit = flows.loc[sized["flow"], "unit"].fillna("").astype(str).to_numpy()
    canonical = sized["resource"].map(taxonomy.units).fillna("").to_numpy()
    sized = sized.assign(flow_unit=np.where(flow_unit == "", canonical, flow_unit))
    sized = sized.assign(conv=_conversion(taxonomy, sized["resource"], sized["factor_unit"], sized["flow_unit"]))
    sized = sized[sized["conv"].notna()]
    return sized.assign(q=sized["value"] * sized["factor"] * sized["conv"],
                        q_low=sized["value_low"] * sized["low"] * sized["conv"],
                        q_high=sized["value_high"] * sized["high"] * sized["conv"])


def _best(sized: pd.DataFrame) -> pd.DataFrame:
    """The preferred candidate of each flow, indexed by the flow's label."""
    order = sized.assign(conditional=(sized["unless_supplies"] == "").astype(int),
                         indicator_order=sized["indicator"].map(_ORDER))
    order = order.sort_values(["flow", "rank", "nace_len", "size_len", "conditional", "indicator_order", "row"],
                              ascending=[True, True, False, False, True, True, True], kind="stable")
    return order.drop_duplicates("flow", keep="first").set_index("flow")


def _notes(best: pd.DataFrame) -> pd.Series:
    """One sentence per estimate: what it was scaled from, the factor and its range, the sources."""
    unit = best["factor_unit"].str.replace("/yr", "", regex=False)
    per = best["indicator"].map(lambda i: _WHAT[i][2] if i in _WHAT else "")
    detail = " (" + best["note"] + _range(best) + "; " + best["source"] + ")"
    ratio = _text(best["factor"]) + " " + unit + " " + per + detail
    sector = np.where(best["factor_nace"] == "", "any sector", "NACE " + best["factor_nace"])
    typical = "typical quantity for " + sector + ": " + _text(best["factor"]) + " " + best["factor_unit"] + detail
    lead = np.where(best["basis"] == "estimated", "estimated from ", "sector typical: ")
    note = np.where(best["indicator"] == SECTOR_TYPICAL, "sector typical: " + typical,
                    lead + best["size_note"] + " x " + ratio)
    converted = best["conv"] != 1.0
    note = np.where(converted, note + ", converted from " + best["factor_unit"] + " to " + best["flow_unit"], note)
    return pd.Series(note, index=best.index, dtype=object)


def _unknown_notes(flows: pd.DataFrame, nace: pd.Series) -> pd.Series:
    sector = np.where(nace == "", "a facility without a NACE code", "NACE " + nace)
    return pd.Series("unknown: nothing is known about the facility's size, and the factors give no typical "
                     + flows["direction"] + " of " + flows["resource"] + " for " + sector,
                     index=flows.index, dtype=object)


# --- helpers ------------------------------------------------------------------------


def _conversion(taxonomy: Taxonomy, resource: pd.Series, from_unit: pd.Series, to_unit: pd.Series) -> pd.Series:
    """:meth:`geo.taxonomy.Taxonomy.conversion_factors` as a Series on ``resource``'s index."""
    return pd.Series(taxonomy.conversion_factors(resource, from_unit, to_unit), index=resource.index, dtype=float)

def _text(values: pd.Series) -> pd.Series:
    """Numbers as notes show them (:func:`_fmt`), as text."""
    return values.map(_fmt).astype(str)


def _range(rows: pd.DataFrame) -> pd.Series:
    """``", range low-high"`` of factor rows."""
    return ", range " + _text(rows["low"]) + "-" + _text(rows["high"])


def _fmt(x: float) -> str:
    """A number as a note shows it: three significant figures, thousands separated (668,000; 0.24)."""
    if not np.isfinite(x):
        return "?"
    rounded = float(f"{x:.3g}")
    return f"{rounded:,.0f}" if abs(rounded) >= 1000 or rounded == int(rounded) else f"{rounded:g}"
