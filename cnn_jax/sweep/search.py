"""Search beyond grids: Optuna samplers and pruners over a declared space (`run_search`).

A sweep config with a `search` section (instead of `axes`):

    search.sampler      'random' | 'sobol' (Optuna's QMCSampler) | 'tpe'
    search.space        a list of {'key': 'model.layers[0].kernel', 'int': [3, 9]} |
                        {'key': 'model.layers[0].features', 'log_int': [4, 64]} |
                        {'key': ..., 'choices': ['max', 'avg']} |
                        {'key': 'learning_rate', 'log_float': [0.01, 1.0]} |
                        {'key': ..., 'float': [0.0, 0.5]}
    search.num_trials   the budget: trials that train (impossible draws do not count)
    search.seed         the sampler's seed
    search.pruner       'halving' (SuccessiveHalvingPruner) | 'hyperband' | 'none'
    search.min_epochs, search.reduction_factor   the pruner's rungs (default 1 and 3)
    search.finalists, search.finalist_seeds      the best `finalists` trials (by validation
                        accuracy) are trained again with each of these seeds to the full epochs
    report_baseline     optional: a configuration (e.g. 't0003') the report compares against

Each trial trains epoch by epoch (`worker.run_trial` with `num_epochs` = 1, 2, …: a run extended
by more epochs resumes from its checkpoint); its validation accuracy after each epoch is reported
to the study and the pruner decides whether it goes on. A stopped trial is `pruned` and keeps its
checkpoint and files: `run_search(..., promote=['t0004'])` trains it on to the full epochs. The
value of a finished trial is its best validation accuracy (test accuracy is never shown to the
study). A draw whose shapes the size formula rejects is recorded (shapes.md, the report's
impossible configurations, the study as FAIL) and a new one is drawn.

The study lives in workdir/study.db (SQLite). The sampler is re-seeded before every draw from
`search.seed` and the number of trials in the study, so a search interrupted at any point
(Ctrl-C, kill -9) and rerun with the same command makes the same draws and the same pruning
decisions as one that never stopped: a trial cut short goes on from its checkpoint.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import ml_collections

from cnn_jax.errors import SweepError
from cnn_jax.sweep import trialdir
from cnn_jax.sweep.grid import Trial
from cnn_jax.sweep.keys import set_value, short_labels
from cnn_jax.sweep.log import SweepLog
from cnn_jax.sweep.outcome import cache_dir, config_record, finish
from cnn_jax.sweep.plan import TrialPlan, input_shape_for, plan_trial, write_shapes
from cnn_jax.sweep.search_space import (
    STUDY_FILE,
    group_name,
    load_search,
    make_pruner,
    make_sampler,
    suggest,
)
from cnn_jax.train.logs import atomic_write_json, read_json, read_jsonl, write_status

MAX_INVALID_PER_TRIAL = 20  # impossible draws allowed per trial of the budget before giving up


def trial_of(base: ml_collections.ConfigDict, group: str, values: dict[str, Any], seed: int,
             num_epochs: int | None = None) -> Trial:
    config = copy.deepcopy(base)
    for key, value in values.items():
        set_value(config, key, value)
    config.seed = seed
    if num_epochs is not None:
        config.num_epochs = num_epochs
    return Trial(f"{group}-seed{seed}", group, dict(values), seed, config)


def open_study(workdir: Path, sweep_config: ml_collections.ConfigDict,
               options: dict[str, Any]):
    """The study in workdir/study.db (created, or loaded to resume); raises `SweepError` when
    the folder holds a search of another sweep config."""
    import optuna

    from cnn_jax.config import config_to_json

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    fingerprint = json.dumps({"search": {k: v for k, v in options.items() if k != "num_trials"},
                              "base": json.loads(config_to_json(sweep_config.base))},
                             sort_keys=True, default=str)
    storage = f"sqlite:///{(workdir / STUDY_FILE).resolve()}"
    study = optuna.create_study(
        study_name=str(sweep_config.get("name", "") or "search"), storage=storage,
        load_if_exists=True, direction="maximize",
        pruner=make_pruner(options, sweep_config.base.num_epochs))
    saved = study.user_attrs.get("fingerprint")
    if saved is None:
        study.set_user_attr("fingerprint", fingerprint)
    elif saved != fingerprint:
        raise SweepError(f"{workdir} holds a search of another sweep config (its search "
                         "section or base differ); use another --workdir")
    return study


class _Search:
    """One invocation of `run_search`: the study, the folders, the log, the budget."""

    def __init__(self, sweep_config, workdir: Path, options: dict[str, Any], study, log):
        self.sweep_config, self.workdir, self.options = sweep_config, workdir, options
        self.study, self.log = study, log
        self.base = sweep_config.base
        self.seed = int(self.base.seed)
        self.num_epochs = int(self.base.num_epochs)
        self.input_shape = input_shape_for(self.base, sweep_config.get("input_shape", None))
        self.keys = [p["key"] for p in options["space"]]

    # --- the folders and the manifest -------------------------------------------------------

    def plan(self, group: str, values: dict[str, Any], seed: int, num_epochs: int) -> TrialPlan:
        return plan_trial(trial_of(self.base, group, values, seed, num_epochs), self.input_shape)

    def ensure_folder(self, plan: TrialPlan) -> None:
        if not (trialdir.trial_dir(self.workdir, plan.trial.id) / "config.json").exists():
            trialdir.prepare(self.workdir, plan)

    def entries(self) -> list[tuple[str, dict[str, Any], int]]:
        """(group, values, seed) of every trial of the search, in order: the study's draws,
        then the finalists' other seeds."""
        from optuna.trial import TrialState

        out = []
        for frozen in self.study.get_trials(deepcopy=False):
            if set(frozen.params) >= set(self.keys) and frozen.state != TrialState.WAITING:
                values = {key: frozen.params[key] for key in self.keys}
                out.append((group_name(frozen.number), values, self.seed))
        finalists = self.study.user_attrs.get("finalists", [])
        by_group = {group: values for group, values, _ in out}
        for group in finalists:
            out += [(group, by_group[group], seed) for seed in self.options["finalist_seeds"]
                    if seed != self.seed]
        return out

    def write_manifest(self) -> list[TrialPlan]:
        """sweep.json (the format of `run.py`'s, with kind 'search') and shapes.md."""
        plans = [self.plan(group, values, seed, self.num_epochs)
                 for group, values, seed in self.entries()]
        labels = short_labels(self.keys)
        dimensions = []
        for param in self.options["space"]:
            key = param["key"]
            drawn = {plan.trial.values[key] for plan in plans if plan.valid}
            order = param["args"] if param["kind"] == "choices" else sorted(drawn)
            dimensions.append({"name": labels[key], "keys": [key], "labels": [labels[key]],
                               "values": [[v] for v in order if v in drawn]})
        seeds = [self.seed] + [s for s in self.options["finalist_seeds"] if s != self.seed]
        atomic_write_json(self.workdir / "sweep.json", {
            "name": self.sweep_config.get("name", "") or "", "kind": "search",
            "dimensions": dimensions, "seeds": seeds,
            "trials": [plan.trial.record() for plan in plans],
            "input_shape": list(self.input_shape), "duplicates": {},
            "sweep_config": config_record(self.sweep_config)})
        write_shapes(plans, self.workdir / "shapes.md", self.sweep_config.get("name", "") or
                     self.workdir.name)
        return plans

    # --- one trial ------------------------------------------------------------------------

    def epochs_done(self, directory: Path) -> int:
        results = read_json(directory / "results.json", {}) or {}
        status = (read_json(directory / "status.json", {}) or {}).get("status")
        return int(results.get("epochs", 0)) if status in ("done", "pruned") else 0

    def train(self, trial, group: str, values: dict[str, Any]) -> str:
        """Trains the study's trial epoch by epoch, reporting validation accuracy and asking the
        pruner after each; returns its status ('done', 'pruned', 'interrupted', …)."""
        from optuna.trial import TrialState

        from cnn_jax.sweep.worker import run_trial

        directory = trialdir.trial_dir(self.workdir, f"{group}-seed{self.seed}")
        frozen = {t.number: t for t in self.study.get_trials(deepcopy=False)}[trial.number]
        reported = set(frozen.intermediate_values)
        history: list[dict[str, Any]] = []
        for epoch in range(1, self.num_epochs + 1):
            if self.epochs_done(directory) < epoch:
                config = trial_of(self.base, group, values, self.seed, epoch).config
                status = run_trial(directory, config)["status"]
                if status == "interrupted":
                    return status
                if status != "done":
                    return self.end_badly(trial, directory, status)
            history = _epochs(directory)
            value = history[epoch - 1].get("val_accuracy") if len(history) >= epoch else None
            if value is None:
                return self.end_badly(trial, directory, "failed")
            if epoch not in reported:
                trial.report(value, epoch)
            if epoch < self.num_epochs and trial.should_prune():
                write_status(directory, "pruned", epochs=epoch, reason=(
                    f"stopped by the {self.options['pruner']} pruner after epoch {epoch} "
                    f"(validation accuracy {value:.4f})"))
                self.study.tell(trial, state=TrialState.PRUNED)
                return "pruned"
        best = max(r["val_accuracy"] for r in history if r.get("val_accuracy") is not None)
        self.study.tell(trial, best)
        return "done"

    def end_badly(self, trial, directory: Path, status: str) -> str:
        """A diverged trial tells the study its best validation accuracy (bad hyper-parameters
        are a result); a failed or invalid one is FAIL."""
        from optuna.trial import TrialState

        scores = [r["val_accuracy"] for r in _epochs(directory)
                  if r.get("val_accuracy") is not None]
        if status == "diverged" and scores:
            self.study.tell(trial, max(scores))
        else:
            self.study.tell(trial, state=TrialState.FAIL)
        return status

    # --- the loop -------------------------------------------------------------------------

    def next_trial(self):
        """(optuna trial, group, values): the trial cut short by an interruption, else a new
        draw; None when the budget is spent or too many draws were impossible."""
        import optuna
        from optuna.trial import TrialState

        trials = self.study.get_trials(deepcopy=False)
        running = [t for t in trials if t.state == TrialState.RUNNING]
        if running:  # cut short by an interruption: go on with it
            frozen = running[0]
            self.study.sampler = make_sampler(self.options, frozen.number)
            # the constructor Optuna's own ask() uses, on the stored trial: its params and
            # reported epochs are in the storage; a draw killed halfway is completed by the
            # sampler as the first attempt would have
            trial = optuna.trial.Trial(self.study, frozen._trial_id)
            return trial, group_name(frozen.number), suggest(trial, self.options["space"])
        spent = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
        impossible = sum(t.state == TrialState.FAIL and "invalid" in t.user_attrs
                         for t in trials)
        if spent >= self.options["num_trials"]:
            return None
        if impossible >= MAX_INVALID_PER_TRIAL * self.options["num_trials"]:
            self.log.write(f"stopped drawing: {impossible} impossible draws (see shapes.md); "
                           "narrow the search space")
            return None
        self.study.sampler = make_sampler(self.options, len(trials))  # the next trial number
        trial = self.study.ask()
        return trial, group_name(trial.number), suggest(trial, self.options["space"])


