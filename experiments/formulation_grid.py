"""Times every formulation `cnn_jax.layers.formulations.choose` could pick, per network and batch.

    python -m experiments.formulation_grid [--networks=nielsen_cp2_fc100_relu,configs/mnist_fast.py]
        [--batch_sizes=10,64,128,256,1024] [--repeats=3] [--images=1500] [--out=FILE.jsonl]
        [--scan]

One worker process per (network, batch size); within it the candidates alternate, so each
row's ratios share one process, backend (XLA_FLAGS as `cnn_jax.backend` sets them) and load.
Prints a line per row (img/s, ratio to the layers' own lax/lax/1) and writes the rows as JSON
lines to --out. BENCHMARKS.md holds the measured table and the rule derived from it.
"""

from __future__ import annotations

import json
import os

from absl import flags

from cnn_jax import cli

SHIPPED = ["nielsen_fc100", "nielsen_cp1_fc100", "nielsen_cp2_fc100", "nielsen_cp2_fc100_relu",
           "nielsen_cp2_fc100x2", "nielsen_cp2_fc1000_dropout", "course_3maps", "lenet5",
           "configs/mnist_fast.py"]
_NETWORKS = flags.DEFINE_list("networks", SHIPPED, "presets or config files")
_BATCHES = flags.DEFINE_list("batch_sizes", ["10", "64", "128", "256", "1024"], "batch sizes")
_REPEATS = flags.DEFINE_integer("repeats", 3, "alternated repetitions", lower_bound=1)
_IMAGES = flags.DEFINE_integer("images", 1500, "training images per repetition", lower_bound=1)
_OUT = flags.DEFINE_string("out", "", "JSON-lines file for the rows ('' → print only)")
_SCAN = flags.DEFINE_bool("scan", False, "time one jitted step per batch against lax.scan-fused "
                          "steps, with XLA's and the canonical gradient convolutions, instead")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        cli.fail(f"unexpected arguments {argv[1:]}; options are flags such as --repeats=3")
    try:
        sizes = [int(text) for text in _BATCHES.value]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        cli.fail(f"--batch_sizes={','.join(_BATCHES.value)} is not allowed: positive integers")
    from cnn_jax.bench.formulation_grid import network_layers, run_grid

    for name in _NETWORKS.value:
        try:
            network_layers(name)
        except (KeyError, ValueError, OSError) as error:
            cli.fail(f"--networks: {name} is neither a preset nor a config file ({error})")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    rows = run_grid(_NETWORKS.value, sizes, repeats=_REPEATS.value, images=_IMAGES.value,
                    scan=_SCAN.value)
    if _OUT.value:
        with open(_OUT.value, "w") as file:
            file.writelines(json.dumps(row) + "\n" for row in rows)


if __name__ == "__main__":
    cli.run(main)
