# Laowu — the two commands (run, test) and a few more. Everything installs itself.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
# Test processes: one per core (each test has its own database, so they do not meet).
TEST_WORKERS ?= auto
STAMP  := $(VENV)/.installed

.PHONY: run test install lint format typecheck bench clean demo-db fuzz

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

## make run: install, migrate, load the region tree and demo data, serve on http://127.0.0.1:8000
run: install
	$(BIN)/laowu db upgrade
	$(BIN)/laowu regions load
	$(BIN)/laowu demo
	$(BIN)/laowu serve --host $(HOST) --port $(PORT)

## make test: install with test extras and run the whole suite (PostgreSQL too when
## LAOWU_TEST_DATABASE_URL is set; browser tests when Chromium is installed)
test: install
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install
	$(BIN)/mypy

## make bench: every bench/bench_*.py; the HTTP load test needs wrk and the instruction
## count valgrind (Debian packages, installed here when missing), and py-spy (the bench
## extra) for --profile
bench: install
	@command -v wrk >/dev/null || { apt-get install -y wrk || sudo apt-get install -y wrk; }
	@command -v valgrind >/dev/null || { apt-get install -y valgrind || sudo apt-get install -y valgrind; }
	@test -x $(BIN)/py-spy || $(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python bench/run_all.py

## make fuzz: schemathesis over the whole API and Hypothesis over uploads and imports,
## at many more examples than the suite runs (docs/security.md, "Attack surface tests")
FUZZ_EXAMPLES ?= 40
fuzz: install
	LAOWU_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -p no:cacheprovider tests/web/test_schemathesis.py tests/fuzz
	@if [ -n "$$LAOWU_TEST_DATABASE_URL" ]; then \
	  LAOWU_FUZZ_POSTGRES=1 LAOWU_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -p no:cacheprovider tests/web/test_schemathesis.py; fi

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
