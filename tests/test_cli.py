"""The command line end to end, as a user runs it (a real subprocess)."""

from __future__ import annotations

import subprocess
import sys

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT

FAC = "facility_id;name;lat;lon;nace;country\n"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "geo", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, encoding="utf-8", timeout=120)


@pytest.fixture
def example(write):
    fac = write("facilities.csv",
                FAC + "P;Ääneseudun Voima Oy;62,60;25,72;D35.11;FI\nC;Sementti Ø&Å <b>;62,65;25,80;2351;FI\n"
                "G;Kasvihuone Łódź;62,58;25,75;01.13;FI\nS;Only sector Oy;62,61;25,74;C17.11;FI\n")
    flows = write("flows.csv",
                  "facility_id,direction,resource,quantity,unit,ewc\n"
                  "P,supply,heat.hot_water,50000,MWh/yr,\nP,supply,,12000,t/yr,10 01 02\n"
                  "C,demand,mineral.cement_raw_materials,8000,t/yr,\nG,demand,heat.low_temperature,20000,MWh/yr,\n")
    return fac, flows


def test_validate_ok_and_with_problems(example, write):
    fac, flows = example
    ok = run("validate", fac, flows)
    assert ok.returncode == 0
    assert "4 valid facilities, 4 valid flows; 0 errors, 0 warnings" in ok.stdout
    bad = write("bad.csv", FAC + "A;x;23,6;65,8;;FI\nA;y;sixty;25;;FI\n")
    result = run("validate", bad)
    assert result.returncode == 1
    assert "row 2, column lat: error: coordinates look swapped" in result.stdout
    assert "row 3, column facility_id: error: duplicate facility id 'A'" in result.stdout
    assert "row 3, column lat: error: latitude 'sixty' is not a number" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".geojson", ".gpkg"])
