# Everything runs from the repo's own virtualenv, created from the host's Python 3.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv browser test test-all test-fast lint typecheck demo bench clean

# setuptools says "Editable installation ... folders with the same name as your package may
# take precedence" for every editable install that needs its import finder (ours maps
# mlflow_lambda to the repository root); it is information, not a problem, so only it is muted.
# uv installs the dev dependencies in 68 s on a fresh clone here, where the pip-made venv and
# make lint took 4.2 min together; the same distributions at the same versions (compared with
# pip's on 2026-12-02). --compile-bytecode: pip writes every module's .pyc at install, and so must this
# (test_bytecode prunes a copy of these packages, __pycache__ and all). uv reads no pip
# configuration, so if it is missing or fails (an index mirror set only for pip, say), pip
# installs as before.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	-$(BIN)/python -m pip install --quiet uv
	export PYTHONWARNINGS='ignore:Editable installation'; \
	  { [ -x $(BIN)/uv ] && $(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[dev]'; } \
	  || $(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# The /docs test drives Debian's Chromium (tests/integration/test_docs_browser.py); Playwright
# never downloads a browser of its own. npm (with Node.js) fetches swagger-ui-dist for it.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver

browser: $(CHROMIUM)

# The suite waits on subprocesses (pip, the Lambda emulator, MLflow's server) more than it
# computes, so it runs on one pytest-xdist worker more than there are cores: on 2 cores, from a
# fresh clone on 2026-12-02, 3 workers took 12.0 min, 2 took 15.6 and 4 took 15.5. --dist
# loadfile keeps a module's tests, and the module-scoped servers and bundles they share, on one
# worker. make test leaves out the tests marked slow (an arm64 build, two more trimmed builds);
# make test-all runs every test.
TEST_WORKERS ?= $(shell $(PYTHON) -c 'import os; print((os.cpu_count() or 1) + 1)')
test: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m 'not slow'

test-all: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# Unit tests only: no bundles built, no servers; under a minute (48 s on 2 cores). One worker
# per core: each worker collects the whole suite, so a third made it slower (59 s).
FAST_WORKERS ?= auto
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n $(FAST_WORKERS) -m 'not integration' tests/unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	mkdir -p $(VENV)/typecheck && ln -sfn $(CURDIR) $(VENV)/typecheck/mlflow_lambda
	$(BIN)/mypy

# The README example end to end: train + register in a local store under .demo/, package
# the registered model for Lambda, run it through the real Lambda runtime, print predictions.
DEMO_ENV := MLFLOW_TRACKING_URI=sqlite:///$(CURDIR)/.demo/mlflow.db
demo: $(STAMP)
	$(BIN)/python examples/train.py
	$(DEMO_ENV) $(BIN)/mlflow-lambda package -m models:/MyRandomForest/latest -o build/
	$(BIN)/mlflow-lambda invoke build/ --data examples/payload.json

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)  # e.g. make bench BENCH_ARGS=--quick

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
