"""Benchmark of the shared workspace (issue 15): several sessions editing at once, and saves killed midway.

1. Concurrent sessions: 2 and 10 processes (each its own Workspace object and
   connections, as separate app sessions or servers are) edit one workspace
   started from the bundled demo for a minute each: they add facilities, add
   flows to them, rename their own facilities and five facilities they all
   share (so stale edits happen), undo and redo. Each session keeps its own
   account of what its saved changes should have left; at the end the
   workspace is compared with it. Counted: edits lost (a saved change whose
   effect is missing, or a shared facility whose name is not the one the last
   saved change gave it), wrong-facility saves (a flow stored under another
   facility than the one it was added to), stale edits refused, and each
   save's latency (median and 95th percentile).
2. SIGKILL during saves: a process replaces the workspace's 100 facilities
   again and again, each round naming itself in them, and is killed at a
   random moment, 50 times. After each kill the workspace is opened again: it
   must hold one whole round, the last or the one before, pass SQLite's
   integrity check, and leave no temporary file beside it. Ten more kills land
   while a new GeoPackage workspace is being created.

Both back ends: the GeoPackage (SQLite, its default durable commits) and
PostgreSQL/PostGIS (a server started for the benchmark from Debian's packages
with its default fsync; skipped with the reason when they are missing).

Run: ``python -m bench.workspace [--seconds 60] [--sessions 2 10] [--kills 50]``.
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import signal
import sqlite3
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from geo.errors import EditConflict
from geo.workspace import FACILITY_FIELDS, FLOW_FIELDS, Author, Workspace

ROOT = Path(__file__).resolve().parent.parent
#: Facilities of the demo every session edits (their names are fought over).
SHARED = 5


@dataclass
class Account:
    """What one session's saved changes should have left, and how its saves went."""

    number: int
    own: dict[str, tuple[str, int]] = field(default_factory=dict)  # facility -> (name, flows)
    shared: list[tuple[int, str, str]] = field(default_factory=list)  # (version, facility, name it left)
    flows: dict[str, str] = field(default_factory=dict)  # flow tag -> facility it was added to
    latencies_ms: list[float] = field(default_factory=list)
    saved: int = 0
    refused: int = 0


def _demo() -> tuple[pd.DataFrame, pd.DataFrame]:
    from geo.dataset import load_dataset

    demo = load_dataset(ROOT / "data" / "demo" / "facilities.csv", ROOT / "data" / "demo" / "flows.csv")
    return demo.facilities.reindex(columns=FACILITY_FIELDS), demo.flows.reindex(columns=FLOW_FIELDS)


def _session(location: str, number: int, seconds: float, shared: list[str], results) -> None:
    """One editing session (a child process): random changes for ``seconds``; its account goes to ``results``."""
    rng = random.Random(number)
    ws = Workspace(location)
    me = Author(f"bench-{number}", f"session {number}")
    account = Account(number)
    done: list[tuple[str, str, tuple, tuple]] = []  # (kind, facility, before, after) of saved changes not undone
    undone: list[tuple[str, str, tuple, tuple]] = []
    serial = 0
    deadline = time.monotonic() + seconds

    def timed(call):
        start = time.perf_counter()
        try:
            return call(), True
        except EditConflict:
            return None, False
        finally:
            account.latencies_ms.append((time.perf_counter() - start) * 1000)

    while time.monotonic() < deadline:
        serial += 1
        mine = sorted(account.own)
        choice = rng.random()
        if choice < 0.25 or not mine:
            fid = f"S{number}-{serial}"
            row = {"facility_id": fid, "name": f"{fid} new", "lat": 60 + rng.random(), "lon": 24 + rng.random(),
                   "nace": "C17.12", "country": "FI", "source": "bench"}
            change, ok = timed(lambda: ws.add_facility(row, author=me))
            entry = ("own", fid, None, (row["name"], 0))
        elif choice < 0.45:
            fid = rng.choice(mine)
            tag = f"{me.session}:{serial}"
            flow = {"facility_id": fid, "direction": "supply", "resource": "heat.hot_water", "quantity": 100.0,
                    "unit": "MWh/yr", "description": tag, "confidential": "false"}
            change, ok = timed(lambda: ws.add_flow(flow, author=me))
            name, count = account.own[fid]
            entry = ("own", fid, (name, count), (name, count + 1))
            if ok:
                account.flows[tag] = fid
        elif choice < 0.65:
            fid = rng.choice(mine)
            record = ws.record(fid)
            name = f"{fid} renamed {serial}"
            change, ok = timed(lambda: ws.edit_facility(fid, {**record.facility, "name": name}, record.flows,
                                                       base_version=record.version, author=me))
            entry = ("own", fid, account.own[fid], (name, account.own[fid][1]))
        elif choice < 0.85:
            fid = rng.choice(shared)
            record = ws.record(fid)
            time.sleep(rng.random() * 0.02)  # a person reads the form before saving: others may save meanwhile
            name = f"shared by {number} at {serial}"
            change, ok = timed(lambda: ws.edit_facility(fid, {**record.facility, "name": name}, record.flows,
                                                       base_version=record.version, author=me))
            entry = ("shared", fid, (record.facility["name"],), (name,))
        elif choice < 0.95:
            if not done:
                continue
            change, ok = timed(lambda: ws.undo(author=me))
            if ok and change is not None:
                entry = done.pop()
                undone.append(entry)
                _settle(account, entry, entry[2], change.id)
            account.saved += ok
            account.refused += not ok
            continue
        else:
            if not undone:
                continue
            change, ok = timed(lambda: ws.redo(author=me))
            if ok and change is not None:
                entry = undone.pop()
                done.append(entry)
                _settle(account, entry, entry[3], change.id)
            account.saved += ok
            account.refused += not ok
            continue
        if ok and change is not None:
            account.saved += 1
            done.append(entry)
            undone.clear()
            _settle(account, entry, entry[3], change.id)
        elif not ok:
            account.refused += 1
    results.put(account)


