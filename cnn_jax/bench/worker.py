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
    """The project's own path: `create_state`, device-resident data, `steps.train_steps` (or
    `steps.vmapped_train_steps` over `models` stacked states, as a vmap sweep runs them), the
    per-step dispatch loop of `cnn_jax.train.loop` (same host syncs: NaN check every 50 steps,
    log every 100), and
    `steps.eval_chunk` over a padded evaluation set."""

    def __init__(self, spec: dict[str, Any]):
        import jax

        if spec.get("cache_dir"):
            from cnn_jax.train.devices import enable_compilation_cache

            enable_compilation_cache(spec["cache_dir"])
        import jax.numpy as jnp

        from cnn_jax.config import base_config
        from cnn_jax.network import Network
        from cnn_jax.train import steps
        from cnn_jax.train.inputs import eval_set
        from cnn_jax.train.loop import pick_strategy
        from cnn_jax.train.state import create_state

        self.jax, self.jnp, self.steps_mod = jax, jnp, steps
        self.spec = spec
        batch, num_steps = spec["batch_size"], spec["steps"]
        self.batch, self.num_steps = batch, num_steps
        self.models = int(spec.get("models", 0))
        self.network = Network.from_layers(layers_for(spec["network"]))
        config = base_config()
        config.batch_size, config.learning_rate = batch, LEARNING_RATE
        self.config = config
        count = max(batch * min(num_steps, 400), batch)
        images, labels = random_data(count)
        self.images, self.labels = jax.device_put((images, labels))
        self.steps_per_epoch = count // batch
        strategy = pick_strategy(spec.get("strategy", "auto"))
        self.chunk = 1 if strategy == "step" else min(int(spec.get("scan_steps", 100)),
                                                      self.steps_per_epoch)
        self.strategy = strategy
        impls = {"conv_impl": spec.get("conv_impl", "auto"),
                 "pool_impl": spec.get("pool_impl", "auto"),
                 "microbatches": int(spec.get("microbatches", 0))}
        self.microbatches = steps.resolve_microbatches(impls["microbatches"], batch,
                                                       network=self.network,
                                                       input_shape=INPUT_SHAPE)
        self.impls = steps.resolve_impls(impls["conv_impl"], impls["pool_impl"],
                                         batch // self.microbatches)
        self.order = steps.epoch_order(jax.random.key(1), 0, count)
        if self.models:  # each model its own order, as in `cnn_jax.train.vmapped`
            self.order = jnp.stack([steps.epoch_order(jax.random.key(1 + m), 0, count)
                                    for m in range(self.models)])

        def make_state(seed):
            config.seed = seed
            return create_state(self.network, config, INPUT_SHAPE, self.steps_per_epoch)

        if self.models:
            states = [make_state(seed) for seed in range(self.models)]
            self.make_state = lambda: jax.tree_util.tree_map(lambda *a: jnp.stack(a), *states)
        else:
            self.make_state = lambda: make_state(0)
        state = self.make_state()
        jax.block_until_ready(state)
        started = time.perf_counter()  # trace + lower + compile, as the loop's `program()`
        self.program = self._build(self.chunk, impls, state)
        tail = self.steps_per_epoch % self.chunk
        self.tail_program = self._build(tail, impls, state) if tail else None
        self.compile_s = time.perf_counter() - started
        self.state = self.program(state, self.images, self.labels, self.order,
                                  jnp.int32(0))
        jax.block_until_ready(self.state)
        self.eval_compile_s = 0.0
        if not self.models:
            eval_images, eval_labels = random_data(int(spec.get("eval_size", 2000)), seed=1)
            self.eval = eval_set(eval_images, eval_labels, EVAL_CHUNK, None)
            chunk_size = len(self.eval.labels) // self.eval.chunks
            started = time.perf_counter()
            self.eval_program = steps.eval_chunk(
                self.network, "cross_entropy", chunk_size, None,
                conv_impl=impls["conv_impl"], pool_impl=impls["pool_impl"],
            ).lower(self.state.params, self.eval.images, self.eval.labels, self.eval.weights,
                    0).compile()
            self.eval_compile_s = time.perf_counter() - started
            self.run_eval()

    def _build(self, num_steps: int, impls: dict, state):
        jnp = self.jnp
        if self.models:
            run = self.steps_mod.vmapped_train_steps(
                self.network, "cross_entropy", "sgd", "constant", self.batch, num_steps, **impls)
        else:
            run = self.steps_mod.train_steps(self.network, "cross_entropy", "sgd", "constant",
                                             self.batch, num_steps, None, **impls)
        return run.lower(state, self.images, self.labels, self.order,
                         jnp.int32(0)).compile()

    def ready(self) -> dict[str, Any]:
        return {"ready": True, "compile_s": self.compile_s, "eval_compile_s": self.eval_compile_s,
                "strategy": self.strategy, "chunk": self.chunk,
                "conv_impl": self.impls[0], "pool_impl": self.impls[1],
                "microbatches": self.microbatches}

    def train(self) -> dict[str, Any]:
        jax, jnp = self.jax, self.jnp
        state = self.state
        spe, done = self.steps_per_epoch, 0
        cpu = time.process_time()
        started = time.perf_counter()
        while done < self.num_steps:
            batch = done % spe
            num = min(self.chunk, spe - batch)
            run = self.program if num == self.chunk else self.tail_program
            state = run(state, self.images, self.labels, self.order, jnp.int32(batch))
            done += num
            if done % 50 < num:  # the loop's NaN check (a host sync)
                float(jax.device_get(state.epoch_sums["loss"]).sum())
            if done % 100 < num:  # the loop's log record (a host sync)
                jax.device_get(state.epoch_sums)
        jax.block_until_ready(state)
        seconds = time.perf_counter() - started
        self.state = state
        images = done * self.batch * max(self.models, 1)
        return {"img_s": images / seconds, "seconds": seconds,
                "cpu_us_per_img": 1e6 * (time.process_time() - cpu) / images}

    def run_eval(self) -> float:
        loss = hits = 0.0
        for index in range(self.eval.chunks):
            chunk_loss, chunk_hits = self.eval_program(
                self.state.params, self.eval.images, self.eval.labels, self.eval.weights, index)
            loss, hits = loss + chunk_loss, hits + chunk_hits
        return float(self.jax.device_get(hits))

    def evaluate(self) -> dict[str, Any]:
        if self.models:
            return {"img_s": None}
        started = time.perf_counter()
        self.run_eval()
        seconds = time.perf_counter() - started
        return {"img_s": self.eval.size / seconds, "seconds": seconds}

    def stats(self) -> dict[str, Any]:
        device = self.jax.local_devices()[0]
        device_peak = None
        if device.platform != "cpu":
            memory = device.memory_stats() or {}
            if "peak_bytes_in_use" in memory:
                device_peak = memory["peak_bytes_in_use"] / 2**20
        return {"peak_rss_mb": peak_rss_mb(), "device_peak_mb": device_peak}


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


def compile_only(spec: dict[str, Any]) -> dict[str, Any]:
    """Wall time of `.lower().compile()` of the Nielsen training step in a fresh process, with the
    persistent compilation cache in spec['cache_dir'] (cold: empty; warm: filled by a previous
    process)."""
    started = time.perf_counter()
    import jax
    import jax.numpy as jnp

    from cnn_jax.config import base_config
    from cnn_jax.network import Network
    from cnn_jax.train import steps
    from cnn_jax.train.devices import enable_compilation_cache
    from cnn_jax.train.state import create_state

    enable_compilation_cache(spec["cache_dir"])
    network = Network.from_layers(layers_for(spec["network"]))
    config = base_config()
    config.batch_size = spec["batch_size"]
    images, labels = jax.device_put(random_data(spec["batch_size"] * 4))
    state = create_state(network, config, INPUT_SHAPE, 4)
    order = jnp.arange(len(labels))
    jax.block_until_ready((state, order))
    import_s = time.perf_counter() - started
    started = time.perf_counter()
    steps.train_steps(network, "cross_entropy", "sgd", "constant", spec["batch_size"], 1,
                      None).lower(state, images, labels, order, jnp.int32(0)).compile()
    return {"compile_s": time.perf_counter() - started, "setup_s": import_s}


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
