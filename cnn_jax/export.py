"""A trained run as a portable program: `jax.export` (StableHLO) with the parameters embedded.

    path = export_run("runs/default")               # runs/default/model.jax_export
    # anywhere with plain JAX, no cnn_jax:
    program = jax.export.deserialize(bytearray(path.read_bytes()))
    logits = program.call(images)                   # images: float32 (N, H, W, C)

The program maps images (N, H, W, C), float32, scaled as in training (uint8 pixels divided by the
run's pixel scale, see `TrainedModel`), to logits (N, classes); N is symbolic, so one file serves
every batch size. The parameters are constants of the program. Beside it, `<file>.json` records
what a user of the file needs: the input shape and dtype, the pixel scale, the number of classes,
the run and checkpoint step, and the JAX version that wrote it (a serialized program is read by
that JAX version and newer ones, within JAX's compatibility window).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from cnn_jax.inference import TrainedModel, load_run
from cnn_jax.train.logs import atomic_write_json

SUFFIX = ".jax_export"


def export_model(model: TrainedModel, *, platforms: tuple[str, ...] = ("cpu",)
                 ) -> jax.export.Exported:
    """`model`'s logits as a `jax.export.Exported` with a symbolic batch dimension, for
    `platforms` (e.g. ('cpu', 'cuda'))."""
    params = jax.device_get(model.params)
    network = model.network

    def logits(images: jax.Array) -> jax.Array:
        return network.apply(params, images)

    (batch,) = jax.export.symbolic_shape("batch")
    spec = jax.ShapeDtypeStruct((batch, *model.image_shape), jnp.float32)
    return jax.export.export(jax.jit(logits), platforms=platforms)(spec)


def export_run(workdir: str | Path, out: str | Path | None = None, *,
               checkpoint: str | int = "best", platforms: tuple[str, ...] = ("cpu",)) -> Path:
    """Writes the run's network at `checkpoint` as a serialized `jax.export` program to `out`
    (default workdir/model.jax_export) and its facts to `out`.json; returns `out`.

    Raises what `load_run` raises (`RunError` for a folder that is not a finished run)."""
    model = load_run(workdir, checkpoint=checkpoint)
    exported = export_model(model, platforms=platforms)
    out = Path(out) if out is not None else Path(workdir) / f"model{SUFFIX}"
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.tmp")
    temporary.write_bytes(exported.serialize())
    temporary.replace(out)
    atomic_write_json(out.with_name(out.name + ".json"), facts(model, exported))
    return out


def facts(model: TrainedModel, exported: jax.export.Exported) -> dict[str, Any]:
    """What the sidecar JSON records about an exported model."""
    return {
        "input": {"shape": ["batch", *model.image_shape], "dtype": "float32",
                  "scaling": f"uint8 pixels / {model.pixel_scale:g}"},
        "output": {"shape": ["batch", model.num_classes], "meaning": "logits"},
        "pixel_scale": model.pixel_scale, "classes": model.num_classes,
        "run": str(model.workdir) if model.workdir is not None else None,
        "step": model.step, "platforms": list(exported.platforms),
        "jax_version": jax.__version__, "calling_convention": exported.calling_convention_version,
        "load": "jax.export.deserialize(bytearray(open(path, 'rb').read())).call(images)",
    }


def read_facts(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(str(path) + ".json").read_text())
