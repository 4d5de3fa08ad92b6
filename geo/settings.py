"""Typed, documented defaults of the engine.

Functions read these at call time when an argument is ``None``, so a caller
(or a test) can change a default for one call without touching this module.
Every figure that is not a pure convention names its source.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

#: Geographic CRS of every input and output file (WGS84 lon/lat degrees).
WGS84 = "EPSG:4326"

#: Metric CRS for buffers and spatial joins: ETRS89 / LAEA Europe. Equal-area,
#: so lengths are exact only at its centre (52N 10E); see
#: :func:`geo.matching.find_candidates` for how the join allows for that.
METRIC_CRS = "EPSG:3035"

#: Mean Earth radius (IUGG), km, for great-circle distances.
EARTH_RADIUS_KM = 6371.0088

#: Folder of the bundled knowledge base (resources, rules, EWC map, profiles).
KNOWLEDGE_DIR = Path(__file__).resolve().parent.parent / "data" / "knowledge"

#: Ratio of road distance to straight-line distance used while no road network
#: is loaded. Wang, Bette, Schreckenberg and Guhr (2024), "How much longer do
#: you have to drive than the crow has to fly?", npj Complexity 1, 22
#: (doi:10.1038/s44260-024-00023-x), find 1.3 +/- 0.1 for road networks. Around
#: lakes, fjords and bays (much of Finland, Sweden and Norway) short trips can
#: reach 1.4-1.5; the road-network mode replaces this estimate.
ROAD_CIRCUITY_FACTOR = 1.3

#: Average truck speed on the estimated road route, km/h, for travel times
#: while no road network is loaded (a mix of rural main roads at 80 km/h and
#: slower urban and access roads; an assumption, stated in the README).
ESTIMATE_TRUCK_SPEED_KMH = 60.0

#: Bounding box (west, south, east, north) of the Baltic Sea Region as this
#: tool serves it: Norway's west coast to the Russian border, northern Germany
#: and Poland to the North Cape. Used to recognise swapped coordinates and to
#: warn about facilities far outside the region.
REGION_BBOX = (4.0, 53.0, 32.0, 71.5)

#: How far outside :data:`REGION_BBOX` (degrees) a facility may lie before it
#: gets a warning.
REGION_MARGIN_DEG = 3.0

#: Largest distance (km) at which a facility counts as snapped to a road.
MAX_SNAP_KM = 2.0

#: A facility whose nearest drivable road has no link to the road network
#: (dropped with the smaller strongly connected components: an island, a
#: closed site) is reported as unroutable when the nearest connected road is
#: farther than this (km); nearer, it is snapped to that road.
DISCONNECTED_GAP_KM = 0.5


@dataclass(frozen=True)
class ScoringWeights:
    """Weights and reference values of the link score (0 to 100).

    The score is ``100 * confidence * sum(weight_i * part_i) / sum(weight_i)``
    with parts in 0..1:

    - ``co2``: net CO2 saved per year, ``1 - exp(-saved / reference_co2_t_per_yr)``;
    - ``value``: net EUR per year, ``1 - exp(-net / reference_value_eur_per_yr)``;
    - ``distance``: ``0.5 ** (distance / (half_distance_fraction * max_distance))``,
      so a link at half its resource's maximum distance scores 0.5;
    - ``compatibility``: 1 for the same resource, less for substitutions;
    - ``precedent``: how often such a supplier sector has given this resource
      to such a receiver sector in documented exchanges
      (:func:`geo.precedent.precedent_support`).

    When the matchable quantity is unknown the co2 and value parts are
    ``unknown_quantity_part`` instead; when only one side states a quantity
    they are multiplied by ``one_sided_quantity_factor``, and when a quantity
    is an estimate by the factor of its kind in ``estimate_factors``.
    ``confidence`` is the product of the two flows' basis confidences
    (declared or inferred).

    The reference values set the size at which a link's CO2 or value part
    reaches ``1 - 1/e`` (0.63). They are an industrial exchange's scale,
    10,000 t CO2 and EUR 1 million a year: the Kalundborg partnership
    reported 275,000 t CO2 a year saved in 2010 by about twenty exchanges,
    some 14,000 t each (symbiosis.dk, "Result examples (2010)"; [K38] in
    data/knowledge/SOURCES.md). With 1,000 t and EUR
    100,000, a power station's steam and a bakery's food residues both
    saturated the part, so size no longer told links apart
    (docs/BENCHMARKS.md, "Sector-only matching": pooled recall 19 % -> 23 %).
    An unknown quantity's part, 0.2, is then that of an exchange saving
    about 2,200 t CO2 a year: a link whose size nobody knows ranks as a
    mid-sized exchange, above a known small one and below a known large one.
    """

    co2: float = 0.25
    value: float = 0.20
    distance: float = 0.15
    compatibility: float = 0.10
    precedent: float = 0.30
    reference_co2_t_per_yr: float = 10_000.0
    reference_value_eur_per_yr: float = 1_000_000.0
    half_distance_fraction: float = 0.5
    unknown_quantity_part: float = 0.2
    one_sided_quantity_factor: float = 0.8
    estimate_factors: dict[str, float] = field(
        default_factory=lambda: {"estimated": 0.8, "sector typical": 0.5}
    )
    basis_confidence: dict[str, float] = field(
        default_factory=lambda: {"declared": 1.0, "inferred": 0.7}
    )


#: Transport modes whose resources may also go by ship between two facilities
#: with a quay (the ``quay`` facility column): dry bulk by-products such as
#: fly ash, slag and gypsum, which small bulk ships carry across the Baltic in
#: lots of a few thousand tonnes (data/knowledge/SOURCES.md, [SEA2]).
SHIP_FROM_MODES = ("truck_bulk",)

#: The transport mode (``transport_modes.csv``) of bulk shipped between two
#: quays; without that row in the knowledge base, nothing goes by ship.
SHIP_MODE = "ship_bulk"

#: Longest sea route (km) searched for a ship link: a day or two of short-sea
#: shipping, which covers the Baltic Sea from the Bothnian Bay to the Danish
#: straits; an assumption.
SHIP_MAX_KM = 800.0

#: Sea route over great-circle distance between two quays (coasts, fairways and
#: archipelagos make ships go round). No published ratio was found; an
#: assumption [K24] (GLEC's +15 % for sailed over shortest sea distance
#: comes on top of a sea route, not of a great circle).
SEA_DETOUR_FACTOR = 1.3

#: Average speed of a short-sea bulk ship (km/h, about 11 knots) for travel
#: times, port time not included; an assumption [K24].
SHIP_SPEED_KMH = 20.0

#: Two facilities closer than this (km, straight line) are on one site: their
#: links are flagged ``same site`` (shown, not demoted).
SAME_SITE_KM = 0.3


# --- Road networks (geo.network, geo.routing) -------------------------------

#: Folder of the on-disk road-graph cache. ``BSR_SYMBIOSIS_CACHE`` overrides it.
CACHE_DIR = Path(os.environ.get("BSR_SYMBIOSIS_CACHE", Path.home() / ".cache" / "bsr-symbiosis"))

#: Version of the road-graph build (filter, speeds, contraction, file layout).
#: Part of every cache key: bump it whenever a change would alter a built graph.
NETWORK_BUILD_VERSION = "1"

#: What a truck may drive on, with osmnx's ``drive`` semantics (osmnx 2.1,
#: ``_overpass._get_network_filter``): a way needs a ``highway`` tag and is
#: excluded when one of these tags matches the regular expression (Overpass
#: ``!~``, an unanchored search). osmnx applies ``access!~private`` to every
#: network type.
DRIVE_EXCLUDE = {
    "area": "yes",
    "access": "private",
    "highway": (
        "abandoned|bridleway|bus_guideway|construction|corridor|cycleway|elevator|escalator|"
        "footway|no|path|pedestrian|planned|platform|proposed|raceway|razed|rest_area|service|"
        "services|steps|track"
    ),
    "motor_vehicle": "no",
    "motorcar": "no",
    "service": "alley|driveway|emergency_access|parking|parking_aisle|private",
}

#: Speed (km/h) of a road class without a usable ``maxspeed`` tag: the usual
#: posted limits around the Baltic Sea (built-up areas 50, rural main roads
#: 80 to 100, motorways 110 to 130; e.g. Finland's Road Traffic Act 729/2018
#: sets 50 km/h in built-up areas and 80 km/h elsewhere by default). Trucks are
#: capped by :data:`TRUCK_MAX_SPEED_KMH` in any case. ``*_link`` roads take
#: the speed given here, not their parent's.
HIGHWAY_SPEEDS_KMH = {
    "motorway": 120.0, "trunk": 100.0, "primary": 80.0, "secondary": 80.0, "tertiary": 60.0,
    "unclassified": 50.0, "residential": 40.0, "living_street": 20.0, "road": 50.0,
    "motorway_link": 60.0, "trunk_link": 60.0, "primary_link": 50.0, "secondary_link": 50.0,
    "tertiary_link": 40.0, "busway": 40.0,
}

#: Speed (km/h) of a road class missing from :data:`HIGHWAY_SPEEDS_KMH`.
DEFAULT_ROAD_SPEED_KMH = 40.0

#: Implicit ``maxspeed`` values (``FI:urban`` and the like) by their suffix, km/h.
#: Rural limits differ by country, so those are listed per country code.
MAXSPEED_ZONES_KMH = {
    "urban": 50.0, "living_street": 20.0, "walk": 7.0, "motorway": 120.0,
    "FI:rural": 80.0, "SE:rural": 70.0, "NO:rural": 80.0, "DK:rural": 80.0, "DE:rural": 100.0,
    "DE:motorway": 130.0, "PL:rural": 90.0, "EE:rural": 90.0, "LV:rural": 90.0, "LT:rural": 90.0,
    "rural": 80.0,
}

#: Highest speed of a heavy goods vehicle, km/h: trucks over 3.5 t are limited
#: to 80 km/h on most roads of Finland, Sweden, Norway, Denmark, Germany and
#: Poland (national traffic codes), and their speed limiters cap them at
#: 90 km/h everywhere in the EU (Directive 92/6/EEC as amended by 2002/85/EC).
TRUCK_MAX_SPEED_KMH = 80.0

#: Speed (km/h) assumed on the short leg between a facility and the road node
#: it snaps to (yard, gate, private access road); an assumption.
SITE_ACCESS_SPEED_KMH = 20.0

#: Threads used for many-to-many routing; ``None`` means every core.
ROUTING_WORKERS: int | None = None

#: Seconds osmnx may wait for an Overpass answer before giving up.
OVERPASS_TIMEOUT_S = 60

#: Margin (km) added around the facilities when a road network is downloaded.
DOWNLOAD_MARGIN_KM = 10.0

#: Largest area (km2) downloaded from Overpass in one request; larger regions
#: should come from an extract file (Geofabrik) instead. 40,000 km2 is about
#: 200 km x 200 km, the size of a Finnish region or a Danish island group.
DOWNLOAD_MAX_AREA_KM2 = 40_000.0


# --- Large inputs (geo.pipeline.match) --------------------------------------

#: Most links one match keeps. A run that finds more keeps each demand flow's
#: best :data:`LINKS_PER_DEMAND` links and, of those, the best ``MAX_LINKS``
#: (by score, then shorter distance, then flow ids), and says so in its
#: statistics. A kept link costs about 5 KB at the peak of a match (wide
#: table, allocation, ranking and sentences; docs/BENCHMARKS.md, "Large
#: inputs"), so 500,000 links take about 2.5 GB.
MAX_LINKS = 500_000

#: Links each demand flow keeps when a match finds more than :data:`MAX_LINKS`.
LINKS_PER_DEMAND = 5

#: Candidate pairs searched, scored and pruned in one batch (about 1.5 KB each
#: while a batch is worked on).
BATCH_PAIRS = 250_000

#: Most candidate pairs (within the projected search radius, estimated before
#: the search) a match takes on. 100,000 synthetic facilities give 73 million
#: and take about 7 minutes of CPU end to end (docs/BENCHMARKS.md, "Large
#: inputs"), so this is about half an hour; past it a match is refused up
#: front, naming the limit. 1,000,000 facilities of the same density give 7
#: billion at the default distances, 200 million with ``--max-km 10``.
MAX_CANDIDATE_PAIRS = 300_000_000

#: Facilities whose inferred flows are sized (:func:`geo.estimates.estimate_quantities`)
#: in one batch.
ESTIMATE_BATCH_FACILITIES = 100_000

#: Most links the regional allocation's linear program takes; a match with
#: more keeps its links unallocated and says so in ``allocation_note``.
ALLOCATION_MAX_LINKS = 1_000_000

#: Environment variable with the most memory (GB) a match may use; without it,
#: the memory available to the process (cgroup limit or the system's
#: MemAvailable) is the limit.
MAX_MEMORY_ENV = "SYMBIOSIS_MAX_MEMORY_GB"
