"""Benchmark of large inputs (issue 18): 100,000 and 1,000,000 facilities through the command line.

Synthetic facilities (:func:`bench.synthetic.synthetic_facilities`: sectors
only, clustered around 38 industrial towns of the Baltic Sea Region) are
written to CSV, then each command runs in its own process, exactly as a user
types it: ``python -m geo validate`` and ``python -m geo match --infer``
(estimate mode: straight-line distances times the circuity factor, no road
network; sector profiles give the flows), with and without the regional
allocation. Wall time, CPU time and peak memory (the child's maximum resident
set, from ``os.wait4``) are measured from outside, so they include reading the
file and writing the links. CPU time is the steadier figure on a shared
machine: other work slows the wall clock, hardly the CPU seconds.

At 1,000,000 facilities the default maximum distances give billions of
candidate pairs, which the match refuses up front (``MAX_CANDIDATE_PAIRS``);
the run is measured as it is, and again with ``--max-km 5``.

Run: ``make bench`` (or ``python -m bench.large``; ``--sizes 100000`` for one
size). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SIZES = (100_000, 1_000_000)

#: A command that runs longer than this is stopped and reported as such.
TIMEOUT_S = 3 * 3600


@dataclass
class Run:
    """One command's outcome, measured from outside its process."""

    label: str
    command: str
    seconds: float
    cpu_seconds: float
    peak_mb: float
    exit_code: int
    links: str
    message: str


def _measure(label: str, argv: list[str], shown: str) -> Run:
    """Run ``argv`` in its own process; wall time and the child's peak resident memory."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen(argv, stdout=out, stderr=err)
        deadline = start + TIMEOUT_S
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                child.kill()
                pid, status, usage = os.wait4(child.pid, 0)
                break
            time.sleep(0.2)
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    return Run(label, shown, seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0, child.returncode,
               _links(stdout, stderr),
               _message(stderr, child.returncode))


def _links(stdout: str, stderr: str) -> str:
    """``kept of found`` from the command's own summary, or '' when it wrote none."""
    wrote = re.search(r"wrote (\d+) links", stdout)
    found = re.search(r"(\d+) links\s*$", stderr, flags=re.MULTILINE)
    if not wrote:
        return ""
    kept = int(wrote.group(1))
    return f"{kept:,} of {int(found.group(1)):,}" if found and int(found.group(1)) != kept else f"{kept:,}"


def _message(stderr: str, code: int) -> str:
    """The error line of a refused run; the note on what was left out of a pruned one."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    if code != 0:
        return errors[-1] if errors else (lines[-1] if lines else f"exit {code}")
    notes = [line for line in lines if "max_links" in line]
    return notes[-1] if notes else ""


def _machine() -> str:
    from bench.matching import _machine as machine

    return machine()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default=",".join(str(n) for n in SIZES),
                        help="numbers of facilities, comma-separated")
    parser.add_argument("--folder", type=Path, help="keep the generated files and outputs here")
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]

    from bench.synthetic import synthetic_facilities
    from geo.taxonomy import load_taxonomy

    taxonomy = load_taxonomy()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        runs = []
        for n in sizes:
            facilities = folder / f"facilities_{n}.csv"
            if not facilities.is_file():
                synthetic_facilities(n, taxonomy).to_csv(facilities, index=False)
            out = folder / f"links_{n}.csv"
            geo = [sys.executable, "-m", "geo"]
            match = ["match", "--facilities", str(facilities), "--infer", "--out", str(out)]
            cases = [
                ("validate", ["validate", str(facilities)]),
                ("match, no allocation", [*match, "--no-allocation"]),
                ("match", match),
            ]
            if n >= 1_000_000:  # the default distances are refused there: measure a shorter one too
                cases = [cases[0], ("match", match), ("match --max-km 5", [*match, "--max-km", "5"])]
            for label, argv in cases:
                shown = "python -m geo " + " ".join(a if not a.startswith(str(folder)) else Path(a).name for a in argv)
                run = _measure(f"{n:,} facilities: {label}", [*geo, *argv], shown)
                runs.append(run)
                print(f"{run.label}: {run.seconds:.0f} s ({run.cpu_seconds:.0f} s CPU), {run.peak_mb:,.0f} MB, "
                      f"exit {run.exit_code}", file=sys.stderr, flush=True)
    print(f"Machine: {_machine()}")
    print("Each command in its own process; wall time, CPU time and peak resident memory of that process.\n")
    print("| run | command | wall time (s) | CPU time (s) | peak memory (MB) | exit | links kept (of found) | message |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for r in runs:
        print(f"| {r.label} | `{r.command}` | {r.seconds:.0f} | {r.cpu_seconds:.0f} | {r.peak_mb:,.0f} | {r.exit_code} | "
              f"{r.links} | {r.message.replace('|', '/')} |")


if __name__ == "__main__":
    main()
