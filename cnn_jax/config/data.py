"""From a config's data-identifying keys (`DATA_KEYS`) to a loaded data set, once per process.

`load_for_config(config)` loads what the config names; a `DatasetCache` keeps the last few data
sets loaded, keyed by `data_key(config)`, so that the runs of a sweep or of a table that share
their data keys share one loaded data set.
"""

from __future__ import annotations

import collections

import ml_collections

from cnn_jax.config.schema import DATA_KEYS
from cnn_jax.data import DataError, Dataset, load_dataset


def data_key(config: ml_collections.ConfigDict) -> tuple:
    """The values of `DATA_KEYS` (the seed only for the synthetic set, drawn from it)."""
    return tuple(config[key] for key in DATA_KEYS
                 if key != "seed" or config.dataset == "synthetic")


def load_for_config(config: ml_collections.ConfigDict) -> Dataset:
    """The `cnn_jax.data.Dataset` that `config` names.

    Raises:
      DatasetNotAvailableError: not on this machine (the message says how to get it).
      DataError: corrupt files, or sizes the data set does not have (the message names the key).
    """
    try:
        return load_dataset(
            config.dataset, data_dir=config.data_dir or None, idx_dir=config.idx_dir or None,
            validation_size=config.validation_size, train_size=config.train_size or None,
            test_size=config.test_size or None, expand=config.expand, seed=config.seed,
        )
    except DataError:
        raise
    except ValueError as error:  # sizes out of range for a data set known only once loaded
        raise DataError(f"{config.dataset}: {error}") from None


class DatasetCache:
    """The data sets of the last `keep` distinct `data_key`s, loaded at most once each while
    kept; `loads` counts the loads per key (for tests and logs)."""

    def __init__(self, keep: int = 2) -> None:
        self.keep = keep
        self.loads: collections.Counter = collections.Counter()
        self._loaded: collections.OrderedDict[tuple, Dataset] = collections.OrderedDict()

    def get(self, config: ml_collections.ConfigDict) -> Dataset:
        """The data set `config` names (loaded now if not kept)."""
        key = data_key(config)
        if key not in self._loaded:
            self._loaded[key] = load_for_config(config)
            self.loads[key] += 1
            while len(self._loaded) > self.keep:
                self._loaded.popitem(last=False)
        self._loaded.move_to_end(key)
        return self._loaded[key]
