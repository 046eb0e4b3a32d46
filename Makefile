# Set-up on a fresh machine: `make run` or `make test` (both create .venv themselves).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
CONFIG ?= config.yaml
DEMO_PORT ?= 8402

.PHONY: install run test check lint types unit fmt demo bench clean

install: $(STAMP)

# Reinstalls only when pyproject.toml changes; the editable install picks up code changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

run: install
	$(BIN)/monitor --log-level info run --config $(CONFIG)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest

# The README's test command: lint, format check, strict types, then every test.
test: lint types unit

check: test

fmt: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Offline demo: a loopback x402 seller showing every outcome, then one check round against it.
demo: install
	@$(BIN)/python -m demo.server --port $(DEMO_PORT) & pid=$$!; \
	trap 'kill $$pid 2>/dev/null' EXIT; \
	for i in $$(seq 50); do $(BIN)/python -c "import socket; socket.create_connection(('127.0.0.1', $(DEMO_PORT)), 0.2)" 2>/dev/null && break; sleep 0.1; done; \
	$(BIN)/monitor check --config demo/config.yaml

# Performance figures (printed, never asserted): probe pipeline vs blackbox_exporter, /metrics,
# site render, catalogue crawl memory. Needs Debian nginx and prometheus-blackbox-exporter.
bench: install
	$(BIN)/python bench/probe_throughput.py
	$(BIN)/python bench/site_render.py
	$(BIN)/python bench/crawl_memory.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache site data demo/data
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
