"""Prints the shape table of a config's network: each layer's size relation, costs, receptive field.

    python -m experiments.shapes --config=configs/default.py
    python -m experiments.shapes --config=configs/course_3maps.py --config.model.layers[0].stride=2
    python -m experiments.shapes --config=configs/default.py --input_shape=32,32,3 --markdown
    python -m experiments.shapes --config=configs/sweeps/stride.py     # every configuration

The input shape is the config's data set's (e.g. 32×32×3 for tfds:cifar10) unless --input_shape
is given. A sweep config prints one table per configuration of its grid, the impossible ones
with the formula that refuses them.
"""

from absl import flags

from cnn_jax import cli
from cnn_jax.config import validate_config
from cnn_jax.data import dataset_info
from cnn_jax.summary import format_table, shape_table, traced_shapes

CONFIG = cli.define_config_file("config", "configs/default.py", "Training or sweep config file.")
INPUT_SHAPE = flags.DEFINE_list("input_shape", [], "height,width,channels (default: the data "
                                "set's image shape)")
MARKDOWN = flags.DEFINE_bool("markdown", False, "Print a Markdown table.")


def input_shape(dataset: str) -> tuple[int, int, int]:
    """--input_shape, else the image shape the data set is known to have."""
    if INPUT_SHAPE.value:
        try:
            shape = tuple(int(d) for d in INPUT_SHAPE.value)
        except ValueError:
            shape = ()
        if len(shape) != 3 or min(shape) < 1:
            cli.fail(f"--input_shape={','.join(INPUT_SHAPE.value)} is not allowed: three "
                     "positive integers height,width,channels, e.g. --input_shape=28,28,1")
        return shape
    info = dataset_info(dataset)
    if info is None or info.image_shape is None:
        cli.fail(f"the image shape of dataset {dataset!r} is known only once it is loaded; pass "
                 "--input_shape=height,width,channels")
    return info.image_shape


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        cli.fail(f"unexpected arguments {argv[1:]}; options are flags such as --config=...")
    config = CONFIG.value
    if "axes" in config and "base" in config:
        from cnn_jax.sweep.grid import load_sweep
        from cnn_jax.sweep.plan import by_group, describe, plan_all

        plans = plan_all(load_sweep(config).trials(),
                         input_shape(config.base.dataset) if INPUT_SHAPE.value else None)
        groups = by_group(plans)
        for group, members in groups.items():
            print(describe(group, members, markdown=MARKDOWN.value) + "\n")
        impossible = sum(1 for members in groups.values() if not members[0].valid)
        print(f"{len(groups)} configurations ({impossible} impossible), {len(plans)} trials")
        return
    shape = input_shape(config.dataset)
    network = validate_config(config, shape)
    rows = shape_table(network, shape)
    traced = traced_shapes(network, shape)
    mismatched = [row.name for row in rows if traced[row.name] != row.output_shape]
    print(format_table(rows, markdown=MARKDOWN.value))
    if mismatched:
        cli.fail(f"traced shapes differ from the formula for layers {mismatched}")
    print(f"\nformula checked against jax.eval_shape for all {len(rows)} layers")


if __name__ == "__main__":
    cli.run(main)
