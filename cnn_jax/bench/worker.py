"""One benchmark participant in its own process: `python -m cnn_jax.bench.worker '<json spec>'`.

Protocol (JSON lines): after setup the worker prints {"ready": ..., "compile_s": ...}; then for
each line read from stdin — "train", "eval", "stats" or "quit" — it prints one JSON answer. Each
framework lives in its own process so that JAX's and PyTorch's thread pools never share one, and
so that the peak memory (ru_maxrss) belongs to one participant.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any

import numpy as np

from cnn_jax.bench.models import INPUT_SHAPE, layers_for

LEARNING_RATE = 0.01
EVAL_CHUNK = 1000


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def random_data(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.random((count, *INPUT_SHAPE), dtype=np.float32)
    return images, rng.integers(0, 10, count).astype(np.int32)


class JaxWorker:
    """The project's own training path: `cnn_jax.train.prepare` (the strategy and formulations
    training picks, the compiled chunks) and `cnn_jax.train.fit` with the `Divergence` hook only
    (the loop's own NaN checks, host syncs included), without files. `models` > 0: that many
    stacked states in one vmapped program, as a vmap sweep trains them. Evaluation is
    `Experiment.evaluate` on a split of its own (the experiment's are empty, so that an epoch's
    end evaluates nothing inside the timed steps)."""

    def __init__(self, spec: dict[str, Any]):
        import jax

        if spec.get("cache_dir"):
            from cnn_jax.compilation_cache import enable_compilation_cache

            enable_compilation_cache(spec["cache_dir"])
        from cnn_jax.train import fit
        from cnn_jax.train.hooks import Divergence
        from cnn_jax.train.inputs import eval_set

        self.jax, self.fit, self.hooks = jax, fit, [Divergence()]
        self.batch, self.num_steps = spec["batch_size"], spec["steps"]
        self.models = int(spec.get("models", 0))
        self.experiment = jax_experiment(spec)
        jax.block_until_ready(self.experiment.state)
        self.compile_s = self.experiment.compile()
        self._steps(self.experiment.steps_per_epoch)  # warm-up: one epoch
        self.eval_compile_s = 0.0
        if not self.models:
            images, labels = random_data(int(spec.get("eval_size", 2000)), seed=1)
            self.val = eval_set(images, labels, EVAL_CHUNK, self.experiment.placement.mesh)
            started = time.perf_counter()
            self.experiment.evaluate(self.experiment.state.params, self.val)  # compiles it
            self.eval_compile_s = time.perf_counter() - started

    def _steps(self, count: int) -> int:
        """Runs `count` steps (whole epochs where they fit) through `fit`."""
        experiment = self.experiment
        spe, start = experiment.steps_per_epoch, experiment.step
        until = start + count
        if experiment.chunk_steps > 1:
            until = -(-until // spe) * spe  # fused chunks: whole epochs, as the loop runs them
        self.fit(experiment, self.hooks, until=until)
        return experiment.step - start

    def ready(self) -> dict[str, Any]:
        formulation = self.experiment.train_formulation
        return {"ready": True, "compile_s": self.compile_s, "eval_compile_s": self.eval_compile_s,
                "strategy": "step" if self.experiment.chunk_steps == 1 else "scan",
                "chunk": self.experiment.chunk_steps, "conv": formulation.conv,
                "pool": formulation.pool, "microbatches": formulation.microbatches}

    def train(self) -> dict[str, Any]:
        cpu = time.process_time()
        started = time.perf_counter()
        done = self._steps(self.num_steps)
        self.jax.block_until_ready(self.experiment.state)
        seconds = time.perf_counter() - started
        images = done * self.batch * max(self.models, 1)
        return {"img_s": images / seconds, "seconds": seconds,
                "cpu_us_per_img": 1e6 * (time.process_time() - cpu) / images}

    def evaluate(self) -> dict[str, Any]:
        if self.models:
            return {"img_s": None}
        started = time.perf_counter()
        self.experiment.evaluate(self.experiment.state.params, self.val)
        seconds = time.perf_counter() - started
        return {"img_s": self.val.size / seconds, "seconds": seconds}

    def stats(self) -> dict[str, Any]:
        device = self.jax.local_devices()[0]
        device_peak = None
        if device.platform != "cpu":
            memory = device.memory_stats() or {}
            if "peak_bytes_in_use" in memory:
                device_peak = memory["peak_bytes_in_use"] / 2**20
        return {"peak_rss_mb": peak_rss_mb(), "device_peak_mb": device_peak}


def jax_experiment(spec: dict[str, Any]):
    """The `cnn_jax.train.Experiment` of the benchmark's JAX side: random training data (at most
    400 steps an epoch), no evaluation splits, the spec's network, batch, strategy and
    formulation, `models` runs (0: a lone run) each with its own seed, epochs enough never to end.
    """
    from cnn_jax.config import schema_defaults
    from cnn_jax.data import Dataset
    from cnn_jax.network import Network
    from cnn_jax.train import prepare
    from cnn_jax.train.experiment import Placement

    batch, models = spec["batch_size"], int(spec.get("models", 0))
    config = schema_defaults()
    config.batch_size, config.learning_rate = batch, LEARNING_RATE
    config.num_epochs = 1_000_000
    config.strategy = spec.get("strategy", "auto")
    config.log_every_steps = int(spec.get("scan_steps", 100))
    config.eval_batch_size = EVAL_CHUNK
    config.formulation.update(spec.get("formulation", {}))
    network = Network.from_layers(spec.get("layers") or layers_for(spec["network"]))
    images, labels = random_data(max(batch * min(spec.get("steps", 1), 400), batch))
    empty_images, empty_labels = images[:0], labels[:0]
    dataset = Dataset("random", images, labels, empty_images, empty_labels, empty_images,
                      empty_labels, 10)
    configs = []
    for model in range(max(models, 1)):  # each model its own seed and data order
        model_config = config.copy_and_resolve_references()
        model_config.seed = model
        configs.append(model_config)
    return prepare(configs, dataset, placement=Placement(models > 0, None), network=network)


class TorchWorker:
    """A plain PyTorch eager loop: same architecture, SGD, same batch, data already in memory as
    tensors (gathered by a random order like the JAX side), default thread count."""

    def __init__(self, spec: dict[str, Any]):
        import torch

        from cnn_jax.bench.models import torch_model

        self.torch = torch
        self.device = "cuda" if spec.get("device") == "gpu" and torch.cuda.is_available() \
            else "cpu"
        self.batch, self.num_steps = spec["batch_size"], spec["steps"]
        count = max(self.batch * min(self.num_steps, 400), self.batch)
        images, labels = random_data(count)
        self.images = torch.from_numpy(images.transpose(0, 3, 1, 2).copy()).to(self.device)
        self.labels = torch.from_numpy(labels.astype(np.int64)).to(self.device)
        self.order = torch.randperm(count, generator=torch.Generator().manual_seed(1)) \
            .to(self.device)
        self.steps_per_epoch = count // self.batch
        torch.manual_seed(0)
        self.model = torch_model(layers_for(spec["network"])).to(self.device)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=LEARNING_RATE)
        self.loss = torch.nn.CrossEntropyLoss()
        eval_images, eval_labels = random_data(int(spec.get("eval_size", 2000)), seed=1)
        self.eval_images = torch.from_numpy(eval_images.transpose(0, 3, 1, 2).copy()) \
            .to(self.device)
        self.eval_labels = torch.from_numpy(eval_labels.astype(np.int64)).to(self.device)
        self.train(warmup=True)
        self.evaluate()

    def ready(self) -> dict[str, Any]:
        return {"ready": True, "compile_s": None, "eval_compile_s": None,
                "threads": self.torch.get_num_threads(), "device": self.device}

    def _sync(self):
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def train(self, warmup: bool = False) -> dict[str, Any]:
        model = self.model
        model.train()
        steps = 3 if warmup else self.num_steps
        self._sync()
        cpu = time.process_time()
        started = time.perf_counter()
        for step in range(steps):
            start = (step % self.steps_per_epoch) * self.batch
            index = self.order[start:start + self.batch]
            x, y = self.images[index], self.labels[index]
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss(model(x), y)
            loss.backward()
            self.optimizer.step()
            if (step + 1) % 50 == 0:  # the same host sync cadence as the JAX loop
                loss.item()
        self._sync()
        seconds = time.perf_counter() - started
        return {"img_s": steps * self.batch / seconds, "seconds": seconds,
                "cpu_us_per_img": 1e6 * (time.process_time() - cpu) / (steps * self.batch)}

    def evaluate(self) -> dict[str, Any]:
        torch = self.torch
        self.model.eval()
        self._sync()
        started = time.perf_counter()
        hits = 0
        with torch.no_grad():
            for start in range(0, len(self.eval_labels), EVAL_CHUNK):
                logits = self.model(self.eval_images[start:start + EVAL_CHUNK])
                hits += int((logits.argmax(-1) == self.eval_labels[start:start + EVAL_CHUNK]).sum())
        self._sync()
        seconds = time.perf_counter() - started
        return {"img_s": len(self.eval_labels) / seconds, "seconds": seconds}

    def stats(self) -> dict[str, Any]:
        device_peak = None
        if self.device == "cuda":
            device_peak = self.torch.cuda.max_memory_allocated() / 2**20
        return {"peak_rss_mb": peak_rss_mb(), "device_peak_mb": device_peak}


def init_compile_times(spec: dict[str, Any]) -> dict[str, float]:
    """Wall time of compiling the spec's network's parameter initialisation as
    `cnn_jax.train.state.init_params` does (`jit_run_once`) and as a plain `jax.jit`, with no
    persistent cache."""
    import jax

    from cnn_jax.network import Network
    from cnn_jax.train.state import init_params

    network = Network.from_layers(spec.get("layers") or layers_for(spec["network"]))
    key = jax.random.key(0)
    programs = {"init_run_once": init_params.program().lower(network, key, INPUT_SHAPE),
                "init_default": jax.jit(lambda k: network.init(k, INPUT_SHAPE)).lower(key)}
    times = {}
    for name, lowered in programs.items():
        started = time.perf_counter()
        lowered.compile()
        times[name] = time.perf_counter() - started
    return times


def compile_only(spec: dict[str, Any]) -> dict[str, Any]:
    """Wall time of compiling the training programs of the spec's network and batch in a fresh
    process, with the persistent compilation cache in spec['cache_dir'] (cold: empty; warm:
    filled by a previous process); with spec['init'], first `init_compile_times` (no cache)."""
    import jax

    from cnn_jax.compilation_cache import enable_compilation_cache

    init_times = init_compile_times(spec) if spec.get("init") else {}
    started = time.perf_counter()
    enable_compilation_cache(spec["cache_dir"])
    experiment = jax_experiment({**spec, "steps": 4})
    jax.block_until_ready(experiment.state)
    setup_s = time.perf_counter() - started
    compile_s = experiment.compile()
    return {"compile_s": compile_s, "setup_s": setup_s, **init_times}


def main(argv: list[str]) -> None:
    spec = json.loads(argv[1])
    if spec.get("mode") == "compile_only":
        print(json.dumps(compile_only(spec)), flush=True)
        return
    worker = TorchWorker(spec) if spec["framework"] == "torch" else JaxWorker(spec)
    print(json.dumps(worker.ready()), flush=True)
    commands = {"train": worker.train, "eval": worker.evaluate, "stats": worker.stats}
    for line in sys.stdin:
        command = line.strip()
        if command == "quit" or not command:
            break
        print(json.dumps(commands[command]()), flush=True)


if __name__ == "__main__":
    main(sys.argv)
