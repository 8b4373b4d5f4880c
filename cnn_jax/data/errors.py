"""Exceptions raised by the data layer."""

from __future__ import annotations


class DataError(ValueError):
    """A data file is corrupt or inconsistent; the message names the file and the problem."""


class DatasetNotAvailableError(DataError):
    """A dataset is not on this machine.

    The message names the dataset, the paths that were searched and the shell command that
    makes the dataset available.
    """
