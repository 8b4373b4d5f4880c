"""Time to a target test accuracy on MNIST (the book's split), compile and data included.

Each participant trains from a fresh process (`tta_worker.py`, run by path so that a PyTorch
process never imports JAX) and evaluates the full 10,000-image test set every `eval_every`
training images; its time is the parent's wall clock from starting the process to reading the
first evaluation at or above the target: interpreter start, imports, loading the prepared TFDS
files, compilation, training and every evaluation. Runs alternate between participants seed by
seed (the order rotates), so a slow spell of the machine is shared.

Participants (`PARTICIPANTS`):
  project-fast      configs/mnist_fast.py on the project's training path
  pytorch-fast      the same network, optimizer, schedule and batch in plain PyTorch
  project-nielsen   the book's row 4 (CP20-CP40-FC100 ReLU, SGD η 0.03, λ 0.1, batch 10)
  pytorch-nielsen   row 4 in plain PyTorch (L2 on the weights as the book: λ/batches · w)
  pytorch-examples  pytorch/examples mnist/main.py's network and defaults (Adadelta lr 1.0,
                    StepLR γ 0.7 per epoch, batch 64, inputs normalised), written here
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("tta_worker.py")
FAST_CONFIG = REPOSITORY / "configs" / "mnist_fast.py"


@dataclasses.dataclass(frozen=True)
class Participant:
    name: str
    framework: str  # 'jax' or 'torch'
    config: str  # a config file, 'nielsen_row4' or 'examples'
    max_epochs: int  # stop there if the target is not reached


PARTICIPANTS = {p.name: p for p in (
    Participant("project-fast", "jax", str(FAST_CONFIG), 0),
    Participant("pytorch-fast", "torch", str(FAST_CONFIG), 0),
    Participant("project-nielsen", "jax", "nielsen_row4", 5),
    Participant("pytorch-nielsen", "torch", "nielsen_row4", 5),
    Participant("pytorch-examples", "torch", "examples", 5),
)}


@dataclasses.dataclass
class Settings:
    participants: tuple[str, ...] = tuple(PARTICIPANTS)
    seeds: tuple[int, ...] = (0, 1, 2)
    target: float = 0.99
    lower_target: float = 0.985  # also timed: compares participants that miss `target`
    eval_every: int = 10_000  # training images between evaluations of the test set
    device: str = "cpu"
    data_dir: str = ""
    torch_threads: int = 0  # 0: PyTorch's default
    timeout_s: float = 900.0
    train_images: int = 0  # > 0: train on the first that many images only (smoke tests)
    max_epochs: int = 0  # > 0: at most that many epochs for every participant (smoke tests)


def training_config(participant: Participant, seed: int, settings: Settings):
    """The participant's config (a ConfigDict), its seed set and its epochs capped."""
    from cnn_jax.config import with_defaults

    if participant.config == "nielsen_row4":
        from cnn_jax.research.nielsen import BOOK, ROWS, row_config

        config = row_config(ROWS[3], BOOK, seed)
    else:
        import importlib.util

        module_spec = importlib.util.spec_from_file_location("tta_config", participant.config)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        config = with_defaults(module.get_config())
    config.seed = seed
    for cap in (participant.max_epochs, settings.max_epochs):
        if cap:
            config.num_epochs = min(config.num_epochs, cap)
    config.train_size = settings.train_images
    config.plots = config.progress = False
    return config


@functools.cache
def tfds_folder(data_dir: str) -> tuple[str, float, int]:
    """(the prepared folder of dataset 'mnist', its pixel scale, its training images): prepared
    here first if needed, so that no participant pays for preparing it."""
    from cnn_jax.data import dataset_info, default_data_dir, load_dataset
    from cnn_jax.data.mnist import CnnJaxMnist

    data_dir = os.path.abspath(data_dir or default_data_dir())
    load_dataset("mnist", data_dir=data_dir, validation_size=10_000, train_size=1, test_size=1)
    info = dataset_info("mnist")
    return str(CnnJaxMnist(data_dir=data_dir).data_dir), info.pixel_scale, info.train


