"""Rebuilds a sweep's report from its files (also while the sweep runs).

    python -m experiments.report --workdir=sweeps/filter

Writes results.csv, results.jsonl, summary.csv, plots/*.png, tensorboard/ (HParams) and
report.md in the workdir, and prints the report's path.
"""

from absl import flags

from cnn_jax import cli

WORKDIR = flags.DEFINE_string("workdir", None, "Folder of the sweep.")
flags.mark_flag_as_required("workdir")


def main(argv: list[str]) -> None:
    del argv
    from cnn_jax.sweep.report import build_report

    try:
        print(build_report(WORKDIR.value))
    except FileNotFoundError as error:
        cli.fail(str(error))


if __name__ == "__main__":
    cli.run(main)
