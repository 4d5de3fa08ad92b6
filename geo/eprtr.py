"""Import of the European Pollutant Release and Transfer Register (E-PRTR).

Every large industrial facility in the EU reports its location, main
activity, releases and off-site waste transfers to the E-PRTR (now the EEA
Industrial Reporting database). :func:`import_eprtr` turns the register's
semicolon-separated CSV extracts into the engine's facilities and flows:

1. one facility per ``Facility_INSPIRE_ID``, the latest reporting year wins;
2. the E-PRTR Annex I activity code becomes a NACE Rev. 2 class
   (``data/knowledge/eprtr_activities.csv``), so typical flows can be
   inferred from the sector;
3. where ``pointGeometryLon``/``Lat`` are missing, the national projected
   ``x``/``y`` columns are used, in the coordinate system the rows that have
   both reveal (the Finnish extract uses ETRS-TM35FIN, EPSG:3067);
4. non-hazardous waste transfers destined for recovery, summed over the
   facility's latest year, become supplies of the resources typical of its
   activity, the tonnes split by the shares of
   ``data/knowledge/eprtr_waste_split.csv`` (the register does not say which
   waste it is: a pulp mill's is taken as dregs and lime mud, ash and
   sludge), and reported CO2 releases to air become ``gas.co2`` supply; each
   flow names its origin in the ``origin`` column, which marks it as
   register-derived for :func:`geo.inference.infer_flows`.

The facility keeps its Annex I activity as ``eprtr_activity``, so that a
sector profile keyed by the activity (``eprtr:5(d)`` for a landfill) can
refine the one its NACE class gives.

Rows that cannot be used (no coordinates, unknown activity code, unusable
quantity) are counted and listed in :class:`ImportReport`, never dropped
silently. A facility with an unknown activity code is kept, with no NACE
code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
from pyproj import Transformer

from geo import settings
from geo.errors import InputError, KnowledgeBaseError
from geo.taxonomy import activity_prefixes

__all__ = ["ImportReport", "EprtrImport", "check_output_path", "import_eprtr", "waste_split", "write_geopackage"]

FACILITY_FIELDS = ("Facility_INSPIRE_ID", "nameOfFeature", "mainActivityCode", "pointGeometryLon",
                   "pointGeometryLat", "countryCode", "reportingYear")
TRANSFER_FIELDS = ("Facility_INSPIRE_ID", "reportingYear", "wasteClassificationCode", "wasteTreatmentCode",
                   "totalWasteQuantityTNE")
RELEASE_FIELDS = ("Facility_INSPIRE_ID", "reportingYear", "pollutantCode", "medium", "totalPollutantQuantityKg")

#: Projected systems tried for the ``x``/``y`` columns, national grids of the region first.
XY_CANDIDATES = ("EPSG:3067", "EPSG:3006", "EPSG:25832", "EPSG:25833", "EPSG:25835", "EPSG:3301",
                 "EPSG:3059", "EPSG:3346", "EPSG:2180", "EPSG:3035")

#: How close (m) x/y must come to lon/lat on the rows with both for a system to be accepted.
XY_AGREEMENT_M = 100.0

_EXAMPLES = 5


@dataclass
class ImportReport:
    """What the import did with each input row.

    Attributes
    ----------
    rows_read : dict
        Data rows read per file.
    facilities : int
        Distinct facilities written.
    problems : DataFrame
        One row per problem: ``file``, ``row`` (1-based data row, header is
        row 0), ``column``, ``value``, ``problem`` and ``action`` (what the
        import did: ``skipped`` or ``kept without NACE`` ...).
    notes : list of str
        Facts worth telling the user (the coordinate system found, years used).
    """

    rows_read: dict[str, int] = field(default_factory=dict)
    facilities: int = 0
    flows: int = 0
    problems: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["file", "row", "column", "value", "problem", "action"]))
    notes: list[str] = field(default_factory=list)

    def summary(self) -> list[str]:
        """Problem counts, each with a few examples, one line per kind of problem."""
        lines = []
        for (file, problem, action), group in self.problems.groupby(["file", "problem", "action"], sort=False):
            examples = ", ".join(f"row {r} ({v})" if v else f"row {r}"
                                 for r, v in zip(group["row"].head(_EXAMPLES), group["value"].head(_EXAMPLES),
                                                 strict=True))
            more = f" and {len(group) - _EXAMPLES} more" if len(group) > _EXAMPLES else ""
            lines.append(f"{Path(file).name}: {len(group)} row(s) {problem}, {action}: {examples}{more}")
        return lines


@dataclass
class EprtrImport:
    """Facilities (GeoDataFrame, EPSG:4326) and flows in the engine's columns, plus the report."""

    facilities: gpd.GeoDataFrame
    flows: pd.DataFrame
    report: ImportReport


