"""Derivation of the data-based rows of ``data/knowledge/quantity_factors.csv``.

Two public datasets beside the project (``../shared/data``, never copied into
the repository) give ratios and typical sizes that :mod:`geo.estimates` uses
to put a size on flows whose quantity is unknown:

- the Hotmaps industrial database (EU H2020 grant 723677, CC BY 4.0, key [Q1]
  in ``data/knowledge/SOURCES.md``): excess heat by temperature band per t
  CO2 and per t produced, the shares of the bands, CO2 per t produced, and
  the typical CO2 release and production of a site, per subsector;
- the Finnish extract of the E-PRTR (EEA Industrial Reporting, key [Q2]):
  non-hazardous waste sent off site per t CO2 released, per Annex I activity
  (split over residues as ``data/knowledge/eprtr_waste_split.csv`` splits it),
  and the typical CO2 release of pulp mills, paper mills and incinerators
  (with the EEA's Nordic air-release file).

Each ratio is the median over sites; its range is the interquartile range.
Values are rounded to three significant figures, as committed.

Run ``python -m bench.quantity_factors`` to print the rows, or with
``--write`` to replace them in the CSV (hand-written rows are kept: a row is
taken as derived when its ``source`` begins with [Q1] or [Q2], so a
hand-written row names another key first). ``--measure`` reports how the
Finnish E-PRTR facilities' inferred flows get their quantities. The test
``tests/test_estimates.py`` recomputes them and compares with the committed file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
HOTMAPS_CSV = SHARED / "hotmaps" / "Industrial_Database.csv"
EPRTR_FI = SHARED / "eprtr_fi"
EPRTR_NORDIC_CSV = SHARED / "eprtr_nordics" / "F1_4_Air_Releases_Facilities_Nordics.csv"
FACTORS_CSV = ROOT / "data" / "knowledge" / "quantity_factors.csv"

COLUMNS = ["nace", "direction", "resource", "indicator", "factor", "low", "high", "unit",
           "unless_supplies", "source", "note"]
KEY = ["nace", "direction", "resource", "indicator", "unless_supplies"]

#: Hotmaps subsector -> NACE Rev. 2 prefix ("Other non-classified" has none).
HOTMAPS_NACE = {
    "Iron and steel": "24.1",
    "Paper and printing": "17",
    "Cement": "23.51",
    "Glass": "23.1",
    "Non-metallic mineral products": "23",
    "Chemical industry": "20",
    "Refineries": "19.2",
    "Non-ferrous metals": "24.4",
}

#: CO2 per MWh of fuel (net calorific value), IPCC 2006 defaults [Q3]: t CO2/TJ x 0.0036 TJ/MWh.
EF_WOOD = 112.0 * 0.0036
EF_BLACK_LIQUOR = 95.3 * 0.0036
EF_NATURAL_GAS = 56.1 * 0.0036
#: A Nordic combustion plant's mix of wood, peat and some coal and gas (rough [Q15]).
EF_NORDIC_MIX = 0.36

#: Full-load hours a year of a combustion plant: central and range (rough [Q15]).
HOURS, HOURS_LOW, HOURS_HIGH = 5000.0, 3000.0, 7000.0

#: Hotmaps computes excess heat from production with fixed factors per process, so sites of one
#: subsector hardly differ; a ratio's range is widened to at least central / 1.5 - central x 1.5.
MIN_SPREAD = 1.5

#: E-PRTR activities whose non-hazardous waste per t CO2 sizes residues, and the NACE prefix
#: their rows get. The waste is split over resources as the register import splits it
#: (``data/knowledge/eprtr_waste_split.csv``), so estimated and imported residues agree.
WASTE_ACTIVITIES = {
    "1(c)": ("35", "combustion plants (E-PRTR 1(c))"),
    "5(b)": ("38.21", "waste incinerators (E-PRTR 5(b))"),
    "6(a)": ("17.11", "pulp mills (E-PRTR 6(a))"),
    "6(b)": ("17.12", "paper and board mills (E-PRTR 6(b))"),
}
WASTE_SPLIT_CSV = ROOT / "data" / "knowledge" / "eprtr_waste_split.csv"

#: E-PRTR activities whose typical CO2 release is taken from the register (most of their
#: facilities release more than the register's 100,000 t reporting threshold).
REGISTER_SIZES = {"6(a)": "17.11", "6(b)": "17.12", "5(b)": "38.21"}


def sig(x: float, digits: int = 3) -> float:
    """``x`` rounded to ``digits`` significant figures."""
    return float(f"{x:.{digits}g}") if np.isfinite(x) else float("nan")


def _row(nace, direction, resource, indicator, central, low, high, unit, source, note, unless=""):
    return {"nace": nace, "direction": direction, "resource": resource, "indicator": indicator,
            "factor": sig(central), "low": sig(low), "high": sig(high), "unit": unit,
            "unless_supplies": unless, "source": source, "note": note}


def _quartiles(values: pd.Series) -> tuple[float, float, float]:
    q = values.quantile([0.5, 0.25, 0.75])
    return float(q[0.5]), float(q[0.25]), float(q[0.75])


# --- Hotmaps ----------------------------------------------------------------------


def read_hotmaps(path: Path = HOTMAPS_CSV) -> pd.DataFrame:
    """The sites of mapped subsectors, with CO2 (ETS, else E-PRTR, t/yr) and heat bands in MWh/yr."""
    d = pd.read_csv(path, sep=";")
    d = d[d["Subsector"].isin(list(HOTMAPS_NACE))].copy()
    d["nace"] = d["Subsector"].map(HOTMAPS_NACE)
    d["co2"] = d["Emissions_ETS_2014"].fillna(d["Emissions_EPRTR_2014"])
    d["hot_water"] = d["Excess_Heat_100-200C"] * 1000.0
    d["steam"] = (d["Excess_Heat_200-500C"] + d["Excess_Heat_500C"]) * 1000.0
    d["total"] = d["Excess_Heat_Total"] * 1000.0
    d["fuel"] = d["Fuel_Demand"] * 1000.0
    return d


def hotmaps_rows(path: Path = HOTMAPS_CSV) -> pd.DataFrame:
    """Heat ratios, band shares, CO2 per t produced and typical sizes per Hotmaps subsector."""
    d = read_hotmaps(path)
    rows = []
    for subsector, g in d.groupby("Subsector", sort=True):
        nace = HOTMAPS_NACE[subsector]
        label = subsector.lower()
        heat = g[g["total"] > 0]
        if len(heat):
            rows += _heat_rows(nace, label, subsector, heat)
        produced = g[g["Production"] > 0]
        if len(heat) and len(produced):
            c, lo, hi = _quartiles(produced["Production"])
            rows.append(_row(nace, "", "", "production_t_per_yr", c, lo, hi, "t/yr", "[Q1]",
                             f"Hotmaps median production of {len(produced)} {label} sites"))
        with_co2 = g[g["co2"] > 0]
        if subsector != "Paper and printing" and len(with_co2):
            c, lo, hi = _quartiles(with_co2["co2"])
            rows.append(_row(nace, "", "", "co2_t_per_yr", c, lo, hi, "t/yr", "[Q1]",
                             f"Hotmaps median CO2 release of {len(with_co2)} {label} sites (2014)"))
        both = g[(g["co2"] > 0) & (g["Production"] > 0)]
        if subsector in ("Iron and steel", "Cement", "Glass") and len(both):
            c, lo, hi = _quartiles(both["co2"] / both["Production"])
            rows.append(_row(nace, "supply", "gas.co2", "production_t_per_yr", c, lo, hi, "t/yr", "[Q1]",
                             f"Hotmaps median CO2 per t produced of {len(both)} {label} sites"))
    return pd.DataFrame(rows, columns=COLUMNS)


def _heat_rows(nace: str, label: str, subsector: str, heat: pd.DataFrame) -> list[dict]:
    """Excess heat per t CO2 and per t produced, and the bands' shares of the total."""
    rows = []
    has_steam = heat["steam"].quantile(0.75) > 0
    parts = [("heat.hot_water", "hot_water", "", "heat at 100-200 C")]
    if has_steam:
        parts += [("heat.hot_water", "total", "heat.steam", "all heat above 100 C (no steam flow listed)"),
                  ("heat.steam", "steam", "", "heat above 200 C")]
    for indicator, denominator, what in (("co2_t_per_yr", "co2", "t CO2"),
                                         ("production_t_per_yr", "Production", "t produced")):
        sample = heat[heat[denominator] > 0]
        for resource, band, unless, words in parts:
            if subsector == "Paper and printing" and indicator == "co2_t_per_yr":
                rows.append(_paper_heat_per_co2(nace, heat))
                continue
            c, lo, hi = _quartiles(sample[band] / sample[denominator])
            note = f"Hotmaps median of {len(sample)} {label} sites, {words} per {what}"
            if c > 0 and (lo > c / MIN_SPREAD or hi < c * MIN_SPREAD):
                lo, hi = min(lo, c / MIN_SPREAD), max(hi, c * MIN_SPREAD)
                note += (f"; Hotmaps models it with fixed process factors, so the range is widened to at least "
                         f"/{MIN_SPREAD}-x{MIN_SPREAD} (rough)")
            rows.append(_row(nace, "supply", resource, indicator, c, lo, hi, "MWh/yr", "[Q1]", note, unless))
    if has_steam:
        bands = (("heat.hot_water", "hot_water", "100-200 C"), ("heat.steam", "steam", "above 200 C"))
        for resource, band, words in bands:
            c, lo, hi = _quartiles(heat[band] / heat["total"])
            rows.append(_row(nace, "supply", resource, "excess_heat_mwh_per_yr", c, lo, hi, "MWh/yr", "[Q1]",
                             f"Hotmaps median share of excess heat at {words}, {len(heat)} {label} sites"))
        rows.append(_row(nace, "supply", "heat.hot_water", "excess_heat_mwh_per_yr", 1.0, 1.0, 1.0, "MWh/yr", "[Q1]",
                         "all of the stated excess heat, since no steam flow is listed", "heat.steam"))
    return rows


