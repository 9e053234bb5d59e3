# The two commands: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test browser claude-cli fuzz lint bench clean

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

# The suite in two phases. 1: every test not marked `serial`, in TEST_WORKERS parallel
# processes (pytest-xdist; 3 measured fastest on 2 cores: many tests wait on processes
# and sockets). Its default `--dist load` keeps each worker's tests in collection order,
# as a serial run has them. 2: the `serial` tests (deadlines, stalls, drains, signals,
# linear-time bounds), one at a time, on a machine the first phase no longer loads.
# Phase 2 runs even when phase 1 failed, so that a log shows every failure; the target
# fails when either did. `.venv/bin/python -m pytest -q` still runs it all serially.
TEST_WORKERS ?= 3
test: $(VENV)/.dev-installed browser claude-cli
	@status=0; \
	echo "== phase 1: tests not marked serial, $(TEST_WORKERS) processes"; \
	$(PY) -m pytest -q -n $(TEST_WORKERS) -m "not serial" || status=$$?; \
	echo "== phase 2: tests marked serial, one at a time"; \
	$(PY) -m pytest -q -p no:xdist -m serial || status=$$?; \
	exit $$status

# Debian's Chromium for the dashboard's browser tests (tests/dashboard), best effort:
# installed when missing and this runs as root with apt-get; otherwise a notice, and
# those tests report a skip naming the reason. Never `playwright install` (it
# downloads browsers from a CDN).
CHROMIUM := /usr/lib/chromium/chromium
browser:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the browser tests"; \
		{ DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 \
		  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; } \
		|| echo "notice: could not install chromium: the browser tests will be skipped"; \
	else \
		echo "notice: $(CHROMIUM) is missing and cannot be installed here (needs root and apt-get): the browser tests will be skipped"; \
	fi

# The real Claude Code CLI for tests/cli, from npm into .venv/node (git-ignored, never a
# global install), pinned: CLI_VERSION in tests/cli/helpers.py must match.
CLAUDE_CLI_VERSION := 2.1.332
CLAUDE_CLI_STAMP := $(VENV)/node/.claude-code-$(CLAUDE_CLI_VERSION)
claude-cli: $(CLAUDE_CLI_STAMP)
$(CLAUDE_CLI_STAMP):
	@if command -v npm >/dev/null 2>&1; then \
		npm install --prefix $(VENV)/node --no-save --no-fund --no-audit --loglevel=error \
			@anthropic-ai/claude-code@$(CLAUDE_CLI_VERSION) && touch $@; \
	else \
		echo "notice: npm is missing: the Claude Code CLI tests (tests/cli) will be skipped"; \
	fi

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
