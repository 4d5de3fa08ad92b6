"""Shared fixtures: the tiny test knowledge base, file writers, real data paths; and how make test's
pytest-xdist processes share out the tests."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pandas as pd
import pytest

from geo.taxonomy import load_taxonomy

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FIXTURE_KB = HERE / "fixtures" / "knowledge"
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def tax():
    """The small, hand-checkable knowledge base of tests/fixtures/knowledge."""
    return load_taxonomy(FIXTURE_KB)


@pytest.fixture(scope="session")
def bundled():
    """The knowledge base shipped in data/knowledge."""
    return load_taxonomy()


@pytest.fixture
def write(tmp_path):
    """Write text to a file in tmp_path and return its path: write(name, text, encoding=...)."""

    def _write(name: str, text: str, encoding: str = "utf-8") -> Path:
        path = tmp_path / name
        path.write_bytes(text.encode(encoding))
        return path

    return _write


def declared_flows(*rows) -> pd.DataFrame:
    """Validated-looking declared flows from (facility_id, direction, resource, quantity, unit) tuples."""
    frame = pd.DataFrame(rows, columns=["facility_id", "direction", "resource", "quantity", "unit"])
    frame["flow_id"] = [f"row {i + 2}" for i in range(len(frame))]
    frame[["ewc", "description"]] = ""
    frame["max_distance_km"] = float("nan")
    frame["confidential"] = False
    frame["basis"] = "declared"
    return frame


def shared(*parts: str) -> Path:
    """A path under ../shared/data, skipping the test when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not available (../shared is only beside a developer's checkout)")
    return path


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop the PostGIS server the session started, if any (see tests/postgis_server.py)."""
    from tests import postgis_server

    postgis_server.stop()


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Every test (and every CLI subprocess it starts) gets an empty road-graph cache of its own."""
    from geo import settings

    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setattr(settings, "CACHE_DIR", cache)
    monkeypatch.setenv("BSR_SYMBIOSIS_CACHE", str(cache))
    return cache


# -- pytest-xdist (make test runs ``-n 2 --dist loadgroup``) ---------------------------------------------------
#
# The groups: each module's tests stay on one worker, so its module-scoped set-up (a road network built, the
# demo matched, an app server started) is made once. The modules that start the app with ``streamlit run`` or
# drive Chromium form one group, run one module after another and first: two app servers and two browsers
# at once on a two-core machine would miss their waits, and the browser tests are the longest unit of work.
# The modules using the PostGIS server form one group, so one server is started. xdist's own loadgroup reads
# ``xdist_group`` marks by renaming node ids, which pytest 9 no longer allows, so the groups are given to
# xdist's module-by-module scheduler instead, read from each module's source.

#: Groups run first, in this order; the modules of no group follow in collection order.
FIRST_GROUPS = ("browser", "postgis")
#: Niceness of a worker while it runs tests outside the browser group (see pytest_runtest_setup).
NICE_OUTSIDE_BROWSER = 10


@functools.cache
def _group_of_module(path: Path) -> str | None:
    """'browser' or 'postgis' for a test module of those groups, else None."""
    source = path.read_text(encoding="utf-8")
    if "playwright" in source or "_start_app" in source:
        return "browser"
    if "postgis_server" in source:
        return "postgis"
    return None


def _group(rootpath: Path, nodeid: str) -> str:
    """The group of a test: 'browser', 'postgis', or its module's part of the node id."""
    module = nodeid.split("::", 1)[0]
    return _group_of_module(rootpath / module) or module


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In an xdist worker, put the browser and PostGIS groups first (a stable sort: modules keep their order)."""
    if not hasattr(config, "workerinput"):
        return
    rank = {name: i for i, name in enumerate(FIRST_GROUPS)}
    items.sort(key=lambda item: rank.get(_group(config.rootpath, item.nodeid), len(rank)))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """In an xdist worker, run the browser group at normal priority and every other test below it.

    The other worker's computing (and the processes it starts) then takes the processor only when the app
    server and Chromium of the browser tests leave it idle, so their waits see the speed of a quiet machine.
    """
    if not hasattr(item.config, "workerinput"):
        return
    niceness = 0 if _group(item.config.rootpath, item.nodeid) == "browser" else NICE_OUTSIDE_BROWSER
    if os.getpriority(os.PRIO_PROCESS, 0) != niceness:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, niceness)
        except PermissionError:  # only root may raise a priority again; the order of the groups avoids needing it
            pass


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``--dist loadgroup``: xdist's module-by-module scheduler, a whole group being one unit of work."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _group(config.rootpath, nodeid)

    config.option.loadscopereorder = False  # units in the workers' order: the longest group first
    return GroupScheduling(config, log)
