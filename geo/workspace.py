"""The workshop workspace: the facilities and flows being edited, in one GeoPackage with undo.

A facilitator adds or edits facilities during a session; each change is
written at once (a temporary file, then a rename, so a crash never leaves a
half-written workspace) and survives a restart. The state before the last
change is kept beside it (``<name>.undo.gpkg``), so the last change can be
undone. The file opens in QGIS and in ``python -m geo match --facilities``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio

from geo import settings

__all__ = ["FACILITY_FIELDS", "FLOW_FIELDS", "Workspace"]

#: Columns written for each table, in the engine's input format.
FACILITY_FIELDS = ["facility_id", "name", "lat", "lon", "nace", "country", "cluster", "operator", "quay", "source",
                   "notes"]
FLOW_FIELDS = ["facility_id", "direction", "resource", "quantity", "unit", "ewc", "description",
               "max_distance_km", "confidential", "partners", "source"]


class Workspace:
    """A workspace GeoPackage (layers ``facilities`` and ``flows``) and its undo copy."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.undo_path = self.path.with_name(self.path.stem + ".undo.gpkg")

    def exists(self) -> bool:
        return self.path.is_file()

    def can_undo(self) -> bool:
        return self.undo_path.is_file()

    def save(self, facilities: pd.DataFrame, flows: pd.DataFrame) -> None:
        """Replace the workspace with these tables, keeping the current state for :meth:`undo`."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}-", suffix=".gpkg", dir=self.path.parent)
        os.close(fd)
        os.unlink(tmp)  # GDAL creates the file itself
        try:
            _write(facilities, flows, tmp)
            if self.exists():
                shutil.copyfile(self.path, self.undo_path)
            os.replace(tmp, self.path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def undo(self) -> bool:
        """Go back to the state before the last change; False when there is none."""
        if not self.can_undo():
            return False
        os.replace(self.undo_path, self.path)
        return True


def _write(facilities: pd.DataFrame, flows: pd.DataFrame, path: str) -> None:
    fac = pd.DataFrame(facilities).reindex(columns=FACILITY_FIELDS)
    points = gpd.GeoDataFrame(fac, geometry=_points(fac["lon"], fac["lat"]), crs=settings.WGS84)
    pyogrio.write_dataframe(points, path, layer="facilities", driver="GPKG")
    table = pd.DataFrame(flows).reindex(columns=FLOW_FIELDS)
    pyogrio.write_dataframe(table, path, layer="flows", driver="GPKG", append=False)


def _points(lon: pd.Series, lat: pd.Series) -> gpd.GeoSeries:
    """A point per facility in EPSG:4326 degrees; none where a coordinate is missing or not a finite number.

    A point is written only for a usable pair: ``POINT (26.9 NaN)`` would be read back as a location (its
    representative point is 0, 0), and a text such as ``'abc'`` cannot be a coordinate. Without a point,
    reading the workspace checks the ``lat`` and ``lon`` columns and names the value that is wrong.
    """
    x = pd.to_numeric(lon, errors="coerce").astype(float)
    y = pd.to_numeric(lat, errors="coerce").astype(float)
    usable = np.isfinite(x) & np.isfinite(y)
    points = gpd.GeoSeries(gpd.points_from_xy(x.where(usable, 0.0), y.where(usable, 0.0)), index=lon.index)
    return points.where(usable, None)
