"""Learning rate × seed: η ∈ {0.01, 0.03, 0.1, 0.3, 1.0} × 4 seeds (20 trials, one program).

    python -m experiments.sweep --config=configs/sweeps/lr_seed.py --workdir=sweeps/lr

Every trial has the same architecture and batch size, so all 20 share one compiled training step
(η and the seed are arrays in the training state): the first trial compiles, the other 19 show
`programs compiled` 0 in report.md. Expect η 0.1 best (about 96%) and η 1.0 at chance level
(the ReLUs die; a NaN would end the trial as `diverged`); measured: docs/results.md, "Sweep
presets".

On a GPU, `--executor=auto` (the default) trains the 20 trials as one vmapped program; on CPU it
runs them one by one, the faster way there (BENCHMARKS.md), with the same accuracies up to float
rounding.
"""

from cnn_jax.sweep.bases import sweep_config


def get_config():
    return sweep_config("lr_seed", [{"product": {"learning_rate": [0.01, 0.03, 0.1, 0.3, 1.0]}}],
                 [0, 1, 2, 3])
