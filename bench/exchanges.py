"""Benchmark: do links inferred from sectors alone recover exchanges that really run? (issue 13)

Each park of the documented exchanges (the development parks of
``../shared/data/known_exchanges/dev_exchanges.csv`` and the held-out parks of
``bench/heldout_exchanges.csv``) becomes a small dataset: one facility per
named party, with its NACE code and nothing else, placed within
:data:`PARK_RADIUS_KM` of a fixed point in the Baltic Sea Region, among
:data:`DISTRACTORS`, the same ordinary firms of a region for every park (the
kinds the issue names: shops, offices, a hospital, a school, a hotel, a
warehouse, a bakery, a sawmill, a dairy, a data centre, a greenhouse, a
wastewater plant and the like). The normal ``match --infer`` ranks the links, and a real exchange counts as found
when a link runs from its supplier's facility to its receiver's facility and
supplies one of the exchange's resource codes (``bench/exchange_resources.csv``;
a group code such as ``heat`` admits every resource under it).

Reported per park, per set (development, held-out) and pooled: E, the number
of real exchanges; hits among the first 2E+5 links (recall); exchanges found
at any rank (coverage); and the rank of each exchange. Exchanges no resource
code fits, or whose supplier or receiver has no known sector, stay in E and
count as misses. Precedents are scored leave-one-park-out: when a park is
measured, the engine gets the documented exchanges of every other park only.

Two variants are reported beside it, pooled: the same parks among
:data:`INDUSTRIAL_DISTRACTORS` as well (a second power station, a cement
works and a biogas plant, whose own links are real opportunities that compete
with the documented ones), and the engine with every documented exchange as
it ships (``data/knowledge/precedents.csv``), which for the development parks
means it has seen their own exchanges.

The same run matches the Finnish E-PRTR register (facilities, waste transfers
and releases of ``../shared/data/eprtr_fi``) the way ``import-eprtr`` then
``match --infer`` does, prints its top links with a flag on each implausible
pattern it can detect, and the spread of the scores.

``python -m bench.exchanges --write-precedents`` writes
``data/knowledge/precedents.csv``: one row per documented exchange and resource
code, from the same two files.

Run: ``make bench`` (or ``python -m bench.exchanges``). Prints Markdown. Needs
``../shared/data`` beside the repository for the development parks and the
E-PRTR part; without it only the held-out parks are measured.
"""

from __future__ import annotations

import argparse
import inspect
import math
import sys
import tempfile
import time
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from geo.schema import Dataset
    from geo.taxonomy import Taxonomy

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
DEV_FILE = SHARED_DATA / "known_exchanges" / "dev_exchanges.csv"
HELDOUT_FILE = HERE / "heldout_exchanges.csv"
RESOURCE_FILE = HERE / "exchange_resources.csv"
PRECEDENTS_FILE = ROOT / "data" / "knowledge" / "precedents.csv"
EPRTR_DIR = SHARED_DATA / "eprtr_fi"

#: Where every park is placed (WGS84 degrees): near Norrköping, Sweden.
CENTRE_LON, CENTRE_LAT = 16.0, 58.6

#: Radius (km) of the disc that holds a park's parties and the distractors.
PARK_RADIUS_KM = 3.0

#: Columns of ``data/knowledge/precedents.csv``.
PRECEDENT_COLUMNS = ["park", "country", "supplier_nace", "receiver_nace", "resource", "exchange", "source"]

#: Ordinary firms of a region, placed among every park's parties (name, NACE Rev. 2).
DISTRACTORS = (
    ("Supermarket", "47.11"),
    ("Head office", "70.10"),
    ("Accounting office", "69.20"),
    ("Hospital", "86.10"),
    ("Upper secondary school", "85.31"),
    ("Hotel", "55.10"),
    ("Restaurant", "56.10"),
    ("Warehouse", "52.10"),
    ("Bakery", "10.71"),
    ("Sawmill", "16.10"),
    ("Dairy", "10.51"),
    ("Data centre", "63.11"),
    ("Greenhouse", "01.13"),
    ("Arable farm", "01.11"),
    ("Municipal wastewater treatment plant", "37.00"),
    ("District heating plant", "35.30"),
    ("Waste collection company", "38.11"),
    ("Metal structures workshop", "25.11"),
    ("Printing house", "18.12"),
    ("Building contractor", "41.20"),
    ("Car repair shop", "45.20"),
    ("Plastics packaging maker", "22.22"),
    ("Furniture maker", "31.09"),
    ("Industrial laundry", "96.01"),
)

#: Large industrial plants added to the distractors in the stress variant of the benchmark.
INDUSTRIAL_DISTRACTORS = (
    ("Second power plant", "35.11"),
    ("Cement plant", "23.51"),
    ("Biogas plant", "35.21"),
)

