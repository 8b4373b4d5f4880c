"""Trains and evaluates one config; rerunning the same command resumes from the last checkpoint.

    python -m experiments.train --config=configs/default.py --workdir=runs/default
    python -m experiments.train --config=configs/default.py --workdir=runs/x --config.num_epochs=2

Exit codes: 0 done, 1 diverged (NaN/inf; metrics and the last good checkpoint are kept),
2 bad flags/config/data, 130 stopped by SIGINT/SIGTERM after saving a checkpoint.
"""

import sys

from absl import flags
from ml_collections import config_flags

from cnn_jax import cli
from cnn_jax.train import WorkdirError, train_and_evaluate
from cnn_jax.train.devices import enable_compilation_cache, initialize_distributed

CONFIG = config_flags.DEFINE_config_file("config", "configs/default.py", "Training config file.")
WORKDIR = flags.DEFINE_string("workdir", "runs/default", "Folder for checkpoints, logs and plots.")
OVERWRITE = flags.DEFINE_bool("overwrite", False, "Discard a previous run in --workdir.")
DISTRIBUTED = flags.DEFINE_bool(
    "distributed", False, "Call jax.distributed.initialize() first (multi-host runs).")
EXIT_CODES = {"done": 0, "diverged": 1, "interrupted": 130}


def main(argv: list[str]) -> None:
    del argv
    if DISTRIBUTED.value:
        initialize_distributed()
    enable_compilation_cache()
    try:
        results = train_and_evaluate(CONFIG.value, WORKDIR.value, overwrite=OVERWRITE.value)
    except WorkdirError as error:
        cli.fail(str(error))
    if results["status"] == "diverged":
        print(f"diverged: {results.get('reason')}; metrics and the last good checkpoint are kept",
              file=sys.stderr)
    sys.exit(EXIT_CODES.get(results["status"], 1))


if __name__ == "__main__":
    cli.run(main)
