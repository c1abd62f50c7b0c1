# queryref — developer commands.  `make demo` runs the main job; `make test` runs the tests.
# Everything runs from the project's own virtualenv in .venv (created on first use).

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
PYTHON  ?= $(shell command -v python3.11 2>/dev/null || command -v python3)

SF      ?= 1
DATA    := data/tpch-sf$(SF)
# tpchgen-cli 4.x writes one file per table: $(DATA)/lineitem.parquet, $(DATA)/orders.parquet, ...
LINEITEM := $(DATA)/lineitem.parquet

.PHONY: help venv install data demo test lint docs bench fuzz clean distclean

help:
	@echo "make demo      generate TPC-H data (SF=$(SF)) and run the main job on embedded DuckDB"
	@echo "make test      run the tests (with doctests), the contract check, ruff, mypy, docs build"
	@echo "make install   create .venv and install queryref with its dev extras (idempotent)"
	@echo "make lint      ruff + mypy"
	@echo "make docs      build the documentation site into site/ (mkdocs serve: live preview)"
	@echo "make bench     run benchmarks/*.py on the TPC-H data (SF=$(SF))"
	@echo "make clean     remove caches and build output (distclean: also .venv and data/)"

# --- environment -----------------------------------------------------------------------------
$(PY):
	@test -n "$(PYTHON)" || { echo "need python3.11 (or python3) on PATH" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Re-installs only when pyproject.toml changes (the install is editable, so code edits need nothing).
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(PY)
install: $(STAMP)

# --- data ------------------------------------------------------------------------------------
# Generated into a scratch directory and renamed at the end, so an interrupted run leaves nothing
# half-written behind.  Skipped when the data is already there.
$(LINEITEM): | $(STAMP)
	@if [ -e "$(DATA)/lineitem.parquet" ] || [ -d "$(DATA)/lineitem" ]; then exit 0; fi; \
	set -e; rm -rf "$(DATA).partial"; mkdir -p data; \
	echo "generating TPC-H SF=$(SF) into $(DATA) ..."; \
	$(VENV)/bin/tpchgen-cli parquet -s $(SF) --output-dir="$(DATA).partial"; \
	rm -rf "$(DATA)"; mv "$(DATA).partial" "$(DATA)"

data: $(LINEITEM)

# --- the main job ----------------------------------------------------------------------------
demo: install data
	$(PY) -m queryref.demo --data $(DATA)

# --- checks ----------------------------------------------------------------------------------
# All three checks run even if one fails, so one run shows everything; the exit status is
# non-zero if any failed.
test: install
	@status=0; \
	echo "== pytest =="; $(PY) -m pytest -q || status=1; \
	if [ -f ../shared/contract_check.py ]; then \
		echo "== contract check =="; $(PY) ../shared/contract_check.py || status=1; \
	fi; \
	echo "== ruff =="; $(VENV)/bin/ruff check src tests || status=1; \
	echo "== mypy =="; $(VENV)/bin/mypy src || status=1; \
	echo "== import layers (lint-imports) =="; $(VENV)/bin/lint-imports --no-cache || status=1; \
	echo "== docs (mkdocs build --strict) =="; $(MKDOCS) || status=1; \
	exit $$status

# The documentation site, built into site/ (gitignored); `.venv/bin/mkdocs serve` previews it.
MKDOCS := NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet --site-dir site
docs: install
	$(MKDOCS)

# The reliability corpora (tests/reliability) at ten times their CI size, ten times the
# pipeline fuzzing (QUERYREF_FUZZ_EXAMPLES three-way pipelines, the other fuzz counts in
# proportion) on a new seed each run, printed first (QUERYREF_FUZZ_SEED=N repeats a run), and
# every query of the SQL corpus (tests/test_corpus.py; CI runs a sample) on every engine.
fuzz: install
	@seed=$${QUERYREF_FUZZ_SEED:-$$(date +%s)}; echo "== QUERYREF_FUZZ_SEED=$$seed =="; \
	QUERYREF_FUZZ_SEED=$$seed QUERYREF_FUZZ_EXAMPLES=$${QUERYREF_FUZZ_EXAMPLES:-19000} \
	QUERYREF_RELIABILITY_SCALE=$${QUERYREF_RELIABILITY_SCALE:-10} \
	QUERYREF_CORPUS_SEED=$$seed QUERYREF_CORPUS_QUERIES=$${QUERYREF_CORPUS_QUERIES:-all} \
	$(PY) -m pytest -q tests/reliability tests/test_property.py tests/test_corpus.py

lint: install
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/mypy src
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/mypy benchmarks

# The benchmarks compare with pandas.read_sql (SQLAlchemy), the engines' own paths (DuckDB, ADBC)
# and Ibis, from the `bench` extra.  Results (JSON, text) and the plots go to $(BENCH_OUT).  On
# full SF1 the row-by-row methods (read_sql, read_sql_chunks, ibis) take 1-4 minutes and up to
# 15 GB per run each, so there they run only with BENCH_FULL_METHODS=all, and then
# $(BENCH_SLOW_RUNS) time(s); the --rows 1000000 runs have every method.  IBIS_PYTHON=path runs
# the Ibis side with another interpreter (an environment of its own; see benchmarks/README).
# The PostgreSQL part loads lineitem into $(BENCH_PG) first (load_postgres.py, skipped when
# loaded) and is skipped, with the reason, when that server cannot be reached.
BENCH_STAMP := $(VENV)/.bench-installed
BENCH_OUT   ?= data/bench
BENCH_RUNS  ?= 3
BENCH_SLOW_RUNS ?= 1
BENCH_PG    ?= $(or $(QUERYREF_BENCH_PG),postgresql://postgres@127.0.0.1:5432/queryref_bench)
BENCH_FULL_METHODS ?= qr_to_pandas duckdb_df duckdb_arrow qr_to_pandas_arrow qr_batches duckdb_batches qr_parquet
BENCH_PG_FULL_METHODS ?= qr_to_pandas adbc_df adbc_arrow qr_to_pandas_arrow qr_batches adbc_batches qr_parquet
IBIS_PYTHON ?=
BENCH_IBIS  := $(if $(IBIS_PYTHON),--ibis-python $(IBIS_PYTHON))
BENCH_ALL   := $(filter all,$(BENCH_FULL_METHODS))
BENCH_FULL  := $(if $(BENCH_ALL),--slow-runs $(BENCH_SLOW_RUNS),--methods $(BENCH_FULL_METHODS))
BENCH_PG_FULL := $(if $(BENCH_ALL),--slow-runs $(BENCH_SLOW_RUNS),--methods $(BENCH_PG_FULL_METHODS))

.PHONY: bench-env
$(BENCH_STAMP): pyproject.toml | $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	@touch $@

bench-env: $(BENCH_STAMP)

bench: bench-env data
	@set -e; mkdir -p $(BENCH_OUT); \
	echo "== benchmarks/bench_compose.py =="; \
	$(PY) benchmarks/bench_compose.py --data $(DATA) $(BENCH_IBIS) \
		--json $(BENCH_OUT)/compose_sf$(SF).json; \
	echo; echo "== benchmarks/bench_shrink.py --rows 1000000 =="; \
	$(PY) benchmarks/bench_shrink.py --data $(DATA) --rows 1000000 --runs $(BENCH_RUNS) \
		| tee $(BENCH_OUT)/shrink_sf$(SF)_1m.txt; \
	echo; echo "== benchmarks/bench_to_pandas.py --rows 1000000 (DuckDB) =="; \
	$(PY) benchmarks/bench_to_pandas.py --data $(DATA) --rows 1000000 --runs $(BENCH_RUNS) \
		$(BENCH_IBIS) --json $(BENCH_OUT)/to_pandas_sf$(SF)_1m.json; \
	echo; echo "== benchmarks/bench_to_pandas.py: all of lineitem (DuckDB) =="; \
	$(PY) benchmarks/bench_to_pandas.py --data $(DATA) --runs $(BENCH_RUNS) $(BENCH_FULL) \
		$(BENCH_IBIS) --json $(BENCH_OUT)/to_pandas_sf$(SF).json; \
	echo; $(PY) benchmarks/plot.py $(BENCH_OUT)/to_pandas_sf$(SF).json \
		$(BENCH_OUT)/to_pandas_sf$(SF)_1m.json -o $(BENCH_OUT)/to_pandas_sf$(SF).png; \
	echo; echo "== PostgreSQL: benchmarks/load_postgres.py =="; \
	if $(PY) benchmarks/load_postgres.py --data $(DATA) --url $(BENCH_PG); then \
		engines="duckdb postgres"; \
		echo; echo "== benchmarks/bench_to_pandas.py --engine postgres --rows 1000000 =="; \
		$(PY) benchmarks/bench_to_pandas.py --engine postgres --url $(BENCH_PG) \
			--rows 1000000 --runs $(BENCH_RUNS) $(BENCH_IBIS) \
			--json $(BENCH_OUT)/to_pandas_pg_sf$(SF)_1m.json; \
		echo; echo "== benchmarks/bench_to_pandas.py --engine postgres: all of lineitem =="; \
		$(PY) benchmarks/bench_to_pandas.py --engine postgres --url $(BENCH_PG) \
			--runs $(BENCH_RUNS) $(BENCH_PG_FULL) $(BENCH_IBIS) \
			--json $(BENCH_OUT)/to_pandas_pg_sf$(SF).json; \
		echo; $(PY) benchmarks/plot.py $(BENCH_OUT)/to_pandas_pg_sf$(SF).json \
			$(BENCH_OUT)/to_pandas_pg_sf$(SF)_1m.json -o $(BENCH_OUT)/to_pandas_pg_sf$(SF).png; \
	else \
		engines="duckdb"; \
		echo "== PostgreSQL benchmarks skipped: $(BENCH_PG) cannot be reached or loaded (above) =="; \
	fi; \
	echo; echo "== benchmarks/bench_guard.py: guard abort at 10x and 100x ($$engines) =="; \
	$(PY) benchmarks/bench_guard.py --engines $$engines --data $(DATA) --url $(BENCH_PG) \
		--runs $(BENCH_RUNS) --json $(BENCH_OUT)/guard_sf$(SF).json; \
	echo; echo "== benchmarks/bench_guard.py --streaming ($$engines) =="; \
	$(PY) benchmarks/bench_guard.py --streaming --engines $$engines --data $(DATA) \
		--url $(BENCH_PG) --runs $(BENCH_RUNS) --json $(BENCH_OUT)/streaming_sf$(SF).json

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist src/*.egg-info data/demo-*
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) data
