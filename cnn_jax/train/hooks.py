"""What `cnn_jax.train.run.fit` does besides training, as hooks: small objects that hear of the
chunks, divergences, epoch ends and the end of a fit, each doing one job.

    Divergence   the NaN/inf checks (every `nan_check_every` steps, at an epoch's end, and on a
                 non-finite training loss)
    Metrics      metrics.jsonl and TensorBoard (train, epoch and diverged records)
    Checkpoints  Orbax checkpoints: every `checkpoint_every_steps`, scored at an epoch's end, on
                 an interruption; `restore` gives the states a run resumes from
    ProgressBar  the tqdm bar on a terminal, one line per epoch elsewhere
    Plots        a finished run's plots and closing line
    Interrupts   SIGINT/SIGTERM ask the fit to stop at the next chunk boundary

`fit` calls every hook in list order (the order above: the checks before the records, the records
before the checkpoints). A hook that finds a run diverged calls `experiment.diverge`; every hook
then hears of it through `on_diverged`. The benchmark passes `[Divergence()]` only.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ml_collections

from cnn_jax.summary import ShapeRow
from cnn_jax.train import results
from cnn_jax.train.checkpoints import Checkpointer, restore_newest_intact
from cnn_jax.train.experiment import Experiment
from cnn_jax.train.interrupts import StopRequests
from cnn_jax.train.logs import MetricsLog
from cnn_jax.train.progress import Progress, percent, plural
from cnn_jax.train.state import TrainState


class Hook:
    """Does nothing at every event; a hook overrides the events it needs. `step` is the steps
    taken; `records` {run index: epoch record} and `outcomes` {run index: results} hold the runs
    the event concerns."""

    def stop_reason(self) -> str | None:
        """Asked before every chunk: a reason to stop there (e.g. 'SIGINT'), or None."""
        return None

    def on_chunk(self, experiment: Experiment, epoch: int, step: int, num_steps: int) -> None:
        """After each chunk of `num_steps` steps (`step` ends it)."""

    def on_diverged(self, experiment: Experiment, index: int, step: int, reason: str) -> None:
        """Run `index` diverged at `step` (the others go on)."""

    def on_epoch_end(self, experiment: Experiment, epoch: int, step: int,
                     records: dict[int, dict[str, Any]]) -> None:
        """After the evaluation of an epoch and the reset of its running sums."""

    def on_end(self, experiment: Experiment, step: int, outcomes: dict[int, dict[str, Any]]
               ) -> None:
        """The runs of `outcomes` end ('done' or 'interrupted')."""

    def close(self) -> None:
        """Releases files (called once, also after an error)."""


def crossed(step: int, num_steps: int, every: int) -> bool:
    """Whether a multiple of `every` lies in (step - num_steps, step]."""
    return every > 0 and step // every > (step - num_steps) // every


def epoch_ended(experiment: Experiment, epoch: int, step: int) -> bool:
    return step == (epoch + 1) * experiment.steps_per_epoch


class Divergence(Hook):
    """Ends a run `diverged` when its loss, parameters or optimizer state turn NaN/inf."""

    def on_chunk(self, experiment, epoch, step, num_steps):
        config = experiment.config
        if crossed(step, num_steps, config.nan_check_every) or epoch_ended(experiment, epoch,
                                                                           step):
            experiment.check_finite()
        if crossed(step, num_steps, config.log_every_steps):
            losses, _ = experiment.epoch_means()
            for index in experiment.training():
                if not math.isfinite(losses[index]):
                    experiment.diverge(index, f"the training loss became {float(losses[index])} "
                                              f"by step {step}")


class Metrics(Hook):
    """Each run's metrics.jsonl and TensorBoard events. On resume the records past the restored
    step are dropped (they are recomputed) and the runs' epoch records read back into
    `experiment.history`; a fresh run's log starts with the shape table."""

    def __init__(self, workdirs: Sequence[Path], experiment: Experiment,
                 shapes: Sequence[ShapeRow]):
        start = experiment.step if experiment.resumed else None
        self.workdirs = list(workdirs)
        self.logs = [MetricsLog(workdir, resume_step=start) for workdir in workdirs]
        for index, log in enumerate(self.logs):
            if start is None:
                log.truncate_after(-1)
                log.write("shapes", 0, table=[row.as_dict() for row in shapes])
            else:
                experiment.history[index] = results.epoch_records(log.truncate_after(start))

    def on_chunk(self, experiment, epoch, step, num_steps):
        if crossed(step, num_steps, experiment.config.log_every_steps):
            losses, accuracies = experiment.epoch_means()
            for index in experiment.training():
                self.logs[index].write("train", step, epoch=epoch + 1,
                                       loss=float(losses[index]),
                                       accuracy=float(accuracies[index]))

    def on_diverged(self, experiment, index, step, reason):
        self.logs[index].write("diverged", step, reason=reason)
        print(f"{self.workdirs[index]}: diverged: {reason}; metrics and the last good checkpoint "
              f"are kept", file=sys.stderr)

    def on_epoch_end(self, experiment, epoch, step, records):
        for index, record in records.items():
            self.logs[index].write("epoch", step, **record)

    def close(self):
        for log in self.logs:
            log.close()


