"""The schema's key roles, the one dotted-key parser (command line and sweeps), the one dataset
cache keyed by the data-identifying keys, and the one check of split sizes."""

from __future__ import annotations

import pytest

from cnn_jax import cli
from cnn_jax.config import (
    DATA_KEYS,
    NON_SEMANTIC_KEYS,
    PER_RUN_KEYS,
    SCHEMA,
    ConfigError,
    DatasetCache,
    data_key,
    role,
    schema_defaults,
    semantic_difference,
)
from cnn_jax.config.keys import is_layer_field, normalized_key
from cnn_jax.data.loading import check_split_sizes
from cnn_jax.errors import SweepError
from cnn_jax.sweep.keys import canonical_key, parse_key, set_value


def _flat_keys(config, prefix=""):
    keys = []
    for name in config.keys():
        value = config[name]
        if hasattr(value, "keys") and not isinstance(value, list):
            keys += _flat_keys(value, f"{prefix}{name}.")
        else:
            keys.append(f"{prefix}{name}")
    return keys


def test_every_key_of_the_defaults_is_in_the_schema_once_with_one_role():
    paths = [key.path for key in SCHEMA]
    assert len(paths) == len(set(paths))
    assert sorted(_flat_keys(schema_defaults())) == sorted(paths)
    assert {key.role for key in SCHEMA} == {"per-run value", "data-identifying", "non-semantic",
                                            "semantic"}


def test_the_roles_of_the_keys():
    # The shared interface of a vmapped group, in this order (cnn_jax.train takes it).
    assert PER_RUN_KEYS == ("learning_rate", "l2", "momentum", "adam_b1", "adam_b2", "seed")
    assert DATA_KEYS == ("dataset", "data_dir", "idx_dir", "validation_size", "train_size",
                         "test_size", "expand", "seed")
    assert set(NON_SEMANTIC_KEYS) == {"log_every_steps", "plots", "progress", "checkpoint_keep",
                                      "nan_check_every"}
    assert role("learning_rate") == "per-run value"
    assert role("formulation.conv") == "semantic"
    assert role("progress") == "non-semantic"
    with pytest.raises(KeyError):
        role("nope")


def test_defaults_of_the_schema():
    config = schema_defaults()
    assert (config.dataset, config.validation_size, config.model.init) == ("mnist_5k", 500,
                                                                           "lecun_normal")
    assert config.model.layers == [] and config.model.preset == ""
    config.model.layers.append({"type": "dense"})
    assert schema_defaults().model.layers == []  # every call has its own list


def test_semantic_difference_skips_exactly_the_non_semantic_keys():
    saved = schema_defaults().to_dict()
    current = schema_defaults()
    for key in NON_SEMANTIC_KEYS:
        current[key] = not current[key] if isinstance(current[key], bool) else current[key] + 1
    assert semantic_difference(saved, current.to_dict()) == []
    current.learning_rate, current.formulation.conv = 0.5, "lax"
    assert semantic_difference(saved, current.to_dict()) == ["formulation.conv", "learning_rate"]


@pytest.mark.parametrize("key, path", [
    ("model.layers[0].kernel", ("model", "layers", 0, "kernel")),
    ("model.layers.0.kernel", ("model", "layers", 0, "kernel")),
    ("base.model.layers[2]", ("base", "model", "layers", 2)),
    ("learning_rate", ("learning_rate",)),
])
def test_one_parser_for_both_spellings(key, path):
    assert parse_key(key) == path
    assert canonical_key(path) == normalized_key(key)


@pytest.mark.parametrize("key", ["", "model..layers", "model.[0]", "model.layers[x]", "a-b"])
def test_unparseable_keys(key):
    with pytest.raises(SweepError):
        parse_key(key)
    assert normalized_key(key) == key  # the command line reports it as given


@pytest.mark.parametrize("key, expected", [
    ("model.layers[0].kernel", True), ("model.layers.1", True), ("model.layers", False),
    ("model.preset", False), ("model.sublayers[0].kernel", False), ("a-b", False),
])
def test_layer_fields(key, expected):
    assert is_layer_field(key) is expected


