# The two commands: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test fuzz lint bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# Stamp files: reinstall only when pyproject.toml changes.
$(VENV)/.local-installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[local]'
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.local-installed

run: $(VENV)/.local-installed
	$(PY) app.py

test: $(VENV)/.dev-installed
	$(PY) -m pytest -q

# The schema-driven run of `make test`, with many more generated requests per operation.
FUZZ_EXAMPLES ?= 300
fuzz: $(VENV)/.dev-installed
	SCHEMATHESIS_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q tests/openapi/test_schemathesis.py

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(VENV)/.dev-installed
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache
