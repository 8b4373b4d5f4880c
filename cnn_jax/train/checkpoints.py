"""Orbax checkpoints of the whole training state: the last few and the best by validation accuracy.

Orbax writes every checkpoint into a temporary folder and renames it when complete, so a killed
process leaves either a whole checkpoint or none; a restore takes the latest whole one, and the
temporary folders of a killed save are removed when the next run opens the folder. Saves are
synchronous: when `save` returns, the checkpoint is on disk; so is the cleanup when a
`Checkpointer` has been opened.
"""

from __future__ import annotations

import logging
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
NO_SCORE = -1.0  # mid-epoch checkpoints: below every score (accuracies, epoch numbers)


def _rank(metrics: dict[str, Any]) -> tuple[float, int]:
    """Higher is better: the score, then the earlier step (Nielsen's protocol takes the earliest
    of equally good epochs)."""
    return float(metrics[SCORE]), -int(metrics.get("step", 0))


def _await_temporary_cleanup(manager: ocp.CheckpointManager) -> None:
    """Blocks until the manager has removed a killed save's temporary folders.

    Orbax (0.12) removes them in a background thread that neither `close()` nor a read waits
    for; a process that exits while it runs (an evaluation refused at once) prints that thread's
    traceback at interpreter shutdown. Its own `save` waits the same way.
    """
    wait = getattr(manager, "_maybe_await_cleanup_tmp_directory", None)
    if wait is not None:
        wait()


class _AbortedReadNoise(logging.Filter):
    """What a failed restore leaves behind, dropped so that its one-line report stays one line.

    When one array of a checkpoint cannot be read, Orbax stops its event loop while TensorStore
    still reads the others; those reads then end in threads as "Event loop is closed" (sent to
    `sys.unraisablehook` with no object) and as "exception was never retrieved" records of the
    `asyncio` logger, a traceback each. Only these are dropped: other unraisable exceptions,
    and asyncio records about anything but a checkpoint this module opened, pass through.
    """

    def __init__(self) -> None:
        super().__init__()
        self.directories: set[str] = set()
        self._next_hook = sys.unraisablehook

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not ("exception was never retrieved" in record.getMessage()
                    and any(directory in str(error) for directory in self.directories))

    def unraisable(self, unraisable: Any) -> None:
        if not (unraisable.object is None and isinstance(unraisable.exc_value, RuntimeError)
                and str(unraisable.exc_value) == "Event loop is closed"):
            self._next_hook(unraisable)


_ABORTED_READS: _AbortedReadNoise | None = None


def _drop_aborted_read_noise(directory: Path) -> None:
    global _ABORTED_READS
    if _ABORTED_READS is None:
        _ABORTED_READS = _AbortedReadNoise()
        logging.getLogger("asyncio").addFilter(_ABORTED_READS)
        sys.unraisablehook = _ABORTED_READS.unraisable
    _ABORTED_READS.directories.add(str(directory))


class Checkpointer:
    """Saves and restores `TrainState`s under workdir/checkpoints.

    Keeps the latest `keep` checkpoints and the one with the highest score (end-of-epoch
    checkpoints carry the validation accuracy as their score; mid-epoch ones `NO_SCORE`). The
    scores are written beside each checkpoint, so the best one is known after a restart.
    """

    def __init__(self, workdir: str | os.PathLike, keep: int = 2):
        self.directory = Path(workdir).absolute() / "checkpoints"
        policy = policies.AnyPreservationPolicy([
            policies.LatestN(n=keep),
            policies.BestN(get_metric_fn=_rank, n=1, keep_checkpoints_without_metrics=False),
        ])
        options = ocp.CheckpointManagerOptions(
            preservation_policy=policy, enable_async_checkpointing=False,
            cleanup_tmp_directories=True, best_fn=_rank,
            best_mode="max",  # a best_fn makes Orbax write the scores to disk
        )
        self._manager = ocp.CheckpointManager(self.directory, options=options)
        _await_temporary_cleanup(self._manager)

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def best_step(self) -> int | None:
        """The step of the checkpoint with the highest score (the earliest on ties: the epoch
        Nielsen's protocol reports), or the latest step if none carries a score."""
        scored = [(_rank({"step": step, **metrics}), step) for step in self.all_steps()
                  if (metrics := self._manager.metrics(step) or {}).get(SCORE, NO_SCORE)
                  > NO_SCORE]
        return max(scored)[1] if scored else self.latest_step()

    def all_steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def save(self, state: TrainState, score: float | None = None) -> bool:
        """Saves `state` at its step, unless a checkpoint of that step exists; True if saved."""
        step = int(jax.device_get(state.step))
        if step in self._manager.all_steps():
            return False
        tree = flax.serialization.to_state_dict(jax.device_get(state))
        metrics = {SCORE: NO_SCORE if score is None else float(score), "step": step}
        saved = self._manager.save(step, args=ocp.args.StandardSave(tree), metrics=metrics,
                                   force=True)
        self._manager.wait_until_finished()
        return bool(saved)

    def restore(self, template: TrainState, step: int | None = None) -> TrainState:
        """The state saved at `step` (default: the latest), shaped like `template`."""
        step = self.latest_step() if step is None else step
        target = flax.serialization.to_state_dict(jax.device_get(template))
        _drop_aborted_read_noise(self.directory)
        tree = self._manager.restore(step, args=ocp.args.StandardRestore(target))
        return flax.serialization.from_state_dict(template, tree)

    def move_aside(self, step: int) -> Path:
        """Renames the (unreadable) checkpoint of `step` to checkpoints/corrupt-<step>[-n] and
        forgets it, so that the step can be saved again; returns the new folder."""
        target = self.directory / f"corrupt-{step}"
        number = 1
        while target.exists():
            number += 1
            target = self.directory / f"corrupt-{step}-{number}"
        (self.directory / str(step)).rename(target)
        self._manager.reload()
        return target

    def close(self) -> None:
        self._manager.close()


def read_error(error: BaseException) -> str:
    """One line about a failed restore: the exception type and the first line of its text."""
    reason = (str(error).strip().splitlines() or [""])[0][:200]
    return f"{type(error).__name__}: {reason}"


def restore_newest_intact(checkpointers: Sequence[Checkpointer], templates: Sequence[TrainState]
                          ) -> tuple[int | None, list[TrainState]]:
    """(step, states) of the newest step of which every checkpointer holds a checkpoint that
    restores, shaped like `templates`; (None, templates) to start again when one of them holds
    no checkpoint at all, or when none of the common ones can be read (each unreadable one is
    reported in one line and moved aside, `Checkpointer.move_aside`, so that the step is saved
    again when training reaches it). Raises `GroupError` when they hold checkpoints but none in
    common."""
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
                moved = checkpointer.move_aside(step)
                print(f"{checkpointer.directory / str(step)}: cannot be read "
                      f"({read_error(error)}); moved to {moved.name}/, trying an older "
                      f"checkpoint", file=sys.stderr)
                break
        else:
            return step, states
    print(f"no readable checkpoint in {[str(c.directory) for c in checkpointers]}; starting "
          f"again", file=sys.stderr)
    return None, list(templates)
