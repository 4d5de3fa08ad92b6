"""Helpers several test modules share: the app under Streamlit's AppTest, and jobs released at one moment."""

from __future__ import annotations

import threading
from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app.py")
#: Seconds an AppTest run may take (the first match of the demo included).
TIMEOUT = 60


def app(page: str = "map", **params: str) -> AppTest:
    """The app run once on ``page`` (``map``, or a file of app_pages/) with these query parameters."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for name, value in params.items():
        at.query_params[name] = value
    if page != "map":
        at.switch_page(f"app_pages/{page}.py")
    return at.run()


def at_once(*jobs):
    """Run the jobs in threads released together; their results (or exceptions) in order."""
    barrier = threading.Barrier(len(jobs))
    results: list[object] = [None] * len(jobs)

    def run(i, job):
        barrier.wait()
        try:
            results[i] = job()
        except Exception as exc:  # noqa: BLE001 - handed back to the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results