def test_match_writes_every_format(example, tmp_path, suffix):
    fac, flows = example
    out = tmp_path / f"links{suffix}"
    result = run("match", "--facilities", fac, "--flows", flows, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "distance_source=estimate" in result.stderr
    if suffix == ".csv":
        assert out.read_bytes().startswith(b"\xef\xbb\xbf")
        links = pd.read_csv(out, encoding="utf-8-sig", dtype={"supply_facility_id": str})
    elif suffix == ".xlsx":
        links = pd.read_excel(out, sheet_name="links")
        assert "method" in pd.ExcelFile(out).sheet_names
    else:
        links = gpd.read_file(out)
        assert set(links.geom_type) == {"LineString"}
        assert links.crs.to_epsg() == 4326
    required = ["rank", "score", "supply_facility_id", "supply_name", "demand_facility_id", "demand_name",
                "resource", "quantity", "unit", "distance_km", "travel_time_min", "distance_source",
                "co2_saved_t_per_yr", "value_eur_per_yr", "basis", "why"]
    assert set(required) <= set(links.columns)
    assert links["rank"].tolist() == [1, 2]
    assert set(links["supply_name"]) == {"Ääneseudun Voima Oy"}
    assert set(links["demand_name"]) == {"Sementti Ø&Å <b>", "Kasvihuone Łódź"}


@pytest.mark.skipif(not __import__("layers.assets").assets.vendored(), reason="offline assets not installed")
def test_match_writes_a_standalone_html_map(example, tmp_path):
    fac, flows = example
    out = tmp_path / "shortlist.html"
    result = run("match", "--facilities", fac, "--flows", flows, "--out", out)
    assert result.returncode == 0, result.stderr
    page = out.read_text(encoding="utf-8")
    assert "<script src=" not in page  # Leaflet inlined: the file works offline
    # the name "Sementti Ø&Å <b>" reaches the page escaped (as JSON, where & is written \u0026), never as markup
    assert r"Sementti \u00d8\u0026amp;\u00c5 \u0026lt;b\u0026gt;" in page
    assert "Sementti Ø&Å <b>" not in page


def test_match_writes_labelled_nordic_csv_and_a_geopackage_with_its_facilities(example, tmp_path):
    fac, flows = example
    csv_out, gpkg_out, html_out = tmp_path / "links.csv", tmp_path / "links.gpkg", tmp_path / "links.html"
    assert run("match", "--facilities", fac, "--flows", flows, "--labels", "--csv-style", "nordic",
               "--out", csv_out).returncode == 0
    raw = csv_out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel finds UTF-8 by its BOM
    table = pd.read_csv(csv_out, sep=";", decimal=",", encoding="utf-8-sig")
    assert {"Supplier", "Receiver", "Distance (km)"} <= set(table.columns) and len(table) >= 2
    assert table["Distance (km)"].dtype.kind == "f"  # decimal commas read back as numbers
    assert run("match", "--facilities", fac, "--flows", flows, "--out", gpkg_out).returncode == 0
    facilities = gpd.read_file(gpkg_out, layer="facilities")
    assert set(facilities["facility_id"]) == {"P", "C", "G"}  # the facilities the links join
    assert run("match", "--facilities", fac, "--flows", flows, "--out", html_out).returncode == 0
    page = html_out.read_text(encoding="utf-8")
    assert "facilities.csv" in page and str(tmp_path) not in page  # the method names the file, not its folder


def test_nordic_letters_survive_windows_1252_input(write, tmp_path):
    fac = write("f.csv", FAC + "P;Åbo Kraft Ää;60,45;22,27;D35.11;FI\nG;Växthus Ørsted;60,46;22,28;01.13;FI\n",
                encoding="cp1252")
    flows = write("w.csv", "facility_id;direction;resource;quantity;unit\nP;supply;heat.hot_water;1000;MWh/yr\n"
                  "G;demand;heat.low_temperature;500;MWh/yr\n", encoding="cp1252")
    out = tmp_path / "l.csv"
    assert run("match", "--facilities", fac, "--flows", flows, "--out", out).returncode == 0
    text = out.read_text(encoding="utf-8-sig")
    assert "Åbo Kraft Ää" in text and "Växthus Ørsted" in text


def test_infer_gives_links_for_sector_only_facilities(write, tmp_path):
    fac = write("f.csv", FAC + "P;Voima;62,60;25,72;D35.11;FI\nC;Sementti;62,65;25,80;C23.51;FI\n"
                "G;Kasvihuone;62,58;25,75;A01.13;FI\n")
    out = tmp_path / "l.csv"
    plain = run("match", "--facilities", fac, "--out", out)
    assert plain.returncode == 0 and "use --infer" in plain.stderr
    result = run("match", "--facilities", fac, "--infer", "--top", "3", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "inferred" in result.stderr
    links = pd.read_csv(out, encoding="utf-8-sig")
    assert 0 < len(links) <= 3
    assert set(links["basis"]) == {"inferred"}


def test_invalid_input_is_refused_then_skipped_with_names(example, write, tmp_path):
    fac, _ = example
    flows = write("bad_flows.csv", "facility_id,direction,resource,quantity,unit\n"
                  "P,supply,heat.hot_water,50000,MWh/yr\nG,demand,heat.low_temperature,,\n"
                  "Z,supply,heat.stem,-1,MWh/yr\n")
    out = tmp_path / "l.csv"
    refused = run("match", "--facilities", fac, "--flows", flows, "--out", out)
    assert refused.returncode == 1
    assert "flow refers to unknown facility 'Z'" in refused.stderr
    assert "unknown resource code 'heat.stem' (did you mean heat.steam?)" in refused.stderr
    assert "quantity -1 is negative" in refused.stderr
    assert "--skip-invalid" in refused.stderr and not out.exists()
    skipped = run("match", "--facilities", fac, "--flows", flows, "--skip-invalid", "--out", out)
    assert skipped.returncode == 0, skipped.stderr
    assert "skipped:" in skipped.stderr and "bad_flows.csv, row 4 (facility Z)" in skipped.stderr
    assert len(pd.read_csv(out, encoding="utf-8-sig")) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["match", "--facilities", "missing.csv", "--out", "x.csv"], "missing.csv: file not found"),
        (["match", "--facilities", "{fac}", "--out", "links.txt"], "output must end in one of"),
        (["match", "--facilities", "{fac}", "--out", "/nonexistent/dir/x.csv"], "does not exist"),
        (["match", "--facilities", "{fac}", "--max-km", "-3", "--out", "x.csv"], "must be above 0"),
        (["match", "--facilities", "{fac}", "--top", "zero", "--out", "x.csv"], "not a whole number"),
        (["validate", "{fac}", "flows.shp"], "unsupported file type .shp"),
    ],
)
def test_unusable_arguments_exit_2_with_one_line(example, tmp_path, args, message):
    fac, _ = example
    (tmp_path / "flows.shp").write_text("x")
    args = [a.replace("{fac}", str(fac)) for a in args]
    args = [str(tmp_path / a) if a in ("flows.shp", "x.csv", "links.txt") else a for a in args]
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_empty_facilities_file_exits_1(write, tmp_path):
    result = run("match", "--facilities", write("f.csv", ""), "--out", tmp_path / "l.csv")
    assert result.returncode == 1
    assert "the facilities file is empty" in result.stderr


