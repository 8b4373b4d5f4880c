"""Prints the shape table of a config's network: each layer's size relation, costs, receptive field.

    python -m experiments.shapes --config=configs/default.py
    python -m experiments.shapes --config=configs/default.py --config.model.preset=course_3maps
    python -m experiments.shapes --config=configs/default.py --input_shape=32,32,3 --markdown
"""

from absl import flags
from ml_collections import config_flags

from cnn_jax import cli
from cnn_jax.config import validate_config
from cnn_jax.summary import format_table, shape_table, traced_shapes

CONFIG = config_flags.DEFINE_config_file("config", "configs/default.py", "Training config file.")
INPUT_SHAPE = flags.DEFINE_list("input_shape", ["28", "28", "1"], "height,width,channels")
MARKDOWN = flags.DEFINE_bool("markdown", False, "Print a Markdown table.")


def main(argv: list[str]) -> None:
    del argv
    try:
        input_shape = tuple(int(d) for d in INPUT_SHAPE.value)
    except ValueError:
        cli.fail(f"--input_shape must be three integers, got {','.join(INPUT_SHAPE.value)}")
    network = validate_config(CONFIG.value, input_shape)
    rows = shape_table(network, input_shape)
    traced = traced_shapes(network, input_shape)
    mismatched = [row.name for row in rows if traced[row.name] != row.output_shape]
    print(format_table(rows, markdown=MARKDOWN.value))
    if mismatched:
        cli.fail(f"traced shapes differ from the formula for layers {mismatched}")
    print(f"\nformula checked against jax.eval_shape for all {len(rows)} layers")


if __name__ == "__main__":
    cli.run(main)