def _settle(account: Account, entry: tuple, state: tuple | None, version: int) -> None:
    kind, fid = entry[0], entry[1]
    if kind == "own":
        if state is None:
            account.own.pop(fid, None)
        else:
            account.own[fid] = state
    else:
        account.shared.append((version, fid, state[0]))


def _concurrent(location: str, sessions: int, seconds: float) -> dict[str, float]:
    facilities, flows = _demo()
    ws = Workspace(location)
    ws.create(facilities, flows, source="the bundled demo")
    shared = facilities["facility_id"].head(SHARED).tolist()
    fork = multiprocessing.get_context("fork")
    results = fork.Queue()
    workers = [fork.Process(target=_session, args=(location, n, seconds, shared, results)) for n in range(sessions)]
    for worker in workers:
        worker.start()
    accounts = [results.get(timeout=seconds + 300) for _ in workers]
    for worker in workers:
        worker.join()
    stored = ws.read()
    names = dict(zip(stored.facilities["facility_id"], stored.facilities["name"]))
    counts = stored.flows["facility_id"].value_counts().to_dict()
    lost = 0
    for account in accounts:
        for fid, (name, n) in account.own.items():
            lost += names.get(fid) != name or counts.get(fid, 0) != n
        prefix = f"S{account.number}-"
        lost += sum(fid.startswith(prefix) and fid not in account.own for fid in names)  # one undone, yet there
    last: dict[str, tuple[int, str]] = {}
    for account in accounts:
        for version, fid, name in account.shared:
            if fid not in last or version > last[fid][0]:
                last[fid] = (version, name)
    lost += sum(names.get(fid) != name for fid, (_, name) in last.items())
    tagged = stored.flows[stored.flows["description"].astype(str).str.startswith("bench-")]
    expected = {tag: fid for account in accounts for tag, fid in account.flows.items()}
    wrong = int((tagged["facility_id"] != tagged["description"].map(expected)).sum())
    latencies = np.array([ms for account in accounts for ms in account.latencies_ms])
    return {"sessions": sessions, "saves": sum(a.saved for a in accounts), "refused": sum(a.refused for a in accounts),
            "lost": lost, "wrong": wrong, "median_ms": float(np.median(latencies)),
            "p95_ms": float(np.percentile(latencies, 95))}


def _rounds(location: str, started) -> None:
    ws = Workspace(location)
    for number in range(1, 10**6):
        started.value = number
        ws.save(_round(number), pd.DataFrame(columns=FLOW_FIELDS))


