"""Shared plumbing of the experiment scripts: flags that fail with one clear line.

`run(main)` replaces `absl.app.run(main)`: a bad flag or config override (unknown key, wrong
type, a config file that does not load) or any `cnn_jax.errors.CnnJaxError` (bad config,
impossible shape, missing data, unusable workdir) prints `error: …` and exits with code 2, with
no traceback unless `--verbose` is given; a Ctrl-C outside training exits with 130.

`define_config_file(name, default, help)` replaces `config_flags.DEFINE_config_file`: the default
file is loaded only when `--name` is not given, during flag parsing, so an override of an
unknown key is an error line like any other; `--name.model.layers.0.kernel=3` is read as
`--name.model.layers[0].kernel=3` (by `cnn_jax.config.keys`, the parser sweeps use), and a layer
field takes any value its layer takes (`--name.model.layers[0].kernel=(3,5)`); an override of a
layer that does not exist says how many the network has. A sweep config's `--name.seeds=3` means
3 seeds, (0, 1, 2) (a note says so).
A config file that fails to load is named in one line with the exception's type and line.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

from absl import app, flags, logging
from ml_collections import config_flags

from cnn_jax.errors import CnnJaxError, SweepError

flags.DEFINE_bool("verbose", False, "Show full tracebacks for errors.")
USAGE_EXIT_CODE = 2
INTERRUPTED_EXIT_CODE = 130  # 128 + SIGINT, as a shell reports a Ctrl-C
_CONFIG_FLAGS: dict[str, str | None] = {}  # config flag name → its default file
_LAYER_OVERRIDES: list[tuple[str, str, str]] = []  # taken out of sys.argv when defined


def define_config_file(name: str, default: str | None, help_text: str):
    """A config-file flag (`ml_collections.config_flags`) whose default is loaded lazily."""
    _CONFIG_FLAGS[name] = default
    # config_flags reads the overrides from sys.argv when the flag is defined; layer fields are
    # set by `_set_layer_field` after parsing instead (see `_split_layer_overrides`)
    sys.argv[:], layer_overrides = _split_layer_overrides(with_config_defaults(sys.argv))
    _LAYER_OVERRIDES.extend(layer_overrides)
    return config_flags.DEFINE_config_file(name, None, help_text)


def define_run_flags():
    """--workdir (a training run's folder) and --checkpoint (best | latest | a step number), as
    the scripts that read a trained run define them."""
    workdir = flags.DEFINE_string("workdir", None, "Folder of a training run (required).")
    checkpoint = flags.DEFINE_string(
        "checkpoint", "best", "best (best validation accuracy), latest, or a step number.")
    flags.register_validator(
        "checkpoint",
        lambda value: value in ("best", "latest") or bool(re.fullmatch(r"\d+", value)),
        "--checkpoint must be best, latest or a step number")
    return workdir, checkpoint


def require_run_folder(argv: list[str], workdir: str | None) -> None:
    """No positional arguments, and --workdir given."""
    if len(argv) > 1:
        fail(f"unexpected arguments {argv[1:]}; options are flags such as --workdir=...")
    if not workdir:
        fail("--workdir is required: the folder of a training run")


def _verbose(argv: list[str]) -> bool:
    return any(arg in ("--verbose", "--verbose=true", "--verbose=True") for arg in argv)


def fail(message: str) -> None:
    """Prints `error: message` to stderr and exits with the usage exit code."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(USAGE_EXIT_CODE)


def with_config_defaults(argv: list[str]) -> list[str]:
    """argv with `--name=<default file>` for every config flag not given, and list indices of
    overrides written as `.0.` read as `[0]`."""
    from cnn_jax.config.keys import normalized_key

    argv = list(argv)
    for name, default in _CONFIG_FLAGS.items():
        given = any(arg == f"--{name}" or arg.startswith(f"--{name}=") for arg in argv)
        if default is not None and not given:
            argv.insert(1, f"--{name}={default}")
    for index, arg in enumerate(argv):
        for name in _CONFIG_FLAGS:
            prefix = f"--{name}."
            if arg.startswith(prefix):
                key, sep, value = arg[len(prefix):].partition("=")
                if key == "seeds" and value.strip().isdigit():
                    value = _seed_count(name, int(value))
                argv[index] = prefix + normalized_key(key) + sep + value
    return argv


def _seed_count(name: str, count: int) -> str:
    """`--config.seeds=3` of a sweep config: 3 seeds, (0, 1, 2), said on stderr (ml_collections
    would read it as the one seed 3)."""
    if count < 1:
        fail(f"--{name}.seeds={count}: give a number of seeds >= 1, or a tuple such as "
             f"'(0, 1, 2)'")
    seeds = tuple(range(count))
    print(f"note: --{name}.seeds={count} is read as {count} seed{'s' if count > 1 else ''} "
          f"{seeds}; for the one seed {count} write --{name}.seeds='({count},)'", file=sys.stderr)
    return str(seeds)


def _flag_error_text(error: Exception) -> str:
    """One line from what absl and ml_collections raise for a bad flag."""
    cause: object = error
    while isinstance(cause, Exception) and isinstance(cause, AttributeError | KeyError) \
            and cause.args and isinstance(cause.args[0], Exception | str):
        cause = cause.args[0]  # ConfigDict wraps a KeyError('…Did you mean…') in AttributeError
        if isinstance(cause, str):
            break
    text = str(cause).strip()
    if isinstance(error, AttributeError | KeyError):
        text = re.sub(r"^['\"]?([A-Za-z0-9_.\[\]]+)['\"]?\s*", r"'\1' ", text, count=1).strip()
        text = f"unknown config key {text} (check the spelling against the config file)"
    text = text.replace(" Did you mean", "; did you mean")
    return re.sub(r"\s*\n\s*", "; ", text)


def _parse_flags(argv: list[str]) -> list[str]:
    argv, layer_overrides = _split_layer_overrides(with_config_defaults(argv))
    layer_overrides = [*_LAYER_OVERRIDES, *layer_overrides]
    try:
        remaining = flags.FLAGS(argv)
        for name in _CONFIG_FLAGS:
            value = flags.FLAGS[name].value
            if type(value).__name__ == "_ErrorConfig":  # the file did not load
                raise OSError(_config_load_error(name, value))
        for name, key, text in layer_overrides:
            _set_layer_field(name, key, text)
        return remaining
    except Exception as error:  # absl and ml_collections raise many kinds for bad flags
        if _verbose(argv):
            raise
        text = _config_file_problem(argv) or _flag_error_text(error)
        fail(f"{text}\n(use --helpfull for the flags; --verbose for a traceback)")
    return []


def _split_layer_overrides(argv: list[str]) -> tuple[list[str], list[tuple[str, str, str]]]:
    """argv without the overrides of layer fields (`--config.model.layers[0].kernel=(3,5)`), and
    those as (flag name, key below it, value text). ml_collections would cast a layer field's
    value to the type of its current value (a kernel of 5 refuses '(3,5)') and say 'list index
    out of range' for a layer that does not exist; `_set_layer_field` does neither."""
    from cnn_jax.config.keys import is_layer_field

    kept, overrides = [], []
    for arg in argv:
        name, _, override = arg[2:].partition(".") if arg.startswith("--") else ("", "", "")
        key, sep, text = override.partition("=")
        if name in _CONFIG_FLAGS and sep and is_layer_field(key):
            overrides.append((name, key, text))
        else:
            kept.append(arg)
    return kept, overrides


def _set_layer_field(name: str, key: str, text: str) -> None:
    """Sets a layer field of config flag `name` from its text (a number, a tuple such as (3,5),
    or a word such as relu); raises `ValueError` with one clear line."""
    from cnn_jax.config.keys import parse_key, set_value
    from cnn_jax.config.model import layer_field_value

    config = flags.FLAGS[name].value
    path = parse_key(key)
    value = layer_field_value(str(path[-1]), text)
    try:
        set_value(config, path, value)
    except SweepError as error:
        layers = _layers_before(path)
        node = config
        for item in layers:
            node = node[item]
        index = path[len(layers)]
        if isinstance(index, int) and isinstance(node, list | tuple) and index >= len(node):
            raise ValueError(f"--{name}.{key}={text}: no layer {index}; the network has "
                             f"{len(node)} layers (indices 0 to {len(node) - 1})") from None
        raise ValueError(f"--{name}.{key}={text}: {error}") from None


def _layers_before(path: tuple) -> tuple:
    """The part of `path` up to and including 'layers' (what the list index follows)."""
    position = max(i for i, item in enumerate(path) if item == "layers")
    return path[:position + 1]


def _config_file_problem(argv: list[str]) -> str:
    """One line saying what is wrong with a config file given on the command line, found by
    loading it the way `config_flags` does ('' if it loads): an exception while importing it
    (its type and the line), no `get_config`, or `get_config()` raising (e.g. model.layers set
    to a dict or a string)."""
    import importlib.util
    import traceback

    for name in _CONFIG_FLAGS:
        given = [arg.split("=", 1)[1] for arg in argv if arg.startswith(f"--{name}=")]
        if not given:
            continue
        path, _, argument = given[-1].partition(":")
        if not Path(path).is_file():
            continue
        where = f"--{name}={given[-1]}"
        spec = importlib.util.spec_from_file_location("_cnn_jax_config_check", path)
        module = importlib.util.module_from_spec(spec)
        stage = "importing it"
        try:
            spec.loader.exec_module(module)
            if not callable(getattr(module, "get_config", None)):
                return f"{where}: the file defines no get_config() function (it must return " \
                       f"the config, an ml_collections.ConfigDict)"
            stage = "get_config()"
            module.get_config(*([argument] if argument else []))
        except Exception as error:  # noqa: BLE001 - whatever the user's file raises
            lines = [frame.lineno for frame in traceback.extract_tb(error.__traceback__)
                     if Path(frame.filename).resolve() == Path(path).resolve()]
            at = f" (line {lines[-1]})" if lines else ""
            return f"{where}: {stage} raised {type(error).__name__}{at}: {_short_reason(error)}"
    return ""


def _short_reason(error: Exception) -> str:
    """The first line of an exception's text, with ml_collections' type errors said plainly."""
    text = str(error).strip()
    cast = re.search(r"Could not override field '(\w+)'.*?original type <class '([\w.]+)'> "
                     r"and cannot be casted to type <class '(\w+)'>", text, re.S)
    if cast:
        field, given, wanted = cast.groups()
        given = {"ml_collections.config_dict.config_dict.ConfigDict": "dict"}.get(given, given)
        hint = " of layer dicts" if field == "layers" else ""
        return f"{field} must be a {wanted}{hint}, got a {given}"
    first = (text.splitlines() or [""])[0]
    return first if len(first) <= 200 else first[:197] + "..."


def _config_load_error(name: str, value: object) -> str:
    path = config_flags.get_config_filename(flags.FLAGS[name])
    cause = object.__getattribute__(value, "_error")
    if not Path(str(path)).is_file():
        return f"--{name}={path}: no such config file"
    return f"--{name}={path} could not be loaded: {type(cause).__name__}: {cause}"


def run(main: Callable[[list[str]], object]) -> None:
    """`absl.app.run(main)` with clean user errors (exit code 2)."""

    def guarded(argv: list[str]) -> object:
        if not flags.FLAGS.verbose:
            logging.set_verbosity(logging.ERROR)  # Orbax and TFDS log every file at INFO
        try:
            return main(argv)
        except (CnnJaxError, flags.Error) as error:
            if flags.FLAGS.verbose:
                raise
            fail(str(error))
        except KeyboardInterrupt:
            if flags.FLAGS.verbose:
                raise
            print("interrupted", file=sys.stderr)
            sys.exit(INTERRUPTED_EXIT_CODE)
        return None

    app.run(guarded, flags_parser=_parse_flags)
