"""docs/course.ipynb, the lecture slide by slide: its cells are what jupytext makes of
docs/course.py, and the notebook runs top to bottom (quick mode) with its key numbers right."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
from conftest import REPO, script_env

pytestmark = pytest.mark.usefixtures("train_env")

SOURCE = REPO / "docs" / "course.py"
NOTEBOOK = REPO / "docs" / "course.ipynb"


def cells(notebook) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source) for cell in notebook.cells]


def test_the_committed_notebook_is_its_source():
    committed = nbformat.read(NOTEBOOK, as_version=4)
    assert cells(committed) == cells(jupytext.read(SOURCE)), \
        "docs/course.ipynb differs from docs/course.py: run `make notebook-sync`"
    assert all(cell.get("execution_count") for cell in committed.cells
               if cell.cell_type == "code"), "docs/course.ipynb is committed without outputs"


def venv_kernel(folder: Path):
    """A kernel manager that starts this interpreter's ipykernel (the venv's), whatever
    kernelspecs the user has installed."""
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager

    spec = folder / "cnn_jax"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "cnn_jax venv", "language": "python"}))
    return KernelManager(kernel_name="cnn_jax",
                         kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(folder)]))


def text_of(cell) -> str:
    """A cell's printed and displayed text (Markdown where it displays Markdown)."""
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type in ("display_data", "execute_result"):
            parts.append(output.data.get("text/markdown") or output.data.get("text/plain", ""))
    return "\n".join(parts)


def table_rows(markdown: str) -> list[list[str]]:
    """The body rows of a Markdown table, cells stripped."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[2:]]


@pytest.mark.slow
def test_the_notebook_runs_and_its_numbers_hold(tmp_path):
    from nbclient import NotebookClient

    generated = tmp_path / "course.ipynb"
    jupytext.write(jupytext.read(SOURCE), generated)
    notebook = nbformat.read(generated, as_version=4)
    client = NotebookClient(notebook, km=venv_kernel(tmp_path / "kernels"), timeout=300,
                            resources={"metadata": {"path": str(REPO / "docs")}})
    client.execute(env=script_env(CNN_JAX_NOTEBOOK_QUICK="1"))  # raises on a cell's error

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code)
    assert not [o for cell in code for o in cell.outputs if o.output_type == "error"]
    tagged = {tag: text_of(cell) for cell in code for tag in cell.metadata.get("tags", [])}
    assert "quick mode: True" in text_of(code[0])

    # 1. parameters: 784 → 30 fully connected against one and twenty shared 5×5 maps
    counts = {row[0]: row[-1] for row in table_rows(tagged["params"])}
    assert counts == {"fully connected 784 → 30": "23,550", "one shared 5×5 feature map": "26",
                      "20 shared 5×5 feature maps": "520"}
    # 2. the hidden neuron by hand equals the library's conv (both routes)
    values = re.findall(r"neuron \(8, 10\) by .*?: +([0-9.]+)", tagged["neuron"])
    assert len(values) == 3 and len(set(values)) == 1, tagged["neuron"]
    assert 0 < float(values[0]) < 1
    # 3. the size formula with its numbers; impossible layers refused
    assert "floor((28 + 2·0 − 1·(5−1) − 1)/1) + 1 = 24" in tagged["sliding"]
    assert "floor((28 + 2·0 − 1·(5−1) − 1)/2) + 1 = 12" in tagged["sliding"]
    assert "24×24×1" in tagged["sliding"] and "12×12×1" in tagged["sliding"]
    assert tagged["impossible"].count("ShapeError: ") == 2
    assert "out = floor((28 + 2·0 − 1·(29−1) − 1)/1) + 1 = 0" in tagged["impossible"]
    # 4. the trained course network's three maps
    assert "feature maps: 24×24×3" in tagged["course"]
    # 6. the lecture's pooling example, exactly
    assert "2×2 max pooling:     [[4, 2], [3, 3]]" in tagged["pooling"]
    assert ("2×2 average pooling: [[9/4, 4/4], [7/4, 7/4]] = [[2.25, 1.0], [1.75, 1.75]]"
            in tagged["pooling"])
    assert "pooled maps: 12×12×3" in tagged["pooled"]
    # 7. formula and jax.eval_shape agree on every setting
    hyper = table_rows(tagged["hyper"])
    assert len(hyper) == 7 and all(row[5] == row[6] for row in hyper)
    assert ["5", "1", "0", "3"] == hyper[0][:4] and hyper[0][5] == "24×24×3"
    # 8. the whole network trained and read back; 9. the sweep finished every trial
    assert re.search(r"test accuracy at the best validation epoch \(\d\): \d+\.\d\d%",
                     tagged["nielsen"])
    assert "trials: {'done': 6}" in tagged["sweep"]
