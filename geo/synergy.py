"""The synergy pipeline: links a facilitator follows from idea to running exchange.

A link of the matching engine is taken into the pipeline with a stage
(:data:`STAGES`), an owner, dated notes (a list that only grows) and, once the
exchange runs, the quantity it really moves. The pipeline is stored in the
workspace (:meth:`geo.workspace.Workspace.add_synergy` and its siblings), with
the same journal, compare-and-set versions and per-session undo and redo as
every edit of a facility. This module holds what does not need the database:
the stages and their order, the key of a link, how an entry changes and how a
change is told, and the exports of the pipeline as a table and as a map layer.

A pipeline entry is keyed by its supplier's facility id, its receiver's
facility id and the supplied resource (:func:`link_key`). Flow ids are not
used: they are row numbers of the input (``row 7``) or numbers of inferred
flows, and change whenever a flow is added or removed, while the three parts
of the key survive a re-match, another maximum distance, a road network, and
an inferred flow later declared. Links of a match that share a key (a
supplier declaring two flows of one resource to one receiver) are one entry;
their allocated quantities add up, each flow having been allocated once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime, timezone

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo import settings
from geo.errors import WorkspaceError
from geo.taxonomy import UNITS

__all__ = [
    "KEY_FIELDS",
    "PIPELINE_COLUMNS",
    "PURSUED_STAGES",
    "REALISED_STAGES",
    "STAGES",
    "SYNERGY_FIELDS",
    "UNCHANGED",
    "change_summary",
    "edited_entry",
    "entries_frame",
    "link_key",
    "link_keys",
    "link_label",
    "new_entry",
    "normalise_stage",
    "notes_text",
    "pipeline_layer",
    "pipeline_table",
    "split_link_key",
    "stage_move",
    "stored_notes",
]

#: Stages of a synergy, in the order an exchange goes through them; ``stopped`` ends one at any stage.
STAGES = ("idea", "contacted", "in discussion", "feasibility", "agreed", "running", "stopped")
#: Stages in which a link counts as pursued in the region's results (between the first contact and a signed
#: agreement); ``idea`` is not yet pursued, ``running`` is counted on its own.
PURSUED_STAGES = ("contacted", "in discussion", "feasibility", "agreed")
#: Stages at which a realised quantity may be given: what the exchange moves, or moved before it stopped.
REALISED_STAGES = ("running", "stopped")
#: The parts of a link's key, as columns of the links table.
KEY_FIELDS = ("supply_facility_id", "demand_facility_id", "resource")
#: Columns of the ``workspace_synergies`` table, one row per link in the pipeline.
SYNERGY_FIELDS = ["link_key", "supply_facility_id", "demand_facility_id", "resource", "stage", "stage_at", "owner",
                  "notes", "realised_quantity", "realised_unit", "added_at", "added_by"]
#: Longest owner name and note kept, in characters.
MAX_OWNER_CHARS = 200
MAX_NOTE_CHARS = 5000


class _Unchanged:
    """The value of an argument left out of an edit: the entry keeps what it has."""

    def __repr__(self) -> str:
        return "UNCHANGED"


#: Default of :meth:`geo.workspace.Workspace.update_synergy`'s fields: keep the stored value.
UNCHANGED = _Unchanged()


# --- keys ------------------------------------------------------------------------------------------------------


def _escaped(text: str) -> str:
    return text.replace("%", "%25").replace("/", "%2F")


def link_key(supply_facility_id: str, demand_facility_id: str, resource: str) -> str:
    """The key of a link in the pipeline: ``MILL/GREEN/heat.hot_water``.

    ``%`` and ``/`` inside a part are written ``%25`` and ``%2F``, so that no
    two links share a key and :func:`split_link_key` gets the parts back.
    """
    parts = [supply_facility_id, demand_facility_id, resource]
    if not all(isinstance(p, str) and p.strip() for p in parts):
        msg = (f"A pipeline link needs a supplier, a receiver and a resource; got {supply_facility_id!r}, "
               f"{demand_facility_id!r}, {resource!r}")
        raise WorkspaceError(msg)
    return "/".join(_escaped(p) for p in parts)


def split_link_key(key: str) -> tuple[str, str, str]:
    """The supplier's facility id, the receiver's and the resource of a key made by :func:`link_key`."""
    parts = key.split("/") if isinstance(key, str) else []
    if len(parts) != 3 or not all(parts):
        raise WorkspaceError(f"{key!r} is not the key of a pipeline link (supplier/receiver/resource)")
    supply, demand, resource = (p.replace("%2F", "/").replace("%25", "%") for p in parts)
    return supply, demand, resource


def link_keys(links: pd.DataFrame) -> pd.Series:
    """The pipeline key of every link, index-aligned: a Series named ``link_key``.

    Parameters
    ----------
    links : DataFrame
        Links as :func:`geo.pipeline.match` returns them (``supply_facility_id``,
        ``demand_facility_id``, ``resource``).

    Returns
    -------
    link_key : Series of str
    """
    parts = [links[c].astype("string").fillna("").map(_escaped) for c in KEY_FIELDS]
    return (parts[0] + "/" + parts[1] + "/" + parts[2]).astype(object).rename("link_key")


def link_label(key: str) -> str:
    """``MILL → GREEN (heat.hot_water)``: a key as the journal and messages name it."""
    supply, demand, resource = split_link_key(key)
    return f"{supply} → {demand} ({resource})"


# --- stages ----------------------------------------------------------------------------------------------------


def normalise_stage(stage: object) -> str:
    """A stage as stored: ``'In_Discussion'`` and ``'in-discussion'`` are ``'in discussion'``.

    Raises
    ------
    WorkspaceError
        For a stage that is not one of :data:`STAGES`, naming them.
    """
    text = " ".join(str(stage).replace("_", " ").replace("-", " ").split()).lower() if stage is not None else ""
    if text not in STAGES:
        msg = f"Unknown stage {stage!r}; a pipeline stage is one of: {', '.join(STAGES)}"
        raise WorkspaceError(msg)
    return text


def stage_move(old: str, new: str) -> str:
    """How a stage changes: ``same``, ``forward``, ``back``, ``stop`` or ``restart`` (out of ``stopped``)."""
    if old == new:
        return "same"
    if new == "stopped":
        return "stop"
    if old == "stopped":
        return "restart"
    return "forward" if STAGES.index(new) > STAGES.index(old) else "back"


# --- entries ---------------------------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _owner(owner: object) -> str | None:
    text = " ".join(str(owner).split()) if owner is not None else ""
    if len(text) > MAX_OWNER_CHARS:
        raise WorkspaceError(f"An owner's name is at most {MAX_OWNER_CHARS} characters; this one has {len(text)}")
    return text or None


def _note(text: object, *, at: str, author: str) -> dict:
    body = str(text).strip() if text is not None else ""
    if not body:
        raise WorkspaceError("A note needs some text")
    if len(body) > MAX_NOTE_CHARS:
        raise WorkspaceError(f"A note is at most {MAX_NOTE_CHARS:,} characters; this one has {len(body):,}")
    return {"at": at, "author": author, "text": body}


def _realised(quantity: object, unit: object) -> tuple[float | None, str | None]:
    """A realised quantity and its unit as stored; both None to clear it."""
    if quantity is None or (isinstance(quantity, float) and math.isnan(quantity)) or quantity == "":
        return None, None
    try:
        number = float(quantity)
    except (TypeError, ValueError):
        raise WorkspaceError(f"Realised quantity {quantity!r} is not a number") from None
    if not math.isfinite(number) or number < 0:
        raise WorkspaceError(f"Realised quantity {quantity!r} must be a number of 0 or more")
    if unit not in UNITS:
        raise WorkspaceError(f"Realised quantity needs its unit, one of {', '.join(UNITS)}; got {unit!r}")
    return number, str(unit)


def new_entry(link: Mapping, *, author: str, stage: str = "idea", owner: str = "", note: str = "",
              at: str | None = None) -> dict:
    """A pipeline entry for a link, as the workspace stores it (a mapping of :data:`SYNERGY_FIELDS`).

    Parameters
    ----------
    link : mapping
        A link (a row of the links table, or any mapping with
        ``supply_facility_id``, ``demand_facility_id`` and ``resource``).
    author : str
        Who takes it in, as the journal names them.
    stage, owner, note : str
        Its first stage (``idea`` by default), who follows it, and a first note.
    at : str, optional
        When, in UTC ISO 8601; now by default.
    """
    at = at or _now()
    key = link_key(*(link.get(c) for c in KEY_FIELDS))
    notes = [_note(note, at=at, author=author)] if note and str(note).strip() else []
    supply, demand, resource = split_link_key(key)
    return {"link_key": key, "supply_facility_id": supply, "demand_facility_id": demand, "resource": resource,
            "stage": normalise_stage(stage), "stage_at": at, "owner": _owner(owner), "notes": notes,
            "realised_quantity": None, "realised_unit": None, "added_at": at, "added_by": author}


def edited_entry(entry: dict, *, author: str, stage: object = UNCHANGED, owner: object = UNCHANGED,
                 realised_quantity: object = UNCHANGED, realised_unit: object = UNCHANGED, note: str = "",
                 at: str | None = None) -> dict:
    """The entry after an edit; fields left :data:`UNCHANGED` keep their value, a note is appended.

    A realised quantity can be given (or changed) only when the entry is
    ``running`` or ``stopped`` after the edit; it is kept, not cleared, when
    an entry moves back from ``running``, and counts again if it runs again.

    Raises
    ------
    WorkspaceError
        For an unknown stage, a realised quantity that is not a number of 0 or
        more, a unit other than t/yr, MWh/yr or m3/yr, a realised quantity at
        an earlier stage, or an empty note.
    """
    at = at or _now()
    after = {**entry, "notes": list(entry["notes"])}
    if stage is not UNCHANGED:
        after["stage"] = normalise_stage(stage)
        if after["stage"] != entry["stage"]:
            after["stage_at"] = at
    if owner is not UNCHANGED:
        after["owner"] = _owner(owner)
    if realised_quantity is not UNCHANGED or realised_unit is not UNCHANGED:
        quantity = entry["realised_quantity"] if realised_quantity is UNCHANGED else realised_quantity
        unit = entry["realised_unit"] if realised_unit is UNCHANGED else realised_unit
        after["realised_quantity"], after["realised_unit"] = _realised(quantity, unit)
        changed = (after["realised_quantity"], after["realised_unit"]) != (entry["realised_quantity"],
                                                                          entry["realised_unit"])
        if changed and after["realised_quantity"] is not None and after["stage"] not in REALISED_STAGES:
            msg = (f"A realised quantity is given once the exchange runs; {link_label(entry['link_key'])} is at "
                   f"stage {after['stage']!r}. Move it to 'running' first (or in the same edit)")
            raise WorkspaceError(msg)
    if note and str(note).strip():
        after["notes"].append(_note(note, at=at, author=author))
    return after


def change_summary(before: dict | None, after: dict | None) -> tuple[str, str]:
    """The journal's action and sentence for a change of one entry.

    Actions: ``pipeline add``, ``pipeline remove``, ``pipeline move``,
    ``pipeline move back`` (a stage earlier than before: allowed, and
    journaled as such), ``pipeline stop``, ``pipeline restart``,
    ``pipeline note`` and ``pipeline edit``.
    """
    key = (after or before)["link_key"]
    label = link_label(key)
    if before is None:
        return "pipeline add", f"took {label} into the pipeline at stage '{after['stage']}'"
    if after is None:
        notes = len(before["notes"])
        return "pipeline remove", (f"took {label} out of the pipeline (it was at stage '{before['stage']}', "
                                   f"{notes} note{'' if notes == 1 else 's'})")
    move = stage_move(before["stage"], after["stage"])
    parts = []
    if move == "forward":
        parts.append(f"moved {label} from '{before['stage']}' to '{after['stage']}'")
    elif move == "back":
        parts.append(f"moved {label} back from '{before['stage']}' to '{after['stage']}'")
    elif move == "stop":
        parts.append(f"stopped {label} at '{before['stage']}'")
    elif move == "restart":
        parts.append(f"restarted {label} at '{after['stage']}'")
    details = []
    if before["owner"] != after["owner"]:
        details.append(f"owner {after['owner'] or 'none'}" + (f" (was {before['owner']})" if before["owner"] else ""))
    if (before["realised_quantity"], before["realised_unit"]) != (after["realised_quantity"], after["realised_unit"]):
        details.append("realised quantity " + (f"{after['realised_quantity']:,.6g} {after['realised_unit']}"
                                               if after["realised_quantity"] is not None else "cleared"))
    added = len(after["notes"]) - len(before["notes"])
    if added > 0:
        details.append("a note added" if added == 1 else f"{added} notes added")
    if parts:
        text = parts[0] + ("; " + ", ".join(details) if details else "")
    else:
        text = f"{label}: " + ", ".join(details)
    if move in ("forward", "back", "stop", "restart"):
        return f"pipeline {'move back' if move == 'back' else 'move' if move == 'forward' else move}", text
    return ("pipeline note" if details == ["a note added"] else "pipeline edit"), text


# --- exports ---------------------------------------------------------------------------------------------------

#: Columns of :func:`pipeline_table`, in order.
PIPELINE_COLUMNS = [
    "link_key", "stage", "stage_since", "owner", "supply_facility_id", "supply_name", "demand_facility_id",
    "demand_name", "resource", "supply_cluster", "demand_cluster", "supply_country", "demand_country",
    "in_match", "score", "distance_km", "unit", "allocated_quantity", "allocated_co2_saved_t_per_yr",
    "allocated_value_eur_per_yr", "realised_quantity", "realised_unit", "notes_count", "last_note", "notes",
    "added_at", "added_by", "version",
]


def notes_text(notes: list[dict]) -> str:
    """Notes as one text, oldest first, one a line: ``2026-05-04 Anna: Called the mill's energy manager``."""
    return "\n".join(f"{str(n.get('at', ''))[:10]} {n.get('author', '')}: {n.get('text', '')}" for n in notes or [])


