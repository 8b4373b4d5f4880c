"""A process that imports the project's dependencies once and runs each script in a fork of itself.

A script test runs `python -m experiments.X args` as a user would; a fresh interpreter spends about
2 s importing jax, flax, optax, orbax and tensorflow_datasets before the script's own first line,
which is most of a refusal test's time. This server imports them once (nothing is computed, so no
backend and no thread of XLA exists yet) and then, for each request read from stdin, forks a child
that is the script's process: its own argv, working directory, stdin (/dev/null), stdout and stderr
(the files the request names); it runs the module as `__main__` the way `python -m` does and ends
the way the interpreter ends (non-daemon threads joined, atexit functions run, streams flushed;
SystemExit's code, 1 after a traceback, or death by SIGINT after a KeyboardInterrupt).

Protocol, one JSON object per line: request {"module", "args", "cwd", "stdout", "stderr",
"timeout"} on stdin; reply {"returncode"} (negative: killed by that signal) or {"timed_out": true}
(the child was killed) on stdout. The server's environment is every child's (`run_script` starts
one per environment). tests/test_script_server.py checks that a run through it prints and writes
what a fresh `python -m` prints and writes.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback

PRELOAD = ("jax", "jax.numpy", "flax", "optax", "orbax.checkpoint", "tensorflow_datasets",
           "ml_collections", "absl.app", "absl.flags", "numpy", "cnn_jax", "cnn_jax.cli",
           "cnn_jax.config", "cnn_jax.train")


def _exit_code(exit: SystemExit) -> int:
    if exit.code is None:
        return 0
    if isinstance(exit.code, int):
        return exit.code
    print(exit.code, file=sys.stderr)
    return 1


def _run_child(request: dict) -> None:
    """In the forked child: become `python -m module args` and never return."""
    import runpy
    import threading

    os.chdir(request["cwd"])
    stdin = os.open(os.devnull, os.O_RDONLY)
    stdout = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    stderr = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for source, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
        os.dup2(source, target)
        os.close(source)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the process's stdin, now /dev/null
    sys.path[0] = os.getcwd()  # what `python -m` puts first
    sys.argv = ["-m", *request["args"]]  # run_module sets argv[0] to the module's file
    code, interrupted = 0, False
    try:
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    except SystemExit as exit:
        code = _exit_code(exit)
    except KeyboardInterrupt:
        traceback.print_exc()
        code, interrupted = 1, True
    except BaseException:  # noqa: BLE001 - the interpreter prints any uncaught exception
        traceback.print_exc()
        code = 1
    try:
        threading._shutdown()  # what the interpreter does at exit: join non-daemon threads
        import atexit

        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
    if interrupted:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(code)


def _wait(pid: int, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return {"returncode": os.waitstatus_to_exitcode(status)}
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return {"timed_out": True}
        time.sleep(0.01)


def main() -> None:
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _run_child(request)
        print(json.dumps(_wait(pid, request["timeout"])), flush=True)


if __name__ == "__main__":
    main()
