"""Runs an experiment script with a training callback that sends the process a signal right after
a given step: the tests' fault injection (tests/test_faults.py, tests/test_sweep.py).

    python tests/fault_driver.py --after=17 [--signal=SIGTERM] -m experiments.train ARGS...

It wraps `cnn_jax.train.run._train`, through which every run of the process trains (a lone run,
a vmapped group, each trial of a sweep), so the signal fires in the first run that takes that
step. The production code reads no environment variable for this.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import kill_after  # noqa: E402


def main(argv: list[str]) -> None:
    after, name, rest = None, "SIGKILL", list(argv)
    while rest and rest[0] != "-m":
        option = rest.pop(0)
        if option.startswith("--after="):
            after = int(option.split("=", 1)[1])
        elif option.startswith("--signal="):
            name = option.split("=", 1)[1]
        else:
            raise SystemExit(f"fault_driver: unknown option {option}")
    if after is None or len(rest) < 2:
        raise SystemExit(__doc__)
    module, args = rest[1], rest[2:]

    from cnn_jax.train import run

    original = run.fit

    def with_fault(experiment, hooks=(), **keywords):
        return original(experiment, [*hooks, kill_after(after, name)], **keywords)

    run.fit = with_fault
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
