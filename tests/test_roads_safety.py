"""Road-network files from visitors and strangers: refused in one line, never read outside their folder.

Every hostile file here is made by the test: a ``.npz`` of a few kB whose header
claims 8 TiB, empty and broken archives, ``info`` of the wrong type, arrays
of the wrong type or shape; paths that leave the roads folder by a link or by
``..``; a file of an unknown type that must not be hashed; and on the Data
page, the roads folder offered as a list instead of a free path, and upload
names of 300 characters.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from app_pages.state import plain
from geo import network as roads
from geo.cli import main
from geo.errors import NetworkError
from geo.network import build_network, load_network, network_from_edges, resolve_within, road_network, save_network
from geo.routing import hierarchy
from tests.test_network import grid_nodes, grid_ways

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TIB = 1 << 40


# --- crafted .npz files ---------------------------------------------------------

@pytest.fixture
def saved(tmp_path) -> Path:
    """A real network (the 3 x 3 grid), saved as the build saves it."""
    net = network_from_edges(grid_nodes(), grid_ways(), directed=False, source="grid", key="k")
    return save_network(net, tmp_path / "grid.npz")


def members(path: Path) -> dict[str, bytes]:
    """The ``.npy`` members of a saved network, by array name."""
    with zipfile.ZipFile(path) as archive:
        return {name.removesuffix(".npy"): archive.read(name) for name in archive.namelist()}


def stored(path: Path, name: str) -> np.ndarray:
    """One array of a saved network, as saved."""
    with np.load(path) as data:
        return data[name]


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def header_only(shape: tuple[int, ...], dtype: str) -> bytes:
    """A ``.npy`` header that claims an array of this shape, followed by 8 bytes of data."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buffer.getvalue() + bytes(8)


def rewrite(path: Path, arrays: dict[str, bytes], *, compression: int = zipfile.ZIP_STORED) -> Path:
    """Write ``arrays`` (name -> ``.npy`` bytes) as the zip of a ``.npz`` file."""
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in arrays.items():
            archive.writestr(f"{name}.npy", data)
    return path


def test_a_small_npz_whose_header_claims_8_tib_is_refused_before_anything_is_allocated(saved):
    arrays = members(saved) | {"node_id": header_only((TIB,), "<i8")}
    path = rewrite(saved, arrays)
    assert path.stat().st_size < 8_000
    with pytest.raises(NetworkError, match=r"grid\.npz: .*'node_id'.* needs 8,796,093,022,208 bytes, the file holds 8"):
        load_network(path)


def test_an_array_longer_than_its_bytes_is_refused(saved):
    arrays = members(saved) | {"edge_time_s": header_only((1000,), "<f8")}
    with pytest.raises(NetworkError, match=r"'edge_time_s'.* needs 8,000 bytes, the file holds 8"):
        load_network(rewrite(saved, arrays))


def claim_size(path: Path, name: str, size: int) -> None:
    """Make the zip's central directory say that the member of array ``name`` holds ``size`` bytes."""
    data = bytearray(path.read_bytes())
    entry = data.index(b"PK\x01\x02")
    while data[entry + 46:entry + 46 + int.from_bytes(data[entry + 28:entry + 30], "little")] != f"{name}.npy".encode():
        entry = data.index(b"PK\x01\x02", entry + 4)
    data[entry + 20:entry + 28] = size.to_bytes(4, "little") * 2  # compressed and uncompressed size
    path.write_bytes(data)


