"""The course's hyper-parameter study on the full MNIST (the book's split): an Optuna TPE search
over the lecture's questions, with early stopping, then the finalists with 5 seeds.

    python -m experiments.sweep --config=configs/sweeps/course_study.py --workdir=sweeps/study

Rerunning the same command resumes it (Ctrl-C or kill -9 at any point); --max_trials=N runs it
in parts. The network: conv1 → pool1 → conv2 (5×5, stride 1, VALID) → pool2 (max 2×2) → 10
logits, ReLU, plain SGD η = 0.1, mini-batch 20, 3 epochs (`cnn_jax.sweep.bases.mnist_base`). The
search space (every draw whose shapes the size formula rejects is recorded in shapes.md and
another is drawn; it does not count against the budget):

    conv1 filter size      3 … 9                     model.layers[0].kernel
    conv1 stride           1 or 2                    model.layers[0].stride
    conv1 padding          VALID or SAME             model.layers[0].padding
    conv1 feature maps     4 … 64 (log-uniform)      model.layers[0].features
    pool1 type             max, avg, l2, none        model.layers[1].pool_type
    pool1 window           2 or 3                    model.layers[1].window
    conv2 feature maps     8 … 128 (log-uniform)     model.layers[2].features

Early stopping: successive halving on the validation accuracy after each epoch (reduction factor
3: after epoch 1 a trial goes on only if it is in the best third of the trials that reached
epoch 1). The 2 best trials by validation accuracy are then trained again with seeds 1–4 (5 seeds
each), so the report's paired tests and intervals compare them on equal footing; the report adds
hyper-parameter importance (fANOVA) over the finished trials.

Budget: 18 trials and 2 finalists, sized to fit 90 minutes on a 2-core CPU; the measured wall
time, the answers and their evidence are in docs/study.md. The space's draws cost on average 3×
the base network's multiply-adds (the largest, 64 and 128 maps without pooling and SAME
padding, 66×): a study that draws several such networks runs longer; --max_trials=N splits it
into parts.
"""

from cnn_jax.sweep.bases import mnist_base, search_config

NUM_TRIALS = 18


def get_config():
    space = [
        {"key": "model.layers[0].kernel", "int": [3, 9]},
        {"key": "model.layers[0].stride", "choices": [1, 2]},
        {"key": "model.layers[0].padding", "choices": ["VALID", "SAME"]},
        {"key": "model.layers[0].features", "log_int": [4, 64]},
        {"key": "model.layers[1].pool_type", "choices": ["max", "avg", "l2", "none"]},
        {"key": "model.layers[1].window", "choices": [2, 3]},
        {"key": "model.layers[2].features", "log_int": [8, 128]},
    ]
    return search_config("course_study", space, num_trials=NUM_TRIALS, sampler="tpe",
                         pruner="halving", seed=0, min_epochs=1, reduction_factor=3,
                         startup_trials=8, finalists=2, finalist_seeds=(0, 1, 2, 3, 4),
                         base=mnist_base())
