"""Import of the Hotmaps industrial database.

The Hotmaps project (EU Horizon 2020, grant 723677; data CC BY 4.0) published
a database of about 5,000 large industrial sites of the EU-28, Norway and
Switzerland: company, site, address, a WKT point, subsector, 2014 CO2
emissions (EU ETS and E-PRTR, t/yr), production (t/yr), fuel demand and an
estimate of the site's excess heat in three temperature bands (GWh/yr).
:func:`import_hotmaps` turns it into the engine's facilities and flows:

1. one facility per ``SiteID``, at the point of ``geom``
   (``SRID=4326;POINT(lon lat)``); the subsector becomes a NACE Rev. 2 code
   (:func:`subsector_nace`, ``data/knowledge/hotmaps_subsectors.csv``), so
   typical flows can be inferred;
2. excess heat becomes heat supply, each band as the heat resource it can
   serve (:func:`heat_bands`, ``data/knowledge/hotmaps_heat_bands.csv``):
   100-200 C as district-heating hot water, 200-500 C and above 500 C
   together as steam; GWh/yr become the resource's unit (MWh/yr) by
   ``data/knowledge/unit_conversions.csv``. ``evidence`` is ``typical``: the
   database estimates the heat from the sector's factors;
3. the 2014 CO2 emissions (EU ETS, else E-PRTR) become ``gas.co2`` supply,
   t/yr, ``evidence`` ``published``. These are fossil emissions: the ETS
   counts no biogenic CO2, and the database's E-PRTR figures are close to
   the ETS ones, pulp mills' too, so a mill's biogenic CO2 is not in them
   as it is in :mod:`geo.eprtr`'s import;
4. ``precision`` says how well the point places the site. Rows whose
   ``DataSource`` is ``ETS`` alone were geocoded from their address and can
   be kilometres off: ``address``, or ``town`` where the address is empty or
   several sites at different addresses share the point (a town centre).
   Rows that come from the E-PRTR (``EPRTR``, ``ETS/EPRTR``) carry the
   register's point: ``site``.

Every flow names its origin in the ``origin`` column, beginning with
:data:`ORIGIN`: the flows are register-derived for
:func:`geo.inference.infer_flows`, so a site also gets the other typical
flows of its sector. Rows that cannot be
used are counted in the :class:`geo.eprtr.ImportReport` with file, row and
column, as the E-PRTR import does, and the output is the same GeoPackage
(:func:`geo.eprtr.write_geopackage`).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from geo import settings
from geo.eprtr import (
    ImportReport,
    RegisterImport,
    add_problems,
    country_codes,
    finish_import,
    lon_lat,
    read_register_file,
    to_numbers,
)
from geo.errors import KnowledgeBaseError
from geo.taxonomy import Taxonomy, load_taxonomy

__all__ = ["FILE_HEAT_UNIT", "ORIGIN", "heat_bands", "import_hotmaps", "subsector_nace"]

# Number columns besides the heat bands (:func:`heat_bands`): the CO2 that becomes flows, and the sizes kept as
# facility columns, each with the unit its GWh/yr become (None: kept as the file gives it).
_QUANTITIES = ("Emissions_ETS_2014", "Emissions_EPRTR_2014", "Production", "Fuel_Demand", "Excess_Heat_Total")
_SIZES = {
    "Production": ("production_t_per_yr", None),
    "Fuel_Demand": ("fuel_demand_gwh_per_yr", None),
    "Excess_Heat_Total": ("excess_heat_mwh_per_yr", "MWh/yr"),
}
#: Unit of the database's excess heat and fuel demand.
FILE_HEAT_UNIT = "GWh/yr"
#: Beginning of every flow's ``origin``: it marks the flow as taken from a register
#: (:data:`geo.inference.REGISTER_ORIGINS`), so the site's sector profile fills in the rest.
ORIGIN = "Hotmaps industrial database 2014"

_SUBSECTORS = "hotmaps_subsectors.csv"
_HEAT_BANDS = "hotmaps_heat_bands.csv"

_POINT = re.compile(r"^\s*(?:SRID=(\d+)\s*;)?\s*POINT\s*\(\s*(\S+)\s+(\S+)\s*\)\s*$", re.IGNORECASE)
_SOURCE = "Hotmaps industrial database (2014; CC BY 4.0)"


def import_hotmaps(
    path: str | Path,
    *,
    country: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    taxonomy: Taxonomy | None = None,
) -> RegisterImport:
    """Read the Hotmaps industrial database into the engine's tables.

    The file is recognised from its header (semicolon-separated, as
    published); a file of another layout is refused with the columns found.

    Parameters
    ----------
    path : path
        ``Industrial_Database.csv``.
    country : str, optional
        Keep only sites of this ISO 3166 alpha-2 country code.
    bbox : (west, south, east, north), optional
        Keep only sites inside this box, WGS84 degrees.
    taxonomy : Taxonomy, optional
        Gives the heat resources' units; the bundled knowledge base by default.

    Returns
    -------
    RegisterImport
        ``facilities`` with the engine's facility columns plus
        ``hotmaps_site_id``, ``subsector``, ``data_source``, ``address``,
        ``city``, ``production_t_per_yr``, ``fuel_demand_gwh_per_yr``,
        ``excess_heat_mwh_per_yr`` (all bands; with production, a size
        :mod:`geo.estimates` sizes inferred flows by), ``location_source``
        and ``precision``;
        ``flows`` (heat and CO2 supply) with the flow columns plus
        ``origin``; and the report.
    """
    taxonomy = taxonomy if taxonomy is not None else load_taxonomy()
    bands = heat_bands(taxonomy)
    report = ImportReport()
    _, raw = read_register_file(path, "import-hotmaps", report)
    file = str(path)
    raw["_country"] = country_codes(raw["Country"])
    if country:  # before any check, so that a Swedish import reports Swedish rows only
        raw = raw[raw["_country"] == country.upper()]
    raw, lon, lat = _placed(raw, file, bbox, report)
    sites = _sites(raw, lon, lat, subsector_nace(), file, report)
    if country or bbox is not None:
        report.notes.append(f"{len(sites)} site(s) inside --country/--bbox")
    columns = dict.fromkeys([*_QUANTITIES, *bands["column"]])
    quantities = {column: _quantity(raw, column, file, report) for column in columns if column in raw.columns}
    for column, (name, unit) in _SIZES.items():
        factor = 1.0 if unit is None else _heat_factor("heat", unit, taxonomy)
        sites[name] = quantities[column] * factor if column in quantities else np.nan
    flows = [_heat_supply(sites, quantities, bands, taxonomy), _co2_supply(sites, quantities)]
    return finish_import(sites, flows, report)


def subsector_nace() -> pd.Series:
    """NACE Rev. 2 code of each Hotmaps subsector, by its lower-case name ('' for a subsector with no sector).

    Read from ``data/knowledge/hotmaps_subsectors.csv``, where each row
    gives its reason and source.

    Raises
    ------
    KnowledgeBaseError
        When the table lacks a column, repeats a subsector, gives a code
        that is no NACE Rev. 2 code, or a row without a source.
    """
    path = settings.KNOWLEDGE_DIR / _SUBSECTORS
    table = _knowledge_table(path, ("subsector", "nace", "note", "source"))
    key = table["subsector"].str.strip().str.lower()
    problems = [f"subsector {s!r} is listed twice" for s in sorted(set(key[key.duplicated()]))]
    nace = table["nace"].str.strip()
    well_formed = nace.str.fullmatch(r"([A-U])?\d{2}(\.\d{1,2})?") | (nace == "")
    problems += [f"{s}: {n!r} is no NACE Rev. 2 code" for s, n in zip(table["subsector"][~well_formed],
                                                                       nace[~well_formed], strict=True)]
    problems += [f"{s}: no source" for s in table.loc[table["source"].str.strip() == "", "subsector"]]
    if problems:
        raise KnowledgeBaseError(f"{path}: " + "; ".join(problems))
    return pd.Series(nace.to_numpy(), index=key.to_numpy(), name="nace")


def heat_bands(taxonomy: Taxonomy) -> pd.DataFrame:
    """The database's excess-heat columns (GWh/yr) and the heat resource each becomes.

    Read from ``data/knowledge/hotmaps_heat_bands.csv``: ``column``,
    ``resource`` (a heat resource of ``taxonomy``), ``band`` (its
    temperatures, for descriptions), ``use`` (what heat of that band
    serves), ``note`` and ``source``, in file order. Several bands may
    become one resource; their heat is then added into one supply.

    Raises
    ------
    KnowledgeBaseError
        When the table lacks a column, repeats a column, names a resource
        the knowledge base does not know or one that is no heat, a
        resource whose unit its GWh/yr cannot become, or a row without a
        source.
    """
    path = settings.KNOWLEDGE_DIR / _HEAT_BANDS
    table = _knowledge_table(path, ("column", "resource", "band", "use", "note", "source"))
    problems = [f"column {c!r} is listed twice" for c in sorted(set(table["column"][table["column"].duplicated()]))]
    for column, resource in zip(table["column"], table["resource"], strict=True):
        if resource not in taxonomy.codes or not resource.startswith("heat"):
            problems.append(f"{column}: {resource!r} is no heat resource of the knowledge base")
        elif not np.isfinite(taxonomy.conversion_factor(resource, FILE_HEAT_UNIT, taxonomy.unit(resource))):
            problems.append(f"{column}: no conversion from {FILE_HEAT_UNIT} to {taxonomy.unit(resource)} "
                            f"for {resource} in unit_conversions.csv")
    problems += [f"{c}: no source" for c in table.loc[table["source"].str.strip() == "", "column"]]
    if problems:
        raise KnowledgeBaseError(f"{path}: " + "; ".join(problems))
    return table


def _knowledge_table(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """A knowledge-base table as text, refused when it lacks one of ``columns``."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise KnowledgeBaseError(f"{path}: column(s) {', '.join(missing)} missing")
    return table


