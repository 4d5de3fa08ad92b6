"""What a region can report: potential, pursued and running exchanges, each tonne and MWh counted once.

Three levels, from the links of a match (allocated: :func:`geo.allocation.allocate`)
and the synergy pipeline (:meth:`geo.workspace.Workspace.synergies`):

``potential``
    What the allocation of the matching engine assigns over all links: every
    supply and demand shared out once, so three suppliers competing for one
    demand count that demand once. Never a sum of the links' own quantities.
``pursued``
    The allocated quantities of the links in the pipeline at the stages
    :data:`geo.synergy.PURSUED_STAGES` (contacted to agreed): two competing
    suppliers both pursued still count the demand once.
``running``
    The links in the pipeline at stage ``running``: their realised quantity
    where given (converted to the link's unit; CO2 and EUR at the link's
    figures per unit), else their allocated quantity, counted in
    ``from_allocation``.

Totals are per year, in t/yr, MWh/yr and m3/yr (never added together), t CO2
and EUR (net, as the engine computes them). :func:`region_totals` groups them
by cluster, country or resource group, :func:`sector_flows` gives the flows
between sectors for a Sankey diagram, and :func:`cluster_report_html` writes a
one-page report of a cluster for its steering group.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from geo.errors import InputError
from geo.privacy import sector_label
from geo.synergy import PURSUED_STAGES, SYNERGY_FIELDS, link_keys, pipeline_table, split_link_key
from geo.taxonomy import UNITS, Taxonomy, load_taxonomy, resource_group

__all__ = [
    "GROUPINGS",
    "LEVELS",
    "MEASURES",
    "cluster_report_html",
    "region_totals",
    "sector_flows",
]

#: The levels of :func:`region_totals`, in order.
LEVELS = ("potential", "pursued", "running")
#: What totals can be grouped by, and the column each reads (``{side}`` is ``supply`` or ``demand``).
GROUPINGS = {"cluster": "{side}_cluster", "country": "{side}_country", "resource_group": "resource"}
#: Column of each unit's quantity in the totals.
UNIT_COLUMNS = {unit: f"quantity_{unit.split('/')[0].lower()}_per_yr" for unit in UNITS}
#: The yearly figures of every total, in order.
MEASURES = [*UNIT_COLUMNS.values(), "co2_saved_t_per_yr", "value_eur_per_yr"]
#: What each measure is called in the report.
MEASURE_LABELS = {"quantity_t_per_yr": "t/yr", "quantity_mwh_per_yr": "MWh/yr", "quantity_m3_per_yr": "m3/yr",
                  "co2_saved_t_per_yr": "t CO2/yr", "value_eur_per_yr": "EUR/yr"}
_NEEDED = ["supply_facility_id", "demand_facility_id", "resource", "unit", "quantity", "co2_saved_t_per_yr",
           "value_eur_per_yr", "allocated_quantity", "allocated_co2_saved_t_per_yr", "allocated_value_eur_per_yr"]
_ATTRIBUTES = ["supply_cluster", "demand_cluster", "supply_country", "demand_country", "supply_nace", "demand_nace",
               "supply_name", "demand_name"]


# --- the rows each level counts -----------------------------------------------------------------------------------


def _check(links: pd.DataFrame) -> None:
    missing = [c for c in _NEEDED if c not in links.columns]
    if missing:
        msg = f"The links lack column(s) {', '.join(missing)}; use the links of geo.pipeline.match"
        raise InputError(msg)
    if len(links) and links["allocated_quantity"].isna().all() and links["quantity"].notna().any():
        msg = ("The links carry no allocation (the match ran without it), so competing links would be counted "
               "twice; match again with the allocation")
        raise InputError(msg)


def _potential_rows(links: pd.DataFrame) -> pd.DataFrame:
    """One row per link: what the allocation gives it, and its attributes."""
    rows = links.reindex(columns=["resource", "unit", *_ATTRIBUTES]).copy()
    rows["link_key"] = link_keys(links)
    rows["quantity"] = links["allocated_quantity"].astype(float)
    rows["co2"] = links["allocated_co2_saved_t_per_yr"].astype(float)
    rows["value"] = links["allocated_value_eur_per_yr"].astype(float)
    rows["counted"] = rows["quantity"].fillna(0.0) > 0
    rows["from_allocation"] = False
    rows["not_in_match"] = False
    return rows


def _entry_rows(links: pd.DataFrame, entries: pd.DataFrame, stages: Sequence[str], *, realised: bool,
                taxonomy: Taxonomy, facilities: pd.DataFrame | None) -> pd.DataFrame:
    """One row per pipeline entry at ``stages``: its links' allocation summed (each flow was allocated once),
    or with ``realised`` its realised quantity where given, and the attributes of its best-scoring link."""
    chosen = pd.DataFrame(entries).reindex(columns=SYNERGY_FIELDS)
    chosen = chosen[chosen["stage"].isin(stages)].reset_index(drop=True)
    work = links.assign(link_key=link_keys(links))
    if "score" in work.columns:
        work = work.sort_values("score", ascending=False, kind="stable")
    grouped = work.groupby("link_key", sort=False)
    first = grouped[["unit", *[c for c in _ATTRIBUTES if c in work.columns]]].first()
    sums = grouped[["allocated_quantity", "allocated_co2_saved_t_per_yr", "allocated_value_eur_per_yr"]].sum(
        min_count=1)
    positive = work["quantity"].astype(float) > 0
    per_unit = work[positive].groupby("link_key")[["quantity", "co2_saved_t_per_yr", "value_eur_per_yr"]].sum()
    rows = chosen[["link_key", "resource", "supply_facility_id", "demand_facility_id", "realised_quantity",
                   "realised_unit"]].merge(first.join(sums), left_on="link_key", right_index=True, how="left")
    rows = rows.merge(per_unit.rename(columns=lambda c: f"whole_{c}"), left_on="link_key", right_index=True,
                      how="left")
    rows["not_in_match"] = ~rows["link_key"].isin(first.index)
    _attributes_from_facilities(rows, facilities)
    quantity = rows["allocated_quantity"].astype(float)
    co2 = rows["allocated_co2_saved_t_per_yr"].astype(float)
    value = rows["allocated_value_eur_per_yr"].astype(float)
    rows["from_allocation"] = False
    if realised and len(rows):
        unit = rows["unit"].where(rows["unit"].notna(), rows["realised_unit"])
        factor = taxonomy.conversion_factors(rows["resource"], rows["realised_unit"], unit)
        given = rows["realised_quantity"].astype(float)
        usable = given.notna().to_numpy() & np.isfinite(factor)
        converted = given.to_numpy(dtype=float) * factor
        with np.errstate(divide="ignore", invalid="ignore"):
            co2_per = (rows["whole_co2_saved_t_per_yr"] / rows["whole_quantity"]).to_numpy(dtype=float)
            value_per = (rows["whole_value_eur_per_yr"] / rows["whole_quantity"]).to_numpy(dtype=float)
        quantity = pd.Series(np.where(usable, converted, quantity), index=rows.index)
        co2 = pd.Series(np.where(usable, converted * co2_per, co2), index=rows.index)
        value = pd.Series(np.where(usable, converted * value_per, value), index=rows.index)
        rows["unit"] = unit
        rows["from_allocation"] = ~usable
    rows["quantity"], rows["co2"], rows["value"] = quantity, co2, value
    rows["counted"] = True
    return rows


def _attributes_from_facilities(rows: pd.DataFrame, facilities: pd.DataFrame | None) -> None:
    """Clusters, countries, sectors and names of entries the match does not find, from the facilities table."""
    for column in _ATTRIBUTES:
        if column not in rows.columns:
            rows[column] = None
    if facilities is None or not len(facilities) or not len(rows):
        return
    table = pd.DataFrame(facilities).drop_duplicates("facility_id").set_index("facility_id")
    for side in ("supply", "demand"):
        for field in ("cluster", "country", "nace", "name"):
            column = f"{side}_{field}"
            if field in table.columns:
                lost = rows["not_in_match"].to_numpy(dtype=bool)
                rows[column] = rows[column].astype(object)
                rows.loc[lost, column] = rows.loc[lost, f"{side}_facility_id"].map(table[field]).to_numpy()


def _measured(rows: pd.DataFrame) -> pd.DataFrame:
    """The measures of each row: its quantity in the column of its unit, CO2 and EUR; 0 where unknown."""
    quantity = rows["quantity"].astype(float).fillna(0.0)
    odd = sorted(set(rows.loc[quantity > 0, "unit"].dropna()) - set(UNIT_COLUMNS))
    if odd:
        msg = f"Cannot total quantities in unit(s) {', '.join(map(str, odd))}; expected one of {', '.join(UNITS)}"
        raise InputError(msg)
    out = pd.DataFrame(index=rows.index)
    for unit, column in UNIT_COLUMNS.items():
        out[column] = quantity.where(rows["unit"] == unit, 0.0)
    out["co2_saved_t_per_yr"] = rows["co2"].astype(float).fillna(0.0)
    out["value_eur_per_yr"] = rows["value"].astype(float).fillna(0.0)
    out["links"] = rows["counted"].astype(int)
    out["from_allocation"] = rows["from_allocation"].astype(int)
    out["not_in_match"] = rows["not_in_match"].astype(int)
    return out


def _levels(links: pd.DataFrame, entries: pd.DataFrame | None, *, taxonomy: Taxonomy | None,
            facilities: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    _check(links)
    tax = taxonomy if taxonomy is not None else load_taxonomy()
    entries = pd.DataFrame(entries).reindex(columns=SYNERGY_FIELDS) if entries is not None else pd.DataFrame(
        columns=SYNERGY_FIELDS)
    return {
        "potential": _potential_rows(links),
        "pursued": _entry_rows(links, entries, PURSUED_STAGES, realised=False, taxonomy=tax, facilities=facilities),
        "running": _entry_rows(links, entries, ("running",), realised=True, taxonomy=tax, facilities=facilities),
    }


# --- totals --------------------------------------------------------------------------------------------------------


def region_totals(links: pd.DataFrame, entries: pd.DataFrame | None = None, *,
                  by: str | Sequence[str] | None = None, side: str = "supply", taxonomy: Taxonomy | None = None,
                  facilities: pd.DataFrame | None = None) -> pd.DataFrame:
    """Potential, pursued and running exchanges a year, each supply and demand counted once.

    Parameters
    ----------
    links : DataFrame
        The links of a match with its allocation (:func:`geo.pipeline.match`;
        ``allocated_*`` columns). A match run without the allocation is
        refused: its links would count competing supplies twice.
    entries : DataFrame, optional
        The pipeline (:meth:`geo.workspace.Workspace.synergies`); without it
        only the potential is counted.
    by : str or list of str, optional
        ``cluster``, ``country`` and/or ``resource_group``
        (:data:`GROUPINGS`); one row per group and level. The region as a
        whole without it.
    side : {'supply', 'demand'}
        Whose cluster and country a link belongs to: the supplier's by
        default, so that every link is in one group and the groups add up to
        the region.
    taxonomy : Taxonomy, optional
        For converting realised quantities to the link's unit; the bundled one
        by default.
    facilities : DataFrame, optional
        ``facility_id``, ``cluster``, ``country``, ``nace``: groups of pipeline
        entries whose link the match no longer finds.

    Returns
    -------
    DataFrame
        The group columns (named as in ``by``; '' for a link without one),
        ``level`` (:data:`LEVELS`), ``links`` (potential: links the
        allocation gives something; pursued and running: pipeline entries),
        the :data:`MEASURES` (t/yr, MWh/yr, m3/yr, t CO2/yr, EUR/yr),
        ``from_allocation`` (running entries counted at their allocated
        quantity, no realised one being given or convertible) and
        ``not_in_match`` (entries whose link the current match does not
        find: they add no CO2 or EUR). Every group has the three levels, in
        order.

    Raises
    ------
    InputError
        For a grouping or side not known, links without the match's columns
        or allocation, or a quantity in a unit other than t/yr, MWh/yr, m3/yr.
    """
    names = _groupings(by, side)
    tables = []
    for level, rows in _levels(links, entries, taxonomy=taxonomy, facilities=facilities).items():
        measured = _measured(rows)
        keys = [_group_values(rows, name, side).rename(name) for name in names]
        summed = measured.groupby(keys, sort=True).sum() if names else measured.sum().to_frame().T
        tables.append(summed.assign(level=level))
    combined = pd.concat(tables)
    columns = ["links", *MEASURES, "from_allocation", "not_in_match"]
    if not names:
        out = combined.reset_index(drop=True)
    else:
        out = combined.reset_index()
        groups = out[names].drop_duplicates().sort_values(names)
        grid = groups.merge(pd.DataFrame({"level": list(LEVELS)}), how="cross")
        out = grid.merge(out, on=[*names, "level"], how="left")
    out[columns] = out[columns].fillna(0)
    out = out.astype({c: "int64" for c in ("links", "from_allocation", "not_in_match")})
    order = out["level"].map({level: i for i, level in enumerate(LEVELS)})
    out = out.assign(_order=order).sort_values([*names, "_order"], kind="stable")
    return out[[*names, "level", *columns]].reset_index(drop=True)


def _groupings(by: str | Sequence[str] | None, side: str) -> list[str]:
    names = [] if by is None else [by] if isinstance(by, str) else list(by)
    unknown = [n for n in names if n not in GROUPINGS]
    if unknown:
        raise InputError(f"Cannot group totals by {unknown[0]!r}; choose from {', '.join(GROUPINGS)}")
    if side not in ("supply", "demand"):
        raise InputError(f"side is 'supply' or 'demand', not {side!r}")
    return names


def _group_values(rows: pd.DataFrame, name: str, side: str) -> pd.Series:
    if name == "resource_group":
        values = resource_group(rows["resource"].astype("string").fillna(""))
    else:
        values = rows[GROUPINGS[name].format(side=side)]
    return values.astype("string").fillna("").astype(object)


# --- flows between sectors -------------------------------------------------------------------------------------------


def sector_flows(links: pd.DataFrame, entries: pd.DataFrame | None = None, *, level: str = "potential",
                 detail: str = "section", taxonomy: Taxonomy | None = None,
                 facilities: pd.DataFrame | None = None) -> pd.DataFrame:
    """Yearly flows from supplier sectors to receiver sectors at one level, for a Sankey diagram.

    Parameters
    ----------
    links, entries, taxonomy, facilities
        As for :func:`region_totals`.
    level : {'potential', 'pursued', 'running'}
        Which exchanges to count.
    detail : {'section', 'division'}
        Sectors by NACE section (``Manufacturing (NACE C)``) or division
        (``Manufacturing (NACE C17)``).

    Returns
    -------
    DataFrame
        One row per supplier sector, receiver sector and resource group that
        carries something: ``source``, ``target``, ``resource_group``,
        ``links`` and the :data:`MEASURES`, largest CO2 first. A sector may
        be both a source and a target; a Sankey that keeps the two sides
        apart should label its nodes by side. Quantities of different units
        stay in their own columns: draw one measure at a time.
    """
    if level not in LEVELS:
        raise InputError(f"level is one of {', '.join(LEVELS)}, not {level!r}")
    if detail not in ("section", "division"):
        raise InputError(f"detail is 'section' or 'division', not {detail!r}")
    rows = _levels(links, entries, taxonomy=taxonomy, facilities=facilities)[level]
    measured = _measured(rows)
    label = (lambda code: sector_label(code, section_only=detail == "section"))
    keys = [rows["supply_nace"].map(label).rename("source"), rows["demand_nace"].map(label).rename("target"),
            _group_values(rows, "resource_group", "supply").rename("resource_group")]
    summed = measured.groupby(keys, sort=True)[["links", *MEASURES]].sum().reset_index()
    carrying = summed[MEASURES[:len(UNIT_COLUMNS)]].sum(axis=1) > 0
    out = summed[carrying].sort_values(["co2_saved_t_per_yr", "source", "target"], ascending=[False, True, True],
                                       kind="stable")
    return out.reset_index(drop=True)


# --- the one-page report of a cluster ---------------------------------------------------------------------------------


def cluster_report_html(links: pd.DataFrame, entries: pd.DataFrame | None, *, cluster: str,
                        facilities: pd.DataFrame | None = None, taxonomy: Taxonomy | None = None,
                        title: str | None = None, generated_at: datetime | None = None) -> str:
    """A one-page HTML report of a cluster for its steering group: totals, a bar chart and the pipeline.

    The links of the cluster are those with either end in it; the totals
    count them once (:func:`region_totals` over those links). The page is
    self-contained: inline CSS and an inline SVG chart drawn here, no script,
    no font or image fetched, so it prints and opens offline. Every name,
    note and owner is escaped and shown as text. A pipeline link with a
    confidential flow is named by its sectors only, without its figures; it
    still counts in the totals.

    Parameters
    ----------
    links : DataFrame
        The links of a match with its allocation.
    entries : DataFrame or None
        The pipeline (:meth:`geo.workspace.Workspace.synergies`).
    cluster : str
        The cluster (``supply_cluster`` or ``demand_cluster`` of the links).
    facilities : DataFrame, optional
        ``facility_id``, ``name``, ``cluster``, ``country``, ``nace``: places
        pipeline entries the match no longer finds.
    taxonomy : Taxonomy, optional
        For converting realised quantities; the bundled one by default.
    title : str, optional
        The heading; ``Industrial symbiosis in <cluster>`` by default.
    generated_at : datetime, optional
        The date printed on the page; now (UTC) by default.

    Returns
    -------
    str
        The HTML document.
    """
    _check(links)
    inside = ((links.reindex(columns=["supply_cluster"]).iloc[:, 0] == cluster)
              | (links.reindex(columns=["demand_cluster"]).iloc[:, 0] == cluster))
    chosen = links[inside.to_numpy()]
    own = _cluster_entries(entries, chosen, cluster, facilities)
    totals = region_totals(chosen, own, taxonomy=taxonomy, facilities=facilities).set_index("level")
    table = pipeline_table(own, chosen, facilities=facilities)
    secret = _confidential_keys(chosen)
    when = (generated_at or datetime.now(timezone.utc)).strftime("%Y-%m-%d")
    heading = title or f"Industrial symbiosis in {cluster}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(heading)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{_e(heading)}</h1>",
        f'<p class="meta">Report for the steering group, {_e(when)}. {len(chosen):,} candidate links with an end in '
        f"{_e(cluster)}; {len(own):,} in the pipeline.</p>",
        "<h2>What the cluster can gain, pursues and runs, a year</h2>",
        _totals_table(totals),
        _chart(totals),
        f'<p class="note">{_e(_METHOD)}</p>',
        "<h2>Pipeline</h2>",
        _pipeline_html(table, secret),
        "</body></html>",
    ]
    return "\n".join(parts)


def _cluster_entries(entries: pd.DataFrame | None, chosen: pd.DataFrame, cluster: str,
                     facilities: pd.DataFrame | None) -> pd.DataFrame:
    """The pipeline entries of a cluster: those of its links, and those the match lost whose facility is in it."""
    frame = pd.DataFrame(entries).reindex(columns=[*SYNERGY_FIELDS, "version"]) if entries is not None else \
        pd.DataFrame(columns=[*SYNERGY_FIELDS, "version"])
    mine = frame["link_key"].isin(set(link_keys(chosen))) if len(chosen) else pd.Series(False, index=frame.index)
    if facilities is not None and len(facilities) and "cluster" in facilities.columns:
        here = set(pd.DataFrame(facilities).loc[lambda f: f["cluster"] == cluster, "facility_id"])
        ends = frame["link_key"].map(lambda k: bool(set(split_link_key(k)[:2]) & here))
        mine = mine | ends.astype(bool)
    return frame[mine.to_numpy(dtype=bool)].reset_index(drop=True)


def _confidential_keys(links: pd.DataFrame) -> set[str]:
    if "confidential" not in links.columns or not len(links):
        return set()
    flag = links["confidential"].map(lambda v: v is True or (isinstance(v, (bool, np.bool_)) and bool(v))
                                     or str(v).strip().lower() in ("true", "1", "yes"))
    return set(link_keys(links)[flag.to_numpy(dtype=bool)])


def _e(value: object) -> str:
    """Text for HTML: escaped, quotes included; '' for nothing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return html.escape(str(value), quote=True)


