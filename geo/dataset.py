"""Loading a dataset: read the files, validate, and say where flows came from.

:func:`load_dataset` is the one entry point the command line and the app use
to turn paths into a validated :class:`~geo.schema.Dataset`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from geo import io
from geo.schema import Dataset, validate
from geo.taxonomy import Taxonomy, load_taxonomy

__all__ = ["facility_roles", "load_dataset"]

_MULTI_TABLE = (".xlsx", ".gpkg")


def load_dataset(
    facilities: str | Path,
    flows: str | Path | None = None,
    *,
    taxonomy: Taxonomy | None = None,
) -> Dataset:
    """Read and validate a facilities file and, optionally, a flows file.

    An XLSX workbook or GeoPackage given as ``facilities`` supplies both
    tables (sheets or layers ``facilities`` and ``flows``; a missing
    ``flows`` table means no declared flows). A CSV or GeoJSON facilities
    file takes its flows from ``flows``, which may be any supported format;
    for a multi-table ``flows`` file its ``flows`` table is read.

    Parameters
    ----------
    facilities : str or Path
        Facilities file.
    flows : str or Path, optional
        Flows file, when the facilities file does not hold them.
    taxonomy : Taxonomy, optional
        Knowledge base; the bundled one by default.

    Returns
    -------
    Dataset
        Valid rows as frames, and the report of every problem found.

    Raises
    ------
    InputError
        When a file cannot be read at all.
    """
    taxonomy = taxonomy if taxonomy is not None else load_taxonomy()
    facilities = Path(facilities)
    flow_raw = None
    if facilities.suffix.lower() in _MULTI_TABLE:
        wanted = ["facilities"] if flows is not None else ["facilities", "flows"]
        tables = io.read_tables(facilities, wanted, optional=("flows",))
        fac_raw, flow_raw = tables["facilities"], tables.get("flows")
    else:
        fac_raw = io.read_table(facilities)
    if flows is not None:
        flows = Path(flows)
        flow_multi = flows.suffix.lower() in _MULTI_TABLE
        flow_raw = io.read_table(flows, table="flows" if flow_multi else None)
    return validate(fac_raw, flow_raw, taxonomy)


def facility_roles(facilities: pd.DataFrame, flows: pd.DataFrame) -> pd.Series:
    """Role of each facility from its flows: ``supplier``, ``receiver``, ``both`` or ``none``.

    Index-aligned with ``facilities``; an empty frame (every facility of a file
    invalid) gives an empty Series.
    """
    ids = facilities["facility_id"]
    supplies = ids.isin(flows.loc[flows["direction"] == "supply", "facility_id"].unique())
    demands = ids.isin(flows.loc[flows["direction"] == "demand", "facility_id"].unique())
    role = pd.Series("none", index=facilities.index, name="role")
    role[supplies & ~demands] = "supplier"
    role[demands & ~supplies] = "receiver"
    role[supplies & demands] = "both"
    return role
