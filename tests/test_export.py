"""`python -m experiments.export`: a trained run as a serialized `jax.export` program that plain
JAX runs in a fresh process without cnn_jax, giving the logits of `load_run(...).logits`."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import run_script, script_env, tiny_config

from cnn_jax.inference import load_run
from cnn_jax.train import train_and_evaluate

pytestmark = pytest.mark.usefixtures("train_env")

# A fresh interpreter that cannot import cnn_jax (sys.modules entry None makes import fail).
PLAIN_JAX = """
import sys
sys.modules["cnn_jax"] = None
import jax
import numpy as np
program = jax.export.deserialize(bytearray(open(sys.argv[1], "rb").read()))
images = np.load(sys.argv[2])
np.save(sys.argv[3], np.asarray(program.call(images)))
np.save(sys.argv[4], np.asarray(program.call(images[:1])))
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("export") / "run"
    train_and_evaluate(tiny_config(num_epochs=1), workdir)
    return workdir


def test_the_exported_program_gives_load_runs_logits_in_plain_jax(run, tmp_path):
    out = tmp_path / "net.jax_export"
    result = run_script(f"--workdir={run}", f"--out={out}", module="experiments.export")
    assert result.returncode == 0, result.stderr[-2000:]
    assert str(out) in result.stdout
    facts = json.loads((tmp_path / "net.jax_export.json").read_text())
    assert facts["input"]["shape"] == ["batch", 28, 28, 1] and facts["classes"] == 10
    images = np.random.default_rng(7).random((5, 28, 28, 1), dtype=np.float32)
    np.save(tmp_path / "images.npy", images)
    plain = subprocess.run(
        [sys.executable, "-c", PLAIN_JAX, str(out), str(tmp_path / "images.npy"),
         str(tmp_path / "logits.npy"), str(tmp_path / "one.npy")],
        cwd=tmp_path, env={**script_env(), "PYTHONPATH": ""}, capture_output=True, text=True,
        timeout=120, check=False)
    assert plain.returncode == 0, plain.stderr[-2000:]
    model = load_run(run)
    assert facts["step"] == model.step
    expected = model.logits(images)
    np.testing.assert_allclose(np.load(tmp_path / "logits.npy"), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "one.npy"), expected[:1], rtol=1e-5, atol=1e-5)


def test_exporting_a_folder_that_is_not_a_run_is_one_error_line(tmp_path):
    result = run_script(f"--workdir={tmp_path / 'missing'}", module="experiments.export")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and "not a run folder" in lines[0], lines
