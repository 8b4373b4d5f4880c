"""Data layer: datasets as immutable numpy splits, prepared TF-free through TFDS ArrayRecord.

``load_dataset(name)`` returns a :class:`Dataset`; the names and what is known of each data set
are in :mod:`cnn_jax.data.registry`.
"""

from cnn_jax.data.augment import expand_with_shifts
from cnn_jax.data.dataset import Dataset
from cnn_jax.data.idx import read_idx, write_idx
from cnn_jax.data.loading import default_data_dir, load_dataset
from cnn_jax.data.registry import DATASETS, DatasetInfo, dataset_info, dataset_names
from cnn_jax.data.synthetic import synthetic_dataset
from cnn_jax.errors import DataError, DatasetNotAvailableError

__all__ = [
    "DATASETS",
    "DataError",
    "Dataset",
    "DatasetInfo",
    "DatasetNotAvailableError",
    "dataset_info",
    "dataset_names",
    "default_data_dir",
    "expand_with_shifts",
    "load_dataset",
    "read_idx",
    "synthetic_dataset",
    "write_idx",
]
