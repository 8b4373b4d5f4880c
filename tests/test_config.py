"""Config validation before any data load or compile: one clear message naming the key, the value
and what is allowed; through `validate_config` and through the training script (exit code 2, an
`error:` line, no traceback unless --verbose)."""

from __future__ import annotations

import math
import textwrap

import pytest
from conftest import REPO, TINY, run_script, tiny_args, tiny_config

from cnn_jax.config import (
    ConfigError,
    check_loaded,
    config_to_json,
    schema_defaults,
    semantic_difference,
    validate_config,
    with_defaults,
)
from cnn_jax.presets import PRESETS

pytestmark = pytest.mark.usefixtures("train_env")

CONV4 = {"type": "conv", "features": 4, "kernel": 5, "activation": "relu"}
POOL = {"type": "pool", "pool_type": "max", "window": 2}
LOGITS = {"type": "dense", "features": 10, "activation": "identity"}


def with_layers(*layers):
    return {"model": {"layers": list(layers)}}


# (id, overrides on top of the tiny config, the key the error must name)
BAD = [
    ("unknown key", {"nope": 1}, "nope"),
    ("unknown nested key", {"model": {"nope": 1}}, "model.nope"),
    ("learning rate not a number", {"learning_rate": "abc"}, "learning_rate"),
    ("negative learning rate", {"learning_rate": -0.5}, "learning_rate"),
    ("zero learning rate", {"learning_rate": 0.0}, "learning_rate"),
    ("nan learning rate", {"learning_rate": math.nan}, "learning_rate"),
    ("infinite learning rate", {"learning_rate": math.inf}, "learning_rate"),
    ("batch size 0", {"batch_size": 0}, "batch_size"),
    ("batch size not an integer", {"batch_size": 2.5}, "batch_size"),
    ("batch size a bool", {"batch_size": True}, "batch_size"),
    ("batch larger than the data set", {"batch_size": 401}, "batch_size"),
    ("batch larger than mnist_5k", {"dataset": "mnist_5k", "train_size": 0, "batch_size": 3901},
     "batch_size"),
    ("zero epochs", {"num_epochs": 0}, "num_epochs"),
    ("negative l2", {"l2": -1.0}, "l2"),
    ("momentum 1", {"momentum": 1.0}, "momentum"),
    ("negative seed", {"seed": -1}, "seed"),
    ("plots not a bool", {"plots": "yes"}, "plots"),
    ("unknown optimizer", {"optimizer": "sgdd"}, "optimizer"),
    ("unknown schedule", {"schedule": "onecycle"}, "schedule"),
    ("unknown loss", {"loss": "hinge"}, "loss"),
    ("unknown strategy", {"strategy": "pmap"}, "strategy"),
    ("unknown data set", {"dataset": "mnist5k"}, "dataset"),
    ("idx without a folder", {"dataset": "idx"}, "idx_dir"),
    ("idx_dir for another data set", {"dataset": "mnist_5k", "idx_dir": "/tmp"}, "idx_dir"),
    ("validation larger than mnist_5k", {"dataset": "mnist_5k", "validation_size": 4000},
     "validation_size"),
    ("train_size beyond mnist_5k", {"dataset": "mnist_5k", "validation_size": 500,
                                    "train_size": 3600}, "train_size"),
    ("test_size beyond mnist_5k", {"dataset": "mnist_5k", "test_size": 1001}, "test_size"),
    ("unknown init", {"model": {"init": "xavier"}}, "model.init"),
    ("unknown preset", {"model": {"preset": "lenet9", "layers": []}}, "model.preset"),
    ("unknown activation", with_layers({**CONV4, "activation": "relux"}, POOL, LOGITS),
     "model.layers[0].activation"),
    ("unknown pool type", with_layers(CONV4, {**POOL, "pool_type": "median"}, LOGITS),
     "model.layers[1].pool_type"),
    ("dropout rate 1", with_layers(CONV4, POOL, {"type": "dropout", "rate": 1.0}, LOGITS),
     "model.layers[2].rate"),
    ("negative dropout rate", with_layers(CONV4, POOL, {"type": "dropout", "rate": -0.1}, LOGITS),
     "model.layers[2].rate"),
    ("unknown layer type", with_layers({**CONV4, "type": "convolution"}, LOGITS),
     "model.layers[0].type"),
    ("unknown layer key", with_layers({**CONV4, "kernal": 3}, LOGITS),
     "model.layers[0].kernal"),
    ("layer not a dict", with_layers("conv", LOGITS), "model.layers[0]"),
    ("kernel larger than the image", with_layers({**CONV4, "kernel": 30}, LOGITS),
     "model.layers[0]"),
    ("zero maps", with_layers({**CONV4, "features": 0}, LOGITS), "model.layers[0].features"),
    ("conv after dense", with_layers(LOGITS, CONV4), "model.layers[1]"),
    ("wrong number of outputs", with_layers(CONV4, POOL, {**LOGITS, "features": 5}),
     "model.layers[2]"),
    ("no logits layer", with_layers(CONV4, POOL), "model.layers[1]"),
    ("a preset beside listed layers", {"model": {"preset": "lenet5"}}, "model.preset"),
    ("unknown conv formulation", {"formulation": {"conv": "fft"}}, "formulation.conv"),
    ("offsets for no layer of its size", with_layers({**CONV4, "features": 20}, POOL, LOGITS)
     | {"formulation": {"conv": "offsets"}}, "formulation.conv"),
    ("micro-batches that do not divide the batch", {"formulation": {"microbatches": 3}},
     "formulation.microbatches"),
]


