"""Times a sweep's trials run one at a time against several at a time (`--parallel`), on this
machine, and checks that the accuracies are identical; prints a markdown table.

    python -m experiments.sweep_throughput --config=configs/sweeps/filter_size.py \
        --workdir=/tmp/throughput --max_trials=6 --counts=1,2

Every count starts afresh in workdir/parallel<N> (an existing one is refused). The CPU model,
cores and XLA_FLAGS are printed with the table; run it on a quiet machine (BENCHMARKS.md).
"""

import os
from pathlib import Path

from absl import flags

from cnn_jax import cli

CONFIG = cli.define_config_file("config", None, "Sweep config file (configs/sweeps/).")
WORKDIR = flags.DEFINE_string("workdir", None, "Folder for the runs (one subfolder per count).")
MAX_TRIALS = flags.DEFINE_integer("max_trials", 6, "Trials per run (the first in grid order).",
                                  lower_bound=1)
COUNTS = flags.DEFINE_list("counts", ["1", "2"], "Trials at a time to compare, first = 1×.")
PIN_CPUS = flags.DEFINE_bool("pin_cpus", False, "Each worker on its own share of the CPUs.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv: list[str]) -> None:
    del argv
    from cnn_jax.provenance import cpu_model
    from cnn_jax.sweep.throughput import format_table, measure_parallel

    try:
        counts = tuple(int(count) for count in COUNTS.value)
    except ValueError:
        cli.fail(f"--counts must be whole numbers, got {','.join(COUNTS.value)}")
    if not counts or min(counts) < 1:
        cli.fail(f"--counts must be whole numbers >= 1, got {','.join(COUNTS.value)}")
    root = Path(WORKDIR.value)
    taken = [str(root / f"parallel{n}") for n in counts if (root / f"parallel{n}").exists()]
    if taken:
        cli.fail(f"{', '.join(taken)} exist already: pass a new --workdir (every count must "
                 f"start from cold)")
    measured = measure_parallel(CONFIG.value, root, counts=counts, max_trials=MAX_TRIALS.value,
                                pin_cpus=PIN_CPUS.value)
    print(f"CPU: {cpu_model()}, {len(os.sched_getaffinity(0))} cores; "
          f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}; workers pinned: {PIN_CPUS.value}")
    print(format_table(measured))


if __name__ == "__main__":
    cli.run(main)
