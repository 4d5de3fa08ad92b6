"""Benchmark of many people on the map at once (issue 15): 20 concurrent browser sessions, errors and memory.

The app runs as ``streamlit run app.py`` (:func:`bench.app._server`) on a
GeoPackage workspace made from the bundled demo in a temporary folder. One
Debian Chromium, driven by Playwright, opens one browser context per session
(its own cookies and cache, so its own Streamlit session), every request to
anything but the app blocked. One Chromium with 20 contexts rather than 20
browsers: on two cores the browsers' own start-up and GPU processes would
take the time the server needs. The sessions arrive a few seconds apart, as
people following a link do, then all work at once, each doing the same round
of map work:

- open the map (until the links are drawn and the sidebar's filters follow);
- filter by a country (until the caption's counts change);
- click a facility on the map (until its panel shows);
- filter by a maximum distance, then find a facility by a part of its name;
- open the Data page from the sidebar; every fourth session also adds a
  facility there and undoes it (so every session's data changes meanwhile);
- open the presentation (``?present=1``) and step through three links.

An action's latency runs from its first step until what it waits for shows
and the page's script run is over. Counted as errors: uncaught exceptions in
the page or the map's frame, console errors of the app's own pages, HTTP
responses of 500 or more, Streamlit error elements (an error box or an
exception), lost connections to the server, and actions not finished within
:data:`TIMEOUT_MS` (the session then gives up the rest of its round). Requests to anything but the app are blocked and not
counted. The server's resident memory is read from ``/proc`` when it answers,
after one session has warmed its caches, when every session has done its work
(all still open), and after they close and Streamlit lets go of them: it
keeps a disconnected session for ``server.disconnectedSessionTTL`` (120 s)
and drops it when another session comes, so the bench waits that long and
then opens one more short session. A second round of the same sessions on the
same server tells growth that levels off (caches filling) from a leak. The
server runs without Streamlit's file watcher, as a deployment would, so that
an edit to the checkout during the run does not reload modules under the
sessions (see :func:`main`).

Run: ``python -m bench.sessions [--sessions 20] [--loops 1] [--rounds 2] [--arrive-every 3] [--settle 130]``.
Prints Markdown tables; errors are also written to stderr as they happen.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.app import _VISIBLE_MARKER, _server
from bench.matching import _machine
from bench.workspace import _demo
from geo.workspace import Workspace

CHROMIUM = "/usr/bin/chromium"
#: Streamlit's ``server.fileWatcherType`` as an environment variable.
WATCHER_ENV = "STREAMLIT_SERVER_FILE_WATCHER_TYPE"
#: Every ``EDITING``-th session also adds a facility on the Data page and undoes it.
EDITING = 4
#: Links stepped through in the presentation, per round of work.
STEPS = 3
#: Longest wait for one action (ms); past it the action counts as an error and the session gives up its round.
TIMEOUT_MS = 120_000
#: Countries filtered by, in turn (the demo has facilities in each).
COUNTRIES = ("FI", "SE", "DK", "NO", "EE", "PL")
#: Parts of facility names searched for, in turn.
SEARCHES = ("Kokkola", "Tornio", "Pori", "Kalundborg", "Nokia", "Turku")
MAP_FRAME = "iframe[title='streamlit_folium.st_folium']"
#: The page has finished its script run.
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"

#: Init script of every page: records, as they appear, Streamlit's error boxes and exceptions, and a
#: connection to the server lost after it was made; the bench collects them after each action.
_WATCH = """(() => {
    if (window !== window.top) { return; }
    window.__benchProblems = [];
    const seen = new WeakSet();
    let connected = false;
    const look = () => {
        for (const el of document.querySelectorAll("[data-testid='stAlertContentError'], [data-testid='stException']")) {
            if (!seen.has(el)) {
                seen.add(el);
                window.__benchProblems.push(["Streamlit error element", (el.innerText || "").slice(0, 300)]);
            }
        }
        const app = document.querySelector("[data-testid='stApp']");
        const state = app && app.getAttribute("data-test-connection-state");
        if (state === "CONNECTED") { connected = true; }
        else if (connected && state) {
            connected = false;
            window.__benchProblems.push(["connection to the server lost", state]);
        }
    };
    new MutationObserver(look).observe(document, {subtree: true, childList: true, attributes: true,
                                                  attributeFilter: ["data-test-connection-state"]});
})();"""

@dataclass
class Tally:
    """What the sessions did and what went wrong."""

    latencies_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    problems: list[tuple[int, str, str]] = field(default_factory=list)  # (session, kind, detail)
    failed_local: int = 0  # requests to the app that failed (navigation cancels some: not an error)

    abandoned: int = 0  # rounds of work a session gave up after an action that did not finish

    def note(self, session: int, kind: str, detail: str) -> None:
        """Record a problem (and write it to stderr as it happens; the tables go to stdout)."""
        self.problems.append((session, kind, detail))
        print(f"session {session}: {kind}: {detail}", file=sys.stderr, flush=True)

    @property
    def actions(self) -> int:
        return sum(len(v) for v in self.latencies_ms.values())


def _local(url: str) -> bool:
    return url.startswith(("http://127.0.0.1", "http://localhost", "data:", "blob:", "about:"))


async def _only_local(route) -> None:
    if _local(route.request.url):
        await route.continue_()
    else:
        await route.abort()


def _listen(page, number: int, tally: Tally) -> None:
    """Count the page's uncaught exceptions, console errors of its own pages and 5xx responses."""
    page.on("pageerror", lambda exc: tally.note(number, "page exception", str(exc)[:300]))

    def console(message) -> None:
        if message.type == "error" and _local(message.location.get("url") or "http://127.0.0.1"):
            tally.note(number, "console error", message.text[:300])

    def response(reply) -> None:
        if reply.status >= 500:
            tally.note(number, "HTTP 5xx", f"{reply.status} {reply.url}")

    def failed(request) -> None:
        if _local(request.url):
            tally.failed_local += 1

    page.on("console", console)
    page.on("response", response)
    page.on("requestfailed", failed)