#: Words that make a party with a blank NACE code a municipality (its utility class is then used).
_MUNICIPAL_WORDS = ("municipal", "municipality", "city", "kommun", "council")

#: Resources that are fuels, for the E-PRTR flags.
_FUEL_CODES = frozenset({"material.refuse_derived_fuel", "gas.fuel_gas", "gas.biogas", "gas.natural_gas"})
_FUEL_GROUPS = frozenset({"biomass"})

#: Words in a facility name that mark a landfill or a foundry (Finnish, Swedish, English).
_LANDFILL_WORDS = ("kaatopaikka", "landfill", "deponi", "ämmässuo")
_FOUNDRY_WORDS = ("valimo", "foundry", "gjuteri")

#: Words in a facility name that mark a gas-fired or reserve power plant, which burns no solid fuel.
_GAS_PLANT_WORDS = ("maakaasu", "varavoima", "kaasuturbiini", "naturgas", "natural gas", "reserve power")

#: Legal forms and other words left out when comparing name stems.
_NAME_FILLERS = frozenset({"oy", "oyj", "ab", "ltd", "as", "a/s", "abp", "ky", "the", "kommun", "kaupunki"})

#: Within this distance (km) two facilities are flagged as one site in the E-PRTR table.
SAME_SITE_FLAG_KM = 0.5

#: Targets of issue 13.
TARGET_RECALL, TARGET_COVERAGE, TARGET_CLASSIC = 0.60, 0.90, 7


# --- documented exchanges ------------------------------------------------------------


def resource_codes(path: str | Path = RESOURCE_FILE) -> dict[str, tuple[str, ...]]:
    """The resource codes that count as each documented exchange's resource text.

    Parameters
    ----------
    path : str or Path
        CSV with columns ``resource`` (the text as documented), ``codes``
        (space-separated taxonomy codes; empty when out of scope) and ``note``.

    Returns
    -------
    dict
        Codes (possibly none) by resource text.
    """
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    return {text: tuple(codes.split()) for text, codes in zip(table["resource"], table["codes"], strict=True)}


def load_exchanges(
    *,
    dev: str | Path | None = DEV_FILE,
    heldout: str | Path | None = HELDOUT_FILE,
    codes: dict[str, tuple[str, ...]] | None = None,
) -> pd.DataFrame:
    """Read the documented exchanges, with each party's facility key and NACE code.

    NACE codes become ``35.11`` form. A party given several codes
    (``2410/1920/2015``) takes the first. A blank or ``ND`` code stays empty,
    except for a municipality, which takes the class of the utility the
    exchange's resource needs (:func:`utility_class`). A party is one facility
    however many rows name it, so a company in two roles is one facility;
    unnamed parties (``ND ...``) are one facility per sector; a row whose
    supplier and receiver carry the same name (two unnamed plants of one
    sector) gets a second facility for its receiver.

    Parameters
    ----------
    dev, heldout : str or Path, optional
        Exchange files (columns of ``dev_exchanges.csv``); a missing file or
        None is skipped. The held-out file may add ``classic`` (``yes`` for
        Kalundborg's classic nine) and ``note``.
    codes : dict, optional
        From :func:`resource_codes`; read from :data:`RESOURCE_FILE` by default.

    Returns
    -------
    DataFrame
        One row per exchange: ``exchange_id``, ``set`` (``dev`` or
        ``held-out``), ``park``, ``country``, ``supplier``, ``receiver``,
        ``supplier_key``, ``receiver_key``, ``supplier_nace``,
        ``receiver_nace``, ``resource`` (text), ``codes`` (tuple), ``source``,
        ``classic`` (bool).
    """
    codes = codes if codes is not None else resource_codes()
    frames = []
    for label, path in (("dev", dev), ("held-out", heldout)):
        if path is not None and Path(path).is_file():
            frames.append(pd.read_csv(path, dtype=str, keep_default_na=False).assign(set=label))
    if not frames:
        msg = "no exchange file found"
        raise FileNotFoundError(msg)
    table = pd.concat(frames, ignore_index=True)
    table["classic"] = table.get("classic", pd.Series("", index=table.index)).fillna("").str.lower().eq("yes")
    unknown = sorted(set(table["resource"]) - set(codes))
    if unknown:
        msg = f"{len(unknown)} resource text(s) missing from {RESOURCE_FILE.name}: {unknown[:5]}"
        raise KeyError(msg)
    table["codes"] = table["resource"].map(codes)
    table["supplier_nace"] = [_party_nace(n, c, k, "supplier")
                              for n, c, k in zip(table["supplier"], table["supplier_nace"], table["codes"], strict=True)]
    table["receiver_nace"] = [_party_nace(n, c, k, "receiver")
                              for n, c, k in zip(table["receiver"], table["receiver_nace"], table["codes"], strict=True)]
    table["supplier_key"] = _party_key(table["supplier"], table["supplier_nace"])
    receiver_key = _party_key(table["receiver"], table["receiver_nace"])
    table["receiver_key"] = receiver_key.where(receiver_key != table["supplier_key"], receiver_key + " (second site)")
    table["exchange_id"] = [f"X{i:03d}" for i in range(1, len(table) + 1)]
    columns = ["exchange_id", "set", "park", "country", "supplier", "receiver", "supplier_key", "receiver_key",
               "supplier_nace", "receiver_nace", "resource", "codes", "source", "classic"]
    return table[columns]


