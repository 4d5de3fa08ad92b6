"""Exceptions and the problem records of a validation pass.

Every error the engine raises on purpose subclasses :class:`GeoError`, so the
command line can turn any of them into one clear line on stderr instead of a
traceback. Problems found while validating input files are collected as
:class:`Problem` records in a :class:`ValidationReport`, so a user sees every
problem of a file at once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import pandas as pd

__all__ = [
    "CapacityError",
    "EditConflict",
    "GeoError",
    "InputError",
    "KnowledgeBaseError",
    "NetworkError",
    "Problem",
    "SchemaError",
    "ValidationReport",
    "WorkspaceError",
]


class GeoError(Exception):
    """Base class of the errors the engine raises on purpose."""


class InputError(GeoError, ValueError):
    """A file or argument cannot be used at all (missing, unreadable, wrong format)."""


class KnowledgeBaseError(GeoError, ValueError):
    """The bundled knowledge base (``data/knowledge``) is inconsistent."""


class NetworkError(GeoError, RuntimeError):
    """No road network could be obtained: no file given, none cached, offline, or an unusable file."""


class CapacityError(GeoError, RuntimeError):
    """A match would need more memory or candidate pairs than its limits allow; refused before it starts.

    The message names the estimate, the limit and what to change (a shorter
    maximum distance, a smaller area, fewer facilities).
    """


class SchemaError(GeoError, ValueError):
    """Input failed validation; ``report`` holds every problem found."""

    def __init__(self, message: str, report: "ValidationReport") -> None:
        super().__init__(message)
        self.report = report


class WorkspaceError(GeoError, RuntimeError):
    """The workspace cannot be opened or written, or a change to it is refused (an id taken, a value that
    cannot be stored)."""


class EditConflict(WorkspaceError):
    """A change was refused because someone changed the same facility first.

    ``change`` is that other change (who, when, what; a :class:`geo.workspace.Change`), or None when the
    facility was changed outside the app.
    """

    def __init__(self, message: str, change: object | None = None) -> None:
        super().__init__(message)
        self.change = change


@dataclass(frozen=True)
class Problem:
    """One problem in one place of an input file.

    ``row`` is the row a spreadsheet user sees (the header is row 1, the first
    record row 2) for CSV and XLSX, and the 1-based feature number for GeoJSON
    and GeoPackage; ``None`` when the problem concerns the whole file.
    """

    file: str
    row: int | None
    column: str | None
    value: str | None
    message: str
    hint: str = ""
    severity: str = "error"

    def format(self) -> str:
        """Render the problem as one line: ``file, row 3, column lat: message (hint)``."""
        where = [self.file]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column:
            where.append(f"column {self.column}")
        text = f"{', '.join(where)}: {self.severity}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text


@dataclass
class ValidationReport:
    """Every problem found in one validation pass, in the order found."""

    problems: list[Problem] = field(default_factory=list)

    def add(self, problem: Problem) -> None:
        self.problems.append(problem)

    def extend(self, problems: list[Problem]) -> None:
        self.problems.extend(problems)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when no problem is an error (warnings allowed)."""
        return not self.errors

    def to_frame(self) -> pd.DataFrame:
        """Problems as a frame with columns file, row, column, value, message, hint, severity."""
        columns = ["file", "row", "column", "value", "message", "hint", "severity"]
        return pd.DataFrame([asdict(p) for p in self.problems], columns=columns)

    def format(self) -> str:
        return "\n".join(p.format() for p in self.problems)