def _epochs(directory: Path) -> list[dict[str, Any]]:
    from cnn_jax.train.results import epoch_records

    path = directory / "metrics.jsonl"
    return epoch_records(read_jsonl(path)) if path.exists() else []


def run_search(sweep_config: ml_collections.ConfigDict, workdir: str | Path, *,
               max_trials: int | None = None, report: bool = True, echo: bool = True,
               compilation_cache: str | None = None, promote: tuple[str, ...] = ()):
    """Runs (or resumes) the search of `sweep_config` in `workdir` (see the module docstring):
    the budget's trials with early stopping, the `promote`d pruned trials to the full epochs,
    then the finalists' seeds; the result files and the report. Returns a `SweepOutcome`.

    Args:
      max_trials: train at most this many trials now (a rerun goes on).
      promote: configurations (e.g. 't0004') stopped by the pruner, to train to the end.
    """
    from cnn_jax.compilation_cache import enable_compilation_cache
    from cnn_jax.sweep import results as tables
    from cnn_jax.sweep.worker import dataset_for
    from cnn_jax.train.interrupts import StopRequests

    options = load_search(sweep_config)
    if not str(workdir).strip():
        raise SweepError("the workdir is empty: pass --workdir=FOLDER")
    workdir = Path(workdir)
    input_shape_for(sweep_config.base, sweep_config.get("input_shape", None))
    if promote and not (workdir / STUDY_FILE).exists():
        raise SweepError(f"cannot promote {', '.join(promote)}: no search in {workdir} yet")
    dataset_for(sweep_config.base)  # a missing data set stops here, before the workdir
    workdir.mkdir(parents=True, exist_ok=True)
    study = open_study(workdir, sweep_config, options)
    _check_promotions(study, promote)
    log = SweepLog(workdir / "sweep.log", echo=echo)
    search = _Search(sweep_config, workdir, options, study, log)
    log.write(f"search {sweep_config.get('name', '') or workdir.name}: sampler "
              f"{options['sampler']}, pruner {options['pruner']}, {options['num_trials']} "
              f"trials of up to {search.num_epochs} epochs; study {workdir / STUDY_FILE}")
    enable_compilation_cache(cache_dir(workdir, compilation_cache))
    ran: list[str] = []
    interrupted = False

    def room() -> bool:
        return max_trials is None or len(ran) < max_trials

    with StopRequests() as stop:
        while room() and not stop.requested:
            drawn = search.next_trial()
            if drawn is None:
                break
            trial, group, values = drawn
            plan = search.plan(group, values, search.seed, 1)
            search.ensure_folder(plan)
            search.write_manifest()
            if not plan.valid:
                from optuna.trial import TrialState

                trial.set_user_attr("invalid", plan.reason)
                study.tell(trial, state=TrialState.FAIL)
                log.write(f"{plan.trial.id}: impossible draw, not counted: {plan.reason}")
                continue
            status = search.train(trial, group, values)
            log.write(f"{plan.trial.id}: {status} {_describe(values)}")
            tables.write_results(workdir)
            if status == "interrupted":
                interrupted = True
                break
            ran.append(plan.trial.id)
        interrupted |= stop.requested
        if not interrupted:
            interrupted = _promote_and_finalize(search, promote, ran, room, stop)
    search.write_manifest()
    statuses = {entry["id"]: trialdir.status_of(trialdir.trial_dir(workdir, entry["id"]))
                for entry in read_json(workdir / "sweep.json")["trials"]}
    return finish(workdir, log, statuses, ran, interrupted, report=report, what="search")


