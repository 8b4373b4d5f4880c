"""A user's path: every script refuses bad flags in one line before doing any work, configs are
overridable field by field from the command line, finished runs can be extended, results carry
their provenance, and output is quiet and honest."""

from __future__ import annotations

import json

import pytest
from conftest import REPO, run_script, tiny_args, tiny_config

from cnn_jax.train import train_and_evaluate

pytestmark = pytest.mark.usefixtures("train_env")

TINY = "tests/configs/tiny.py"


def check_usage_error(result, *needles: str) -> str:
    """Exit 2, exactly one `error:` line that names every needle, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


# (script, args, needles of the error line); workdirs are under tmp_path and must stay absent.
BAD_FLAGS = [
    ("experiments.train", ["--config=configs/nope.py"], ["configs/nope.py", "no such config"]),
    ("experiments.train", [f"--config={TINY}", "--config.learnig_rate=0.1"],
     ["learnig_rate", 'did you mean "learning_rate"']),
    ("experiments.train", [f"--config={TINY}", "--config.batch_size=abc"], ["batch_size"]),
    ("experiments.train", [f"--config={TINY}", "--workdir="], ["workdir"]),
    ("experiments.train", [f"--config={TINY}", "extra"], ["unexpected arguments"]),
    ("experiments.shapes", ["--input_shape=28,28"], ["--input_shape", "three positive"]),
    ("experiments.shapes", ["--config.dataset=idx", "--config.idx_dir=/tmp"],
     ["idx", "--input_shape"]),
    ("experiments.sweep", ["--config=configs/sweeps/tiny.py", "--executor=threads"],
     ["executor", "threads"]),
    ("experiments.sweep", ["--config=configs/sweeps/tiny.py", "--parallel=two"],
     ["--parallel", "'auto' or a whole number", "'two'"]),
    ("experiments.sweep_throughput", ["--config=configs/sweeps/tiny.py", "--counts=1,0"],
     ["--counts", ">= 1"]),
    ("experiments.sweep", ["--config=configs/sweeps/tiny.py", "--vmap_models=0"],
     ["vmap_models"]),
    ("experiments.sweep", ["--config=configs/sweeps/tiny.py", "--max_trials=-1"],
     ["max_trials"]),
    ("experiments.sweep", ["--workdir=WORK"], ["--config"]),
    ("experiments.report", [], ["--workdir"]),
    ("experiments.report", ["--workdir=WORK"], ["sweep.json", "not a sweep workdir"]),
    ("experiments.nielsen_ch6", ["--rows=9"], ["--rows=9", "no row 9"]),
    ("experiments.nielsen_ch6", ["--rows=one"], ["--rows=one", "row numbers"]),
    ("experiments.nielsen_ch6", ["--seeds=0"], ["seeds"]),
    ("experiments.nielsen_ch6", ["--dataset=imagenet"], ["--dataset=imagenet"]),
    ("experiments.why_cnn", ["--epochs=0"], ["epochs"]),
    ("experiments.why_cnn", ["--dataset=imagenet"], ["imagenet"]),
    ("experiments.benchmark", ["--batch_sizes=10,x"], ["--batch_sizes", "x"]),
    ("experiments.benchmark", ["--networks=alexnet"], ["--networks", "alexnet"]),
    ("experiments.benchmark", ["--repeats=0"], ["repeats"]),
    ("experiments.evaluate", ["--workdir=WORK"], ["WORK"]),
]


@pytest.mark.parametrize(("module", "args", "needles"), BAD_FLAGS,
                         ids=[f"{m.split('.')[1]}:{' '.join(a)}" for m, a, _ in BAD_FLAGS])
def test_every_script_refuses_bad_flags_before_any_work(tmp_path, module, args, needles):
    work = tmp_path / "work"
    args = [arg.replace("WORK", str(work)) for arg in args]
    if module != "experiments.report" and not any(a.startswith("--workdir") for a in args) \
            and module not in ("experiments.shapes", "experiments.benchmark"):
        args.append(f"--workdir={work}")
    check_usage_error(run_script(*args, module=module, timeout=120),
                      *[n.replace("WORK", str(work)) for n in needles])
    assert not work.exists(), "nothing may be written before the inputs are known to be good"


def test_a_failed_start_does_not_block_the_corrected_command(tmp_path):
    workdir = tmp_path / "run"
    wrong = run_script(*tiny_args(workdir, "--config.dataset=idx",
                                  f"--config.idx_dir={tmp_path / 'nowhere'}"))
    check_usage_error(wrong, str(tmp_path / "nowhere"))
    assert not (workdir / "config.json").exists()
    four = run_script(*tiny_args(workdir, "--config.batch_size=10"),
                      XLA_FLAGS="--xla_force_host_platform_device_count=4")
    check_usage_error(four, "batch_size", "multiple of the number of devices (4)")
    fixed = run_script(*tiny_args(workdir, "--config.num_epochs=1"))
    assert fixed.returncode == 0, fixed.stderr[-2000:]


def table_row(stdout: str, layer: str) -> list[str]:
    """The cells of a layer's line of the printed shape table."""
    lines = [line for line in stdout.splitlines() if line.startswith(f"{layer} ")]
    assert len(lines) == 1, stdout
    return lines[0].split()


@pytest.mark.parametrize(("override", "layer", "out"), [
    ("--config.model.layers[0].padding=2", "conv1", "28×28×4"),  # a number for a text field
    ("--config.model.layers.0.dilation=2", "conv1", "20×20×4"),  # the README's form
    ("--config.model.layers[1].stride=1", "pool1", "23×23×4"),  # a field left at its default
])
def test_any_layer_field_is_overridable_in_both_forms(override, layer, out):
    result = run_script(f"--config={TINY}", override, module="experiments.shapes")
    assert result.returncode == 0, result.stderr[-2000:]
    assert out in table_row(result.stdout, layer), result.stdout


