"""Where a training step's time goes: `jax.profiler` traces of the project's own step, each XLA
op (thunk) mapped back to the JAX operation it computes.

The step is the one training runs (an `Experiment` from `cnn_jax.train.prepare`, its compiled
chunk, `cnn_jax.train.fit`). `jax.profiler.trace(..., create_perfetto_trace=True)` records one
event per executed thunk (`ynn_fusion.7`, `loop_convolution_fusion.2`, …); the compiled
program's HLO text gives each thunk's metadata: the JAX operation (`conv_general_dilated`,
`dot_general`, …), whether it is in the backward pass (`transpose(jvp(…))`), and its output
shape. The table sums the time per (pass, operation) and lists the costliest thunks, per step.
"""

from __future__ import annotations

import collections
import dataclasses
import glob
import gzip
import json
import re
import tempfile
from typing import Any

_INSTRUCTION = re.compile(r"^\s*%?([\w.\-]+) = (\S+) .*?metadata=\{op_name=\"([^\"]+)\"")


@dataclasses.dataclass(frozen=True)
class Op:
    """What an HLO instruction computes, from its metadata."""

    name: str
    shape: str
    jax_op: str  # the last part of the op name: conv_general_dilated, dot_general, …
    backward: bool  # inside transpose(jvp(…)): the gradient


def hlo_ops(hlo_text: str) -> dict[str, Op]:
    """{instruction name: Op} of every instruction with metadata in a compiled program's text."""
    ops = {}
    for line in hlo_text.splitlines():
        match = _INSTRUCTION.match(line)
        if match:
            name, shape, op_name = match.groups()
            ops[name] = Op(name, shape, op_name.rsplit("/", 1)[-1],
                           "transpose(" in op_name)
    return ops


def thunk_times(trace_folder: str) -> tuple[collections.Counter, collections.Counter]:
    """({event name: total µs}, {event name: count}) of the complete events of a perfetto trace."""
    files = sorted(glob.glob(f"{trace_folder}/**/perfetto_trace.json.gz", recursive=True))
    if not files:
        raise FileNotFoundError(f"no perfetto trace under {trace_folder}")
    with gzip.open(files[-1]) as file:
        data = json.load(file)
    events = data["traceEvents"] if isinstance(data, dict) else data
    totals, counts = collections.Counter(), collections.Counter()
    for event in events:
        if event.get("ph") == "X":
            totals[event["name"]] += event.get("dur", 0)
            counts[event["name"]] += 1
    return totals, counts


def profile_experiment(experiment: Any, steps: int = 20) -> dict[str, Any]:
    """Traces `steps` training steps of `experiment` (after one warm-up step); returns per-step
    milliseconds by (pass, JAX operation), the costliest thunks and the step's wall time."""
    import time

    import jax

    from cnn_jax.train import fit
    from cnn_jax.train.hooks import Divergence

    fit(experiment, [Divergence()], until=experiment.step + 1)
    step = experiment.step
    ops: dict[str, Op] = {}
    end = min(experiment.steps_per_epoch, step + steps)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        with jax.profiler.trace(folder, create_perfetto_trace=True):
            fit(experiment, [Divergence()], until=end)
        wall = time.perf_counter() - started
        totals, counts = thunk_times(folder)
    for program in experiment.programs.values():
        ops.update(hlo_ops(program.as_text()))
    done = experiment.step
    traced = done - step
    by_op: collections.Counter = collections.Counter()
    thunks = []
    for name, micros in totals.items():
        op = ops.get(name)
        if op is None:
            continue
        key = f"{'backward' if op.backward else 'forward'} {op.jax_op}"
        by_op[key] += micros
        thunks.append((micros, name, op))
    busy = sum(by_op.values())
    thunks.sort(key=lambda item: -item[0])
    return {
        "steps": traced, "wall_ms_per_step": 1000 * wall / traced,
        "op_ms_per_step": busy / 1000 / traced,
        "by_op": [(key, micros / 1000 / traced, micros / max(busy, 1))
                  for key, micros in by_op.most_common()],
        "thunks": [(name, op.jax_op, op.backward, op.shape, micros / 1000 / traced)
                   for micros, name, op in thunks[:15]],
        "formulation": experiment.train_formulation,
    }


def markdown(title: str, profile: dict[str, Any]) -> str:
    from cnn_jax.markdown import markdown_table

    formulation = profile["formulation"]
    head = (f"{title}: {profile['wall_ms_per_step']:.2f} ms per step wall (traced), "
            f"{profile['op_ms_per_step']:.2f} ms in XLA ops summed over threads; formulation "
            f"{formulation.conv} conv, {formulation.pool} pool, {formulation.microbatches} "
            f"micro-batches.")
    by_op = markdown_table(["pass", "operation", "ms per step", "share"],
                           [[key.split(" ", 1)[0], key.split(" ", 1)[1], f"{ms:.2f}",
                             f"{share:.0%}"] for key, ms, share in profile["by_op"][:10]])
    thunks = markdown_table(["thunk", "operation", "pass", "output", "ms per step"],
                            [[name, op, "backward" if back else "forward", shape, f"{ms:.3f}"]
                             for name, op, back, shape, ms in profile["thunks"][:8]])
    return f"{head}\n\n{by_op}\n\nCostliest thunks:\n\n{thunks}\n"
