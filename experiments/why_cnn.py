"""The course's ablation: fully connected → local receptive fields → shared weights → + pooling.

    python -m experiments.why_cnn --workdir=runs/why_cnn                 # ~1 min on 2 CPUs
    python -m experiments.why_cnn --workdir=runs/why_fashion --dataset=fashion_mnist_debian

One seed on the small embedded set, for the pictures: the comparison a reviewer accepts (the same
four networks on the full MNIST, 5 seeds, intervals and paired tests) is the sweep
`python -m experiments.sweep --config=configs/sweeps/why_cnn.py` (docs/study.md).

Writes workdir/results.md (accuracy, parameters, multiply-adds, train time per variant),
bars.png; each variant's run folder holds its kernel grids (variant2: the unshared kernels by
position; variant3: the shared ones), feature maps and learning curves.

Measured on the embedded MNIST set (3,500 training images, 8 epochs, ReLU, SGD η = 0.1,
mini-batch 10; 2 CPU cores): fully connected 92.9% (23,860 parameters) → local receptive fields
93.5% (414,730) → shared weights 95.9% (115,730) → + pooling 96.7% (29,330): each idea adds
accuracy, and sharing cuts the first layer from 299,520 to 520 parameters. With
--activation=sigmoid --epochs=5: 89.1%, 78.3%, 90.4%, 89.2% (sigmoid learns slowly here).
"""

from pathlib import Path

from absl import flags

from cnn_jax import cli
from cnn_jax.activations import ACTIVATIONS
from cnn_jax.compilation_cache import enable_compilation_cache
from cnn_jax.config import validate_config
from cnn_jax.data import dataset_info, dataset_names
from cnn_jax.provenance import describe_devices
from cnn_jax.research import why_cnn
from cnn_jax.train.logs import atomic_write_text

WORKDIR = flags.DEFINE_string("workdir", "runs/why_cnn", "Output folder.")
DATASET = flags.DEFINE_string("dataset", "mnist_5k", "Data set (see cnn_jax.data.registry).")
EPOCHS = flags.DEFINE_integer("epochs", 8, "Epochs for every variant.", lower_bound=1)
TRAIN_SIZE = flags.DEFINE_integer("train_size", 0, "Training images (0: all).", lower_bound=0)
ACTIVATION = flags.DEFINE_enum("activation", "relu", sorted(ACTIVATIONS),
                               "Hidden activation (the course: sigmoid).")
MAPS = flags.DEFINE_integer("maps", 20, "Feature maps of the local and shared layers.",
                            lower_bound=1)
FC_UNITS = flags.DEFINE_integer("fc_units", 30, "Neurons of the fully connected variant.",
                                lower_bound=1)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        cli.fail(f"unexpected arguments {argv[1:]}; options are flags such as --epochs=8")
    if dataset_info(DATASET.value) is None:
        cli.fail(f"--dataset={DATASET.value} is not allowed: one of {dataset_names()}")
    config = why_cnn.base(DATASET.value, EPOCHS.value, TRAIN_SIZE.value)
    variant_list = why_cnn.variants(MAPS.value, 5, FC_UNITS.value, ACTIVATION.value)
    for variant in variant_list:  # every run's config, before anything is loaded or written
        variant_config = config.copy_and_resolve_references()
        variant_config.model.layers = [dict(layer) for layer in variant.layers]
        validate_config(variant_config)
    enable_compilation_cache()
    workdir = Path(WORKDIR.value)
    results = why_cnn.run(workdir, config, variant_list)
    text = (
        f"Data: {DATASET.value}, {EPOCHS.value} epochs, SGD η={config.learning_rate}, "
        f"mini-batch {config.batch_size}, {ACTIVATION.value}; device {describe_devices()}.\n\n"
        + why_cnn.table_markdown(results)
        + "\n\nThe course's comparison: 20 shared 5×5 maps have 5·5·20 + 20 = 520 parameters; "
        "30 fully connected neurons on 784 pixels have 784·30 + 30 = 23,550.\n\n"
        "Kernel grids: variant2/local_kernels_local1.png (unshared: one kernel per position), "
        "variant3/kernels_conv1.png (shared).\n"
    )
    atomic_write_text(workdir / "results.md", text)
    why_cnn.plot_bars(results, workdir / "bars.png")
    print(text)


if __name__ == "__main__":
    cli.run(main)
