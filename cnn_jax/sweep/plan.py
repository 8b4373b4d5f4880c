"""Before anything trains: every trial's per-layer size relations, and which trials are impossible.

Each trial's config goes through `validate_config` (the core's shape formula,
out = floor((in + 2·pad − dilation·(k − 1) − 1)/stride) + 1, layer by layer); a trial whose
shapes are impossible is `invalid`, with the reason. The tables go into the sweep log and
`workdir/shapes.md`, one per configuration (the seeds of a configuration share it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from cnn_jax.config import ConfigError, layer_dicts, validate_config
from cnn_jax.data.registry import dataset_info
from cnn_jax.summary import ShapeRow, format_shape, format_table, shape_table
from cnn_jax.sweep.grid import Trial
from cnn_jax.sweep.keys import SweepError
from cnn_jax.train.logs import atomic_write_text


@dataclasses.dataclass(frozen=True)
class TrialPlan:
    trial: Trial
    input_shape: tuple[int, int, int]
    rows: tuple[ShapeRow, ...] = ()
    reason: str | None = None  # why the trial is invalid; None when it can run

    @property
    def valid(self) -> bool:
        return self.reason is None

    def architecture(self) -> dict[str, Any]:
        """What trial.json keeps of the network: layers (sizes, costs), totals, an id."""
        if not self.valid:
            return {"reason": self.reason}
        spatial = [r for r in self.rows if r.jump != "—"]
        return {
            "architecture": architecture_id(self.trial.config, self.input_shape),
            "input_shape": list(self.input_shape),
            "layers": [row.as_dict() for row in self.rows],
            "params": sum(r.params for r in self.rows),
            "macs": sum(r.macs for r in self.rows),
            "receptive_field": spatial[-1].receptive_field if spatial else "1",
        }


def input_shape_for(config, override: Any = None) -> tuple[int, int, int]:
    if override:
        return tuple(int(d) for d in override)
    info = dataset_info(config.dataset)
    if info is None or info.image_shape is None:
        raise SweepError(f"the image shape of dataset {config.dataset!r} is not known before "
                         "loading it; set input_shape = (height, width, channels) in the sweep "
                         "config")
    return info.image_shape


def architecture_id(config, input_shape) -> str:
    """A short hash of the layers, the init scheme and the input shape."""
    text = json.dumps([layer_dicts(config), config.model.init, list(input_shape)],
                      sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def invalid_reason(error: ConfigError) -> str:
    """The key and why, without the (long) value of model.layers."""
    return f"config.{error.key}: {error.allowed}"


def plan_trial(trial: Trial, input_shape: tuple[int, int, int]) -> TrialPlan:
    try:
        network = validate_config(trial.config, input_shape)
    except ConfigError as error:
        return TrialPlan(trial, input_shape, reason=invalid_reason(error))
    return TrialPlan(trial, input_shape, tuple(shape_table(network, input_shape)))


def plan_all(trials: list[Trial], input_shape_override: Any = None) -> list[TrialPlan]:
    return [plan_trial(t, input_shape_for(t.config, input_shape_override)) for t in trials]


def by_group(plans: list[TrialPlan]) -> dict[str, list[TrialPlan]]:
    groups: dict[str, list[TrialPlan]] = {}
    for plan in plans:
        groups.setdefault(plan.trial.group, []).append(plan)
    return groups


def describe(group: str, plans: list[TrialPlan], *, markdown: bool) -> str:
    """One configuration's block: its table (or why it is impossible), and its trials."""
    first = plans[0]
    ids = ", ".join(p.trial.id for p in plans)
    shape = format_shape(first.input_shape)
    if markdown:
        head = f"### {group}\n\ntrials: {ids}; input {shape}\n\n"
        if first.valid:
            return head + format_table(list(first.rows), markdown=True) + "\n"
        return head + f"**invalid**: {first.reason}\n"
    if first.valid:
        return f"{group} (input {shape}; {ids}):\n{format_table(list(first.rows))}"
    return f"{group}: INVALID: {first.reason}"


def write_shapes(plans: list[TrialPlan], path: Path, title: str) -> str:
    """Writes shapes.md; returns the plain-text version for the sweep log."""
    groups = by_group(plans)
    invalid = sum(1 for ps in groups.values() if not ps[0].valid)
    head = (f"# Size relations: {title}\n\nout = floor((in + 2·pad − dilation·(k − 1) − 1)/stride)"
            f" + 1 for every conv and pool layer. {len(groups)} configurations, {invalid} "
            f"impossible; {len(plans)} trials.\n\n")
    blocks = [describe(g, ps, markdown=True) for g, ps in groups.items()]
    atomic_write_text(path, head + "\n".join(blocks))
    return "\n\n".join(describe(g, ps, markdown=False) for g, ps in groups.items())