def worker_spec(participant: Participant, seed: int, settings: Settings) -> dict[str, Any]:
    """Everything a worker needs, as plain values (a PyTorch worker reads no config file)."""
    folder, pixel_scale, total = tfds_folder(settings.data_dir)
    common = {"framework": participant.framework, "seed": seed, "target": settings.target,
              "eval_every": settings.eval_every, "device": settings.device,
              "repository": str(REPOSITORY)}
    train_size = settings.train_images or total - 10_000
    if participant.framework == "jax":
        config = training_config(participant, seed, settings)
        config.data_dir = settings.data_dir
        return {**common, "config": json.loads(json.dumps(config.to_dict(), default=str))}
    torch_part = {"tfds_dir": folder, "pixel_scale": pixel_scale, "threads":
                  settings.torch_threads, "train_size": train_size}
    if participant.config == "examples":
        epochs = min(e for e in (participant.max_epochs, settings.max_epochs, 14) if e)
        return {**common, **torch_part, "network": "examples", "optimizer": "adadelta",
                "momentum": 0.0, "weight_decay": 0.0, "batch_size": 64, "epochs": epochs,
                "learning_rates": [0.7 ** epoch for epoch in range(epochs)],
                "rate_per_epoch": True, "normalize": True, "layers": None}
    import jax.numpy as jnp

    from cnn_jax.config import layer_dicts
    from cnn_jax.optim import learning_rate_at

    config = training_config(participant, seed, settings)
    if config.dataset != "mnist" or config.validation_size != 10_000:
        raise ValueError(f"{participant.name}: PyTorch runs read dataset 'mnist' with the "
                         f"book's validation split, not {config.dataset}/{config.validation_size}")
    steps_per_epoch = train_size // config.batch_size
    total_steps = steps_per_epoch * config.num_epochs
    hyper = {"learning_rate": jnp.float32(config.learning_rate),
             "total_steps": jnp.float32(total_steps)}
    rates = learning_rate_at(config.schedule, jnp.arange(total_steps), hyper)
    return {**common, **torch_part, "network": "layers", "layers": layer_dicts(config),
            "initial_params": initial_params(config),
            "optimizer": config.optimizer,
            "momentum": config.momentum if config.optimizer == "momentum" else 0.0,
            "betas": [config.adam_b1, config.adam_b2],
            "weight_decay": config.l2 / steps_per_epoch, "batch_size": config.batch_size,
            "epochs": config.num_epochs, "learning_rates": [float(r) for r in rates],
            "rate_per_epoch": False, "normalize": False}


def initial_params(config) -> dict[str, list]:
    """The project's initial parameters for `config` ({'conv1/kernel': nested lists, …}), so
    that the PyTorch twin starts from the same weights (its flatten order is converted)."""
    import jax

    from cnn_jax.config import build_network
    from cnn_jax.train.state import create_state

    state = create_state(build_network(config), config, (28, 28, 1), steps_per_epoch=1)
    return {f"{layer}/{name}": jax.device_get(value).tolist()
            for layer, leaves in state.params.items() for name, value in leaves.items()}