def import_eprtr(
    facilities_csv: str | Path,
    *,
    waste_transfers: str | Path | None = None,
    releases: str | Path | None = None,
    country: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
) -> EprtrImport:
    """Read E-PRTR facility, waste-transfer and release extracts into the engine's tables.

    Parameters
    ----------
    facilities_csv : path
        The register's facilities (one row per facility and reporting year).
    waste_transfers, releases : path, optional
        Off-site waste transfers (t/yr) and releases (kg/yr) of the same facilities.
    country : str, optional
        Keep only facilities of this ISO 3166 alpha-2 country code.
    bbox : (west, south, east, north), optional
        Keep only facilities inside this box, WGS84 degrees.

    Returns
    -------
    EprtrImport
        ``facilities`` with the engine's facility columns plus
        ``inspire_id``, ``eprtr_activity``, ``reporting_year`` and
        ``location_source``; ``flows`` with the flow columns plus
        ``origin``; and the :class:`ImportReport`.
    """
    report = ImportReport()
    activities = _activities()
    raw = _read(facilities_csv, FACILITY_FIELDS, report)
    register_ids = set(raw["Facility_INSPIRE_ID"])
    facilities = _facilities(raw, str(facilities_csv), activities, report)
    if country:
        facilities = facilities[facilities["country"] == country.upper()]
    if bbox is not None:
        west, south, east, north = bbox
        inside = facilities["lon"].between(west, east) & facilities["lat"].between(south, north)
        facilities = facilities[inside]
    flows = []
    if waste_transfers is not None:
        transfers = _read(waste_transfers, TRANSFER_FIELDS, report)
        flows.append(_waste_supply(transfers, str(waste_transfers), facilities, register_ids, report))
    if releases is not None:
        released = _read(releases, RELEASE_FIELDS, report)
        flows.append(_co2_supply(released, str(releases), facilities, register_ids, report))
    flow_frame = pd.concat(flows, ignore_index=True) if flows else _empty_flows()
    confidential_ids = set(facilities.loc[facilities["name"].str.upper() == "CONFIDENTIAL", "facility_id"])
    flow_frame["confidential"] = flow_frame["facility_id"].isin(confidential_ids)
    gdf = gpd.GeoDataFrame(facilities.reset_index(drop=True),
                           geometry=gpd.points_from_xy(facilities["lon"], facilities["lat"]), crs=settings.WGS84)
    report.facilities, report.flows = len(gdf), len(flow_frame)
    return EprtrImport(gdf, flow_frame, report)


def write_geopackage(result: EprtrImport, path: str | Path) -> None:
    """Write layers ``facilities`` (points) and ``flows`` (a table) to a new GeoPackage, atomically."""
    path = check_output_path(path)
    tmp = path.with_name(f".{path.name}.tmp.gpkg")
    tmp.unlink(missing_ok=True)
    try:
        pyogrio.write_dataframe(result.facilities, tmp, layer="facilities", driver="GPKG")
        pyogrio.write_dataframe(result.flows, tmp, layer="flows", driver="GPKG", append=True)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def check_output_path(path: str | Path) -> Path:
    """The output path, if it names a GeoPackage; InputError otherwise (checked before any work)."""
    path = Path(path)
    if path.suffix.lower() != ".gpkg":
        raise InputError(f"{path}: the import is written as a GeoPackage (.gpkg)")
    return path


