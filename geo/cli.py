"""The command line: ``python -m geo validate``, ``match``, ``network build``, ``import-eprtr`` and ``import-hotmaps``.

Exit codes: 0 success, 1 invalid input (every problem printed), 2 unusable
arguments (missing file, unknown format). Errors are one line on stderr,
never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from geo import settings
from geo.allocation import totals_text
from geo.dataset import load_dataset
from geo.errors import GeoError, InputError, NetworkError
from geo.export import CSV_STYLES, check_output_path, write_links
from geo.i18n import DEFAULT, languages
from geo.network import BUILD_STAGES, RoadNetwork, network_area, network_source, road_network, save_network
from geo.pipeline import MATCH_STAGES, MatchResult, ProgressCallback, match, method_notes
from geo.schema import Dataset
from geo.taxonomy import load_taxonomy

if TYPE_CHECKING:
    from tqdm import tqdm

    from geo.eprtr import RegisterImport

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except GeoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID


def _positive_float(text: str) -> float:
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be above 0")
    return value


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number above 0")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m geo",
        description="Find industrial symbiosis links between facilities.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser("validate", help="check facilities and flows files and list every problem")
    check.add_argument("facilities", type=Path, help="facilities file (CSV, XLSX, GeoJSON or GeoPackage)")
    check.add_argument("flows", type=Path, nargs="?", help="flows file, unless the facilities file holds them")
    check.set_defaults(run=_validate)

    find = commands.add_parser("match", help="rank the possible links and write them to a file")
    find.add_argument("--facilities", type=Path, required=True, help="facilities file")
    find.add_argument("--flows", type=Path, help="flows file, unless the facilities file holds them")
    find.add_argument("--infer", action="store_true", help="infer typical flows from NACE codes for facilities that declare none")
    find.add_argument("--max-km", type=_positive_float, help="replace every resource's default maximum distance (km)")
    find.add_argument("--top", type=_positive_int, help="keep only the best N links")
    find.add_argument("--no-allocation", action="store_true",
                      help="skip the regional allocation (each supply and demand counted once); faster on very large runs")
    find.add_argument("--skip-invalid", action="store_true", help="leave out invalid rows (each is named) instead of stopping")
    find.add_argument("--labels", action="store_true",
                      help="CSV and Excel for reading: column labels, resource names and rounded numbers "
                           "(by default codes and snake_case columns, for scripts)")
    find.add_argument("--csv-style", choices=sorted(CSV_STYLES), default="plain",
                      help="CSV separators: plain (comma, decimal point; the default) or nordic "
                           "(semicolon, decimal comma, with a BOM, as Finnish and Swedish Excel open it)")
    find.add_argument("--lang", choices=languages(), default=DEFAULT,
                      help="language of what is written for reading: the --labels column headers, resource names "
                           "and the Excel method sheet, the GeoPackage's aliases, the HTML map (default: en)")
    find.add_argument("--out", type=Path, required=True, help="output file: .csv, .xlsx, .geojson or .gpkg")
    find.add_argument("--network", type=Path,
                      help="road network for road distances: .osm.pbf, .osm, .osm.bz2, .graphml, or a built .npz")
    find.add_argument("--download-network", action="store_true",
                      help="download the roads around the facilities from OpenStreetMap (Overpass) when no file is given")
    find.add_argument("--no-cache", action="store_true", help="neither read nor write the road-graph cache")
    find.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                      help="a progress bar on stderr (by default shown only when stderr is a terminal)")
    find.set_defaults(run=_match)

    roads = commands.add_parser("network", help="road networks").add_subparsers(dest="action", required=True)
    build = roads.add_parser("build", help="build a drivable road graph once and cache it")
    where = build.add_mutually_exclusive_group(required=True)
    where.add_argument("--source", type=Path, help="OSM file: .osm.pbf, .osm, .osm.bz2 or .graphml")
    where.add_argument("--bbox", type=_bbox, help="download this area from Overpass: west,south,east,north (degrees)")
    build.add_argument("--out", type=Path, required=True, help="built graph to write (.npz), for 'match --network'")
    build.set_defaults(run=_network_build)

    register = commands.add_parser(
        "import-eprtr", help="turn E-PRTR files (the EEA's user-friendly CSVs or the register's tables) into a GeoPackage",
        description="Each file is recognised from its header: the EEA's user-friendly F1_4 (air releases), F2_4 "
                    "(water releases) and F4_2 (waste transfers) files of any country, or the register's "
                    "facilities table with its waste-transfer and release tables.")
    register.add_argument("files", type=Path, nargs="+",
                          help="E-PRTR files: F1_4/F2_4/F4_2 CSVs, or the facilities table (then its other tables)")
    register.add_argument("--waste-transfers", type=Path,
                          help="the register's waste-transfer table: recovered non-hazardous waste becomes supply")
    register.add_argument("--releases", type=Path, help="the register's release table: CO2 to air becomes gas.co2 supply")
    register.add_argument("--country", type=_country, help="keep one country (ISO code, e.g. SE)")
    register.add_argument("--bbox", type=_bbox, help="keep this area: west,south,east,north (degrees)")
    register.add_argument("--out", type=Path, required=True, help="GeoPackage to write (layers facilities and flows)")
    register.set_defaults(run=_import_eprtr)

    hotmaps = commands.add_parser(
        "import-hotmaps", help="turn the Hotmaps industrial database into a GeoPackage (excess heat and CO2 as supply)")
    hotmaps.add_argument("file", type=Path, help="Hotmaps Industrial_Database.csv (semicolon-separated)")
    hotmaps.add_argument("--country", type=_country, help="keep one country (ISO code, e.g. SE)")
    hotmaps.add_argument("--bbox", type=_bbox, help="keep this area: west,south,east,north (degrees)")
    hotmaps.add_argument("--out", type=Path, required=True, help="GeoPackage to write (layers facilities and flows)")
    hotmaps.set_defaults(run=_import_hotmaps)
    return parser


def _country(text: str) -> str:
    if len(text) != 2 or not text.isalpha():
        raise argparse.ArgumentTypeError(f"{text!r} is not a two-letter country code")
    return text.upper()


def _bbox(text: str) -> tuple[float, float, float, float]:
    parts = text.split(",")
    try:
        west, south, east, north = (float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not west,south,east,north in degrees") from None
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise argparse.ArgumentTypeError(f"{text!r}: need west < east and south < north, in degrees")
    return west, south, east, north


def _network_build(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from geo.routing import hierarchy

    if args.out.suffix.lower() != ".npz":
        raise InputError(f"{args.out}: a built road graph is written as .npz")
    if args.out.is_dir():
        raise InputError(f"{args.out}: is a folder; give a file name ending in .npz")
    if args.source is not None:
        _check_network_file(args.source)
    stages = (*BUILD_STAGES, "hierarchy (length)", "hierarchy (time)")
    with tqdm(total=len(stages), desc="road network", unit="stage", file=sys.stderr) as bar:
        def on_stage(name: str) -> None:
            bar.set_postfix_str(name)
            bar.update(stages.index(name) + 1 - bar.n)

        network = road_network(source=args.source, bbox=args.bbox, download=args.bbox is not None, on_stage=on_stage)
        # contraction hierarchies make large many-to-many jobs fast; saved with the graph
        for weight in ("length", "time"):
            on_stage(f"hierarchy ({weight})")
            hierarchy(network, weight)
        bar.update(len(stages) - bar.n)
    save_network(network, args.out)
    print(network.summary(), file=sys.stderr)
    print(f"wrote {args.out}")
    return EXIT_OK


def _import_eprtr(args: argparse.Namespace) -> int:
    from geo.eprtr import check_output_path, import_eprtr

    check_output_path(args.out)
    result = import_eprtr(args.files, waste_transfers=args.waste_transfers, releases=args.releases,
                          country=args.country, bbox=args.bbox)
    return _write_import(result, ", ".join(str(f) for f in args.files), args.out)


def _import_hotmaps(args: argparse.Namespace) -> int:
    from geo.eprtr import check_output_path
    from geo.hotmaps import import_hotmaps

    check_output_path(args.out)
    result = import_hotmaps(args.file, country=args.country, bbox=args.bbox)
    return _write_import(result, str(args.file), args.out)


def _write_import(result: RegisterImport, what: str, out: Path) -> int:
    """Print what an import read and found, then write its GeoPackage (an empty result is an error)."""
    from geo.eprtr import write_geopackage

    report = result.report
    for file, n in report.rows_read.items():
        print(f"read {n} rows from {file} ({report.layouts[file]})", file=sys.stderr)
    for line in report.notes + report.summary():
        print(f"note: {line}", file=sys.stderr)
    if not len(result.facilities):
        raise InputError(f"{what}: no facility left to write (check --country and --bbox)")
    write_geopackage(result, out)
    flows = result.flows
    kinds = flows["resource"].value_counts()
    detail = ", ".join(f"{n} {r}" for r, n in kinds.items()) or "none"
    print(f"wrote {len(result.facilities)} facilities and {len(flows)} flows ({detail}) to {out}")
    totals = flows.groupby(["resource", "unit"])["quantity"].sum()
    if len(totals):
        print("supply in all: " + ", ".join(f"{r} {q:,.0f} {u}" for (r, u), q in totals.items()), file=sys.stderr)
    return EXIT_OK


def _load_network(args: argparse.Namespace, data: Dataset) -> RoadNetwork | None:
    """The road network of a match, or None (with a notice) when there is none to use."""
    if args.network is not None:
        _check_network_file(args.network)
        print(f"reading road network {args.network} ...", file=sys.stderr)
        try:
            network = road_network(source=args.network, use_cache=not args.no_cache)
        except NetworkError as exc:  # the file named is unusable: an argument error (exit 2), as a missing one is
            raise InputError(str(exc)) from exc
        print(network.summary(), file=sys.stderr)
        return network
    geometry = data.facilities.geometry
    area = network_area(geometry.x.to_numpy(), geometry.y.to_numpy())
    try:
        network = road_network(bbox=area, download=args.download_network, use_cache=not args.no_cache)
    except NetworkError as exc:
        print(f"notice: {exc}; road distances are estimated as straight-line "
              f"distance x {settings.ROAD_CIRCUITY_FACTOR} (distance_source=estimate). "
              "Give --network FILE (or --download-network when online) for road distances.", file=sys.stderr)
        return None
    print(network.summary(), file=sys.stderr)
    return network


def _check_network_file(path: Path) -> None:
    """Refuse a road-network file of an unknown type (by its name, before it is read) or a missing one: exit 2.

    The command line reads any file its user may: no folder confines it, as on the app's Data page.
    """
    try:
        network_source(path)
    except NetworkError as exc:
        raise InputError(str(exc)) from exc


def _validate(args: argparse.Namespace) -> int:
    data = load_dataset(args.facilities, args.flows)
    for problem in data.report.problems:
        print(problem.format())
    errors, warnings = len(data.report.errors), len(data.report.warnings)
    summary = (
        f"{len(data.facilities)} valid facilities, {len(data.flows)} valid flows; "
        f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
    )
    print(summary)
    return EXIT_OK if data.report.ok else EXIT_INVALID


def _match(args: argparse.Namespace) -> int:
    out = check_output_path(args.out)
    taxonomy = load_taxonomy()
    data = load_dataset(args.facilities, args.flows, taxonomy=taxonomy)
    for problem in data.report.warnings:
        print(problem.format(), file=sys.stderr)
    if not data.report.ok:
        if not args.skip_invalid:
            for problem in data.report.errors:
                print(problem.format(), file=sys.stderr)
            n = len(data.report.errors)
            print(f"error: {n} problem{'s' * (n != 1)} in the input; fix them or use --skip-invalid", file=sys.stderr)
            return EXIT_INVALID
        _print_skipped(data)
    if data.facilities.empty:
        print("error: no valid facilities to match", file=sys.stderr)
        return EXIT_INVALID
    network = _load_network(args, data)
    with _match_progress(args.progress) as on_progress:
        result = match(data, taxonomy=taxonomy, infer=args.infer, max_km=args.max_km, top=args.top, network=network,
                       allocation=not args.no_allocation, on_progress=on_progress)
    _print_summary(result, args)
    method = method_notes(facilities=Path(args.facilities).name, flows=Path(args.flows).name if args.flows else "",
                          infer=args.infer, max_km=args.max_km, network=network)
    involved = _involved_facilities(data, result)
    if out.suffix.lower() == ".html":
        _write_html_map(involved, result, out, method, lang=args.lang)
    else:
        write_links(result.links, out, method=method, facilities=involved, labels=args.labels,
                    csv_style=args.csv_style, lang=args.lang)
    print(f"wrote {len(result.links)} links to {out}")
    return EXIT_OK


@contextmanager
def _match_progress(wanted: bool | None) -> Iterator[ProgressCallback | None]:
    """The progress callback of a match: a tqdm bar on stderr, or None when there is to be no bar.

    ``wanted`` is ``--progress`` (True), ``--no-progress`` (False) or neither
    (None: a bar only when stderr is a terminal, so a log file or a pipe gets
    none). stdout never gets the bar: it carries the result line only.
    """
    if not (sys.stderr.isatty() if wanted is None else wanted):
        yield None
        return
    from tqdm import tqdm

    with tqdm(total=1, desc="match", unit="step", file=sys.stderr, dynamic_ncols=True) as bar:
        yield _StageBar(bar)


class _StageBar:
    """Shows the stages of :func:`geo.pipeline.match` on one tqdm bar, reset at each new stage.

    The candidate search counts supply flows; the other stages count one step.
    """

    def __init__(self, bar: tqdm) -> None:
        self.bar, self.stage = bar, ""

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage:
            self.stage = stage
            number = MATCH_STAGES.index(stage) + 1 if stage in MATCH_STAGES else 0
            self.bar.unit = "supply flows" if stage == "candidates" else "step"
            self.bar.set_description(f"match {number}/{len(MATCH_STAGES)}: {stage}", refresh=False)
            self.bar.reset(total=max(total, 1))
        self.bar.update(max(done - self.bar.n, 0))


def _print_skipped(data: Dataset) -> None:
    for record in data.skipped.itertuples(index=False):
        who = f" (facility {record.facility_id})" if record.facility_id else ""
        print(f"skipped: {record.file}, row {record.row}{who}: {record.reason}", file=sys.stderr)
    print(f"skipped {len(data.skipped)} invalid rows", file=sys.stderr)


def _print_summary(result: MatchResult, args: argparse.Namespace) -> None:
    s = result.stats
    if args.infer:
        print(f"inferred {result.inferred} flows from sector profiles", file=sys.stderr)
        for r in result.not_inferred.itertuples(index=False):
            print(f"note: facility {r.facility_id} has no flows and none could be inferred: {r.reason}", file=sys.stderr)
    elif result.without_flows:
        n = len(result.without_flows)
        print(f"note: {n} facilit{'ies' if n != 1 else 'y'} without flows "
              f"({', '.join(result.without_flows[:5])}{', ...' if n > 5 else ''}); use --infer to infer them from NACE codes",
              file=sys.stderr)
    print(
        f"{s.supplies} supplies x {s.demands} demands: {s.within_buffer} compatible pairs within the straight-line buffer, "
        f"{s.beyond_max_road_distance} dropped beyond the maximum road distance, "
        f"{result.total_links} links",
        file=sys.stderr,
    )
    for note in result.notes:  # how the run was cut down: links left out, an allocation skipped for size
        print(f"note: {note}", file=sys.stderr)
    if result.totals.empty and args.no_allocation:
        print("no regional allocation (--no-allocation): competing links may count one supply or demand twice",
              file=sys.stderr)
    for status, row in result.totals.iterrows():
        print(f"allocated once over the region, {status} links: {totals_text(row)}", file=sys.stderr)
    if s.by_road:
        print(f"{s.by_road} pairs measured on the road network, {s.estimated} estimated "
              "(an end outside the network's area)", file=sys.stderr)
    if s.unroutable:
        print(f"{s.unroutable} pairs could not be routed and are left out:", file=sys.stderr)
        ends = pd.concat([
            s.unroutable_pairs.loc[s.unroutable_pairs["reason"].str.startswith("supplier"), ["supply_facility_id", "reason"]]
            .set_axis(["facility_id", "reason"], axis=1),
            s.unroutable_pairs.loc[s.unroutable_pairs["reason"].str.startswith("receiver"), ["demand_facility_id", "reason"]]
            .set_axis(["facility_id", "reason"], axis=1),
        ])
        for r in ends.drop_duplicates().itertuples(index=False):
            print(f"unroutable: facility {r.facility_id}: {r.reason}", file=sys.stderr)


def _involved_facilities(data: Dataset, result: MatchResult) -> pd.DataFrame:
    """The facilities the links join, with their role, for the map, the Excel sheet and the GeoPackage layer."""
    from geo.dataset import facility_roles

    facilities = pd.DataFrame(data.facilities.drop(columns="geometry"))
    facilities["role"] = facility_roles(facilities, result.flows)
    involved = set(result.links["supply_facility_id"]) | set(result.links["demand_facility_id"])
    return facilities[facilities["facility_id"].isin(involved)].reset_index(drop=True)


def _write_html_map(facilities: pd.DataFrame, result: MatchResult, out: Path, method: dict[str, str], *,
                    lang: str = DEFAULT) -> None:
    """The standalone offline map of the links; the map front end (layers/) draws it, so it is imported here only."""
    from layers.html import write_standalone_map  # the CLI is a front end too: it may wire layers, geo/ never does

    try:
        write_standalone_map(facilities, result.links, out, method=method, lang=lang)
    except FileNotFoundError as exc:
        raise InputError(f"{out}: {exc}") from exc
