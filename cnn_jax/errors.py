"""The project's error classes: one per kind of fault a user's input can cause.

Every one derives from `CnnJaxError`, which the experiment scripts print as one `error:` line
(exit code 2) instead of a traceback.
"""

from __future__ import annotations

from typing import Any


class CnnJaxError(Exception):
    """A fault of the user's input (config, layer, data, workdir, sweep), not of the code."""


class ShapeError(CnnJaxError, ValueError):
    """An impossible layer geometry: the message names the layer, the numbers and the formula."""


class LayerError(CnnJaxError, ValueError):
    """A layer spec that is not understood: unknown type, field, activation or pool type.

    `field` names the offending field (e.g. 'activation'), or is None for the spec as a whole.
    """

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class ConfigError(CnnJaxError, ValueError):
    """A config key with a value that is not allowed."""

    def __init__(self, key: str, value: Any, allowed: str):
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"config.{key} = {value!r} is not allowed: {allowed}")


class DataError(CnnJaxError, ValueError):
    """A data file is corrupt or inconsistent; the message names the file and the problem."""


class DatasetNotAvailableError(DataError):
    """A data set is not on this machine: the message names where it looked and the one command
    that makes it available."""


class WorkdirError(CnnJaxError, RuntimeError):
    """The workdir cannot be used for this run (another config, in use, not writable, full)."""


class RunError(CnnJaxError, ValueError):
    """A folder that is not a trained run, or a checkpoint it does not hold."""


class GroupError(CnnJaxError, ValueError):
    """Runs that cannot be trained as one vmapped program (they differ in more than values, or
    hold no common checkpoint step)."""


class SweepError(CnnJaxError, ValueError):
    """A sweep config that cannot be expanded: bad axes, keys, seeds or labels."""
