"""Data layer: datasets as immutable numpy splits, prepared TF-free through TFDS ArrayRecord.

``load_dataset(name)`` returns a :class:`Dataset`; see :func:`available_datasets` for names.
"""

from cnn_jax.data.augment import expand_with_shifts
from cnn_jax.data.dataset import Dataset
from cnn_jax.data.errors import DataError, DatasetNotAvailableError
from cnn_jax.data.idx import read_idx, write_idx
from cnn_jax.data.loading import available_datasets, default_data_dir, load_dataset

__all__ = [
    "DataError",
    "Dataset",
    "DatasetNotAvailableError",
    "available_datasets",
    "default_data_dir",
    "expand_with_shifts",
    "load_dataset",
    "read_idx",
    "write_idx",
]