def pipeline_table(entries: pd.DataFrame, links: pd.DataFrame | None = None, *,
                   facilities: pd.DataFrame | None = None) -> pd.DataFrame:
    """The pipeline as a table for CSV and Excel: one row per entry, in stage order, then by key.

    Each entry is joined to the links of the current match that share its key
    (:func:`link_keys`): their allocated quantities, CO2 and EUR a year add up
    (each flow was allocated once), and the best-scoring one gives the score
    and distance. Names, clusters and countries come from the links, else
    from ``facilities``.

    Parameters
    ----------
    entries : DataFrame
        :meth:`geo.workspace.Workspace.synergies`.
    links : DataFrame, optional
        The current match's links (:func:`geo.pipeline.match`), allocated.
    facilities : DataFrame, optional
        ``facility_id``, ``name``, ``cluster``, ``country``: names for entries
        the match no longer finds.

    Returns
    -------
    DataFrame
        :data:`PIPELINE_COLUMNS`. ``in_match`` is False for an entry whose
        link the current match does not find (a flow removed, a limit
        changed); its figures are then empty. ``notes`` holds every note, one
        a line (:func:`notes_text`), ``last_note`` the newest, and
        ``stage_since`` the date the stage was set.
    """
    frame = pd.DataFrame(entries).reindex(columns=[*SYNERGY_FIELDS, "version"])
    if frame.empty:
        return pd.DataFrame(columns=PIPELINE_COLUMNS)
    matched = _per_key(links) if links is not None and len(links) else pd.DataFrame(index=pd.Index([], dtype=object))
    out = frame.reset_index(drop=True).merge(matched, left_on="link_key", right_index=True, how="left")
    out["in_match"] = out["link_key"].isin(matched.index)
    _fill_names(out, facilities)
    out["stage_since"] = out["stage_at"].astype(str).str[:10]
    out["notes_count"] = out["notes"].map(lambda n: len(n or []))
    out["last_note"] = out["notes"].map(lambda n: notes_text(n[-1:]) if n else "")
    out["notes"] = out["notes"].map(notes_text)
    order = out["stage"].map({s: i for i, s in enumerate(STAGES)}).fillna(len(STAGES))
    out = out.assign(_order=order).sort_values(["_order", "link_key"], kind="stable")
    return out.reindex(columns=PIPELINE_COLUMNS).reset_index(drop=True)


