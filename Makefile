# Each target creates .venv and installs attnkit (with the tested versions) on first use.
# pip --no-compile, then one import of what the project uses with bytecode writing allowed:
# byte-compiling every file of torch up front doubled the install time, and where
# PYTHONDONTWRITEBYTECODE is set nothing would ever be cached (each process recompiled torch).
WARM := torch, attnkit.cli, attnkit.recipes, attnkit.viz.heatmap, matplotlib.pyplot, faker, \
	babel.dates, safetensors.torch, tqdm, numpy, pytest, hypothesis
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test lint format bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --no-compile -c constraints.txt -e ".[dev]"
	env -u PYTHONDONTWRITEBYTECODE $(PY) -c "import $(WARM)"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/attnkit demo

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks conftest.py
	$(VENV)/bin/ruff format --check src tests benchmarks conftest.py

format: $(STAMP)
	$(VENV)/bin/ruff check --fix src tests benchmarks conftest.py
	$(VENV)/bin/ruff format src tests benchmarks conftest.py

bench: $(STAMP)
	$(PY) benchmarks/bench_attention.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
