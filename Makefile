# The two quick-start commands: `make run` (the main job) and `make test` (the test suite).
# Both create .venv with the project installed on first use; they need only python3 >= 3.11
# and the package registry (the raw data come from ../shared/data, offline).
PYTHON ?= python3
VENV ?= .venv
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test lint install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/foedus run

test: $(STAMP)
	$(VENV)/bin/python -m pytest

# ruff, configured in pyproject.toml ([tool.ruff]); CI runs it before the tests
lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) data/interim data/processed
