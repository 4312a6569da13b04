# Two commands on a fresh machine with Python 3.11+ and make: `make run`, `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run demo test lint format bench clean screenshots

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/helpdesk serve $(ARGS)

demo: $(STAMP)
	$(BIN)/helpdesk serve --demo $(ARGS)

# Load tests first, alone on the machine (they measure its capacity), then the rest in
# parallel; coverage adds up across both and its floor is checked at the end.
test: $(STAMP)
	$(BIN)/python -m pytest -m load -n 0 --cov-fail-under=0 --junitxml=report-load.xml $(PYTEST_ARGS)
	$(BIN)/python -m pytest -m "not load" --cov-append $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/check-jsonschema --builtin-schema vendor.gitlab-ci --data-transform gitlab-ci .gitlab-ci.yml
	$(BIN)/hadolint --config .hadolint.yaml Dockerfile
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The console's browser tests, saving each page's screenshot where the README shows them.
screenshots: $(STAMP)
	HELPDESK_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest tests/browser -n 0 --no-cov $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench.provisioning $(ARGS)

clean:
	rm -rf $(VENV) build .helpdesk .pytest_cache .ruff_cache .mypy_cache .hypothesis coverage.xml report.xml report-load.xml .coverage*
