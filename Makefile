# The whole set-up is `make run` and `make test`; everything else here is what those two call.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Lambda runs python3.13; use it (then 3.12) when pyenv or the system has it, else python3.
ifneq ($(shell command -v pyenv 2>/dev/null),)
export PYENV_VERSION ?= $(shell pyenv versions --bare 2>/dev/null | grep -E '^3\.1[123]\.' | sort -rV | paste -sd: -)
endif
PYTHON ?= $(shell for p in python3.13 python3.12 python3; do $$p -c 'import sys' >/dev/null 2>&1 && echo $$p && break; done)

VENV := .venv
VENV_SAM := .venv-sam
PY := $(VENV)/bin/python
SAM := $(VENV_SAM)/bin/sam
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0
PYTEST_ARGS ?=

.PHONY: help run test lint typecheck template unit integration bench openapi clean
help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(VENV)/.installed: requirements-dev.txt layers/shared/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

$(VENV_SAM)/.installed: requirements-sam.txt
	test -x $(VENV_SAM)/bin/python || $(PYTHON) -m venv $(VENV_SAM)
	$(VENV_SAM)/bin/python -m pip install --quiet -r requirements-sam.txt
	touch $@

run: $(VENV)/.installed  ## serve the whole API on http://127.0.0.1:3000 with an embedded AWS
	$(PY) -m local serve

test: lint typecheck template  ## lint, type-check, check the template, run every test
	$(PY) -m pytest $(PYTEST_ARGS)

unit: $(VENV)/.installed  ## only the unit and template tests (moto in-process; no server)
	$(PY) -m pytest tests/unit tests/template $(PYTEST_ARGS)

integration: $(VENV)/.installed  ## only the integration tests (starts the local runtime on free ports)
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

lint: $(VENV)/.installed  ## ruff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed  ## mypy --strict on the layer
	$(VENV)/bin/mypy

template: $(VENV)/.installed $(VENV_SAM)/.installed  ## cfn-lint, sam validate --lint, sam build (no Docker)
	$(VENV)/bin/cfn-lint template.yaml
	$(SAM) validate --lint --template-file template.yaml
	PATH="$(CURDIR)/$(VENV_SAM)/bin:$$PATH" $(SAM) build --template-file template.yaml --parallel --cached
	@du -sh .aws-sam/build/SharedLayer | awk '{print "built layer size: " $$1}'

openapi: $(VENV)/.installed  ## regenerate docs/openapi.json from the functions and template.yaml
	$(PY) -m local openapi --output docs/openapi.json

bench: $(VENV)/.installed  ## per route: init and handler time, DynamoDB requests, layer size, cost (bench/results/latest.json)
	PYTHONPATH=layers/shared:. $(PY) -m bench

clean:  ## remove build output and local data (not the virtual environments)
	rm -rf .aws-sam .local .pytest_cache .ruff_cache .mypy_cache .hypothesis
