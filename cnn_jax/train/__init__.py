"""Training and evaluation.

    train_and_evaluate(config, workdir)     one run (cnn_jax.train.run)
    train_vmapped(configs, workdirs)        same-shape runs as one vmapped program

The path of one step: run.py (setup) → loop.py (epochs, chunks, bookkeeping) → steps.py (the
compiled step) → cnn_jax.network.Network.apply → cnn_jax.layers. See docs/architecture.md.
"""

from cnn_jax.errors import GroupError, WorkdirError
from cnn_jax.train.run import VALUE_KEYS, program_key, train_and_evaluate, train_vmapped

__all__ = ["VALUE_KEYS", "GroupError", "WorkdirError", "program_key", "train_and_evaluate",
           "train_vmapped"]