def test_the_command_line_reads_dotted_indices_with_the_same_parser(monkeypatch):
    monkeypatch.setattr(cli, "_CONFIG_FLAGS", {"config": None})
    argv = ["prog", "--config.model.layers.0.kernel=3", "--config.base.model.layers.2=x",
            "--config.learning_rate=0.5", "--other.layers.0=1"]
    assert cli.with_config_defaults(argv) == [
        "prog", "--config.model.layers[0].kernel=3", "--config.base.model.layers[2]=x",
        "--config.learning_rate=0.5", "--other.layers.0=1"]
    kept, overrides = cli._split_layer_overrides(cli.with_config_defaults(argv))
    assert kept == ["prog", "--config.learning_rate=0.5", "--other.layers.0=1"]
    assert overrides == [("config", "model.layers[0].kernel", "3"),
                         ("config", "base.model.layers[2]", "x")]


def test_set_value_into_a_preset_copies_its_layers():
    config = schema_defaults()
    config.model.preset = "nielsen_cp1_fc100"
    set_value(config, "model.layers.0.kernel", 3)
    assert config.model.preset == "" and config.model.layers[0]["kernel"] == 3
    with pytest.raises(SweepError, match="has no field 'kernal'"):
        set_value(config, "model.layers[0].kernal", 3)


def _synthetic(**values):
    config = schema_defaults()
    config.dataset, config.train_size, config.validation_size = "synthetic", 40, 8
    config.update(values)
    return config


def test_the_dataset_cache_is_keyed_by_the_data_keys():
    cache = DatasetCache(keep=2)
    first = cache.get(_synthetic())
    # per-run values and other semantic keys do not pick the data
    assert cache.get(_synthetic(learning_rate=0.5, l2=1.0, batch_size=4)) is first
    assert len(first.train_labels) == 40 and len(first.val_labels) == 8
    # the seed draws the synthetic set: another data set
    other = cache.get(_synthetic(seed=1))
    assert other is not first
    assert sum(cache.loads.values()) == 2
    cache.get(_synthetic(train_size=20))  # a third key: the least recently used (seed 0) goes
    assert cache.get(_synthetic(seed=1)) is other
    cache.get(_synthetic())
    assert cache.loads[data_key(_synthetic())] == 2


def test_the_seed_picks_only_the_synthetic_data():
    a, b = schema_defaults(), schema_defaults()
    b.seed = 3
    assert data_key(a) == data_key(b)
    assert data_key(_synthetic()) != data_key(_synthetic(seed=3))


@pytest.mark.parametrize("sizes, key, allowed", [
    ({"validation_size": 50}, "validation_size", "less than the 50 training images of toy"),
    ({"validation_size": 10, "train_size": 41}, "train_size",
     "at most 40 (toy's 50 training images less validation_size 10), or 0 for all"),
    ({"validation_size": 0, "test_size": 21}, "test_size",
     "at most the 20 test images of toy, or 0 for all"),
    ({"validation_size": -1}, "validation_size", "a value in [0, ∞)"),
])
def test_split_sizes_are_checked_in_one_place(sizes, key, allowed):
    arguments = {"train_size": None, "test_size": None, **sizes}
    with pytest.raises(ConfigError) as caught:
        check_split_sizes("toy", 50, 20, **arguments)
    assert (caught.value.key, caught.value.allowed) == (key, allowed)
    check_split_sizes("toy", None, None, **{**arguments, "validation_size": 0})  # sizes unknown


def test_split_sizes_at_their_limits_pass():
    check_split_sizes("toy", 50, 20, validation_size=49, train_size=1, test_size=20)
    check_split_sizes("toy", 50, 20, validation_size=10, train_size=0, test_size=0)


def test_an_idx_folder_only_for_the_data_sets_that_read_one():
    from cnn_jax.data import load_dataset

    with pytest.raises(ConfigError) as caught:
        load_dataset("mnist_5k", idx_dir="/some/folder")  # refused before anything is read
    assert caught.value.key == "idx_dir"
    assert "'idx'" in caught.value.allowed and "'fashion_mnist_debian'" in caught.value.allowed
    assert "'mnist_5k'" not in caught.value.allowed