# --- reading ------------------------------------------------------------------------


def _read(path: str | Path, required: tuple[str, ...], report: ImportReport) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        frame = pd.read_csv(path, sep=";", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path}: not a semicolon-separated E-PRTR extract ({exc})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        found = ", ".join(frame.columns[:12]) or "none"
        raise InputError(f"{path}: column(s) {', '.join(missing)} missing (found: {found})")
    frame = frame.apply(lambda column: column.str.strip())
    frame["_row"] = np.arange(1, len(frame) + 1)
    report.rows_read[str(path)] = len(frame)
    return frame


def _activities() -> pd.DataFrame:
    table = pd.read_csv(settings.KNOWLEDGE_DIR / "eprtr_activities.csv", dtype=str, keep_default_na=False)
    return table.set_index("activity")


def waste_split() -> pd.DataFrame:
    """The assumed make-up of each activity's recovered non-hazardous waste.

    An activity may carry several splits: rows with a ``name_pattern`` (a
    case-insensitive regular expression) apply to facilities whose name
    matches it, such as a biogas plant among the sorting plants and
    digesters that share activity 5(c); the rows without one apply to the
    rest.

    Returns
    -------
    DataFrame
        ``activity``, ``name_pattern`` ('' for the default split),
        ``resource``, ``share`` (0..1, summing to 1 per activity and
        pattern), ``note``, ``source``, from
        ``data/knowledge/eprtr_waste_split.csv``, in file order.

    Raises
    ------
    KnowledgeBaseError
        When a split's shares do not sum to 1, a share is not a number in
        (0, 1], or a pattern is not a valid regular expression.
    """
    path = settings.KNOWLEDGE_DIR / "eprtr_waste_split.csv"
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "name_pattern" not in table.columns:
        table.insert(1, "name_pattern", "")
    table["share"] = pd.to_numeric(table["share"], errors="coerce")
    problems = [f"{a}: share {s!r} is not in (0, 1]" for a, s in zip(table["activity"], table["share"], strict=True)
                if not 0 < s <= 1]
    for (activity, pattern), shares in table.groupby(["activity", "name_pattern"], sort=False)["share"]:
        if abs(shares.sum() - 1) > 1e-6:
            which = f"{activity} ({pattern})" if pattern else activity
            problems.append(f"{which}: shares sum to {shares.sum():g}, not 1")
    for pattern in table["name_pattern"].unique():
        try:
            re.compile(pattern)
        except re.error as exc:
            problems.append(f"name pattern {pattern!r} is not a regular expression ({exc})")
    if problems:
        raise KnowledgeBaseError(f"{path}: " + "; ".join(problems))
    return table


def _problem(report: ImportReport, file: str, rows, column: str, values, problem: str, action: str) -> None:
    rows = np.asarray(rows)
    if not len(rows):
        return
    add = pd.DataFrame({"file": file, "row": rows, "column": column, "value": np.asarray(values, dtype=object),
                        "problem": problem, "action": action})
    report.problems = pd.concat([report.problems, add], ignore_index=True) if len(report.problems) else add


def _numbers(text: pd.Series) -> pd.Series:
    """Numbers with a decimal point or comma; text, infinities and overflows (``1e400``) become NaN."""
    values = pd.to_numeric(text.str.replace(",", ".", regex=False), errors="coerce").astype(float)
    return values.where(np.isfinite(values))


# --- facilities ---------------------------------------------------------------------