def _placed(raw: pd.DataFrame, file: str, bbox, report: ImportReport) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The rows with a site id and a usable WGS84 point inside ``bbox``, with their longitude and latitude."""
    ids = raw["SiteID"]
    repeated = ids.duplicated(keep="first") & (ids != "")
    add_problems(report, file, raw.loc[ids == "", "_row"], "SiteID", raw.loc[ids == "", "SiteName"],
                 "have no SiteID", "skipped")
    add_problems(report, file, raw.loc[repeated, "_row"], "SiteID", ids[repeated], "repeat a SiteID", "skipped")
    raw = raw[(ids != "") & ~repeated]
    lon, lat, srid = _points(raw["geom"])
    no_point = raw["geom"] == ""
    other_crs = (srid != "") & (srid != "4326")
    unusable = ~no_point & ~other_crs & np.isnan(lon)
    add_problems(report, file, raw.loc[no_point, "_row"], "geom", raw.loc[no_point, "SiteName"],
                 "have no point", "skipped")
    add_problems(report, file, raw.loc[other_crs, "_row"], "geom", raw.loc[other_crs, "geom"],
                 "have a point in another coordinate system than WGS84 (SRID 4326)", "skipped")
    add_problems(report, file, raw.loc[unusable, "_row"], "geom", raw.loc[unusable, "geom"],
                 "have a point that is no POINT(lon lat) in range", "skipped")
    keep = ~(no_point | other_crs | unusable).to_numpy()
    if bbox is not None:
        west, south, east, north = bbox
        keep &= (lon >= west) & (lon <= east) & (lat >= south) & (lat <= north)
    return raw[keep], lon[keep], lat[keep]


def _sites(raw: pd.DataFrame, lon: np.ndarray, lat: np.ndarray, sectors: pd.Series, file: str,
           report: ImportReport) -> pd.DataFrame:
    """One facility per row, with its sector (``sectors``: :func:`subsector_nace`), country and how precisely its
    point places it."""
    subsector = raw["Subsector"]
    nace = subsector.str.lower().map(sectors)
    unknown = nace.isna()
    add_problems(report, file, raw.loc[unknown, "_row"], "Subsector", subsector[unknown],
                 "have an unknown subsector", "kept without NACE")
    unclassified = int((nace == "").sum())
    if unclassified:
        report.notes.append(f"{unclassified} site(s) of subsector 'Other non-classified' kept without NACE: "
                            "no sector profile can be inferred for them")
    country = raw["_country"]
    nowhere = country == ""
    add_problems(report, file, raw.loc[nowhere, "_row"], "Country", raw.loc[nowhere, "Country"],
                 "have an unknown country", "kept without country")
    register = raw["DataSource"].str.upper().str.contains("EPRTR", regex=False)
    precision = _precision(raw, lon, lat, register)
    location = np.select([register.to_numpy(), precision == "town"],
                         ["E-PRTR point, via Hotmaps", "geocoded by Hotmaps from the EU ETS address, to a town"],
                         "geocoded by Hotmaps from the EU ETS address (can be kilometres off)")
    text = {c: raw[c] if c in raw.columns else pd.Series("", index=raw.index)
            for c in ("CompanyName", "Address", "City")}
    name = raw["SiteName"].where(raw["SiteName"] != "", text["CompanyName"])
    return pd.DataFrame({
        "facility_id": "HOTMAPS-" + raw["SiteID"].str.replace(r"[^0-9A-Za-z_-]", "_", regex=True),
        "name": name.where(name != "", "(unnamed Hotmaps site)"),
        "lat": lat,
        "lon": lon,
        "nace": nace.fillna(""),
        "country": country,
        "cluster": "",
        "operator": text["CompanyName"],
        "source": _SOURCE + ", site " + raw["SiteID"] + ", data source " + raw["DataSource"],
        "notes": subsector,
        "hotmaps_site_id": raw["SiteID"],
        "subsector": subsector,
        "data_source": raw["DataSource"],
        "address": text["Address"],
        "city": text["City"],
        "location_source": location,
        "precision": precision,
    }).reset_index(drop=True)


def _points(geom: pd.Series) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    """Longitude, latitude (NaN where unusable) and SRID ('' when not stated) of WKT points."""
    parts = geom.str.extract(_POINT)
    lon, lat = lon_lat(parts[1].fillna(""), parts[2].fillna(""))
    return lon, lat, parts[0].fillna("")


def _precision(raw: pd.DataFrame, lon: np.ndarray, lat: np.ndarray, register: pd.Series) -> np.ndarray:
    """``site`` for register points; for addresses geocoded from the EU ETS, ``town`` where the address is empty
    or sites at different addresses share the point, else ``address``."""
    address = raw["Address"] if "Address" in raw.columns else pd.Series("", index=raw.index)
    address = address.str.lower().str.replace(r"[\s.,]+", " ", regex=True).str.strip()
    point = pd.Series(np.round(lon, 6).astype(str), index=raw.index) + " " + np.round(lat, 6).astype(str)
    geocoded = ~register
    addresses_at_point = address[geocoded].groupby(point[geocoded]).transform("nunique")
    shared = addresses_at_point.reindex(raw.index, fill_value=1) > 1
    return np.select([register.to_numpy(), ((address == "") | shared).to_numpy()], ["site", "town"], "address")


def _quantity(rows: pd.DataFrame, column: str, file: str, report: ImportReport) -> pd.Series:
    """A number column, one value per site (NaN where empty); text or a negative value is a problem."""
    values = to_numbers(rows[column])
    bad = (rows[column] != "") & ~(values >= 0)
    add_problems(report, file, rows.loc[bad, "_row"], column, rows.loc[bad, column], "have no usable quantity",
                 "quantity left out")
    return values.where(~bad).reset_index(drop=True)


def _heat_supply(sites: pd.DataFrame, quantities: dict[str, pd.Series], bands: pd.DataFrame,
                 taxonomy: Taxonomy) -> pd.DataFrame:
    """One heat supply per site and heat resource with excess heat above 0, in the resource's unit."""
    parts = [pd.DataFrame({"facility_id": sites["facility_id"], "resource": band.resource, "band": band.band,
                           "use": band.use, "gwh": quantities[band.column]})
             for band in bands.itertuples(index=False) if band.column in quantities]
    per_band = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"gwh": []})
    per_band = per_band[per_band["gwh"] > 0]
    if per_band.empty:
        return pd.DataFrame()
    per_band["text"] = per_band["band"] + ": " + per_band["gwh"].map("{:g}".format) + " GWh/yr"
    per = per_band.groupby(["facility_id", "resource"], sort=False).agg(
        gwh=("gwh", "sum"), text=("text", "; ".join), use=("use", "first")).reset_index()
    factor = per["resource"].map(lambda code: _heat_factor(code, taxonomy.unit(code), taxonomy))
    return pd.DataFrame({
        "facility_id": per["facility_id"],
        "direction": "supply",
        "resource": per["resource"],
        "quantity": (per["gwh"] * factor).round(1),
        "unit": per["resource"].map(taxonomy.unit),
        "ewc": "",
        "description": "Excess heat (" + per["text"] + ") as estimated by the Hotmaps project for 2014 from the "
                       "site's fuel demand, " + per["use"],
        "max_distance_km": np.nan,
        "confidential": False,
        "origin": ORIGIN + ": excess heat " + per["text"].str.replace(r": [^;]+", "", regex=True),
        "evidence": "typical",  # Hotmaps' estimate from the sector's factors, not a figure the site reported
    })