async def _collect(page, number: int, tally: Tally) -> None:
    """Move what the page's watcher recorded into the tally."""
    try:
        found = await page.evaluate("() => { const p = window.__benchProblems || []; window.__benchProblems = []; "
                                    "return p; }")
    except Exception as exc:  # noqa: BLE001 - a page gone or navigating is itself worth reporting
        found = [["page not readable", str(exc).splitlines()[0]]]
    for kind, detail in found:
        tally.note(number, kind, detail)


async def _act(page, number: int, tally: Tally, kind: str, steps) -> bool:
    """One action: its steps, then until the page's script run is over; its latency, or a timeout. Whether it
    finished."""
    start = time.perf_counter()
    try:
        await steps()
        await page.wait_for_selector(IDLE, timeout=TIMEOUT_MS)
    except Exception as exc:  # noqa: BLE001 - Playwright's timeout and any other failure of the action
        tally.note(number, "action not finished", f"{kind}: {str(exc).splitlines()[0][:200]}")
        finished = False
    else:
        tally.latencies_ms[kind].append((time.perf_counter() - start) * 1000)
        finished = True
    await _collect(page, number, tally)
    return finished


def _in_url(name: str, value: str) -> re.Pattern:
    """The address once it holds ``name=value`` (the map page writes its filters there when it runs with them)."""
    return re.compile(rf"[?&]{name}={re.escape(value)}(&|$)")


async def _open_map(page, url: str) -> None:
    await page.goto(url, timeout=TIMEOUT_MS)
    frame = page.frame_locator(MAP_FRAME)
    await frame.locator("path.leaflet-interactive").first.wait_for(state="attached", timeout=TIMEOUT_MS)
    await page.locator("[data-testid='stSlider']").wait_for(timeout=TIMEOUT_MS)  # the filters follow the map


async def _filter(page, country: str) -> None:
    box = page.locator("[data-testid='stSidebar']").get_by_label("Country")
    await box.click(timeout=TIMEOUT_MS)
    await page.keyboard.type(country)
    await page.get_by_role("option", name=country, exact=True).click(timeout=TIMEOUT_MS)
    await page.keyboard.press("Escape")
    await page.wait_for_url(_in_url("country", country), timeout=TIMEOUT_MS)


async def _max_distance(page, km: int) -> None:
    field_ = page.get_by_label("Maximum distance, km (0 = no limit)")
    await field_.fill(str(km), timeout=TIMEOUT_MS)
    await field_.press("Enter")
    await page.wait_for_url(_in_url("max_km", str(km)), timeout=TIMEOUT_MS)