def _facilities(raw: pd.DataFrame, file: str, activities: pd.DataFrame, report: ImportReport) -> pd.DataFrame:
    ids = raw["Facility_INSPIRE_ID"]
    _problem(report, file, raw.loc[ids == "", "_row"], "Facility_INSPIRE_ID", raw.loc[ids == "", "nameOfFeature"],
             "have no INSPIRE id", "skipped")
    raw = raw[ids != ""].copy()
    raw["_year"] = _numbers(raw["reportingYear"]).fillna(-1)
    latest = raw.sort_values(["_year", "_row"]).drop_duplicates("Facility_INSPIRE_ID", keep="last")
    older = len(raw) - len(latest)
    if older:
        report.notes.append(f"{older} older reporting-year row(s) replaced by the facility's latest year")
    latest = latest.sort_values("_row")
    lon, lat, source = _coordinates(latest, file, report)
    no_place = np.isnan(lon) | np.isnan(lat)
    _problem(report, file, latest.loc[no_place, "_row"], "pointGeometryLon", latest.loc[no_place, "nameOfFeature"],
             "have no usable coordinates", "skipped")
    latest, lon, lat, source = latest[~no_place], lon[~no_place], lat[~no_place], source[~no_place]
    code = latest["mainActivityCode"].str.replace(" ", "", regex=False).str.lower()
    known = code.isin(activities.index)
    _problem(report, file, latest.loc[~known, "_row"], "mainActivityCode", latest.loc[~known, "mainActivityCode"],
             "have an unknown E-PRTR activity code", "kept without NACE")
    nace = code.map(activities["nace"]).fillna("")
    name = latest["nameOfFeature"].where(latest["nameOfFeature"] != "",
                                         latest.get("parentCompanyName", pd.Series("", index=latest.index)))
    return pd.DataFrame({
        "facility_id": "EPRTR-" + _short_id(latest["Facility_INSPIRE_ID"]),
        "name": name.where(name != "", "(unnamed E-PRTR facility)"),
        "lat": lat,
        "lon": lon,
        "nace": nace,
        "country": latest["countryCode"].str.upper(),
        "cluster": "",
        "operator": latest.get("parentCompanyName", ""),
        "source": "E-PRTR (EEA Industrial Reporting), reporting year " + latest["reportingYear"],
        "notes": latest.get("mainActivityName", ""),
        "inspire_id": latest["Facility_INSPIRE_ID"],
        "eprtr_activity": code.where(known, latest["mainActivityCode"]),
        "reporting_year": latest["reportingYear"],
        "location_source": source,
    }).reset_index(drop=True)


def _short_id(inspire: pd.Series) -> pd.Series:
    """A readable, unique id from the INSPIRE id: its last path part without the type suffix."""
    tail = inspire.str.rsplit("/", n=1).str[-1].str.replace(r"\.(Production)?Facility$", "", regex=True, case=False)
    tail = tail.str.replace(r"[^0-9A-Za-z_-]", "_", regex=True)
    clash = tail.duplicated(keep=False)
    return tail.where(~clash, tail + "_" + pd.Series(np.arange(len(tail)), index=tail.index).astype(str))


def _coordinates(rows: pd.DataFrame, file: str, report: ImportReport) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """WGS84 lon/lat per row: the register's point, else its x/y in the system the other rows reveal."""
    lon = _numbers(rows["pointGeometryLon"]).to_numpy(dtype=float, copy=True)
    lat = _numbers(rows["pointGeometryLat"]).to_numpy(dtype=float, copy=True)
    bad = (np.abs(lon) > 180) | (np.abs(lat) > 90) | ((lon == 0) & (lat == 0))  # (0, 0): a placeholder
    lon[bad], lat[bad] = np.nan, np.nan
    source = np.where(np.isnan(lon) | np.isnan(lat), "", "E-PRTR point (lon/lat)").astype(object)
    if not {"x", "y"} <= set(rows.columns):
        return lon, lat, source
    x, y = _numbers(rows["x"]).to_numpy(dtype=float), _numbers(rows["y"]).to_numpy(dtype=float)
    missing = (np.isnan(lon) | np.isnan(lat)) & np.isfinite(x) & np.isfinite(y)
    if not missing.any():
        return lon, lat, source
    crs = _xy_crs(lon, lat, x, y)
    if crs is None:
        report.notes.append("x/y columns are in no recognised coordinate system: rows without lon/lat are skipped")
        return lon, lat, source
    to_wgs84 = Transformer.from_crs(crs, settings.WGS84, always_xy=True)
    lon[missing], lat[missing] = to_wgs84.transform(x[missing], y[missing])
    # a projection far outside its area gives infinities or nonsense: such a point has no usable coordinates
    bad = ~(np.isfinite(lon) & np.isfinite(lat)) | (np.abs(lon) > 180) | (np.abs(lat) > 90)
    lon[bad], lat[bad] = np.nan, np.nan
    missing &= ~bad
    source[missing] = f"E-PRTR x/y ({crs}), no lon/lat reported"
    report.notes.append(f"{int(missing.sum())} facilities placed from their x/y columns ({crs}); "
                        "the register gives them no lon/lat")
    return lon, lat, source


