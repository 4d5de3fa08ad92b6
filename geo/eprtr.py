"""Import of the European Pollutant Release and Transfer Register (E-PRTR).

Every large industrial facility in the EU reports its location, main
activity, releases and off-site waste transfers to the E-PRTR (now the EEA
Industrial Reporting database). :func:`import_eprtr` turns the register's
files into the engine's facilities and flows. It reads two layouts, each
recognised from the file's header, never from its name (:data:`LAYOUTS`):

- the register's own tables, as national extracts publish them (the Finnish
  Environment Institute's, semicolon-separated): facilities
  (``Facility_INSPIRE_ID``, ``nameOfFeature``, ``mainActivityCode``,
  ``pointGeometryLon``/``Lat`` ...), off-site waste transfers and releases;
- the "user-friendly CSV" files anyone downloads from the EEA for any
  country (comma-separated, UTF-8 with a byte-order mark): ``F1_4`` air
  releases, ``F2_4`` water releases and ``F4_2`` waste transfers. Every row
  names its facility (``FacilityInspireId``, name, Annex I activity,
  longitude, latitude, country), so each file brings facilities of its own
  and the files join on ``FacilityInspireId``.

In both layouts:

1. one facility per INSPIRE id, its details from its latest reporting year;
2. the E-PRTR Annex I activity code becomes a NACE Rev. 2 class
   (``data/knowledge/eprtr_activities.csv``), so typical flows can be
   inferred from the sector;
3. in the register's tables, where ``pointGeometryLon``/``Lat`` are missing,
   the national projected ``x``/``y`` columns are used, in the coordinate
   system the rows that have both reveal (the Finnish extract uses
   ETRS-TM35FIN, EPSG:3067);
4. non-hazardous waste transfers destined for recovery, summed over the
   latest year the facility reported them, become supplies of the resources
   typical of its activity, the tonnes split by the shares of
   ``data/knowledge/eprtr_waste_split.csv`` (the register does not say which
   waste it is: a pulp mill's is taken as dregs and lime mud, ash and
   sludge), and CO2 released to air in the latest year reported becomes
   ``gas.co2`` supply in t/yr (the register reports kg/yr); each flow names
   its origin in the ``origin`` column, which marks it as register-derived
   for :func:`geo.inference.infer_flows`, and its ``evidence``: ``published``
   for the register's CO2, ``typical`` for waste whose split over resources
   is assumed.

The facility keeps its Annex I activity as ``eprtr_activity``, so that a
sector profile keyed by the activity (``eprtr:5(d)`` for a landfill) can
refine the one its NACE class gives, and ``precision`` ``site``: the register
holds the points its operators report for their sites.

Rows that cannot be used (no coordinates, unknown activity code, unusable
quantity) are counted and listed in :class:`ImportReport` with their file,
row and column, never dropped silently. A facility with an unknown activity
code is kept, with no NACE code. The Hotmaps industrial database
(:mod:`geo.hotmaps`) shares the report, the reading and the output.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
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

__all__ = [
    "LAYOUTS", "EprtrImport", "ImportReport", "Layout", "RegisterImport", "check_output_path", "country_codes",
    "import_eprtr", "read_register_file", "waste_split", "write_geopackage",
]

FACILITY_FIELDS = ("Facility_INSPIRE_ID", "nameOfFeature", "mainActivityCode", "pointGeometryLon",
                   "pointGeometryLat", "countryCode", "reportingYear")
TRANSFER_FIELDS = ("Facility_INSPIRE_ID", "reportingYear", "wasteClassificationCode", "wasteTreatmentCode",
                   "totalWasteQuantityTNE")
RELEASE_FIELDS = ("Facility_INSPIRE_ID", "reportingYear", "pollutantCode", "medium", "totalPollutantQuantityKg")

# The columns every user-friendly file gives its facility (EEA Industrial Reporting database, v16, Feb. 2026).
_EEA_FACILITY = ("FacilityInspireId", "facilityName", "countryName", "reportingYear", "EPRTRAnnexIMainActivity",
                 "Longitude", "Latitude")
EEA_RELEASE_FIELDS = (*_EEA_FACILITY, "TargetRelease", "Pollutant", "Releases")
EEA_WASTE_FIELDS = (*_EEA_FACILITY, "wasteTreatment", "wasteClassification", "wasteTransfers")
EEA_POLLUTANT_TRANSFER_FIELDS = (*_EEA_FACILITY, "Pollutant", "transfers")
HOTMAPS_FIELDS = ("SiteID", "SiteName", "Country", "geom", "Subsector", "DataSource", "Emissions_ETS_2014",
                  "Emissions_EPRTR_2014", "Excess_Heat_100-200C", "Excess_Heat_200-500C", "Excess_Heat_500C")


@dataclass(frozen=True)
class Layout:
    """A register file the importers recognise by its header.

    Attributes
    ----------
    key : str
        Short name used in the code (``eea_releases`` ...).
    label : str
        What the file is, for messages.
    required : tuple of str
        The columns that identify it (the first one is the facility id).
    command : str or None
        The ``python -m geo`` command that imports it; None for a file that
        is recognised but not imported.
    reason : str
        Why a recognised file is not imported.
    """

    key: str
    label: str
    required: tuple[str, ...]
    command: str | None
    reason: str = ""


#: Every layout the importers recognise, matched on the header alone.
LAYOUTS = (
    Layout("facilities", "the E-PRTR facilities table", FACILITY_FIELDS, "import-eprtr"),
    Layout("waste_transfers", "the E-PRTR off-site waste-transfer table", TRANSFER_FIELDS, "import-eprtr"),
    Layout("releases", "the E-PRTR pollutant-release table", RELEASE_FIELDS, "import-eprtr"),
    Layout("eea_releases", "the EEA's user-friendly air or water releases file (F1_4, F2_4)", EEA_RELEASE_FIELDS,
           "import-eprtr"),
    Layout("eea_waste_transfers", "the EEA's user-friendly waste-transfers file (F4_2)", EEA_WASTE_FIELDS,
           "import-eprtr"),
    Layout("eea_pollutant_transfers", "the EEA's user-friendly pollutant-transfers file (F3_2)",
           EEA_POLLUTANT_TRANSFER_FIELDS, None,
           "pollutants sent off site in waste water are no resource to match; import F1_4 and F4_2 instead"),
    Layout("hotmaps", "the Hotmaps industrial database", HOTMAPS_FIELDS, "import-hotmaps"),
)
_RELATIONAL = {"facilities", "waste_transfers", "releases"}
_USER_FRIENDLY = {"eea_releases", "eea_waste_transfers"}

#: Projected systems tried for the ``x``/``y`` columns, national grids of the region first.
XY_CANDIDATES = ("EPSG:3067", "EPSG:3006", "EPSG:25832", "EPSG:25833", "EPSG:25835", "EPSG:3301",
                 "EPSG:3059", "EPSG:3346", "EPSG:2180", "EPSG:3035")

#: How close (m) x/y must come to lon/lat on the rows with both for a system to be accepted.
XY_AGREEMENT_M = 100.0

#: Country names of the EEA's files and the Hotmaps database (``Netherland`` is Hotmaps' spelling).
_COUNTRY_NAMES = {
    "albania": "AL", "austria": "AT", "belgium": "BE", "bosnia and herzegovina": "BA", "bulgaria": "BG",
    "croatia": "HR", "cyprus": "CY", "czechia": "CZ", "czech republic": "CZ", "denmark": "DK", "estonia": "EE",
    "finland": "FI", "france": "FR", "germany": "DE", "greece": "GR", "hungary": "HU", "iceland": "IS",
    "ireland": "IE", "italy": "IT", "kosovo": "XK", "latvia": "LV", "liechtenstein": "LI", "lithuania": "LT",
    "luxembourg": "LU", "malta": "MT", "montenegro": "ME", "netherlands": "NL", "netherland": "NL",
    "north macedonia": "MK", "norway": "NO", "poland": "PL", "portugal": "PT", "romania": "RO", "serbia": "RS",
    "slovakia": "SK", "slovenia": "SI", "spain": "ES", "sweden": "SE", "switzerland": "CH", "turkey": "TR",
    "türkiye": "TR", "united kingdom": "GB",
}
# Country prefixes of INSPIRE ids that are not ISO 3166 codes.
_ID_PREFIXES = {"UK": "GB", "EL": "GR"}

_EXAMPLES = 5
_SHOWN_COLUMNS = 20


@dataclass
class ImportReport:
    """What the import did with each input row.

    Attributes
    ----------
    rows_read : dict
        Data rows read per file.
    layouts : dict
        The layout recognised per file (its :attr:`Layout.label`).
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
    layouts: dict[str, str] = field(default_factory=dict)
    facilities: int = 0
    flows: int = 0
    problems: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["file", "row", "column", "value", "problem", "action"]))
    notes: list[str] = field(default_factory=list)

    def summary(self) -> list[str]:
        """Problem counts, each with a few examples, one line per file, column and kind of problem."""
        lines = []
        keys = ["file", "column", "problem", "action"]
        for (file, column, problem, action), group in self.problems.groupby(keys, sort=False):
            group = group.sort_values("row", kind="stable")
            examples = ", ".join(f"row {r} ({v})" if v else f"row {r}"
                                 for r, v in zip(group["row"].head(_EXAMPLES), group["value"].head(_EXAMPLES),
                                                 strict=True))
            more = f" and {len(group) - _EXAMPLES} more" if len(group) > _EXAMPLES else ""
            lines.append(f"{Path(file).name}, column {column}: {len(group)} row(s) {problem}, {action}: "
                         f"{examples}{more}")
        return lines