class Checkpoints(Hook):
    """Each run's checkpoints (only finite states are saved: a diverged run keeps its last good
    one)."""

    def __init__(self, workdirs: Sequence[Path], configs: Sequence[ml_collections.ConfigDict]):
        self.checkpointers = []
        for workdir, config in zip(workdirs, configs, strict=True):
            self.checkpointers.append(Checkpointer(workdir, keep=config.checkpoint_keep))

    def restore(self, templates: list[TrainState]) -> tuple[int | None, list[TrainState]]:
        """The newest step every run holds an intact checkpoint of (see
        `checkpoints.restore_newest_intact`): `prepare`'s `resume`."""
        return restore_newest_intact(self.checkpointers, templates)

    def save(self, experiment: Experiment, indices: Sequence[int],
             scores: dict[int, float] | None = None) -> None:
        """Checkpoints of the runs of `indices` that are still finite (checked first)."""
        experiment.check_finite()
        for index in indices:
            if experiment.outcomes[index] is None:
                score = None if scores is None else scores[index]
                self.checkpointers[index].save(experiment.member(index), score=score)

    def on_chunk(self, experiment, epoch, step, num_steps):
        if not epoch_ended(experiment, epoch, step) and crossed(
                step, num_steps, experiment.config.checkpoint_every_steps):
            self.save(experiment, experiment.training())

    def on_epoch_end(self, experiment, epoch, step, records):
        scores = {index: results.selection_score(record) for index, record in records.items()}
        self.save(experiment, list(records), scores)

    def on_end(self, experiment, step, outcomes):
        self.save(experiment, [index for index, outcome in outcomes.items()
                               if outcome["status"] == "interrupted"])

    def close(self):
        for checkpointer in self.checkpointers:
            checkpointer.close()


class ProgressBar(Hook):
    """Steps done / total on a tqdm bar (a terminal) and a line per epoch."""

    def __init__(self, experiment: Experiment):
        config = experiment.config
        self.progress = Progress(experiment.steps_per_epoch * config.num_epochs, experiment.step,
                                 enabled=config.progress)

    def on_chunk(self, experiment, epoch, step, num_steps):
        if not crossed(step, num_steps, experiment.config.log_every_steps):
            self.progress.update(step)
            return
        losses, accuracies = experiment.epoch_means()
        training = experiment.training()
        if len(experiment.configs) > 1:
            self.progress.update(step, models=len(training))
        elif training:
            self.progress.update(step, loss=float(losses[0]), accuracy=float(accuracies[0]))
        else:
            self.progress.update(step)

    def on_epoch_end(self, experiment, epoch, step, records):
        head = f"epoch {epoch + 1}/{experiment.config.num_epochs}: "
        if len(experiment.configs) == 1 and 0 in records:
            record = records[0]
            self.progress.epoch(
                step, f"{head}train loss {record['train_loss']:.4f}, accuracy "
                f"{percent(record['train_accuracy'])}; validation "
                f"{percent(record['val_accuracy'])}, test {percent(record['test_accuracy'])}; "
                f"{record['epoch_time_s']:.1f} s, {record['images_per_second']:,.0f} img/s",
                val_acc=record["val_accuracy"], test_acc=record["test_accuracy"],
                img_s=record["images_per_second"])
            return
        values = [r["val_accuracy"] for r in records.values() if r["val_accuracy"] is not None]
        best = max(values) if values else None
        rate = next(iter(records.values()), {}).get("model_images_per_second", 0)
        seconds = next(iter(records.values()), {}).get("epoch_time_s", 0.0)
        self.progress.epoch(
            step, f"{head}{plural(len(records), 'model')} training, best validation "
            f"{percent(best)}; {seconds:.1f} s, {rate:,.0f} model-img/s",
            models=len(records), best_val=None if best is None else round(best, 4),
            model_img_s=round(rate))

    def on_end(self, experiment, step, outcomes):
        self.progress.close()

    def close(self):
        self.progress.close()


class Plots(Hook):
    """A finished run's plots (if `config.plots`) and its closing line."""

    def __init__(self, workdirs: Sequence[Path]):
        self.workdirs = list(workdirs)

    def on_end(self, experiment, step, outcomes):
        for index, outcome in outcomes.items():
            if outcome["status"] == "done":
                results.finish_run(self.workdirs[index], experiment.configs[index],
                                   experiment.network, experiment.member(index), experiment.test,
                                   experiment.history[index], outcome)


class Interrupts(Hook):
    """SIGINT/SIGTERM (`StopRequests`, entered by the caller) stop the fit at the next chunk
    boundary; the runs save and end `interrupted`."""

    def __init__(self, stop: StopRequests):
        self.stop = stop

    def stop_reason(self):
        return self.stop.signal_name if self.stop.requested else None

    def on_end(self, experiment, step, outcomes):
        if any(o["status"] == "interrupted" for o in outcomes.values()):
            saved = "checkpoint saved" if len(experiment.configs) == 1 else "checkpoints saved"
            print(f"\nstopped by {self.stop.signal_name} at step {step}; {saved}; rerun the same "
                  f"command to go on", file=sys.stderr)