def utility_class(codes: tuple[str, ...], *, role: str) -> str:
    """The NACE class of the municipal utility that supplies or takes these resources.

    District heating (35.30) for heat, wastewater (37.00) for wastewater and
    sludge a municipality gives, water supply (36.00) for other water, waste
    collection (38.11) for organic and material waste; empty otherwise.
    """
    groups = {c.split(".")[0] for c in codes}
    if "heat" in groups:
        return "35.30"
    if role == "supplier" and set(codes) & {"water.treated_wastewater", "organic.sludge"}:
        return "37.00"
    if "water" in groups:
        return "36.00"
    if groups & {"organic", "material", "biomass"}:
        return "38.11"
    return ""


def _party_nace(name: str, raw: str, codes: tuple[str, ...], role: str) -> str:
    from geo.schema import normalise_nace

    first = raw.replace(" ", "").split("/")[0]
    if first.upper() in ("", "ND"):
        municipal = any(w in name.casefold() for w in _MUNICIPAL_WORDS)
        return utility_class(codes, role=role) if municipal else ""
    return normalise_nace(first) or ""


def _party_key(names: pd.Series, nace: pd.Series) -> pd.Series:
    """A party's facility key: its name, or one unnamed party per sector for ``ND`` names."""
    unnamed = names.str.strip().str.upper().str.startswith("ND")
    label = "Unnamed party, NACE " + nace.where(nace != "", "unknown")
    return names.str.strip().where(~unnamed, label)


def precedent_rows(exchanges: pd.DataFrame) -> pd.DataFrame:
    """Documented exchanges as precedents: one row per exchange and resource code.

    Exchanges without a resource code, or with a party of unknown sector, are
    left out.

    Returns
    -------
    DataFrame
        :data:`PRECEDENT_COLUMNS`, NACE codes in ``35.11`` form, ``source`` as
        the exchange file gives it.
    """
    known = exchanges[(exchanges["supplier_nace"] != "") & (exchanges["receiver_nace"] != "")]
    rows = known.explode("codes").dropna(subset=["codes"])
    return pd.DataFrame({
        "park": rows["park"],
        "country": rows["country"],
        "supplier_nace": rows["supplier_nace"],
        "receiver_nace": rows["receiver_nace"],
        "resource": rows["codes"],
        "exchange": rows["supplier"] + " -> " + rows["receiver"] + ": " + rows["resource"],
        "source": rows["source"],
    }).reset_index(drop=True)


