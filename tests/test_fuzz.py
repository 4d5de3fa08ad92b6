"""Fuzzing the readers: whatever bytes a file holds, the user gets the project's own error or a report.

Hypothesis generates the files (derandomized, so every run of the suite tries
the same cases): raw bytes, and CSV-like text built from separators, quotes,
line breaks, numbers with both decimal marks, formula starts and NUL. A
reader may accept a file (and its validation may report problems), or refuse
it with a :class:`geo.errors.GeoError`; any other exception is a bug.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from geo.dataset import load_dataset
from geo.errors import GeoError

FUZZ = hsettings(max_examples=150, derandomize=True, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

_PIECES = st.sampled_from([",", ";", "\t", '"', "\n", "\r\n", "\r", " ", "facility_id", "name", "lat", "lon",
                           "nace", "direction", "resource", "quantity", "unit", "60", "60,5", "60.000", "1.234,5",
                           "-", "=1+1", "@", "\x00", "ä", "C23.51", "supply", "heat.steam", "t/yr", "NaN", "1e308"])
_TEXT = st.lists(_PIECES, max_size=40).map("".join)


def _check(tmp_path_factory, facilities: bytes, flows: bytes | None) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    fac = folder / "facilities.csv"
    fac.write_bytes(facilities)
    flow_path = None
    if flows is not None:
        flow_path = folder / "flows.csv"
        flow_path.write_bytes(flows)
    try:
        data = load_dataset(fac, flow_path)
    except GeoError:
        return  # refused with the project's own error: fine
    assert data.report is not None


@FUZZ
@given(facilities=st.binary(max_size=300))
def test_any_bytes_as_facilities(tmp_path_factory, facilities):
    _check(tmp_path_factory, facilities, None)


@FUZZ
@given(facilities=_TEXT, flows=_TEXT, encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"]))
def test_csv_like_text_in_any_encoding(tmp_path_factory, facilities, flows, encoding):
    _check(tmp_path_factory, facilities.encode(encoding, errors="replace"), flows.encode(encoding, errors="replace"))


@FUZZ
@given(body=_TEXT)
def test_valid_header_with_fuzzed_rows(tmp_path_factory, body):
    header = "facility_id;name;lat;lon;nace;country\n"
    flows = "facility_id;direction;resource;quantity;unit\n" + body
    _check(tmp_path_factory, (header + "A;Öljy Oy;60,5;24,9;C23.51;FI\n" + body).encode(), flows.encode())