def _xy_crs(lon, lat, x, y) -> str | None:
    """The projected system in which the rows that have both put x/y within XY_AGREEMENT_M of lon/lat."""
    both = np.isfinite(lon) & np.isfinite(lat) & np.isfinite(x) & np.isfinite(y)
    if both.sum() < 3:
        return None
    for crs in XY_CANDIDATES:
        px, py = Transformer.from_crs(settings.WGS84, crs, always_xy=True).transform(lon[both], lat[both])
        if np.median(np.hypot(px - x[both], py - y[both])) < XY_AGREEMENT_M:
            return crs
    return None


# --- flows --------------------------------------------------------------------------


def _empty_flows() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in (
        "facility_id", "direction", "resource", "quantity", "unit", "ewc", "description",
        "max_distance_km", "confidential", "origin")})


def _linked(rows: pd.DataFrame, file: str, facilities: pd.DataFrame, register_ids: set[str],
            report: ImportReport, what: str) -> pd.DataFrame:
    """Rows of a transfers or releases file joined to their facility.

    Rows of facilities left out (by ``country``/``bbox``, or skipped) are
    counted in a note; rows whose id the facilities file does not hold at
    all are problems.
    """
    ids = facilities.set_index("inspire_id")["facility_id"]
    known = rows["Facility_INSPIRE_ID"].isin(ids.index)
    stranger = ~rows["Facility_INSPIRE_ID"].isin(register_ids)
    _problem(report, file, rows.loc[stranger, "_row"], "Facility_INSPIRE_ID", rows.loc[stranger, "Facility_INSPIRE_ID"],
             "name a facility the facilities file does not hold", "skipped")
    left_out = int((~known & ~stranger).sum())
    if left_out:
        report.notes.append(f"{left_out} {what} row(s) belong to facilities not imported (filtered out or skipped)")
    rows = rows[known].copy()
    rows["facility_id"] = rows["Facility_INSPIRE_ID"].map(ids)
    rows["_year"] = _numbers(rows["reportingYear"])
    return rows


def _latest_year(rows: pd.DataFrame) -> pd.DataFrame:
    latest = rows.groupby("facility_id")["_year"].transform("max")
    return rows[rows["_year"] == latest]


