"""Shared fixtures: the tiny test knowledge base, file writers, real data paths."""

from __future__ import annotations

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


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Every test (and every CLI subprocess it starts) gets an empty road-graph cache of its own."""
    from geo import settings

    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setattr(settings, "CACHE_DIR", cache)
    monkeypatch.setenv("BSR_SYMBIOSIS_CACHE", str(cache))
    return cache