def merged(overrides):
    """The tiny config as a plain dict with `overrides` merged in (unknown keys included)."""
    config = tiny_config().to_dict()
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


@pytest.mark.parametrize(("overrides", "key"), [case[1:] for case in BAD],
                         ids=[case[0] for case in BAD])
def test_validate_config_names_key_value_and_what_is_allowed(overrides, key):
    with pytest.raises(ConfigError) as caught:
        validate_config(merged(overrides))
    error = caught.value
    assert error.key == key
    message = str(error)
    assert message.startswith(f"config.{key} = ")
    assert "is not allowed: " in message and len(error.allowed) > 3
    if key in overrides and not isinstance(overrides[key], dict | float):
        assert repr(overrides[key]) in message  # the value as given


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_validates_on_mnist(name):
    config = schema_defaults()
    config.model.preset = name
    network = validate_config(config)
    assert network.output_shape((28, 28, 1)) == (10,)


def test_shipped_and_test_configs_validate():
    from configs.default import get_config

    validate_config(get_config())
    validate_config(tiny_config())


def test_with_defaults_fills_missing_keys():
    config = with_defaults({"learning_rate": 1, "model": {"preset": "course_3maps"}})
    assert config.learning_rate == 1.0 and isinstance(config.learning_rate, float)
    assert config.model.preset == "course_3maps" and config.batch_size == 10


def test_shape_check_uses_the_image_shape_of_the_data_set():
    config = schema_defaults()
    config.dataset = "tfds:cifar10"
    config.model.preset = "nielsen_fc100"
    validate_config(config)  # 32×32×3 input
    config.model.preset, config.model.layers = "", [{**CONV4, "kernel": 33}, LOGITS]
    with pytest.raises(ConfigError, match="32×32×3"):
        validate_config(config)


def test_loaded_dataset_sizes_are_checked():
    from cnn_jax.config import load_for_config

    config = tiny_config()
    network = validate_config(config)
    check_loaded(config, network, load_for_config(config))
    config.batch_size = 200
    config.train_size = 100
    with pytest.raises(ConfigError, match="batch_size"):
        check_loaded(config, network, load_for_config(config))
    config.batch_size = 10
    with pytest.raises(ConfigError, match="multiple of the number of devices"):
        check_loaded(config, network, load_for_config(config), devices=4)


def test_semantic_difference_ignores_watch_only_keys():
    a = json_config()
    b = json_config(log_every_steps=7, progress=False, plots=False, nan_check_every=3)
    assert semantic_difference(a, b) == []
    assert semantic_difference(a, json_config(learning_rate=0.2)) == ["learning_rate"]


def json_config(**overrides):
    import json

    config = tiny_config(**overrides)
    return json.loads(config_to_json(config))


# Through the script: the same checks, an exit code of 2, one error line and no traceback.
SCRIPT_CASES = [
    ("unknown key", ["--config.nope=1"], "nope"),
    ("not a number", ["--config.learning_rate=abc"], "learning_rate"),
    ("negative learning rate", ["--config.learning_rate=-1"], "learning_rate"),
    ("batch size 0", ["--config.batch_size=0"], "batch_size"),
    ("batch larger than the data set", ["--config.batch_size=100000"], "batch_size"),
    ("unknown optimizer", ["--config.optimizer=sgdd"], "optimizer"),
    ("unknown data set", ["--config.dataset=mnist5k"], "dataset"),
    ("unknown init", ["--config.model.init=xavier"], "model.init"),
    ("train_size beyond mnist_5k", ["--config.dataset=mnist_5k", "--config.train_size=3901"],
     "train_size"),
]
BAD_FILES = {
    "dropout outside [0, 1)": ("{'type': 'dropout', 'rate': 1.5}", "model.layers[0].rate"),
    "unknown activation": ("{'type': 'dense', 'features': 10, 'activation': 'relux'}",
                           "model.layers[0].activation"),
    "impossible shape": ("{'type': 'conv', 'features': 4, 'kernel': 29}", "model.layers"),
}


def check_usage_error(result, key, workdir):
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    assert key in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not workdir.exists(), "a bad config must fail before anything is written"