def _per_key(links: pd.DataFrame) -> pd.DataFrame:
    """The links of a match summed per pipeline key; score, distance and names from the best-scoring one."""
    work = links.assign(link_key=link_keys(links))
    if "score" in work.columns:
        work = work.sort_values("score", ascending=False, kind="stable")
    first = work.groupby("link_key", sort=False).first()
    summed_columns = [c for c in ("allocated_quantity", "allocated_co2_saved_t_per_yr", "allocated_value_eur_per_yr")
                      if c in work.columns]
    summed = work.groupby("link_key", sort=False)[summed_columns].sum(min_count=1)
    kept = [c for c in ("supply_name", "demand_name", "supply_cluster", "demand_cluster", "supply_country",
                        "demand_country", "score", "distance_km", "unit") if c in first.columns]
    return first[kept].join(summed)


def _fill_names(out: pd.DataFrame, facilities: pd.DataFrame | None) -> None:
    """Names, clusters and countries the match did not give, from the facilities table."""
    for column in ("supply_name", "demand_name", "supply_cluster", "demand_cluster", "supply_country",
                   "demand_country"):
        if column not in out.columns:
            out[column] = None
    if facilities is None or not len(facilities):
        return
    table = pd.DataFrame(facilities).drop_duplicates("facility_id").set_index("facility_id")
    for side in ("supply", "demand"):
        ids = out[f"{side}_facility_id"]
        for field in ("name", "cluster", "country"):
            if field in table.columns:
                column = f"{side}_{field}"
                out[column] = out[column].where(out[column].notna() & (out[column] != ""), ids.map(table[field]))


