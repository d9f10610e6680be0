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
# Only what the Lambda runtime itself ships (requirements-runtime.txt): the functions' interpreter in the
# tests on the build output, and the floor the layer supports (requirements-floor.txt) for the unit tests.
VENV_LAMBDA := .venv-lambda
VENV_FLOOR := .venv-floor
PY := $(VENV)/bin/python
SAM := $(VENV_SAM)/bin/sam

# Lambda runs arm64 (template.yaml). ARCH=x86_64 builds a variant for an x86_64 machine from a generated
# copy of the template (sam local and the tests on the build output run it); template.yaml stays as is.
ARCH ?= arm64
HOST_ARCH := $(subst aarch64,arm64,$(shell uname -m))
ifeq ($(ARCH),arm64)
BUILD_TEMPLATE := template.yaml
else
BUILD_TEMPLATE := .aws-sam/template-$(ARCH).yaml
endif
BUILD_DIR := .aws-sam/build-$(ARCH)
# `sam deploy` reads samconfig.toml's section CONFIG_ENV: default (stack arcturus-prime-dev) or prod.
CONFIG_ENV ?= default
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0
PYTEST_ARGS ?=

.PHONY: help run test lint typecheck template unit integration floor build build-host deploy sam-local-check \
	lock bench openapi clean
help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(VENV)/.installed: requirements-dev.txt layers/shared/requirements.in
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

$(VENV_SAM)/.installed: requirements-sam.txt
	test -x $(VENV_SAM)/bin/python || $(PYTHON) -m venv $(VENV_SAM)
	$(VENV_SAM)/bin/python -m pip install --quiet -r requirements-sam.txt
	touch $@

$(VENV_LAMBDA)/.installed: $(VENV)/.installed requirements-runtime.txt
	test -x $(VENV_LAMBDA)/bin/python || $(PYTHON) -m venv --without-pip $(VENV_LAMBDA)
	$(PY) -m pip --python $(VENV_LAMBDA)/bin/python install --quiet --disable-pip-version-check \
		--require-hashes --no-deps -r requirements-runtime.txt
	touch $@

$(VENV_FLOOR)/.installed: requirements-dev.txt requirements-floor.txt layers/shared/requirements.in
	test -x $(VENV_FLOOR)/bin/python || $(PYTHON) -m venv $(VENV_FLOOR)
	$(VENV_FLOOR)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(VENV_FLOOR)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-floor.txt
	$(VENV_FLOOR)/bin/python -m pip check
	touch $@

run: $(VENV)/.installed  ## serve the whole API on http://127.0.0.1:3000 with an embedded AWS
	$(PY) -m local serve

test: lint typecheck template build-host $(VENV_LAMBDA)/.installed floor  ## lint, type-check, check the template, every test
	BUILD_DIR=$(BUILD_DIR_HOST) LAMBDA_PYTHON=$(VENV_LAMBDA)/bin/python $(PY) -m pytest $(PYTEST_ARGS)

unit: $(VENV)/.installed  ## only the unit and template tests (moto in-process; no server)
	$(PY) -m pytest tests/unit tests/template $(PYTEST_ARGS)

integration: $(VENV)/.installed  ## only the integration tests (starts the local runtime on free ports)
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

floor: $(VENV_FLOOR)/.installed  ## the unit tests on the oldest boto3/botocore/urllib3 the layer supports
	$(VENV_FLOOR)/bin/python -m pytest -q -p no:cacheprovider tests/unit $(PYTEST_ARGS)

lint: $(VENV)/.installed  ## ruff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed  ## mypy --strict on the layer
	$(VENV)/bin/mypy

template: $(VENV)/.installed $(VENV_SAM)/.installed  ## cfn-lint, sam validate --lint, sam build (no Docker)
	$(VENV)/bin/cfn-lint template.yaml
	$(SAM) validate --lint --template-file template.yaml
	$(MAKE) --no-print-directory build

.aws-sam/template-%.yaml: template.yaml
	mkdir -p $(@D)
	sed -E '/Architecture/ s/\barm64\b/$*/' template.yaml > $@
	test "$$(grep -cE 'Architectures?: \[?$*' $@)" = 3 || { echo "expected 3 architecture settings in template.yaml" >&2; exit 1; }

build: $(VENV_SAM)/.installed $(BUILD_TEMPLATE)  ## sam build into .aws-sam/build-$(ARCH) (ARCH=arm64, as deployed; x86_64 for this machine)
	PATH="$(CURDIR)/$(VENV_SAM)/bin:$$PATH" LAYER_ARCH=$(ARCH) $(SAM) build --template-file $(BUILD_TEMPLATE) \
		--base-dir . --build-dir $(BUILD_DIR) --cache-dir .aws-sam/cache-$(ARCH) --parallel --cached
	@du -sh $(BUILD_DIR)/SharedLayer | awk '{print "built layer ($(ARCH)) size: " $$1}'

BUILD_DIR_HOST := .aws-sam/build-$(HOST_ARCH)
build-host:  ## the build for this machine's architecture (what the tests on the build output run)
	$(MAKE) --no-print-directory build ARCH=$(HOST_ARCH)

deploy: build  ## sam deploy the arm64 build with samconfig.toml's CONFIG_ENV section (default or prod)
	test "$(ARCH)" = arm64 || { echo "deploy ships what Lambda runs: ARCH=arm64" >&2; exit 2; }
	$(SAM) deploy --template-file $(BUILD_DIR)/template.yaml --config-env $(CONFIG_ENV) $(DEPLOY_ARGS)

sam-local-check: $(VENV)/.installed build-host  ## sam local invoke + start-api in Docker against serve --aws-only
	BUILD_DIR=$(BUILD_DIR_HOST) SAM=$(CURDIR)/$(SAM) PYTHON=$(PYTHON) HOST_ARCH=$(HOST_ARCH) \
		$(PY) -m pytest -p no:cacheprovider tests/sam_local $(PYTEST_ARGS)

openapi: $(VENV)/.installed  ## regenerate docs/openapi.json from the functions and template.yaml
	$(PY) -m local openapi --output docs/openapi.json

bench: $(VENV)/.installed $(VENV_LAMBDA)/.installed build-host  ## per route: init and handler time, DynamoDB requests, layer size, cost (bench/results/latest.json)
	BUILD_DIR=$(BUILD_DIR_HOST) LAMBDA_PYTHON=$(VENV_LAMBDA)/bin/python PYTHONPATH=layers/shared:. $(PY) -m bench

RUNTIME_PROVIDED := boto3 botocore s3transfer jmespath urllib3 python-dateutil six
lock: $(VENV)/.installed  ## re-lock the layer's and the runtime's trees with hashes (after editing a requirements .in file)
	$(VENV)/bin/uv pip compile --quiet --generate-hashes --python-version 3.13 --python-platform aarch64-manylinux_2_17 \
		$(addprefix --no-emit-package ,$(RUNTIME_PROVIDED)) --custom-compile-command "make lock" \
		layers/shared/requirements.in -o layers/shared/requirements.txt
	$(VENV)/bin/uv pip compile --quiet --generate-hashes --python-version 3.13 --custom-compile-command "make lock" \
		requirements-runtime.in -o requirements-runtime.txt

clean:  ## remove build output and local data (not the virtual environments)
	rm -rf .aws-sam .local .pytest_cache .ruff_cache .mypy_cache .hypothesis
