"""`build_report(workdir)`: report.md, plots/, results files and TensorBoard HParams, rebuilt from
the files of the sweep (also while it runs: unfinished trials show their status).

report.md: the configurations ranked by mean validation accuracy (the best validation accuracy of
each trial; n, mean ± std and 95% CI over seeds, the test accuracy at that epoch beside it, never
used to choose), the statistics (paired comparisons with the best and with `report_baseline`,
Holm-corrected; the set not distinguishable from the best; the seeds a comparison would need;
for grids an ANOVA of main effects and two-way interactions), the invalid configurations with
their reasons, every trial, the plots, and the size-relation table of each distinct
architecture.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from cnn_jax.markdown import markdown_table
from cnn_jax.summary import ShapeRow, format_table
from cnn_jax.sweep import stats, trialdir
from cnn_jax.sweep.front import COSTS, cost_front
from cnn_jax.sweep.hparams import write_hparams
from cnn_jax.sweep.plots import make_plots
from cnn_jax.sweep.results import baseline_of, compare_groups, write_results
from cnn_jax.sweep.search_report import search_section
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


def _ci(low: float | None, high: float | None, scale: float = 100.0) -> str:
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return "—"
    return f"{scale * low:.2f} … {scale * high:.2f}"


def _p(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.2g}" if value < 0.001 else f"{value:.3f}"


def configurations_table(manifest: dict[str, Any], summary: list[dict[str, Any]]) -> str:
    labels = _label_of(manifest)
    header = ["#", "configuration", *labels.values(), "output sizes", "params", "MACs", "RF",
              "val acc. (%)", "val 95% CI", "test acc. (%)", "test 95% CI", "seeds done",
              "train s", "compile s", "img/s"]
    body = []
    for rank, row in enumerate((r for r in summary if r["done"]), start=1):
        tied = " ≈" if row.get("tied_best") and rank > 1 else ""
        body.append([
            f"{rank}{tied}", row["group"], *(str(row[k]) for k in labels), _sizes(row),
            _number(row["params"]), _number(row["macs"]), str(row["receptive_field"]),
            _accuracy(row["best_val_accuracy_mean"], row["best_val_accuracy_std"]),
            _ci(row.get("best_val_accuracy_ci_low"), row.get("best_val_accuracy_ci_high")),
            _accuracy(row["test_accuracy_mean"], row["test_accuracy_std"]),
            _ci(row.get("test_accuracy_ci_low"), row.get("test_accuracy_ci_high")),
            f"{row['done']}/{row['seeds']}", _number(row["train_time_s_mean"]),
            _number(row["compile_time_s_mean"]), _number(row["images_per_second_mean"], 0),
        ])
    return markdown_table(header, body) if body else "No configuration has finished yet."


def _verdict(test: dict[str, Any], alpha: float = stats.ALPHA) -> str:
    """What a comparison decides, or how many seeds it would need."""
    p = test.get("p_holm")
    if p is not None and math.isfinite(p) and p < alpha:
        return "different (Holm p < 0.05)"
    needed = test.get("seeds_needed")
    if test["n"] < 2:
        return f"undecided: {test['n']} common seed; a paired test needs ≥ 2"
    if needed is None:
        return "not distinguishable (no difference on these seeds)"
    if needed > test["n"]:
        return (f"undecided: {test['n']} seeds; ~{needed} would detect this difference "
                "(80% power)")
    return "not distinguishable"


def comparison_table(comparison: dict[str, dict[str, Any]], family: str) -> str:
    """One row per configuration compared with the reference of `family` ('vs_best' or
    'vs_baseline'): difference in validation accuracy (pp) and its CI, t, p, Holm p, Wilcoxon p."""
    body = []
    for name in sorted(comparison, key=lambda n: comparison[n]["rank"] or math.inf):
        test = comparison[name][family]
        if test is None:
            continue
        body.append([name, str(test["n"]), f"{100 * test['diff']:+.2f}",
                     _ci(test["diff_low"], test["diff_high"]),
                     "—" if not math.isfinite(test["t"]) else f"{test['t']:.2f}",
                     _p(test["p"]), _p(test.get("p_holm")), _p(test["p_wilcoxon"]),
                     _verdict(test)])
    header = ["configuration", "common seeds", "Δ val acc. (pp)", "Δ 95% CI", "t", "p",
              "p (Holm)", "p (Wilcoxon)", "verdict"]
    return markdown_table(header, body) if body else "No configuration shares seeds with it."


def anova_section(manifest: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """The ANOVA of validation accuracy on the swept axes (seeds as replicates), for grids."""
    import pandas as pd

    from cnn_jax.sweep.plots import dimensions_of

    dims = [d for d in dimensions_of(manifest) if len(d.values) > 1]
    done = [r for r in rows if r["status"] == "done" and r.get("best_val_accuracy") is not None]
    if not dims or len(done) < 3:
        return "Not enough finished trials for an ANOVA."
    frame = pd.DataFrame([{**{d.name: d.point_label(tuple(r[k] for k in d.keys)) for d in dims},
                           "score": 100 * r["best_val_accuracy"]} for r in done])
    table = stats.anova(frame, "score", [d.name for d in dims])
    if table is None:
        return ("No ANOVA: no residual degree of freedom (run more seeds) or a single level "
                "per axis.")
    body = [[row["term"], f"{row['df']:.0f}", f"{row['sum_sq']:.3f}",
             f"{100 * row['eta_sq']:.1f}", "—" if row["F"] is None else f"{row['F']:.2f}",
             _p(row["p"])] for row in table]
    note = ("Validation accuracy (%) of every finished trial against the swept axes, seeds as "
            "replicates (statsmodels `ols` + `anova_lm`, type II). η² = the term's share of the "
            "total sum of squares. Impossible or untrained configurations leave the grid "
            "unbalanced; interactions are left out when a cell of the grid is empty or no "
            "residual degree of freedom is left for them.")
    header = ["term", "df", "sum of squares", "η² (%)", "F", "p"]
    return note + "\n\n" + markdown_table(header, body)


def statistics_section(manifest: dict[str, Any], rows: list[dict[str, Any]],
                       grid: bool = True) -> str:
    """Tied-best set, paired comparisons with the best and the baseline, the ANOVA (grids)."""
    baseline = baseline_of(manifest)
    comparison = compare_groups(rows, baseline)
    ranked = sorted((n for n in comparison if comparison[n]["rank"]),
                    key=lambda n: comparison[n]["rank"])
    if not ranked:
        return "No configuration has finished yet."
    best = ranked[0]
    tied = [n for n in ranked if comparison[n]["tied"]]
    untested = [n for n in ranked if comparison[n]["tied"] is None]
    parts = [
        "Paired on common seeds: for each configuration the difference of its best validation "
        "accuracy from the reference's, seed by seed (paired t-test, scipy `ttest_rel`; Wilcoxon "
        f"signed-rank where ≥ {stats.WILCOXON_MIN} seeds), Holm-corrected over the family "
        "(statsmodels). 'Seeds needed': a paired t-test with 80% power at α = 0.05 for the "
        "observed difference and spread (statsmodels `TTestPower`).", "",
        f"**Best by validation accuracy: {best}.** Not distinguishable from it (Holm p ≥ 0.05): "
        f"{', '.join(tied)}." + (f" Not testable (fewer than 2 seeds in common with {best}): "
                                 f"{', '.join(untested)}." if untested else ""),
        "", f"### Against the best ({best})", "", comparison_table(comparison, "vs_best"),
    ]
    if baseline is not None:
        parts += ["", f"### Against the baseline ({baseline}, `report_baseline`)", ""]
        parts.append(comparison_table(comparison, "vs_baseline") if baseline in comparison
                     else f"The baseline {baseline!r} has no finished trial in this sweep.")
    if grid:
        parts += ["", "### Which axes matter: ANOVA", "", anova_section(manifest, rows)]
    return "\n".join(parts)


def front_section(summary: list[dict[str, Any]]) -> str:
    """For each cost, the configurations on the accuracy-versus-cost front (`front.py`)."""
    blocks = []
    for cost, (what, more_is_better) in COSTS.items():
        rows = cost_front([row for row in summary if row["done"]], cost)
        if not rows:
            continue
        body = [[row["group"], _number(row[cost], 0),
                 _accuracy(row["best_val_accuracy_mean"], row["best_val_accuracy_std"]),
                 _accuracy(row["test_accuracy_mean"], row["test_accuracy_std"])] for row in rows]
        order = "most first" if more_is_better else "cheapest first"
        blocks += [f"Against {what} ({order}):", "",
                   markdown_table(["configuration", what, "val acc. (%)", "test acc. (%)"], body),
                   ""]
    return "\n".join(blocks).rstrip() or "No configuration has finished yet."


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


def _search_part(workdir: Path, manifest: dict[str, Any]) -> list[str]:
    if manifest.get("kind") != "search":
        return []
    return ["## Search", "", search_section(workdir, manifest), ""]


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
        "Ranked and selected by validation accuracy (each trial's best), mean ± std and 95% t "
        "interval over the seeds that finished; test accuracy at the epoch of best validation "
        "accuracy beside it, never used to choose. ≈: not distinguishable from the best.",
        f"Rebuild: `python -m experiments.report --workdir={workdir}`; files: results.csv, "
        "results.jsonl, summary.csv, shapes.md, sweep.log; TensorBoard HParams: "
        f"`tensorboard --logdir {workdir / 'tensorboard'}`.", "",
        "## Configurations, best first", "", configurations_table(manifest, summary), "",
        *_search_part(workdir, manifest),
        "## Statistics", "", statistics_section(manifest, rows,
                                                grid=manifest.get("kind") != "search"), "",
        "## Accuracy against cost", "", "The configurations that no other one beats on both "
        "validation accuracy and cost; neighbours may be within noise (see Statistics).", "",
        front_section(summary), "",
        "## Impossible configurations", "", invalid_table(summary), "",
        "## Plots", "", *[f"![{title}](plots/{path.name})\n" for title, path in plots],
        "## All trials", "", trials_table(rows), "",
        "## Architectures: size relations", "", architectures_section(workdir, rows),
    ])
    path = workdir / "report.md"
    atomic_write_text(path, text + "\n")
    return path