@dataclass
class RegisterImport:
    """Facilities (GeoDataFrame, EPSG:4326) and flows in the engine's columns, plus the report."""

    facilities: gpd.GeoDataFrame
    flows: pd.DataFrame
    report: ImportReport


#: The name the E-PRTR import's result has always had.
EprtrImport = RegisterImport


def import_eprtr(
    files: str | Path | Sequence[str | Path],
    *,
    waste_transfers: str | Path | None = None,
    releases: str | Path | None = None,
    country: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
) -> RegisterImport:
    """Read E-PRTR files, of either layout, into the engine's tables.

    Each file is recognised from its header (:data:`LAYOUTS`): the
    register's facilities, waste-transfer and release tables, or the EEA's
    user-friendly ``F1_4``/``F2_4`` releases and ``F4_2`` waste-transfer
    files. One import reads files of one layout family, not both.

    Parameters
    ----------
    files : path or sequence of paths
        The register's facilities table (one row per facility and reporting
        year) with, optionally, its waste-transfer and release tables; or
        one or more of the EEA's user-friendly files.
    waste_transfers, releases : path, optional
        The register's waste-transfer (t/yr) and release (kg/yr) tables,
        named by role; each must have the header of its role.
    country : str, optional
        Keep only facilities of this ISO 3166 alpha-2 country code.
    bbox : (west, south, east, north), optional
        Keep only facilities inside this box, WGS84 degrees.

    Returns
    -------
    RegisterImport
        ``facilities`` with the engine's facility columns plus
        ``inspire_id``, ``eprtr_activity``, ``reporting_year``,
        ``location_source`` and ``precision``; ``flows`` with the flow
        columns (``evidence`` among them) plus ``origin``; and the
        :class:`ImportReport`.

    Raises
    ------
    InputError
        A file that is missing, not UTF-8, of no layout the import reads
        (the message names the columns found), or a mix of layouts.
    """
    report = ImportReport()
    tables = _tables(files, waste_transfers, releases, report)
    keys = {table.layout.key for table in tables}
    if keys & _RELATIONAL and keys & _USER_FRIENDLY:
        msg = ("give either the register's tables (facilities, waste transfers, releases) or the EEA's "
               "user-friendly files (F1_4, F2_4, F4_2), not both in one import")
        raise InputError(msg)
    if keys & _RELATIONAL:
        facilities, flows = _from_tables(tables, country, bbox, report)
    else:
        facilities, flows = _from_user_friendly(tables, country, bbox, report)
    return finish_import(facilities, flows, report)