def _describe(values: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
                     for key, value in values.items())


def _check_promotions(study, promote) -> None:
    from optuna.trial import TrialState

    states = {group_name(t.number): t.state for t in study.get_trials(deepcopy=False)}
    for group in promote:
        if states.get(group) != TrialState.PRUNED:
            raise SweepError(f"cannot promote {group!r}: not a pruned trial of this search")


def _promote_and_finalize(search: _Search, promote, ran: list[str], room, stop) -> bool:
    """Trains the promoted pruned trials and, once the budget is spent, the finalists' other
    seeds; returns whether it was interrupted."""
    from optuna.trial import TrialState

    from cnn_jax.sweep.worker import run_trial

    study, options = search.study, search.options
    trials = {group_name(t.number): t for t in study.get_trials(deepcopy=False)}
    todo: list[TrialPlan] = []
    for group in promote:
        frozen = trials[group]
        promoted = set(study.user_attrs.get("promoted", [])) | {group}
        study.set_user_attr("promoted", sorted(promoted))
        todo.append(search.plan(group, {k: frozen.params[k] for k in search.keys}, search.seed,
                                search.num_epochs))
    spent = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials.values())
    if options["finalists"] and spent >= options["num_trials"]:
        if "finalists" not in study.user_attrs:  # decided once, from the finished budget
            complete = [t for t in trials.values() if t.state == TrialState.COMPLETE
                        and t.value is not None]
            best = sorted(complete, key=lambda t: (-t.value, t.number))[:options["finalists"]]
            study.set_user_attr("finalists", [group_name(t.number) for t in best])
            search.log.write(f"finalists (best validation accuracy): "
                             f"{', '.join(group_name(t.number) for t in best)}; seeds "
                             f"{options['finalist_seeds']}")
        for group in study.user_attrs["finalists"]:
            values = {k: trials[group].params[k] for k in search.keys}
            todo += [search.plan(group, values, seed, search.num_epochs)
                     for seed in options["finalist_seeds"] if seed != search.seed]
    search.write_manifest()
    for plan in todo:
        directory = trialdir.trial_dir(search.workdir, plan.trial.id)
        search.ensure_folder(plan)
        if trialdir.status_of(directory) == "done" and search.epochs_done(directory) >= \
                search.num_epochs:
            continue
        if stop.requested:
            return True
        if not room():
            return False
        status = run_trial(directory, plan.trial.config)["status"]
        search.log.write(f"{plan.trial.id}: {status}")
        if status == "interrupted":
            return True
        ran.append(plan.trial.id)
    return stop.requested
