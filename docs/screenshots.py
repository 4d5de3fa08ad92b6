"""Screenshots of the map app for the README, taken offline in Debian's chromium.

Run ``python -m docs.screenshots`` (or ``make screenshots``) from the
repository's root. It starts the app on the bundled demo the way the browser
tests do (tests/test_browser.py, whose helpers it uses), blocks every request
that is not local (so the offline base map shows instead of the tiles), and
writes these PNGs into docs/, each reduced to 256 colours:

- ``present_1280x720.png``: presentation mode at a projector's 1280x720, the
  first link highlighted and its two companies labelled (bright theme);
- ``present_1920x1080.png``: the same at 1920x1080 in the dark theme;
- ``tooltip.png``: a link's tooltip, wrapped inside the map;
- ``export_html.png``: the standalone HTML map from the Shortlist page, one
  link's popup open beside the table of links;
- ``lang_fi.png`` and ``lang_sv.png``: the map page in Finnish and Swedish
  (``?lang=``), taken last; left out, with a note, when the page still shows
  English there.

``--only NAME`` takes one of them (the name without ``.png``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from layers.assets import vendored
from tests.test_browser import CHROMIUM, _hover, _LINK_MIDDLES, _map_box, _map_frame, _start_app
from tests.test_presentation_browser import _heading, _presented, _screen

DOCS = Path(__file__).resolve().parent
#: Colours kept in each PNG: the maps are flat colours, so 256 keep them and the files stay small.
PNG_COLOURS = 256
#: Viewport of the shots that are not a projector's.
DESKTOP = (1400, 900)
#: Text the map page shows in English only: still there under ``?lang=``, the language switch is missing.
ENGLISH_ONLY = "Minimum score"


def main(argv: list[str] | None = None) -> int:
    """Take the screenshots (all, or those named by ``--only``); 0 when each was taken."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=sorted(SHOTS), help="take only this screenshot")
    args = parser.parse_args(argv)
    if not (Path(CHROMIUM).exists() and vendored()):
        print(f"needs {CHROMIUM} and the vendored map assets: run 'make browser vendor'", file=sys.stderr)
        return 1
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    missing = []
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        app = _start_app({"SYMBIOSIS_WORKSPACE": str(Path(folder) / "workspace.gpkg")})  # not there: the demo
        server = next(app)
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            for name, take in SHOTS.items():
                if args.only and name not in args.only:
                    continue
                width, height = SIZES.get(name, DESKTOP)
                context, page = _screen(browser, width, height)
                try:
                    note = take(page, server, Path(folder))
                except PlaywrightError as error:  # one shot that fails leaves the others to be taken
                    page.screenshot(path=str(Path(tempfile.gettempdir()) / f"screenshots-{name}-failed.png"))
                    note = f"failed ({error.message.splitlines()[0]}); the page as it was: " \
                           f"{tempfile.gettempdir()}/screenshots-{name}-failed.png"
                finally:
                    context.close()
                if note:
                    missing.append(name)
                    print(f"{name}: not taken: {note}")
                else:
                    path = DOCS / f"{name}.png"
                    print(f"{name}: {path.relative_to(DOCS.parent)}, {path.stat().st_size / 1e3:.0f} kB")
        finally:
            browser.close()
            next(app, None)  # stops the app
    return 1 if missing else 0


def _save(page, name: str) -> None:
    """Screenshot the page into docs/NAME.png, reduced to :data:`PNG_COLOURS` colours."""
    path = DOCS / f"{name}.png"
    page.screenshot(path=str(path))
    with Image.open(path) as shot:
        small = shot.convert("RGB").quantize(colors=PNG_COLOURS, method=Image.Quantize.MEDIANCUT,
                                             dither=Image.Dither.NONE)
    small.save(path, optimize=True)


def _present(theme: str) -> Callable:
    def take(page, server: str, _folder: Path) -> str | None:
        page.goto(f"{server}/?present=1&theme={theme}")
        _map_frame(page)
        _heading(page, "Link 1 of")
        _presented(page)
        page.wait_for_timeout(800)  # the offline layers are drawn after the map
        _save(page, f"present_{page.viewport_size['width']}x{page.viewport_size['height']}")
        return None

    return take