def finish_import(facilities: pd.DataFrame, flows: list[pd.DataFrame], report: ImportReport) -> RegisterImport:
    """The import's result: facilities as points (EPSG:4326), flows in one frame with ``confidential`` set."""
    flows = [frame for frame in flows if len(frame)]
    flow_frame = pd.concat(flows, ignore_index=True) if flows else _empty_flows()
    confidential_ids = set(facilities.loc[facilities["name"].str.upper() == "CONFIDENTIAL", "facility_id"])
    flow_frame["confidential"] = flow_frame["facility_id"].isin(confidential_ids)
    gdf = gpd.GeoDataFrame(facilities.reset_index(drop=True),
                           geometry=gpd.points_from_xy(facilities["lon"], facilities["lat"]), crs=settings.WGS84)
    report.facilities, report.flows = len(gdf), len(flow_frame)
    return RegisterImport(gdf, flow_frame, report)


def filtered(facilities: pd.DataFrame, country: str | None,
             bbox: tuple[float, float, float, float] | None) -> pd.DataFrame:
    """Facilities of one country (ISO code, any case) and inside a (west, south, east, north) box."""
    if country:
        facilities = facilities[facilities["country"] == country.upper()]
    if bbox is not None:
        west, south, east, north = bbox
        inside = facilities["lon"].between(west, east) & facilities["lat"].between(south, north)
        facilities = facilities[inside]
    return facilities


def write_geopackage(result: RegisterImport, path: str | Path) -> None:
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


def country_codes(names: pd.Series, inspire_ids: pd.Series | None = None) -> pd.Series:
    """ISO 3166 alpha-2 codes of country names (``Sweden`` -> ``SE``), '' where unknown.

    Where a name is unknown, the two-letter prefix of an INSPIRE id
    (``SE.CAED/10017896.Facility``) is used when ``inspire_ids`` is given.
    """
    codes = names.str.strip().str.lower().map(_COUNTRY_NAMES)
    if inspire_ids is not None:
        prefix = inspire_ids.str.extract(r"^([A-Za-z]{2})\.", expand=False).str.upper()
        codes = codes.fillna(prefix.replace(_ID_PREFIXES))
    return codes.fillna("").astype(str)


# --- reading ------------------------------------------------------------------------


@dataclass
class _Table:
    path: Path
    layout: Layout
    frame: pd.DataFrame


