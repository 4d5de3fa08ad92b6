"""Distances between the two ends of candidate links.

Every distance the matcher and the scorer use comes from
:func:`link_distances`, so that a road network can replace the estimate in one
place. Without a network the road distance is estimated as the geodesic
(straight-line) distance times a road circuity factor, and the travel time
from an average truck speed; rows say ``distance_source='estimate'``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyproj import Geod

from geo import settings

__all__ = ["geodesic_km", "link_distances"]


def geodesic_km(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Geodesic distance in km on the :data:`~geo.settings.ELLIPSOID`, vectorised.

    Inputs are WGS84 degrees (array-likes of equal length).
    """
    geod = Geod(ellps=settings.ELLIPSOID)
    _, _, metres = geod.inv(
        np.asarray(lon1, dtype=float), np.asarray(lat1, dtype=float),
        np.asarray(lon2, dtype=float), np.asarray(lat2, dtype=float),
    )
    return np.asarray(metres, dtype=float) / 1000.0


def link_distances(
    from_lon, from_lat, to_lon, to_lat,
    *,
    circuity_factor: float | None = None,
    speed_kmh: float | None = None,
) -> pd.DataFrame:
    """Road distance and travel time for each link (estimate mode).

    Parameters
    ----------
    from_lon, from_lat, to_lon, to_lat : array-like of float
        Link ends in WGS84 degrees, one entry per link.
    circuity_factor : float, optional
        Road distance over straight-line distance; defaults to
        :data:`geo.settings.ROAD_CIRCUITY_FACTOR`.
    speed_kmh : float, optional
        Average truck speed; defaults to
        :data:`geo.settings.ESTIMATE_TRUCK_SPEED_KMH`.

    Returns
    -------
    DataFrame
        One row per link, in input order: ``straight_km`` (geodesic),
        ``distance_km`` (estimated road distance), ``travel_time_min``,
        ``distance_source`` (``'estimate'``) and ``unroutable_reason``
        (empty while estimating; a road network fills it for pairs it cannot
        route).
    """
    circuity = settings.ROAD_CIRCUITY_FACTOR if circuity_factor is None else circuity_factor
    speed = settings.ESTIMATE_TRUCK_SPEED_KMH if speed_kmh is None else speed_kmh
    if circuity < 1:
        raise ValueError(f"circuity factor {circuity} is below 1: roads are never shorter than the straight line")
    straight = geodesic_km(from_lon, from_lat, to_lon, to_lat)
    road = straight * circuity
    return pd.DataFrame(
        {
            "straight_km": straight,
            "distance_km": road,
            "travel_time_min": road / speed * 60.0,
            "distance_source": "estimate",
            "unroutable_reason": "",
        }
    )
