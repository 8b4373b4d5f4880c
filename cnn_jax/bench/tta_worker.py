"""One time-to-accuracy run in its own process: `python <this file> <spec.json>`.

Run by path, not as `-m cnn_jax…`, so that a PyTorch run imports nothing of cnn_jax (whose
package imports JAX): each framework's time from process start is its own. The spec (written by
`cnn_jax.bench.time_to_accuracy`, which resolves the training config into plain values) names
the framework ('jax': the project's training path; 'torch': a plain PyTorch eager loop), the
network, optimizer, learning rate per step, batch, epochs, seed, target test accuracy,
evaluation cadence in training images, and the prepared TFDS folder of the data.

The worker prints one JSON line per evaluation of the full test set ({"images", "epochs",
"test_accuracy", "elapsed_s", …}) and stops at the first evaluation at or above the target, or
after its epochs. `elapsed_s` counts from the worker's start: imports, data loading from the
prepared ArrayRecord files, compilation, training and every evaluation.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()  # before the heavy imports: they are part of the time

import importlib.util  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

EXAMPLES_MEAN, EXAMPLES_STD = 0.1307, 0.3081  # pytorch/examples mnist's input normalisation


def emit(record: dict[str, Any]) -> None:
    print(json.dumps({**record, "elapsed_s": time.perf_counter() - STARTED}), flush=True)


def report(accuracy: float, images: int, epoch_images: int, train_s: float,
           spec: dict[str, Any], **extra: float) -> bool:
    """Prints an evaluation record; True once the target is reached."""
    reached = accuracy >= spec["target"]
    emit({"images": images, "epochs": images / epoch_images, "test_accuracy": accuracy,
          "train_s": train_s, "images_per_second": images / max(train_s, 1e-9),
          "reached": reached, **extra})
    return reached


def cadence(batch: int, every_images: int) -> int:
    """Steps between evaluations: `every_images` training images, at least one step."""
    return max(1, every_images // batch)


def run_jax(spec: dict[str, Any]) -> None:
    """The project's path: the config validated, the data loaded by `load_for_config`,
    `cnn_jax.train.prepare` (strategy and formulations of this backend, the compiled chunks),
    `fit` with the `Divergence` hook between evaluations of the test set. The experiment gets no
    evaluation splits, so that an epoch's end evaluates nothing more. Programs come from JAX's
    persistent compilation cache when an earlier process compiled them, as for
    `experiments.train`."""
    import dataclasses

    from cnn_jax.compilation_cache import enable_compilation_cache
    from cnn_jax.config import load_for_config, validate_config, with_defaults
    from cnn_jax.train import fit, prepare
    from cnn_jax.train.hooks import Divergence
    from cnn_jax.train.inputs import eval_set

    enable_compilation_cache()
    config = with_defaults(spec["config"])
    every = cadence(config.batch_size, spec["eval_every"])
    network = validate_config(config)
    dataset = load_for_config(config)
    data_s = time.perf_counter() - STARTED
    experiment = prepare(config, dataclasses.replace(
        dataset, val_images=dataset.val_images[:0], val_labels=dataset.val_labels[:0],
        test_images=dataset.test_images[:0], test_labels=dataset.test_labels[:0]),
        network=network)
    test = eval_set(dataset.test_images, dataset.test_labels, config.eval_batch_size,
                    experiment.placement.mesh)
    compile_s = experiment.compile()
    spe, train_s = experiment.steps_per_epoch, 0.0
    while experiment.step < spe * config.num_epochs:
        step = experiment.step
        started = time.perf_counter()
        fit(experiment, [Divergence()], until=min((step // spe + 1) * spe,
                                                  step + every - step % every))
        train_s += time.perf_counter() - started  # fit waits for the state
        step = experiment.step
        if not experiment.training():
            emit({"diverged": True})
            return
        if step % every == 0 or step % spe == 0:
            _, accuracy = experiment.evaluate(experiment.state.params, test)
            if report(float(accuracy[0]), step * config.batch_size, len(dataset.train_labels),
                      train_s, spec, data_s=data_s, compile_s=compile_s):
                return


def _sibling(name: str):
    """A module beside this file, loaded by path (so that cnn_jax's package is not imported)."""
    path = Path(__file__).with_name(f"{name}.py")
    module_spec = importlib.util.spec_from_file_location(f"tta_{name}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def torch_data(spec: dict[str, Any]):
    """((train images, labels), (test images, labels)) as tensors, read from the prepared TFDS
    folder: the first `train_size` of train+validation (the book's training split), all of test."""
    import tensorflow_datasets as tfds
    import torch

    builder = tfds.builder_from_directory(spec["tfds_dir"])
    out = []
    for split, count in (("train+validation", spec["train_size"]), ("test", None)):
        source = builder.as_data_source(split=split)
        count = len(source) if count is None else count
        records = source.__getitems__(list(range(count)))
        images = np.stack([r["image"] for r in records]).astype(np.float32)
        images /= np.float32(spec["pixel_scale"])
        if spec["normalize"]:
            images = (images - EXAMPLES_MEAN) / EXAMPLES_STD
        labels = np.asarray([r["label"] for r in records], np.int64)
        out.append((torch.from_numpy(images.transpose(0, 3, 1, 2).copy()),
                    torch.from_numpy(labels)))
    return out


def load_initial(model, params: dict[str, list]) -> None:
    """Copies the project's initial parameters into the PyTorch twin: conv kernels HWIO → OIHW,
    dense kernels (in, out) → (out, in), the first dense layer's inputs from the project's
    (height, width, channels) flatten order to PyTorch's (channels, height, width)."""
    import torch

    layers = [m for m in model if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    names = sorted({key.split("/")[0] for key in params},
                   key=lambda n: (not n.startswith("conv"), int("".join(filter(str.isdigit, n)))))
    shape = None  # (channels, height, width) of the last conv-pool output
    with torch.no_grad():
        for layer, name in zip(layers, names, strict=True):
            kernel = np.asarray(params[f"{name}/kernel"], np.float32)
            if isinstance(layer, torch.nn.Conv2d):
                layer.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))
            else:
                if shape is not None:
                    channels, height, width = shape
                    kernel = kernel.reshape(height, width, channels, -1).transpose(
                        2, 0, 1, 3).reshape(channels * height * width, -1)
                    shape = None
                layer.weight.copy_(torch.from_numpy(kernel.T.copy()))
            layer.bias.copy_(torch.from_numpy(np.asarray(params[f"{name}/bias"], np.float32)))
            if isinstance(layer, torch.nn.Conv2d):
                shape = _conv_output(model, layer)


def _conv_output(model, conv) -> tuple[int, int, int]:
    """(channels, height, width) entering the first dense layer after `conv`."""
    import torch

    probe = torch.zeros(1, 1, 28, 28)
    for module in model:
        if isinstance(module, torch.nn.Flatten):
            return tuple(probe.shape[1:])
        probe = module(probe)
    return tuple(probe.shape[1:])


def run_torch(spec: dict[str, Any]) -> None:
    """A plain PyTorch eager loop: the spec's network (or pytorch/examples' mnist Net),
    optimizer, per-step learning rate, L2 on the weights, batch and data order per epoch."""
    import torch

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    torch.manual_seed(spec["seed"])
    device = "cuda" if spec.get("device") == "gpu" and torch.cuda.is_available() else "cpu"
    nets = _sibling("torch_nets")
    (train_x, train_y), (test_x, test_y) = (
        tuple(tensor.to(device) for tensor in pair) for pair in torch_data(spec))
    data_s = time.perf_counter() - STARTED
    model = nets.examples_net() if spec["network"] == "examples" else nets.torch_model(
        spec["layers"])
    if spec.get("initial_params"):
        load_initial(model, spec["initial_params"])
    model = model.to(device)
    weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
    biases = [p for name, p in model.named_parameters() if not name.endswith("weight")]
    groups = [{"params": weights, "weight_decay": spec["weight_decay"]},
              {"params": biases, "weight_decay": 0.0}]
    if spec["optimizer"] == "adadelta":
        optimizer = torch.optim.Adadelta(groups, lr=1.0)
    elif spec["optimizer"] == "adam":
        optimizer = torch.optim.Adam(groups, lr=1.0, betas=tuple(spec["betas"]))
    else:
        optimizer = torch.optim.SGD(groups, lr=1.0, momentum=spec["momentum"])
    rates = spec["learning_rates"]  # per step, or per epoch (StepLR) when there is one a epoch
    loss_fn = torch.nn.NLLLoss() if spec["network"] == "examples" else torch.nn.CrossEntropyLoss()
    batch, every = spec["batch_size"], cadence(spec["batch_size"], spec["eval_every"])
    steps_per_epoch = len(train_y) // batch
    generator = torch.Generator().manual_seed(spec["seed"])
    step, train_s = 0, 0.0
    interval = time.perf_counter()  # training time is measured between evaluations
    for epoch in range(spec["epochs"]):
        order = torch.randperm(len(train_y), generator=generator).to(device)
        model.train()
        for index in range(steps_per_epoch):
            rate = rates[epoch] if spec["rate_per_epoch"] else rates[step]
            for group in optimizer.param_groups:
                group["lr"] = rate
            rows = order[index * batch:(index + 1) * batch]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(train_x[rows]), train_y[rows])
            loss.backward()
            optimizer.step()
            step += 1
            if step % every == 0 or index == steps_per_epoch - 1:
                finite = math.isfinite(float(loss))  # a host sync: the steps are done
                train_s += time.perf_counter() - interval
                if not finite:
                    emit({"diverged": True})
                    return
                model.eval()
                with torch.no_grad():
                    hits = sum(int((model(test_x[i:i + 1000]).argmax(1) == test_y[i:i + 1000])
                                   .sum()) for i in range(0, len(test_y), 1000))
                model.train()
                if report(hits / len(test_y), step * batch, len(train_y), train_s, spec,
                          data_s=data_s):
                    return
                interval = time.perf_counter()


def main(argv: list[str]) -> None:
    spec = json.loads(Path(argv[1]).read_text())
    if spec["framework"] == "torch":
        run_torch(spec)
    else:
        sys.path.insert(0, spec["repository"])
        run_jax(spec)
    emit({"finished": True, "jax_imported": "jax" in sys.modules})


if __name__ == "__main__":
    main(sys.argv)