def read_register_file(path: str | Path, command: str, report: ImportReport) -> tuple[Layout, pd.DataFrame]:
    """Read one register file and recognise its layout from the header.

    The separator (comma, semicolon or tab) is the one that splits the
    header into most columns; the text must be UTF-8, with or without a
    byte-order mark. Cells are read as stripped text; a ``_row`` column
    holds each row's 1-based number (the header is row 0).

    Parameters
    ----------
    path : path
        The file.
    command : str
        The command reading it (``import-eprtr``, ``import-hotmaps``): a
        file of a layout another command imports is refused with the
        command to use.
    report : ImportReport
        Gets the rows read and the layout found.

    Returns
    -------
    layout : Layout
        The layout recognised.
    frame : DataFrame
        The file's cells, all text.

    Raises
    ------
    InputError
        Missing file, not UTF-8, or a header of no layout ``command``
        reads: the message names the columns found and those expected.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    columns, separator = _header(path)
    layout = _recognised(path, columns, command)
    try:
        frame = pd.read_csv(path, sep=separator, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except pd.errors.ParserError as exc:
        raise InputError(f"{path}: not a readable {layout.label} ({exc})") from None
    frame = frame.apply(lambda column: column.str.strip())
    frame["_row"] = np.arange(1, len(frame) + 1)
    report.rows_read[str(path)] = len(frame)
    report.layouts[str(path)] = layout.label
    return layout, frame


def _header(path: Path) -> tuple[list[str], str]:
    """The header's column names and the separator that splits it into most of them."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            line = handle.readline()
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not line.strip():
        raise InputError(f"{path}: the file is empty or its first line is blank; a register file starts with "
                         "its header")
    splits = {sep: next(csv.reader([line.rstrip("\r\n")], delimiter=sep)) for sep in (",", ";", "\t")}
    separator = max(splits, key=lambda sep: len(splits[sep]))
    return [c.strip() for c in splits[separator]], separator


def _recognised(path: Path, columns: list[str], command: str) -> Layout:
    """The layout whose columns the header holds, or InputError naming the columns found."""
    have = set(columns)
    fits = [layout for layout in LAYOUTS if set(layout.required) <= have]
    if fits:
        layout = max(fits, key=lambda lay: len(lay.required))
        if layout.command == command:
            return layout
        if layout.command is None:
            raise InputError(f"{path}: this is {layout.label}, which is not imported: {layout.reason}")
        raise InputError(f"{path}: this is {layout.label}; import it with: python -m geo {layout.command}")
    found = ", ".join(columns[:_SHOWN_COLUMNS]) or "none"
    if len(columns) > _SHOWN_COLUMNS:
        found += f" and {len(columns) - _SHOWN_COLUMNS} more"
    mine = [layout for layout in LAYOUTS if layout.command == command]
    near = max(mine, key=lambda lay: len(have & set(lay.required)))
    if near.required[0] in have and len(have & set(near.required)) >= 2:
        missing = ", ".join(c for c in near.required if c not in have)
        raise InputError(f"{path}: column(s) {missing} missing for {near.label} (found: {found})")
    expected = "; ".join(f"{layout.label}: {', '.join(layout.required)}" for layout in mine)
    raise InputError(f"{path}: not a file {command} reads; found column(s) {found}. Expected the columns of "
                     f"one of: {expected}")


def _tables(files, waste_transfers, releases, report: ImportReport) -> list[_Table]:
    """Every file read and recognised; a file named by role must have that role's header."""
    paths = [files] if isinstance(files, str | Path) else list(files)
    named = [(Path(p), None) for p in paths]
    named += [(Path(p), role) for p, role in ((waste_transfers, "waste_transfers"), (releases, "releases"))
              if p is not None]
    if not named:
        raise InputError("no file to import")
    seen = set()
    tables = []
    for path, role in named:
        key = path.resolve()
        if key in seen:
            raise InputError(f"{path}: given twice")
        seen.add(key)
        layout, frame = read_register_file(path, "import-eprtr", report)
        if role is not None and layout.key != role:
            wanted = next(lay for lay in LAYOUTS if lay.key == role)
            msg = f"{path}: given as {wanted.label}, but its header is that of {layout.label}"
            raise InputError(msg)
        tables.append(_Table(path, layout, frame))
    return tables


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


def add_problems(report: ImportReport, file, rows, column: str, values, problem: str, action: str) -> None:
    """Record one problem per row: ``file`` is one path or one per row."""
    rows = np.asarray(rows)
    if not len(rows):
        return
    files = np.asarray(file, dtype=object) if not isinstance(file, str | Path) else str(file)
    add = pd.DataFrame({"file": files, "row": rows, "column": column, "value": np.asarray(values, dtype=object),
                        "problem": problem, "action": action})
    report.problems = pd.concat([report.problems, add], ignore_index=True) if len(report.problems) else add



def to_numbers(text: pd.Series) -> pd.Series:
    """Numbers with a decimal point or comma; text, infinities and overflows (``1e400``) become NaN."""
    values = pd.to_numeric(text.str.replace(",", ".", regex=False), errors="coerce").astype(float)
    return values.where(np.isfinite(values))



