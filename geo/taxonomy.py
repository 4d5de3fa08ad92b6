"""The resource taxonomy and knowledge base bundled in ``data/knowledge``.

One :class:`Taxonomy` holds what the engine knows about resources: the
hierarchical codes (``heat.steam`` under ``heat``), each resource's unit,
default maximum transport distance, transport mode and economic and emission
factors; the transport modes and heat-pipe costs; unit conversions; the map
from European List of Waste (EWC) codes to resources; the compatibility rules
that let one resource serve a demand for another; and the sector profiles
used to infer flows. Sources of every figure are in ``data/knowledge/SOURCES.md``.

A sector profile is keyed either by a NACE Rev. 2 code (``35.11``, ``35``) or
by an activity of Annex I of the E-PRTR Regulation (``eprtr:5(d)``). For a
facility the most specific key wins: its E-PRTR activity (``4(a)(viii)``, then
``4(a)``), then its NACE class, group and division. A profile may state that
nothing is typical of a key (a row with direction ``none`` and no resource), so
that a heterogeneous activity such as "disposal of non-hazardous waste" does
not fall back on a NACE profile that fits only some of its facilities.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from geo import settings
from geo.errors import KnowledgeBaseError

__all__ = ["ACTIVITY_PREFIX", "NO_FLOWS", "Taxonomy", "activity_prefixes", "load_taxonomy", "resource_group", "UNITS"]

#: The units a flow may be stated in.
UNITS = ("t/yr", "MWh/yr", "m3/yr")

#: Prefix of a sector-profile key naming an E-PRTR Annex I activity (``eprtr:5(d)``).
ACTIVITY_PREFIX = "eprtr:"

#: Direction of a profile row saying that no flow is typical of its key.
NO_FLOWS = "none"

_ACTIVITY_RE = re.compile(r"^\d{1,2}(\([a-z]\))?(\([ivx]+\))?$")

_FILES = {
    "resources": "resources.csv",
    "modes": "transport_modes.csv",
    "heat_pipes": "heat_pipe_costs.csv",
    "conversions": "unit_conversions.csv",
    "rules": "compatibility.csv",
    "ewc": "ewc_map.csv",
    "profiles": "sector_profiles.csv",
}


@dataclass(frozen=True)
class Taxonomy:
    """The knowledge base, as frames read from ``data/knowledge``.

    Attributes
    ----------
    resources : DataFrame
        Indexed by ``code``; group rows have an empty ``parent``.
    modes : DataFrame
        Transport modes indexed by ``mode``.
    heat_pipes : DataFrame
        Heat-pipe capital cost classes by annual energy.
    conversions : DataFrame
        Unit conversion factors per resource or group.
    rules : DataFrame
        Compatibility rules (supply code or group, demand code, strength, reason).
    ewc : Series
        Resource code by six-digit EWC code.
    profiles : DataFrame
        Sector profiles keyed by NACE code: ``nace``, ``direction``
        (``supply``, ``demand`` or ``none``), ``resource``, ``note``, ``source``.
    activity_profiles : DataFrame
        Sector profiles keyed by E-PRTR Annex I activity: the same columns
        with ``activity`` (``5(d)``) in place of ``nace``.
    """

    resources: pd.DataFrame
    modes: pd.DataFrame
    heat_pipes: pd.DataFrame
    conversions: pd.DataFrame
    rules: pd.DataFrame
    ewc: pd.Series
    profiles: pd.DataFrame
    activity_profiles: pd.DataFrame

    # -- codes ---------------------------------------------------------------

    @cached_property
    def codes(self) -> frozenset[str]:
        """Every resource code, groups included."""
        return frozenset(self.resources.index)

    @cached_property
    def leaves(self) -> pd.DataFrame:
        """Leaf resources (those with a parent), with their numeric attributes."""
        return self.resources[self.resources["parent"] != ""]

    @cached_property
    def groups(self) -> frozenset[str]:
        """Codes of the top-level groups (``heat``, ``mineral``, ...)."""
        return frozenset(self.resources.index[self.resources["parent"] == ""])

    @cached_property
    def units(self) -> dict[str, str]:
        """Canonical unit by resource code ('' for a group)."""
        return self.resources["unit"].to_dict()

    def is_group(self, code: str) -> bool:
        return code in self.groups

    def leaves_under(self, code: str) -> list[str]:
        """Leaf codes equal to ``code`` or below it in the hierarchy."""
        if code not in self.codes:
            return []
        if not self.is_group(code):
            return [code]
        prefix = code + "."
        return [c for c in self.leaves.index if c.startswith(prefix)]

    def suggest(self, code: str) -> str | None:
        """The known code closest to a mistyped one, or None when nothing is close."""
        matches = difflib.get_close_matches(code.strip().lower(), sorted(self.codes), n=1, cutoff=0.6)
        return matches[0] if matches else None

    def unit(self, code: str) -> str:
        """Canonical unit of a leaf resource ('' for a group)."""
        return self.units[code]

    # -- EWC -----------------------------------------------------------------

    def resource_for_ewc(self, ewc: str) -> str | None:
        """Resource code for a normalised six-digit EWC code, or None if unmapped."""
        return self.ewc.get(ewc)

    # -- units ---------------------------------------------------------------

    def conversion_factor(self, resource: str, from_unit: str, to_unit: str) -> float:
        """Factor turning ``from_unit`` into ``to_unit`` for a resource; NaN if unknown.

        A rule for a group applies to its children; the inverse of a stated
        rule is used when only that exists.
        """
        if from_unit == to_unit:
            return 1.0
        table = self._conversion_lookup
        for code in (resource, resource.split(".")[0]):
            if (code, from_unit, to_unit) in table:
                return table[(code, from_unit, to_unit)]
            if (code, to_unit, from_unit) in table:
                return 1.0 / table[(code, to_unit, from_unit)]
        return float("nan")

    def conversion_factors(self, resource, from_unit, to_unit) -> np.ndarray:
        """:meth:`conversion_factor` of many rows (array-likes of one length), NaN where a unit is missing.

        Each distinct (resource, from, to) is looked up once, so a links table
        of any size costs what its few dozen unit combinations cost.
        """
        columns = [pd.Series(np.asarray(c, dtype=object)).fillna("").astype(str).to_numpy(dtype=object)
                   for c in (resource, from_unit, to_unit)]
        keys = pd.MultiIndex.from_arrays(columns)
        unique = keys.unique()
        factors = np.array([self.conversion_factor(r, f, t) if f and t else np.nan for r, f, t in unique],
                           dtype=float)
        return factors[unique.get_indexer(keys)]

    @cached_property
    def _conversion_lookup(self) -> dict[tuple[str, str, str], float]:
        c = self.conversions
        return {
            (r, f, t): float(x)
            for r, f, t, x in zip(c["resource"], c["from_unit"], c["to_unit"], c["factor"])
        }

    # -- compatibility ---------------------------------------------------------

    @cached_property
    def compatibility(self) -> pd.DataFrame:
        """Every (supply leaf, demand code) pair that can form a link.

        Columns: ``supply_resource``, ``demand_resource``, ``strength`` (0..1),
        ``rule`` (``same``, ``group`` or ``substitution``), ``reason``,
        ``rule_source``. Demand codes include groups: a demand for ``heat``
        accepts every heat leaf. Where several rules join the same pair the
        strongest wins.
        """
        leaves = list(self.leaves.index)
        same = pd.DataFrame(
            {
                "supply_resource": leaves,
                "demand_resource": leaves,
                "strength": 1.0,
                "rule": "same",
                "reason": "",
                "rule_source": "",
            }
        )
        group_rows = [
            (leaf, leaf.split(".")[0], 1.0, "group", "", "") for leaf in leaves
        ]
        group = pd.DataFrame(group_rows, columns=same.columns)
        rule_rows = [
            (leaf, r.demand, float(r.strength), "substitution", r.reason, r.source)
            for r in self.rules.itertuples(index=False)
            for leaf in self.leaves_under(r.supply)
        ]
        rules = pd.DataFrame(rule_rows, columns=same.columns)
        table = pd.concat([same, group, rules], ignore_index=True)
        table = table.sort_values(
            ["supply_resource", "demand_resource", "strength"], ascending=[True, True, False]
        )
        table = table.drop_duplicates(["supply_resource", "demand_resource"])
        return table.reset_index(drop=True)

    # -- sector profiles -------------------------------------------------------

    def profile_code_for_nace(self, nace: str) -> str | None:
        """The most specific sector profile code matching a normalised NACE code.

        The longest profile code that is a prefix of ``nace`` wins (class,
        then group, then division), so ``23.51`` uses a ``23.51`` profile when
        there is one and the ``23`` division profile otherwise. None when no
        profile matches.
        """
        for code in _nace_prefixes(nace):
            if code in self._profile_codes:
                return code
        return None

    def profile_key(self, nace: str, activity: str = "") -> str | None:
        """The key of the profile that describes a facility, most specific first.

        An E-PRTR activity with a profile of its own wins (``eprtr:4(a)(viii)``,
        then ``eprtr:4(a)``), since the register states the activity while the
        NACE class of a register facility is only derived from it; otherwise
        the NACE code decides as in :meth:`profile_code_for_nace`. None when
        nothing matches.
        """
        for code in activity_prefixes(activity):
            if code in self._activity_codes:
                return ACTIVITY_PREFIX + code
        return self.profile_code_for_nace(nace) if nace else None

    @cached_property
    def profile_rows(self) -> pd.DataFrame:
        """Every profile row with its ``key`` (``35.11`` or ``eprtr:5(d)``); ``none`` rows dropped."""
        nace = self.profiles.rename(columns={"nace": "key"})
        activity = self.activity_profiles.rename(columns={"activity": "key"})
        activity = activity.assign(key=ACTIVITY_PREFIX + activity["key"])
        rows = pd.concat([nace, activity], ignore_index=True)
        return rows[rows["direction"] != NO_FLOWS].reset_index(drop=True)

    @cached_property
    def _profile_codes(self) -> frozenset[str]:
        return frozenset(self.profiles["nace"])

    @cached_property
    def _activity_codes(self) -> frozenset[str]:
        return frozenset(self.activity_profiles["activity"])


def resource_group(codes: pd.Series) -> pd.Series:
    """The group of each resource code: the part before the first dot (``heat.hot_water`` -> ``heat``).

    The knowledge base checks that every resource's code starts with its
    group's, so this needs no lookup.
    """
    return codes.str.split(".").str[0]


def activity_prefixes(activity: str) -> list[str]:
    """``4(a)(viii)`` -> ``['4(a)(viii)', '4(a)']``: the activity, then the headings above it.

    The bare section number (``4``) is left out: a section spans sectors as
    different as fertilisers and explosives.
    """
    code = str(activity or "").replace(" ", "").lower()
    out = []
    while "(" in code:
        out.append(code)
        code = code[: code.rindex("(")]
    return out


def _nace_prefixes(nace: str) -> list[str]:
    """``23.51`` -> ``['23.51', '23.5', '23']``."""
    digits = nace.replace(".", "")
    out = []
    for n in range(len(digits), 1, -1):
        part = digits[:n]
        out.append(part if n == 2 else f"{part[:2]}.{part[2:]}")
    return out


@lru_cache(maxsize=4)
def load_taxonomy(directory: str | Path | None = None) -> Taxonomy:
    """Read and check the knowledge base.

    Parameters
    ----------
    directory : str or Path, optional
        Folder holding the knowledge CSV files; defaults to
        :data:`geo.settings.KNOWLEDGE_DIR`.

    Returns
    -------
    Taxonomy

    Raises
    ------
    KnowledgeBaseError
        When a file is missing or a reference inside the knowledge base does
        not resolve (every problem is listed).
    """
    folder = Path(directory) if directory is not None else settings.KNOWLEDGE_DIR
    frames = {}
    for key, name in _FILES.items():
        path = folder / name
        if not path.is_file():
            raise KnowledgeBaseError(f"{path}: knowledge base file missing")
        frames[key] = pd.read_csv(path, dtype=str, keep_default_na=False)
    resources = frames["resources"].set_index("code")
    _unique(resources.index, folder / _FILES["resources"])
    for column in ("max_distance_km", "avoided_co2_kg_per_unit", "value_eur_per_unit"):
        resources[column] = pd.to_numeric(resources[column].replace("", np.nan))
    modes = frames["modes"].set_index("mode")
    for column in ("cost_eur_per_unit_km", "co2_kg_per_unit_km", "capex_eur_per_m",
                   "lifetime_years", "interest_rate", "speed_kmh"):
        modes[column] = pd.to_numeric(modes[column].replace("", np.nan))
    heat_pipes = frames["heat_pipes"].copy()
    for column in ("min_mwh_per_yr", "max_mwh_per_yr", "capex_eur_per_m"):
        heat_pipes[column] = pd.to_numeric(heat_pipes[column].replace("", np.nan))
    heat_pipes["max_mwh_per_yr"] = heat_pipes["max_mwh_per_yr"].fillna(np.inf)
    conversions = frames["conversions"].copy()
    conversions["factor"] = pd.to_numeric(conversions["factor"])
    rules = frames["rules"].copy()
    rules["strength"] = pd.to_numeric(rules["strength"])
    ewc = frames["ewc"].set_index("ewc")["resource"]
    _unique(ewc.index, folder / _FILES["ewc"])
    profiles = frames["profiles"]
    by_activity = profiles["nace"].str.startswith(ACTIVITY_PREFIX)
    activity_profiles = profiles[by_activity].rename(columns={"nace": "activity"})
    activity_profiles = activity_profiles.assign(
        activity=activity_profiles["activity"].str[len(ACTIVITY_PREFIX):]).reset_index(drop=True)
    taxonomy = Taxonomy(
        resources=resources,
        modes=modes,
        heat_pipes=heat_pipes.sort_values("min_mwh_per_yr").reset_index(drop=True),
        conversions=conversions,
        rules=rules,
        ewc=ewc,
        profiles=profiles[~by_activity].reset_index(drop=True),
        activity_profiles=activity_profiles,
    )
    _check(taxonomy, folder)
    return taxonomy


def _unique(index: pd.Index, path: Path) -> None:
    repeated = sorted(set(index[index.duplicated()]))
    if repeated:
        raise KnowledgeBaseError(f"{path}: repeated codes {repeated}")


def _check(tax: Taxonomy, folder: Path) -> None:
    problems = []
    leaves = tax.leaves
    for code, row in leaves.iterrows():
        if row["parent"] not in tax.codes or not tax.is_group(row["parent"]):
            problems.append(f"resources.csv: {code}: parent {row['parent']!r} is not a group")
        if not code.startswith(row["parent"] + "."):
            problems.append(f"resources.csv: {code}: code does not start with its parent")
        if row["unit"] not in UNITS:
            problems.append(f"resources.csv: {code}: unit {row['unit']!r} not one of {UNITS}")
        if row["transport_mode"] not in tax.modes.index:
            problems.append(f"resources.csv: {code}: unknown transport mode {row['transport_mode']!r}")
        for column in ("max_distance_km", "avoided_co2_kg_per_unit", "value_eur_per_unit"):
            if pd.isna(row[column]):
                problems.append(f"resources.csv: {code}: {column} is missing")
    profiles = pd.concat([tax.profiles, tax.activity_profiles], ignore_index=True)
    flowing = profiles[profiles["direction"] != NO_FLOWS]
    for name, codes in (
        ("compatibility.csv supply", tax.rules["supply"]),
        ("compatibility.csv demand", tax.rules["demand"]),
        ("ewc_map.csv", tax.ewc),
        ("sector_profiles.csv", flowing["resource"]),
        ("unit_conversions.csv", tax.conversions["resource"]),
    ):
        for code in sorted(set(codes) - tax.codes):
            problems.append(f"{name}: unknown resource {code!r}")
    bad_dirs = set(profiles["direction"]) - {"supply", "demand", NO_FLOWS}
    if bad_dirs:
        problems.append(f"sector_profiles.csv: unknown directions {sorted(bad_dirs)}")
    for code in sorted(set(tax.activity_profiles["activity"])):
        if not _ACTIVITY_RE.match(code):
            problems.append(f"sector_profiles.csv: {ACTIVITY_PREFIX}{code} is not an E-PRTR activity code like 5(d)")
    for column, prefix in (("nace", ""), ("activity", ACTIVITY_PREFIX)):
        table = tax.profiles if column == "nace" else tax.activity_profiles
        mixed = sorted(k for k, d in table.groupby(column)["direction"] if NO_FLOWS in set(d) and len(d) > 1)
        for key in mixed:
            problems.append(f"sector_profiles.csv: {prefix}{key} says 'none' but also lists flows")
    repeated = profiles.assign(key=profiles["nace"].fillna("") + profiles["activity"].fillna(""))
    repeated = repeated[repeated.duplicated(["key", "direction", "resource"])]
    for key, direction, resource in repeated[["key", "direction", "resource"]].itertuples(index=False):
        problems.append(f"sector_profiles.csv: {key} {direction} {resource} is listed twice")
    if problems:
        raise KnowledgeBaseError(f"{folder}: " + "; ".join(problems))
