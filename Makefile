# gitops-ml: every target a person or a workflow runs. Workflows call these; no logic lives in YAML.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
GITOPS := $(BIN)/gitops-ml
export MLFLOW_DISABLE_TELEMETRY := true
export BENTOML_DO_NOT_TRACK := True
export DO_NOT_TRACK := 1
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR := false

.DEFAULT_GOAL := help
.PHONY: help setup demo test test-fast lint validate train evaluate card schema bench clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

setup: $(VENV)/.installed ## create .venv with the package (editable) and the dev tools

demo: $(VENV)/.installed ## the main job, on the bundled example, in a scratch folder (DEMO_DIR, default demo/)
	$(BIN)/python -m gitops_ml.demo

test: $(VENV)/.installed ## the whole test suite (two workers; PYTEST_ARGS= adds options)
	$(BIN)/pytest -n 2 --dist loadfile $(PYTEST_ARGS)

test-fast: $(VENV)/.installed ## the tests that start no server and bake no template
	$(BIN)/pytest -m "not slow"

lint: $(VENV)/.installed ## ruff, and the offline checks of this repository's workflows
	$(BIN)/ruff check src tests
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(BIN)/zizmor --offline --no-progress .github/workflows

validate: $(VENV)/.installed ## check the reference project's data against its contract
	$(GITOPS) validate

train: $(VENV)/.installed ## train and register a version of the reference model
	$(GITOPS) train

evaluate: $(VENV)/.installed ## gates for the newest version
	$(GITOPS) evaluate

card: $(VENV)/.installed ## model card of the newest version
	$(GITOPS) card

schema: $(VENV)/.installed ## regenerate src/gitops_ml/schemas/release.schema.json from the manifest models
	$(BIN)/python -m gitops_ml.release > src/gitops_ml/schemas/release.schema.json

bench: $(VENV)/.installed ## benchmarks; results go to docs/benchmarks.md
	$(BIN)/python -m bench

clean: ## remove local stores and scratch folders (not .venv)
	rm -rf .mlflow .bentoml logs demo .bench .pytest_cache
