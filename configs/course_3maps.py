"""The lecture's example: 28×28 → 3 feature maps of 5×5 (3×24×24) → 2×2 max pooling (3×12×12) →
10 softmax outputs, sigmoid (σ) activations, on the embedded 5,000 MNIST digits (`mnist_5k`).

    python -m experiments.shapes --config=configs/course_3maps.py
    python -m experiments.train --config=configs/course_3maps.py --workdir=runs/course_3maps

Shape table: conv1 28×28×1 → 24×24×3 (78 parameters: 3·(5·5 + 1)), pool1 → 12×12×3, dense1
432 → 10; 4,408 parameters in all. The kernel grid (runs/course_3maps/kernels_conv1.png) draws
the three shared 5×5 kernels as colours, as on the course's slide.
Measured: test accuracy 91.6% at the best validation epoch (8; final 93.7%) after 10 epochs
(machine, date and time: docs/results.md, "Other configs").
"""

from cnn_jax.config import schema_defaults
from cnn_jax.presets import full_layers


def get_config():
    config = schema_defaults()
    config.dataset = "mnist_5k"
    config.validation_size = 500
    config.model.layers = full_layers("course_3maps")  # conv 3@5×5 σ → max 2×2 → dense 10
    config.optimizer = "sgd"
    config.learning_rate = 0.1
    config.batch_size = 10
    config.num_epochs = 10
    return config
