"""Orbax checkpoints of the whole training state: the last few and the best by validation accuracy.

Orbax writes every checkpoint into a temporary folder and renames it when complete, so a killed
process leaves either a whole checkpoint or none; a restore takes the latest whole one, and the
temporary folders of a killed save are removed when the next run opens the folder. Saves are
synchronous: when `save` returns, the checkpoint is on disk.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import flax.serialization
import jax
import orbax.checkpoint as ocp
from orbax.checkpoint.checkpoint_managers import preservation_policy as policies

from cnn_jax.errors import GroupError
from cnn_jax.train.state import TrainState

SCORE = "score"  # the metric that picks the best checkpoint (higher is better)


class Checkpointer:
    """Saves and restores `TrainState`s under workdir/checkpoints.

    Keeps the latest `keep` checkpoints and the one with the highest score (end-of-epoch
    checkpoints carry the validation accuracy as their score; mid-epoch ones carry none).
    """

    def __init__(self, workdir: str | os.PathLike, keep: int = 2):
        self.directory = Path(workdir).absolute() / "checkpoints"
        policy = policies.AnyPreservationPolicy([
            policies.LatestN(n=keep),
            policies.BestN(
                get_metric_fn=lambda metrics: metrics[SCORE], n=1,
                keep_checkpoints_without_metrics=False,
            ),
        ])
        options = ocp.CheckpointManagerOptions(
            preservation_policy=policy, enable_async_checkpointing=False,
            cleanup_tmp_directories=True,
        )
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def best_step(self) -> int | None:
        """The step of the checkpoint with the highest score (the earliest on ties), or the latest
        step if no checkpoint carries a score (Orbax's own `best_step` needs a `best_fn` and
        would return the latest)."""
        scored = []
        for step in self.all_steps():
            metrics = self._manager.metrics(step) or {}
            if SCORE in metrics:
                scored.append((float(metrics[SCORE]), -step))
        if not scored:
            return self.latest_step()
        return -max(scored)[1]

    def all_steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def save(self, state: TrainState, score: float | None = None) -> bool:
        """Saves `state` at its step, unless a checkpoint of that step exists; True if saved."""
        step = int(jax.device_get(state.step))
        if step in self._manager.all_steps():
            return False
        tree = flax.serialization.to_state_dict(jax.device_get(state))
        metrics: dict[str, Any] | None = None if score is None else {SCORE: float(score)}
        saved = self._manager.save(step, args=ocp.args.StandardSave(tree), metrics=metrics,
                                   force=True)
        self._manager.wait_until_finished()
        return bool(saved)

    def restore(self, template: TrainState, step: int | None = None) -> TrainState:
        """The state saved at `step` (default: the latest), shaped like `template`."""
        step = self.latest_step() if step is None else step
        target = flax.serialization.to_state_dict(jax.device_get(template))
        tree = self._manager.restore(step, args=ocp.args.StandardRestore(target))
        return flax.serialization.from_state_dict(template, tree)

    def close(self) -> None:
        self._manager.close()


def restore_newest_intact(checkpointers: Sequence[Checkpointer], templates: Sequence[TrainState]
                          ) -> tuple[int | None, list[TrainState]]:
    """(step, states) of the newest step of which every checkpointer holds a checkpoint that
    restores, shaped like `templates`; (None, templates) to start again when one of them holds
    no checkpoint at all, or when none of the common ones can be read (each unreadable one is
    reported in one line). Raises `GroupError` when they hold checkpoints but none in common."""
    held = [set(checkpointer.all_steps()) for checkpointer in checkpointers]
    if any(not steps for steps in held):
        return None, list(templates)
    common = sorted(set.intersection(*held), reverse=True)
    if not common:
        raise GroupError(f"cannot resume these trials together: "
                         f"{[str(c.directory.parent) for c in checkpointers]} hold no checkpoint "
                         f"of a step in common; resume them one by one")
    for step in common:
        states = []
        for checkpointer, template in zip(checkpointers, templates, strict=True):
            try:
                states.append(checkpointer.restore(template, step))
            except Exception as error:  # noqa: BLE001 - Orbax/TensorStore raise many kinds
                reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
                print(f"{checkpointer.directory / str(step)}: cannot be read "
                      f"({type(error).__name__}: {reason}); trying an older checkpoint",
                      file=sys.stderr)
                break
        else:
            return step, states
    print(f"no readable checkpoint in {[str(c.directory) for c in checkpointers]}; starting "
          f"again", file=sys.stderr)
    return None, list(templates)
