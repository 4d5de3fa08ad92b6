"""Texts of the app and the exports in English, Finnish and Swedish, from a small catalogue.

Every text a user reads (labels, messages, legends, export headers) has a key
in ``data/i18n/messages.csv``: one row per key, one column per language
(``key,en,fi,sv``). Resource names and groups are in ``data/i18n/resources.csv``
(``code,fi,sv``; the English names are the knowledge base's labels). Adding a
language is adding a column to both files, headed by its code (``et``, ``lv``,
``lt``, ``pl``, ``de``, ``da``, ``no``); its name in the language selector is
its own ``language.name`` row.

Texts are Python format strings with named placeholders (``{count}``), the
same names in every language. :func:`t` falls back to English where a text is
missing (an empty cell, or a language without a column), so a half-translated
column can ship. A key that is not in the catalogue at all is a programming
error and raises ``KeyError``.

Numbers are written as the language writes them (:func:`number`): ``12,345.6``
in English, ``12 345,6`` in Finnish and Swedish.
"""

from __future__ import annotations

import csv
import functools
import string
from pathlib import Path

import numpy as np
import pandas as pd

from geo import settings

__all__ = ["CATALOGUE", "DEFAULT", "RESOURCE_NAMES", "language", "language_name", "languages", "number",
           "placeholders", "resource_name", "resource_names", "section_name", "t", "texts", "word"]

#: The catalogue of texts: a key column, then one column per language.
CATALOGUE = settings.KNOWLEDGE_DIR.parent / "i18n" / "messages.csv"
#: Names of resources and resource groups, by code: one column per language but English (the knowledge base's).
RESOURCE_NAMES = settings.KNOWLEDGE_DIR.parent / "i18n" / "resources.csv"
#: The language every text has, and the one used for a missing text or an unknown language.
DEFAULT = "en"


@functools.lru_cache(maxsize=4)
def texts(path: Path | None = None) -> dict[str, dict[str, str]]:
    """A catalogue as ``{language: {key: text}}`` (by default :data:`CATALOGUE`): its first column holds the
    keys, each other column a language's texts; empty cells are left out (they fall back to English)."""
    with open(CATALOGUE if path is None else path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        key, *columns = reader.fieldnames or ["key"]
        rows = list(reader)
    return {lang: {row[key]: row[lang] for row in rows if row.get(lang)} for lang in columns}


def languages() -> tuple[str, ...]:
    """Codes of the catalogue's languages, in its column order (English first)."""
    return tuple(texts())


def language(code: object) -> str:
    """A usable language code: ``'FI'`` or ``'fi-FI'`` gives ``'fi'``; anything unknown gives English."""
    if isinstance(code, str):
        short = code.strip().lower().replace("_", "-").split("-")[0]
        if short in texts():
            return short
    return DEFAULT


def language_name(code: str) -> str:
    """The language's name in itself (``Suomi``, ``Svenska``), for the selector."""
    return t("language.name", code)


def t(key: str, lang: str | None = None, /, **values: object) -> str:
    """The text of ``key`` in ``lang`` with its placeholders filled in.

    A missing text (or language) falls back to English. An ``int`` value is
    written with the language's thousands separator (:func:`number`); other
    values are put in as they are, so a caller formats its floats with
    :func:`number`.

    Raises
    ------
    KeyError
        When no language has the key.
    """
    catalogue = texts()
    chosen = catalogue.get(language(lang), {})
    text = chosen.get(key)
    if text is None:
        text = catalogue[DEFAULT].get(key)
        if text is None:
            msg = f"no text {key!r} in {CATALOGUE.name}"
            raise KeyError(msg)
    if not values:
        return text
    filled = {name: number(v, lang) if isinstance(v, (int, np.integer)) and not isinstance(v, bool) else v
              for name, v in values.items()}
    return text.format(**filled)


def word(kind: str, value: object, lang: str | None = None) -> str:
    """A coded value in words: the catalogue's ``<kind>.<value>`` (``status.new``, ``distance_source.road``,
    ``precision.site``), else the value as it is ('' for None)."""
    key = f"{kind}.{value}"
    if key in texts()[DEFAULT]:
        return t(key, lang)
    return "" if value is None else str(value)


def section_name(section: str, lang: str | None = None) -> str:
    """The name of a NACE Rev. 2 section (``'C'``) in a language: "Manufacturing", "Teollisuus", "Tillverkning";
    '' for an unknown letter."""
    return word("nace", section, lang) if f"nace.{section}" in texts()[DEFAULT] else ""


def placeholders(text: str) -> set[str]:
    """The names of a text's placeholders: ``{'count', 'name'}`` for ``'{count} near {name}'``."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def number(value: float | int | None, lang: str | None = None, *, decimals: int = 0) -> str:
    """A number as the language writes it, with ``decimals`` decimals: ``'12,345.6'``, ``'12 345,6'``.

    The thousands separator is a no-break space where the language groups
    with a space, so a figure never breaks across lines. None or NaN give ''.
    """
    if value is None or not np.isfinite(float(value)):
        return ""
    text = f"{float(value):,.{decimals}f}"
    group, point = t("number.thousands", lang), t("number.decimal", lang)
    group = "\u00a0" if group == "space" else group
    return text.replace(",", "\x00").replace(".", point).replace("\x00", group)


# --- resource names ---------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _resource_table() -> dict[str, dict[str, str]]:
    """``{language: {code: name}}`` of the translated names (no English: the knowledge base has it)."""
    return texts(RESOURCE_NAMES)


@functools.lru_cache(maxsize=1)
def _english_names() -> dict[str, str]:
    from geo.taxonomy import load_taxonomy  # the knowledge base: loaded once, when a name is first asked for

    labels = load_taxonomy().resources["label"]
    return {code: label.split(" (")[0].strip() or code for code, label in labels.items()}


def resource_name(code: object, lang: str | None = None) -> object:
    """A resource's or resource group's short name (``mineral.fly_ash`` gives "Fly ash", "Lentotuhka",
    "Flygaska"); English where the language has none; a code nobody knows (or a blank) as it is."""
    if not isinstance(code, str):
        return code
    translated = _resource_table().get(language(lang), {}).get(code)
    return translated or _english_names().get(code, code)


def resource_names(codes: pd.Series, lang: str | None = None) -> pd.Series:
    """:func:`resource_name` of each code (computed once per distinct code)."""
    names = {code: resource_name(code, lang) for code in pd.unique(codes.dropna())}
    return codes.map(lambda code: names.get(code, code) if isinstance(code, str) else code)
