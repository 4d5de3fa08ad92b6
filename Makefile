# Set-up and everyday commands. `make run` and `make test` work on a fresh
# clone: each creates .venv and installs what it needs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
EXAMPLE := data/example

.PHONY: run test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt $(VENV)/.runtime
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

run: $(VENV)/.runtime
	mkdir -p out
	$(BIN)/python -m geo validate $(EXAMPLE)/facilities.csv $(EXAMPLE)/flows.csv
	$(BIN)/python -m geo match --facilities $(EXAMPLE)/facilities.csv \
		--flows $(EXAMPLE)/flows.csv --infer --top 20 --out out/example_links.csv
	@echo "Ranked links written to out/example_links.csv"

test: $(VENV)/.dev
	$(BIN)/python -m pytest -q

$(VENV)/.bench: requirements-bench.txt $(VENV)/.dev
	$(BIN)/pip install --quiet -r requirements-bench.txt
	touch $@

bench: $(VENV)/.bench
	$(BIN)/python -m bench.matching
	$(BIN)/python -m bench.routing

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
