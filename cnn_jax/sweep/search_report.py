"""The report's account of a search: what the sampler and the pruner did, and which
hyper-parameters mattered (`optuna.importance`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnn_jax.markdown import markdown_table
from cnn_jax.sweep.search_space import STUDY_FILE, group_name


def search_section(workdir: str | Path, manifest: dict[str, Any]) -> str:
    """The report's account of a search: sampler, pruner, what each trial became, the pruned
    trials, and the hyper-parameter importance (`optuna.importance`, fANOVA) of the finished
    ones."""
    import optuna
    from optuna.trial import TrialState

    options = (manifest.get("sweep_config") or {}).get("search", {})
    path = Path(workdir) / STUDY_FILE
    if not path.exists():
        return "No study yet."
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=manifest.get("name") or "search",
                              storage=f"sqlite:///{path.resolve()}")
    trials = study.get_trials(deepcopy=False)
    counts = {state: sum(t.state == state for t in trials) for state in TrialState}
    impossible = sum(t.state == TrialState.FAIL and "invalid" in t.user_attrs for t in trials)
    lines = [
        f"Sampler {options.get('sampler')} (seed {options.get('seed')}), pruner "
        f"{options.get('pruner')} on the validation accuracy after each epoch; budget "
        f"{options.get('num_trials')} trials: {counts[TrialState.COMPLETE]} finished, "
        f"{counts[TrialState.PRUNED]} stopped early (pruned, checkpoints kept: "
        "`--promote=tNNNN` trains one on), "
        f"{counts[TrialState.RUNNING]} cut short (a rerun resumes it); {impossible} impossible "
        f"draws (not counted; shapes.md). Study: {path.name} (Optuna, SQLite).",
    ]
    if study.user_attrs.get("finalists"):
        lines.append(f"Finalists, trained again with seeds {options.get('finalist_seeds')}: "
                     f"{', '.join(study.user_attrs['finalists'])}.")
    if study.user_attrs.get("promoted"):
        lines.append(f"Promoted after pruning: {', '.join(study.user_attrs['promoted'])}.")
    pruned = [[group_name(t.number), str(max(t.intermediate_values, default=0)),
               f"{100 * t.intermediate_values[max(t.intermediate_values)]:.2f}"]
              for t in trials if t.state == TrialState.PRUNED and t.intermediate_values]
    if pruned:
        lines += ["", markdown_table(["pruned trial", "epochs trained", "last val acc. (%)"],
                                     pruned)]
    lines += ["", "### Hyper-parameter importance", ""]
    try:
        importance = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    except Exception as error:  # noqa: BLE001 - e.g. too few finished trials: the report goes on
        lines.append(f"Not available yet: {error}")
    else:
        lines += ["Share of the variance of the finished trials' best validation accuracy "
                  "explained by each hyper-parameter (fANOVA, `optuna.importance`); pruned "
                  "trials do not count.", "",
                  markdown_table(["hyper-parameter", "importance"],
                                 [[key, f"{value:.3f}"] for key, value in importance.items()])]
    return "\n".join(lines)
