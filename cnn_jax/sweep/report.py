"""`build_report(workdir)`: report.md, plots/, results files and TensorBoard HParams, rebuilt from
the files of the sweep (also while it runs: unfinished trials show their status).

report.md: the configurations sorted by mean test accuracy (mean ± std over seeds), the invalid
ones with their reasons, every trial grouped by configuration, the plots, and the size-relation
table of each distinct architecture.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from cnn_jax.markdown import markdown_table
from cnn_jax.summary import ShapeRow, format_table
from cnn_jax.sweep import trialdir
from cnn_jax.sweep.hparams import write_hparams
from cnn_jax.sweep.plots import make_plots
from cnn_jax.sweep.results import write_results
from cnn_jax.train.logs import atomic_write_text, read_json


def _number(value: Any, digits: int = 2, scale: float = 1.0) -> str:
    if value is None:
        return "—"
    if isinstance(value, int) and scale == 1.0:
        return f"{value:,}"
    return f"{value * scale:,.{digits}f}"


def _accuracy(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "—"
    return f"{100 * mean:.2f}" + (f" ± {100 * std:.2f}" if std is not None else "")


def _sizes(row: dict[str, Any]) -> str:
    return " → ".join(str(v) for k, v in row.items() if k.endswith("_out") and v)


def _label_of(manifest: dict[str, Any]) -> dict[str, str]:
    return {key: label for dim in manifest["dimensions"]
            for key, label in zip(dim["keys"], dim["labels"], strict=True)}


def configurations_table(manifest: dict[str, Any], summary: list[dict[str, Any]]) -> str:
    labels = _label_of(manifest)
    header = ["#", "configuration", *labels.values(), "output sizes", "params", "MACs", "RF",
              "test acc. (%)", "seeds done", "train s", "compile s", "img/s"]
    body = []
    for rank, row in enumerate((r for r in summary if r["done"]), start=1):
        body.append([
            str(rank), row["group"], *(str(row[k]) for k in labels), _sizes(row),
            _number(row["params"]), _number(row["macs"]), str(row["receptive_field"]),
            _accuracy(row["test_accuracy_mean"], row["test_accuracy_std"]),
            f"{row['done']}/{row['seeds']}", _number(row["train_time_s_mean"]),
            _number(row["compile_time_s_mean"]), _number(row["images_per_second_mean"], 0),
        ])
    return markdown_table(header, body) if body else "No configuration has finished yet."


def invalid_table(summary: list[dict[str, Any]]) -> str:
    body = [[row["group"], row["reason"]] for row in summary
            if row.get("reason") and not row["done"]]
    return markdown_table(["configuration", "reason"], body) if body else "None."


def trials_table(rows: list[dict[str, Any]]) -> str:
    header = ["trial", "status", "test acc. (%)", "best val (%)", "epochs", "train s",
              "compile s", "img/s", "programs compiled", "attempts"]
    ordered = sorted(rows, key=lambda r: (r["group"], r["seed"]))
    body = [[
        r["trial"], r["status"], _number(r.get("test_accuracy"), 2, 100),
        _number(r.get("best_val_accuracy"), 2, 100), _number(r.get("epochs")),
        _number(r.get("train_time_s")), _number(r.get("compile_time_s")),
        _number(r.get("images_per_second"), 0), _number(r.get("compiles")),
        _number(r.get("attempts")),
    ] for r in ordered]
    return markdown_table(header, body)


def architectures_section(workdir: Path, rows: list[dict[str, Any]]) -> str:
    """The size-relation table of each distinct architecture, with the configurations using it."""
    users: dict[str, list[str]] = {}
    first: dict[str, str] = {}
    for row in rows:
        arch = row.get("architecture")
        if arch:
            users.setdefault(arch, [])
            if row["group"] not in users[arch]:
                users[arch].append(row["group"])
            first.setdefault(arch, row["trial"])
    blocks = []
    for arch, groups in users.items():
        info = read_json(trialdir.trial_dir(workdir, first[arch]) / "trial.json", {})
        table_rows = [ShapeRow(**{**layer, "input_shape": tuple(layer["input_shape"]),
                                  "output_shape": tuple(layer["output_shape"])})
                      for layer in info.get("layers", [])]
        shape = "×".join(str(d) for d in info.get("input_shape", []))
        blocks.append(f"### Architecture {arch} (input {shape})\n\nconfigurations: "
                      f"{', '.join(groups)}\n\n{format_table(table_rows, markdown=True)}\n")
    return "\n".join(blocks) or "No valid architecture."


def build_report(workdir: str | Path) -> Path:
    """Rewrites results.csv/.jsonl, summary.csv, plots/, tensorboard/ and report.md."""
    workdir = Path(workdir)
    manifest, rows, summary = write_results(workdir)
    plots = make_plots(manifest, summary, workdir / "plots")
    write_hparams(manifest, rows, workdir / "tensorboard")
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    swept = "; ".join(
        f"{dim['name']} = {' + '.join(dim['keys'])} ∈ "
        f"{{{', '.join('/'.join(map(str, v)) for v in dim['values'])}}}"
        for dim in manifest["dimensions"])
    status_line = ", ".join(f"{n} {s}" for s, n in counts.items())
    text = "\n".join([
        f"# Sweep report: {manifest['name'] or workdir.name}", "",
        f"{len(rows)} trials: {status_line}. Updated {time.strftime('%Y-%m-%d %H:%M:%S')}.",
        f"Swept: {swept or 'nothing'}; seeds {manifest['seeds']}.",
        "Accuracy: test accuracy at the epoch of best validation accuracy, mean ± std over the "
        "seeds that finished.",
        f"Rebuild: `python -m experiments.report --workdir={workdir}`; files: results.csv, "
        "results.jsonl, summary.csv, shapes.md, sweep.log; TensorBoard HParams: "
        f"`tensorboard --logdir {workdir / 'tensorboard'}`.", "",
        "## Configurations, best first", "", configurations_table(manifest, summary), "",
        "## Impossible configurations", "", invalid_table(summary), "",
        "## Plots", "", *[f"![{title}](plots/{path.name})\n" for title, path in plots],
        "## All trials", "", trials_table(rows), "",
        "## Architectures: size relations", "", architectures_section(workdir, rows),
    ])
    path = workdir / "report.md"
    atomic_write_text(path, text + "\n")
    return path
