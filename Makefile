# One command to see it work, one to test it. Both create .venv and install first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CX_HOME ?= $(CURDIR)/.cx
export CX_HOME

.PHONY: install demo test test-fast ui lint benchmarks clean

$(BIN)/cx: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(BIN)/cx

install: $(BIN)/cx

demo: install
	$(BIN)/cx generate --customers $${CUSTOMERS:-20000}
	$(BIN)/cx materialize
	@echo
	@echo "Warehouse tables (Parquet):   $(CX_HOME)/warehouse/"
	@echo "Query them by name (DuckDB):  $(CX_HOME)/warehouse.duckdb"
	@echo "Dagster runs:                 make ui, then http://127.0.0.1:3000"

test: install
	$(BIN)/pytest -n 2 --durations=15

test-fast: install
	$(BIN)/pytest -n 2 -m "not slow"

ui: install
	DAGSTER_HOME=$${DAGSTER_HOME:-$(CX_HOME)/dagster}; mkdir -p $$DAGSTER_HOME; \
	DAGSTER_HOME=$$DAGSTER_HOME $(BIN)/dagster dev -w workspace.yaml

lint: install
	$(BIN)/ruff check cx_pipelines tests benchmarks
	$(BIN)/ruff format --check cx_pipelines tests benchmarks

clean:
	rm -rf $(CX_HOME)