@pytest.fixture
def tampere_sites(write):
    """Four sites of the Tampere region (E-PRTR coordinates) with heat to trade."""
    from tests.conftest import shared

    eprtr = pd.read_csv(shared("eprtr_fi", "facilities.csv"), sep=";").drop_duplicates("Facility_INSPIRE_ID")
    inside = eprtr[eprtr["pointGeometryLon"].between(23.5566, 23.8922)
                   & eprtr["pointGeometryLat"].between(61.4459, 61.5580)].head(4)
    rows = "".join(f"T{i};Site {i};{lat};{lon};D35.30;FI\n"
                   for i, (lon, lat) in enumerate(zip(inside["pointGeometryLon"], inside["pointGeometryLat"], strict=True)))
    fac = write("tampere.csv", "facility_id;name;lat;lon;nace;country\n" + rows)
    flows = write("tampere_flows.csv",
                  "facility_id,direction,resource,quantity,unit\n"
                  "T0,supply,heat.hot_water,40000,MWh/yr\nT1,supply,heat.hot_water,30000,MWh/yr\n"
                  "T2,demand,heat.hot_water,20000,MWh/yr\nT3,demand,heat.hot_water,25000,MWh/yr\n")
    return fac, flows


def test_network_build_then_match_gives_road_distances(tampere_sites, tmp_path):
    from geo.network import load_network
    from geo.routing import road_distances
    from tests.conftest import shared

    built = tmp_path / "tampere.npz"
    result = run("network", "build", "--source", shared("osm", "tampere.osm.pbf"), "--out", built)
    assert result.returncode == 0, result.stderr
    assert "road network" in result.stderr and "stage" in result.stderr  # the progress bar
    assert "nodes outside the largest strongly connected component dropped" in result.stderr
    # the prebuilt graph carries its contraction hierarchies, so matching with it answers from them
    assert {"hierarchy:length", "hierarchy:time"} <= set(load_network(built)._derived)
    fac, flows = tampere_sites
    out = tmp_path / "links.csv"
    result = run("match", "--facilities", fac, "--flows", flows, "--network", built, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "pairs measured on the road network" in result.stderr
    links = pd.read_csv(out, encoding="utf-8-sig")
    assert len(links) >= 1 and (links["distance_source"] == "road").all()
    expected = road_distances(load_network(built), links["supply_lon"], links["supply_lat"],
                              links["demand_lon"], links["demand_lat"], max_km=links["max_distance_km"])
    # the CSV rounds to 2 decimals
    np.testing.assert_allclose(links["distance_km"], expected["road_km"], rtol=0, atol=0.0051)
    np.testing.assert_allclose(links["travel_time_min"], expected["travel_time_min"], rtol=0, atol=0.051)
    assert (links["distance_km"] >= links["straight_km"]).all()
    # the OSM file itself works too (its cached graph has no hierarchy: plain searches, same answers),
    # and the second use reads the cache
    again = run("match", "--facilities", fac, "--flows", flows, "--network", shared("osm", "tampere.osm.pbf"), "--out", out)
    assert again.returncode == 0, again.stderr
    assert pd.read_csv(out, encoding="utf-8-sig")["distance_km"].tolist() == links["distance_km"].tolist()


def test_match_with_a_missing_network_file_is_a_usage_error(example, tmp_path):
    fac, flows = example
    result = run("match", "--facilities", fac, "--flows", flows, "--network", tmp_path / "nope.osm.pbf",
                 "--out", tmp_path / "x.csv")
    assert result.returncode == 2
    assert "no such road-network file" in result.stderr and "Traceback" not in result.stderr


def test_network_build_refuses_a_bad_output_suffix(tmp_path):
    result = run("network", "build", "--source", tmp_path / "a.osm.pbf", "--out", tmp_path / "g.graphml")
    assert result.returncode == 2 and "written as .npz" in result.stderr


def test_duplicate_columns_and_a_folder_as_output_are_one_line_errors(write, tmp_path):
    dup = write("dup.csv", "facility_id,name,Name,lat,lon\nA,x,y,60,25\n")
    result = run("validate", dup)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().endswith("column 'Name' appears twice (columns 2 and 3); keep one, or rename the other")
    folder = tmp_path / "links.csv"
    folder.mkdir()
    fac = write("f.csv", "facility_id,name,lat,lon\nA,x,60,25\n")
    result = run("match", "--facilities", fac, "--out", folder)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "is a folder" in result.stderr


@pytest.mark.parametrize(("option", "bar"), [((), False), (("--progress",), True), (("--no-progress",), False)])
def test_match_progress_goes_to_stderr_only_and_only_when_asked_or_on_a_terminal(example, tmp_path, option, bar):
    fac, flows = example
    out = tmp_path / "links.csv"
    result = run("match", "--facilities", fac, "--flows", flows, *option, "--out", out)  # stderr is a pipe here
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"wrote 2 links to {out}"]  # stdout: the result line, nothing else
    assert ("match 2/5: candidates" in result.stderr) is bar
    assert ("match 5/5: ranking" in result.stderr) is bar