def _round(number: int) -> pd.DataFrame:
    return pd.DataFrame([{"facility_id": f"F{i:03d}", "name": f"round {number}", "lat": 60.0, "lon": 20 + i / 100,
                          "nace": "C17.12", "country": "FI"} for i in range(100)])


def _create(location: str) -> None:
    Workspace(location).create(_round(1).assign(notes="x" * 2000), pd.DataFrame(columns=FLOW_FIELDS))


def _intact(location: str, folder: Path | None, allowed: set[int] | None) -> bool:
    """Opened again, the workspace holds one whole round (one of ``allowed``; or, being created, none or a whole
    one), passes SQLite's integrity check, and nothing is left beside it."""
    ws = Workspace(location)
    if ws.exists():  # opening it removes what a killed process left
        rounds = set(ws.read().facilities["name"].str.split().str[1].astype(int))
        if len(rounds) != 1 or (allowed is not None and not rounds <= allowed):
            return False
        if ws.path is not None:
            with sqlite3.connect(ws.path) as con:
                if con.execute("PRAGMA integrity_check").fetchone() != ("ok",):
                    return False
    elif allowed is not None:
        return False
    return folder is None or sorted(p.name for p in folder.iterdir()) in ([], ["workspace.gpkg"])


def _kills(location: str, folder: Path | None, kills: int) -> tuple[int, int]:
    """Kill a saving process ``kills`` times; how many times the workspace was intact after, and of how many."""
    rng = random.Random(15)
    Workspace(location).save(_round(0), pd.DataFrame(columns=FLOW_FIELDS))
    fork = multiprocessing.get_context("fork")
    intact = 0
    for _ in range(kills):
        started = fork.Value("i", 0)
        child = fork.Process(target=_rounds, args=(location, started))
        child.start()
        deadline = time.monotonic() + 30
        while started.value < 2 and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(rng.random() * 0.3)
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        intact += _intact(location, folder, {started.value - 1, started.value})
    return intact, kills


def _creation_kills(folder: Path, kills: int) -> tuple[int, int]:
    rng = random.Random(16)
    intact = 0
    for _ in range(kills):
        for path in folder.iterdir():
            path.unlink()
        location = str(folder / "workspace.gpkg")
        child = multiprocessing.get_context("fork").Process(target=_create, args=(location,))
        child.start()
        time.sleep(rng.random() * 0.3)
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        intact += _intact(location, folder, None)
    return intact, kills


def _backends():
    """(name, function giving a new empty workspace location and its folder) per back end, or a reason."""
    def geopackage():
        folder = Path(tempfile.mkdtemp(prefix="bench-workspace-"))
        return str(folder / "workspace.gpkg"), folder

    yield "GeoPackage", geopackage, ""
    from tests import postgis_server

    why = postgis_server.missing()
    if why:
        yield "PostGIS", None, why
        return
    cluster = postgis_server.Cluster(durable=True)
    try:
        yield "PostGIS", lambda: (cluster.new_database(), None), ""
    finally:
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each concurrent run")
    parser.add_argument("--sessions", type=int, nargs="+", default=[2, 10], help="concurrent sessions per run")
    parser.add_argument("--kills", type=int, default=50, help="SIGKILLs during saves per back end")
    args = parser.parse_args()
    rows = []
    for name, new, why in _backends():
        if new is None:
            rows.append(f"| {name} | skipped: {why} | | | | |")
            continue
        for sessions in args.sessions:
            location, _ = new()
            r = _concurrent(location, sessions, args.seconds)
            rows.append(f"| {name} | {sessions} sessions, {args.seconds:g} s: {r['saves']:,} saves, {r['refused']:,} "
                        f"stale edits refused | {r['lost']} | {r['wrong']} | {r['median_ms']:.1f} ms | "
                        f"{r['p95_ms']:.1f} ms |")
        location, folder = new()
        intact, total = _kills(location, folder, args.kills)
        rows.append(f"| {name} | {total} SIGKILLs during saves: workspace opened at the old or the new state, intact "
                    f"and without temporary files | {total - intact} failed | | | |")
        if folder is not None:
            intact, total = _creation_kills(folder, max(args.kills // 5, 1))
            rows.append(f"| {name} | {total} SIGKILLs while the workspace is created: none or a whole one, no "
                        f"temporary files | {total - intact} failed | | | |")
    print("| back end | run | edits lost | wrong-facility saves | save latency, median | p95 |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