# --- the register's tables -----------------------------------------------------------


def _from_tables(tables: list[_Table], country, bbox, report: ImportReport) -> tuple[pd.DataFrame, list]:
    """Facilities and flows from the register's facilities, waste-transfer and release tables."""
    by_key: dict[str, _Table] = {}
    for table in tables:
        if table.layout.key in by_key:
            msg = f"{table.path}: a second {table.layout.label} (the first is {by_key[table.layout.key].path})"
            raise InputError(msg)
        by_key[table.layout.key] = table
    if "facilities" not in by_key:
        msg = (f"{', '.join(str(t.path) for t in tables)}: the register's facilities table is missing "
               f"(columns {', '.join(FACILITY_FIELDS)}); waste transfers and releases name facilities only by id")
        raise InputError(msg)
    raw = by_key["facilities"].frame
    register_ids = set(raw["Facility_INSPIRE_ID"])
    facilities = filtered(_facilities(raw, str(by_key["facilities"].path), _activities(), report), country, bbox)
    flows = []
    if "waste_transfers" in by_key:
        table = by_key["waste_transfers"]
        flows.append(_waste_supply(table.frame, str(table.path), facilities, register_ids, report))
    if "releases" in by_key:
        table = by_key["releases"]
        flows.append(_co2_supply(table.frame, str(table.path), facilities, register_ids, report))
    return facilities, flows


def _facilities(raw: pd.DataFrame, file: str, activities: pd.DataFrame, report: ImportReport) -> pd.DataFrame:
    ids = raw["Facility_INSPIRE_ID"]
    add_problems(report, file, raw.loc[ids == "", "_row"], "Facility_INSPIRE_ID",
                 raw.loc[ids == "", "nameOfFeature"], "have no INSPIRE id", "skipped")
    raw = raw[ids != ""].copy()
    raw["_year"] = to_numbers(raw["reportingYear"]).fillna(-1)
    latest = raw.sort_values(["_year", "_row"]).drop_duplicates("Facility_INSPIRE_ID", keep="last")
    older = len(raw) - len(latest)
    if older:
        report.notes.append(f"{older} older reporting-year row(s) replaced by the facility's latest year")
    latest = latest.sort_values("_row")
    lon, lat, source = _coordinates(latest, file, report)
    no_place = np.isnan(lon) | np.isnan(lat)
    add_problems(report, file, latest.loc[no_place, "_row"], "pointGeometryLon",
                 latest.loc[no_place, "nameOfFeature"], "have no usable coordinates", "skipped")
    latest, lon, lat, source = latest[~no_place], lon[~no_place], lat[~no_place], source[~no_place]
    code = latest["mainActivityCode"].str.replace(" ", "", regex=False).str.lower()
    known = code.isin(activities.index)
    add_problems(report, file, latest.loc[~known, "_row"], "mainActivityCode",
                 latest.loc[~known, "mainActivityCode"], "have an unknown E-PRTR activity code", "kept without NACE")
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
        "precision": "site",
    }).reset_index(drop=True)


def _short_id(inspire: pd.Series, *, with_country: bool = False) -> pd.Series:
    """A readable, unique id from the INSPIRE id: its last path part without the type suffix.

    With ``with_country`` the id's two-letter country prefix leads
    (``SE.CAED/10017896.Facility`` -> ``SE-10017896``), so that the
    national numbering of a Europe-wide file does not clash.
    """
    tail = inspire.str.rsplit("/", n=1).str[-1].str.replace(r"\.(Production)?Facility$", "", regex=True, case=False)
    tail = tail.str.replace(r"[^0-9A-Za-z_-]", "_", regex=True)
    if with_country:
        prefix = inspire.str.extract(r"^([A-Za-z]{2})\.", expand=False).str.upper()
        tail = (prefix + "-" + tail).where(prefix.notna(), tail)
    clash = tail.duplicated(keep=False)
    return tail.where(~clash, tail + "_" + pd.Series(np.arange(len(tail)), index=tail.index).astype(str))


def _coordinates(rows: pd.DataFrame, file: str, report: ImportReport) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """WGS84 lon/lat per row: the register's point, else its x/y in the system the other rows reveal."""
    lon, lat = lon_lat(rows["pointGeometryLon"], rows["pointGeometryLat"])
    source = np.where(np.isnan(lon) | np.isnan(lat), "", "E-PRTR point (lon/lat)").astype(object)
    if not {"x", "y"} <= set(rows.columns):
        return lon, lat, source
    x, y = to_numbers(rows["x"]).to_numpy(dtype=float), to_numbers(rows["y"]).to_numpy(dtype=float)
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