def _paper_heat_per_co2(nace: str, heat: pd.DataFrame) -> dict:
    """Paper: excess heat per t CO2 counting biogenic CO2, as the E-PRTR does.

    Hotmaps relates a paper site's excess heat to its fossil (ETS) CO2, but a
    Nordic pulp or paper mill's register CO2 is mostly biogenic. So the
    Hotmaps share of fuel that becomes excess heat is divided by the CO2 per
    MWh of the mill's fuel: black liquor (central), wood (low), natural gas (high).
    """
    share = float((heat["total"] / heat["fuel"]).median())
    return _row(nace, "supply", "heat.hot_water", "co2_t_per_yr", share / EF_BLACK_LIQUOR, share / EF_WOOD,
                share / EF_NATURAL_GAS, "MWh/yr", "[Q1]; [Q3]",
                f"Hotmaps: {share:.0%} of a paper site's fuel is excess heat at 100-200 C; per t of CO2 including "
                "biogenic CO2, as the E-PRTR reports it, with IPCC factors for black liquor (central), "
                "wood (low) and natural gas (high)")


# --- E-PRTR -----------------------------------------------------------------------


def _fi_co2(fi_dir: Path) -> pd.DataFrame:
    """CO2 released to air (t) per Finnish facility and reporting year, with its activity."""
    releases = pd.read_csv(fi_dir / "releases.csv", sep=";", dtype=str, keep_default_na=False)
    co2 = releases[(releases["pollutantCode"] == "CO2") & (releases["medium"] == "AIR")].copy()
    co2["t"] = pd.to_numeric(co2["totalPollutantQuantityKg"], errors="coerce") / 1000.0
    co2 = co2.groupby(["Facility_INSPIRE_ID", "reportingYear"], as_index=False)["t"].sum()
    facilities = pd.read_csv(fi_dir / "facilities.csv", sep=";", dtype=str, keep_default_na=False)
    activity = facilities.drop_duplicates("Facility_INSPIRE_ID", keep="last").set_index(
        "Facility_INSPIRE_ID")["mainActivityCode"].str.replace(" ", "", regex=False)
    co2["activity"] = co2["Facility_INSPIRE_ID"].map(activity)
    return co2


