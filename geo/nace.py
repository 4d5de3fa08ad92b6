"""NACE Rev. 2 codes with their titles, so that a facility's activity is picked by what it does.

The list (``data/knowledge/nace_rev2.csv``: divisions, groups and classes,
with their section letter and Eurostat's English title) is bundled with the
knowledge base; see its ``SOURCES.md``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

from geo import settings
from geo.errors import KnowledgeBaseError

__all__ = ["NACE_FILE", "nace_codes"]

NACE_FILE = "nace_rev2.csv"


def nace_codes(directory: str | Path | None = None) -> pd.DataFrame:
    """Every NACE Rev. 2 division, group and class, in code order.

    Parameters
    ----------
    directory : str or Path, optional
        Folder holding ``nace_rev2.csv``; :data:`geo.settings.KNOWLEDGE_DIR` by default.

    Returns
    -------
    DataFrame
        Indexed by ``code`` in the engine's normalised form (``35.30``), with
        ``section`` (``D``), ``level`` (``division``, ``group`` or ``class``),
        ``description`` (Eurostat's title) and ``label`` (``D35.30 Steam and
        air conditioning supply``), the text a list shows and a user searches.
        Read once per folder; treat it as read-only.

    Raises
    ------
    KnowledgeBaseError
        When the file is missing or lacks a column.
    """
    folder = Path(directory) if directory is not None else settings.KNOWLEDGE_DIR
    return _read(folder.resolve())


@lru_cache(maxsize=4)
def _read(folder: Path) -> pd.DataFrame:
    path = folder / NACE_FILE
    if not path.is_file():
        raise KnowledgeBaseError(f"{path}: knowledge base file missing")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"code", "section", "level", "description"} - set(table.columns)
    if missing:
        raise KnowledgeBaseError(f"{path}: columns {', '.join(sorted(missing))} missing")
    table["label"] = table["section"] + table["code"] + " " + table["description"]
    return table.set_index("code")
