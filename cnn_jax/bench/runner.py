"""Runs the benchmark: workers per (network, batch size), repetitions alternated, medians."""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from cnn_jax.bench.models import NETWORKS

# The participants of one row: the project's path as it runs by default ('auto' picks the fastest
# formulation for the backend), the same path with the layers' own formulation, and PyTorch.
PROJECT = "project"
BASELINE = "project (layers' formulation)"
TORCH = "pytorch"


@dataclasses.dataclass
class BenchSettings:
    device: str = "cpu"
    networks: tuple[str, ...] = NETWORKS
    batch_sizes: tuple[int, ...] = (10, 128, 1024)
    steps: int = 0  # training steps per repetition; 0 → about `images` images (>= 5 steps)
    images: int = 2000
    repeats: int = 5
    eval_size: int = 2000
    baseline: bool = True  # also time the layers' own formulation (conv/pool 'xla')
    vmap_models: int = 0  # > 0: also time `jax.vmap` over that many models (accelerators only)
    compile_cache: bool = True
    verbose: bool = True

    def steps_for(self, batch: int) -> int:
        return self.steps or max(5, self.images // batch)


def torch_available() -> bool:
    try:
        import importlib.util

        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def worker_env(device: str | None) -> dict[str, str]:
    """The environment of a worker: this checkout first on the path, CPU-only when asked."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (REPO_ROOT, env.get("PYTHONPATH", "")) if p)
    if device == "cpu":
        env.setdefault("JAX_PLATFORMS", "cpu")
    return env


class Worker:
    """A worker subprocess (`cnn_jax.bench.worker`) spoken to line by line."""

    def __init__(self, spec: dict[str, Any]):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cnn_jax.bench.worker", json.dumps(spec)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env=worker_env(spec.get("device")),
        )
        self.info = self._read()

    def _read(self) -> dict[str, Any]:
        line = self.process.stdout.readline()
        while line and not line.startswith("{"):  # skip anything a library printed
            line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            raise RuntimeError(f"benchmark worker exited with status {code}")
        return json.loads(line)

    def ask(self, command: str) -> dict[str, Any]:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        try:
            self.process.stdin.write("quit\n")
            self.process.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        self.process.wait(timeout=60)


def spread(values: list[float]) -> dict[str, float] | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def bench_row(settings: BenchSettings, network: str, batch: int, use_torch: bool,
              log=print) -> dict[str, Any]:
    """One (network, batch) row: every participant started (and compiled) first, then the timed
    repetitions alternated between them, rotating which goes first."""
    steps = settings.steps_for(batch)
    base = {"network": network, "batch_size": batch, "steps": steps, "device": settings.device,
            "eval_size": settings.eval_size}
    specs = {PROJECT: {**base, "framework": "jax"}}
    if settings.baseline:
        specs[BASELINE] = {**base, "framework": "jax",
                           "formulation": {"conv": "lax", "pool": "lax", "microbatches": 1}}
    if use_torch:
        specs[TORCH] = {**base, "framework": "torch"}
    workers: dict[str, Worker] = {}
    try:
        for name, spec in specs.items():
            workers[name] = Worker(spec)
        train = {name: [] for name in workers}
        cpu = {name: [] for name in workers}
        evaluation = {name: [] for name in workers}
        names = list(workers)
        for rep in range(settings.repeats):
            turn = names[rep % len(names):] + names[:rep % len(names)]
            for name in turn:
                answer = workers[name].ask("train")
                train[name].append(answer["img_s"])
                cpu[name].append(answer.get("cpu_us_per_img"))
            for name in turn:
                evaluation[name].append(workers[name].ask("eval")["img_s"])
        row = {"network": network, "batch_size": batch, "steps": steps, "results": {}}
        for name, worker in workers.items():
            stats = worker.ask("stats")
            row["results"][name] = {
                "train": spread(train[name]), "eval": spread(evaluation[name]),
                "cpu_us_per_img": spread(cpu[name]),
                "compile_s": worker.info.get("compile_s"),
                "eval_compile_s": worker.info.get("eval_compile_s"),
                "conv": worker.info.get("conv"),
                "pool": worker.info.get("pool"),
                "microbatches": worker.info.get("microbatches"),
                "strategy": worker.info.get("strategy"), **stats,
            }
        if settings.verbose:
            log(format_row_line(row))
        return row
    finally:
        for worker in workers.values():
            worker.close()


def bench_vmap(settings: BenchSettings, network: str, batch: int) -> dict[str, Any]:
    """Same-shape trials as one `jax.vmap`-ed program: model-img/s."""
    spec = {"network": network, "batch_size": batch, "steps": settings.steps_for(batch),
            "device": settings.device, "framework": "jax", "models": settings.vmap_models}
    worker = Worker(spec)
    try:
        values = [worker.ask("train")["img_s"] for _ in range(settings.repeats)]
        return {"network": network, "batch_size": batch, "models": settings.vmap_models,
                "train": spread(values), "compile_s": worker.info["compile_s"],
                **worker.ask("stats")}
    finally:
        worker.close()


def compile_cache_times(network: str = "nielsen_cp2_fc100_relu", batch: int = 10,
                        device: str = "cpu") -> dict[str, float]:
    """Compile time of the training step in a fresh process with an empty persistent cache
    (cold), then in a second fresh process reading the cache the first one wrote (warm); the
    cold process first times the parameter initialisation's compile both ways (no cache)."""
    env = worker_env(device)
    with tempfile.TemporaryDirectory() as cache:
        spec = {"mode": "compile_only", "network": network, "batch_size": batch,
                "cache_dir": cache}
        times = {}
        for kind in ("cold", "warm"):
            started = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-m", "cnn_jax.bench.worker",
                 json.dumps({**spec, "init": kind == "cold"})],
                capture_output=True, text=True, env=env, check=True).stdout
            result = json.loads(out.strip().splitlines()[-1])
            times[kind] = result["compile_s"]
            times.update({name: result[name] for name in ("init_run_once", "init_default")
                          if name in result})
            times[f"{kind}_process_s"] = time.perf_counter() - started
    return times