async def _click_facility(page) -> None:
    frame = next(f for f in page.frames if "streamlit_folium" in f.url)
    await page.wait_for_timeout(600)  # the map fits itself to the filtered facilities
    spot = await frame.evaluate(_VISIBLE_MARKER)
    if spot is None:
        raise RuntimeError("no facility marker visible on the map")
    box = await page.locator(MAP_FRAME).bounding_box()
    await page.mouse.click(box["x"] + spot[0], box["y"] + spot[1])
    await page.get_by_text("Ranked partners").wait_for(timeout=TIMEOUT_MS)


async def _search(page, text: str) -> None:
    field_ = page.get_by_label("Find a facility")
    await field_.fill(text, timeout=TIMEOUT_MS)
    await field_.press("Enter")
    await page.wait_for_url(_in_url("q", text), timeout=TIMEOUT_MS)


async def _open_data(page) -> None:
    await page.locator("[data-testid='stSidebarNav']").get_by_text("Data", exact=True).click(timeout=TIMEOUT_MS)
    await page.get_by_role("button", name="Add facility").wait_for(timeout=TIMEOUT_MS)


async def _add_facility(page, fid: str) -> None:
    for label, text in (("Id (unique)", fid), ("Name", f"Bench heat pump {fid}"), ("Latitude", "60.45"),
                        ("Longitude", "22.27"), ("Country (2 letters)", "FI")):
        await page.get_by_label(label, exact=True).fill(text, timeout=TIMEOUT_MS)
    await page.get_by_label("NACE activity").click(timeout=TIMEOUT_MS)
    await page.keyboard.type("35.30")
    await page.get_by_role("option", name="D35.30 Steam and air conditioning supply").click(timeout=TIMEOUT_MS)
    await page.get_by_role("button", name="Add facility").click(timeout=TIMEOUT_MS)
    await page.get_by_text(f"Saved: added facility '{fid}'").wait_for(timeout=TIMEOUT_MS)


async def _undo(page) -> None:
    await page.get_by_role("button", name="Undo", exact=True).click(timeout=TIMEOUT_MS)
    await page.get_by_text(re.compile("^Undone: ")).wait_for(timeout=TIMEOUT_MS)


async def _open_presentation(page, url: str) -> None:
    await page.goto(f"{url}?present=1", timeout=TIMEOUT_MS)
    await page.get_by_role("heading", name=re.compile(r"^Link 1 of \d+")).wait_for(timeout=TIMEOUT_MS)
    frame = page.frame_locator(MAP_FRAME)
    await frame.locator("path.leaflet-interactive").first.wait_for(state="attached", timeout=TIMEOUT_MS)


async def _next_link(page, step: int) -> None:
    await page.get_by_role("button", name="Next", exact=True).click(timeout=TIMEOUT_MS)
    await page.get_by_role("heading", name=re.compile(rf"^Link {step} of \d+")).wait_for(timeout=TIMEOUT_MS)


async def _work(page, url: str, number: int, loop: int, tag: str, tally: Tally) -> None:
    """One round of a session's map work; an action that does not finish ends it (the session gives up, as a
    person would, and the next round starts afresh)."""
    turn = number + loop
    steps = [("open the map", lambda: _open_map(page, url)),
             ("filter by country", lambda: _filter(page, COUNTRIES[turn % len(COUNTRIES)])),
             ("click a facility", lambda: _click_facility(page)),
             ("filter by distance", lambda: _max_distance(page, 50 + 25 * (turn % 4))),
             ("find a facility", lambda: _search(page, SEARCHES[turn % len(SEARCHES)][:5])),
             ("open the Data page", lambda: _open_data(page))]
    if number % EDITING == 0:
        steps += [("add a facility", lambda: _add_facility(page, f"BENCH-{tag}-{number}-{loop}")),
                  ("undo it", lambda: _undo(page))]
    steps.append(("open the presentation", lambda: _open_presentation(page, url)))
    steps += [("next link", lambda step=step: _next_link(page, step)) for step in range(2, STEPS + 2)]
    for kind, action in steps:
        if not await _act(page, number, tally, kind, action):
            tally.abandoned += 1
            return


async def _session(browser, url: str, number: int, loops: int, tag: str, tally: Tally, *, arrive_s: float):
    """A browser context (one Streamlit session at a time) that arrives after ``arrive_s`` and does ``loops``
    rounds of work; returns it, open."""
    await asyncio.sleep(arrive_s)
    context = await browser.new_context(viewport={"width": 1400, "height": 950})
    await context.route("**/*", _only_local)
    await context.add_init_script(_WATCH)
    page = await context.new_page()
    _listen(page, number, tally)
    for loop in range(loops):
        await _work(page, url, number, loop, tag, tally)
    print(f"session {number} done", file=sys.stderr, flush=True)
    return context


