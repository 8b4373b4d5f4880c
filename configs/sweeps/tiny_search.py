"""Tiny search for tests and smoke runs: Optuna TPE over the tiny sweep's network, with early
stopping (successive halving on the validation accuracy after each epoch).

    python -m experiments.sweep --config=configs/sweeps/tiny_search.py --workdir=sweeps/tiny_s
    python -m experiments.sweep --config=configs/sweeps/tiny_search.py --workdir=sweeps/tiny_s \
        --config.search.sampler=sobol     # or random

conv1 (4 maps, k ∈ {5, 9}, stride ∈ {1, 3}) → pool1 (max or none, 2×2) → conv2 (4 maps 4×4) →
10 logits, learning rate log-uniform in [0.03, 0.3], 3 epochs on 300 training images of the
embedded MNIST set; 6 trials, the 2 best trained again with seeds 1 and 2. k9-s3-pmax is
impossible (conv2's 4×4 kernel on a 3×3 map): such a draw is recorded in shapes.md and another
is drawn.
"""

import importlib.util
from pathlib import Path

from cnn_jax.sweep.bases import search_config


def tiny_config():
    spec = importlib.util.spec_from_file_location("tiny", Path(__file__).resolve().parent
                                                  / "tiny.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def get_config():
    base = tiny_config().base
    base.num_epochs = 3
    space = [{"key": "model.layers[0].kernel", "choices": [5, 9]},
             {"key": "model.layers[0].stride", "choices": [1, 3]},
             {"key": "model.layers[1].pool_type", "choices": ["max", "none"]},
             {"key": "learning_rate", "log_float": [0.03, 0.3]}]
    return search_config("tiny_search", space, num_trials=6, sampler="tpe", pruner="halving",
                         seed=0, min_epochs=1, reduction_factor=2, finalists=2,
                         finalist_seeds=(0, 1, 2), startup_trials=3, base=base)
