"""Which formulation wins where: every candidate of `formulations.choose` timed in one process.

`python -m experiments.formulation_grid` runs, for each network and batch size, one worker
process (`python -m cnn_jax.bench.formulation_grid '<json spec>'`) that builds the project's
training path (`bench.worker.jax_experiment`) once per candidate formulation and times them in
alternated repetitions, so every ratio in a row comes from the same process, backend and load.
The candidates are every convolution × pooling form the network's layers can take at one batch
per step, then micro-batch counts on top of the best of those (timed beside it and scaled to its
first measurement). XLA's options are the process's own (`cnn_jax.backend`), recorded per row.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from cnn_jax.bench.runner import worker_env

MICROBATCHES = (2, 4, 8)


def candidates(batch: int, plans: Sequence[Any]) -> list[dict[str, Any]]:
    """The formulations timed for one network and batch: each conv × pool form the network's
    layers can take, at one batch; then micro-batch counts that divide the batch (applied by the
    worker to the best single-batch form)."""
    from cnn_jax.layers.formulations import offsets_apply

    kinds = {plan.kind for plan in plans}
    convs = ["lax", "im2col"] if "conv" in kinds else ["lax"]
    if any(p.kind == "conv" and offsets_apply(p.input_shape[-1], p.output_shape[-1])
           for p in plans):
        convs.append("offsets")
    pools = ["lax", "reshape"] if "pool" in kinds else ["lax"]
    single = [{"conv": c, "pool": p, "microbatches": 1} for c in convs for p in pools]
    micro = [{"microbatches": m} for m in MICROBATCHES if batch % m == 0 and batch // m >= 2]
    return single + micro


def scan_candidates(plans: list[dict[str, Any]], microbatches: int) -> list[dict[str, Any]]:
    """One jitted step per batch vs `lax.scan`-fused steps, each with XLA's gradient
    convolutions (lax) and the canonical ones, on the pooling the network's best form uses."""
    pool = "reshape" if any(p.get("pool") == "reshape" for p in plans) else "lax"
    return [{"strategy": strategy, "conv": conv, "pool": pool, "microbatches": microbatches}
            for strategy in ("step", "scan") for conv in ("lax", "canonical")]


def _label(formulation: dict[str, Any]) -> str:
    prefix = f"{formulation['strategy']}:" if "strategy" in formulation else ""
    return f"{prefix}{formulation['conv']}/{formulation['pool']}/{formulation['microbatches']}"


def time_candidates(spec: dict[str, Any]) -> dict[str, Any]:
    """In this process: img/s (median of `repeats` alternated repetitions) of every candidate."""
    import jax

    from cnn_jax.backend import effective_xla_flags
    from cnn_jax.bench.worker import jax_experiment
    from cnn_jax.train import fit
    from cnn_jax.train.hooks import Divergence

    batch, steps, repeats = spec["batch_size"], spec["steps"], spec["repeats"]

    def build(formulation: dict[str, Any]):
        formulation = dict(formulation)
        strategy = formulation.pop("strategy", "step")
        experiment = jax_experiment({"layers": spec["layers"], "batch_size": batch,
                                     "steps": steps, "strategy": strategy, "scan_steps": steps,
                                     "formulation": formulation})
        return {"experiment": experiment, "compile_s": experiment.compile()}

    def run(entry: dict[str, Any], count: int) -> float:
        experiment = entry["experiment"]
        started = time.perf_counter()
        fit(experiment, [Divergence()], until=experiment.step + count)
        jax.block_until_ready(experiment.state)
        return count * batch / (time.perf_counter() - started)

    def measure(formulations: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        entries = {_label(f): build(f) for f in formulations}
        for entry in entries.values():
            run(entry, steps)  # warm-up
        rates: dict[str, list[float]] = {label: [] for label in entries}
        for _ in range(repeats):
            for label, entry in entries.items():
                rates[label].append(run(entry, steps))
        return {label: {"img_s": statistics.median(rates[label]),
                        "compile_s": entries[label]["compile_s"]} for label in entries}

    from cnn_jax.network import Network

    layers = spec["layers"]
    plans = candidates(batch, Network.from_layers(layers).plan((28, 28, 1)))
    if spec.get("scan"):
        return {"network": spec["network"], "batch_size": batch,
                "results": measure(scan_candidates(plans, spec["microbatches"])),
                "xla_flags": effective_xla_flags(), "backend": jax.default_backend()}
    single = [f for f in plans if "conv" in f]
    results = measure(single)
    best = max(single, key=lambda f: results[_label(f)]["img_s"])
    micro = [{**best, "microbatches": f["microbatches"]} for f in plans if "conv" not in f]
    if micro:  # timed beside the best single-batch form, scaled to its first measurement
        again = measure([best, *micro])
        scale = results[_label(best)]["img_s"] / again[_label(best)]["img_s"]
        for formulation in micro:
            label = _label(formulation)
            results[label] = {**again[label], "img_s": again[label]["img_s"] * scale}
    return {"network": spec["network"], "batch_size": batch, "results": results,
            "xla_flags": effective_xla_flags(), "backend": jax.default_backend()}


def network_layers(name: str) -> list[dict[str, Any]]:
    """A preset's layers, or the layers of a config file (`configs/mnist_fast.py`)."""
    if name.endswith(".py"):
        import importlib.util

        module_spec = importlib.util.spec_from_file_location("grid_config", name)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        return [dict(layer) for layer in module.get_config().model.layers]
    from cnn_jax.presets import preset

    return preset(name)


def run_grid(networks: Sequence[str], batch_sizes: Sequence[int], *, repeats: int = 3,
             images: int = 1500, scan: bool = False, echo: bool = True) -> list[dict[str, Any]]:
    """One worker process per (network, batch); returns their rows (see `time_candidates`).
    scan: time step vs scan with lax / canonical gradient convolutions instead (the
    micro-batches 'auto' picks for the batch)."""
    from cnn_jax.layers.formulations import auto_microbatches
    from cnn_jax.network import Network

    rows = []
    for name in networks:
        layers = network_layers(name)
        plans = Network.from_layers(layers).plan((28, 28, 1))
        for batch in batch_sizes:
            spec = {"network": name, "layers": layers, "batch_size": batch, "repeats": repeats,
                    "steps": max(4, images // batch), "scan": scan,
                    "microbatches": auto_microbatches(batch, plans)}
            output = subprocess.run(
                [sys.executable, "-m", "cnn_jax.bench.formulation_grid", json.dumps(spec)],
                env=worker_env("cpu"), capture_output=True, text=True, check=False)
            if output.returncode:
                raise RuntimeError(f"worker {name} batch {batch} failed:\n{output.stderr[-2000:]}")
            row = json.loads(output.stdout.strip().splitlines()[-1])
            rows.append(row)
            if echo:
                print(format_row(row), flush=True)
    return rows


def format_row(row: dict[str, Any]) -> str:
    results = row["results"]
    base = results.get("lax/lax/1", next(iter(results.values())))["img_s"]
    best = max(results, key=lambda label: results[label]["img_s"])
    cells = ", ".join(f"{label} {r['img_s']:,.0f} ({r['img_s'] / base:.2f}×)"
                      for label, r in sorted(results.items(), key=lambda kv: -kv[1]["img_s"]))
    return f"{row['network']} batch {row['batch_size']}: best {best}; {cells}"


if __name__ == "__main__":
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    print(json.dumps(time_candidates(json.loads(sys.argv[1]))), flush=True)
