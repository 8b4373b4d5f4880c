"""Rebuilds a sweep's report from its files (also while the sweep runs).

    python -m experiments.report --workdir=sweeps/filter

Writes results.csv, results.jsonl, summary.csv, plots/*.png, tensorboard/ (HParams) and
report.md in the workdir, and prints the report's path.
"""

from pathlib import Path

from absl import flags

from cnn_jax import cli

WORKDIR = flags.DEFINE_string("workdir", None, "Folder of the sweep.")
flags.mark_flag_as_required("workdir")


def main(argv: list[str]) -> None:
    del argv
    from cnn_jax.sweep.report import build_report
    from cnn_jax.train.workdir import check_writable

    workdir = Path(WORKDIR.value)
    if not workdir.is_dir():
        cli.fail(f"{workdir} is not a sweep workdir (no sweep.json): "
                 + ("it does not exist" if not workdir.exists() else "not a directory"))
    check_writable(workdir)  # the report is written there: WorkdirError → one error line
    try:
        print(build_report(workdir))
    except FileNotFoundError as error:
        cli.fail(str(error))
    except OSError as error:  # e.g. a read-only plots/ folder
        cli.fail(f"the report cannot be written in {workdir}: {error.strerror or error} "
                 f"({error.filename})")


if __name__ == "__main__":
    cli.run(main)