def run_benchmark(settings: BenchSettings, log=print) -> dict[str, Any]:
    """Every row, plus compile-cache and (where an accelerator exists) vmap measurements."""
    from cnn_jax.provenance import machine_info

    use_torch = torch_available()
    if not use_torch:
        log("PyTorch is not importable: skipped (pip install -r requirements-bench.txt)")
    load_before = os.getloadavg()
    report: dict[str, Any] = {"settings": dataclasses.asdict(settings), "torch": use_torch,
                              "machine": machine_info(settings.device), "rows": [],
                              "load_before": load_before}
    started = time.perf_counter()
    for network in settings.networks:
        for batch in settings.batch_sizes:
            report["rows"].append(bench_row(settings, network, batch, use_torch, log))
    if settings.compile_cache:
        report["compile_cache"] = compile_cache_times(device=settings.device)
    accelerator = settings.device != "cpu"
    if settings.vmap_models and accelerator:
        report["vmap"] = [bench_vmap(settings, "nielsen_cp2_fc100_relu", batch)
                          for batch in settings.batch_sizes]
    report["load_after"] = os.getloadavg()
    report["wall_s"] = time.perf_counter() - started
    return report


def format_row_line(row: dict[str, Any]) -> str:
    results = row["results"]
    parts = [f"{row['network']} batch {row['batch_size']}:"]
    for name, result in results.items():
        train = result["train"]
        parts.append(f"{name} {train['median']:.0f} img/s")
    if TORCH in results:
        ratio = results[PROJECT]["train"]["median"] / results[TORCH]["train"]["median"]
        parts.append(f"ratio project/pytorch {ratio:.2f}")
    return "  ".join(parts)
