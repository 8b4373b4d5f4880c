"""Shared plumbing of the experiment scripts: flags that fail with one clear line.

`run(main)` replaces `absl.app.run(main)`: a bad flag or config override (unknown key, wrong
type, a config file that does not load) or any `cnn_jax.errors.CnnJaxError` (bad config,
impossible shape, missing data, unusable workdir) prints `error: …` and exits with code 2, with
no traceback unless `--verbose` is given; a Ctrl-C outside training exits with 130.

`define_config_file(name, default, help)` replaces `config_flags.DEFINE_config_file`: the default
file is loaded only when `--name` is not given, during flag parsing, so an override of an
unknown key is an error line like any other; `--name.model.layers.0.kernel=3` is read as
`--name.model.layers[0].kernel=3`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

from absl import app, flags, logging
from ml_collections import config_flags

from cnn_jax.errors import CnnJaxError

flags.DEFINE_bool("verbose", False, "Show full tracebacks for errors.")
USAGE_EXIT_CODE = 2
INTERRUPTED_EXIT_CODE = 130  # 128 + SIGINT, as a shell reports a Ctrl-C
_CONFIG_FLAGS: dict[str, str | None] = {}  # config flag name → its default file
_INDEX = re.compile(r"\.(\d+)(?=[.=\[]|$)")


def define_config_file(name: str, default: str | None, help_text: str):
    """A config-file flag (`ml_collections.config_flags`) whose default is loaded lazily."""
    _CONFIG_FLAGS[name] = default
    # config_flags reads the overrides from sys.argv when the flag is defined
    sys.argv[:] = with_config_defaults(sys.argv)
    return config_flags.DEFINE_config_file(name, None, help_text)


def _verbose(argv: list[str]) -> bool:
    return any(arg in ("--verbose", "--verbose=true", "--verbose=True") for arg in argv)


def fail(message: str) -> None:
    """Prints `error: message` to stderr and exits with the usage exit code."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(USAGE_EXIT_CODE)


def with_config_defaults(argv: list[str]) -> list[str]:
    """argv with `--name=<default file>` for every config flag not given, and list indices of
    overrides written as `.0.` read as `[0]`."""
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
                argv[index] = prefix + _INDEX.sub(r"[\1]", key) + sep + value
    return argv


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
    try:
        remaining = flags.FLAGS(with_config_defaults(argv))
        for name in _CONFIG_FLAGS:
            value = flags.FLAGS[name].value
            if type(value).__name__ == "_ErrorConfig":  # the file did not load
                raise OSError(_config_load_error(name, value))
        return remaining
    except Exception as error:  # absl and ml_collections raise many kinds for bad flags
        if _verbose(argv):
            raise
        fail(f"{_flag_error_text(error)}\n(use --helpfull for the flags; --verbose for a "
             "traceback)")
    return []


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