def _latest(frame: pd.DataFrame, facility: str, year: str) -> pd.DataFrame:
    years = pd.to_numeric(frame[year], errors="coerce")
    return frame[years == years.groupby(frame[facility]).transform("max")]


def eprtr_rows(fi_dir: Path = EPRTR_FI, nordic_csv: Path = EPRTR_NORDIC_CSV) -> pd.DataFrame:
    """Residues per t CO2 from the register's waste transfers, and typical CO2 releases."""
    co2 = _fi_co2(fi_dir)
    transfers = pd.read_csv(fi_dir / "waste_transfers.csv", sep=";", dtype=str, keep_default_na=False)
    transfers = transfers[transfers["wasteClassificationCode"] == "NONHW"].copy()
    transfers["waste_t"] = pd.to_numeric(transfers["totalWasteQuantityTNE"], errors="coerce")
    waste = transfers.groupby(["Facility_INSPIRE_ID", "reportingYear"], as_index=False)["waste_t"].sum()
    years = co2.merge(waste, on=["Facility_INSPIRE_ID", "reportingYear"])
    years = years[(years["t"] > 0) & (years["waste_t"] > 0)]
    split = pd.read_csv(WASTE_SPLIT_CSV, dtype=str, keep_default_na=False)
    rows = []
    for activity, (nace, label) in WASTE_ACTIVITIES.items():
        ratio = years.loc[years["activity"] == activity, "waste_t"] / years.loc[years["activity"] == activity, "t"]
        c, lo, hi = _quartiles(ratio)
        for part in split[split["activity"] == activity].itertuples(index=False):
            share = float(part.share)
            cited = "; ".join(k for k in part.source.split("; ") if k != "[K24]")
            source = "; ".join(filter(None, ["[Q2]", cited, "[Q15]"]))
            note = (f"E-PRTR Finland 2017-2023, median of {len(ratio)} facility-years of {label}: "
                    f"non-hazardous waste sent off site per t CO2 ({c:.3g}), {share:.0%} of it taken as this "
                    "residue, as the register import splits it (rough)")
            rows.append(_row(nace, "supply", part.resource, "co2_t_per_yr", c * share, lo * share, hi * share,
                             "t/yr", source, note))
            if activity == "1(c)":
                per_mw = (c * share * HOURS * EF_NORDIC_MIX, lo * share * HOURS_LOW * EF_NATURAL_GAS,
                          hi * share * HOURS_HIGH * EF_WOOD)
                rows.append(_row(nace, "supply", part.resource, "thermal_input_mw", *per_mw, "t/yr",
                                 "; ".join(filter(None, ["[Q2]", cited, "[Q3]", "[Q15]"])),
                                 f"the same residue per t CO2 times the CO2 of 1 MW of fuel input a year: "
                                 f"{HOURS:.0f} full-load hours (range {HOURS_LOW:.0f}-{HOURS_HIGH:.0f}) "
                                 f"at {EF_NORDIC_MIX} t CO2/MWh (natural gas to wood)"))
    rows += _register_sizes(co2, nordic_csv)
    return pd.DataFrame(rows, columns=COLUMNS)


