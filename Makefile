# FormRelay: the two commands are `make demo` and `make test`.
SHELL := bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
BOOTSTRAP := bash scripts/bootstrap.sh
PYTEST_ARGS ?=
DEMO_ARGS ?=
BENCH_ARGS ?=

.PHONY: help bootstrap test test-fast demo lint bench bench-vs bench-load lock clean

help: ## show this help
	@echo "FormRelay make targets:"
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  make %-10s %s\n", $$1, $$2}'
	@echo "Variables: PYTEST_ARGS='...' (test, test-fast), DEMO_ARGS='...' (demo), BENCH_ARGS='...' (bench, bench-vs, bench-load)"

bootstrap: ## install system packages (as root), start MariaDB and Redis, build .venv
	$(BOOTSTRAP)

test: ## everything the suite needs (incl. chromium), then the whole pytest suite
	FORMRELAY_WITH_BROWSER=1 $(BOOTSTRAP)
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test-fast: ## unit tests only (needs just .venv, no services)
	$(BOOTSTRAP) --venv-only
	$(VENV)/bin/pytest -m unit $(PYTEST_ARGS)

demo: ## the main job: bootstrap, then run the demo stack (devstack.demo)
	$(BOOTSTRAP)
	$(PY) -m devstack.demo $(DEMO_ARGS)

lint: ## ruff check and mypy
	$(BOOTSTRAP) --venv-only
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: ## claim latency, small vs large jobs table (bench/claim_scaling.py)
	$(BOOTSTRAP)
	$(PY) bench/claim_scaling.py $(BENCH_ARGS)

bench-vs: ## FormRelay vs Action Scheduler 3.7.0, one WordPress, one partner (bench/vs_action_scheduler.py)
	$(BOOTSTRAP)
	$(PY) bench/vs_action_scheduler.py $(BENCH_ARGS)

bench-load: ## FormRelay's share of a saturated WordPress under Apache + mod_php (bench/load.py)
	FORMRELAY_WITH_APACHE=1 $(BOOTSTRAP)
	$(PY) bench/load.py $(BENCH_ARGS)

# pip-compile (pip-tools) in a venv of its own, so .venv holds only what the locks say.
LOCK_TOOLS := build/lock-tools
LOCK_FLAGS := --quiet --upgrade --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links

lock: ## re-resolve requirements.lock and requirements-dev.lock (pinned, hashed) from pyproject.toml
	test -x $(LOCK_TOOLS)/bin/pip-compile || \
	  { python3 -m venv $(LOCK_TOOLS) && $(LOCK_TOOLS)/bin/pip install --quiet 'pip-tools>=7.4'; }
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_TOOLS)/bin/pip-compile $(LOCK_FLAGS) \
	  --output-file requirements.lock pyproject.toml
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_TOOLS)/bin/pip-compile $(LOCK_FLAGS) \
	  --constraint requirements.lock --extra dev --output-file requirements-dev.lock pyproject.toml

clean: ## remove caches and build output (keeps .venv and var/)
	rm -rf .pytest_cache .mypy_cache .ruff_cache build dist
	find . \( -path ./$(VENV) -o -path ./.git -o -path ./var \) -prune \
	  -o \( -name '*.egg-info' -o -name __pycache__ \) -prune -exec rm -rf {} +
