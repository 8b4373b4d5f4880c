"""Learning rate × seed: η ∈ {0.01, 0.03, 0.1, 0.3, 1.0} × 4 seeds (20 trials, one program).

    python -m experiments.sweep --config=configs/sweeps/lr_seed.py --workdir=sweeps/lr

Every trial has the same architecture and batch size, so all 20 share one compiled training step
(η and the seed are arrays in the training state): the first trial compiles, the other 19 show
`programs compiled` 0 in report.md. Measured on 2 busy CPU cores, 2 min 13 s; mean ± std over
the 4 seeds: η 0.01 90.38 ± 1.36%, 0.03 94.58 ± 0.75%, 0.1 96.40 ± 0.14%, 0.3 95.50 ± 0.79%,
1.0 10.00% (the ReLUs die: chance level; a NaN would end the trial as `diverged`).

On a GPU, `--executor=auto` (the default) trains the 20 trials as one vmapped program; on CPU it
runs them one by one, which measured faster there (1 epoch each: 18.6 s one by one, 42.0 s with
`--executor=vmap`, same accuracies up to float rounding).
"""

from cnn_jax.sweep.bases import sweep_config


def get_config():
    return sweep_config("lr_seed", [{"product": {"learning_rate": [0.01, 0.03, 0.1, 0.3, 1.0]}}],
                 [0, 1, 2, 3])
