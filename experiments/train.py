"""Trains and evaluates one config; rerunning the same command resumes from the last checkpoint.

    python -m experiments.train --config=configs/default.py --workdir=runs/default
    python -m experiments.train --config=configs/default.py --workdir=runs/x --config.num_epochs=2

The workdir receives config.json, metrics.jsonl (shape table first, then train/epoch records),
TensorBoard events (tensorboard/), checkpoints/, plots (*.png), status.json and results.json.

Exit codes: 0 done, 1 diverged (NaN/inf; metrics and the last good checkpoint are kept),
2 bad flags/config/data/workdir (one `error:` line; --verbose for a traceback),
130 stopped by SIGINT/SIGTERM after saving a checkpoint (rerun the command to go on).
"""

import sys

from absl import flags

from cnn_jax import cli
from cnn_jax.compilation_cache import enable_compilation_cache
from cnn_jax.train import train_and_evaluate
from cnn_jax.train.devices import initialize_distributed

CONFIG = cli.define_config_file("config", "configs/default.py", "Training config file.")
WORKDIR = flags.DEFINE_string("workdir", "runs/default", "Folder for checkpoints, logs and plots.")
OVERWRITE = flags.DEFINE_bool("overwrite", False, "Discard a previous run in --workdir.")
DISTRIBUTED = flags.DEFINE_bool(
    "distributed", False, "Call jax.distributed.initialize() first (multi-host runs).")
EXIT_CODES = {"done": 0, "diverged": 1, "interrupted": cli.INTERRUPTED_EXIT_CODE}


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        cli.fail(f"unexpected arguments {argv[1:]}; options are flags such as --workdir=...")
    if DISTRIBUTED.value:
        initialize_distributed()
    enable_compilation_cache()
    results = train_and_evaluate(CONFIG.value, WORKDIR.value, overwrite=OVERWRITE.value)
    sys.exit(EXIT_CODES.get(results["status"], 1))


if __name__ == "__main__":
    cli.run(main)