@pytest.mark.parametrize(("flags", "key"), [case[1:] for case in SCRIPT_CASES],
                         ids=[case[0] for case in SCRIPT_CASES])
def test_script_exits_2_naming_the_key(tmp_path, flags, key):
    workdir = tmp_path / "run"
    check_usage_error(run_script(*tiny_args(workdir, *flags)), key, workdir)


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_script_rejects_bad_layers_from_a_config_file(tmp_path, case):
    layer, key = BAD_FILES[case]
    path = tmp_path / "bad.py"
    path.write_text(textwrap.dedent(f"""
        from cnn_jax.config import schema_defaults

        def get_config():
            config = schema_defaults()
            config.model.layers = [{layer}]
            return config
    """))
    workdir = tmp_path / "run"
    check_usage_error(run_script(f"--config={path}", f"--workdir={workdir}"), key, workdir)


def test_verbose_shows_the_traceback(tmp_path):
    result = run_script(*tiny_args(tmp_path / "run", "--config.batch_size=0", "--verbose"))
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "ConfigError" in result.stderr


def test_distributed_is_a_flag(tmp_path):
    code = (
        "from absl import flags; import experiments.train as t; "
        f"flags.FLAGS(['train', '--distributed', '--config={TINY}', '--workdir=x']); "
        "print('distributed', t.DISTRIBUTED.value)"
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert "distributed True" in result.stdout


def _python(code):
    import subprocess
    import sys

    from conftest import REPO, script_env

    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=script_env(),
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.py")), ids=lambda p: p.name)
def test_every_shipped_config_validates_and_says_its_data_and_result(path):
    from conftest import load_config_file

    config = load_config_file(path)
    validate_config(config)
    text = path.read_text().split('"""')[1]
    assert f"`{config.dataset}`" in text, "the docstring names the data set"
    assert "Measured" in text and "%" in text, "the docstring gives the result measured"
    assert "python -m experiments." in text, "the docstring gives the command"


# Errors that help (issue 21): one short line that names the file, the field or the layer.
BAD_CONFIG_FILES = {
    "layers_dict": ("from cnn_jax.config import schema_defaults\n\n\ndef get_config():\n"
                    "    config = schema_defaults()\n"
                    "    config.model.layers = {'type': 'conv', 'features': 4}\n"
                    "    return config\n", ["TypeError", "line 6", "layers must be a list of layer "
                                            "dicts, got a dict"]),
    "layers_text": ("from cnn_jax.config import schema_defaults\n\n\ndef get_config():\n"
                    "    config = schema_defaults()\n    config.model.layers = 'conv5-pool2'\n"
                    "    return config\n", ["TypeError", "line 6", "got a str"]),
    "raises": ("raise RuntimeError('boom at import')\n",
               ["importing it raised RuntimeError", "boom at import"]),
    "no_get_config": ("X = 1\n", ["defines no get_config()"]),
}


@pytest.mark.parametrize("name", sorted(BAD_CONFIG_FILES))
def test_a_config_file_that_does_not_load_is_one_short_line_naming_it(tmp_path, name):
    text, expected = BAD_CONFIG_FILES[name]
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    result = run_script(f"--config={path}", module="experiments.shapes")
    first = result.stderr.splitlines()[0]
    assert result.returncode == 2 and first.startswith("error:"), result.stderr[-2000:]
    assert str(path) in first and len(first) < 300, first
    for part in expected:
        assert part in first, first
    assert "Traceback" not in result.stderr


def test_an_override_of_a_layer_that_does_not_exist_says_how_many_there_are():
    result = run_script(f"--config={TINY}", "--config.model.layers[5].kernel=3",
                        module="experiments.shapes")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "no layer 5; the network has 4 layers" in result.stderr.splitlines()[0]


def test_a_rectangular_kernel_override_is_accepted():
    """(3, 5): out = floor((28 − 3)/1) + 1 = 26 rows, floor((28 − 5)/1) + 1 = 24 columns."""
    result = run_script(f"--config={TINY}", "--config.model.layers.0.kernel=(3,5)",
                        module="experiments.shapes")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "26×24×4" in result.stdout and "3×5" in result.stdout


def test_a_config_mismatch_in_a_used_workdir_names_only_the_differing_fields(tmp_path):
    from cnn_jax.config import config_to_json
    from cnn_jax.train import WorkdirError
    from cnn_jax.train.workdir import check_workdir

    (tmp_path / "config.json").write_text(config_to_json(tiny_config()))
    changed = tiny_config()
    changed.model.layers[0]["kernel"] = 9
    with pytest.raises(WorkdirError) as raised:
        check_workdir(tmp_path, changed, overwrite=False)
    message = str(raised.value)
    assert "model.layers[0].kernel: 5 there, 9 now" in message
    assert "features" not in message and len(message) < 300, message
