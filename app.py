"""The map app: browse, shortlist, export and present industrial symbiosis links.

Run with ``make run`` (or ``streamlit run app.py``). This file only sets the
page up and hands over to the pages in ``app_pages/``; their session state is
initialised once, from the URL, by :func:`app_pages.state.filter_widgets`.
``?present=1`` in the URL hides the sidebar and editing for a projector.
"""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="Industrial symbiosis map - Baltic Sea Region",
                   layout="wide", initial_sidebar_state="expanded")

PRESENTING = st.query_params.get("present") == "1"

pages = [
    st.Page("app_pages/map.py", title="Map", default=True, url_path="map"),
    st.Page("app_pages/shortlist.py", title="Shortlist", url_path="shortlist"),
]
if not PRESENTING:
    pages.append(st.Page("app_pages/data.py", title="Data", url_path="data"))
st.navigation(pages, position="hidden" if PRESENTING else "sidebar").run()
