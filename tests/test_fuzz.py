"""Fuzzing the readers: whatever bytes a file holds, the user gets the project's own error or a report.

Hypothesis generates the files (derandomized, so every run of the suite tries
the same cases): for CSV, raw bytes and CSV-like text built from separators,
quotes, line breaks, numbers with both decimal marks, formula starts and NUL;
for XLSX, GeoJSON and GeoPackage, small valid files with bytes or parts
changed and files of hostile values. A reader may accept a file (and its
validation may report problems), or refuse it with a
:class:`geo.errors.GeoError`; any other exception is a bug.
"""

from __future__ import annotations

import functools
import io as _io
import json
import tempfile
import zipfile
from pathlib import Path

import geopandas as gpd
import openpyxl
import pandas as pd
import pyogrio
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from shapely.geometry import Point

from geo.dataset import load_dataset
from geo.errors import GeoError
from geo.io import CONTROL_CHARACTERS
from geo.taxonomy import load_taxonomy

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


# -- XLSX, GeoJSON and GeoPackage -------------------------------------------------------------
#
# The same promise for the other readers, from three kinds of input each: bytes of a small valid file with
# some bytes changed; the parts inside it changed (the XML of a workbook, the JSON structure of a GeoJSON);
# and valid files full of hostile values. Whatever a file is read as, no text the dataset keeps holds a
# control character.

FILES = hsettings(max_examples=60, derandomize=True, deadline=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# any text openpyxl can write (it refuses the C0 controls other than tab and line breaks, and lone surrogates)
_HOSTILE_TEXT = st.text(
    alphabet=st.characters(exclude_categories=("Cs",),
                           exclude_characters="".join(map(chr, [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)]))),
    max_size=30,
) | st.sampled_from(["=1+1", "60.000", "1.234,5", "1,500", "\x85", "\x7f", "\u2028", "NaN", "-", "inf", "A"])
_HOSTILE_CELL = (_HOSTILE_TEXT | st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
                 | st.floats(allow_nan=True, allow_infinity=True) | st.dates())
_MUTATIONS = st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)),
                      min_size=1, max_size=8)


@functools.cache
def _taxonomy():
    return load_taxonomy()


@functools.cache
def _valid_file(suffix: str) -> bytes:
    """A small valid facilities-and-flows file of the given kind, as bytes."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"d{suffix}"
        _write_valid(path, suffix)
        return path.read_bytes()


def _write_valid(path: Path, suffix: str) -> None:
    """Two facilities and, in a workbook or GeoPackage, two flows (quantities in both decimal forms)."""
    facilities = gpd.GeoDataFrame(
        {"facility_id": ["A", "B"], "name": ["Öljy Oy", "Kraft"], "nace": ["C23.51", "35.11"]},
        geometry=[Point(24.9, 60.2), Point(22.3, 60.4)], crs="EPSG:4326",
    )
    flows = pd.DataFrame({"facility_id": ["A", "B"], "direction": ["supply", "demand"],
                          "resource": ["heat.steam", "heat"], "quantity": ["60.000", "12,5"], "unit": ["MWh/yr", ""]})
    if suffix == ".xlsx":
        with pd.ExcelWriter(path) as writer:
            facilities.assign(lat=[60.2, 60.4], lon=[24.9, 22.3]).drop(columns="geometry").to_excel(
                writer, sheet_name="facilities", index=False)
            flows.to_excel(writer, sheet_name="flows", index=False)
    elif suffix == ".gpkg":
        facilities.to_file(path, layer="facilities")
        pyogrio.write_dataframe(flows, path, layer="flows", append=False)
    else:
        facilities.to_file(path)


def _mutated(data: bytes, mutations: list[tuple[int, int]]) -> bytes:
    changed = bytearray(data)
    for offset, byte in mutations:
        changed[offset % len(changed)] = byte
    return bytes(changed)


def _read(tmp_path_factory, name: str, content: bytes) -> None:
    """Load a file: the project's own error, or a dataset whose kept texts hold no control character."""
    path = tmp_path_factory.mktemp("fuzz") / name
    path.write_bytes(content)
    try:
        data = load_dataset(path, taxonomy=_taxonomy())
    except GeoError:
        return
    for frame in (data.facilities, data.flows):
        for column in frame.columns:
            if frame[column].dtype == object:
                texts = frame[column].dropna().astype(str)
                assert not texts.str.contains(CONTROL_CHARACTERS).any(), column


