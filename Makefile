# Quick start: `make run` trains the default network on the embedded MNIST set; `make test` runs
# the tests. Both create .venv and install requirements.txt on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
WORKDIR ?= runs/default
ARGS ?=

.PHONY: run test lint shapes bench clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

run: $(VENV)/.installed
	$(PY) -m experiments.train --config=configs/default.py --workdir=$(WORKDIR) $(ARGS)

test: $(VENV)/.installed
	$(PY) -m pytest -q -n 2 --dist=loadfile tests $(ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check cnn_jax experiments tests configs

shapes: $(VENV)/.installed
	$(PY) -m experiments.shapes --config=configs/default.py $(ARGS)

bench: $(VENV)/.installed
	$(PY) -m pip install --quiet -r requirements-bench.txt
	$(PY) -m experiments.benchmark $(ARGS)

clean:
	rm -rf $(VENV) runs sweeps .pytest_cache
