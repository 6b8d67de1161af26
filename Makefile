# privasync: two commands on a fresh machine, `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-stress lint typecheck services tools bench soak clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/privasync demo

services:
	@bash deploy/ensure-services.sh

# Validators of deploy/ that PyPI does not carry (promtool; systemd-analyze).
tools:
	@bash deploy/ensure-tools.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# Workers of pytest-xdist: every worker has its own databases, broker namespace and ports.
# Pytest's rewritten test modules are cached (PYTHONDONTWRITEBYTECODE would have every worker
# rewrite all of them on each run). Work stealing: a worker left idle at the end takes tests
# queued for another. Two workers per core: half of the suite's time is spent waiting (on
# subprocesses, brokers, leases and vendors' retry delays), so two per core keep the cores
# busy (idle machine, 2 cores: 256 s with 4 workers against 357 s with 2).
TEST_WORKERS ?= $(shell echo $$(( 2 * $$(nproc 2>/dev/null || echo 1) )))

test: $(STAMP) services tools lint typecheck
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

# The suite beside two busy processes per core, as a machine still doing other work runs it:
# a test that passes only when the machine is idle fails here before it lands.
test-stress: $(STAMP) services tools
	$(BIN)/python -m tests.loaded

bench: $(STAMP) services
	$(BIN)/python -m bench.micro
	$(BIN)/python -m bench.window
	$(BIN)/python -m bench.run

# An hour of mixed webhook traffic and erasures on PostgreSQL + Redis, a line every 5 minutes
# and a verdict (BENCHMARKS.md, "Soak"); not part of `make test` or `make bench`.
SOAK_SECONDS ?= 3600

soak: $(STAMP) services
	$(BIN)/python -m bench.soak --seconds $(SOAK_SECONDS)

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
