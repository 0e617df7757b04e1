# Two commands on a fresh machine: `make run` (sandbox with demo data) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test fuzz lint bench reliability clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Seed demo data into frsync.db, print tokens and a working curl, serve on 127.0.0.1:8000.
run: install
	$(BIN)/frsync demo
	$(BIN)/frsync serve --sandbox

## Lint, type-check and run every test (PostgreSQL/Redis cases run when reachable) in four
## pytest workers: most tests wait (on servers, sockets, timeouts) more than they compute, so
## four keep two cores busy. Generated tests run derandomized: one commit, one verdict.
JOBS ?= 4
test: install lint
	$(BIN)/pytest -n $(JOBS) --dist loadgroup

## Explore: the Hypothesis and schemathesis tests with a random seed (or SEED=…) and ten times
## the examples. The seed is printed first and again after a failure; SEED=<it> repeats the run.
ifndef SEED
SEED := $(shell od -An -N8 -tu8 /dev/urandom | tr -d ' ')
endif
fuzz: install
	@echo "make fuzz: seed $(SEED) (repeat with: make fuzz SEED=$(SEED))"
	$(BIN)/pytest -n $(JOBS) --dist loadgroup -m generated --hypothesis-profile=frsync-fuzz --hypothesis-seed=$(SEED)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

## Run the benchmarks and rewrite BENCHMARKS.md (BASELINE=<commit>: also profile that
## commit's code under the same load, for a before/after profile from one run).
BASELINE_SRC = bench/.data/baseline
bench: install
	$(BIN)/python bench/read_side.py
	$(BIN)/python bench/sandbox_reset.py
	$(if $(BASELINE),rm -rf $(BASELINE_SRC) && mkdir -p $(BASELINE_SRC) && git archive $(BASELINE) src | tar -x -C $(BASELINE_SRC))
	$(if $(BASELINE),BENCH_BASELINE_SRC=$(CURDIR)/$(BASELINE_SRC)/src) $(BIN)/python -m bench

## Rerun the security and fault suites and rewrite RELIABILITY.md (FULL=1: 100 kills per
## store, a 10 s database outage and the 10-minute soak).
reliability: install
	$(BIN)/python -m bench.security_report
	$(BIN)/python -m bench.faults_report $(if $(FULL),--full)
	$(BIN)/python -m bench.probe_report

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
