"""Counts XLA compilations with `jax.monitoring`, to show that trials share compiled programs.

    with CompileCounter() as count:
        train_and_evaluate(...)
    count.compiles      # programs XLA compiled (0: every program came from a cache)
    count.cache_loads   # programs loaded from the persistent compilation cache

Trials that differ only in values (learning rate, λ, seed) reuse the cached training step of the
first one when they run in the same process, so their `compiles` is 0.
"""

from __future__ import annotations

import threading

import jax

_BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"
_CACHE_HIT = "/jax/compilation_cache/cache_hits"
_active: list[CompileCounter] = []
_lock = threading.Lock()
_registered = False


def _on_duration(event: str, duration: float, **kwargs) -> None:
    if event == _BACKEND_COMPILE:
        with _lock:
            for counter in _active:
                counter.programs += 1
                counter.seconds += duration


def _on_event(event: str, **kwargs) -> None:
    if event == _CACHE_HIT:
        with _lock:
            for counter in _active:
                counter.cache_loads += 1


def _register() -> None:
    global _registered
    with _lock:
        if not _registered:
            jax.monitoring.register_event_duration_secs_listener(_on_duration)
            jax.monitoring.register_event_listener(_on_event)
            _registered = True


class CompileCounter:
    """Context manager: programs built (compiled or loaded from the persistent cache) inside."""

    def __init__(self) -> None:
        self.programs = 0
        self.cache_loads = 0
        self.seconds = 0.0

    @property
    def compiles(self) -> int:
        """Programs XLA actually compiled (not found in any cache)."""
        return self.programs - self.cache_loads

    def __enter__(self) -> CompileCounter:
        _register()
        with _lock:
            _active.append(self)
        return self

    def __exit__(self, *exc_info) -> None:
        with _lock:
            _active.remove(self)