@FILES
@given(mutations=_MUTATIONS)
def test_xlsx_with_changed_bytes(tmp_path_factory, mutations):
    _read(tmp_path_factory, "d.xlsx", _mutated(_valid_file(".xlsx"), mutations))


@FILES
@given(member=st.integers(min_value=0), at=st.integers(min_value=0),
       insert=st.sampled_from(["<", "&", "]]>", "<!DOCTYPE x [<!ENTITY e 'e'>]>", "&#0;", "&#x85;", "\x00", "\udcff",
                               '<c r="A9" t="s"><v>999</v></c>', '<v>1e999</v>', 't="n"', '"', "<row r=\"0\">"])
       | st.text(max_size=8))
def test_xlsx_with_changed_xml(tmp_path_factory, member, at, insert):
    source = zipfile.ZipFile(_io.BytesIO(_valid_file(".xlsx")))
    names = source.namelist()
    target_name = names[member % len(names)]
    out = _io.BytesIO()
    with source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for name in names:
            data = source.read(name)
            if name == target_name:
                position = at % (len(data) + 1)
                data = data[:position] + insert.encode("utf-8", errors="surrogateescape") + data[position:]
            target.writestr(name, data)
    _read(tmp_path_factory, "d.xlsx", out.getvalue())


@FILES
@given(header=st.lists(_HOSTILE_TEXT, min_size=1, max_size=5),
       rows=st.lists(st.lists(_HOSTILE_CELL, max_size=6), max_size=6), standard=st.booleans())
def test_xlsx_workbooks_of_hostile_values(tmp_path_factory, header, rows, standard):
    if standard:  # hostile values under the real column names reach validation
        header = ["facility_id", "name", "lat", "lon", "nace", "country"]
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "facilities"
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    path = tmp_path_factory.mktemp("fuzz") / "d.xlsx"
    book.save(path)
    _read(tmp_path_factory, "d.xlsx", path.read_bytes())


@FILES
@given(mutations=_MUTATIONS)
def test_geojson_with_changed_bytes(tmp_path_factory, mutations):
    _read(tmp_path_factory, "f.geojson", _mutated(_valid_file(".geojson"), mutations))


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _HOSTILE_TEXT | st.just("\x00 \x01"),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(
        ["type", "features", "properties", "geometry", "coordinates", "facility_id", "name", "lat", "lon", "crs"]),
        inner, max_size=4),
    max_leaves=12,
)


@FILES
@given(properties=st.dictionaries(_HOSTILE_TEXT | st.sampled_from(["facility_id", "name", "lat"]), _JSON, max_size=4),
       geometry=_JSON | st.builds(lambda x, y: {"type": "Point", "coordinates": [x, y]}, st.floats(), st.floats()),
       whole=st.none() | _JSON)
def test_geojson_structures(tmp_path_factory, properties, geometry, whole):
    document = whole if whole is not None else {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": properties, "geometry": geometry}],
    }
    _read(tmp_path_factory, "f.geojson", json.dumps(document).encode())


@FILES
@given(mutations=_MUTATIONS, near_start=st.booleans())
def test_geopackage_with_changed_bytes(tmp_path_factory, mutations, near_start):
    data = _valid_file(".gpkg")
    if near_start:  # the header and schema pages, where a change matters most
        mutations = [(offset % 8192, byte) for offset, byte in mutations]
    _read(tmp_path_factory, "d.gpkg", _mutated(data, mutations))
