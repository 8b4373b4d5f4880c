"""The training configs the sweep presets (configs/sweeps/) start from, and helpers that
assemble a sweep config (`sweep_config`, a grid) or a search config (`search_config`, Optuna).

`mnist_base()`: the course network below on `mnist` (the book's split: 50,000 train / 10,000
validation / 10,000 test), what the one-axis sweeps and the course study run on.
`small_base()`, for tests and quick runs:

CP(20) → CP(20) → softmax on the embedded MNIST digits (3,500 train / 500 validation / 1,000
test), 3 epochs of plain SGD, mini-batch 20, η = 0.1: about 96% test accuracy, 3–6 s per trial
on 2 CPU cores after its first compile. Layer indices for swept keys:

    model.layers[0]  conv1: 20 maps 5×5, stride 1, VALID, ReLU
    model.layers[1]  pool1: max 2×2
    model.layers[2]  conv2: 20 maps 5×5
    model.layers[3]  pool2: max 2×2
    model.layers[4]  dense: 10 logits
"""

import ml_collections

from cnn_jax.config import schema_defaults
from cnn_jax.presets import complete


def small_base() -> ml_collections.ConfigDict:
    config = schema_defaults()
    config.dataset = "mnist_5k"
    config.validation_size = 500
    config.model.layers = complete([
        {"type": "conv", "features": 20, "kernel": 5, "activation": "relu"},
        {"type": "pool", "pool_type": "max", "window": 2},
        {"type": "conv", "features": 20, "kernel": 5, "activation": "relu"},
        {"type": "pool", "pool_type": "max", "window": 2},
        {"type": "dense", "features": 10, "activation": "identity"},
    ])
    config.optimizer = "sgd"
    config.learning_rate = 0.1
    config.batch_size = 20
    config.num_epochs = 3
    config.plots = False  # per-trial kernel plots: off in sweeps (set True to keep them)
    config.checkpoint_keep = 1
    return config


def mnist_base() -> ml_collections.ConfigDict:
    """`small_base()` on the full MNIST with the book's split (validation = its last 10,000
    training images), same network and training."""
    config = small_base()
    config.dataset = "mnist"
    config.validation_size = 10_000
    return config


def sweep_config(name, axes, seeds, base=None, baseline=None):
    """A sweep config: {name, base (default `small_base()`), axes, seeds} (see `grid.py`), and
    `report_baseline`, the configuration the report compares every other one with (e.g. 'k5')."""
    config = ml_collections.ConfigDict()
    config.name = name
    config.base = base if base is not None else small_base()
    config.axes = axes
    config.seeds = tuple(seeds)  # a tuple: overridable as --config.seeds="(0, 1, 2)"
    config.report_baseline = baseline or ""
    return config


def search_config(name, space, *, num_trials, base=None, baseline=None, **options):
    """A search sweep config: {name, base, search: {space, num_trials, sampler, pruner, seed,
    ...}} (see `search.py`); `options` are the other keys of the search section."""
    config = ml_collections.ConfigDict()
    config.name = name
    config.base = base if base is not None else small_base()
    config.search = ml_collections.ConfigDict({"num_trials": num_trials, **{
        key: tuple(value) if isinstance(value, list) else value
        for key, value in options.items()}})
    config.search.space = space
    config.report_baseline = baseline or ""
    return config
