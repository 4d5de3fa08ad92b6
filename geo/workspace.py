"""The workshop workspace: the facilities and flows being edited, in a database several people edit at once.

A workspace is a GeoPackage (a path, such as ``data/workspace.gpkg``) or, for
a shared deployment, a PostgreSQL database with PostGIS (a
``postgresql://user@host/db`` URL). It holds the engine's two input tables,
``facilities`` (point geometry in EPSG:4326) and ``flows``, so that the
GeoPackage opens in QGIS and in ``python -m geo match --facilities
workspace.gpkg``, and three bookkeeping tables that GDAL does not list (they
are not in ``gpkg_contents``):

``workspace_journal``
    One row per change: ``id`` (the version the change gave), ``at`` (UTC,
    ISO 8601), ``session`` and ``author`` (who), ``action`` and ``summary``
    (what), ``facility_ids``, ``before`` and ``after`` (JSON: each facility
    touched, with its flows, as it was and as it became), ``target`` (the
    change an undo or redo acts on) and ``state`` (``done``, ``undone`` or
    ``dropped`` for a change that can be undone; empty for the others).
``workspace_versions``
    The version of each facility record (a facility with its flows): the id of
    the last journaled change to it. A facility never changed since the
    workspace was started has version 0.
``workspace_meta``
    The bookkeeping format, and in PostgreSQL a counter of changes kept by
    triggers, so that an edit made in QGIS is seen too.
``workspace_synergies`` and ``workspace_synergy_versions``
    The synergy pipeline (:mod:`geo.synergy`): one row per link taken into it
    (columns :data:`geo.synergy.SYNERGY_FIELDS`, keyed by ``link_key``), and
    the version of each entry, as for facilities. A change of the pipeline is
    journaled like an edit of a facility, with ``kind`` ``synergy`` (empty for
    a facility change), the link keys in ``facility_ids``, and each entry as it
    was and as it became in ``before`` and ``after``; it is refused on a stale
    version in the same way, and a session's undo and redo step through its
    facility and pipeline changes alike, in the order it made them.

Every change is one transaction that writes only the rows it changes, never
the whole file: in SQLite under ``BEGIN IMMEDIATE`` (one writer at a time,
readers carry on), in PostgreSQL under a transaction-scoped advisory lock. An
edit carries the version of the facility it started from and is refused with
:class:`~geo.errors.EditConflict` when the facility has a newer one
(compare-and-set); the message names who changed it, when and what. Undo and
redo step through a session's own changes, any number of them, and are refused
in the same way when someone else has changed those facilities since.

Nothing is written beside the workspace but the workspace itself: a new
GeoPackage is built under a temporary name and linked into place (so two
sessions creating it at once give one workspace), and the temporary files a
killed process left are removed the next time the workspace is opened, as
SQLite's own rollback journal is.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
import sqlite3
import struct
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from geo import settings
from geo.errors import EditConflict, WorkspaceError
from geo.synergy import (SYNERGY_FIELDS, UNCHANGED, change_summary, edited_entry, entries_frame, link_label,
                         new_entry, normalise_stage, split_link_key, stored_notes)

__all__ = [
    "FACILITY_FIELDS",
    "FLOW_FIELDS",
    "NUMBER_FIELDS",
    "SCRIPT",
    "UPLOAD_MODES",
    "Author",
    "Change",
    "Record",
    "Snapshot",
    "SynergyRecord",
    "UploadPlan",
    "Workspace",
    "validate_tables",
]

#: Columns of each table, in the engine's input format.
FACILITY_FIELDS = ["facility_id", "name", "lat", "lon", "nace", "country", "cluster", "operator", "quay", "source",
                   "notes", "precision"]
FLOW_FIELDS = ["facility_id", "direction", "resource", "quantity", "unit", "ewc", "description",
               "max_distance_km", "confidential", "partners", "source", "evidence"]
#: Columns stored as numbers (REAL, double precision); the others are text.
NUMBER_FIELDS = frozenset({"lat", "lon", "quantity", "max_distance_km"})
#: How an upload meets the workspace.
UPLOAD_MODES = {
    "append": "Append: add the facilities whose id is new; leave those already in the workspace as they are",
    "update": "Update by id: replace the facilities whose id is in the workspace, add the new ones",
    "replace": "Replace: the upload becomes the whole workspace; every other facility is removed",
}

#: Seconds a save waits for another one to finish before it gives up.
BUSY_TIMEOUT_S = 30.0
JOURNAL = "workspace_journal"
VERSIONS = "workspace_versions"
META = "workspace_meta"
SYNERGIES = "workspace_synergies"
SYNERGY_VERSIONS = "workspace_synergy_versions"
#: Format of the bookkeeping tables, kept in ``workspace_meta``: 2 added the synergy pipeline and the journal's
#: ``kind``.
FORMAT = "2"
_POSTGRES = ("postgresql://", "postgres://")
_FLOW_COLUMNS = [c for c in FLOW_FIELDS if c != "facility_id"]


# --- what the workspace hands out -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Author:
    """Who makes a change: the app session (its undo history) and the name shown in the history."""

    session: str
    name: str = ""

    @property
    def label(self) -> str:
        return self.name.strip() or f"session {self.session[:6]}"


#: The author of changes made by scripts and tests.
SCRIPT = Author("script", "a script")


@dataclass(frozen=True)
class Change:
    """One journaled change: its id is the version it gave the records it touched.

    ``kind`` is ``''`` for a change of facilities and ``'synergy'`` for one of
    the pipeline, whose ``facility_ids`` are then the link keys it touched.
    """

    id: int
    at: str
    session: str
    author: str
    action: str
    summary: str
    facility_ids: tuple[str, ...]
    state: str = ""
    kind: str = ""

    @property
    def when(self) -> str:
        """``2026-05-04 14:02:05 UTC``."""
        return self.at.replace("T", " ").removesuffix("Z") + " UTC"

    def describe(self) -> str:
        """``Anna at 2026-05-04 14:02:05 UTC (edited facility 'FI-1': name)``."""
        return f"{self.author} at {self.when} ({self.summary})"


@dataclass(frozen=True)
class Record:
    """A facility and its flows as stored, with the version an edit of it must start from.

    ``facility`` maps :data:`FACILITY_FIELDS` to stored values (None when no
    such facility is stored); ``flows`` is a list of mappings of the flow
    fields other than ``facility_id``, in the order they were added.
    """

    facility_id: str
    facility: dict | None
    flows: list[dict]
    version: int

    @classmethod
    def of(cls, facility_id: str, facilities: pd.DataFrame, flows: pd.DataFrame, *, version: int = 0) -> Record:
        """A facility's record from tables, with its values as the workspace would store them."""
        rows = pd.DataFrame(facilities).reindex(columns=FACILITY_FIELDS)
        rows = rows[rows["facility_id"] == facility_id]
        own = pd.DataFrame(flows).reindex(columns=FLOW_FIELDS)
        own = own[own["facility_id"] == facility_id]
        facility = _facility(rows.iloc[0].to_dict()) if len(rows) else None
        return cls(facility_id, facility, [_flow(row) for row in own.to_dict("records")], version)


@dataclass(frozen=True)
class SynergyRecord:
    """A pipeline entry as stored, with the version an edit of it must start from.

    ``entry`` maps :data:`geo.synergy.SYNERGY_FIELDS` to stored values
    (``notes`` a list of ``{"at", "author", "text"}``); None when the link is
    not in the pipeline.
    """

    key: str
    entry: dict | None
    version: int


@dataclass(frozen=True)
class Snapshot:
    """Both tables read in one transaction, and the version they are at."""

    facilities: pd.DataFrame
    flows: pd.DataFrame
    geometry: gpd.GeoSeries
    version: int


