# Glimpse: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP_CACHE := .cache/pip
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
HOST ?= 127.0.0.1
PORT ?= 8000
DATA_DIR ?= data

.PHONY: install run test lint typecheck unit e2e integration seed clean stack stack-up stack-down stack-status

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --cache-dir $(PIP_CACHE) -q --upgrade pip
	$(BIN)/pip install --cache-dir $(PIP_CACHE) -q -e '.[test]'
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

## make run: install, load demo data on first start, serve http://127.0.0.1:8000
run: install
	./scripts/ensure-ffmpeg.sh
	$(BIN)/glimpse serve --seed-if-empty --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

## make test: install, lint, type-check and run every test tier
test: install
	./scripts/test.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy events commands projections query_api infra

unit: install
	$(BIN)/pytest tests/unit -q

e2e: install
	$(BIN)/pytest tests/e2e -q

integration: install
	$(BIN)/pytest tests/integration -q

## make stack: start Kafka, Cassandra, Redis and S3 for the scale mode (stop with make stack-down)
stack: stack-up
stack-up: install
	$(BIN)/python -m infra.servers.stack up
stack-down:
	$(BIN)/python -m infra.servers.stack down
stack-status:
	$(BIN)/python -m infra.servers.stack status

seed: install
	$(BIN)/glimpse seed --data-dir $(DATA_DIR)

clean:
	rm -rf $(DATA_DIR) .pytest_cache .mypy_cache .ruff_cache .hypothesis