def test_a_zip_entry_claiming_more_bytes_than_the_file_has_is_refused(saved):
    """The zip's own sizes are no more trusted than the array headers: both claim 3 GiB here."""
    header = header_only((1,), "<i8")[:-8]
    claimed = 3 << 30
    arrays = members(saved) | {"node_id": header_only(((claimed - len(header)) // 8,), "<i8")}
    path = rewrite(saved, arrays)
    claim_size(path, "node_id", claimed)
    with pytest.raises(NetworkError, match=r"grid\.npz: not a road network .*more than the file's own size"):
        load_network(path)


@pytest.mark.parametrize("make, cause", [
    (lambda path: path.write_bytes(b""), "not a zip archive"),
    (lambda path: rewrite(path, {}), "no array 'node_id'"),
    (lambda path: path.write_bytes(b"PK\x03\x04 not really a zip" * 10), "not a zip archive"),
    (lambda path: path.write_text("node_id,lon,lat\n1,25,60\n"), "not a zip archive"),
])
def test_empty_and_broken_archives_give_one_line(tmp_path, make, cause):
    path = tmp_path / "empty.npz"
    make(path)
    with pytest.raises(NetworkError) as caught:
        load_network(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: not a road network built by this tool") and cause in message
    assert "\n" not in message


@pytest.mark.parametrize("info, cause", [
    (np.array(5), "'info' is an array of int64"),
    (np.array(["a", "b"]), "with shape (2,)"),
    (np.array("not json"), "'info' is not JSON"),
    (np.array(json.dumps(["a", "list"])), "'info' is a JSON list, not an object"),
    (np.array("[" * 100_000), "'info' is not JSON"),
])
def test_an_info_of_the_wrong_type_is_refused(saved, info, cause):
    path = rewrite(saved, members(saved) | {"info": npy(info)})
    with pytest.raises(NetworkError, match="not a road network") as caught:
        load_network(path)
    assert cause in str(caught.value)


def test_an_info_count_that_is_not_a_number_is_refused(saved):
    info = json.loads(str(stored(saved, "info"))) | {"dropped_nodes": "many"}
    path = rewrite(saved, members(saved) | {"info": npy(np.array(json.dumps(info)))})
    with pytest.raises(NetworkError, match="'info' holds 'dropped_nodes' as str"):
        load_network(path)


@pytest.mark.parametrize("name, values, cause", [
    ("node_lon", np.array(["25.0"] * 9), "'node_lon' is of type <U4, not floats"),
    ("edge_tail", np.zeros(3, dtype=float), "'edge_tail' is of type float64, not integers"),
    ("node_lat", np.zeros((9, 2)), "'node_lat' has the shape (9, 2), not (9,)"),
    ("edge_head", np.zeros(2, dtype=np.int32), "'edge_head' has the shape (2,)"),
    ("chain_nodes", np.full(3, 99, dtype=np.int32), "'chain_nodes' holds indices outside 0..8"),
    ("edge_length_m", None, "'edge_length_m' holds a negative or missing value"),
])
def test_arrays_of_the_wrong_type_shape_or_range_are_refused(saved, name, values, cause):
    if values is None:  # the saved lengths, one made negative
        values = stored(saved, name)
        values[0] = -1.0
    path = rewrite(saved, members(saved) | {name: npy(values)})
    with pytest.raises(NetworkError, match="not a road network") as caught:
        load_network(path)
    assert cause in str(caught.value)


def test_a_compressed_npz_is_refused(saved):
    path = rewrite(saved, members(saved), compression=zipfile.ZIP_DEFLATED)
    with pytest.raises(NetworkError, match="'node_id' is compressed"):
        load_network(path)


def test_a_saved_network_with_its_hierarchies_still_loads(saved):
    net = load_network(saved)
    for weight in ("length", "time"):
        hierarchy(net, weight)
    back = load_network(save_network(net, saved))
    assert {"hierarchy:length", "hierarchy:time"} <= set(back._derived)
    np.testing.assert_array_equal(back._derived["hierarchy:time"].up_head, net._derived["hierarchy:time"].up_head)


def test_a_broken_hierarchy_is_refused(saved):
    net = load_network(saved)
    hierarchy(net, "length")
    save_network(net, saved)
    arrays = members(saved)
    head = np.load(io.BytesIO(arrays["ch_length_up_head"]))
    arrays["ch_length_up_head"] = npy(np.full_like(head, 10_000))
    with pytest.raises(NetworkError, match="'ch_length_up_head' holds indices outside"):
        load_network(rewrite(saved, arrays))


# --- the roads folder -------------------------------------------------------------

@pytest.fixture
def folders(tmp_path) -> tuple[Path, Path]:
    """A roads folder and, beside it, a folder of files that must stay out of reach."""
    inside, outside = tmp_path / "roads", tmp_path / "private"
    inside.mkdir()
    outside.mkdir()
    return inside, outside


def no_reading(monkeypatch) -> None:
    """Make any hashing or loading of a road-network file fail the test."""
    def forbidden(*args, **kwargs):
        raise AssertionError("the file was read")

    monkeypatch.setattr(roads, "file_digest", forbidden)
    monkeypatch.setattr(roads, "load_network", forbidden)
    monkeypatch.setattr(roads, "_build_file", forbidden)


def test_a_file_outside_the_folder_gets_the_same_answer_whether_it_exists_or_not(folders, monkeypatch):
    inside, outside = folders
    no_reading(monkeypatch)
    target = outside / "secret.osm.pbf"
    answers = []
    for exists in (False, True):
        if exists:
            target.write_bytes(b"x")
        with pytest.raises(NetworkError) as caught:
            road_network(source=target, within=inside)
        answers.append(str(caught.value))
    assert answers[0] == answers[1] == f"{target}: not in the road-network folder {inside}; choose a file there"


@pytest.mark.parametrize("escape", ["link", "dots", "relative dots", "link to folder"])
def test_links_and_dots_cannot_leave_the_folder(folders, monkeypatch, escape):
    inside, outside = folders
    (outside / "secret.osm.pbf").write_bytes(b"x")
    source = {
        "link": inside / "roads.osm.pbf",
        "dots": inside / ".." / "private" / "secret.osm.pbf",
        "relative dots": Path("..") / "private" / "secret.osm.pbf",
        "link to folder": inside / "more" / "secret.osm.pbf",
    }[escape]
    (inside / "roads.osm.pbf").symlink_to(outside / "secret.osm.pbf")
    (inside / "more").symlink_to(outside, target_is_directory=True)
    no_reading(monkeypatch)
    with pytest.raises(NetworkError, match="not in the road-network folder"):
        road_network(source=source, within=inside)
    with pytest.raises(NetworkError, match="not in the road-network folder"):
        build_network(source, within=inside)


def test_a_nul_byte_in_a_path_is_refused_like_any_outside_path(folders):
    inside, _ = folders
    with pytest.raises(NetworkError, match="not in the road-network folder"):
        resolve_within(f"{inside}/a\0b.osm.pbf", inside)


def test_files_inside_the_folder_resolve_to_themselves(folders):
    inside, _ = folders
    (inside / "finland.osm.pbf").write_bytes(b"x")
    (inside / "alias.osm.pbf").symlink_to(inside / "finland.osm.pbf")
    assert resolve_within("finland.osm.pbf", inside) == (inside / "finland.osm.pbf").resolve()
    assert resolve_within(inside / "alias.osm.pbf", inside) == (inside / "finland.osm.pbf").resolve()
    with pytest.raises(NetworkError, match="no such road-network file"):
        road_network(source=inside / "missing.osm.pbf", within=inside)


@pytest.mark.parametrize("name", ["huge.bin", "passwd", "roads.shp", "links.csv"])
def test_an_unknown_type_is_refused_before_the_file_is_hashed(tmp_path, monkeypatch, name):
    path = tmp_path / name
    path.write_bytes(b"\0" * 1024)
    no_reading(monkeypatch)
    for build in (build_network, lambda p: road_network(source=p)):
        with pytest.raises(NetworkError, match=f"{name}: unknown road-network format"):
            build(path)


def test_the_cli_refuses_an_unknown_type_before_hashing_it_with_exit_2(tmp_path, monkeypatch, capsys):
    path = tmp_path / "huge.bin"
    path.write_bytes(b"\0" * 1024)
    no_reading(monkeypatch)
    assert main(["network", "build", "--source", str(path), "--out", str(tmp_path / "g.npz")]) == 2
    assert "huge.bin: unknown road-network format" in capsys.readouterr().err


def test_the_cli_refuses_an_output_that_is_a_folder_before_building(tmp_path, monkeypatch, capsys):
    (tmp_path / "built.npz").mkdir()
    (tmp_path / "a.osm.pbf").write_bytes(b"x")
    no_reading(monkeypatch)
    args = ["network", "build", "--source", str(tmp_path / "a.osm.pbf"), "--out", str(tmp_path / "built.npz")]
    assert main(args) == 2
    assert "built.npz: is a folder" in capsys.readouterr().err


@pytest.mark.parametrize("content", [b"", b"PK\x05\x06" + b"\0" * 18, b"not a zip at all"])
def test_match_with_a_broken_network_file_is_an_argument_error_exit_2(tmp_path, capsys, content):
    """A road-network file that cannot be used is a bad argument, like a missing one: one line, exit 2."""
    roads = tmp_path / "broken.npz"
    roads.write_bytes(content)
    facilities = tmp_path / "f.csv"
    facilities.write_text("facility_id;name;lat;lon;nace\nA;a;60.1;24.9;35.11\nB;b;60.2;24.8;35.30\n")
    code = main(["match", "--facilities", str(facilities), "--infer", "--network", str(roads),
                 "--out", str(tmp_path / "links.csv")])
    err = capsys.readouterr().err
    assert code == 2
    assert f"error: {roads}: not a road network built by this tool" in err and "Traceback" not in err


def test_the_cli_still_reads_a_network_outside_any_folder(saved, tmp_path, capsys):
    """The command line runs as its own user: any path it may read is fine, once its type is known."""
    out = tmp_path / "elsewhere" / "copy.npz"
    assert main(["network", "build", "--source", str(saved), "--out", str(out)]) == 0
    assert load_network(out).n_nodes == 9


# --- the Data page -------------------------------------------------------------

@pytest.fixture
def page_folders(tmp_path, monkeypatch) -> Path:
    """An empty workspace of the test's own; its roads folder (returned) is beside it."""
    monkeypatch.setenv("SYMBIOSIS_WORKSPACE", str(tmp_path / "workspace.gpkg"))
    monkeypatch.delenv("SYMBIOSIS_ROADS_DIR", raising=False)
    monkeypatch.delenv("SYMBIOSIS_NETWORK", raising=False)
    return tmp_path / "roads"


def data_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("app_pages/data.py")
    return at.run()


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def test_the_data_page_offers_the_roads_folder_not_a_path_field(page_folders, tmp_path, saved):
    page_folders.mkdir()
    shutil.copy(saved, page_folders / "kotka.npz")
    for name in ("finland.osm.pbf", "notes.txt", ".hidden.npz", "links.csv"):
        (page_folders / name).write_bytes(b"x")
    (tmp_path / "private.osm.pbf").write_bytes(b"x")
    (page_folders / "escape.osm.pbf").symlink_to(tmp_path / "private.osm.pbf")
    at = data_page()
    assert not at.exception, at.exception
    assert not [t for t in at.text_input if "path" in t.label.lower()]
    assert at.selectbox(key="network_file").options == ["finland.osm.pbf", "kotka.npz"]
    at.selectbox(key="network_file").set_value("kotka.npz").run()
    button(at, "Load this file").click().run()
    assert not at.exception, at.exception
    assert any("Road network in use" in s.value for s in at.success), [e.value for e in at.error]


def test_the_roads_folder_can_be_configured(page_folders, tmp_path, monkeypatch):
    elsewhere = tmp_path / "shared roads"
    elsewhere.mkdir()
    (elsewhere / "baltic.osm.pbf").write_bytes(b"x")
    monkeypatch.setenv("SYMBIOSIS_ROADS_DIR", str(elsewhere))
    at = data_page()
    assert at.selectbox(key="network_file").options == ["baltic.osm.pbf"]
    assert any(plain(elsewhere) in c.value for c in at.caption)  # the page shows text as text: markdown escaped


def test_a_broken_file_in_the_folder_is_named_without_its_server_path(page_folders):
    page_folders.mkdir()
    (page_folders / "broken.npz").write_bytes(b"not a zip")
    at = data_page()
    button(at, "Load this file").click().run()
    assert not at.exception
    [error] = [e.value for e in at.error]
    assert error.startswith(plain("No road network loaded: broken.npz: not a road network built by this tool (not a zip"))
    assert str(page_folders) not in error and plain(page_folders) not in error


def test_an_extract_in_the_roads_folder_is_built_kept_and_offered(page_folders):
    pyrosm = pytest.importorskip("pyrosm")
    page_folders.mkdir()
    shutil.copy(pyrosm.get_data("test_pbf"), page_folders / "test.osm.pbf")
    at = data_page()
    button(at, "Load this file").click().run()
    assert not at.exception, at.exception
    assert any("Road network in use" in s.value for s in at.success), [e.value for e in at.error]
    assert (page_folders / "test.npz").is_file()  # kept beside the extract, offered next time
    at.run()
    assert at.selectbox(key="network_file").options == ["test.npz", "test.osm.pbf"]


LONG = "Tornio industrial area site list " * 9 + ".csv"  # 301 characters


@pytest.mark.parametrize("name", [LONG, "../../" + LONG, "..\\..\\windows\\" + LONG, "x/../.."])
def test_an_upload_name_of_300_characters_or_with_path_parts_is_imported(page_folders, name):
    demo = Path(APP).parent / "data" / "demo"
    name = name if name.endswith(".csv") else name + ".csv"
    at = data_page()
    at.file_uploader(key="upload_facilities").set_value((name, (demo / "facilities.csv").read_bytes(), "text/csv"))
    at.file_uploader(key="upload_flows").set_value(("flows " + name, (demo / "flows.csv").read_bytes(), "text/csv"))
    at.run()
    assert not at.exception, at.exception
    flows = len((demo / "flows.csv").read_text(encoding="utf-8").strip().splitlines()) - 1
    assert any("valid facilities and" in m.value and f"{flows} valid flows" in m.value for m in at.markdown)


def test_a_road_network_upload_with_a_300_character_name_is_built_and_kept(page_folders, saved):
    name = "Kotka harbour roads " * 15 + ".npz"
    at = data_page()
    at.file_uploader(key="upload_network").set_value((name, saved.read_bytes(), "application/octet-stream"))
    at.run()
    button(at, "Build from the upload").click().run()
    assert not at.exception, at.exception
    assert any("Road network in use" in s.value for s in at.success), [e.value for e in at.error]
    [kept] = page_folders.iterdir()
    assert kept.name.startswith("Kotka_harbour_roads_") and kept.suffix == ".npz"
    assert len(kept.name.encode()) < 255 and load_network(kept).n_nodes == 9


def test_a_broken_upload_is_named_as_sent_not_by_its_server_path(page_folders):
    at = data_page()
    at.file_uploader(key="upload_network").set_value(("my roads.npz", b"not a zip", "application/octet-stream"))
    at.run()
    button(at, "Build from the upload").click().run()
    assert not at.exception
    [error] = [e.value for e in at.error]
    assert error.startswith(plain("No road network loaded: my roads.npz: not a road network built by this tool"))
    assert os.sep + "tmp" not in error and "upload" + os.sep not in error