def _waste_supply(rows: pd.DataFrame, file: str, facilities: pd.DataFrame, register_ids: set[str],
                  report: ImportReport) -> pd.DataFrame:
    rows = _linked(rows, file, facilities, register_ids, report, "waste-transfer")
    wanted = (rows["wasteClassificationCode"].str.upper() == "NONHW") & (rows["wasteTreatmentCode"].str.upper() == "R")
    rows = rows[wanted].copy()
    rows["_t"] = _numbers(rows["totalWasteQuantityTNE"])
    bad = ~(rows["_t"] >= 0)
    _problem(report, file, rows.loc[bad, "_row"], "totalWasteQuantityTNE", rows.loc[bad, "totalWasteQuantityTNE"],
             "have no usable quantity", "skipped")
    rows = _latest_year(rows[~bad & rows["_year"].notna()])
    total = rows.groupby("facility_id").agg(t=("_t", "sum"), year=("reportingYear", "first"), n=("_t", "size"))
    total = total[total["t"] > 0]
    split = waste_split()
    named = facilities.set_index("facility_id")[["eprtr_activity", "name"]].reindex(total.index)
    keys = [_split_key(a, n, split) for a, n in zip(named["eprtr_activity"], named["name"], strict=True)]
    total["split"] = [k[0] for k in keys]
    total["name_pattern"] = [k[1] for k in keys]
    untyped = total["split"].isna()
    if untyped.any():
        report.notes.append(f"{int(untyped.sum())} facilities with recovered waste but an unknown activity: "
                            "no resource can be assumed, so their waste is not turned into supply")
    parts = (total[~untyped].rename_axis("facility_id").reset_index()
             .merge(split, left_on=["split", "name_pattern"], right_on=["activity", "name_pattern"], how="inner",
                    sort=False))
    typical = np.where(parts["name_pattern"] != "", "the share typical of its kind of plant under activity ",
                       "the share typical of activity ")
    described = ("Non-hazardous waste sent off site for recovery in " + parts["year"] + " ("
                 + parts["n"].astype(str) + " transfer record(s), " + parts["t"].round(1).map("{:g}".format)
                 + " t in all): " + (parts["share"] * 100).round().astype(int).astype(str) + "% taken as "
                 + parts["note"].str.lower() + ", " + typical + parts["split"]
                 + "; the register does not name the waste")
    return pd.DataFrame({
        "facility_id": parts["facility_id"].to_numpy(),
        "direction": "supply",
        "resource": parts["resource"].to_numpy(),
        "quantity": (parts["t"] * parts["share"]).round(1).to_numpy(),
        "unit": "t/yr",
        "ewc": "",
        "description": described.to_numpy(),
        "max_distance_km": np.nan,
        "confidential": False,
        "origin": ("E-PRTR waste transfers " + parts["year"] + ": NONHW, R").to_numpy(),
    })


def _split_key(activity, name, split: pd.DataFrame) -> tuple[str | float, str]:
    """The waste split a facility takes: (activity or nearest heading that has one, name pattern).

    Within that activity the first name pattern matching the facility's
    name wins, else the default split (''). (NaN, '') when no heading has a split.
    """
    known = set(split["activity"])
    for code in activity_prefixes(activity if isinstance(activity, str) else ""):
        if code in known:
            patterns = [p for p in split.loc[split["activity"] == code, "name_pattern"].unique() if p]
            text = name if isinstance(name, str) else ""
            for pattern in patterns:
                if re.search(pattern, text, flags=re.IGNORECASE):
                    return code, pattern
            return code, ""
    return np.nan, ""


def _co2_supply(rows: pd.DataFrame, file: str, facilities: pd.DataFrame, register_ids: set[str],
                report: ImportReport) -> pd.DataFrame:
    rows = _linked(rows, file, facilities, register_ids, report, "release")
    co2 = (rows["pollutantCode"].str.upper() == "CO2") & (rows["medium"].str.upper() == "AIR")
    rows = rows[co2].copy()
    rows["_kg"] = _numbers(rows["totalPollutantQuantityKg"])
    bad = ~(rows["_kg"] >= 0)
    _problem(report, file, rows.loc[bad, "_row"], "totalPollutantQuantityKg",
             rows.loc[bad, "totalPollutantQuantityKg"], "have no usable quantity", "skipped")
    rows = _latest_year(rows[~bad & rows["_year"].notna()])
    total = rows.groupby("facility_id").agg(kg=("_kg", "sum"), year=("reportingYear", "first"))
    total = total[total["kg"] > 0]
    return pd.DataFrame({
        "facility_id": total.index,
        "direction": "supply",
        "resource": "gas.co2",
        "quantity": (total["kg"] / 1000.0).round(1).to_numpy(),
        "unit": "t/yr",
        "ewc": "",
        "description": ("CO2 released to air in " + total["year"] + " (fossil and biogenic), "
                        "a possible source for capture and use").to_numpy(),
        "max_distance_km": np.nan,
        "confidential": False,
        "origin": ("E-PRTR releases " + total["year"] + ": CO2 to air").to_numpy(),
    })