def rss_mb(pid: int) -> float:
    """Resident memory of a process (MB), from ``/proc``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _browser_mb() -> float:
    """Resident memory of the browser: every process this one started but the server (MB; the pages that
    Chromium's processes share are counted in each, so this is an upper bound)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    mine, grew = {os.getpid()}, True
    while grew:
        found = {pid for pid, parent in parents.items() if parent in mine} - mine
        mine |= found
        grew = bool(found)
    total = 0.0
    for pid in mine - {os.getpid()}:
        try:
            if "streamlit" not in Path(f"/proc/{pid}/cmdline").read_text():
                total += rss_mb(pid)
        except OSError:
            continue
    return total


async def _sampler(pid: int, peaks: dict[str, float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peaks["server"] = max(peaks.get("server", 0.0), rss_mb(pid))
        peaks["browser"] = max(peaks.get("browser", 0.0), _browser_mb())
        try:
            await asyncio.wait_for(stop.wait(), timeout=1.0)
        except asyncio.TimeoutError:
            pass


async def _short_visit(browser, url: str, tally: Tally) -> None:
    """One session that opens the map and leaves (warms the caches; makes Streamlit drop expired sessions)."""
    context = await browser.new_context(viewport={"width": 1400, "height": 950})
    await context.route("**/*", _only_local)
    await context.add_init_script(_WATCH)
    page = await context.new_page()
    _listen(page, -1, tally)
    await _act(page, -1, tally, "warm-up", lambda: _open_map(page, url))
    await context.close()


@dataclass
class Round:
    """One coming of the sessions: what they did, and the server's memory when they were done and after."""

    tally: Tally
    wall_s: float
    load: tuple[float, float]  # the machine's load average (1 min) when the round started and ended
    done_mb: float  # every session has done its work, all still open
    closed_mb: float  # the sessions closed, Streamlit has let go of them, one short visit since


async def _round(browser, url: str, pid: int, number: int, *, sessions: int, loops: int, arrive_every_s: float,
                 settle_s: float) -> Round:
    tally = Tally()
    load = os.getloadavg()[0]
    start = time.perf_counter()
    contexts = await asyncio.gather(*(_session(browser, url, n, loops, f"{number}", tally, arrive_s=n * arrive_every_s)
                                      for n in range(sessions)))
    wall_s = time.perf_counter() - start
    done_mb = rss_mb(pid)
    load = (load, os.getloadavg()[0])
    for context in contexts:
        await context.close()
    await asyncio.sleep(settle_s)  # Streamlit keeps a disconnected session (server.disconnectedSessionTTL)
    await _short_visit(browser, url, tally)  # a new session makes it drop the expired ones
    await asyncio.sleep(5)
    return Round(tally, wall_s, load, done_mb, rss_mb(pid))


async def _run(url: str, pid: int, *, sessions: int, loops: int, rounds: int, arrive_every_s: float,
               settle_s: float) -> dict:
    """The warm-up visit, then the rounds; the server's memory and the peaks of the server and the browser."""
    from playwright.async_api import async_playwright

    memory = {"start": rss_mb(pid)}
    peaks: dict[str, float] = {}
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sampler(pid, peaks, stop))
    warm = Tally()
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        await _short_visit(browser, url, warm)
        memory["warm"] = rss_mb(pid)
        done = [await _round(browser, url, pid, number, sessions=sessions, loops=loops, arrive_every_s=arrive_every_s,
                             settle_s=settle_s) for number in range(rounds)]
        await browser.close()
    stop.set()
    await sampler
    return {"memory": memory, "peaks": peaks, "rounds": done, "warm": warm}


#: Kinds of error, as the tables name them.
ERRORS = ("page exception", "console error", "HTTP 5xx", "Streamlit error element", "connection to the server lost",
          "action not finished", "page not readable")


def _seconds(values_ms, q: float) -> str:
    return f"{np.percentile(values_ms, q) / 1000:.2f} s" if len(values_ms) else "-"


def _report(run: dict, *, sessions: int, loops: int, arrive_every_s: float, settle_s: float) -> str:
    """The Markdown tables: per round, then per action."""
    memory, peaks, rounds = run["memory"], run["peaks"], run["rounds"]
    lines = ["| measurement | " + " | ".join(f"round {i + 1}" for i in range(len(rounds))) + " |",
             "|---|" + "---:|" * len(rounds)]

    def row(label: str, values) -> None:
        lines.append(f"| {label} | " + " | ".join(values) + " |")

    row(f"browser sessions at once (contexts of one Chromium, one arriving every {arrive_every_s:g} s)",
        [f"{sessions}"] * len(rounds))
    row("actions done (each session: its round of map work"
        + (f" {loops} times" if loops != 1 else "") + ")", [f"{r.tally.actions:,}" for r in rounds])
    row("wall time", [f"{r.wall_s:.0f} s" for r in rounds])
    row("machine's load average (1 min) at start and end", [f"{r.load[0]:.1f}, {r.load[1]:.1f}" for r in rounds])
    row("**errors**", [f"**{len(r.tally.problems)}**" for r in rounds])
    for kind in ERRORS:
        row(f"of which {kind}", [f"{sum(p[1] == kind for p in r.tally.problems)}" for r in rounds])
    row("rounds of work given up after an action not finished", [f"{r.tally.abandoned}" for r in rounds])
    row("requests to the app cut short by a navigation (not errors)", [f"{r.tally.failed_local}" for r in rounds])
    every = [[ms for values in r.tally.latencies_ms.values() for ms in values] for r in rounds]
    row("action latency, median", [_seconds(v, 50) for v in every])
    row("action latency, p95", [_seconds(v, 95) for v in every])
    row("server memory (RSS), every session done, all open", [f"{r.done_mb:,.0f} MB" for r in rounds])
    row(f"server memory (RSS), sessions closed (+{settle_s:g} s and one short visit)",
        [f"{r.closed_mb:,.0f} MB" for r in rounds])
    lines += ["", f"Server memory (RSS): {memory['start']:,.0f} MB at start, {memory['warm']:,.0f} MB after one "
                  f"session's warm-up, {peaks.get('server', float('nan')):,.0f} MB at its peak. The browser (Chromium "
                  f"and Playwright's driver) peaked at {peaks.get('browser', float('nan')):,.0f} MB (the pages its "
                  f"processes share counted in each).", "",
              "| action | done | median | p95 |", "|---|---:|---:|---:|"]
    kinds = list(dict.fromkeys(k for r in rounds for k in r.tally.latencies_ms))
    for kind in kinds:
        values = [ms for r in rounds for ms in r.tally.latencies_ms.get(kind, [])]
        lines.append(f"| {kind} | {len(values):,} | {_seconds(values, 50)} | {_seconds(values, 95)} |")
    problems = run["warm"].problems + [p for r in rounds for p in r.tally.problems]
    if problems:
        lines += ["", "Errors (the first 20):", ""]
        lines += [f"- session {number}: {kind}: {detail}" for number, kind, detail in problems[:20]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20, help="browser sessions at once")
    parser.add_argument("--loops", type=int, default=1, help="times each session does its round of map work")
    parser.add_argument("--rounds", type=int, default=2, help="times the sessions come, to the same server")
    parser.add_argument("--arrive-every", type=float, default=3.0,
                        help="seconds between two sessions' arrivals (then all work at once)")
    parser.add_argument("--settle", type=float, default=130.0,
                        help="seconds waited after the sessions close (Streamlit keeps them 120 s)")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"Skipped: {CHROMIUM} is missing (make browser installs it).")
        return
    # No file watcher in the server (it inherits this environment): on a change to a file of the checkout,
    # Streamlit drops the changed modules from sys.modules while other sessions' runs are importing them, and
    # with many sessions some runs then fail (KeyError: 'geo.privacy' from importlib, PicklingError "not the
    # same object as geo.schema.Dataset"): a deployment's behaviour, not the app's, is what is measured here.
    os.environ.setdefault(WATCHER_ENV, "none")
    with tempfile.TemporaryDirectory(prefix="bench-sessions-") as folder:
        workspace = Workspace(Path(folder) / "workspace.gpkg")
        workspace.create(*_demo(), source="the bundled demo")
        server, url = _server(workspace.path)
        try:
            run = asyncio.run(_run(url, server.pid, sessions=args.sessions, loops=args.loops, rounds=args.rounds,
                                   arrive_every_s=args.arrive_every, settle_s=args.settle))
        finally:
            server.terminate()
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    print(f"Machine: {_machine()}; the server and the browser share it. Server file watcher: "
          f"{os.environ[WATCHER_ENV]}.")
    print()
    print(_report(run, sessions=args.sessions, loops=args.loops, arrive_every_s=args.arrive_every,
                  settle_s=args.settle))


if __name__ == "__main__":
    main()