def run_one(spec: dict[str, Any], timeout_s: float, log=print) -> dict[str, Any]:
    """Runs one worker; returns its records and the parent's wall time to the target."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        json.dump(spec, file)
    env = dict(os.environ)
    if spec["device"] == "cpu":
        env.setdefault("JAX_PLATFORMS", "cpu")
    records, arrivals, wall_to_target = [], [], None
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, str(WORKER), file.name], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    try:
        for line in process.stdout:
            if not line.startswith("{"):
                continue
            record = json.loads(line)
            records.append(record)
            arrivals.append(time.perf_counter() - started)
            if record.get("reached") and wall_to_target is None:
                wall_to_target = time.perf_counter() - started
            if time.perf_counter() - started > timeout_s:
                process.kill()
                break
        process.wait(timeout=60)
    finally:
        Path(file.name).unlink(missing_ok=True)
    wall = time.perf_counter() - started
    evaluations = [r for r in records if "test_accuracy" in r]
    if process.returncode not in (0, None) and not evaluations:
        raise RuntimeError(f"worker failed ({process.returncode}): {process.stderr.read()[-2000:]}")
    last = evaluations[-1] if evaluations else {}
    finished = next((r for r in records if r.get("finished")), {})
    best = max((r["test_accuracy"] for r in evaluations), default=None)
    return {"reached": wall_to_target is not None, "wall_to_target_s": wall_to_target,
            "wall_s": wall, "jax_imported": finished.get("jax_imported"),
            "epochs": last.get("epochs"), "test_accuracy": last.get("test_accuracy"),
            "best_accuracy": best, "images_per_second": last.get("images_per_second"),
            "data_s": last.get("data_s"), "compile_s": last.get("compile_s"),
            "train_s": last.get("train_s"), "evaluations": len(evaluations),
            "curve": [(r["images"], r["test_accuracy"], arrival) for r, arrival
                      in zip(records, arrivals, strict=True) if "test_accuracy" in r]}


def run(settings: Settings, log=print) -> dict[str, Any]:
    """Every participant × seed, alternated; the report for `markdown`."""
    from cnn_jax.provenance import machine_info

    unknown = [name for name in settings.participants if name not in PARTICIPANTS]
    if unknown:
        raise ValueError(f"unknown participants {unknown}; choose from {list(PARTICIPANTS)}")
    tfds_folder(settings.data_dir)  # prepared before any participant starts
    load_before = os.getloadavg()
    names = list(settings.participants)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    started = time.perf_counter()
    for turn, seed in enumerate(settings.seeds):
        order = names[turn % len(names):] + names[:turn % len(names)]
        for name in order:
            spec = worker_spec(PARTICIPANTS[name], seed, settings)
            outcome = run_one(spec, settings.timeout_s)
            results[name].append({"seed": seed, **outcome})
            shown = (f"{outcome['wall_to_target_s']:.1f} s" if outcome["reached"] else
                     f"not reached (best {outcome['best_accuracy']:.4f})")
            log(f"{name} seed {seed}: {shown}, {outcome['epochs']:.2f} epochs, "
                f"{outcome['images_per_second']:,.0f} img/s")
    return {"settings": dataclasses.asdict(settings), "results": results,
            "machine": machine_info(settings.device), "load_before": load_before,
            "load_after": os.getloadavg(), "wall_s": time.perf_counter() - started}


def _spread(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})"


def time_to(run: dict[str, Any], accuracy: float) -> float | None:
    """The parent's wall time to the run's first evaluation at or above `accuracy`."""
    return next((seconds for _, value, seconds in run["curve"] if value >= accuracy), None)


def summary(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per participant: median seconds to target over the seeds that reached it, and more."""
    out = {}
    lower = report["settings"]["lower_target"]
    for name, runs in report["results"].items():
        times = [r["wall_to_target_s"] for r in runs if r["reached"]]
        lower_times = [t for t in (time_to(r, lower) for r in runs) if t is not None]
        out[name] = {
            "reached": len(times), "runs": len(runs), "times": times,
            "lower_times": lower_times, "lower_reached": len(lower_times),
            "median_s": statistics.median(times) if len(times) == len(runs) and times else None,
            "epochs": statistics.median([r["epochs"] for r in runs if r["reached"]]) if times
            else None,
            "img_s": statistics.median([r["images_per_second"] for r in runs]),
            "train_s": statistics.median([r["train_s"] for r in runs if r["reached"]]) if times
            else None,
            "best": max(r["best_accuracy"] or 0.0 for r in runs),
            "data_s": statistics.median([r["data_s"] or 0.0 for r in runs]),
            "compile_s": statistics.median([r["compile_s"] or 0.0 for r in runs]),
        }
    return out


def markdown(report: dict[str, Any]) -> str:
    """The table: per participant img/s, epochs, seconds to target and the ratios."""
    from cnn_jax.markdown import markdown_table

    settings, rows = report["settings"], summary(report)
    machine = report["machine"]
    reference = rows.get("project-fast", {}).get("median_s")
    body = []
    for name, row in rows.items():
        ratio = "–"
        if reference and row["median_s"]:
            ratio = f"{row['median_s'] / reference:.2f}×"
        body.append([
            name, f"{row['img_s']:,.0f}", "–" if row["epochs"] is None else f"{row['epochs']:.2f}",
            _spread(row["times"]) if row["reached"] else f"not reached (best {row['best']:.2%})",
            f"{row['reached']}/{row['runs']}", ratio,
            _spread(row["lower_times"]) + ("" if row["lower_reached"] == row["runs"] else
                                           f" ({row['lower_reached']}/{row['runs']})"),
            "–" if row["train_s"] is None else f"{row['train_s']:.1f}", f"{row['data_s']:.1f}",
            f"{row['compile_s']:.1f}" if row["compile_s"] else "–"])
    where = machine.get("accelerator") or f"{machine['cpu']}, {machine['cores']} cores"
    load = ", ".join(f"{v:.2f}" for v in report["load_before"])
    head = (f"Machine: {where}; jax {machine['jax']}, torch {machine.get('torch') or '–'}; "
            f"load average before {load}, after "
            f"{', '.join(f'{v:.2f}' for v in report['load_after'])}. Target "
            f"{settings['target']:.1%} test accuracy on the 10,000 test images, evaluated every "
            f"{settings['eval_every']:,} training images; seeds {list(settings['seeds'])}; "
            f"time = wall clock from process start (imports, data loading, compile, training, "
            f"evaluations); median (min–max) over the seeds. Wall time {report['wall_s']:.0f} s.")
    header = ["participant", "train img/s", "epochs to target", "s to target",
              "reached", "time / project-fast", f"s to {settings['lower_target']:.1%}",
              "of which training s", "data load s", "compile s"]
    return head + "\n\n" + markdown_table(header, body) + "\n"
