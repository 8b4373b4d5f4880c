"""Training and evaluation: `train_and_evaluate(config, workdir) -> results`."""

from cnn_jax.train.loop import Diverged, pick_strategy, train_and_evaluate
from cnn_jax.train.workdir import WorkdirError

__all__ = ["Diverged", "WorkdirError", "pick_strategy", "train_and_evaluate"]
