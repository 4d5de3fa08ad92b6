"""A throw-away PostgreSQL server with PostGIS for the tests, started from Debian's packages.

``make postgis`` installs ``postgresql`` and ``postgresql-postgis``. The
server runs from a fresh data folder under the system's temporary folder,
listens only on a Unix socket in that folder (no TCP port), trusts local
connections, skips fsync (unless started ``durable``), and is stopped and removed when the test session
(or else the process) ends. PostgreSQL refuses to run as root, so as root it runs as the
``postgres`` user the package creates (else ``nobody``) through ``runuser``.

Each test gets a database of its own (:meth:`Cluster.new_database`), made
from ``template1``, where PostGIS is enabled once.
"""

from __future__ import annotations

import atexit
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

#: Why the PostGIS tests are skipped, when they are.
INSTALL_HINT = "run `make postgis` (Debian's postgresql and postgresql-postgis packages)"


def _bin_dir() -> Path | None:
    """The newest PostgreSQL server binaries Debian installed (``/usr/lib/postgresql/<version>/bin``), or PATH's."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    return versions[-1].parent if versions else None


def missing() -> str:
    """Why no PostGIS server can be started here ('' when one can)."""
    bindir = _bin_dir()
    if bindir is None or not (bindir / "initdb").exists():
        return f"PostgreSQL server binaries not found; {INSTALL_HINT}"
    version = bindir.parent.name
    if not list(Path("/usr/share/postgresql").glob(f"{version}/extension/postgis.control")):
        return f"PostGIS is not installed for PostgreSQL {version}; {INSTALL_HINT}"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "the psycopg package is missing (pip install -r requirements.txt)"
    return ""


class Cluster:
    """A running server: :attr:`folder` holds its data, log and socket."""

    def __init__(self, *, durable: bool = False) -> None:
        """Start a server; ``durable`` keeps PostgreSQL's default fsync and synchronous commit (for benchmarks)."""
        self.bindir = _bin_dir()
        self.folder = Path(tempfile.mkdtemp(prefix="symbiosis-pg-"))
        self.user = self._run_as()
        self._names = itertools.count(1)
        if self.user is not None:
            shutil.chown(self.folder, self.user)
        data = self.folder / "data"
        self._run(["initdb", "-D", str(data), "-A", "trust", "-U", "symbiosis", "--no-sync", "-E", "UTF8",
                   "--locale=C"])
        options = f"-k {self.folder} -c listen_addresses=''"
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off"
        self._run(["pg_ctl", "-D", str(data), "-o", options, "-l", str(self.folder / "server.log"), "-w", "start"])
        atexit.register(self.stop)
        self.execute("template1", "CREATE EXTENSION IF NOT EXISTS postgis")

    @staticmethod
    def _run_as() -> str | None:
        """The user to run the server as: None (ourselves) unless we are root."""
        if os.geteuid() != 0:
            return None
        for name in ("postgres", "nobody"):
            try:
                pwd.getpwnam(name)
            except KeyError:
                continue
            return name
        pytest.skip("running as root and no postgres or nobody user to run the PostgreSQL server as")
        return None

    def _run(self, command: list[str]) -> None:
        program = [str(self.bindir / command[0]), *command[1:]]
        if self.user is not None:
            program = ["runuser", "-u", self.user, "--", *program]
        done = subprocess.run(program, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            log = self.folder / "server.log"
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(command[:2])} failed: {done.stderr[-1500:]}{tail}")

    def url(self, database: str) -> str:
        return f"postgresql://symbiosis@/{database}?host={self.folder}"

    def execute(self, database: str, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as con:
            con.execute(sql)

    def new_database(self) -> str:
        """A new, empty database with PostGIS; its URL."""
        name = f"workspace_{next(self._names)}"
        self.execute("postgres", f"CREATE DATABASE {name} STRATEGY FILE_COPY")
        return self.url(name)

    def stop(self) -> None:
        if self.folder.exists():
            try:
                self._run(["pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop"])
            except RuntimeError:
                pass  # stopped already
            shutil.rmtree(self.folder, ignore_errors=True)


_cluster: Cluster | None = None


def stop() -> None:
    """Stop and remove this process's server, if one was started (tests/conftest.py, as the session ends).

    Also registered with atexit, but a pytest-xdist worker may be ended before its atexit handlers finish.
    """
    global _cluster
    if _cluster is not None:
        _cluster.stop()
        _cluster = None


def cluster() -> Cluster:
    """The server of this test process, started on first use; the test is skipped when none can be."""
    global _cluster
    why = missing()
    if why:
        pytest.skip(why)
    if _cluster is None:
        _cluster = Cluster()
    return _cluster
