"""The XLA:CPU options cnn_jax runs with, set before JAX creates its CPU backend.

`import cnn_jax` calls `configure()`, so every script, notebook and worker that imports the
package gets them. Each option in `CPU_OPTIONS` is appended to the process's `XLA_FLAGS`
unless the user already set that option (the user's value wins). XLA reads `XLA_FLAGS` once,
when the first backend is created, so:

* nothing changes in a process whose backend already exists (e.g. `import jax; jax.numpy.ones(1)`
  before `import cnn_jax`): `configure` then says so once, as a warning;
* set `CNN_JAX_XLA_DEFAULTS=0` to leave `XLA_FLAGS` exactly as it is (opt-out);
* XLA aborts the process on an option it does not know, so the options are added only for the
  jaxlib versions they were measured on (`MEASURED_JAXLIB`); on another version nothing is added
  and `configure` says so once.

Where each option wins: `--xla_cpu_experimental_ynn_fusion_type=` (an empty list of fusion
types) turns XLA's YNNPACK fusions off, so convolutions and their gradients run on XLA's
multi-threaded Eigen path instead of one thread each: faster training steps on a CPU with two or
more cores, for every network that ships (BENCHMARKS.md). (The value `invalid` turns them off
too but logs "Unsupported fusion type" at every compile.) The options are CPU-only: GPU and TPU
programs are unaffected.

`jit_run_once` compiles a program that runs once per training run (parameter initialisation) at
LLVM optimisation level 1 instead of XLA's default on CPU. Such a program's cost is its compile
time, and most of that goes to optimising the Threefry rounds and the erf⁻¹ of every parameter
tensor's draw. Level 1 keeps the drawn parameters bit for bit (tests/test_backend.py checks conv,
local and dense layers with truncated-normal, uniform and normal draws) and compiles them in a
fraction of the time (BENCHMARKS.md). Training and evaluation steps keep XLA's default level.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import shlex
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

CPU_OPTIONS: dict[str, str] = {"xla_cpu_experimental_ynn_fusion_type": ""}
MEASURED_JAXLIB = ("0.10.",)  # version prefixes on which every option exists and was measured
OPT_OUT = "CNN_JAX_XLA_DEFAULTS"
RUN_ONCE_CPU_COMPILER_OPTIONS: dict[str, Any] = {"xla_backend_optimization_level": 1}

_said: set[str] = set()


def _say_once(key: str, message: str) -> None:
    if key not in _said:
        _said.add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def _set_options(flags: str) -> set[str]:
    """The option names set in an XLA_FLAGS string (`--name=value` or `--name`)."""
    names = set()
    for word in shlex.split(flags):
        if word.startswith("--"):
            names.add(word[2:].split("=", 1)[0])
    return names


def _jaxlib_version() -> str | None:
    try:
        return importlib.metadata.version("jaxlib")
    except importlib.metadata.PackageNotFoundError:
        return None


def _backend_exists() -> bool:
    xla_bridge = sys.modules.get("jax._src.xla_bridge")
    return bool(xla_bridge is not None and xla_bridge.backends_are_initialized())


def configure(environ: os._Environ | dict[str, str] | None = None) -> list[str]:
    """Adds the missing `CPU_OPTIONS` to `environ['XLA_FLAGS']` (default: `os.environ`).

    Returns the `--name=value` words added (empty when opted out, all set by the user, the
    jaxlib version unmeasured, or the backend already created).
    """
    environ = os.environ if environ is None else environ
    if environ.get(OPT_OUT, "1").strip().lower() in ("0", "false", "no", "off"):
        return []
    version = _jaxlib_version()
    if version is None or not version.startswith(MEASURED_JAXLIB):
        _say_once("version", f"cnn_jax: XLA CPU options {sorted(CPU_OPTIONS)} were measured on "
                  f"jaxlib {'/'.join(p + 'x' for p in MEASURED_JAXLIB)}, not {version}; not "
                  "adding them (XLA aborts on options it does not know)")
        return []
    flags = environ.get("XLA_FLAGS", "")
    missing = [f"--{name}={value}" for name, value in CPU_OPTIONS.items()
               if name not in _set_options(flags)]
    if not missing:
        return []
    if _backend_exists():
        if environ is os.environ:
            _say_once("late", "cnn_jax: JAX's backend was created before cnn_jax was imported, "
                      f"so XLA_FLAGS lacks {' '.join(missing)} (slower CPU training); import "
                      f"cnn_jax first, or set XLA_FLAGS yourself ({OPT_OUT}=0 silences this)")
        return []
    environ["XLA_FLAGS"] = " ".join(part for part in (flags, *missing) if part)
    return missing


def effective_xla_flags() -> str:
    """The XLA_FLAGS of this process (what the backend reads when it is created)."""
    return os.environ.get("XLA_FLAGS", "")


class _RunOnceJit:
    """`fun` jitted twice, with and without the run-once options; calls pick by backend."""

    def __init__(self, fun: Callable, static_argnums: Sequence[int]):
        import jax

        functools.update_wrapper(self, fun)
        self._on_cpu = jax.jit(fun, static_argnums=static_argnums,
                               compiler_options=RUN_ONCE_CPU_COMPILER_OPTIONS)
        self._elsewhere = jax.jit(fun, static_argnums=static_argnums)

    def program(self) -> Any:
        """The jitted function for the default backend (`.lower(...)` works on it)."""
        import jax

        return self._on_cpu if jax.default_backend() == "cpu" else self._elsewhere

    def __call__(self, *args, **kwargs):
        return self.program()(*args, **kwargs)


def jit_run_once(fun: Callable, *, static_argnums: Sequence[int] = ()) -> Callable:
    """`jax.jit(fun)` for a program that runs once per run: compiled with
    `RUN_ONCE_CPU_COMPILER_OPTIONS` when the default backend is the CPU, as jax.jit otherwise."""
    return _RunOnceJit(fun, static_argnums)
