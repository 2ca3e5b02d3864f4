# Each target creates .venv and installs attnkit (with the tested versions) on first use.
# pip --no-compile: byte-compiling every file of torch up front doubled the install time.
# Instead each module is compiled the first time it is imported and cached, which needs
# bytecode writing on: where PYTHONDONTWRITEBYTECODE is set, every process (the tests start
# many) would compile torch again.
RUN := env -u PYTHONDONTWRITEBYTECODE
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# pytest-xdist: one worker per core, each test file on one worker (its module fixtures once)
PYTEST_WORKERS ?= -n auto --dist loadfile

.PHONY: demo test lint format bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --no-compile -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(RUN) $(VENV)/bin/attnkit demo

test: $(STAMP)
	$(RUN) $(PY) -m pytest $(PYTEST_WORKERS) $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples conftest.py
	$(VENV)/bin/ruff format --check src tests benchmarks examples conftest.py
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff check --fix src tests benchmarks examples conftest.py
	$(VENV)/bin/ruff format src tests benchmarks examples conftest.py

bench: $(STAMP)
	$(PY) benchmarks/bench_attention.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
