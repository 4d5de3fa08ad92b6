"""Distances between the two ends of candidate links.

Every distance the matcher and the scorer use comes from
:func:`link_distances`, so that a road network can replace the estimate in one
place. With a road network (:mod:`geo.network`) the distance is the shortest
road route and the time that of the fastest one (:mod:`geo.routing`); rows say
``distance_source='road'``. Without one, or for a pair the network does not
cover, the road distance is estimated as the great-circle (straight-line)
distance times a road circuity factor, and the travel time from an average
truck speed; rows say ``distance_source='estimate'``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from geo import settings

if TYPE_CHECKING:
    from geo.network import RoadNetwork

__all__ = ["great_circle_km", "link_distances"]


def great_circle_km(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Great-circle distance in km on a sphere of the Earth's mean radius, vectorised.

    Inputs are WGS84 degrees (array-likes of equal length). The haversine
    form is well conditioned at short range; against the GRS80 ellipsoid it
    errs by at most about 0.5 %, far below the spread of road circuity.
    """
    phi1 = np.radians(np.asarray(lat1, dtype=float))
    phi2 = np.radians(np.asarray(lat2, dtype=float))
    dphi = phi2 - phi1
    dlam = np.radians(np.asarray(lon2, dtype=float) - np.asarray(lon1, dtype=float))
    h = np.sin(dphi / 2.0) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlam / 2.0) ** 2
    return 2.0 * settings.EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def link_distances(
    from_lon, from_lat, to_lon, to_lat,
    *,
    network: RoadNetwork | None = None,
    max_km=None,
    circuity_factor: float | None = None,
    speed_kmh: float | None = None,
) -> pd.DataFrame:
    """Road distance and travel time for each link, by road when a network is given.

    Parameters
    ----------
    from_lon, from_lat, to_lon, to_lat : array-like of float
        Link ends in WGS84 degrees, one entry per link.
    network : RoadNetwork, optional
        Road graph; pairs it covers are routed, the others estimated.
    max_km : float or array-like, optional
        Search cutoff per link (needed with ``network``): a route longer than
        this gets ``distance_km = inf``.
    circuity_factor : float, optional
        Road distance over straight-line distance; defaults to
        :data:`geo.settings.ROAD_CIRCUITY_FACTOR`.
    speed_kmh : float, optional
        Average truck speed; defaults to
        :data:`geo.settings.ESTIMATE_TRUCK_SPEED_KMH`.

    Returns
    -------
    DataFrame
        One row per link, in input order: ``straight_km`` (great circle),
        ``distance_km`` (estimated road distance), ``travel_time_min``,
        ``distance_source`` (``'road'`` or ``'estimate'``) and
        ``unroutable_reason`` (empty, or why a pair inside the network's area
        has no route; such pairs have NaN distance and time).
    """
    circuity = settings.ROAD_CIRCUITY_FACTOR if circuity_factor is None else circuity_factor
    speed = settings.ESTIMATE_TRUCK_SPEED_KMH if speed_kmh is None else speed_kmh
    if circuity < 1:
        raise ValueError(f"circuity factor {circuity} is below 1: roads are never shorter than the straight line")
    straight = great_circle_km(from_lon, from_lat, to_lon, to_lat)
    road = straight * circuity
    out = pd.DataFrame(
        {
            "straight_km": straight,
            "distance_km": road,
            "travel_time_min": road / speed * 60.0,
            "distance_source": "estimate",
            "unroutable_reason": "",
        }
    )
    if network is None or len(out) == 0:
        return out
    if max_km is None:
        raise ValueError("routing on a road network needs max_km, the search cutoff")
    from geo.routing import road_distances

    routed = road_distances(network, from_lon, from_lat, to_lon, to_lat, max_km=max_km)
    covered = (routed["unroutable_reason"] != "outside the road network's area").to_numpy()
    out.loc[covered, "distance_km"] = routed["road_km"].to_numpy()[covered]
    out.loc[covered, "travel_time_min"] = routed["travel_time_min"].to_numpy()[covered]
    out.loc[covered, "distance_source"] = "road"
    out.loc[covered, "unroutable_reason"] = routed["unroutable_reason"].to_numpy()[covered]
    return out
