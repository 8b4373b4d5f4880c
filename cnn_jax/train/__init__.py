"""Training and evaluation.

    train_and_evaluate(config, workdir)     one run (cnn_jax.train.run)
    train_vmapped(configs, workdirs)        same-shape runs as one vmapped program
    prepare(configs, dataset) → Experiment  the state, data and compiled step of a group of runs
    fit(experiment, hooks)                  the loop (hooks: cnn_jax.train.hooks)

The path of one step: run.py (`train_and_evaluate` → `fit`) → experiment.py (the compiled
`one_step`) → cnn_jax.network.Network.apply → cnn_jax.layers. See docs/architecture.md.
"""

from cnn_jax.errors import GroupError, WorkdirError
from cnn_jax.train.experiment import Experiment, prepare
from cnn_jax.train.hooks import Hook
from cnn_jax.train.run import fit, program_key, train_and_evaluate, train_vmapped

__all__ = ["Experiment", "GroupError", "Hook", "WorkdirError", "fit", "prepare", "program_key",
           "train_and_evaluate", "train_vmapped"]