def _number(value: object) -> str:
    """``60,000``; one decimal below 10; ``-`` for nothing."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "-"
    if not math.isfinite(number):
        return "-"
    return f"{number:,.1f}" if 0 < abs(number) < 10 else f"{number:,.0f}"


_METHOD = ("Counted once: the potential is what the matching engine's allocation assigns over all candidate links, "
           "each supply and demand shared out once, never a sum over competing links. Pursued: the allocated "
           "quantities of the links in the pipeline from 'contacted' to 'agreed'. Running: the realised quantities "
           "of running links where given, else their allocated quantity (marked *). CO2 and EUR are net a year, "
           "screening figures that do not replace a feasibility study.")

_CSS = ("body{font-family:sans-serif;max-width:60em;margin:1.5em auto;color:#222;font-size:11pt}"
        "h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.1em;margin-top:1.4em}"
        "table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{border-bottom:1px solid #ccc;"
        "padding:.25em .4em;text-align:left;vertical-align:top}td.n,th.n{text-align:right}"
        ".meta,.note{color:#555;font-size:.9em}svg text{font-family:sans-serif;font-size:11px}"
        "@media print{body{margin:0}}")


def _totals_table(totals: pd.DataFrame) -> str:
    header = "".join(f'<th class="n">{_e(MEASURE_LABELS[m])}</th>' for m in MEASURES)
    rows = []
    for level in LEVELS:
        row = totals.loc[level]
        marked = "*" if level == "running" and row["from_allocation"] else ""
        cells = "".join(f'<td class="n">{_number(row[m])}</td>' for m in MEASURES)
        rows.append(f'<tr><th>{_e(level.capitalize())}{marked}</th><td class="n">{int(row["links"]):,}</td>{cells}'
                    "</tr>")
    notes = []
    running = totals.loc["running"]
    if running["from_allocation"]:
        notes.append(f"* {int(running['from_allocation'])} running link(s) without a realised quantity are counted at "
                     "their allocated quantity.")
    lost = int(totals["not_in_match"].sum())
    if lost:
        notes.append(f"{lost} pipeline link(s) are not among the current candidate links and add no figures.")
    foot = "".join(f'<p class="note">{_e(n)}</p>' for n in notes)
    return (f'<table class="totals"><thead><tr><th></th><th class="n">Links</th>{header}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>{foot}")


def _chart(totals: pd.DataFrame) -> str:
    """Two bar charts side by side (t CO2 and EUR a year, one bar per level), drawn as inline SVG."""
    panels = [("co2_saved_t_per_yr", "t CO2 a year"), ("value_eur_per_yr", "EUR a year")]
    width, bar_h, gap, label_w, top = 330, 22, 8, 80, 22
    height = top + len(LEVELS) * (bar_h + gap) + 4
    colours = {"potential": "#9ecae1", "pursued": "#4292c6", "running": "#08519c"}
    svgs = []
    for measure, caption in panels:
        values = [max(float(totals.loc[level, measure]), 0.0) for level in LEVELS]
        scale = (width - label_w - 70) / max(max(values), 1e-9)
        items = [f'<text x="0" y="14" font-weight="bold">{_e(caption)}</text>']
        for i, (level, value) in enumerate(zip(LEVELS, values, strict=True)):
            y = top + i * (bar_h + gap)
            length = value * scale
            items.append(f'<text x="0" y="{y + 15}">{_e(level.capitalize())}</text>')
            items.append(f'<rect x="{label_w}" y="{y}" width="{length:.1f}" height="{bar_h}" '
                         f'fill="{colours[level]}"><title>{_e(level)}: {_number(value)}</title></rect>')
            items.append(f'<text x="{label_w + length + 4:.1f}" y="{y + 15}">{_number(value)}</text>')
        svgs.append(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
                    f'aria-label="{_e(caption)} by level">{"".join(items)}</svg>')
    return f'<div class="chart">{"".join(svgs)}</div>'


def _pipeline_html(table: pd.DataFrame, secret: set[str]) -> str:
    if table.empty:
        return '<p class="note">No link of this cluster is in the pipeline yet.</p>'
    header = ("<tr><th>Stage</th><th>Since</th><th>Supplier</th><th>Receiver</th><th>Resource</th><th>Owner</th>"
              '<th class="n">Allocated</th><th class="n">Realised</th><th>Last note</th></tr>')
    rows = []
    for row in table.itertuples(index=False):
        hidden = row.link_key in secret
        supplier = "Confidential supplier" if hidden else (row.supply_name or row.supply_facility_id)
        receiver = "Confidential receiver" if hidden else (row.demand_name or row.demand_facility_id)
        allocated = "-" if hidden or not row.in_match else f"{_number(row.allocated_quantity)} {_e(row.unit)}"
        realised = ("-" if hidden or pd.isna(row.realised_quantity)
                    else f"{_number(row.realised_quantity)} {_e(row.realised_unit)}")
        note = "" if hidden else row.last_note
        rows.append(f"<tr><td>{_e(row.stage)}</td><td>{_e(row.stage_since)}</td><td>{_e(supplier)}</td>"
                    f"<td>{_e(receiver)}</td><td>{_e(row.resource)}</td><td>{_e(row.owner)}</td>"
                    f'<td class="n">{allocated}</td><td class="n">{realised}</td><td>{_e(note)}</td></tr>')
    return f'<table class="pipeline"><thead>{header}</thead><tbody>{"".join(rows)}</tbody></table>'