def write_precedents(precedents: pd.DataFrame, path: str | Path = PRECEDENTS_FILE) -> Path:
    """Write the precedents CSV atomically (a temporary file, then a rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    precedents.to_csv(tmp, index=False, lineterminator="\n")
    tmp.replace(path)
    return path


# --- judging -------------------------------------------------------------------------


def code_matches(resource: pd.Series, code: pd.Series) -> np.ndarray:
    """Whether each supplied resource is the code, or lies under it when the code is a group.

    ``heat.steam`` matches ``heat.steam`` and ``heat``, not ``heat.hot_water``.
    """
    resource, code = resource.astype(str), code.astype(str)
    under_group = ~code.str.contains(".", regex=False) & (resource.str.split(".").str[0] == code)
    return ((resource == code) | under_group).to_numpy()


def exchange_ranks(exchanges: pd.DataFrame, links: pd.DataFrame) -> pd.Series:
    """The best rank at which the links recover each exchange (NaN when none does).

    A link recovers an exchange when it runs from the exchange's supplier
    facility to its receiver facility (direction matters) and its supplied
    ``resource`` matches one of the exchange's codes (:func:`code_matches`).

    Parameters
    ----------
    exchanges : DataFrame
        ``supply_facility_id``, ``demand_facility_id`` and ``codes`` (tuple of
        resource codes; empty when out of scope).
    links : DataFrame
        ``rank``, ``supply_facility_id``, ``demand_facility_id``, ``resource``.

    Returns
    -------
    Series
        Index-aligned with ``exchanges``, named ``rank`` (float).
    """
    wanted = (exchanges[["supply_facility_id", "demand_facility_id", "codes"]]
              .rename_axis("_exchange").reset_index().explode("codes").dropna(subset=["codes"]))
    pairs = wanted.merge(links[["rank", "supply_facility_id", "demand_facility_id", "resource"]],
                         on=["supply_facility_id", "demand_facility_id"], how="inner")
    hits = pairs[code_matches(pairs["resource"], pairs["codes"])]
    best = hits.groupby("_exchange")["rank"].min()
    return best.reindex(exchanges.index).astype(float).rename("rank")


# --- one park ------------------------------------------------------------------------


def park_facilities(
    exchanges: pd.DataFrame, distractors: tuple[tuple[str, str], ...] = DISTRACTORS
) -> pd.DataFrame:
    """The facilities of one park: its parties, then the ``distractors`` (name, NACE), placed deterministically.

    Positions follow a sunflower spiral over a disc of :data:`PARK_RADIUS_KM`
    around (:data:`CENTRE_LON`, :data:`CENTRE_LAT`), so neighbours stay about
    ``radius * sqrt(pi / n)`` apart; a fixed shuffle mixes parties and
    distractors over the disc.

    Returns
    -------
    DataFrame
        ``facility_id``, ``name``, ``lat``, ``lon`` (WGS84 degrees), ``nace``,
        ``role`` (``party`` or ``distractor``) and ``key`` (the party key).
    """
    keys = pd.concat([
        exchanges[["supplier_key", "supplier_nace"]].set_axis(["key", "nace"], axis=1),
        exchanges[["receiver_key", "receiver_nace"]].set_axis(["key", "nace"], axis=1),
    ], ignore_index=True)
    keys = keys.sort_values("nace", ascending=False, kind="stable").drop_duplicates("key")  # a known code wins
    keys = keys.set_index("key").loc[pd.unique(pd.concat([exchanges["supplier_key"], exchanges["receiver_key"]]))]
    parties = pd.DataFrame({"name": keys.index, "nace": keys["nace"].to_numpy(), "role": "party", "key": keys.index})
    extras = pd.DataFrame({"name": [f"{n} (distractor)" for n, _ in distractors],
                           "nace": [c for _, c in distractors], "role": "distractor", "key": ""})
    table = pd.concat([parties, extras], ignore_index=True)
    table.insert(0, "facility_id", [f"P{i:02d}" if r == "party" else f"D{i:02d}"
                                    for i, r in enumerate(table["role"], start=1)])
    lon, lat = _spiral(len(table))
    order = np.random.default_rng(13).permutation(len(table))
    return table.assign(lon=lon[order], lat=lat[order])


def _spiral(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points evenly over the park disc (Vogel's sunflower spiral), WGS84 degrees."""
    i = np.arange(n)
    r_km = PARK_RADIUS_KM * np.sqrt((i + 0.5) / n)
    theta = i * math.pi * (3.0 - math.sqrt(5.0))
    km_per_deg_lat = 111.32
    km_per_deg_lon = km_per_deg_lat * math.cos(math.radians(CENTRE_LAT))
    return CENTRE_LON + r_km * np.cos(theta) / km_per_deg_lon, CENTRE_LAT + r_km * np.sin(theta) / km_per_deg_lat


def park_dataset(facilities: pd.DataFrame, taxonomy: Taxonomy) -> Dataset:
    """Validate a park's facilities (no flows) into a :class:`geo.schema.Dataset`."""
    from geo.io import RawTable
    from geo.schema import validate

    frame = facilities[["facility_id", "name", "lat", "lon", "nace"]].copy()
    frame["lat"] = frame["lat"].map(lambda v: f"{v:.6f}")
    frame["lon"] = frame["lon"].map(lambda v: f"{v:.6f}")
    raw = RawTable(frame.astype(str), "bench park", np.arange(2, len(frame) + 2))
    return validate(raw, None, taxonomy)


