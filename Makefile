# Waypost developer commands. `make demo` and `make test` work on a fresh machine:
# they create .venv and install the pinned dependencies first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACKAGES := waypost orchestrator agents review_ui schemas migrations

.PHONY: install demo up test test-slow lint format bench chaos lock docs clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

demo: install
	$(BIN)/waypost up --demo

up: install
	$(BIN)/waypost up

lint: install
	$(BIN)/ruff check $(PACKAGES) tests bench docs/examples
	$(BIN)/ruff format --check $(PACKAGES) tests bench docs/examples
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

format: install
	$(BIN)/ruff check --fix $(PACKAGES) tests bench docs/examples
	$(BIN)/ruff format $(PACKAGES) tests bench docs/examples

# Every test but the few slowest scenarios, which `make test-slow` runs (CI runs both).
test: lint
	$(BIN)/pytest -m "not slow" --durations=20

test-slow: install
	$(BIN)/pytest -m slow --durations=10

bench: install
	$(BIN)/python -m bench.e2e_throughput --tracing
	$(BIN)/python -m bench.agent_hop
	$(BIN)/python -m bench.console
	$(BIN)/python -m bench.dlq_replay

# Faults against `waypost up` (kills, broker and PostgreSQL restarts, a frozen agent);
# options in CHAOS_ARGS, e.g. `make chaos CHAOS_ARGS=--quick`; see bench/chaos/README.md.
chaos: install
	$(BIN)/python -m bench.chaos $(CHAOS_ARGS)

docs: install
	$(BIN)/python -m waypost.docgen > docs/configuration.md

lock:
	$(BIN)/pip-compile --quiet --extra dev --strip-extras --allow-unsafe -o requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
