"""A local sweep's trials in several worker processes at once (`--parallel=N`).

On a CPU, XLA spreads one small network's step over every core, and the cores wait on each other
at every step; several trials side by side may keep them busier. Whether that wins is measured
per machine (`experiments/sweep_throughput.py`; BENCHMARKS.md, "Sweep throughput"): on the
2-core development VM it does not, so `--parallel=auto` (`pick_workers`) runs one trial at a time.

Each worker is a fresh Python process (multiprocessing 'spawn': no JAX state is forked) that keeps
its loaded data set and compiled programs for the next trial and shares the sweep's persistent
compilation cache. Trials start in grid order and run `worker.run_trial`, the same function as the
one-process executor, in the same trial folders.

Identical results: XLA:CPU splits some reductions (a convolution's weight gradient sums over the
batch and the positions) among its threads, one per CPU the process may use, so the summation
order, and with it the last bits of every step, depends on that count. Workers therefore see
every CPU by default, as a one-at-a-time run does, and give its accuracies to the last digit
(tests/test_sweep_parallel.py). `pin_cpus=True` (`--pin_cpus`) gives each worker its own share of
the CPUs instead: less contention, but other numbers than a run on all the CPUs (each trial's
trial.json records the CPUs it ran on).

Stopping: a SIGINT or SIGTERM to the sweep is passed on to the workers as SIGINT (and again
every half second, for a trial still loading); each running trial saves a checkpoint and ends
`interrupted`, no further trial starts, and a rerun resumes. Idle workers ignore SIGINT, and so
does a trial that already took one (a Ctrl-C at the terminal reaches the workers too). If the
sweep process dies (kill -9), its workers get SIGTERM from the kernel (PR_SET_PDEATHSIG): a
training trial saves and ends `interrupted`, then its worker exits; an idle worker, or one still
loading, dies at once (a trial left `running` shows as dead and resumes from its checkpoint).
"""

from __future__ import annotations

import concurrent.futures as futures
import ctypes
import multiprocessing
import os
import signal
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cnn_jax.sweep import trialdir
from cnn_jax.sweep.plan import TrialPlan

AUTO_WORKERS = 1  # measured on 2 cores: two at a time are not faster (BENCHMARKS.md)
_PR_SET_PDEATHSIG = 1
_parent = 0  # in a worker: the sweep process's pid


def available_cpus() -> list[int]:
    """The CPUs this process may run on (its affinity mask), sorted."""
    return sorted(os.sched_getaffinity(0))


def pick_workers(parallel: int | str, pending: int, *, backend: str | None = None,
                 cpus: int | None = None) -> int:
    """How many trials run at once: 'auto' → `AUTO_WORKERS` on a CPU backend (the measured
    winner), 1 on GPU/TPU (where the vmap executor shares the device instead); a number → that
    number. Never more than the `pending` trials nor the CPUs, never less than 1."""
    if parallel == "auto":
        if backend is None:
            import jax

            backend = jax.default_backend()
        wanted = AUTO_WORKERS if backend == "cpu" else 1
    else:
        wanted = int(parallel)
        if wanted < 1:
            raise ValueError(f"parallel must be 'auto' or a number >= 1, got {parallel!r}")
    cpus = len(available_cpus()) if cpus is None else cpus
    return max(1, min(wanted, pending, cpus))


def cpu_shares(cpus: Sequence[int], workers: int) -> list[list[int]]:
    """`cpus` split into `workers` disjoint shares of near-equal size, in order:
    [0, 1, 2, 3, 4] and 2 workers → [[0, 1, 2], [3, 4]]."""
    if not 1 <= workers <= len(cpus):
        raise ValueError(f"cannot split {len(cpus)} CPUs among {workers} workers")
    size, extra = divmod(len(cpus), workers)
    shares, start = [], 0
    for index in range(workers):
        end = start + size + (index < extra)
        shares.append(list(cpus[start:end]))
        start = end
    return shares


def _start_worker(shares: Any, cache: str) -> None:
    """In each new worker, before JAX creates its backend: its CPUs (a share when pinned, else
    all), its signals, the cache."""
    global _parent
    _parent = os.getppid()
    share = shares.get()
    if share is not None:
        os.sched_setaffinity(0, share)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a running trial's StopRequests takes it
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    from cnn_jax.compilation_cache import enable_compilation_cache

    enable_compilation_cache(cache)


def _run_one(directory: str, config: Any) -> dict[str, Any]:
    from cnn_jax.sweep.worker import run_trial

    outcome = run_trial(directory, config)
    if os.getppid() != _parent:  # the sweep died during the trial: nobody will read this
        os._exit(1)
    return outcome


def run_parallel(plans: list[TrialPlan], workdir: Path,
                 finished: Callable[[dict[str, Any]], None], cache: str, workers: int, *,
                 pin_cpus: bool = False) -> bool:
    """Runs `plans` on `workers` processes, at most one trial per worker at a time, starting
    them in order; calls `finished(outcome)` in this process as each ends. `pin_cpus`: each
    worker on its own share of the CPUs (`cpu_shares`; see the module docstring). Returns True
    when the sweep was stopped (a signal, or a trial that ended `interrupted`)."""
    from cnn_jax.train.interrupts import StopRequests

    context = multiprocessing.get_context("spawn")
    shares = context.Queue()
    for share in cpu_shares(available_cpus(), workers) if pin_cpus else [None] * workers:
        shares.put(share)
    queue = iter(plans)
    running: set[futures.Future] = set()
    stopping = False
    with StopRequests() as stop, futures.ProcessPoolExecutor(
            workers, mp_context=context, initializer=_start_worker,
            initargs=(shares, cache)) as pool:
        try:
            while True:
                while not (stop.requested or stopping) and len(running) < workers:
                    plan = next(queue, None)
                    if plan is None:
                        break
                    directory = str(trialdir.trial_dir(workdir, plan.trial.id))
                    running.add(pool.submit(_run_one, directory, plan.trial.config))
                if not running:
                    break
                done, _ = futures.wait(running, timeout=0.5,
                                       return_when=futures.FIRST_COMPLETED)
                running -= done
                for future in done:
                    outcome = future.result()
                    finished(outcome)
                    stopping = stopping or outcome["status"] == "interrupted"
                stopping = stopping or stop.requested
                if stopping:  # again every round: a trial still loading has no handler yet
                    _signal_workers(signal.SIGINT)
        except BaseException:  # a missing data set, a second Ctrl-C: the others stop too
            _signal_workers(signal.SIGINT)
            raise
    return stop.requested or stopping


def _signal_workers(number: int) -> None:
    for process in multiprocessing.active_children():
        if process.pid is not None:
            os.kill(process.pid, number)