def measure_park(
    park: pd.DataFrame,
    taxonomy: Taxonomy,
    *,
    precedents: pd.DataFrame | None,
    with_precedents: bool,
    distractors: tuple[tuple[str, str], ...] = DISTRACTORS,
) -> tuple[pd.DataFrame, int]:
    """Rank the links of one park and find each of its exchanges among them.

    Parameters
    ----------
    park : DataFrame
        The park's rows of :func:`load_exchanges`.
    taxonomy : Taxonomy
        Knowledge base.
    precedents : DataFrame or None
        Precedents of the other parks (leave-one-park-out).
    with_precedents : bool
        Whether the engine's ``match`` takes ``precedents``.
    distractors : tuple
        (name, NACE) of the firms placed among the parties.

    Returns
    -------
    ranks : DataFrame
        ``park`` rows plus ``supply_facility_id``, ``demand_facility_id`` and
        ``rank`` (NaN when not found).
    links : int
        Number of links the engine ranked.
    """
    from geo.pipeline import match

    facilities = park_facilities(park, distractors)
    data = park_dataset(facilities, taxonomy)
    if not data.report.ok:
        msg = f"{park['park'].iloc[0]}: the bench built an invalid dataset: {data.report.errors[:3]}"
        raise ValueError(msg)
    options = {"precedents": precedents} if with_precedents else {}
    result = match(data, taxonomy=taxonomy, infer=True, **options)
    ids = dict(zip(facilities["key"], facilities["facility_id"], strict=True))
    judged = park.assign(supply_facility_id=park["supplier_key"].map(ids),
                         demand_facility_id=park["receiver_key"].map(ids))
    judged["rank"] = exchange_ranks(judged, result.links)
    return judged, len(result.links)


# --- summaries -----------------------------------------------------------------------


def park_scores(judged: pd.DataFrame) -> pd.DataFrame:
    """Per park: E, the cut-off 2E+5, hits within it, exchanges found at any rank, recall and coverage."""
    grouped = judged.groupby(["set", "park"], sort=False)
    table = grouped.agg(E=("exchange_id", "size"),
                        in_scope=("codes", lambda c: int(sum(len(x) > 0 for x in c))),
                        found=("rank", lambda r: int(r.notna().sum())))
    table["cutoff"] = 2 * table["E"] + 5
    cut = judged.assign(cutoff=2 * grouped["exchange_id"].transform("size") + 5)
    table["hits"] = cut.assign(hit=cut["rank"] <= cut["cutoff"]).groupby(["set", "park"], sort=False)["hit"].sum()
    return _rates(table.reset_index())


def pooled_scores(parks: pd.DataFrame) -> pd.DataFrame:
    """Development, held-out and all parks pooled: sums of E, hits and found, with their rates."""
    rows = []
    for label, part in (("development parks", parks[parks["set"] == "dev"]),
                        ("held-out parks", parks[parks["set"] == "held-out"]), ("all parks", parks)):
        if len(part):
            rows.append({"set": label, "parks": len(part), "E": part["E"].sum(), "in_scope": part["in_scope"].sum(),
                         "hits": part["hits"].sum(), "found": part["found"].sum()})
    return _rates(pd.DataFrame(rows))


def _rates(table: pd.DataFrame) -> pd.DataFrame:
    return table.assign(recall=table["hits"] / table["E"], coverage=table["found"] / table["E"])


# --- E-PRTR Finland ------------------------------------------------------------------


