"""SIGINT/SIGTERM during training: note the request; the loop saves and stops at a step boundary."""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType


class StopRequests:
    """Context manager: while active, SIGINT and SIGTERM set `requested` instead of killing.

    A second signal of the same kind falls through to the previous handler (a second Ctrl-C
    raises KeyboardInterrupt at once, a second SIGTERM terminates the process); the checkpoints
    and files already written stay whole. Outside the main thread it does nothing.

    Nested (a sweep's handler around a trial's): a request the inner one took is passed on to
    the outer one when the inner one exits, so a signal that arrives after the inner loop's last
    check (a trial's last evaluation or finishing step) still stops the outer loop.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self.signal_name = ""
        self._previous: dict[int, object] = {}

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if self.requested:
            previous = self._previous.get(number)
            if callable(previous):
                previous(number, frame)  # e.g. a second Ctrl-C: KeyboardInterrupt
            elif previous == signal.SIG_DFL:  # e.g. a second SIGTERM: terminate now
                signal.signal(number, signal.SIG_DFL)
                os.kill(os.getpid(), number)
            return
        self.requested = True
        self.signal_name = signal.Signals(number).name

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            for number in self.SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous)
            outer = getattr(previous, "__self__", None)
            if self.requested and isinstance(outer, StopRequests) and not outer.requested:
                outer.requested, outer.signal_name = True, self.signal_name
        self._previous.clear()