def test_preset_configs_list_their_layers_so_every_field_is_overridable():
    result = run_script("--config=configs/default.py", "--config.model.layers[2].kernel=3",
                        module="experiments.shapes")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "3×3," in table_row(result.stdout, "conv2")
    clash = run_script("--config=configs/default.py", "--config.model.preset=lenet5",
                       module="experiments.shapes")
    check_usage_error(clash, "model.preset", "lists its layers")


def test_shapes_reads_the_data_sets_image_shape_and_sweep_configs():
    cifar = run_script("--config.dataset=tfds:cifar10", module="experiments.shapes")
    assert cifar.returncode == 0 and "32×32×3" in cifar.stdout, cifar.stderr[-2000:]
    sweep = run_script("--config=configs/sweeps/stride.py", module="experiments.shapes")
    assert sweep.returncode == 0, sweep.stderr[-2000:]
    assert "3 configurations (1 impossible)" in sweep.stdout and "INVALID" in sweep.stdout


def test_a_finished_run_is_extended_by_raising_num_epochs(tmp_path):
    workdir = tmp_path / "run"
    first = train_and_evaluate(tiny_config(num_epochs=1), workdir)
    assert first["status"] == "done" and first["epochs"] == 1
    longer = train_and_evaluate(tiny_config(num_epochs=2), workdir)
    assert longer["status"] == "done" and longer["epochs"] == 2 and longer["step"] == 80
    reference = train_and_evaluate(tiny_config(num_epochs=2), tmp_path / "reference")
    assert longer["final_train_loss"] == reference["final_train_loss"]
    cosine = run_script(*tiny_args(workdir, "--config.num_epochs=3", "--config.schedule=cosine"))
    check_usage_error(cosine, "schedule")


def test_results_carry_their_provenance(tmp_path):
    results = train_and_evaluate(tiny_config(num_epochs=1), tmp_path / "run")
    record = results["provenance"]
    assert record["packages"]["jax"] and record["device"].startswith("1 × CPU")
    assert record["git"] is None or len(record["git"]["commit"]) == 40
    assert record["python"] and "command" in record
    assert json.loads((tmp_path / "run" / "results.json").read_text())["provenance"] == record


def test_redirected_output_has_a_line_per_epoch_and_no_bar(tmp_path):
    result = run_script(*tiny_args(tmp_path / "run", "--config.progress=true"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "epoch 1/2: train loss" in result.stdout and "epoch 2/2:" in result.stdout
    assert "\r" not in result.stderr and "step/s" not in result.stderr
    assert "done: 2 epochs" in result.stdout
    assert "WARNING" not in result.stderr


def test_first_use_of_a_data_set_prints_one_line_not_tfds_download_messages(tmp_path):
    result = run_script(*tiny_args(tmp_path / "run", "--config.dataset=mnist_5k",
                                   "--config.train_size=100", "--config.test_size=100",
                                   "--config.num_epochs=1"),
                        CNN_JAX_DATA_DIR=str(tmp_path / "data"))
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout + result.stderr
    assert "Downloading" not in output and "Unknown size" not in output
    assert "WARNING" not in output and "Generating" not in output
    assert "preparing cnn_jax_mnist5k once" in result.stderr


def test_readme_names_the_gpu_install_and_the_commands_it_shows_exist():
    text = (REPO / "README.md").read_text()
    assert 'jax[cuda' in text
    for module in ("train", "shapes", "sweep", "report", "nielsen_ch6", "why_cnn", "benchmark",
                   "evaluate"):
        assert f"python -m experiments.{module}" in text, module
        assert (REPO / "experiments" / f"{module}.py").exists()


def test_tensorboard_itself_reads_the_event_files(tmp_path):
    """`make tensorboard` serves runs/: the event files must load in TensorBoard's own reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train_and_evaluate(tiny_config(num_epochs=1), tmp_path / "run")
    accumulator = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    accumulator.Reload()
    tags = accumulator.Tags()["scalars"]
    assert "epoch/test_accuracy" in tags and "train/loss" in tags
    assert [event.step for event in accumulator.Scalars("epoch/test_accuracy")] == [40]


def _course_root_prelude() -> str:
    """docs/course.py up to where it finds the repository (ROOT = ...)."""
    source = (REPO / "docs" / "course.py").read_text()
    end = source.index("\n", source.index("\nROOT = ") + 1)
    return source[:end] + "\nprint(ROOT)\n"


def test_the_course_notebook_finds_the_repository_when_run_outside_it(tmp_path):
    """Issue 21: run outside the repository (after `pip install -e .`) the notebook died with a
    bare StopIteration; it must find the installed package's repository, or say what to do."""
    import os
    import subprocess
    import sys

    prelude = _course_root_prelude()
    installed = subprocess.run([sys.executable, "-c", prelude], cwd=tmp_path, capture_output=True,
                               text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60,
                               check=False)
    assert installed.returncode == 0, installed.stderr[-2000:]
    assert installed.stdout.strip() == str(REPO)
    nowhere = subprocess.run([sys.executable, "-I", "-c", prelude], cwd=tmp_path,
                             capture_output=True, text=True, timeout=60, check=False)
    assert "StopIteration" not in nowhere.stderr
    if nowhere.returncode == 0:  # cnn_jax is installed in this interpreter (pip install -e .)
        assert nowhere.stdout.strip() == str(REPO)
    else:
        assert "FileNotFoundError" in nowhere.stderr and "pip install -e ." in nowhere.stderr