def eprtr_links(folder: Path = EPRTR_DIR, *, with_precedents: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Match the Finnish E-PRTR extract as ``import-eprtr`` then ``match --infer`` would.

    Returns
    -------
    links : DataFrame
        The ranked links.
    facilities : DataFrame
        The facilities matched (with ``eprtr_activity``).
    """
    from geo.dataset import load_dataset
    from geo.eprtr import import_eprtr, write_geopackage
    from geo.pipeline import match

    imported = import_eprtr(folder / "facilities.csv", waste_transfers=folder / "waste_transfers.csv",
                            releases=folder / "releases.csv")
    with tempfile.TemporaryDirectory() as tmp:
        package = Path(tmp) / "eprtr_fi.gpkg"
        write_geopackage(imported, package)
        data = load_dataset(package)
    options = {"precedents": None} if with_precedents else {}
    result = match(data, infer=True, **options)
    return result.links, pd.DataFrame(data.facilities.drop(columns="geometry"))


def eprtr_flags(links: pd.DataFrame, facilities: pd.DataFrame) -> pd.Series:
    """Implausible patterns of each link, as a comma-separated text (empty when none is seen).

    - ``fuel to landfill`` / ``fuel to foundry``: a fuel (biomass, waste
      fuel, fuel gas, biogas, natural gas) to a landfill (E-PRTR 5(d), NACE
      38.21 with a landfill name) or a foundry (E-PRTR 2(d), NACE 24.5, or a
      foundry name);
    - ``waste fuel to digester``: refuse-derived fuel to a biogas plant (35.21);
    - ``solid fuel to gas plant``: biomass or waste fuel to a plant whose name
      says it is gas-fired or a reserve plant;
    - ``confidential party``: an end whose name the register withholds;
    - ``repeated pair``: the same supplier, receiver and resource as a
      better-ranked link (two flows of one facility);
    - ``self-link``: one facility at both ends;
    - ``same operator``: the engine's flag, or the same name stem at both ends;
    - ``same site``: ends within :data:`SAME_SITE_FLAG_KM`.
    """
    info = facilities.set_index("facility_id")
    activity = links["demand_facility_id"].map(info.get("eprtr_activity", pd.Series(dtype=str))).fillna("").astype(str)
    receiver = links["demand_name"].fillna("").astype(str).str.casefold()
    demand_nace = links["demand_nace"].fillna("").astype(str)
    resource = links["resource"].astype(str)
    fuel = resource.isin(_FUEL_CODES) | resource.str.split(".").str[0].isin(_FUEL_GROUPS)
    landfill = activity.str.startswith("5(d)") | receiver.str.contains("|".join(_LANDFILL_WORDS))
    foundry = (activity.str.startswith("2(d)") | demand_nace.str.startswith("24.5")
               | receiver.str.contains("|".join(_FOUNDRY_WORDS)))
    solid = (resource == "material.refuse_derived_fuel") | resource.str.startswith("biomass.")
    stems_equal = _name_stem(links["supply_name"]) == _name_stem(links["demand_name"])
    same_operator = links.get("same_operator", pd.Series(False, index=links.index)).fillna(False).astype(bool)
    flags = {
        "fuel to landfill": fuel & landfill,
        "fuel to foundry": fuel & foundry,
        "waste fuel to digester": (resource == "material.refuse_derived_fuel") & demand_nace.str.startswith("35.21"),
        "solid fuel to gas plant": solid & receiver.str.contains("|".join(_GAS_PLANT_WORDS)),
        "confidential party": (links["supply_name"].astype(str).str.casefold() == "confidential")
        | (receiver == "confidential"),
        "repeated pair": links.duplicated(["supply_facility_id", "demand_facility_id", "resource"], keep="first"),
        "self-link": links["supply_facility_id"] == links["demand_facility_id"],
        "same operator": same_operator | (stems_equal & (_name_stem(links["supply_name"]) != "")),
        "same site": pd.to_numeric(links["straight_km"], errors="coerce") < SAME_SITE_FLAG_KM,
    }
    text = pd.Series("", index=links.index)
    for label, mask in flags.items():
        text = text.where(~mask.to_numpy(), text + np.where(text == "", "", ", ") + label)
    return text.rename("flags")


def _name_stem(names: pd.Series) -> pd.Series:
    """The first word of a name that is not a legal form, lower case (``Borealis Polymers Oy, Porvoo`` -> ``borealis``)."""
    words = names.fillna("").astype(str).str.split(",").str[0].str.casefold().str.split()
    return words.map(lambda ws: next((w for w in ws if w not in _NAME_FILLERS), ""))


# --- report --------------------------------------------------------------------------


def _percent(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{100 * x:.0f} %"


def _rank_text(rank: float) -> str:
    return "-" if not np.isfinite(rank) else f"{int(rank)}"


def _md_table(frame: pd.DataFrame) -> str:
    cells = frame.astype(str).apply(lambda c: c.str.replace("|", "/", regex=False))
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in cells.itertuples(index=False)]
    return "\n".join(lines)


def report_exchanges(judged: pd.DataFrame, links_per_park: dict[str, int], notes: list[str]) -> str:
    """Markdown of the exchange benchmark: pooled, per park, Kalundborg's classic nine, each exchange."""
    parks = park_scores(judged)
    pooled = pooled_scores(parks)
    out = ["## Sector-only matching against documented exchanges", ""]
    out += [f"- {n}" for n in notes] + [""]
    out.append(_md_table(pd.DataFrame({
        "set": pooled["set"], "parks": pooled["parks"], "E": pooled["E"], "in scope": pooled["in_scope"],
        "hits in first 2E+5": pooled["hits"], "recall": pooled["recall"].map(_percent),
        "found at any rank": pooled["found"], "coverage": pooled["coverage"].map(_percent)})))
    out += ["", f"Targets (issue 13): pooled recall >= {_percent(TARGET_RECALL)}, coverage >= "
            f"{_percent(TARGET_COVERAGE)}, Kalundborg classic nine in its top 25 >= {TARGET_CLASSIC}/9.", ""]
    classic = judged[judged["classic"]]
    if len(classic):
        n = int((classic["rank"] <= 25).sum())
        out += [f"**Kalundborg (sector only) classic 9 in top 25: {n}/{len(classic)}**", ""]
    out += ["### Per park", ""]
    out.append(_md_table(pd.DataFrame({
        "park": parks["park"], "set": parks["set"], "E": parks["E"], "in scope": parks["in_scope"],
        "2E+5": parks["cutoff"], "hits": parks["hits"], "recall": parks["recall"].map(_percent),
        "found": parks["found"], "coverage": parks["coverage"].map(_percent),
        "links ranked": parks["park"].map(links_per_park)})))
    out += ["", "### Rank of each exchange", "", "<details><summary>all exchanges</summary>", ""]
    out.append(_md_table(pd.DataFrame({
        "park": judged["park"], "supplier": judged["supplier_key"], "NACE": judged["supplier_nace"],
        "receiver": judged["receiver_key"], "NACE ": judged["receiver_nace"], "resource": judged["resource"],
        "codes": judged["codes"].map(" ".join), "classic": np.where(judged["classic"], "yes", ""),
        "rank": judged["rank"].map(_rank_text)})))
    out += ["", "</details>", ""]
    out += _unmeasurable(judged)
    return "\n".join(out)


def _unmeasurable(judged: pd.DataFrame) -> list[str]:
    """Lines naming the exchanges that can never be found (they count as misses)."""
    scope = judged[judged["codes"].map(len) == 0]
    blind = judged[(judged["codes"].map(len) > 0)
                   & ((judged["supplier_nace"] == "") | (judged["receiver_nace"] == ""))]
    out = [f"Out of scope (no resource code fits; misses): {len(scope)}"]
    for r in scope.itertuples(index=False):
        out.append(f"- {r.park}: {r.supplier_key} -> {r.receiver_key}: {r.resource}")
    out += ["", f"Party of unknown sector (no flows can be inferred; misses): {len(blind)}"]
    for r in blind.itertuples(index=False):
        out.append(f"- {r.park}: {r.supplier_key} -> {r.receiver_key}: {r.resource}")
    return [*out, ""]


def report_eprtr(links: pd.DataFrame, facilities: pd.DataFrame, *, top: int) -> str:
    """Markdown of the E-PRTR Finland top links, their flags and the score spread."""
    flags = eprtr_flags(links, facilities)
    head = links.head(top)
    out = [f"## E-PRTR Finland, top {top} of {len(links)} links (import-eprtr, then match --infer)", ""]
    out.append(_md_table(pd.DataFrame({
        "rank": head["rank"], "score": head["score"], "supplier": head["supply_name"],
        "receiver": head["demand_name"], "resource": head["resource"],
        "km": pd.to_numeric(head["distance_km"], errors="coerce").round(1), "flags": flags.head(top)})))
    out += ["", "Flags (a link may carry several):", ""]
    kinds = ["fuel to landfill", "fuel to foundry", "waste fuel to digester", "solid fuel to gas plant",
             "confidential party", "repeated pair", "self-link", "same operator", "same site"]
    counts = pd.DataFrame({
        "flag": kinds,
        f"top {top}": [int(flags.head(top).str.contains(k).sum()) for k in kinds],
        "top 1000": [int(flags.head(1000).str.contains(k).sum()) for k in kinds],
        "all": [int(flags.str.contains(k).sum()) for k in kinds]})
    out += [_md_table(counts), ""]
    scores = pd.to_numeric(links["score"], errors="coerce")
    spread = pd.DataFrame([{"links": name, "n": len(s), "min": s.min(), "median": s.median(), "max": s.max()}
                           for name, s in (("top 1000", scores.head(1000)), ("all", scores))])
    out += ["Score spread:", "", _md_table(spread.round(1)), ""]
    return "\n".join(out)


# --- command line --------------------------------------------------------------------


def _takes_precedents() -> bool:
    from geo.pipeline import match

    return "precedents" in inspect.signature(match).parameters


def run(*, top: int = 50) -> str:
    """Measure every park (leave-one-park-out precedents) and the E-PRTR top links; the Markdown report."""
    from geo.taxonomy import load_taxonomy

    start = time.perf_counter()
    taxonomy = load_taxonomy()
    exchanges = load_exchanges()
    precedents = precedent_rows(exchanges)
    with_precedents = _takes_precedents()
    notes = [f"{len(exchanges)} documented exchanges in {exchanges['park'].nunique()} parks "
             f"({(exchanges['set'] == 'dev').sum()} development, {(exchanges['set'] == 'held-out').sum()} held-out); "
             f"{len(DISTRACTORS)} distractor firms placed with every park within {PARK_RADIUS_KM:g} km."]
    if not DEV_FILE.is_file():
        notes.append(f"{DEV_FILE} not found: development parks skipped.")
    if with_precedents:
        notes.append("precedents: leave-one-park-out (each park is scored without its own documented exchanges).")
    else:
        notes.append("precedents: this engine's match() takes no `precedents` keyword, so none were passed.")
    notes += _stale_note(precedents)
    missing = sorted({c for cs in exchanges["codes"] for c in cs} - set(taxonomy.codes))
    if missing:
        notes.append(f"codes not in the bundled taxonomy (never found): {', '.join(missing)}")
    judged, links_per_park = measure_parks(exchanges, taxonomy, precedents, with_precedents=with_precedents)
    parts = [report_exchanges(judged, links_per_park, notes)]
    if with_precedents:
        variants = {
            "leave-one-park-out, ordinary distractors (above)": judged,
            "leave-one-park-out, with the industrial distractors too": measure_parks(
                exchanges, taxonomy, precedents, with_precedents=True,
                distractors=DISTRACTORS + INDUSTRIAL_DISTRACTORS)[0],
            "precedents as shipped (development parks seen), ordinary distractors": measure_parks(
                exchanges, taxonomy, precedents, with_precedents=True, leave_out=False)[0],
        }
        parts.append(report_variants(variants))
    if (EPRTR_DIR / "facilities.csv").is_file():
        links, facilities = eprtr_links(EPRTR_DIR, with_precedents=with_precedents)
        parts.append(report_eprtr(links, facilities, top=top))
    else:
        parts.append(f"E-PRTR Finland skipped: {EPRTR_DIR} not found.\n")
    parts.append(f"Run time: {time.perf_counter() - start:.0f} s.\n")
    return "\n".join(parts)


def measure_parks(
    exchanges: pd.DataFrame,
    taxonomy: Taxonomy,
    precedents: pd.DataFrame,
    *,
    with_precedents: bool,
    leave_out: bool = True,
    distractors: tuple[tuple[str, str], ...] = DISTRACTORS,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Measure every park; with ``leave_out`` each park's own exchanges are left out of its precedents.

    Returns the judged exchanges of all parks (:func:`measure_park`) and the
    number of links ranked per park.
    """
    judged, links_per_park = [], {}
    for park, rows in exchanges.groupby("park", sort=False):
        given = precedents[precedents["park"] != park] if leave_out else precedents
        result, n_links = measure_park(rows, taxonomy, precedents=given.reset_index(drop=True),
                                       with_precedents=with_precedents, distractors=distractors)
        judged.append(result)
        links_per_park[park] = n_links
    return pd.concat(judged), links_per_park


def report_variants(variants: dict[str, pd.DataFrame]) -> str:
    """Markdown table: recall and coverage per set of parks under each variant of the benchmark."""
    rows = []
    for label, judged in variants.items():
        pooled = pooled_scores(park_scores(judged))
        for r in pooled.itertuples(index=False):
            rows.append({"variant": label, "set": r.set, "E": r.E, "recall": _percent(r.recall),
                         "coverage": _percent(r.coverage)})
    head = ["### Variants", "",
            "The same parks measured three ways: the main measure above; with a second power station, a cement "
            "works and a biogas plant among the distractors, whose links with the parties are real opportunities "
            "that compete with the documented ones; and with the precedents as the tool ships them, where the "
            "development parks' own exchanges are known (an in-sample figure, not a test).", ""]
    return "\n".join([*head, _md_table(pd.DataFrame(rows)), ""])


def _stale_note(precedents: pd.DataFrame) -> list[str]:
    if not DEV_FILE.is_file():
        return []  # the bundled file holds the development exchanges too; nothing to compare with
    if not PRECEDENTS_FILE.is_file():
        return [f"{PRECEDENTS_FILE.relative_to(ROOT)} does not exist yet (python -m bench.exchanges --write-precedents)."]
    bundled = pd.read_csv(PRECEDENTS_FILE, dtype=str, keep_default_na=False)
    if not bundled.reset_index(drop=True).equals(precedents.astype(str).reset_index(drop=True)):
        return [f"{PRECEDENTS_FILE.relative_to(ROOT)} differs from the exchange files: regenerate it "
                "(python -m bench.exchanges --write-precedents)."]
    return []


def main(argv: list[str] | None = None) -> int:
    """Print the benchmark as Markdown, or write the precedents file; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m bench.exchanges", description=__doc__.splitlines()[0])
    parser.add_argument("--write-precedents", action="store_true",
                        help=f"write {PRECEDENTS_FILE.relative_to(ROOT)} from the exchange files and stop")
    parser.add_argument("--top", type=int, default=50, help="E-PRTR links to list (default 50)")
    args = parser.parse_args(argv)
    if args.write_precedents:
        if not DEV_FILE.is_file():
            print(f"error: {DEV_FILE} not found; the precedents need the development exchanges", file=sys.stderr)
            return 1
        precedents = precedent_rows(load_exchanges())
        path = write_precedents(precedents)
        print(f"wrote {len(precedents)} precedents of {precedents['park'].nunique()} parks to {path.relative_to(ROOT)}")
        return 0
    print(run(top=args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
