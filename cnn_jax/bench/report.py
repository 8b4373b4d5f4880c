"""The Markdown report of a benchmark run."""

from __future__ import annotations

from typing import Any

from cnn_jax.bench.runner import BASELINE, PROJECT, TORCH
from cnn_jax.markdown import markdown_table

TABLE_COLUMNS = (
    "network", "batch", "project train img/s", "PyTorch train img/s", "ratio project/PyTorch",
    "layers' formulation img/s", "project eval img/s", "PyTorch eval img/s",
    "compile s (train/eval)", "peak RSS MB project / PyTorch",
    "CPU µs/img train project / PyTorch", "formulation",
)
TABLE_HEADER = markdown_table(TABLE_COLUMNS, []).splitlines()[0]


def _fmt(stat: dict[str, float] | None, digits: int = 0) -> str:
    if not stat:
        return "–"
    return (f"{stat['median']:,.{digits}f} ({stat['min']:,.{digits}f}–"
            f"{stat['max']:,.{digits}f})")


def _median(stat: dict[str, float] | None) -> str:
    return "–" if not stat else f"{stat['median']:.0f}"


def _num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def ratio(row: dict[str, Any]) -> float | None:
    results = row["results"]
    if TORCH not in results or PROJECT not in results:
        return None
    return results[PROJECT]["train"]["median"] / results[TORCH]["train"]["median"]


def table_rows(report: dict[str, Any]) -> list[list[str]]:
    lines = []
    for row in report["rows"]:
        results = row["results"]
        project, torch_result = results[PROJECT], results.get(TORCH)
        baseline = results.get(BASELINE)
        value = ratio(row)
        memory = f"{project['peak_rss_mb']:.0f}"
        if project.get("device_peak_mb") is not None:
            memory += f" (device {project['device_peak_mb']:.0f})"
        memory += f" / {torch_result['peak_rss_mb']:.0f}" if torch_result else " / –"
        lines.append([
            row["network"], row["batch_size"], _fmt(project["train"]),
            _fmt(torch_result["train"]) if torch_result else "skipped",
            "–" if value is None else f"**{value:.2f}×**",
            _fmt(baseline["train"]) if baseline else "–", _fmt(project["eval"]),
            _fmt(torch_result["eval"]) if torch_result else "skipped",
            f"{_num(project['compile_s'], 2)} / {_num(project['eval_compile_s'], 2)}", memory,
            f"{_median(project.get('cpu_us_per_img'))} / "
            f"{_median(torch_result.get('cpu_us_per_img')) if torch_result else '–'}",
            f"{project['conv']}/{project['pool']}, {project.get('microbatches') or 1} "
            f"micro-batches, {project['strategy']}",
        ])
    return lines


def markdown(report: dict[str, Any]) -> str:
    machine = report["machine"]
    where = machine.get("accelerator") or f"{machine['cpu']}, {machine['cores']} cores"
    load_before = ", ".join(f"{v:.2f}" for v in report["load_before"])
    load_after = ", ".join(f"{v:.2f}" for v in report["load_after"])
    settings = report["settings"]
    lines = [
        f"Machine: {where}; Python {machine['python']}, jax {machine['jax']}"
        f"{', jaxlib ' + machine['jaxlib'] if machine.get('jaxlib') else ''}, "
        f"torch {machine.get('torch') or 'not installed (PyTorch skipped)'}"
        f"{', torch threads ' + str(machine['torch_threads']) if machine.get('torch') else ''}; "
        f"XLA_FLAGS={machine['xla_flags'] or '(none)'}.",
        f"Load average (1/5/15 min) before: {load_before}; after: {load_after}."
        + (" **The machine was busy: timings are distorted (PyTorch most).**"
           if max(report["load_before"][0], report["load_after"][0]) > 0.5 * machine["cores"]
           else ""),
        f"Settings: {settings['repeats']} alternated repetitions per participant, steps per "
        f"repetition {settings['steps'] or 'about ' + str(settings['images']) + ' images'}, "
        "float32, SGD, random data already on the device; median (min–max). "
        f"Wall time {report['wall_s']:.0f} s.",
        "",
        markdown_table(TABLE_COLUMNS, table_rows(report)),
    ]
    if not report["torch"]:
        lines += ["", "PyTorch was skipped: not importable (`pip install -r "
                  "requirements-bench.txt`)."]
    cache = report.get("compile_cache")
    if cache:
        lines += ["", "Persistent compilation cache (Nielsen net, batch 10, training step, two "
                  "fresh processes): cold compile "
                  f"{cache['cold']:.2f} s (process {cache['cold_process_s']:.1f} s), warm "
                  f"{cache['warm']:.2f} s (process {cache['warm_process_s']:.1f} s)."]
        if "init_run_once" in cache:
            lines += ["", "Parameter initialisation (Nielsen net), compile without the cache: "
                      f"{cache['init_run_once']:.2f} s as a run-once program "
                      "(`cnn_jax.backend.jit_run_once`), "
                      f"{cache['init_default']:.2f} s at XLA's default level."]
    if report.get("vmap"):
        lines += ["", markdown_table(
            ["vmap over models", "batch", "models", "model-img/s", "compile s"],
            [[row["network"], row["batch_size"], row["models"], _fmt(row["train"]),
              _num(row["compile_s"], 2)] for row in report["vmap"]])]
    return "\n".join(lines) + "\n"
