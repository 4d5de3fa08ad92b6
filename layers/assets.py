"""Browser assets of the map, served by the app or inlined, so the map works offline.

``make run`` and ``make test`` fetch Leaflet and Natural Earth country outlines
(the npm packages ``leaflet`` and ``world-atlas``) into ``static/vendor/``,
which Streamlit serves at ``/app/static/vendor/`` (static serving is switched
on in ``.streamlit/config.toml``). Without those files the map falls back to
Leaflet from its CDN, and says so, rather than failing.
"""

from __future__ import annotations

import base64
import functools
import os
import re
import tempfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

__all__ = ["APP_URL", "VENDOR", "asset_links", "inline_assets", "land_file", "land_outlines", "land_url", "vendored"]

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "static" / "vendor"
#: Where the app serves ``static/vendor`` (Streamlit's static file serving).
APP_URL = "/app/static/vendor"
_LEAFLET_JS = "leaflet/leaflet.js"
_LEAFLET_CSS = "leaflet/leaflet.css"
_COUNTRIES = "world-atlas/countries-50m.json"
#: The region's land outlines as GeoJSON, derived from ``_COUNTRIES`` on first use.
_LAND = "land-region.geojson"
#: Leaflet from its CDN, the fallback when the vendored copy is missing.
_CDN = "https://cdn.jsdelivr.net/npm/leaflet@1.9.4/dist"

#: The Baltic Sea Region with a margin: west, south, east, north (degrees).
REGION_BOUNDS = (-12.0, 47.0, 50.0, 74.0)


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


@functools.lru_cache(maxsize=1)
def land_outlines() -> gpd.GeoDataFrame | None:
    """Country outlines of the region (Natural Earth 1:50m via world-atlas), simplified; None when not installed."""
    path = VENDOR / _COUNTRIES
    if not path.is_file():
        return None
    countries = gpd.read_file(path, layer="countries").set_crs(4326, allow_override=True)
    # outlines across the antimeridian (Russia's) jump from +180 to -180; unwrapped to 180-360 they
    # are plain polygons again, which clipping needs
    wide = (countries.bounds["maxx"] - countries.bounds["minx"]) > 180
    countries.loc[wide, "geometry"] = shapely.transform(
        countries.geometry[wide].to_numpy(), lambda xy: np.column_stack([np.where(xy[:, 0] < 0, xy[:, 0] + 360, xy[:, 0]), xy[:, 1]]))
    countries["geometry"] = countries.geometry.make_valid()
    west, south, east, north = REGION_BOUNDS
    region = countries.clip((west, south, east, north))
    region = region[~region.geometry.is_empty].copy()
    region["geometry"] = region.geometry.simplify(0.01, preserve_topology=True)
    # 3 decimals (about 100 m) is finer than the 0.01-degree simplification and halves the size
    region["geometry"] = shapely.transform(region.geometry.to_numpy(), lambda xy: np.round(xy, 3))
    return region[["name", "geometry"]].reset_index(drop=True)


def land_file() -> Path | None:
    """The land outlines as a GeoJSON file in ``static/vendor``, for the app's map to fetch.

    Written once, atomically, beside the files it comes from; None when those
    are not installed or the folder cannot be written (the map then inlines
    the outlines instead).
    """
    path = VENDOR / _LAND
    source = VENDOR / _COUNTRIES
    if path.is_file() and source.is_file() and path.stat().st_mtime >= source.stat().st_mtime:
        return path
    land = land_outlines()
    if land is None:
        return None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{_LAND}.", suffix=".tmp", dir=VENDOR)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(land.to_json(drop_id=True))
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
        return None
    return path


def land_url(*, base: str = APP_URL) -> str | None:
    """Where the app serves :func:`land_file`; None when there is no such file."""
    return f"{base}/{_LAND}" if land_file() is not None else None
