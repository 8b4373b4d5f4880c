"""Shared plumbing of the experiment scripts: flag parsing that fails with one clear line.

`run(main)` replaces `absl.app.run(main)`: a bad flag or config override (unknown key, wrong type)
or any `cnn_jax.errors.CnnJaxError` (bad config, impossible shape, missing data, unusable
workdir) prints `error: …` and exits with code 2, with no traceback unless `--verbose` is given;
a Ctrl-C outside training exits with 130.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from absl import app, flags, logging

from cnn_jax.errors import CnnJaxError

flags.DEFINE_bool("verbose", False, "Show full tracebacks for errors.")
USAGE_EXIT_CODE = 2
INTERRUPTED_EXIT_CODE = 130  # 128 + SIGINT, as a shell reports a Ctrl-C


def _verbose(argv: list[str]) -> bool:
    return any(arg in ("--verbose", "--verbose=true", "--verbose=True") for arg in argv)


def fail(message: str) -> None:
    """Prints `error: message` to stderr and exits with the usage exit code."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(USAGE_EXIT_CODE)


def _parse_flags(argv: list[str]) -> list[str]:
    try:
        return flags.FLAGS(argv)
    except Exception as error:  # absl and ml_collections raise many kinds for bad flags
        if _verbose(argv):
            raise
        text = str(error).strip()
        if len(text) > 1 and text[0] == text[-1] and text[0] in "'\"":
            text = text[1:-1]  # KeyError wraps its message in quotes
        if isinstance(error, AttributeError | KeyError):
            text = f"unknown config key {text} (check the spelling against the config file)"
        fail(f"{text}\n(use --helpfull for the flags; --verbose for a traceback)")
    return []


def run(main: Callable[[list[str]], object]) -> None:
    """`absl.app.run(main)` with clean user errors (exit code 2)."""

    def guarded(argv: list[str]) -> object:
        if not flags.FLAGS.verbose:
            logging.set_verbosity(logging.WARNING)  # Orbax and TFDS log every file at INFO
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