@dataclass(frozen=True)
class UploadPlan:
    """What an upload would change, worked out before anything is written (:meth:`Workspace.plan_upload`).

    ``added``, ``updated``, ``unchanged`` and ``removed`` list facility ids;
    ``flows_added`` and ``flows_removed`` count flows. :meth:`Workspace.apply_upload`
    refuses the plan when a facility it touches has changed since it was made.
    """

    mode: str
    after: dict[str, dict] = field(repr=False)
    added: list[str]
    updated: list[str]
    unchanged: list[str]
    removed: list[str]
    flows_added: int
    flows_removed: int
    expected: dict[str, int] = field(repr=False)
    version: int

    @property
    def changes_anything(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def summary(self) -> str:
        """``3 facilities added, 1 updated, 99 removed; 7 flows added, 180 removed``."""
        facilities = (f"{_count(len(self.added), 'facility', 'facilities')} added, {len(self.updated)} updated, "
                      f"{len(self.removed)} removed")
        return f"{facilities}; {_count(self.flows_added, 'flow', 'flows')} added, {self.flows_removed} removed"


# --- the workspace ---------------------------------------------------------------------------------------------


class Workspace:
    """A workspace: a GeoPackage path or a ``postgresql://`` URL.

    Opening it writes nothing; the bookkeeping tables are added to a
    GeoPackage or database that lacks them (one written by an older version,
    or by QGIS) at its first use, and the columns ``precision`` and
    ``evidence`` to tables that lack them.
    """

    def __init__(self, location: str | os.PathLike) -> None:
        text = os.fspath(location)
        if text.startswith(_POSTGRES):
            self._db: _Backend = _PostGIS(text)
            self.path: Path | None = None
        else:
            self.path = Path(text)
            self._db = _GeoPackage(self.path)
        self.location = text

    @property
    def name(self) -> str:
        """The workspace as shown to users: the file name, or the URL without its password."""
        return self._db.name

    def __repr__(self) -> str:
        return f"Workspace({self.name!r})"

    # -- reading --------------------------------------------------------------------------------------------------

    def exists(self) -> bool:
        """True once the workspace holds its tables (else the app shows the bundled demo)."""
        return self._db.exists()

    def data_key(self) -> str:
        """A key that changes whenever the data changes, cheap enough for every page run; '' when absent."""
        return self._db.data_key() if self.exists() else ""

    def version(self) -> int:
        """The id of the last journaled change (0 before the first)."""
        if not self.exists():
            return 0
        with self._db.transaction() as con:
            return _head(self._db, con)

    def read(self) -> Snapshot:
        """Both tables, read in one transaction (an edit committed meanwhile is wholly in or wholly out)."""
        with self._db.transaction() as con:
            return _snapshot(self._db, con)

    def record(self, facility_id: str) -> Record:
        """One facility and its flows as stored now, with its version (an edit starts from it)."""
        with self._db.transaction() as con:
            rec = _records(self._db, con, [facility_id])[facility_id]
            version = _versions(self._db, con, [facility_id])[facility_id]
        return Record(facility_id, rec["facility"], rec["flows"], version)

    def dataset(self, *, taxonomy=None, reader: Callable | None = None):
        """The workspace validated by the engine, as ``python -m geo match`` reads it, and its version.

        ``reader`` reads and validates the GeoPackage the tables are written
        to (:func:`geo.dataset.load_dataset` by default).

        Returns
        -------
        dataset : geo.schema.Dataset
            Problems name the table as ``<workspace name>[facilities]``.
        version : int
            The version the tables were read at.
        """
        snapshot = self.read()
        return validate_tables(snapshot.facilities, snapshot.flows, name=self.name, geometry=snapshot.geometry,
                               taxonomy=taxonomy, reader=reader), snapshot.version

    def history(self, *, limit: int = 50) -> pd.DataFrame:
        """The last changes, newest first: ``version``, ``when``, ``who``, ``action``, ``what``, ``state``."""
        columns = ["version", "when", "who", "action", "what", "state"]
        rows = []
        with contextlib.suppress(_NotStarted), self._db.transaction() as con:
            rows = con.execute(self._db.q(
                f'SELECT {_CHANGE_COLUMNS} FROM {JOURNAL} ORDER BY id DESC LIMIT ?'), (int(limit),)).fetchall()
        changes = [_change_of(row) for row in rows]
        return pd.DataFrame([(c.id, c.when, c.author, c.action, c.summary, c.state) for c in changes], columns=columns)

    def next_undo(self, author: Author) -> Change | None:
        """The change :meth:`undo` would undo for this session, or None."""
        return self._next(author, "done", "DESC")

    def next_redo(self, author: Author) -> Change | None:
        """The change :meth:`redo` would make again for this session, or None."""
        return self._next(author, "undone", "ASC")

    def _next(self, author: Author, state: str, order: str) -> Change | None:
        with contextlib.suppress(_NotStarted), self._db.transaction() as con:
            return _session_change(self._db, con, author, state, order)
        return None

    # -- changing -------------------------------------------------------------------------------------------------

    def create(self, facilities: pd.DataFrame, flows: pd.DataFrame, *, author: Author = SCRIPT,
               source: str = "the tables given") -> Change | None:
        """Start the workspace with these tables, unless it exists already; the start, or None when it existed.

        The start is journaled (``started the workspace from ...``) but is not a
        step to undo. Two sessions starting it at once give one workspace,
        started by one of them.
        """
        after = _tables_to_records(facilities, flows)
        return self._db.create(lambda con: _start(self._db, con, after, author, source))

    def add_facility(self, row: dict, *, author: Author) -> Change:
        """Add a facility (a mapping of :data:`FACILITY_FIELDS`); refused when its id is taken."""
        facility = _facility(row)
        fid = facility["facility_id"]

        def after(before: dict[str, dict], _current: dict[str, int], con) -> dict[str, dict]:
            if before[fid]["facility"] is not None:
                raise _conflict(self._db, con, fid, f"Not added: facility {fid!r} exists already", "Choose another "
                                "id, or edit that facility")
            return {fid: {"facility": facility, "flows": before[fid]["flows"]}}

        return self._change(author, "add facility", [fid], after,
                            summary=lambda b, a: f"added facility {fid!r} ({facility.get('name') or 'no name'})")

    def add_flow(self, row: dict, *, author: Author) -> Change:
        """Add a flow (a mapping of :data:`FLOW_FIELDS`) to its facility; refused when the facility is gone."""
        flow = _flow(row)
        fid = _text_id(row.get("facility_id"))

        def after(before: dict[str, dict], _current: dict[str, int], con) -> dict[str, dict]:
            if before[fid]["facility"] is None:
                raise _conflict(self._db, con, fid, f"Not added: facility {fid!r} is not in the workspace",
                                "Reload the page and choose a facility again")
            return {fid: {"facility": before[fid]["facility"], "flows": [*before[fid]["flows"], flow]}}

        what = f"added a {flow.get('direction') or 'flow'} of {flow.get('resource') or 'a resource'} to {fid!r}"
        return self._change(author, "add flow", [fid], after, summary=lambda b, a: what)

    def edit_facility(self, facility_id: str, row: dict, flows: Iterable[dict], *, base_version: int,
                      author: Author) -> Change | None:
        """Replace a facility's fields and flows, if it is still at ``base_version``; None when nothing changed.

        Raises
        ------
        EditConflict
            When someone changed or deleted the facility after ``base_version``.
        """
        fid = _text_id(facility_id)
        facility = _facility({**row, "facility_id": fid})
        new_flows = [_flow(f) for f in flows]

        def after(before: dict[str, dict], _current: dict[str, int], con) -> dict[str, dict]:
            if before[fid]["facility"] is None:
                raise _conflict(self._db, con, fid, f"Not saved: facility {fid!r} is not in the workspace any more")
            return {fid: {"facility": facility, "flows": new_flows}}

        return self._change(author, "edit facility", [fid], after, expected={fid: base_version},
                            summary=lambda b, a: _edit_summary(fid, b[fid], a[fid]))

    def delete_facility(self, facility_id: str, *, base_version: int, author: Author) -> Change | None:
        """Delete a facility and its flows, if it is still at ``base_version``."""
        fid = _text_id(facility_id)

        def after(before: dict[str, dict], _current: dict[str, int], con) -> dict[str, dict]:
            if before[fid]["facility"] is None:
                raise _conflict(self._db, con, fid, f"Not deleted: facility {fid!r} is not in the workspace any more")
            return {fid: {"facility": None, "flows": []}}

        return self._change(author, "delete facility", [fid], after, expected={fid: base_version},
                            summary=lambda b, a: f"deleted facility {fid!r} and its "
                                                 f"{_count(len(b[fid]['flows']), 'flow', 'flows')}")

    def plan_upload(self, facilities: pd.DataFrame, flows: pd.DataFrame | None, *, mode: str,
                    start: tuple[pd.DataFrame, pd.DataFrame] | None = None) -> UploadPlan:
        """What an upload in this mode would add, update and remove (nothing is written).

        ``flows`` None means the upload has no flows table: existing flows are
        kept by append and update, and removed by replace. ``start`` gives the
        tables the workspace will be started from, when it has not been yet
        (the app's bundled demo): the plan is then worked out against them.
        """
        if mode not in UPLOAD_MODES:
            raise WorkspaceError(f"upload mode {mode!r} is not one of {', '.join(UPLOAD_MODES)}")
        uploaded = _tables_to_records(facilities, flows if flows is not None else pd.DataFrame(columns=FLOW_FIELDS))
        current: dict[str, dict] = _tables_to_records(*start) if start is not None else {}
        versions: dict[str, int] = {}
        version = 0
        if self.exists():
            with self._db.transaction() as con:
                ids = _all_ids(self._db, con)
                current, versions, version = _records(self._db, con, ids), _versions(self._db, con, ids), _head(
                    self._db, con)
        return _plan(mode, uploaded, current, versions, version, keep_flows=flows is None)

    def apply_upload(self, plan: UploadPlan, *, author: Author) -> Change | None:
        """Carry out an upload plan; refused when a facility it touches changed since, or (replace) one was added.

        Starts the workspace from the upload when there is none yet. None when
        the plan changes nothing.
        """
        if not plan.changes_anything:
            return None
        if not self.exists():
            started = self.create(*_records_to_tables(plan.after), author=author,
                                  source=f"an upload ({plan.summary()})")
            if started is not None:
                return started
        touched = list(plan.after)

        def after(before: dict[str, dict], current: dict[str, int], con) -> dict[str, dict]:
            if plan.mode == "replace":
                new = sorted(set(_all_ids(self._db, con)) - set(plan.expected))
                if new:
                    raise _conflict(self._db, con, new[0], f"Not replaced: facility {new[0]!r} was added after the "
                                    "preview", "Look at the preview again")
            return plan.after

        summary = f"upload, {plan.mode}: {plan.summary()}"
        return self._change(author, f"upload ({plan.mode})", touched, after, expected=plan.expected,
                            summary=lambda b, a: summary, conflict_hint="Look at the preview again")

    def save(self, facilities: pd.DataFrame, flows: pd.DataFrame, *, author: Author = SCRIPT) -> Change | None:
        """Make the workspace hold exactly these tables (started from them when there is none).

        For scripts and tests: a journaled replace, one step to undo for
        ``author``; the app's uploads go through :meth:`plan_upload` and
        :meth:`apply_upload` so the user sees what changes first.
        """
        if not self.exists():
            started = self.create(facilities, flows, author=author, source="a script")
            if started is not None:
                return started
        return self.apply_upload(self.plan_upload(facilities, flows, mode="replace"), author=author)

    def undo(self, *, author: Author) -> Change | None:
        """Undo this session's last change not undone; None when there is none.

        Raises
        ------
        EditConflict
            When someone else changed one of its facilities after it.
        """
        return self._step(author, undo=True)

    def redo(self, *, author: Author) -> Change | None:
        """Make this session's last undone change again; None when there is none (or a new change came since)."""
        return self._step(author, undo=False)

    # -- the synergy pipeline ---------------------------------------------------------------------------------------

    def synergies(self) -> pd.DataFrame:
        """Every link in the pipeline, read in one transaction: one row per entry, by key.

        Returns
        -------
        DataFrame
            Columns :data:`geo.synergy.SYNERGY_FIELDS` (``notes`` a list of
            ``{"at", "author", "text"}``, oldest first; ``realised_quantity``
            float, NaN when not given) and ``version`` (what an edit of the
            entry starts from). Empty when the workspace has not been started.
        """
        with contextlib.suppress(_NotStarted), self._db.transaction() as con:
            rows = con.execute(self._db.q(f"SELECT {_SYNERGY_SELECT} FROM {SYNERGIES} ORDER BY link_key")).fetchall()
            versions = con.execute(self._db.q(f"SELECT link_key, version FROM {SYNERGY_VERSIONS}")).fetchall()
            return entries_frame([_synergy_loaded(row) for row in rows], {k: int(v) for k, v in versions})
        return entries_frame([], {})

    def synergy(self, key: str) -> SynergyRecord:
        """One pipeline entry as stored now, with its version (an edit starts from it)."""
        with self._db.transaction() as con:
            entry = _synergy_records(self._db, con, [key])[key]
            version = _synergy_versions(self._db, con, [key])[key]
        return SynergyRecord(key, entry, version)

    def add_synergy(self, link: Mapping | pd.Series, *, author: Author, stage: str = "idea", owner: str = "",
                    note: str = "") -> Change:
        """Take a link into the pipeline; refused when it is there already or one of its facilities is gone.

        Parameters
        ----------
        link : mapping
            A row of the links table (or any mapping with ``supply_facility_id``,
            ``demand_facility_id`` and ``resource``); its key is
            :func:`geo.synergy.link_key`.
        author : Author
            Who takes it in (the journal, the undo history).
        stage, owner, note : str
            Its first stage (:data:`geo.synergy.STAGES`, ``idea`` by
            default), who follows it, and a first note.

        Raises
        ------
        EditConflict
            When someone took the link in first, or a facility of it is not
            in the workspace (any more).
        WorkspaceError
            For an unknown stage or an owner's name too long.
        """
        entry = new_entry(link, author=author.label, stage=stage, owner=owner, note=note)
        key = entry["link_key"]

        def after(before: dict[str, dict | None], _current: dict[str, int], con) -> dict[str, dict | None]:
            if before[key] is not None:
                raise _conflict(self._db, con, key, f"Not added: {link_label(key)} is in the pipeline already",
                                "Reload the pipeline and change it there", kind=_SYNERGY)
            ends = [entry["supply_facility_id"], entry["demand_facility_id"]]
            stored = _records(self._db, con, ends)
            for fid in ends:
                if stored[fid]["facility"] is None:
                    raise _conflict(self._db, con, fid, f"Not added: facility {fid!r} of {link_label(key)} is not "
                                    "in the workspace", "Match the workspace again and choose the link anew")
            return {key: entry}

        return self._change(author, _synergy_action, [key], after, summary=_synergy_summary, kind=_SYNERGY)

    def update_synergy(self, key: str, *, base_version: int, author: Author, stage: object = UNCHANGED,
                       owner: object = UNCHANGED, realised_quantity: object = UNCHANGED,
                       realised_unit: object = UNCHANGED, note: str = "") -> Change | None:
        """Move a pipeline entry to another stage, give its owner or realised quantity, if it is still at
        ``base_version``; None when nothing changed.

        Fields left :data:`geo.synergy.UNCHANGED` keep their value; ``note``,
        when given, is appended (dated, with the author). Moving back to an
        earlier stage is allowed and journaled as ``pipeline move back``. A
        realised quantity (with ``realised_unit``: t/yr, MWh/yr or m3/yr) is
        taken at stage ``running`` or ``stopped`` only; ``None`` clears it.

        Raises
        ------
        EditConflict
            When someone changed or removed the entry after ``base_version``;
            the message names who, when and what.
        WorkspaceError
            For an unknown stage, a realised quantity that cannot be taken or
            an empty or too long note or owner. Nothing is written.
        """
        if stage is not UNCHANGED:
            stage = normalise_stage(stage)
        split_link_key(key)

        def after(before: dict[str, dict | None], _current: dict[str, int], con) -> dict[str, dict | None]:
            if before[key] is None:
                raise _conflict(self._db, con, key, f"Not saved: {link_label(key)} is not in the pipeline any more",
                                "Reload the pipeline", kind=_SYNERGY)
            return {key: edited_entry(before[key], author=author.label, stage=stage, owner=owner,
                                      realised_quantity=realised_quantity, realised_unit=realised_unit, note=note)}

        return self._change(author, _synergy_action, [key], after, expected={key: base_version},
                            summary=_synergy_summary, kind=_SYNERGY)

    def add_synergy_note(self, key: str, text: str, *, author: Author) -> Change:
        """Append a dated note to a pipeline entry, whatever its version (notes from two people both stay).

        Raises
        ------
        EditConflict
            When the link is not in the pipeline (any more).
        WorkspaceError
            For an empty note, or one over :data:`geo.synergy.MAX_NOTE_CHARS`.
        """
        split_link_key(key)

        def after(before: dict[str, dict | None], _current: dict[str, int], con) -> dict[str, dict | None]:
            if before[key] is None:
                raise _conflict(self._db, con, key, f"Note not added: {link_label(key)} is not in the pipeline",
                                "Reload the pipeline", kind=_SYNERGY)
            return {key: edited_entry(before[key], author=author.label, note=text)}

        if not str(text or "").strip():
            raise WorkspaceError("A note needs some text")
        return self._change(author, _synergy_action, [key], after, summary=_synergy_summary, kind=_SYNERGY)

    def remove_synergy(self, key: str, *, base_version: int, author: Author) -> Change | None:
        """Take a link out of the pipeline (with its notes), if it is still at ``base_version``; undo brings it
        back. A link that did not work out is better moved to ``stopped``, which keeps it in the results."""
        split_link_key(key)

        def after(before: dict[str, dict | None], _current: dict[str, int], con) -> dict[str, dict | None]:
            if before[key] is None:
                raise _conflict(self._db, con, key, f"Not removed: {link_label(key)} is not in the pipeline any "
                                "more", "Reload the pipeline", kind=_SYNERGY)
            return {key: None}

        return self._change(author, _synergy_action, [key], after, expected={key: base_version},
                            summary=_synergy_summary, kind=_SYNERGY)

    def synergy_history(self, key: str | None = None, *, limit: int = 50) -> pd.DataFrame:
        """The last changes of the pipeline (of one entry when ``key`` is given), newest first, with undos and
        redos: ``version``, ``when``, ``who``, ``action``, ``what``, ``state``."""
        columns = ["version", "when", "who", "action", "what", "state"]
        changes: list[Change] = []
        with contextlib.suppress(_NotStarted), self._db.transaction() as con:
            cursor = con.execute(self._db.q(f"SELECT {_CHANGE_COLUMNS} FROM {JOURNAL} WHERE kind = ? "
                                            "ORDER BY id DESC"), (_SYNERGY.name,))
            while len(changes) < limit:
                row = cursor.fetchone()
                if row is None:
                    break
                change = _change_of(row)
                if key is None or key in change.facility_ids:
                    changes.append(change)
        return pd.DataFrame([(c.id, c.when, c.author, c.action, c.summary, c.state) for c in changes], columns=columns)

    # -- one transaction per change --------------------------------------------------------------------------------

    def _change(self, author: Author, action: str | Callable[[dict, dict], str], ids: list[str],
                make_after: Callable[[dict[str, dict], dict[str, int], object], dict[str, dict]], *,
                summary: Callable[[dict, dict], str], expected: dict[str, int] | None = None,
                conflict_hint: str = "", kind: _Kind | None = None) -> Change | None:
        """Read the touched records, check their versions, write what changed and journal it, in one transaction.

        ``kind`` says which records (facilities by default, or pipeline
        entries); ``action`` may be worked out from the records before and
        after, as ``summary`` is.
        """
        kind = kind or _FACILITY
        with self._db.transaction(write=True) as con:
            before = kind.read(self._db, con, ids)
            current = kind.versions(self._db, con, [*ids, *(expected or {})])
            for fid, version in (expected or {}).items():
                if current.get(fid, 0) != version:
                    raise _stale(self._db, con, fid, current.get(fid, 0), conflict_hint, kind=kind)
            after = make_after(before, current, con)
            changed = [fid for fid in after if after[fid] != before.get(fid)]
            if not changed:
                return None
            before = {fid: before[fid] for fid in changed}
            after = {fid: after[fid] for fid in changed}
            named = action(before, after) if callable(action) else action
            entry = _journal(self._db, con, author, named, summary(before, after), before, after, state="done",
                             kind=kind.name)
            kind.write(self._db, con, after)
            kind.set_versions(self._db, con, changed, entry)
            con.execute(self._db.q(f"UPDATE {JOURNAL} SET state = 'dropped' WHERE session = ? AND state = 'undone'"),
                        (author.session,))
            return _load_change(self._db, con, entry)

    def _step(self, author: Author, *, undo: bool) -> Change | None:
        with contextlib.suppress(_NotStarted), self._db.transaction(write=True) as con:
            target = _session_change(self._db, con, author, "done" if undo else "undone", "DESC" if undo else "ASC")
            if target is None:
                return None
            kind = _KINDS.get(target.kind, _FACILITY)
            old, new = _journal_states(self._db, con, target.id)
            if not undo:
                old, new = new, old
            ids = list(old)
            now = kind.read(self._db, con, ids)
            for fid in ids:
                if now[fid] != new[fid]:
                    version = kind.versions(self._db, con, [fid])[fid]
                    raise _undo_conflict(self._db, con, fid, version, target, undo=undo, kind=kind)
            verb = "undid" if undo else "redid"
            entry = _journal(self._db, con, author, "undo" if undo else "redo", f"{verb}: {target.summary}", new, old,
                             target=target.id, kind=kind.name)
            kind.write(self._db, con, old)
            kind.set_versions(self._db, con, ids, entry)
            con.execute(self._db.q(f"UPDATE {JOURNAL} SET state = ? WHERE id = ?"),
                        ("undone" if undo else "done", target.id))
            return _load_change(self._db, con, entry)
        return None


# --- validating tables through the engine ----------------------------------------------------------------------


def validate_tables(facilities: pd.DataFrame, flows: pd.DataFrame, *, name: str = "workspace.gpkg",
                    geometry: gpd.GeoSeries | None = None, taxonomy=None, reader: Callable | None = None):
    """Validate tables as the engine reads a workspace: written to a temporary GeoPackage, then loaded.

    Parameters
    ----------
    facilities, flows : DataFrame
        Tables in the workspace's columns (others are ignored).
    name : str
        How problems name the tables: ``<name>[facilities]``.
    geometry : GeoSeries, optional
        The facilities' points (EPSG:4326), index-aligned; from ``lat`` and ``lon`` when None.
    taxonomy : Taxonomy, optional
        Knowledge base; the bundled one by default.
    reader : callable, optional
        Reads and validates the GeoPackage: :func:`geo.dataset.load_dataset` by default.

    Returns
    -------
    geo.schema.Dataset
    """
    if reader is None:
        from geo.dataset import load_dataset as reader  # geo.dataset needs nothing from here: no cycle

    with tempfile.TemporaryDirectory(prefix="symbiosis-check-") as folder:
        path = Path(folder) / "workspace.gpkg"
        _write_gpkg(facilities, flows, path, geometry=geometry)
        dataset = reader(path, taxonomy=taxonomy)
    return _renamed(dataset, str(path), name)


def _write_gpkg(facilities: pd.DataFrame, flows: pd.DataFrame, path: Path, *,
                geometry: gpd.GeoSeries | None = None) -> None:
    fac = pd.DataFrame(facilities).reindex(columns=FACILITY_FIELDS).reset_index(drop=True)
    points = (_points(fac["lon"], fac["lat"]) if geometry is None
              else gpd.GeoSeries(np.asarray(geometry, dtype=object), crs=settings.WGS84))
    pyogrio.write_dataframe(gpd.GeoDataFrame(fac, geometry=points, crs=settings.WGS84), path, layer="facilities",
                            driver="GPKG", geometry_type="Point")
    table = pd.DataFrame(flows).reindex(columns=FLOW_FIELDS)
    if len(table):  # no layer rather than an empty one, which the reader calls a flows file without rows
        pyogrio.write_dataframe(table, path, layer="flows", driver="GPKG")


def _renamed(dataset, temporary: str, name: str):
    """The dataset with the temporary file's path replaced by the workspace's name wherever a file is named."""
    def fix(text: object) -> object:
        return text.replace(temporary, name) if isinstance(text, str) else text

    dataset.report.problems = [replace(p, file=fix(p.file)) for p in dataset.report.problems]
    for frame in (dataset.facilities, dataset.flows, dataset.skipped):
        if "file" in frame.columns:
            frame["file"] = frame["file"].map(fix)
    return dataset


def _points(lon: pd.Series, lat: pd.Series) -> gpd.GeoSeries:
    """A point per facility in EPSG:4326 degrees; none where a coordinate is missing or not a finite number.

    A point is written only for a usable pair: ``POINT (26.9 NaN)`` would be read back as a location (its
    representative point is 0, 0), and a text such as ``'abc'`` cannot be a coordinate. Without a point,
    reading the workspace checks the ``lat`` and ``lon`` columns and names the value that is wrong.
    """
    x = pd.to_numeric(lon, errors="coerce").astype(float)
    y = pd.to_numeric(lat, errors="coerce").astype(float)
    usable = np.isfinite(x) & np.isfinite(y)
    points = gpd.GeoSeries(gpd.points_from_xy(x.where(usable, 0.0), y.where(usable, 0.0)), index=lon.index)
    return points.where(usable, None)


# --- values: what a cell may hold ------------------------------------------------------------------------------


def _stored(name: str, value: object) -> str | float | None:
    """A value as the workspace stores it: a float in a number column, text elsewhere, None for nothing.

    An empty text is nothing, as the engine reads it. Booleans become
    ``true``/``false`` (the engine's spelling). A number column refuses text
    that is not a number, which neither QGIS nor the engine could read back.
    """
    if value is None or (not isinstance(value, str) and _missing(value)):
        return None
    if name in NUMBER_FIELDS:
        if isinstance(value, (bool, np.bool_)):
            raise WorkspaceError(f"{name}: {value!r} is not a number")
        if isinstance(value, (int, float, np.integer, np.floating)):
            number = float(value)
        else:
            text = str(value).strip()
            if not text:
                return None
            try:
                number = float(text)
            except ValueError:
                raise WorkspaceError(f"{name}: {text!r} is not a number; the workspace keeps numbers there") from None
        return number if math.isfinite(number) else None
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value) if value != "" else None