def _tooltip(page, server: str, _folder: Path) -> str | None:
    """A link's tooltip near the map's right edge, where Leaflet's own would stick out of the map."""
    page.goto(f"{server}/?country=FI")
    frame = _map_frame(page)
    page.get_by_text("Minimum score").wait_for(timeout=30_000)
    page.wait_for_timeout(800)
    map_frame = next(f for f in page.frames if "streamlit_folium" in f.url)
    box = _map_box(page)
    links = [li for li in map_frame.evaluate(_LINK_MIDDLES)
             if 0.55 * box["width"] < li["x"] < box["width"] - 20 and 40 < li["y"] < box["height"] - 40]
    if not links:
        return "no link in the right half of the map"
    for link in sorted(links, key=lambda li: li["rank"]):
        text, _ = _hover(page, frame, box, link)
        if text.startswith("#"):  # a link's tooltip, not a facility's lying on top of it
            break
    page.wait_for_timeout(300)
    _save(page, "tooltip")
    return None


#: Browser script: close and open again every open popup of the page's Leaflet maps.
_REOPEN_POPUP = """() => Object.values(window).filter(v => v instanceof L.Map).forEach(map => map.eachLayer(layer => {
    if (layer.isPopupOpen && layer.isPopupOpen()) { layer.closePopup(); layer.openPopup(); } }))"""


def _export(page, server: str, folder: Path) -> str | None:
    """The standalone HTML map downloaded from the Shortlist page, one link's popup open."""
    page.goto(f"{server}/shortlist?cluster=Kemi-Tornio")
    page.get_by_text("links match the filters").wait_for(timeout=60_000)
    with page.expect_download() as info:
        page.get_by_role("button", name="HTML map (works offline)", exact=True).click()
    exported = folder / "shortlist.html"
    shutil.copy(info.value.path(), exported)
    page.route(exported.as_uri(), lambda route: route.continue_())  # this one file; the rest stays blocked
    page.goto(exported.as_uri())
    page.locator("path.leaflet-interactive").first.wait_for(state="attached", timeout=30_000)
    page.locator("#sym-links tbody tr").first.click()  # a row shows its link on the map
    if not page.locator(".leaflet-popup").count():
        page.locator("path.leaflet-interactive").first.click(force=True)
    page.locator(".leaflet-popup").first.wait_for(timeout=10_000)
    page.wait_for_timeout(1000)
    # opened while the map still moved to the row's link, the popup may stick out at the top: opened again
    # once the map is still, Leaflet pans it into view
    page.evaluate(_REOPEN_POPUP)
    page.wait_for_timeout(800)
    _save(page, "export_html")
    return None


def _language(code: str) -> Callable:
    def take(page, server: str, _folder: Path) -> str | None:
        page.goto(f"{server}/?lang={code}")
        _map_frame(page)
        # the sidebar's filters follow the drawn map: once its score slider is there, so are they
        page.locator("[data-testid='stSidebar'] [data-testid='stSlider']").wait_for(timeout=60_000)
        page.wait_for_timeout(800)
        if page.get_by_text(ENGLISH_ONLY).count():
            return f"the page is still in English under ?lang={code} (no language switch yet)"
        _save(page, f"lang_{code}")
        return None

    return take


#: Each screenshot's name (its file in docs/ without ``.png``) and how to take it; the languages last.
SHOTS: dict[str, Callable] = {
    "present_1280x720": _present("bright"),
    "present_1920x1080": _present("dark"),
    "tooltip": _tooltip,
    "export_html": _export,
    "lang_fi": _language("fi"),
    "lang_sv": _language("sv"),
}
#: Viewport of each screenshot taken at a size of its own.
SIZES = {"present_1280x720": (1280, 720), "present_1920x1080": (1920, 1080)}


if __name__ == "__main__":
    sys.exit(main())