def lon_lat(lon_text: pd.Series, lat_text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Longitude and latitude as numbers; NaN (both) where either is no number, out of range or (0, 0)."""
    lon = to_numbers(lon_text).to_numpy(dtype=float, copy=True)
    lat = to_numbers(lat_text).to_numpy(dtype=float, copy=True)
    bad = ~(np.abs(lon) <= 180) | ~(np.abs(lat) <= 90) | ((lon == 0) & (lat == 0))  # (0, 0): a placeholder
    lon[bad], lat[bad] = np.nan, np.nan
    return lon, lat



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


# --- the EEA's user-friendly files ----------------------------------------------------


def _from_user_friendly(tables: list[_Table], country, bbox, report: ImportReport) -> tuple[pd.DataFrame, list]:
    """Facilities and flows from the EEA's F1_4/F2_4 releases and F4_2 waste-transfer files.

    Problems of a facility are reported only when it is in the country and
    box asked for: a Swedish import does not list Danish rows.
    """
    rows = [_usable_rows(table, order, country, report) for order, table in enumerate(tables)]
    activities = _activities()
    every = _eea_facilities(rows, activities)
    if country:
        every = every[every["country"] == country.upper()]
    unplaced = every["lon"].isna() | every["lat"].isna()
    add_problems(report, every.loc[unplaced, "_file"], every.loc[unplaced, "_row"], "Longitude",
                 every.loc[unplaced, "name"], "have no usable coordinates", "skipped")
    facilities = filtered(every[~unplaced], None, bbox)
    _eea_facility_problems(facilities, activities, report)
    facilities = facilities.drop(columns=["_file", "_row", "_country_name"]).reset_index(drop=True)
    _year_note(facilities["reporting_year"], report)
    ids = facilities.set_index("inspire_id")["facility_id"]
    left_out = sum(int((~r["FacilityInspireId"].isin(ids.index)).sum()) for r in rows)
    if left_out and (country or bbox is not None):
        report.notes.append(f"{left_out} row(s) belong to facilities outside --country/--bbox")
    releases = [r for r, t in zip(rows, tables, strict=True) if t.layout.key == "eea_releases"]
    transfers = [r for r, t in zip(rows, tables, strict=True) if t.layout.key == "eea_waste_transfers"]
    flows = []
    if releases:
        flows.append(_eea_co2(pd.concat(releases, ignore_index=True), ids, report))
    if transfers:
        flows.append(_eea_waste(pd.concat(transfers, ignore_index=True), ids, facilities, report))
    return facilities, flows


def _usable_rows(table: _Table, order: int, country: str | None, report: ImportReport) -> pd.DataFrame:
    """A file's rows that name a facility and a reporting year, with ``_file``, ``_order`` and ``_year``.

    Rows of another country than ``country`` are left out of the problems.
    """
    file = str(table.path)
    frame = table.frame.assign(_file=file, _order=order)
    row_country = country_codes(frame["countryName"], frame["FacilityInspireId"])
    mine = (row_country == "") | (row_country == country.upper()) if country else pd.Series(True, index=frame.index)
    no_id = frame["FacilityInspireId"] == ""
    add_problems(report, file, frame.loc[no_id & mine, "_row"], "FacilityInspireId",
                 frame.loc[no_id & mine, "facilityName"], "have no facility id", "skipped")
    frame["_year"] = to_numbers(frame["reportingYear"])  # the F4_2 file writes 2019 as 2019.0
    no_year = ~no_id & ~(frame["_year"] >= 1900)
    add_problems(report, file, frame.loc[no_year & mine, "_row"], "reportingYear",
                 frame.loc[no_year & mine, "reportingYear"], "have no usable reporting year", "skipped")
    return frame[~no_id & ~no_year]


def _eea_facilities(rows: list[pd.DataFrame], activities: pd.DataFrame) -> pd.DataFrame:
    """One facility per ``FacilityInspireId``, in order of first appearance.

    Each detail comes from the latest year that gives it, the point from the
    latest row with usable coordinates (NaN when none has). ``_file`` and
    ``_row`` name the facility's latest row, for problems.
    """
    every = pd.concat(rows, ignore_index=True)
    if every.empty:
        return _empty_facilities().assign(_file="", _row=0, _country_name="")
    every["_lon"], every["_lat"] = lon_lat(every["Longitude"], every["Latitude"])
    details = ["facilityName", "EPRTRAnnexIMainActivity", "countryName", "city", "PublicationDate"]
    every = every.reindex(columns=[*every.columns, *(c for c in details if c not in every.columns)], fill_value="")
    first = (every["_order"] * (len(every) + 1) + every["_row"]).groupby(every["FacilityInspireId"]).min()
    every = every.sort_values(["_year", "_order", "_row"], kind="stable")
    # last() takes the last non-missing value of each column: an empty cell never hides an earlier year's
    fac = (every[["FacilityInspireId", *details]].replace("", np.nan).groupby("FacilityInspireId").last()
           .fillna("")
           .join(every[["FacilityInspireId", "_lon", "_lat"]].groupby("FacilityInspireId").last())
           .join(every.groupby("FacilityInspireId")[["_file", "_row", "_year"]].last())
           .join(first.rename("_first"))
           .sort_values("_first").reset_index())
    code = fac["EPRTRAnnexIMainActivity"].str.replace(" ", "", regex=False).str.lower()
    known = code.isin(activities.index)
    year = fac["_year"].astype(int).astype(str)
    published = pd.Series(np.where(fac["PublicationDate"] != "", ", published " + fac["PublicationDate"], ""),
                          index=fac.index)
    return pd.DataFrame({
        "facility_id": "EPRTR-" + _short_id(fac["FacilityInspireId"], with_country=True),
        "name": fac["facilityName"].where(fac["facilityName"] != "", "(unnamed E-PRTR facility)"),
        "lat": fac["_lat"].astype(float),
        "lon": fac["_lon"].astype(float),
        "nace": code.map(activities["nace"]).fillna(""),
        "country": country_codes(fac["countryName"], fac["FacilityInspireId"]),
        "cluster": "",
        "operator": "",
        "source": "E-PRTR (EEA Industrial Reporting, user-friendly CSV" + published + "), reporting year " + year,
        "notes": code.map(activities["label"]).fillna(""),
        "inspire_id": fac["FacilityInspireId"],
        "eprtr_activity": code.where(known | (code == ""), fac["EPRTRAnnexIMainActivity"]),
        "reporting_year": year,
        "location_source": "E-PRTR point (Longitude/Latitude)",
        "precision": "site",
        "city": fac["city"],
        "_file": fac["_file"],
        "_row": fac["_row"],
        "_country_name": fac["countryName"],
    })


def _eea_facility_problems(fac: pd.DataFrame, activities: pd.DataFrame, report: ImportReport) -> None:
    """Facilities kept without NACE (no or an unknown activity) or without a country."""
    code = fac["eprtr_activity"]
    empty = code == ""
    unknown = ~empty & ~code.isin(activities.index)
    nowhere = fac["country"] == ""
    add_problems(report, fac.loc[empty, "_file"], fac.loc[empty, "_row"], "EPRTRAnnexIMainActivity",
                 fac.loc[empty, "name"], "have no E-PRTR activity", "kept without NACE")
    add_problems(report, fac.loc[unknown, "_file"], fac.loc[unknown, "_row"], "EPRTRAnnexIMainActivity",
                 code[unknown], "have an unknown E-PRTR activity code", "kept without NACE")
    add_problems(report, fac.loc[nowhere, "_file"], fac.loc[nowhere, "_row"], "countryName",
                 fac.loc[nowhere, "_country_name"], "have an unknown country", "kept without country")


def _year_note(reporting_year: pd.Series, report: ImportReport) -> None:
    """How current the facilities are: the range of their latest years and how many did not report in the last."""
    years = pd.to_numeric(reporting_year, errors="coerce").dropna().astype(int)
    if years.empty:
        return
    newest, older = int(years.max()), int((years < years.max()).sum())
    note = f"facility details from each facility's latest reporting year ({int(years.min())}-{newest})"
    if older:
        note += (f"; {older} of {len(years)} facilities did not report in {newest}: the year each last reported "
                 "is in column reporting_year")
    report.notes.append(note)


def _empty_facilities() -> pd.DataFrame:
    columns = ("facility_id", "name", "lat", "lon", "nace", "country", "cluster", "operator", "source", "notes",
               "inspire_id", "eprtr_activity", "reporting_year", "location_source", "precision", "city")
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return frame.astype({"lat": float, "lon": float})


def _eea_co2(rows: pd.DataFrame, ids: pd.Series, report: ImportReport) -> pd.DataFrame:
    """CO2 released to air, t/yr, in the latest year the facility reported it: the total, or, where that year
    has no total, the figure excluding biomass."""
    rows = rows[rows["FacilityInspireId"].isin(ids.index) & (rows["TargetRelease"].str.upper() == "AIR")]
    pollutant = rows["Pollutant"].str.lower().str.replace(r"\s+", " ", regex=True)
    total = pollutant.isin({"carbon dioxide (co2)", "co2"})
    fossil = pollutant.str.fullmatch(r"(carbon dioxide \(co2\)|co2) excl(\.|uding)? biomass")
    rows = rows[total | fossil].assign(_total=total)
    rows["_kg"] = to_numbers(rows["Releases"])
    bad = ~(rows["_kg"] >= 0)
    add_problems(report, rows.loc[bad, "_file"], rows.loc[bad, "_row"], "Releases", rows.loc[bad, "Releases"],
                 "have no usable quantity", "skipped")
    rows = rows[~bad].copy()
    rows["facility_id"] = rows["FacilityInspireId"].map(ids)
    rows = _latest_year(rows)
    rows = rows[rows["_total"] | ~rows.groupby("facility_id")["_total"].transform("any")]
    per = rows.groupby("facility_id").agg(
        kg=("_kg", "sum"), year=("_year", "first"), total=("_total", "first"), pollutant=("Pollutant", "first"))
    per = per[per["kg"] > 0]
    if per.empty:
        return _empty_flows()
    year = per["year"].astype(int).astype(str)
    fossil_only = " (the register's figure excluding biomass; no total reported that year)"
    what = pd.Series(np.where(per["total"], " (fossil and biogenic)", fossil_only), index=per.index)
    return pd.DataFrame({
        "facility_id": per.index,
        "direction": "supply",
        "resource": "gas.co2",
        "quantity": (per["kg"] / 1000.0).round(3).to_numpy(),  # t/yr to the kilogram: small releases stay above 0
        "unit": "t/yr",
        "ewc": "",
        "description": ("CO2 released to air in " + year + what + ", a possible source for capture and use"
                        ).to_numpy(),
        "max_distance_km": np.nan,
        "confidential": False,
        "origin": ("E-PRTR air releases " + year + ": " + per["pollutant"]).to_numpy(),
        "evidence": "published",
    })


def _eea_waste(rows: pd.DataFrame, ids: pd.Series, facilities: pd.DataFrame, report: ImportReport) -> pd.DataFrame:
    """Non-hazardous waste sent off site for recovery, split into the resources typical of the activity."""
    rows = rows[rows["FacilityInspireId"].isin(ids.index)]
    treatment = rows["wasteTreatment"].str.upper()
    wanted = (rows["wasteClassification"].str.upper() == "NONHW") & treatment.isin({"R", "RECOVERY"})
    rows = rows[wanted].copy()
    rows["_t"] = to_numbers(rows["wasteTransfers"])
    bad = ~(rows["_t"] >= 0)
    add_problems(report, rows.loc[bad, "_file"], rows.loc[bad, "_row"], "wasteTransfers",
                 rows.loc[bad, "wasteTransfers"], "have no usable quantity", "skipped")
    rows = rows[~bad].copy()
    rows["facility_id"] = rows["FacilityInspireId"].map(ids)
    rows = _latest_year(rows)
    total = rows.groupby("facility_id").agg(t=("_t", "sum"), year=("_year", "first"), n=("_t", "size"))
    total["year"] = total["year"].astype(int).astype(str)
    return _split_waste(total, facilities, report)


# --- flows --------------------------------------------------------------------------


def _empty_flows() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in (
        "facility_id", "direction", "resource", "quantity", "unit", "ewc", "description",
        "max_distance_km", "confidential", "origin", "evidence")})


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
    add_problems(report, file, rows.loc[stranger, "_row"], "Facility_INSPIRE_ID",
                 rows.loc[stranger, "Facility_INSPIRE_ID"], "name a facility the facilities file does not hold",
                 "skipped")
    left_out = int((~known & ~stranger).sum())
    if left_out:
        report.notes.append(f"{left_out} {what} row(s) belong to facilities not imported (filtered out or skipped)")
    rows = rows[known].copy()
    rows["facility_id"] = rows["Facility_INSPIRE_ID"].map(ids)
    rows["_year"] = to_numbers(rows["reportingYear"])
    return rows


def _latest_year(rows: pd.DataFrame) -> pd.DataFrame:
    latest = rows.groupby("facility_id")["_year"].transform("max")
    return rows[rows["_year"] == latest]


def _waste_supply(rows: pd.DataFrame, file: str, facilities: pd.DataFrame, register_ids: set[str],
                  report: ImportReport) -> pd.DataFrame:
    rows = _linked(rows, file, facilities, register_ids, report, "waste-transfer")
    wanted = (rows["wasteClassificationCode"].str.upper() == "NONHW") & (rows["wasteTreatmentCode"].str.upper() == "R")
    rows = rows[wanted].copy()
    rows["_t"] = to_numbers(rows["totalWasteQuantityTNE"])
    bad = ~(rows["_t"] >= 0)
    add_problems(report, file, rows.loc[bad, "_row"], "totalWasteQuantityTNE",
                 rows.loc[bad, "totalWasteQuantityTNE"], "have no usable quantity", "skipped")
    rows = _latest_year(rows[~bad & rows["_year"].notna()])
    total = rows.groupby("facility_id").agg(t=("_t", "sum"), year=("reportingYear", "first"), n=("_t", "size"))
    return _split_waste(total, facilities, report)


def _split_waste(total: pd.DataFrame, facilities: pd.DataFrame, report: ImportReport) -> pd.DataFrame:
    """Supplies from each facility's recovered tonnes (``t``, ``year``, ``n`` records, by facility id)."""
    total = total[total["t"] > 0].copy()
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
    if parts.empty:
        return _empty_flows()
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
        "evidence": "typical",  # the tonnes are the register's, their split over resources an assumption
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
    rows["_kg"] = to_numbers(rows["totalPollutantQuantityKg"])
    bad = ~(rows["_kg"] >= 0)
    add_problems(report, file, rows.loc[bad, "_row"], "totalPollutantQuantityKg",
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
        "evidence": "published",
    })
