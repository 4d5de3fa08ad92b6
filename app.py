"""The map app: browse, shortlist, export and present industrial symbiosis links.

Run with ``make run`` (or ``streamlit run app.py``). This file only sets the
page up and hands over to the pages in ``app_pages/``; their session state is
initialised once, from the URL, by :func:`app_pages.state.filter_widgets`.
``?present=1`` in the URL hides the sidebar and editing for a projector;
``?lang=fi`` or ``?lang=sv`` (or the sidebar's language selector) chooses the
language of every page (:mod:`geo.i18n`).

Every page runs inside :func:`run_guarded`, so a visitor never sees a
traceback: an error the engine raises on purpose is its one-line message, and
anything else a short line naming the exception's type, with the traceback in
the server log.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import streamlit as st
from streamlit.errors import FragmentHandledException

from app_pages.state import language_selector, plain, tr
from geo.errors import GeoError

if TYPE_CHECKING:
    from streamlit.navigation.page import StreamlitPage

#: The server log's channel for page errors (full tracebacks; the visitor sees one line).
log = logging.getLogger("symbiosis.app")


def run_guarded(page: StreamlitPage) -> None:
    """Run a page; an exception it raises becomes one line on the page instead of a traceback.

    A :class:`~geo.errors.GeoError` is shown as its message (the engine words
    it for the user). Any other exception is shown by its type alone, since
    its message may hold server paths or data, and its traceback goes to the
    log. Streamlit's ``st.rerun``, ``st.stop`` and ``st.switch_page`` raise
    exceptions that derive from ``BaseException``, not ``Exception``; they
    pass through untouched, as do ``KeyboardInterrupt`` and ``SystemExit``,
    and so does the signal of a fragment whose error Streamlit has shown.
    """
    try:
        page.run()
    except FragmentHandledException:
        raise
    except GeoError as exc:
        st.error(_first_line(exc), icon=":material/error:")
    except Exception as exc:
        log.exception("The %s page failed", page.title)
        st.error(tr("app.unexpected_error", kind=type(exc).__name__), icon=":material/error:")


def _first_line(exc: GeoError) -> str:
    """The error's message as plain text on one line (markdown characters escaped)."""
    lines = str(exc).strip().splitlines()
    return plain(lines[0] if lines else type(exc).__name__)


st.set_page_config(page_title=tr("app.page_title"), layout="wide", initial_sidebar_state="expanded")

PRESENTING = st.query_params.get("present") == "1"

map_page = st.Page("app_pages/map.py", title=tr("page.map"), default=True, url_path="map")
pages = [
    map_page,
    st.Page("app_pages/shortlist.py", title=tr("page.shortlist"), url_path="shortlist"),
]
if not PRESENTING:
    pages.append(st.Page("app_pages/data.py", title=tr("page.data"), url_path="data"))
page = st.navigation(pages, position="hidden" if PRESENTING else "sidebar")
if not PRESENTING and page is not map_page:  # the map page draws it with its filters, once the map is drawn
    language_selector()
run_guarded(page)
