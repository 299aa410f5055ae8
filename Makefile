# Everything runs from the repo's own virtualenv, created from the host's Python 3.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv browser test lint typecheck demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# The /docs test drives Debian's Chromium (tests/integration/test_docs_browser.py); Playwright
# never downloads a browser of its own. npm (with Node.js) fetches swagger-ui-dist for it.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver

browser: $(CHROMIUM)

test: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest -q

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
