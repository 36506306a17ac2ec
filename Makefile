# make demo: set up, then run the system end to end on devstack.
# make test: set up, then lint, type-check and run every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test lint typecheck pytest demo bench clean infra package .venv-checkov

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

# checkov pins an old boto3, so it lives in its own virtual environment.
CHECKOV := .venv-checkov/.installed
$(CHECKOV): scripts/checkov-requirements.txt
	test -x .venv-checkov/bin/python || $(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install --quiet -r scripts/checkov-requirements.txt
	touch $(CHECKOV)

.venv-checkov: $(CHECKOV)

infra: setup
	$(BIN)/python -m infra.build

# The deployable template and zip, with bytecode in the zip (see docs/DEPLOY.md). With
# INFRA_CONFIG (a build configuration: extra volumes, egress rules, pool schedules), the merged
# template is built from it into build/infra/ first. The stage `sample` of .chalice/config.json
# holds placeholders that the template's overlay replaces; it is not named `dev`, chalice's
# default stage, so that `chalice.test.Client(app)` and `chalice local` never put its
# placeholder environment over the caller's own.
# With RUNNER_CONFIGS (a runner-configurations file: several runner configurations, see
# docs/DEPLOY.md section 11), likewise, alone or together with INFRA_CONFIG.
STAGE ?= sample
INFRA_CONFIG ?=
RUNNER_CONFIGS ?=
BUILT := $(or $(INFRA_CONFIG),$(RUNNER_CONFIGS))
MERGE_TEMPLATE := $(if $(BUILT),build/infra/template.yaml,infra/template.yaml)
package: setup
	$(if $(BUILT),$(BIN)/python -m infra.build $(if $(INFRA_CONFIG),--config $(INFRA_CONFIG)) \
		$(if $(RUNNER_CONFIGS),--runner-configs $(RUNNER_CONFIGS)) --output-dir build/infra)
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-eu-west-1} $(BIN)/chalice package --stage $(STAGE) \
		--merge-template $(MERGE_TEMPLATE) out/
	$(BIN)/python scripts/precompile_package.py out/deployment.zip

lint: setup
	$(BIN)/ruff check .

typecheck: setup
	$(BIN)/mypy chalicelib app.py

pytest: setup $(CHECKOV)
	$(BIN)/python -m pytest -n 2 --dist loadfile

test: lint typecheck pytest

demo: setup
	$(BIN)/python -m demo $(if $(SCENARIO),--scenario $(SCENARIO),)

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .venv-checkov out build .mypy_cache .ruff_cache .pytest_cache
