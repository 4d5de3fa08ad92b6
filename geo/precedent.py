"""Plausibility of a link from documented real exchanges (precedent).

A link between two sectors is more credible when facilities of those sectors
have exchanged that resource somewhere before. ``data/knowledge/precedents.csv``
lists documented exchanges of industrial parks (park, supplier and receiver
NACE class, resource code, source). :func:`precedent_support` compares every
link with them and gives a part between 0 and 1 for the score, the weighted
number of parks with such an exchange, and the parks to name in the link's
sentence ("such links run at Kalundborg and Kwinana").

How closely a documented exchange fits a link:

- sectors: each side's NACE codes agree to the class (4 digits, weight 1.0),
  the group (3 digits, 0.8) or the division (2 digits, 0.6); the two sides'
  weights multiply;
- resource: the same code (1.0), or another code of the same group
  (:data:`GROUP_MATCH`, e.g. hot water where steam was documented).

A park counts once, with its best-fitting exchange; the part is
``1 - exp(-parks / PARKS_SCALE)``, so one park that fits exactly gives about
0.6 and three give about 0.95.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from geo import settings
from geo.errors import KnowledgeBaseError

__all__ = ["GROUP_MATCH", "PARKS_SCALE", "PRECEDENT_COLUMNS", "load_precedents", "precedent_support"]

#: Columns of ``precedents.csv``.
PRECEDENT_COLUMNS = ("park", "country", "supplier_nace", "receiver_nace", "resource", "exchange", "source")

#: Weight of a sector match by the number of NACE digits the two codes share
#: (0: different divisions, or an unknown code).
SECTOR_WEIGHTS = {4: 1.0, 3: 0.8, 2: 0.6, 0: 0.0}

#: Weight of a documented exchange of another resource of the same group.
GROUP_MATCH = 0.5

#: Parks (weighted) at which the precedent part reaches ``1 - 1/e``.
PARKS_SCALE = 1.0

#: A park is named in a link's sentence when its exchange fits at least this well.
NAMED_FIT = 0.5


@lru_cache(maxsize=4)
def load_precedents(path: str | Path | None = None) -> pd.DataFrame:
    """Read the documented exchanges (once per path; the frame is shared, so do not change it).

    Parameters
    ----------
    path : str or Path, optional
        A CSV with :data:`PRECEDENT_COLUMNS`; ``precedents.csv`` of the
        knowledge base folder by default.

    Returns
    -------
    DataFrame
        :data:`PRECEDENT_COLUMNS`, all text; an empty frame when the default
        file does not exist.
    """
    file = Path(path) if path is not None else settings.KNOWLEDGE_DIR / "precedents.csv"
    if path is None and not file.is_file():
        return pd.DataFrame(columns=list(PRECEDENT_COLUMNS))
    frame = pd.read_csv(file, dtype=str, keep_default_na=False)
    missing = [c for c in PRECEDENT_COLUMNS if c not in frame.columns]
    if missing:
        msg = f"{file}: columns {missing} missing (found: {', '.join(frame.columns)})"
        raise KnowledgeBaseError(msg)
    return frame[list(PRECEDENT_COLUMNS)]


def precedent_support(
    supplier_nace: pd.Series, receiver_nace: pd.Series, resource: pd.Series, precedents: pd.DataFrame
) -> pd.DataFrame:
    """How well documented exchanges support each link.

    Computed once per distinct (supplier NACE, receiver NACE, resource) and
    spread back to the links, so a large links table costs what its few
    hundred sector pairs cost.

    Parameters
    ----------
    supplier_nace, receiver_nace : Series
        Normalised NACE codes (``35.11`` or digits); empty when unknown.
    resource : Series
        Supplied resource code of each link (same index).
    precedents : DataFrame
        From :func:`load_precedents` (possibly a subset, e.g. leaving one park out).

    Returns
    -------
    DataFrame
        Index-aligned: ``precedent_parks`` (weighted number of parks, float),
        ``precedent_part`` (0..1) and ``precedent_at`` (the best-fitting
        parks, comma-separated, at most three; empty when none fits well).
    """
    # one key per distinct (supplier NACE, receiver NACE, resource), numbered before any text is worked on
    columns = [pd.Series(c).astype(object).fillna("").to_numpy(dtype=object)
               for c in (supplier_nace, receiver_nace, resource)]
    key = np.zeros(len(resource), dtype=np.int64)
    for column in columns:
        codes, uniques = pd.factorize(column)
        key = key * (len(uniques) + 1) + codes
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    texts = [pd.Series(c[first], dtype=object) for c in columns]
    unique = pd.DataFrame({"s": _digits(texts[0]), "d": _digits(texts[1]), "r": texts[2].astype(str)})
    parks, named = _support(unique, precedents)
    parks = np.asarray(parks, dtype=float)[inverse]
    part = 1.0 - np.exp(-parks / PARKS_SCALE)
    return pd.DataFrame(
        {"precedent_parks": np.round(parks, 2), "precedent_part": np.round(part, 3),
         "precedent_at": np.asarray(named, dtype=object)[inverse]},
        index=resource.index,
    )


def _support(keys: pd.DataFrame, precedents: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Weighted park count and named parks for each distinct key (vectorised cross comparison)."""
    n = len(keys)
    if n == 0 or precedents.empty:
        return np.zeros(n), np.full(n, "", dtype=object)
    p_s = _digits(precedents["supplier_nace"]).to_numpy(dtype=object)
    p_d = _digits(precedents["receiver_nace"]).to_numpy(dtype=object)
    p_r = precedents["resource"].to_numpy(dtype=object)
    p_park, park_codes = pd.factorize(precedents["park"])
    fit = (_sector_weight(keys["s"].to_numpy(dtype=object), p_s)
           * _sector_weight(keys["d"].to_numpy(dtype=object), p_d)
           * _resource_weight(keys["r"].to_numpy(dtype=object), p_r))
    # best fit per park: one column per park, the max over its exchanges
    best = np.zeros((n, len(park_codes)))
    for park in range(len(park_codes)):
        best[:, park] = fit[:, p_park == park].max(axis=1)
    parks = best.sum(axis=1)
    order = np.argsort(-best, axis=1, kind="stable")[:, :3]
    names = np.asarray(park_codes, dtype=object)
    named = np.array([
        ", ".join(names[j] for j in row if best[i, j] >= NAMED_FIT) for i, row in enumerate(order)
    ], dtype=object)
    return parks, named