def test_match_prints_how_the_run_was_cut_down(example, tmp_path, monkeypatch, capsys):
    from geo import settings
    from geo.cli import main

    fac, flows = example
    monkeypatch.setattr(settings, "MAX_LINKS", 1)
    monkeypatch.setattr(settings, "ALLOCATION_MAX_LINKS", 0)
    assert main(["match", "--facilities", str(fac), "--flows", str(flows), "--out", str(tmp_path / "l.csv")]) == 0
    captured = capsys.readouterr()
    notes = [line for line in captured.err.splitlines() if line.startswith("note: ") and "without flows" not in line]
    assert notes == [
        "note: 2 links found; more than the 1 a match keeps (max_links), so each demand flow kept its best 5 and of "
        "those the best 1 were kept (1 left out)",
        "note: not allocated: 1 links are more than the allocation takes (0)",
    ]
    assert captured.out.splitlines() == [f"wrote 1 links to {tmp_path / 'l.csv'}"]
    assert "match 2/5" not in captured.err  # captured stderr is no terminal: no bar


def test_match_shows_the_bar_by_default_when_stderr_is_a_terminal(example, tmp_path, monkeypatch, capsys):
    import io

    from geo.cli import main

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    fac, flows = example
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["match", "--facilities", str(fac), "--flows", str(flows), "--out", str(tmp_path / "l.csv")]) == 0
    assert "match 2/5: candidates" in terminal.getvalue()
    assert capsys.readouterr().out.splitlines() == [f"wrote 2 links to {tmp_path / 'l.csv'}"]
