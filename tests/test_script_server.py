"""A script run through tests/script_server.py (a fork of a process that imported the project once)
is a fresh `python -m` run: the same exit code, output and files. The refusal and training tests
that call `run_script` rely on it."""

from __future__ import annotations

import json
import re

import pytest
from conftest import (
    assert_trees_equal,
    checkpoint,
    read_records,
    run_script,
    tiny_args,
    without_timing,
)

pytestmark = pytest.mark.usefixtures("train_env")


def test_a_refusal_prints_what_a_fresh_interpreter_prints(tmp_path):
    args = tiny_args(tmp_path / "run", "--config.learnig_rate=0.1")
    served, fresh = run_script(*args), run_script(*args, fresh=True)
    assert served.returncode == fresh.returncode == 2
    assert (served.stdout, served.stderr) == (fresh.stdout, fresh.stderr)
    assert not (tmp_path / "run").exists()


def test_a_training_run_writes_what_a_fresh_interpreter_writes(tmp_path):
    outputs, workdirs = {}, {}
    for fresh in (False, True):
        workdirs[fresh] = tmp_path / ("fresh" if fresh else "served")
        result = run_script(*tiny_args(workdirs[fresh]), fresh=fresh)
        assert result.returncode == 0, result.stderr[-2000:]
        output = (result.stdout + result.stderr).replace(str(workdirs[fresh]), "WORKDIR")
        outputs[fresh] = re.sub(r"\d+(\.\d+)?", "#", output)  # times differ
    assert outputs[False] == outputs[True]
    served, fresh = workdirs[False], workdirs[True]
    assert read_records(served) == read_records(fresh)
    served_results, fresh_results = (json.loads((w / "results.json").read_text())
                                     for w in (served, fresh))
    assert without_timing(served_results) == without_timing(fresh_results)
    assert sorted(p.name for p in served.iterdir()) == sorted(p.name for p in fresh.iterdir())
    step, tree = checkpoint(served)
    assert step == checkpoint(fresh)[0]
    assert_trees_equal(tree, checkpoint(fresh)[1])