def _digits(codes: pd.Series) -> pd.Series:
    """NACE codes as digits only: ``C35.11`` -> ``3511``."""
    return codes.fillna("").astype(str).str.replace(r"[^0-9]", "", regex=True)


def _sector_weight(link_codes: np.ndarray, precedent_codes: np.ndarray) -> np.ndarray:
    """Weight matrix (links x precedents) of the NACE digits both codes share."""
    shared = np.zeros((len(link_codes), len(precedent_codes)), dtype=int)
    for digits in (2, 3, 4):
        a = np.array([c[:digits] if len(c) >= digits else "#" for c in link_codes], dtype=object)
        b = np.array([c[:digits] if len(c) >= digits else "@" for c in precedent_codes], dtype=object)
        shared = np.where(a[:, None] == b[None, :], digits, shared)
    weight = np.full(shared.shape, SECTOR_WEIGHTS[0])
    for digits, w in SECTOR_WEIGHTS.items():
        weight[shared == digits] = w
    return weight


def _resource_weight(link_codes: np.ndarray, precedent_codes: np.ndarray) -> np.ndarray:
    same = link_codes[:, None] == precedent_codes[None, :]
    group = (np.array([c.split(".")[0] for c in link_codes], dtype=object)[:, None]
             == np.array([c.split(".")[0] for c in precedent_codes], dtype=object)[None, :])
    return np.where(same, 1.0, np.where(group, GROUP_MATCH, 0.0))
