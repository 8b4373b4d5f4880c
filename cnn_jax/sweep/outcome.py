"""The end every sweep and search shares: the outcome of one invocation, the closing writes
(`finish`: results tables, report, statuses), the compilation-cache folder and the config as a
JSON record."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import ml_collections

from cnn_jax.sweep import results as tables
from cnn_jax.sweep.log import SweepLog
from cnn_jax.sweep.report import build_report


@dataclasses.dataclass
class SweepOutcome:
    statuses: dict[str, str]  # trial id → status after this invocation
    ran: list[str]  # trials run by this invocation
    interrupted: bool

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for status in self.statuses.values():
            counts[status] = counts.get(status, 0) + 1
        return counts


def cache_dir(workdir: Path, override: str | None = None) -> str:
    """The sweep's persistent compilation cache: workdir/jax_cache unless overridden."""
    return str(Path(override or workdir / "jax_cache").expanduser().resolve())


def config_record(config: ml_collections.ConfigDict) -> Any:
    """The config as plain JSON values (sweep.json's `sweep_config`)."""
    return json.loads(json.dumps(config.to_dict(), default=str))


def finish(workdir: Path, log: SweepLog, statuses: dict[str, str], ran: list[str],
           interrupted: bool, *, report: bool, what: str = "sweep") -> SweepOutcome:
    """The end of a sweep or search: the interruption noted, results tables and the report
    rewritten, the statuses logged."""
    if interrupted:
        log.write(f"{what} interrupted; rerun the same command to resume")
    tables.write_results(workdir)
    if report:
        log.write(f"report: {build_report(workdir)}")
    outcome = SweepOutcome(statuses, ran, interrupted)
    log.write(f"statuses: {outcome.counts()}")
    return outcome
