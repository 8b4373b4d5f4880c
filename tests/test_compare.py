"""`python -m experiments.compare`: config differences, metrics side by side, learning curves and
provenance differences of runs, checked on two run folders written by hand."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image
import pytest
from conftest import run_script, tiny_config

from cnn_jax.compare import CompareError, compare_runs, differing
from cnn_jax.config import config_to_json


def write_run(folder: Path, kernel: int, learning_rate: float, val: list[float],
              commit: str, jax_version: str, xla_flags: str) -> Path:
    config = tiny_config(learning_rate=learning_rate)
    config.model.layers[0]["kernel"] = kernel
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(config_to_json(config))
    records = [{"kind": "epoch", "step": 40 * (i + 1), "epoch": i + 1, "val_accuracy": v,
                "train_loss": 1.0 / (i + 1)} for i, v in enumerate(val)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    best = max(range(len(val)), key=lambda i: (val[i], -i))
    (folder / "results.json").write_text(json.dumps({
        "status": "done", "test_accuracy_at_best_val": 0.9, "final_test_accuracy": 0.875,
        "best_val_accuracy": val[best], "best_epoch": best + 1, "epochs": len(val),
        "final_train_loss": 1.0 / len(val), "train_time_s": 1.5,
        "provenance": {"git": {"commit": commit, "dirty": False}, "device": "1 × CPU",
                       "packages": {"jax": jax_version, "numpy": "2.4.6"},
                       "xla_flags": xla_flags, "command": f"train {folder}"}}))
    return folder


@pytest.fixture
def runs(tmp_path):
    a = write_run(tmp_path / "sweep_a" / "trial", 5, 0.1, [0.5, 0.75], "aaa111", "0.10.2", "")
    b = write_run(tmp_path / "sweep_b" / "trial", 9, 0.05, [0.25, 0.5, 0.625], "bbb222",
                  "0.10.1", "--xla_cpu_enable_fast_math=false")
    return a, b


def test_the_comparison_names_exactly_the_differences(runs, tmp_path):
    text = compare_runs(runs, out=tmp_path / "out")
    config = text.split("## Config differences")[1].split("## Metrics")[0]
    rows = [line for line in config.splitlines() if line.startswith("| ") and "---" not in line]
    assert [row.split(" | ")[0] for row in rows[1:]] == ["| learning_rate",
                                                         "| model.layers[0].kernel"]
    assert "| model.layers[0].kernel | 5 | 9 |" in config
    assert "| sweep_a/trial | sweep_b/trial |" in config  # same folder names: told apart
    metrics = text.split("## Metrics")[1]
    assert "| best val acc. (%) | 75.00 | 62.50 |" in metrics
    assert "| best epoch | 2 | 3 |" in metrics and "| epochs | 2 | 3 |" in metrics
    provenance = text.split("## Provenance differences")[1]
    assert "| git.commit | aaa111 | bbb222 |" in provenance
    assert "| packages.jax | 0.10.2 | 0.10.1 |" in provenance
    assert "xla_flags" in provenance and "numpy" not in provenance and "command" not in provenance
    image = matplotlib.image.imread(tmp_path / "out" / "curves.png")
    assert image.shape[0] > 100 and image.shape[1] > 200
    assert (tmp_path / "out" / "compare.md").read_text() == text


def test_flattened_layer_lists_differ_field_by_field():
    assert differing([{"layers": [{"k": 5, "s": 1}]}, {"layers": [{"k": 5, "s": 2}]}]) == [
        ("layers[0].s", [1, 2])]
    assert differing([{"layers": [{"k": 5}]}, {"layers": [{"k": 5}, {"k": 3}]}])[0] == (
        "layers.length", [1, 2])


def test_fewer_than_two_runs_or_a_folder_that_is_no_run_is_refused(runs, tmp_path):
    with pytest.raises(CompareError, match="at least two"):
        compare_runs(runs[:1])
    result = run_script(str(runs[0]), str(tmp_path), module="experiments.compare")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and "not a training run" in lines[0]