def _heat_factor(resource: str, unit: str, taxonomy: Taxonomy) -> float:
    """Factor turning the database's GWh/yr into ``unit`` for ``resource`` (``data/knowledge/unit_conversions.csv``)."""
    factor = taxonomy.conversion_factor(resource, FILE_HEAT_UNIT, unit)
    if not np.isfinite(factor):
        msg = f"no conversion from {FILE_HEAT_UNIT} to {unit} for {resource} in unit_conversions.csv"
        raise KnowledgeBaseError(msg)
    return factor


def _co2_supply(sites: pd.DataFrame, quantities: dict[str, pd.Series]) -> pd.DataFrame:
    """The 2014 CO2 emissions as ``gas.co2`` supply, t/yr: the EU ETS figure (fossil), else the E-PRTR one."""
    ets, eprtr = quantities["Emissions_ETS_2014"], quantities["Emissions_EPRTR_2014"]
    tonnes = ets.where(ets > 0, eprtr)
    which = pd.Series(np.where(ets > 0, "EU ETS verified emissions, fossil only", "E-PRTR figure"), index=sites.index)
    has = tonnes > 0
    return pd.DataFrame({
        "facility_id": sites.loc[has, "facility_id"],
        "direction": "supply",
        "resource": "gas.co2",
        "quantity": tonnes[has].round(1),
        "unit": "t/yr",
        "ewc": "",
        "description": "CO2 emitted in 2014 (" + which[has] + "), a possible source for capture and use",
        "max_distance_km": np.nan,
        "confidential": False,
        "origin": ORIGIN + ": CO2, " + which[has].str.replace(", fossil only", ""),
        "evidence": "published",
    })