def pipeline_layer(entries: pd.DataFrame, facilities: pd.DataFrame, *,
                   links: pd.DataFrame | None = None) -> gpd.GeoDataFrame:
    """The pipeline as a map layer for a GeoPackage: :func:`pipeline_table` with a line between the two facilities.

    Parameters
    ----------
    entries : DataFrame
        :meth:`geo.workspace.Workspace.synergies`.
    facilities : DataFrame or GeoDataFrame
        The facilities (``facility_id`` and either point geometry in any CRS,
        or ``lon`` and ``lat`` in degrees), e.g. ``Workspace.read().facilities``.
    links : DataFrame, optional
        The current match's links, for the figures.

    Returns
    -------
    GeoDataFrame
        EPSG:4326, a straight LineString from supplier to receiver; no
        geometry (None) for an entry one of whose facilities is not placed or
        not there any more. ``in_match``, a bool, is written as an integer
        column by GDAL.
    """
    table = pipeline_table(entries, links, facilities=facilities)
    points = _facility_points(facilities)
    ends = [table[f"{side}_facility_id"].map(points).to_numpy(dtype=object) for side in ("supply", "demand")]
    lines = [shapely.LineString([a, b]) if isinstance(a, tuple) and isinstance(b, tuple) else None
             for a, b in zip(*ends, strict=True)]
    return gpd.GeoDataFrame(table, geometry=gpd.GeoSeries(lines, index=table.index, crs=settings.WGS84),
                            crs=settings.WGS84)


