"""The declared search of a sweep config (`search` section, see `search.py`): checking it, and
the Optuna sampler, pruner and draws it asks for.

    options = load_search(sweep_config)          # plain dict with defaults; SweepError if bad
    trial = study.ask(); values = suggest(trial, options["space"])
"""

from __future__ import annotations

import copy
from typing import Any

import ml_collections

from cnn_jax.errors import SweepError
from cnn_jax.sweep.keys import canonical_key, set_value

STUDY_FILE = "study.db"  # the Optuna study of a search, in its workdir (SQLite)


def group_name(number: int) -> str:
    """The configuration name of the study's trial `number` ('t0007')."""
    return f"t{number:04d}"

SAMPLERS = ("random", "sobol", "tpe")
PRUNERS = ("halving", "hyperband", "none")
KINDS = ("int", "log_int", "choices", "log_float", "float")


def _plain(value: Any) -> Any:
    return value.to_dict() if isinstance(value, ml_collections.ConfigDict) else value


def parse_space(space: Any) -> list[dict[str, Any]]:
    """The declared space as [{key (canonical), kind, args}]; raises `SweepError`."""
    if not isinstance(space, list | tuple) or not space:
        raise SweepError("config.search.space must be a non-empty list of "
                         "{'key': ..., 'int' | 'choices' | 'log_float' | 'float': ...}")
    out = []
    for index, entry in enumerate(space):
        entry = _plain(entry)
        kinds = [k for k in KINDS if isinstance(entry, dict) and k in entry]
        if not isinstance(entry, dict) or "key" not in entry or len(kinds) != 1 \
                or len(entry) != 2:
            raise SweepError(f"config.search.space[{index}] must be {{'key': ..., one of "
                             f"{list(KINDS)}: ...}}, got {entry!r}")
        kind, args = kinds[0], list(entry[kinds[0]])
        if kind == "choices":
            if not args or any(not isinstance(v, bool | int | float | str) for v in args):
                raise SweepError(f"config.search.space[{index}].choices must be a non-empty "
                                 f"list of numbers or strings, got {args!r}")
        else:
            numbers = len(args) == 2 and all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in args)
            integer, log = kind.endswith("int"), kind.startswith("log")
            if not numbers or not args[0] < args[1] or (integer and not all(
                    isinstance(v, int) for v in args)) or (log and args[0] <= 0):
                raise SweepError(f"config.search.space[{index}].{kind} must be [low, high] with "
                                 f"low < high{' > 0' if log else ''}"
                                 f"{' (integers)' if integer else ''}, got {args!r}")
        out.append({"key": canonical_key(entry["key"]), "kind": kind, "args": args})
    keys = [p["key"] for p in out]
    if len(set(keys)) != len(keys):
        raise SweepError(f"a key is searched twice: {keys}")
    if "seed" in keys:
        raise SweepError("seeds are not searched: use search.finalist_seeds")
    return out


def load_search(sweep_config: ml_collections.ConfigDict) -> dict[str, Any]:
    """Checks the `search` section (and the base); returns it as a plain dict with defaults."""
    if "base" not in sweep_config or not isinstance(sweep_config.base, ml_collections.ConfigDict):
        raise SweepError("a sweep config needs `base`, a full training config (ConfigDict)")
    search = _plain(sweep_config.search)
    if not isinstance(search, dict):
        raise SweepError("config.search must be a dict (see cnn_jax/sweep/search.py)")
    options = {"sampler": "tpe", "pruner": "halving", "seed": 0, "min_epochs": 1,
               "reduction_factor": 3, "finalists": 0, "finalist_seeds": (),
               "startup_trials": 10, **search}
    unknown = set(options) - {"sampler", "pruner", "seed", "min_epochs", "reduction_factor",
                              "finalists", "finalist_seeds", "startup_trials", "space",
                              "num_trials"}
    if unknown:
        raise SweepError(f"config.search has unknown keys {sorted(unknown)}")
    if options["sampler"] not in SAMPLERS:
        raise SweepError(f"config.search.sampler must be one of {list(SAMPLERS)}, "
                         f"got {options['sampler']!r}")
    if options["pruner"] not in PRUNERS:
        raise SweepError(f"config.search.pruner must be one of {list(PRUNERS)}, "
                         f"got {options['pruner']!r}")
    for name, low in (("num_trials", 1), ("seed", 0), ("min_epochs", 1),
                      ("reduction_factor", 2), ("finalists", 0), ("startup_trials", 0)):
        value = options.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise SweepError(f"config.search.{name} must be an integer >= {low}, got {value!r}")
    seeds = list(options["finalist_seeds"] or ())
    if any(isinstance(s, bool) or not isinstance(s, int) for s in seeds) or len(set(seeds)) \
            != len(seeds):
        raise SweepError(f"config.search.finalist_seeds must be distinct ints, got {seeds}")
    options["finalist_seeds"] = seeds
    options["space"] = parse_space(options.get("space"))
    base = sweep_config.base
    if base.get("schedule", "constant") != "constant":
        raise SweepError("a search trains epoch by epoch: base.schedule must be 'constant'")
    for param in options["space"]:  # every key must exist in the base config
        set_value(copy.deepcopy(base), param["key"], _example(param))
    return options


def _example(param: dict[str, Any]) -> Any:
    return param["args"][0]


def make_sampler(options: dict[str, Any], number: int):
    """The Optuna sampler for the draw of trial `number`, seeded from the search seed and that
    number: the same draw after a restart (a sampler's random state is not stored)."""
    import optuna

    seed = options["seed"] * 100_003 + number
    if options["sampler"] == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if options["sampler"] == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=options["startup_trials"])
    # Sobol: the scrambling seed stays fixed (the study's storage counts the points drawn);
    # categorical parameters come from the independent sampler
    return optuna.samplers.QMCSampler(
        qmc_type="sobol", scramble=True, seed=options["seed"],
        independent_sampler=optuna.samplers.RandomSampler(seed=seed),
        warn_independent_sampling=False, warn_asynchronous_seeding=False)


def make_pruner(options: dict[str, Any], num_epochs: int):
    import optuna

    if options["pruner"] == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=options["min_epochs"], reduction_factor=options["reduction_factor"])
    if options["pruner"] == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=options["min_epochs"], max_resource=num_epochs,
            reduction_factor=options["reduction_factor"])
    return optuna.pruners.NopPruner()


def suggest(trial, space: list[dict[str, Any]]) -> dict[str, Any]:
    """{key: value} drawn by the Optuna trial from the declared space."""
    values = {}
    for param in space:
        key, kind, args = param["key"], param["kind"], param["args"]
        if kind in ("int", "log_int"):
            values[key] = trial.suggest_int(key, args[0], args[1], log=kind == "log_int")
        elif kind == "choices":
            values[key] = trial.suggest_categorical(key, args)
        else:
            values[key] = trial.suggest_float(key, args[0], args[1], log=kind == "log_float")
    return values
