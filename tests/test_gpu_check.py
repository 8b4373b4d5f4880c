"""experiments/gpu_check.sh, the one device call of a session lent a GPU, rehearsed on CPU in its
quick mode so that it cannot rot unnoticed: every step runs and writes its file."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import REPO, script_env


@pytest.mark.slow
def test_the_gpu_check_script_runs_every_step_on_cpu(tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    env = script_env(GPU_CHECK_DEVICE="cpu", GPU_CHECK_QUICK="1", PYTHON=sys.executable,
                     OUT=str(out), GPU_CHECK_WORK=str(work))
    result = subprocess.run(["bash", "experiments/gpu_check.sh"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "jax" in (out / "env.txt").read_text()
    assert "nielsen_cp2_fc100_relu" in (out / "bench.md").read_text()
    assert "| project-fast |" in (out / "tta.md").read_text()
    table = (out / "nielsen.md").read_text()
    assert "| 1 | FC100 → softmax | 97.80% |" in table and "| 2 |" in table.split("\n| 1 |")[1]
