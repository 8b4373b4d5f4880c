"""The full product: filter size × stride × feature maps × pool type × window, one seed.

    python -m experiments.sweep --config=configs/sweeps/full_product.py --workdir=sweeps/full
    python -m experiments.sweep --config=configs/sweeps/full_product.py \
        --workdir=/shared/sweeps/full --executor=ray --ray_address=auto   # on a Ray cluster

4 × 3 × 5 × 3 × 2 = 360 trials. Every combination whose sizes do not fit is recorded as invalid
before anything trains (most stride-3 ones, and stride 2 with large kernels and 3×3 pooling:
conv2's 5×5 kernel no longer fits), so shapes.md shows which corner of the grid is impossible.
220 combinations are possible (counted by planning); each is a new architecture with a compile
of its own: on 2 CPU cores run it in parts with --max_trials, or with the Ray executor.
"""

from cnn_jax.sweep.bases import sweep_config


def get_config():
    axes = [{"product": {
        "model.layers[0].kernel": [3, 5, 7, 9],
        "model.layers[0].stride": [1, 2, 3],
        "model.layers[0].features": [1, 3, 6, 20, 40],
        "model.layers[1].pool_type": ["max", "avg", "none"],
        "model.layers[1].window": [2, 3],
    }}]
    return sweep_config("full_product", axes, [0])