def _missing(value: object) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _loaded(name: str, value: object) -> str | float | None:
    """A value read back: numbers as float, text as text; a text in a number column (written by another
    tool) is kept as it is, for validation to name."""
    if value is None:
        return None
    if name in NUMBER_FIELDS and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return _stored(name, value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return value if value != "" else None


def _text_id(value: object) -> str:
    fid = _stored("facility_id", value)
    if not fid or not fid.strip():
        raise WorkspaceError("a facility needs an id")
    return fid


def _facility(row: dict) -> dict:
    facility = {name: _stored(name, row.get(name)) for name in FACILITY_FIELDS}
    facility["facility_id"] = _text_id(row.get("facility_id"))
    return facility


def _flow(row: dict) -> dict:
    return {name: _stored(name, row.get(name)) for name in _FLOW_COLUMNS}


def _tables_to_records(facilities: pd.DataFrame, flows: pd.DataFrame) -> dict[str, dict]:
    """Records (facility and flows) by id from two tables; an id given twice or not at all is refused."""
    fac = pd.DataFrame(facilities).reindex(columns=FACILITY_FIELDS)
    records: dict[str, dict] = {}
    problems = []
    for position, row in enumerate(fac.to_dict("records"), start=1):
        try:
            facility = _facility(row)
        except WorkspaceError as exc:
            problems.append(f"facility row {position}: {exc}")
            continue
        fid = facility["facility_id"]
        if fid in records:
            problems.append(f"facility row {position}: id {fid!r} is given twice")
        records[fid] = {"facility": facility, "flows": []}
    for position, row in enumerate(pd.DataFrame(flows).reindex(columns=FLOW_FIELDS).to_dict("records"), start=1):
        try:
            fid, flow = _text_id(row.get("facility_id")), _flow(row)
        except WorkspaceError as exc:
            problems.append(f"flow row {position}: {exc}")
            continue
        records.setdefault(fid, {"facility": None, "flows": []})["flows"].append(flow)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise WorkspaceError(f"The tables cannot be stored: {shown}")
    return records


def _records_to_tables(records: dict[str, dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    facilities = [rec["facility"] for rec in records.values() if rec["facility"] is not None]
    flows = [{"facility_id": fid, **flow} for fid, rec in records.items() for flow in rec["flows"]]
    return (pd.DataFrame(facilities, columns=FACILITY_FIELDS), pd.DataFrame(flows, columns=FLOW_FIELDS))


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def _edit_summary(fid: str, before: dict, after: dict) -> str:
    """``edited facility 'X': name, lat; 1 flow added, 2 changed``: which fields and how many flows."""
    old, new = before["facility"] or {}, after["facility"] or {}
    fields = [name for name in FACILITY_FIELDS if old.get(name) != new.get(name)]
    old_flows = [json.dumps(f, sort_keys=True) for f in before["flows"]]
    new_flows = [json.dumps(f, sort_keys=True) for f in after["flows"]]
    kept = sum(min(old_flows.count(f), new_flows.count(f)) for f in set(new_flows))
    gone, came = len(old_flows) - kept, len(new_flows) - kept
    changed = min(gone, came)
    parts = [", ".join(fields)] if fields else []
    flows = [text for n, text in ((came - changed, "added"), (changed, "changed"), (gone - changed, "removed")) if n]
    if flows:
        parts.append(f"{_count(sum(n for n in (came - changed, changed, gone - changed)), 'flow', 'flows')} "
                     + ", ".join(flows))
    return f"edited facility {fid!r}" + (": " + "; ".join(parts) if parts else "")


def _plan(mode: str, uploaded: dict[str, dict], current: dict[str, dict], versions: dict[str, int], version: int,
          *, keep_flows: bool) -> UploadPlan:
    """What the upload changes, record by record."""
    present = {fid for fid, rec in current.items() if rec["facility"] is not None}
    after: dict[str, dict] = {}
    added, updated, unchanged = [], [], []
    for fid, rec in uploaded.items():
        if rec["facility"] is None:
            continue  # flows of a facility the upload lacks: validation names them; nothing to store
        old = current.get(fid, {"facility": None, "flows": []})
        new = {"facility": rec["facility"], "flows": old["flows"] if keep_flows and mode != "replace" else rec["flows"]}
        if fid not in present:
            added.append(fid)
            after[fid] = new
        elif mode == "append":
            unchanged.append(fid)
        elif new == old:
            unchanged.append(fid)
        else:
            updated.append(fid)
            after[fid] = new
    removed = sorted(present - set(uploaded)) if mode == "replace" else []
    for fid in removed:
        after[fid] = {"facility": None, "flows": []}
    if mode == "replace":  # flows stored under an id no facility has go too
        for fid in set(current) - present - set(uploaded):
            if current[fid]["flows"]:
                after[fid] = {"facility": None, "flows": []}
    flows_before = sum(len(current.get(fid, {"flows": []})["flows"]) for fid in after)
    flows_after = sum(len(rec["flows"]) for rec in after.values())
    flows_kept = sum(_kept_flows(current.get(fid, {"flows": []})["flows"], after[fid]["flows"]) for fid in after)
    expected = {fid: versions.get(fid, 0) for fid in after}
    if mode == "replace":
        expected |= {fid: versions.get(fid, 0) for fid in current}
    return UploadPlan(mode, after, added, updated, unchanged, removed, flows_after - flows_kept,
                      flows_before - flows_kept, expected, version)


def _kept_flows(old: list[dict], new: list[dict]) -> int:
    old_keys = [json.dumps(f, sort_keys=True) for f in old]
    new_keys = [json.dumps(f, sort_keys=True) for f in new]
    return sum(min(old_keys.count(k), new_keys.count(k)) for k in set(new_keys))


# --- the shared SQL (both back ends) ---------------------------------------------------------------------------


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_FACILITY_SELECT = ", ".join(_quoted(c) for c in FACILITY_FIELDS)
_FLOW_SELECT = ", ".join(_quoted(c) for c in FLOW_FIELDS)
_CHANGE_COLUMNS = 'id, "at", session, author, action, summary, facility_ids, state, kind'
#: The journal's ``kind`` column, as added to a journal of format 1.
_KIND_COLUMN = "kind TEXT NOT NULL DEFAULT ''"
_JOURNAL_DDL = (f'{JOURNAL} (id {{serial}}, "at" TEXT NOT NULL, session TEXT NOT NULL, author TEXT NOT NULL, '
                'action TEXT NOT NULL, summary TEXT NOT NULL, facility_ids TEXT NOT NULL, "before" TEXT NOT NULL, '
                f'"after" TEXT NOT NULL, target BIGINT, state TEXT NOT NULL DEFAULT \'\', {_KIND_COLUMN})')
_VERSIONS_DDL = f"{VERSIONS} (facility_id TEXT PRIMARY KEY, version BIGINT NOT NULL)"
_SYNERGY_VERSIONS_DDL = f"{SYNERGY_VERSIONS} (link_key TEXT PRIMARY KEY, version BIGINT NOT NULL)"
_SYNERGIES_DDL = (f"{SYNERGIES} (link_key TEXT PRIMARY KEY, supply_facility_id TEXT NOT NULL, "
                  "demand_facility_id TEXT NOT NULL, resource TEXT NOT NULL, stage TEXT NOT NULL, "
                  "stage_at TEXT NOT NULL, owner TEXT, notes TEXT NOT NULL, realised_quantity double precision, "
                  "realised_unit TEXT, added_at TEXT NOT NULL, added_by TEXT NOT NULL)")
_SYNERGY_SELECT = ", ".join(_quoted(c) for c in SYNERGY_FIELDS)
_META_DDL = f"{META} (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
#: Above this many facilities a change reads the whole tables once rather than asking for each id.
_BULK_IDS = 200


def _records(db: _Backend, con, ids: list[str]) -> dict[str, dict]:
    """The stored record of each id: ``{"facility": {...} or None, "flows": [...]}``."""
    wanted = list(dict.fromkeys(ids))
    where, params = ("", ()) if len(wanted) > _BULK_IDS else (
        f" WHERE facility_id IN ({', '.join('?' * len(wanted))})", tuple(wanted))
    records = {fid: {"facility": None, "flows": []} for fid in wanted}
    if not wanted:
        return records
    facilities = con.execute(db.q(f"SELECT {_FACILITY_SELECT} FROM facilities{where} ORDER BY fid"), params)
    for row in facilities.fetchall():
        fid = row[0]
        if fid in records and records[fid]["facility"] is None:
            records[fid]["facility"] = {name: _loaded(name, v) for name, v in zip(FACILITY_FIELDS, row)}
    flows = con.execute(db.q(f"SELECT {_FLOW_SELECT} FROM flows{where} ORDER BY fid"), params)
    for row in flows.fetchall():
        if row[0] in records:
            records[row[0]]["flows"].append({name: _loaded(name, v) for name, v in zip(FLOW_FIELDS[1:], row[1:])})
    return records


def _all_ids(db: _Backend, con) -> list[str]:
    rows = con.execute(db.q("SELECT facility_id FROM facilities UNION SELECT facility_id FROM flows")).fetchall()
    return sorted(r[0] for r in rows if isinstance(r[0], str))


def _versions(db: _Backend, con, ids: list[str]) -> dict[str, int]:
    return _table_versions(db, con, VERSIONS, "facility_id", ids)


def _set_versions(db: _Backend, con, ids: list[str], version: int) -> None:
    _set_table_versions(db, con, VERSIONS, "facility_id", ids, version)


def _table_versions(db: _Backend, con, table: str, column: str, ids: list[str]) -> dict[str, int]:
    """The version of each id in a versions table (0 for one never changed)."""
    wanted = list(dict.fromkeys(ids))
    found: dict[str, int] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        rows = con.execute(db.q(f"SELECT {column}, version FROM {table} WHERE {column} IN "
                                f"({', '.join('?' * len(chunk))})"), tuple(chunk)).fetchall()
        found.update({fid: int(v) for fid, v in rows})
    return {fid: found.get(fid, 0) for fid in wanted}


def _set_table_versions(db: _Backend, con, table: str, column: str, ids: list[str], version: int) -> None:
    db.many(con, f"INSERT INTO {table} ({column}, version) VALUES (?, ?) "
                 f"ON CONFLICT ({column}) DO UPDATE SET version = excluded.version", [(fid, version) for fid in ids])


# --- pipeline entries (both back ends) ---------------------------------------------------------------------------


def _synergy_records(db: _Backend, con, keys: list[str]) -> dict[str, dict | None]:
    """The stored entry of each link key (None when it is not in the pipeline)."""
    wanted = list(dict.fromkeys(keys))
    found: dict[str, dict | None] = {key: None for key in wanted}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        rows = con.execute(db.q(f"SELECT {_SYNERGY_SELECT} FROM {SYNERGIES} WHERE link_key IN "
                                f"({', '.join('?' * len(chunk))})"), tuple(chunk)).fetchall()
        for row in rows:
            found[row[0]] = _synergy_loaded(row)
    return found


def _synergy_loaded(row: tuple) -> dict:
    """A stored row as an entry: notes as a list, the realised quantity as float or None, '' as None."""
    entry = {name: (value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value)
             for name, value in zip(SYNERGY_FIELDS, row)}
    entry["notes"] = stored_notes(entry["notes"])
    quantity = entry["realised_quantity"]
    entry["realised_quantity"] = float(quantity) if isinstance(quantity, (int, float)) else None
    for name in ("owner", "realised_unit"):
        entry[name] = entry[name] or None
    return entry


def _synergy_write(db: _Backend, con, entries: dict[str, dict | None]) -> None:
    """Store each entry (removed when None)."""
    keys = list(entries)
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        con.execute(db.q(f"DELETE FROM {SYNERGIES} WHERE link_key IN ({', '.join('?' * len(chunk))})"), tuple(chunk))
    rows = [tuple(json.dumps(entry[c], ensure_ascii=False) if c == "notes" else entry[c] for c in SYNERGY_FIELDS)
            for entry in entries.values() if entry is not None]
    if rows:
        db.many(con, f"INSERT INTO {SYNERGIES} ({_SYNERGY_SELECT}) VALUES ({', '.join('?' * len(SYNERGY_FIELDS))})",
                rows)


def _synergy_versions(db: _Backend, con, keys: list[str]) -> dict[str, int]:
    return _table_versions(db, con, SYNERGY_VERSIONS, "link_key", keys)


def _set_synergy_versions(db: _Backend, con, keys: list[str], version: int) -> None:
    _set_table_versions(db, con, SYNERGY_VERSIONS, "link_key", keys, version)


def _synergy_action(before: dict, after: dict) -> str:
    key = next(iter(after))
    return change_summary(before[key], after[key])[0]


def _synergy_summary(before: dict, after: dict) -> str:
    key = next(iter(after))
    return change_summary(before[key], after[key])[1]




def _write(db: _Backend, con, records: dict[str, dict]) -> None:
    """Store each record: its facility row updated in place (inserted when new, deleted when None), its flows anew."""
    ids = list(records)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ", ".join("?" * len(chunk))
        con.execute(db.q(f"DELETE FROM flows WHERE facility_id IN ({marks})"), tuple(chunk))
        gone = [fid for fid in chunk if records[fid]["facility"] is None]
        if gone:
            con.execute(db.q(f"DELETE FROM facilities WHERE facility_id IN ({', '.join('?' * len(gone))})"),
                        tuple(gone))
    columns = FACILITY_FIELDS[1:]
    assignments = ", ".join(f"{_quoted(c)} = ?" for c in columns)
    geometry = f", {_quoted(db.geometry_column)} = {db.point_sql}" if db.geometry_column else ""
    update = db.q(f"UPDATE facilities SET {assignments}{geometry} WHERE facility_id = ?")
    insert_columns = ", ".join(_quoted(c) for c in FACILITY_FIELDS) + (
        f", {_quoted(db.geometry_column)}" if db.geometry_column else "")
    insert = db.q(f"INSERT INTO facilities ({insert_columns}) VALUES ({', '.join('?' * len(FACILITY_FIELDS))}"
                  + (f", {db.point_sql})" if db.geometry_column else ")"))
    for fid, rec in records.items():
        facility = rec["facility"]
        if facility is None:
            continue
        point = db.point_params(facility.get("lon"), facility.get("lat")) if db.geometry_column else ()
        done = con.execute(update, (*[facility.get(c) for c in columns], *point, fid))
        if done.rowcount == 0:
            con.execute(insert, (*[facility.get(c) for c in FACILITY_FIELDS], *point))
    rows = [(fid, *[flow.get(c) for c in _FLOW_COLUMNS]) for fid, rec in records.items() for flow in rec["flows"]]
    if rows:
        db.many(con, f"INSERT INTO flows ({_FLOW_SELECT}) VALUES ({', '.join('?' * len(FLOW_FIELDS))})", rows)
    db.touched(con)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _journal(db: _Backend, con, author: Author, action: str, summary: str, before: dict, after: dict, *,
             state: str = "", target: int | None = None, kind: str = "") -> int:
    """Append a change to the journal; its id, the version it gives."""
    row = con.execute(db.q(
        f'INSERT INTO {JOURNAL} ("at", session, author, action, summary, facility_ids, "before", "after", target, '
        "state, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"),
        (_now(), author.session, author.label, action, summary, json.dumps(list(after), ensure_ascii=False),
         json.dumps(before, ensure_ascii=False), json.dumps(after, ensure_ascii=False), target, state,
         kind)).fetchone()
    return int(row[0])


def _change_of(row: tuple) -> Change:
    return Change(int(row[0]), row[1], row[2], row[3], row[4], row[5], tuple(json.loads(row[6])), row[7] or "",
                  row[8] or "")


def _load_change(db: _Backend, con, entry: int) -> Change | None:
    row = con.execute(db.q(f"SELECT {_CHANGE_COLUMNS} FROM {JOURNAL} WHERE id = ?"), (entry,)).fetchone()
    return _change_of(row) if row else None


def _journal_states(db: _Backend, con, entry: int) -> tuple[dict, dict]:
    before, after = con.execute(db.q(f'SELECT "before", "after" FROM {JOURNAL} WHERE id = ?'), (entry,)).fetchone()
    return json.loads(before), json.loads(after)


def _session_change(db: _Backend, con, author: Author, state: str, order: str) -> Change | None:
    row = con.execute(db.q(f"SELECT {_CHANGE_COLUMNS} FROM {JOURNAL} WHERE session = ? AND state = ? "
                           f"ORDER BY id {order} LIMIT 1"), (author.session, state)).fetchone()
    return _change_of(row) if row else None


def _head(db: _Backend, con) -> int:
    return int(con.execute(db.q(f"SELECT coalesce(max(id), 0) FROM {JOURNAL}")).fetchone()[0])


def _start(db: _Backend, con, records: dict[str, dict], author: Author, source: str) -> Change | None:
    """Journal the start and store the first records (every facility at version 0: no version rows)."""
    entry = _journal(db, con, author, "start", f"started the workspace from {source}", {}, {})
    _write(db, con, records)
    db.set_meta(con, "format", FORMAT)
    return _load_change(db, con, entry)


def _snapshot(db: _Backend, con) -> Snapshot:
    rows = con.execute(db.q(f"SELECT {_FACILITY_SELECT}, {db.wkb_sql} FROM facilities ORDER BY fid")).fetchall()
    facilities = _frame([row[:-1] for row in rows], FACILITY_FIELDS)
    blobs = [db.wkb(row[-1]) for row in rows]
    geometry = gpd.GeoSeries(shapely.from_wkb(blobs) if blobs else [], crs=settings.WGS84)
    flows = _frame(con.execute(db.q(f"SELECT {_FLOW_SELECT} FROM flows ORDER BY fid")).fetchall(), FLOW_FIELDS)
    return Snapshot(facilities, flows, geometry, _head(db, con))


def _frame(rows: list[tuple], columns: list[str]) -> pd.DataFrame:
    """Rows as a frame: a number column whose cells are all numbers (or empty) as float, else as stored."""
    frame = pd.DataFrame([[_loaded(c, v) for c, v in zip(columns, row)] for row in rows], columns=columns,
                         dtype=object)
    for name in NUMBER_FIELDS & set(columns):
        if frame[name].map(lambda v: v is None or isinstance(v, float)).all():
            frame[name] = frame[name].astype(float)
    return frame


def _stale(db: _Backend, con, fid: str, version: int, hint: str = "", *, kind: _Kind | None = None) -> EditConflict:
    """The refusal of an edit that started from an older version of ``fid``."""
    kind = kind or _FACILITY
    change = _load_change(db, con, version) if version else None
    gone = kind.gone(kind.read(db, con, [fid])[fid])
    what = ("deleted" if kind is _FACILITY else "removed") if gone else "changed"
    who = f" by {change.describe()}" if change else " outside the app"
    reload = hint or (f"Reload {kind.noun} {fid!r} to see its current version, then make your change again"
                      if not gone else "Reload the page")
    return EditConflict(f"Not saved: {kind.noun} {fid!r} was {what}{who} after you opened it. {reload}; "
                        "nothing of yours was written.", change)


def _conflict(db: _Backend, con, fid: str, message: str, hint: str = "", *, kind: _Kind | None = None) -> EditConflict:
    """A refusal naming the last change to ``fid`` (who, when, what), when there is one."""
    version = (kind or _FACILITY).versions(db, con, [fid])[fid]
    change = _load_change(db, con, version) if version else None
    told = f" ({change.author} at {change.when}: {change.summary})" if change else ""
    return EditConflict(f"{message}{told}." + (f" {hint}." if hint else ""), change)


def _undo_conflict(db: _Backend, con, fid: str, version: int, target: Change, *, undo: bool,
                   kind: _Kind | None = None) -> EditConflict:
    change = _load_change(db, con, version) if version else None
    who = f"{change.describe()}" if change else "a change made outside the app"
    verb = "undo" if undo else "redo"
    noun = (kind or _FACILITY).noun
    return EditConflict(f"Cannot {verb} '{target.summary}': {noun} {fid!r} was changed after it by {who}. "
                        "Reload to see the current version, and change it by hand if need be.", change)


@dataclass(frozen=True)
class _Kind:
    """What a change is about, and how its records are read, written and versioned.

    ``name`` is the journal's ``kind``; ``noun`` names a record in messages;
    ``gone`` tells a record that is not there (a deleted facility, a link out
    of the pipeline).
    """

    name: str
    noun: str
    read: Callable
    versions: Callable
    write: Callable
    set_versions: Callable
    gone: Callable[[object], bool]


_FACILITY = _Kind("", "facility", _records, _versions, _write, _set_versions,
                  lambda record: record["facility"] is None)
_SYNERGY = _Kind("synergy", "pipeline link", _synergy_records, _synergy_versions, _synergy_write,
                 _set_synergy_versions, lambda entry: entry is None)
_KINDS = {kind.name: kind for kind in (_FACILITY, _SYNERGY)}


# --- the back ends ---------------------------------------------------------------------------------------------


class _NotStarted(WorkspaceError):
    """The workspace has no tables yet (the app shows the bundled demo until the first change)."""


class _Backend:
    """What differs between SQLite (GeoPackage) and PostgreSQL: connecting, locking, placeholders, points."""

    name: str
    geometry_column: str | None = "geom"
    point_sql: str
    wkb_sql: str

    def q(self, sql: str) -> str:
        return sql

    def many(self, con, sql: str, rows: list[tuple]) -> None:
        raise NotImplementedError

    def point_params(self, lon: object, lat: object) -> tuple:
        raise NotImplementedError

    def wkb(self, value: object) -> bytes | None:
        raise NotImplementedError

    def touched(self, con) -> None:
        """Bookkeeping after rows were written (GeoPackage: its last change time)."""

    def set_meta(self, con, key: str, value: str) -> None:
        con.execute(self.q(f"INSERT INTO {META} (key, value) VALUES (?, ?) "
                           "ON CONFLICT (key) DO UPDATE SET value = excluded.value"), (key, value))

    def exists(self) -> bool:
        raise NotImplementedError

    def data_key(self) -> str:
        raise NotImplementedError

    def transaction(self, *, write: bool = False) -> contextlib.AbstractContextManager:
        raise NotImplementedError

    def create(self, start: Callable[[object], Change | None]) -> Change | None:
        raise NotImplementedError


class _GeoPackage(_Backend):
    """A GeoPackage read and written with the standard library's sqlite3, created with GDAL."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.name
        self.geometry_column = "geom"
        self.point_sql = "?"
        self.wkb_sql = '"geom"'
        self._ready: tuple | None = None

    def many(self, con, sql: str, rows: list[tuple]) -> None:
        con.executemany(sql, rows)

    def point_params(self, lon: object, lat: object) -> tuple:
        return (_gpkg_point(lon, lat),)

    def wkb(self, value: object) -> bytes | None:
        return _gpkg_wkb(value)

    def touched(self, con) -> None:
        con.execute("UPDATE gpkg_contents SET last_change = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
                    "WHERE lower(table_name) IN ('facilities', 'flows')")

    def exists(self) -> bool:
        if self.path.is_file():
            return True
        _tidy(self.path)  # what a process killed while creating the workspace left
        return False

    def data_key(self) -> str:
        stat = self.path.stat()
        return f"{self.path.resolve()}:{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}"

    def connect(self, path: Path | None = None) -> sqlite3.Connection:
        try:
            con = sqlite3.connect(path or self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise WorkspaceError(f"{self.name}: cannot be opened ({exc})") from None
        _gpkg_functions(con)
        return con

    @contextlib.contextmanager
    def transaction(self, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        if not self.exists():
            raise _NotStarted(f"{self.name}: the workspace has not been started")
        self._prepare()
        con = self.connect()
        try:
            con.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            yield con
            con.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if con.in_transaction:
                con.execute("ROLLBACK")
            if "locked" in str(exc) or "busy" in str(exc):
                raise WorkspaceError(f"{self.name}: busy, another save took over {BUSY_TIMEOUT_S:g} s; "
                                     "try again") from None
            raise WorkspaceError(f"{self.name}: {exc}") from None
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
        finally:
            con.close()

    def _prepare(self) -> None:
        """Once per file: remove what a killed process left beside it, and add missing bookkeeping."""
        stat = self.path.stat()
        if self._ready == (stat.st_ino, stat.st_dev):
            return
        _tidy(self.path)
        con = self.connect()
        try:
            _drop_stale_journal(con, self.path)
            self.geometry_column = _gpkg_upgrade(con, self.name)
            self.wkb_sql = _quoted(self.geometry_column) if self.geometry_column else "NULL"
        except sqlite3.DatabaseError as exc:
            raise WorkspaceError(f"{self.name}: not a usable workspace GeoPackage ({exc})") from None
        finally:
            con.close()
        self._ready = (stat.st_ino, stat.st_dev)

    def create(self, start: Callable[[object], Change | None]) -> Change | None:
        """Build the GeoPackage under a temporary name, then link it into place unless one appeared meanwhile."""
        if self.exists():
            return None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _tidy(self.path)
        temporary = self.path.with_name(f".{self.path.stem}.new-{os.getpid()}-{secrets.token_hex(4)}.gpkg")
        try:
            _gpkg_layers(temporary)
            con = self.connect(temporary)
            try:
                con.execute("BEGIN IMMEDIATE")
                _gpkg_upgrade(con, self.name, locked=True)
                started = start(con)
                con.execute("COMMIT")
            finally:
                con.close()
            return started if _link_new(temporary, self.path) else None
        finally:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()


def _link_new(source: Path, target: Path) -> bool:
    """Give ``source`` the name ``target`` unless that exists; True when it did."""
    try:
        os.link(source, target)
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links: a rename, which could replace one made a moment ago
        if target.exists():
            return False
        os.replace(source, target)
    return True


#: Temporary files of a workspace named ``<stem>.gpkg``: this module's (with the pid that made them) and the
#: ones the whole-file saves of earlier versions made (``.<stem>-xxxxxxxx.gpkg``).
def _leftovers(path: Path) -> Iterator[Path]:
    stem = re.escape(path.stem)
    ours = re.compile(rf"\.{stem}\.new-(\d+)-[0-9a-f]+\.gpkg(-journal|-wal|-shm)?")
    older = re.compile(rf"\.{stem}-[a-z0-9_]{{8}}\.gpkg")
    with contextlib.suppress(OSError):
        for entry in path.parent.iterdir():
            found = ours.fullmatch(entry.name)
            if (found and not _alive(int(found.group(1)))) or older.fullmatch(entry.name):
                yield entry


def _drop_stale_journal(con: sqlite3.Connection, path: Path) -> None:
    """Remove a rollback journal a killed writer left that SQLite does not need.

    A hot journal (a half-written transaction) is rolled back by SQLite when the
    exclusive lock is taken; one that is not hot (the writer died before it
    held anything) SQLite ignores but leaves on disk. Under the exclusive lock
    no one else is writing, so a journal still there then is a leftover.
    """
    journal = path.with_name(path.name + "-journal")
    if not journal.exists():
        return
    con.execute("BEGIN EXCLUSIVE")
    try:
        with contextlib.suppress(FileNotFoundError):
            journal.unlink()
    finally:
        con.execute("COMMIT")


def _tidy(path: Path) -> None:
    for entry in list(_leftovers(path)):
        with contextlib.suppress(FileNotFoundError):
            entry.unlink()


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _gpkg_layers(path: Path) -> None:
    """An empty GeoPackage with the two layers in the workspace's columns, made by GDAL (metadata, spatial index)."""
    def columns(names: list[str]) -> dict[str, pd.Series]:
        return {c: pd.Series([], dtype=float if c in NUMBER_FIELDS else object) for c in names}

    facilities = gpd.GeoDataFrame(columns(FACILITY_FIELDS), geometry=gpd.GeoSeries([], crs=settings.WGS84))
    pyogrio.write_dataframe(facilities, path, layer="facilities", driver="GPKG", geometry_type="Point")
    pyogrio.write_dataframe(pd.DataFrame(columns(FLOW_FIELDS)), path, layer="flows", driver="GPKG")


def _gpkg_upgrade(con: sqlite3.Connection, name: str, *, locked: bool = False) -> str | None:
    """Add whatever the workspace lacks: bookkeeping tables, indexes, the columns of newer versions.

    Looked at without a lock; changed (rarely: a file of an older version or
    another tool) under ``BEGIN IMMEDIATE``. Returns the name of the
    facilities' geometry column (None when the layer has none).
    """
    def missing() -> list[str]:
        tables = {r[0].lower(): r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "facilities" not in tables or "flows" not in tables:
            raise WorkspaceError(f"{name}: not a workspace (a GeoPackage with layers facilities and flows)")
        todo = [t for t in (JOURNAL, VERSIONS, META, SYNERGIES, SYNERGY_VERSIONS) if t not in tables]
        for table, fields in (("facilities", FACILITY_FIELDS), ("flows", FLOW_FIELDS)):
            have = {r[1].lower() for r in con.execute(f"PRAGMA table_info({_quoted(tables[table])})")}
            todo += [f"{table}.{c}" for c in fields if c not in have]
        if JOURNAL in tables:
            have = {r[1].lower() for r in con.execute(f"PRAGMA table_info({JOURNAL})")}
            todo += [] if "kind" in have else [f"{JOURNAL}.kind"]
        return todo

    found = con.execute("SELECT column_name FROM gpkg_geometry_columns WHERE lower(table_name) = 'facilities'")
    geometry = (found.fetchone() or (None,))[0]
    if not missing():
        return geometry
    if not locked:
        con.execute("BEGIN IMMEDIATE")
    try:
        for item in missing():
            if item == JOURNAL:
                con.execute("CREATE TABLE " + _JOURNAL_DDL.format(serial="INTEGER PRIMARY KEY AUTOINCREMENT"))
                con.execute(f"CREATE INDEX {JOURNAL}_session ON {JOURNAL} (session, state)")
            elif item in _PLAIN_TABLES:
                con.execute("CREATE TABLE " + _PLAIN_TABLES[item])
            elif item == f"{JOURNAL}.kind":
                con.execute(f"ALTER TABLE {JOURNAL} ADD COLUMN {_KIND_COLUMN}")
            else:
                table, column = item.split(".")
                kind = "REAL" if column in NUMBER_FIELDS else "TEXT"
                con.execute(f"ALTER TABLE {table} ADD COLUMN {_quoted(column)} {kind}")
        con.execute("CREATE INDEX IF NOT EXISTS facilities_facility_id ON facilities (facility_id)")
        con.execute("CREATE INDEX IF NOT EXISTS flows_facility_id ON flows (facility_id)")
        if not locked:
            con.execute("COMMIT")
    except BaseException:
        if not locked and con.in_transaction:
            con.execute("ROLLBACK")
        raise
    return geometry


#: Bookkeeping tables other than the journal, by name: their definitions (the same in SQLite and PostgreSQL).
_PLAIN_TABLES = {VERSIONS: _VERSIONS_DDL, META: _META_DDL, SYNERGIES: _SYNERGIES_DDL,
                 SYNERGY_VERSIONS: _SYNERGY_VERSIONS_DDL}


# GeoPackage geometry: a header ("GP", version, flags, SRS id, optional envelope) before the WKB.
_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}


def _gpkg_point(lon: object, lat: object) -> bytes | None:
    """A GeoPackage point blob in EPSG:4326 (little-endian, no envelope, as GDAL writes points); None without a
    usable coordinate pair."""
    if not isinstance(lon, float) or not isinstance(lat, float) or not (math.isfinite(lon) and math.isfinite(lat)):
        return None
    return b"GP\x00\x01" + struct.pack("<i", 4326) + struct.pack("<BIdd", 1, 1, lon, lat)


def _gpkg_wkb(blob: object) -> bytes | None:
    """The WKB inside a GeoPackage geometry blob; None for none, an empty geometry, or what is not a blob."""
    if not isinstance(blob, bytes) or len(blob) < 8 or blob[:2] != b"GP":
        return None
    flags = blob[3]
    if flags & 0x10:
        return None
    return blob[8 + _ENVELOPE_BYTES.get((flags >> 1) & 0x07, 0):]


def _gpkg_bounds(blob: object) -> tuple[float, float, float, float] | None:
    wkb = _gpkg_wkb(blob)
    if wkb is None:
        return None
    try:
        geometry = shapely.from_wkb(wkb)
    except shapely.errors.GEOSException:
        return None
    if geometry is None or geometry.is_empty:
        return None
    minx, miny, maxx, maxy = geometry.bounds
    return minx, maxx, miny, maxy


def _gpkg_functions(con: sqlite3.Connection) -> None:
    """The SQL functions GDAL's spatial-index triggers call (SpatiaLite's names), for writing with plain sqlite3."""
    def part(index: int) -> Callable[[object], float | None]:
        def value(blob: object) -> float | None:
            bounds = _gpkg_bounds(blob)
            return None if bounds is None else bounds[index]
        return value

    con.create_function("ST_IsEmpty", 1, lambda blob: int(_gpkg_bounds(blob) is None), deterministic=True)
    for index, name in enumerate(("ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY")):
        con.create_function(name, 1, part(index), deterministic=True)


class _PostGIS(_Backend):
    """A PostgreSQL database with PostGIS, through psycopg."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.name = _safe_url(url)
        self.geometry_column = "geom"
        self.point_sql = "ST_SetSRID(ST_MakePoint(?::double precision, ?::double precision), 4326)"
        self.wkb_sql = 'ST_AsBinary("geom")'

    def q(self, sql: str) -> str:
        return sql.replace("%", "%%").replace("?", "%s")

    def many(self, con, sql: str, rows: list[tuple]) -> None:
        with con.cursor() as cursor:
            cursor.executemany(self.q(sql), rows)

    def point_params(self, lon: object, lat: object) -> tuple:
        usable = all(isinstance(v, float) and math.isfinite(v) for v in (lon, lat))
        return (lon, lat) if usable else (None, None)

    def wkb(self, value: object) -> bytes | None:
        return bytes(value) if value is not None else None

    def connect(self):
        psycopg = _psycopg()
        try:
            return psycopg.connect(self.url, connect_timeout=10)
        except psycopg.Error as exc:
            raise WorkspaceError(f"{self.name}: cannot connect ({_first_line(exc)})") from None

    def exists(self) -> bool:
        with contextlib.closing(self.connect()) as con:
            return con.execute("SELECT to_regclass('facilities') IS NOT NULL").fetchone()[0]

    def data_key(self) -> str:
        with self.transaction() as con:
            row = con.execute(self.q(f"SELECT value FROM {META} WHERE key = 'changes'")).fetchone()
        return f"{self.name}:{row[0] if row else 0}"

    @contextlib.contextmanager
    def transaction(self, *, write: bool = False):
        psycopg = _psycopg()
        self._prepare()
        con = self.connect()
        try:
            if write:
                con.execute(_PG_LOCK)
            else:
                con.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield con
            con.commit()
        except psycopg.DataError as exc:
            con.rollback()
            raise WorkspaceError(f"{self.name}: a value cannot be stored ({_first_line(exc)})") from None
        except BaseException:
            con.rollback()
            raise
        finally:
            con.close()

    def _prepare(self) -> None:
        """Once per database and process: check the bookkeeping is there and of this format, else add it."""
        if self.url in _PG_READY:
            return
        with contextlib.closing(self.connect()) as con:
            tables = con.execute(f"SELECT to_regclass('facilities') IS NOT NULL, to_regclass('{META}') IS NOT NULL")
            facilities, meta = tables.fetchone()
            if not facilities:
                raise _NotStarted(f"{self.name}: the workspace has not been started")
            row = con.execute(f"SELECT value FROM {META} WHERE key = 'format'").fetchone() if meta else None
            if row is None or row[0] != FORMAT:
                con.execute(_PG_LOCK)
                _pg_schema(con)
            con.commit()
        _PG_READY.add(self.url)

    def create(self, start: Callable[[object], Change | None]) -> Change | None:
        with contextlib.closing(self.connect()) as con:
            con.execute(_PG_LOCK)
            if con.execute("SELECT to_regclass('facilities') IS NOT NULL").fetchone()[0]:
                con.rollback()
                return None
            _pg_schema(con)
            started = start(con)
            con.commit()
        _PG_READY.add(self.url)
        return started


#: Serialises the writers of one workspace (one schema of a database), as BEGIN IMMEDIATE does in SQLite.
_PG_LOCK = "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.symbiosis_workspace'))"
#: Databases whose bookkeeping this process has checked.
_PG_READY: set[str] = set()


def _psycopg():
    try:
        import psycopg
    except ImportError:
        raise WorkspaceError("a PostgreSQL workspace needs the psycopg package (pip install -r requirements.txt)") \
            from None
    return psycopg


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _safe_url(url: str) -> str:
    """The URL without a password: ``postgresql://user@host:port/db``."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


def _pg_schema(con) -> None:
    """Create or complete the workspace's tables, indexes and change counter in PostgreSQL."""
    fac_columns = ", ".join(f"{_quoted(c)} {'double precision' if c in NUMBER_FIELDS else 'text'}"
                            for c in FACILITY_FIELDS)
    flow_columns = ", ".join(f"{_quoted(c)} {'double precision' if c in NUMBER_FIELDS else 'text'}"
                             for c in FLOW_FIELDS)
    try:
        con.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    except _psycopg().Error as exc:
        raise WorkspaceError(f"the database lacks PostGIS and it cannot be added here ({_first_line(exc)}); "
                             "ask its administrator to run CREATE EXTENSION postgis") from None
    con.execute(f"CREATE TABLE IF NOT EXISTS facilities (fid serial PRIMARY KEY, geom geometry(Point, 4326), "
                f"{fac_columns})")
    con.execute(f"CREATE TABLE IF NOT EXISTS flows (fid serial PRIMARY KEY, {flow_columns})")
    for table, fields in (("facilities", FACILITY_FIELDS), ("flows", FLOW_FIELDS)):
        for c in fields:
            kind = "double precision" if c in NUMBER_FIELDS else "text"
            con.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {_quoted(c)} {kind}")
    con.execute("CREATE INDEX IF NOT EXISTS facilities_geom_idx ON facilities USING gist (geom)")
    con.execute("CREATE INDEX IF NOT EXISTS facilities_facility_id_idx ON facilities (facility_id)")
    con.execute("CREATE INDEX IF NOT EXISTS flows_facility_id_idx ON flows (facility_id)")
    con.execute("CREATE TABLE IF NOT EXISTS " + _JOURNAL_DDL.format(serial="bigserial PRIMARY KEY"))
    con.execute(f"CREATE INDEX IF NOT EXISTS {JOURNAL}_session ON {JOURNAL} (session, state)")
    con.execute(f"ALTER TABLE {JOURNAL} ADD COLUMN IF NOT EXISTS {_KIND_COLUMN}")
    for ddl in _PLAIN_TABLES.values():
        con.execute("CREATE TABLE IF NOT EXISTS " + ddl)
    con.execute(f"INSERT INTO {META} (key, value) VALUES ('changes', '0') ON CONFLICT (key) DO NOTHING")
    # the schema is complete now: the format is this module's, whatever it was
    con.execute(f"INSERT INTO {META} (key, value) VALUES ('format', '{FORMAT}') "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value")
    con.execute(f"""CREATE OR REPLACE FUNCTION workspace_count_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN UPDATE {META} SET value = (value::bigint + 1)::text WHERE key = 'changes'; RETURN NULL; END $$""")
    for table in ("facilities", "flows"):
        con.execute(f"CREATE OR REPLACE TRIGGER {table}_count_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
                    f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION workspace_count_change()")
