"""Every `python -m experiments.…` command in the README's code blocks runs as written, on small
data: the test adds only flags that shrink the work (sizes, epochs, trials) and points the
workdirs into a temporary folder."""

from __future__ import annotations

import shlex

import numpy as np
import pytest
from conftest import REPO, run_script
from test_research import why_cnn_closed_forms

pytestmark = [pytest.mark.usefixtures("train_env"), pytest.mark.slow]

SMALL_TRAIN = ("--config.train_size=200", "--config.validation_size=100",
               "--config.test_size=100", "--config.num_epochs=1", "--config.plots=false")
SMALL = {
    "train": SMALL_TRAIN,
    "sweep": ("--max_trials=1", "--config.base.train_size=100",
              "--config.base.validation_size=50", "--config.base.test_size=50",
              "--config.base.num_epochs=1", "--noreport"),
    "nielsen_ch6": ("--rows=1", "--epochs=1", "--train_size=100", "--seeds=1"),
    "why_cnn": ("--epochs=1", "--train_size=100", "--maps=2"),
}
NEEDS_A_CLUSTER = "--ray_address=auto"  # a Ray cluster to connect to: not here


def readme_commands() -> list[list[str]]:
    """The commands of the README's code blocks, continuation lines joined, comments dropped."""
    inside, lines = False, []
    for line in (REPO / "README.md").read_text().splitlines():
        if line.startswith("```"):
            inside = not inside
        elif inside:
            lines.append(line)
    text = "\n".join(lines).replace("\\\n", " ")
    commands = []
    for line in text.splitlines():
        line = line.split("  #")[0].strip()
        if line.startswith("python -m experiments."):
            commands.append(shlex.split(line))
    return commands


def test_the_readme_shows_the_scripts():
    modules = {command[2] for command in readme_commands()}
    assert {"experiments.train", "experiments.evaluate", "experiments.shapes", "experiments.sweep",
            "experiments.report", "experiments.nielsen_ch6", "experiments.why_cnn"} <= modules


def test_every_readme_command_runs_on_small_data(tmp_path):
    image = np.zeros((28, 28), np.float32)
    image[8:20, 12:16] = 1.0
    np.save(tmp_path / "digit.npy", image)
    import matplotlib.image

    matplotlib.image.imsave(tmp_path / "digit.png", image, cmap="gray", vmin=0, vmax=1)

    def local(arg: str) -> str:
        for flag in ("--workdir=", "--run="):
            if arg.startswith(flag):
                folder = arg.split("=", 1)[1].strip("/").replace("/", "_")
                return f"{flag}{tmp_path / folder}"
        if arg.startswith("--images="):
            files = arg.split("=", 1)[1].split(",")
            return "--images=" + ",".join(str(tmp_path / name) for name in files)
        return arg

    # the README's evaluate commands read the run `make run` writes: train it first, small
    trained = run_script("--config=configs/default.py", f"--workdir={tmp_path / 'runs_default'}",
                         *SMALL_TRAIN)
    assert trained.returncode == 0, trained.stderr[-3000:]
    ran = []
    for command in readme_commands():
        if NEEDS_A_CLUSTER in command:
            continue
        module, args = command[2], [local(arg) for arg in command[3:]]
        extra = SMALL.get(module.split(".")[1], ())
        if module == "experiments.explore":  # its page goes beside the run, or into ./explorer
            extra = (f"--out={tmp_path / 'explorer' / str(len(ran))}",)
        result = run_script(*args, *extra, module=module, timeout=300)
        assert result.returncode == 0, (command, result.stderr[-3000:])
        ran.append(module)
    assert len(ran) >= 10, ran
    # the research scripts wrote their tables and figures
    why = tmp_path / "runs_why_cnn"
    rows = [[cell.strip() for cell in line.split("|")[1:-1]]
            for line in (why / "results.md").read_text().splitlines() if line.startswith("| ")]
    assert [row[0] for row in rows[1:]] == ["fully connected", "local receptive fields",
                                            "shared weights", "+ 2×2 max pooling"]
    counts = [[int(row[column].replace(",", "")) for row in rows[1:]] for column in (2, 3)]
    assert tuple(counts) == why_cnn_closed_forms(maps=2)  # the trained runs' counts
    for picture in ("bars.png", "variant2/local_kernels_local1.png",
                    "variant3/kernels_conv1.png"):
        assert (why / picture).stat().st_size > 0, picture
    for folder in ("runs_nielsen", "runs_nielsen_quick"):
        assert "| 1 | FC100 → softmax | 97.80% |" in (tmp_path / folder / "results.md").read_text()
        assert (tmp_path / folder / "curves.png").exists()