def _facility_points(facilities: pd.DataFrame) -> pd.Series:
    """``(lon, lat)`` in EPSG:4326 by facility id; facilities without a usable point are left out."""
    if isinstance(facilities, gpd.GeoDataFrame) and facilities.geometry.name in facilities.columns:
        geometry = facilities.geometry
        geometry = geometry.to_crs(settings.WGS84) if geometry.crs is not None else geometry
        lon, lat = geometry.x, geometry.y  # NaN where a point is missing or empty
    else:
        lon = pd.to_numeric(facilities["lon"], errors="coerce")
        lat = pd.to_numeric(facilities["lat"], errors="coerce")
    ok = np.isfinite(lon.astype(float)) & np.isfinite(lat.astype(float))
    ids = facilities["facility_id"][ok]
    return pd.Series(list(zip(lon[ok].astype(float), lat[ok].astype(float))), index=ids.to_numpy(),
                     dtype=object).groupby(level=0).first()


def entries_frame(rows: list[dict], versions: dict[str, int]) -> pd.DataFrame:
    """Stored entries as a frame of :data:`SYNERGY_FIELDS` and ``version`` (``notes`` as lists), by key."""
    frame = pd.DataFrame(rows, columns=SYNERGY_FIELDS)
    frame["realised_quantity"] = frame["realised_quantity"].astype(float)
    frame["version"] = frame["link_key"].map(lambda k: versions.get(k, 0)).astype("int64")
    return frame.sort_values("link_key", kind="stable").reset_index(drop=True)


def stored_notes(text: object) -> list[dict]:
    """The notes column as stored (JSON text) read back as a list."""
    if not isinstance(text, str) or not text:
        return []
    value = json.loads(text)
    return value if isinstance(value, list) else []