def _register_sizes(co2: pd.DataFrame, nordic_csv: Path) -> list[dict]:
    """Typical CO2 release per activity: latest year of each Finnish, Swedish, Danish and Norwegian facility."""
    fi = _latest(co2, "Facility_INSPIRE_ID", "reportingYear")[["activity", "t"]]
    nordic = pd.read_csv(nordic_csv, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    nordic = nordic[nordic["Pollutant"] == "Carbon dioxide (CO2)"].copy()
    nordic["t"] = pd.to_numeric(nordic["Releases"], errors="coerce") / 1000.0
    nordic = _latest(nordic, "FacilityInspireId", "reportingYear")
    nordic = nordic.rename(columns={"EPRTRAnnexIMainActivity": "activity"})[["activity", "t"]]
    pooled = pd.concat([fi, nordic], ignore_index=True)
    pooled = pooled[pooled["t"] > 0]
    rows = []
    for activity, nace in REGISTER_SIZES.items():
        values = pooled.loc[pooled["activity"] == activity, "t"]
        c, lo, hi = _quartiles(values)
        rows.append(_row(nace, "", "", "co2_t_per_yr", c, lo, hi, "t/yr", "[Q2]",
                         f"E-PRTR median CO2 release (fossil and biogenic) of {len(values)} Finnish, Swedish, "
                         f"Danish and Norwegian facilities of activity {activity}, latest year"))
    return rows


# --- the table --------------------------------------------------------------------


def derived_rows() -> pd.DataFrame:
    """Every row this script derives, in the CSV's column order."""
    return pd.concat([hotmaps_rows(), eprtr_rows()], ignore_index=True)


def merged_table(committed: pd.DataFrame, derived: pd.DataFrame) -> pd.DataFrame:
    """The committed table with its derived rows replaced by ``derived``, sorted for reading."""
    key = committed[KEY].astype(str).agg("|".join, axis=1)
    new_keys = set(derived[KEY].astype(str).agg("|".join, axis=1))
    data_based = committed["source"].str.startswith(("[Q1]", "[Q2]"))
    kept = committed[~key.isin(new_keys) & ~data_based]
    table = pd.concat([kept, derived], ignore_index=True)
    return table.sort_values(["nace", "resource", "direction", "indicator", "unless_supplies"],
                             kind="stable").reset_index(drop=True)


def as_text(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows as the CSV writes them: numbers without a trailing ``.0`` or an exponent."""
    out = rows.copy()
    for column in ("factor", "low", "high"):
        out[column] = [f"{x:.10g}" if abs(x) < 1e10 else f"{x:.0f}" for x in rows[column]]
    return out.astype(str)


def measure_eprtr(fi_dir: Path = EPRTR_FI) -> dict:
    """How the Finnish E-PRTR facilities' inferred flows are sized, through the normal import and inference.

    The extract is imported and written to a GeoPackage as ``import-eprtr``
    does, read back through validation, given inferred flows, and passed to
    :func:`geo.estimates.estimate_quantities`. Returns the counts of inferred
    flows by ``quantity_basis`` (and by resource group), and of facilities.
    """
    import tempfile

    from geo.dataset import load_dataset
    from geo.eprtr import import_eprtr, write_geopackage
    from geo.estimates import estimate_quantities
    from geo.inference import infer_flows
    from geo.taxonomy import load_taxonomy

    tax = load_taxonomy()
    imported = import_eprtr(fi_dir / "facilities.csv", waste_transfers=fi_dir / "waste_transfers.csv",
                            releases=fi_dir / "releases.csv")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "eprtr_fi.gpkg"
        write_geopackage(imported, path)
        data = load_dataset(path, taxonomy=tax)
    flows, _ = infer_flows(data.facilities, data.flows, tax)
    estimates = estimate_quantities(data.facilities, flows, tax)
    inferred = flows["basis"] == "inferred"
    basis = estimates.loc[inferred, "quantity_basis"]
    group = flows.loc[inferred, "resource"].str.split(".").str[0]
    return {
        "facilities": len(data.facilities),
        "facilities with inferred flows": int(flows.loc[inferred, "facility_id"].nunique()),
        "inferred flows": int(inferred.sum()),
        "by basis": basis.value_counts().to_dict(),
        "by group": pd.crosstab(group, basis),
        "facilities with a size": int(flows.loc[inferred & (estimates["quantity_basis"] == "estimated"),
                                                "facility_id"].nunique()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"replace the derived rows in {FACTORS_CSV}")
    parser.add_argument("--measure", action="store_true",
                        help="report how the Finnish E-PRTR facilities' inferred flows get their quantities")
    args = parser.parse_args(argv)
    if args.measure:
        result = measure_eprtr()
        by_group = result.pop("by group")
        for key, value in result.items():
            print(f"{key}: {value}")
        print(by_group.to_string())
        return 0
    if not HOTMAPS_CSV.is_file():
        print(f"{HOTMAPS_CSV} not found: the shared data sit beside the project only", file=sys.stderr)
        return 1
    derived = derived_rows()
    if args.write:
        committed = pd.read_csv(FACTORS_CSV, dtype=str, keep_default_na=False)
        table = merged_table(committed, as_text(derived))
        tmp = FACTORS_CSV.with_suffix(".csv.tmp")
        table.to_csv(tmp, index=False)
        tmp.replace(FACTORS_CSV)
        print(f"{len(derived)} derived rows written to {FACTORS_CSV} ({len(table)} rows in all)")
    else:
        as_text(derived).to_csv(sys.stdout, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
