"""Optuna searches (cnn_jax/sweep/search.py) on the tiny search config (configs/sweeps/
tiny_search.py): random, Sobol and TPE draws with successive halving, impossible draws, the
finalists, and a search cut into parts that makes the same draws and pruning decisions as one
that never stopped; a bad search section is refused before anything is written."""

from __future__ import annotations

import math

import pytest
from conftest import SWEEPS, load_config_file

from cnn_jax.sweep import SweepError
from cnn_jax.sweep.search import run_search
from cnn_jax.sweep.search_space import load_search
from cnn_jax.train.logs import read_json


def tiny_search(sampler: str = "tpe", **search):
    config = load_config_file(SWEEPS / "tiny_search.py")
    config.base.dataset = "synthetic"
    config.base.progress = False
    config.search.sampler = sampler
    config.search.num_trials = 3
    config.search.finalists = 1
    config.search.finalist_seeds = (0, 1)
    config.search.startup_trials = 2
    for key, value in search.items():
        config.search[key] = value
    return config


def decisions(workdir) -> list[tuple]:
    """Every trial of the study: number, state, params, the epochs reported and the value."""
    import optuna

    study = optuna.load_study(study_name="tiny_search",
                              storage=f"sqlite:///{workdir / 'study.db'}")
    return [(t.number, t.state.name, t.params, dict(t.intermediate_values), t.value,
             t.user_attrs.get("invalid")) for t in study.get_trials()]


def scripted_trial(directory, config, executor="local"):
    """A stand-in for `worker.run_trial` that trains nothing: validation accuracy is a known
    function of (epoch, kernel, learning rate, seed), so the search's bookkeeping is checked
    against exact numbers in a fraction of a second per trial."""
    import json
    import math

    from cnn_jax.sweep import trialdir
    from cnn_jax.train.logs import atomic_write_json, write_status

    trialdir.start_run(directory, executor)
    kernel, rate = config.model.layers[0]["kernel"], config.learning_rate
    records = [{"kind": "epoch", "epoch": e, "step": e, "test_accuracy": 0.5,
                "val_accuracy": round(0.5 + 0.1 * e - 0.01 * kernel
                                      + 0.1 * math.log10(rate / 0.03) + 0.001 * config.seed, 6)}
               for e in range(1, config.num_epochs + 1)]
    (directory / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    results = {"status": "done", "epochs": config.num_epochs, "test_accuracy_at_best_val": 0.5,
               "best_val_accuracy": max(r["val_accuracy"] for r in records)}
    atomic_write_json(directory / "results.json", results)
    write_status(directory, "done")
    trialdir.end_run(directory, "done")
    return {"id": directory.name, "status": "done", "results": results}


@pytest.mark.parametrize("sampler", ["random", "sobol", "tpe"])
def test_a_search_cut_into_parts_makes_the_same_draws_and_decisions(sampler, tmp_path,
                                                                    monkeypatch):
    from cnn_jax.sweep import worker

    monkeypatch.setattr(worker, "run_trial", scripted_trial)
    config = tiny_search(sampler, num_trials=6, finalists=2, finalist_seeds=(0, 1, 2))
    whole = run_search(config, tmp_path / "whole", echo=False, report=False)
    assert not whole.interrupted
    parts = [run_search(config, tmp_path / "parts", echo=False, report=False, max_trials=n)
             for n in (2, 1, None)]
    assert [len(p.ran) for p in parts[:2]] == [2, 1]
    assert decisions(tmp_path / "parts") == decisions(tmp_path / "whole")
    trials = decisions(tmp_path / "whole")
    for _, state, params, reported, value, _ in trials:
        if state == "COMPLETE":  # the value told is the best validation accuracy, epoch 3
            assert value == reported[3] == pytest.approx(
                0.8 - 0.01 * params["model.layers[0].kernel"]
                + 0.1 * math.log10(params["learning_rate"] / 0.03), abs=1e-5)
    best = sorted((t for t in trials if t[1] == "COMPLETE"), key=lambda t: -t[4])[:2]
    manifest = read_json(tmp_path / "whole" / "sweep.json")
    finalists = [t["id"] for t in manifest["trials"] if t["seed"] != 0]
    assert finalists == [f"t{n:04d}-seed{s}" for n, *_ in best for s in (1, 2)]


@pytest.mark.parametrize("search, message", [
    ({"sampler": "grid"}, "sampler must be one of"),
    ({"pruner": "asha"}, "pruner must be one of"),
    ({"num_trials": 0}, "num_trials must be an integer >= 1"),
    ({"space": [{"key": "learning_rate", "log_float": [0.0, 1.0]}]}, "low < high > 0"),
    ({"space": [{"key": "model.layers[7].kernel", "int": [3, 5]}]}, "model.layers[7]"),
    ({"space": [{"key": "seed", "int": [0, 5]}]}, "seeds are not searched"),
])
def test_a_bad_search_section_is_refused_before_anything_is_written(search, message, tmp_path):
    config = tiny_search()
    for key, value in search.items():
        config.search[key] = value
    with pytest.raises(SweepError, match=message.replace("[", r"\[").replace("]", r"\]")):
        run_search(config, tmp_path / "never", echo=False)
    assert not (tmp_path / "never").exists()


def test_load_search_fills_the_defaults():
    options = load_search(tiny_search("sobol"))
    assert options["sampler"] == "sobol" and options["min_epochs"] == 1
    assert [p["kind"] for p in options["space"]] == ["choices"] * 3 + ["log_float"]



@pytest.mark.slow
def test_a_really_trained_search_cut_by_sigint_resumes_with_the_same_decisions(tmp_path):
    """TPE with successive halving on the tiny base, trained for real: SIGINT at step 15 of the
    first trial's first epoch (exit 130, the trial saved), then the same command again, ends
    with the same draws, the same validation accuracy after every epoch (a resumed trial is
    bitwise the one that never stopped) and the same pruning decisions as an uncut search."""
    from conftest import run_script

    overrides = {"num_trials": 3, "finalists": 1, "finalist_seeds": (0, 1),
                 "startup_trials": 2}
    config = tiny_search("tpe", **overrides)
    run_search(config, tmp_path / "whole", echo=False, report=False)
    args = (f"--config={SWEEPS / 'tiny_search.py'}", "--config.base.dataset=synthetic",
            "--config.base.progress=false", "--config.search.num_trials=3",
            "--config.search.finalists=1", "--config.search.finalist_seeds=(0, 1)",
            "--config.search.startup_trials=2", f"--workdir={tmp_path / 'cut'}", "--noreport")

    def sweep(fault_after=None):
        return run_script(*args, module="experiments.sweep", timeout=300,
                          fault_after=fault_after, fault_signal="SIGINT")

    cut = sweep(fault_after=15)
    assert cut.returncode == 130, cut.stderr[-2000:]
    assert read_json(tmp_path / "cut" / "trials" / "t0000-seed0" / "status.json")[
        "status"] == "interrupted"
    rerun = sweep()
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    whole = decisions(tmp_path / "whole")
    assert decisions(tmp_path / "cut") == whole
    assert len([t for t in whole if t[1] in ("COMPLETE", "PRUNED")]) == 3, whole
